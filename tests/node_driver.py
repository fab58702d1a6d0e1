"""Driving the pack's nodes the way ComfyUI runs them: widget defaults from INPUT_TYPES,
the FUNCTION called (and awaited), IMAGE tensors built from photo-like pictures."""
from __future__ import annotations

import asyncio
import importlib
import inspect

import numpy as np
import torch

from helpers import photo_like
from tools.packload import PACK_NAME, load_pack


def pack_module(name: str):
    """A module of the pack as ComfyUI imported it, e.g. ``pack_module("nodes.img2img")``."""
    load_pack()
    return importlib.import_module(f"{PACK_NAME}.{name}")


def defaults(node_id: str) -> dict:
    """The widget values a freshly added node has (IMAGE and other sockets left out)."""
    spec = load_pack().NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()["required"]
    out = {}
    for name, (kind, *rest) in spec.items():
        opts = rest[0] if rest else {}
        if "default" in opts:
            out[name] = opts["default"]
        elif isinstance(kind, list):
            out[name] = kind[0]
    return out


def run_node(node_id: str, **inputs):
    cls = load_pack().NODE_CLASS_MAPPINGS[node_id]
    out = getattr(cls(), cls.FUNCTION)(**inputs)
    return asyncio.run(out) if inspect.iscoroutine(out) else out


def img2img(image, **widgets):
    inputs = defaults("PPInfraImg2Img")
    inputs.update(prompt="a lighthouse at dusk", width=128, height=128)
    inputs.update(widgets)
    return run_node("PPInfraImg2Img", image=image, **inputs)


def photo(batch: int = 1, size: int = 128, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.stack([photo_like(size, size, seed + i) for i in range(batch)]))


def write_fresh_model_cache(cache_dir: str, base_url: str) -> None:
    """A fresh model cache, so building dropdowns starts no background refresh against the sandbox."""
    from ppinfra.models import FALLBACK_MODELS, ModelCatalog, ModelInfo

    cat = ModelCatalog(None, cache_dir=cache_dir, base_url=base_url)
    for model_type, entries in FALLBACK_MODELS.items():
        cat._write_cache(model_type, [ModelInfo(n, model_type, x) for n, x in entries])
