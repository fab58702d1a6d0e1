"""Synthetic result images, one recipe per endpoint. Not diffusion.

- img2img: the input resized to the requested size and colour-graded per seed.
- txt2img: a seed-determined gradient, graded the same way, at the requested
  size (the hires fix target size when one is set); with a transparent
  background, PNG with alpha 0 outside a centred ellipse.
- inpainting: the input with ONLY the masked pixels graded (mask > 127 is
  repainted, or <= 127 with ``inpainting_mask_invert`` 1); every other pixel is
  the input's, byte for byte in a PNG. ``mask_blur`` and the full-resolution
  options are accepted and not simulated, so the change stays checkable.
- upscale: the input resized by ``scale_factor`` with Lanczos (sides rounded
  half up), one image, no seed.

Each result visibly derives from its input (so a test can tell a wiring
mistake from a correct round trip) and differs by seed and by image index.
Everything is vectorised and encoded at the fastest settings, because the
tests run many tasks on slow machines.
"""

from __future__ import annotations

import io
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

CONTENT_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}


def render_results(
    source: Image.Image, width: int, height: int, seed: int, count: int, image_type: str
) -> List[bytes]:
    """``count`` encoded images of exactly ``width`` x ``height``; image ``i`` uses seed ``seed + i``."""
    base = np.asarray(source.convert("RGB").resize((width, height), Image.BILINEAR), dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    return [encode(_grade(base, xs, ys, seed + i), image_type) for i in range(count)]


def render_txt2img(
    width: int, height: int, seed: int, count: int, image_type: str, transparent: bool = False
) -> List[bytes]:
    """``count`` images of ``width`` x ``height`` drawn from the seed alone; image ``i`` uses ``seed + i``."""
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    out = []
    for i in range(count):
        rng = np.random.default_rng([seed + i, 1])
        a, b = rng.uniform(30, 225, (2, 3)).astype(np.float32)
        t = ((xs / max(width - 1, 1) + ys / max(height - 1, 1)) / 2)[..., None]
        pixels = _grade(a + (b - a) * t, xs, ys, seed + i)
        if transparent:
            inside = ((xs - width / 2) / (width / 2)) ** 2 + ((ys - height / 2) / (height / 2)) ** 2 <= 1
            pixels = np.dstack([pixels, np.where(inside, 255, 0).astype(np.uint8)])
        out.append(encode(pixels, image_type))
    return out


def render_inpainting(
    source: Image.Image, mask: Image.Image, invert: bool, seed: int, count: int, image_type: str
) -> List[bytes]:
    """``count`` copies of ``source`` with only the masked pixels graded; image ``i`` uses ``seed + i``."""
    src = np.asarray(source.convert("RGB"))
    masked = np.asarray(mask.convert("L")) > 127
    if invert:
        masked = ~masked
    height, width = masked.shape
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    base = src.astype(np.float32)
    out = []
    for i in range(count):
        pixels = src.copy()
        pixels[masked] = _grade(base, xs, ys, seed + i)[masked]
        out.append(encode(pixels, image_type))
    return out


def upscaled_size(size: Tuple[int, int], scale: float) -> Tuple[int, int]:
    """Each side times ``scale``, rounded half up."""
    return int(size[0] * scale + 0.5), int(size[1] * scale + 0.5)


def render_upscale(source: Image.Image, scale: float, image_type: str) -> List[bytes]:
    """One image: ``source`` resized by ``scale`` with Lanczos."""
    image = source.convert("RGB").resize(upscaled_size(source.size, scale), Image.LANCZOS)
    return [encode(np.asarray(image), image_type)]


Job = Callable[[int], List[bytes]]
"""Renders a task's results given its seed (the server's pick when the body sent -1)."""


def plan_results(
    endpoint: str, request: Dict[str, Any], images: Dict[str, Image.Image], image_type: str
) -> Tuple[int, int, int, Job]:
    """(width, height, count, job) of a validated submit: the result size, how many,
    and how to render them."""
    source: Optional[Image.Image] = images.get("request.image_base64")
    count = request.get("image_num", 1)
    if endpoint == "txt2img":
        hires = request.get("hires_fix")
        w, h = (
            (hires["target_width"], hires["target_height"])
            if hires
            else (request["width"], request["height"])
        )
        transparent = bool(request.get("enable_transparent_background"))
        return w, h, count, lambda seed: render_txt2img(w, h, seed, count, image_type, transparent)
    if endpoint == "inpainting":
        mask, invert = images["request.mask_image_base64"], request.get("inpainting_mask_invert") == 1
        return (
            *source.size,
            count,
            lambda seed: render_inpainting(source, mask, invert, seed, count, image_type),
        )
    if endpoint == "upscale":
        scale = request["scale_factor"]
        return (*upscaled_size(source.size, scale), 1, lambda seed: render_upscale(source, scale, image_type))
    w, h = request["width"], request["height"]
    return w, h, count, lambda seed: render_results(source, w, h, seed, count, image_type)


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
    """Encode an RGB (or, for PNG, RGBA) uint8 array as ``png``,
    ``webp`` or ``jpeg`` with the fastest settings."""
    buf = io.BytesIO()
    img = Image.fromarray(pixels, "RGBA" if pixels.shape[-1] == 4 else "RGB")
    if image_type == "png":
        img.save(buf, "PNG", compress_level=1)
    elif image_type == "webp":
        img.save(buf, "WEBP", quality=80, method=0)
    elif image_type == "jpeg":
        img.save(buf, "JPEG", quality=90)
    else:
        raise ValueError(f"unsupported image type {image_type!r}")
    return buf.getvalue()
