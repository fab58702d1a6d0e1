"""Driving the pack's nodes the way ComfyUI runs them: the one driver of the tests and the benchmark.

The pack is loaded as ComfyUI loads it (``tools/packload.py``); inputs come from
``INPUT_TYPES`` (defaults for every widget), the method named by ``FUNCTION`` is
called with keyword arguments and awaited when it is a coroutine. ComfyUI itself
need not be installed: ``FakeComfy`` holds small stand-ins for the few ComfyUI
modules the bridge imports (interrupt flag, a progress bar whose hook clears the
flag like ComfyUI's does, status text, user directory); the tests' ``comfy``
fixture puts them into ``sys.modules``.

Used by tests/ (through ``tests/conftest.py``'s fixtures and by import) and by
``bench/run.py`` (``Pack``). Nothing here loads the pack at import time: the
benchmark sets its environment first. Module handles such as ``NODES``,
``IMG2IMG`` or ``errors`` are read from the loaded pack on first use.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import inspect
import io
import threading
import types
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from tools.packload import PACK_NAME, load_pack

SD15 = "dreamshaper_8_93211.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


# --------------------------------------------------------------------------- the pack's modules


def pack_module(name: str):
    """A module of the pack as ComfyUI imported it, e.g. ``pack_module("nodes.img2img")``."""
    load_pack()
    return importlib.import_module(f"{PACK_NAME}.{name}")


_HANDLES = {
    "NODES": lambda: load_pack().NODE_CLASS_MAPPINGS,
    "IMG2IMG": lambda: load_pack().NODE_CLASS_MAPPINGS["PPInfraImg2Img"],
    "CONTROLNET": lambda: load_pack().NODE_CLASS_MAPPINGS["PPInfraControlNetUnit"],
    "LORAS": lambda: load_pack().NODE_CLASS_MAPPINGS["PPInfraLoraStack"],
    "EMBEDDING": lambda: load_pack().NODE_CLASS_MAPPINGS["PPInfraEmbedding"],
    "IP_ADAPTER": lambda: load_pack().NODE_CLASS_MAPPINGS["PPInfraIPAdapter"],
    "errors": lambda: pack_module("ppinfra.errors"),
    "images_mod": lambda: pack_module("ppinfra.images"),
    "options": lambda: pack_module("nodes.widgets"),
    "catalog_mod": lambda: pack_module("nodes.catalog"),
    # Read before any test replaces it (the ``no_background_refresh`` fixture does).
    "REAL_REFRESH_SOON": lambda: pack_module("nodes.widgets").refresh_soon,
}
_handle_cache: Dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """``NODES``, ``IMG2IMG``, ``errors``, ... from the loaded pack, read once on first use."""
    if name not in _HANDLES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _handle_cache:
        _handle_cache[name] = _HANDLES[name]()
    return _handle_cache[name]


# --------------------------------------------------------------------------- inputs as a fresh node has them


def defaults(node_id: str) -> dict:
    """The required widget values a freshly added node has (IMAGE and other sockets left out)."""
    spec = load_pack().NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()["required"]
    out = {}
    for name, (kind, *rest) in spec.items():
        opts = rest[0] if rest else {}
        if "default" in opts:
            out[name] = opts["default"]
        elif isinstance(kind, list):
            out[name] = kind[0]
    return out


def widget_defaults(cls) -> Dict[str, Any]:
    """Every widget value (required and optional) a freshly added node of class ``cls`` has."""
    out: Dict[str, Any] = {}
    for section in ("required", "optional"):
        for name, spec in (cls.INPUT_TYPES().get(section) or {}).items():
            kind = spec[0]
            extra = spec[1] if len(spec) > 1 else {}
            if isinstance(kind, list):
                out[name] = extra.get("default", kind[0])
            elif kind in ("INT", "FLOAT", "STRING", "BOOLEAN"):
                out[name] = extra["default"]
    return out


# --------------------------------------------------------------------------- running a node


def _settle(out: Any) -> Any:
    return asyncio.run(out) if inspect.iscoroutine(out) else out


def run_node(node_id: str, **inputs):
    """Call node ``node_id``'s FUNCTION with exactly ``inputs`` (awaited); its raw return value."""
    cls = load_pack().NODE_CLASS_MAPPINGS[node_id]
    return _settle(getattr(cls(), cls.FUNCTION)(**inputs))


def call(cls, **given):
    """Call a node as ComfyUI does: every widget filled (defaults unless given), keyword arguments,
    awaited."""
    declared = {n for s in ("required", "optional", "hidden") for n in (cls.INPUT_TYPES().get(s) or {})}
    unknown = set(given) - declared
    assert not unknown, f"not inputs of {cls.__name__}: {unknown}"
    kwargs = {**widget_defaults(cls), **given}
    result = _settle(getattr(cls(), cls.FUNCTION)(**kwargs))
    assert isinstance(result, tuple) and len(result) == len(cls.RETURN_TYPES)
    return result


