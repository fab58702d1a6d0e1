"""Small builders and constants shared by the tests (plain functions; fixtures live in conftest.py files).

Node-level helpers (running a node, IMAGE tensors, ComfyUI stand-ins) are in the
one driver, ``tools/node_driver.py``, shared with the benchmark.
"""
from __future__ import annotations

import base64
import io
import os

import numpy as np
from PIL import Image

from tools.node_driver import photo_like  # noqa: F401 - one definition, shared with the node driver
from tools.packload import PACK_NAME, load_pack  # noqa: F401 - the pack as ComfyUI loads it

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
SANDBOX_KEY = "sk-sandbox-test-key-0123456789"
NODE_DEADLINE = 20.0  # the node's client deadline in the node suites (the default is 600 s)


def png_b64(width: int = 64, height: int = 48, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def base_request(**overrides):
    from ppinfra.request import Img2ImgRequest

    fields = dict(model_name="dreamshaper_8_93211.safetensors", image_base64=png_b64(), prompt="a cat",
                  width=512, height=512)
    fields.update(overrides)
    return Img2ImgRequest(**fields)
