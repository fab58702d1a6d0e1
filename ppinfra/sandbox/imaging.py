"""Synthetic result images: the input, resized and colour-graded per seed. Not diffusion.

Each result visibly derives from the input image (so a test can tell a wiring
mistake from a correct round trip) and differs by seed and by image index.
Everything is vectorised and encoded at the fastest settings, because the
tests run many tasks on slow machines.
"""
from __future__ import annotations

import io
import math
from typing import List

import numpy as np
from PIL import Image

CONTENT_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}


def render_results(source: Image.Image, width: int, height: int, seed: int, count: int,
                   image_type: str) -> List[bytes]:
    """``count`` encoded images of exactly ``width`` x ``height``; image ``i`` uses seed ``seed + i``."""
    base = np.asarray(source.convert("RGB").resize((width, height), Image.BILINEAR), dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    return [encode(_grade(base, xs, ys, seed + i), image_type) for i in range(count)]


def _grade(base: np.ndarray, xs: np.ndarray, ys: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gain = rng.uniform(0.8, 1.2, 3).astype(np.float32)
    lift = rng.uniform(-18.0, 18.0, 3).astype(np.float32)
    # A faint seed-dependent stripe pattern: it keeps the input recognisable
    # while making every seed, and every index of a batch, measurably different.
    angle = rng.uniform(0.0, math.pi)
    period = rng.uniform(16.0, 80.0)
    phase = rng.uniform(0.0, 2 * math.pi)
    k = np.float32(2 * math.pi / period)
    wave = np.sin(xs * (k * np.float32(math.cos(angle))) + ys * (k * np.float32(math.sin(angle))) + phase)
    out = base * gain + lift
    out += (10.0 * wave)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def encode(pixels: np.ndarray, image_type: str) -> bytes:
    """Encode an RGB uint8 array as ``png``, ``webp`` or ``jpeg`` with the fastest settings."""
    buf = io.BytesIO()
    img = Image.fromarray(pixels, "RGB")
    if image_type == "png":
        img.save(buf, "PNG", compress_level=1)
    elif image_type == "webp":
        img.save(buf, "WEBP", quality=80, method=0)
    elif image_type == "jpeg":
        img.save(buf, "JPEG", quality=90)
    else:
        raise ValueError(f"unsupported image type {image_type!r}")
    return buf.getvalue()