def img2img(image, **widgets):
    """The Img2Img node at its defaults, 128x128, a fixed prompt; ``widgets`` override any of them."""
    inputs = defaults("PPInfraImg2Img")
    inputs.update(prompt="a lighthouse at dusk", width=128, height=128)
    inputs.update(widgets)
    return run_node("PPInfraImg2Img", image=image, **inputs)


def run_img2img(**given):
    """The Img2Img node through ``call``: SD 1.5, a red picture, seed 7, node id "7" unless given."""
    params = dict(model_name=SD15, prompt="a lighthouse at dawn", image=solid(RED), seed=7, unique_id="7")
    params.update(given)
    return call(__getattr__("IMG2IMG"), **params)


class Pack:
    """Runs a job through the nodes (``__init__.py``'s ``NODE_CLASS_MAPPINGS``), as ComfyUI does.

    The benchmark's harness: the model names and prompt are the caller's (``bench/run.py``).
    """

    def __init__(
        self,
        checkpoint: str = SD15,
        controlnet_model: str = "control_v11p_sd15_canny",
        ip_adapter_model: str = "ip-adapter_sd15.bin",
        prompt: str = "a lighthouse at dusk",
    ) -> None:
        self.nodes: Dict[str, Any] = dict(load_pack().NODE_CLASS_MAPPINGS)
        self.level = "nodes"
        self.checkpoint, self.controlnet_model = checkpoint, controlnet_model
        self.ip_adapter_model, self.prompt = ip_adapter_model, prompt

    def run_node(self, node_id: str, **inputs: Any) -> Tuple[Any, ...]:
        """The node's outputs; a ``{"ui": ..., "result": (...)}`` answer gives its ``result``."""
        cls = self.nodes[node_id]
        out = _settle(getattr(cls(), cls.FUNCTION)(**inputs))
        if isinstance(out, dict):
            out = out["result"]
        return out

    def job(
        self,
        image: Any,
        *,
        width: int,
        height: int,
        image_num: int,
        controlnet: Any = None,
        ip_adapter: Any = None,
        seed: int = 42,
    ) -> Any:
        """Run one job from tensors to tensors; returns the output IMAGE tensor."""
        optional: Dict[str, Any] = {}
        if controlnet is not None:
            optional["controlnet"] = self.run_node(
                "PPInfraControlNetUnit",
                image=controlnet,
                model_name=self.controlnet_model,
                strength=1.0,
                preprocessor="canny",
                guidance_start=0.0,
                guidance_end=1.0,
            )[0]
        if ip_adapter is not None:
            optional["ip_adapter"] = self.run_node(
                "PPInfraIPAdapter", image=ip_adapter, model_name=self.ip_adapter_model, strength=0.5
            )[0]
        out = self.run_node(
            "PPInfraImg2Img",
            image=image,
            model_name=self.checkpoint,
            prompt=self.prompt,
            negative_prompt="",
            width=width,
            height=height,
            image_num=image_num,
            steps=20,
            guidance_scale=7.5,
            sampler_name="Euler a",
            seed=seed,
            strength=0.75,
            clip_skip=0,
            sd_vae="None",
            response_image_type="png",
            **optional,
        )
        return out[0]

    def txt2img(self, *, width: int, height: int, image_num: int, steps: int = 20, seed: int = 42) -> Any:
        """Run one txt2img job through PPInfra Txt2Img (other widgets at their defaults); the IMAGE tensor."""
        cls = self.nodes["PPInfraTxt2Img"]
        inputs = {
            **widget_defaults(cls),
            "model_name": self.checkpoint,
            "prompt": self.prompt,
            "negative_prompt": "",
            "width": width,
            "height": height,
            "image_num": image_num,
            "steps": steps,
            "guidance_scale": 7.5,
            "sampler_name": "Euler a",
            "seed": seed,
            "response_image_type": "png",
        }
        return self.run_node("PPInfraTxt2Img", **inputs)[0]

    def inpaint(
        self, image: Any, mask: Any, *, model_name: str, image_num: int, steps: int = 20, seed: int = 42
    ) -> Any:
        """Run one job through PPInfra Inpaint (IMAGE + MASK in, other widgets at their defaults);
        the IMAGE tensor."""
        cls = self.nodes["PPInfraInpaint"]
        inputs = {
            **widget_defaults(cls),
            "model_name": model_name,
            "prompt": self.prompt,
            "negative_prompt": "",
            "image_num": image_num,
            "steps": steps,
            "guidance_scale": 7.5,
            "sampler_name": "Euler a",
            "seed": seed,
            "response_image_type": "png",
        }
        return self.run_node("PPInfraInpaint", image=image, mask=mask, **inputs)[0]


