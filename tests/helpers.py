"""Small builders shared by the tests."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def png_b64(width: int = 64, height: int = 48, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth gradient with texture and noise: compresses like a photo, not like flat colour."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(x / 37.0 + seed) * np.cos(y / 53.0)
    g = (x + y) / float(width + height)
    b = 0.5 + 0.5 * np.sin((x - y) / 71.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 0.06, size=(height, width, 3))
    return np.clip(img, 0, 1).astype(np.float32)


def base_request(**overrides):
    from ppinfra.request import Img2ImgRequest

    fields = dict(model_name="dreamshaper_8_93211.safetensors", image_base64=png_b64(), prompt="a cat",
                  width=512, height=512)
    fields.update(overrides)
    return Img2ImgRequest(**fields)
