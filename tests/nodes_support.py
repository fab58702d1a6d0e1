"""Shared by the node tests: the pack loaded as ComfyUI loads it, widget defaults, image builders,
small stand-ins for the ComfyUI modules the bridge imports, and the fixtures that use them.

Inputs are built from ``INPUT_TYPES`` (defaults for every widget), the method
named by ``FUNCTION`` is called with keyword arguments and awaited when it is a
coroutine. ComfyUI itself is not installed here: the ``comfy`` fixture puts
small stand-ins for the few ComfyUI modules the bridge imports into
``sys.modules`` (interrupt flag, progress bar whose hook clears the flag like
ComfyUI's does, status text, user directory).
"""
from __future__ import annotations

import asyncio
import base64
import importlib
import inspect
import io
import sys
import threading
import types
from typing import Any, Dict, List

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import PACK_NAME, load_pack

pack = load_pack()
NODES = pack.NODE_CLASS_MAPPINGS
errors = importlib.import_module(f"{PACK_NAME}.ppinfra.errors")
images_mod = importlib.import_module(f"{PACK_NAME}.ppinfra.images")
options = importlib.import_module(f"{PACK_NAME}.nodes.widgets")
catalog_mod = importlib.import_module(f"{PACK_NAME}.nodes.catalog")

REAL_REFRESH_SOON = options.refresh_soon
IMG2IMG = NODES["PPInfraImg2Img"]
CONTROLNET = NODES["PPInfraControlNetUnit"]
LORAS = NODES["PPInfraLoraStack"]
EMBEDDING = NODES["PPInfraEmbedding"]
IP_ADAPTER = NODES["PPInfraIPAdapter"]

SD15 = "dreamshaper_8_93211.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


# --------------------------------------------------------------------------- helpers

def widget_defaults(cls) -> Dict[str, Any]:
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


def call(cls, **given):
    """Call a node as ComfyUI does: every widget filled (defaults unless given), keyword arguments, awaited."""
    declared = {n for s in ("required", "optional", "hidden") for n in (cls.INPUT_TYPES().get(s) or {})}
    unknown = set(given) - declared
    assert not unknown, f"not inputs of {cls.__name__}: {unknown}"
    kwargs = {**widget_defaults(cls), **given}
    result = getattr(cls(), cls.FUNCTION)(**kwargs)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    assert isinstance(result, tuple) and len(result) == len(cls.RETURN_TYPES)
    return result


def solid(color, b: int = 1, h: int = 64, w: int = 96) -> torch.Tensor:
    return torch.tensor(color, dtype=torch.float32).view(1, 1, 1, 3).expand(b, h, w, 3).clone()


def batch(*colors, h: int = 64, w: int = 96) -> torch.Tensor:
    return torch.cat([solid(c, 1, h, w) for c in colors])


def decode_b64(data: str) -> Image.Image:
    im = Image.open(io.BytesIO(base64.b64decode(data)))
    im.load()
    return im.convert("RGB")


def dominant(im_or_array) -> int:
    arr = np.asarray(im_or_array, dtype=np.float32)
    return int(np.argmax(arr.reshape(-1, 3).mean(axis=0)))


def run_img2img(**given):
    params = dict(model_name=SD15, prompt="a lighthouse at dawn", image=solid(RED), seed=7, unique_id="7")
    params.update(given)
    return call(IMG2IMG, **params)


# --------------------------------------------------------------------------- fixtures

class FakeComfy:
    """Stand-ins for comfy.model_management, comfy.utils, server and folder_paths."""

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
            instance = None

            def send_progress_text(self, text, node_id, sid=None):
                fake.texts.append((node_id, text))

        PromptServer.instance = PromptServer()
        server.PromptServer = PromptServer

        folder_paths = types.ModuleType("folder_paths")
        folder_paths.get_user_directory = lambda: fake.user_dir

        self.modules = {"comfy": comfy, "comfy.model_management": mm, "comfy.utils": utils,
                        "server": server, "folder_paths": folder_paths}

    def interrupt(self) -> None:
        with self.lock:
            self.flag = True


@pytest.fixture(autouse=True)
def no_background_refresh(monkeypatch):
    """Dropdown builds would start model-list refreshes against the sandbox; only the refresh test wants one."""
    monkeypatch.setattr(options, "refresh_soon", lambda: None)


@pytest.fixture
def comfy(monkeypatch, tmp_path):
    fake = FakeComfy(str(tmp_path / "user"))
    for name, module in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return fake


@pytest.fixture
def env(sandbox, isolated_env, monkeypatch, api_key):
    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("PPINFRA_API_KEY", api_key)
    return sandbox