# --------------------------------------------------------------------------- IMAGE tensors and results


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth gradient with texture and noise: compresses like a photo, not like flat colour."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(x / 37.0 + seed) * np.cos(y / 53.0)
    g = (x + y) / float(width + height)
    b = 0.5 + 0.5 * np.sin((x - y) / 71.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 0.06, size=(height, width, 3))
    return np.clip(img, 0, 1).astype(np.float32)


def photo(batch: int = 1, size: int = 128, seed: int = 0):
    """An IMAGE tensor of ``batch`` photo-like ``size`` x ``size`` pictures."""
    import torch

    return torch.from_numpy(np.stack([photo_like(size, size, seed + i) for i in range(batch)]))


def solid(color, b: int = 1, h: int = 64, w: int = 96):
    """An IMAGE tensor of ``b`` pictures in one flat colour."""
    import torch

    return torch.tensor(color, dtype=torch.float32).view(1, 1, 1, 3).expand(b, h, w, 3).clone()


def batch(*colors, h: int = 64, w: int = 96):
    """An IMAGE batch with one flat picture per colour."""
    import torch

    return torch.cat([solid(c, 1, h, w) for c in colors])


def decode_b64(data: str):
    """A base64 image (as sent on the wire) as an RGB PIL image."""
    from PIL import Image

    im = Image.open(io.BytesIO(base64.b64decode(data)))
    im.load()
    return im.convert("RGB")


def dominant(im_or_array) -> int:
    """The strongest channel of a picture: 0 red, 1 green, 2 blue."""
    arr = np.asarray(im_or_array, dtype=np.float32)
    return int(np.argmax(arr.reshape(-1, 3).mean(axis=0)))


def write_fresh_model_cache(cache_dir: str, base_url: str) -> None:
    """A fresh model cache, so building dropdowns starts no background refresh against the sandbox."""
    from ppinfra.models import FALLBACK_MODELS, FILTERED_TYPES, ModelCatalog, ModelInfo

    cat = ModelCatalog(None, cache_dir=cache_dir, base_url=base_url)
    for model_type, entries in FALLBACK_MODELS.items():
        cat._write_cache(model_type, [ModelInfo(n, model_type, x) for n, x in entries])
    for listed, (model_type, _) in FILTERED_TYPES.items():  # the filtered lists (inpainting checkpoints) too
        cat._write_cache(listed, [ModelInfo(n, model_type, x) for n, x in FALLBACK_MODELS.get(listed, [])])


# --------------------------------------------------------------------------- ComfyUI stand-ins


class FakeComfy:
    """Stand-ins for comfy.model_management, comfy.utils, server and folder_paths (``.modules``)."""

    def __init__(self, user_dir: str) -> None:
        self.flag = False
        self.lock = threading.RLock()
        self.progress: List[tuple] = []
        self.texts: List[tuple] = []
        self.user_dir = user_dir

        class InterruptProcessingException(Exception):
            pass

        self.Interrupt = InterruptProcessingException
        fake = self

        mm = types.ModuleType("comfy.model_management")
        mm.InterruptProcessingException = InterruptProcessingException

        def processing_interrupted():
            with fake.lock:
                return fake.flag

        def throw_exception_if_processing_interrupted():
            with fake.lock:
                if fake.flag:
                    fake.flag = False  # ComfyUI's own function clears the flag: the bridge must not use it
                    raise InterruptProcessingException()

        mm.processing_interrupted = processing_interrupted
        mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted

        utils = types.ModuleType("comfy.utils")

        class ProgressBar:
            def __init__(self, total, node_id=None):
                self.total, self.node_id = total, node_id

            def update_absolute(self, value, total=None, preview=None):
                if total is not None:
                    self.total = total
                throw_exception_if_processing_interrupted()  # as ComfyUI's progress hook does
                fake.progress.append((self.node_id, value, self.total))

        utils.ProgressBar = ProgressBar

        comfy = types.ModuleType("comfy")
        comfy.__path__ = []
        comfy.model_management = mm
        comfy.utils = utils

        server = types.ModuleType("server")

        class PromptServer:
            instance: Optional["PromptServer"] = None

            def send_progress_text(self, text, node_id, sid=None):
                fake.texts.append((node_id, text))

        PromptServer.instance = PromptServer()
        server.PromptServer = PromptServer

        folder_paths = types.ModuleType("folder_paths")
        folder_paths.get_user_directory = lambda: fake.user_dir

        self.modules = {
            "comfy": comfy,
            "comfy.model_management": mm,
            "comfy.utils": utils,
            "server": server,
            "folder_paths": folder_paths,
        }

    def interrupt(self) -> None:
        with self.lock:
            self.flag = True
