"""Photo-like synthetic images for the benchmarks (no downloads are possible here).

A photo compresses the way it does because of large smooth areas, edges at
several scales and fine sensor noise. Flat colours or pure noise would make
PNG look far better or far worse than it does on a real photo, so both the
upload-size figure and the encode times would lie.
"""

from __future__ import annotations

import numpy as np


def _value_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Smooth noise: a coarse random grid, bilinearly upsampled."""
    gh, gw = cells + 1, max(2, int(cells * width / height) + 1)
    grid = rng.random((gh, gw), dtype=np.float32)
    ys = np.linspace(0, gh - 1, height, dtype=np.float32)
    xs = np.linspace(0, gw - 1, width, dtype=np.float32)
    y0 = np.minimum(ys.astype(np.int32), gh - 2)
    x0 = np.minimum(xs.astype(np.int32), gw - 2)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    # Smoothstep so the cells do not show as a grid.
    fy = fy * fy * (3 - 2 * fy)
    fx = fx * fx * (3 - 2 * fx)
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def photo_like(width: int, height: int, seed: int = 0, grain: float = 0.012) -> np.ndarray:
    """An RGB float32 ``[H, W, 3]`` array in 0..1 that compresses like a photograph.

    Several octaves of smooth noise per channel (sky, walls, foliage), a few
    hard-edged shapes (objects), and Gaussian grain about as strong as a
    phone camera's at base ISO.
    """
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), dtype=np.float32)
    for ch in range(3):
        acc = np.zeros((height, width), dtype=np.float32)
        amp, total = 1.0, 0.0
        for cells in (3, 9, 27, 81):
            acc += amp * _value_noise(rng, height, width, cells)
            total += amp
            amp *= 0.5
        img[..., ch] = acc / total
    for _ in range(12):
        cy, cx = rng.random(2) * (height, width)
        r = rng.uniform(0.03, 0.18) * min(width, height)
        y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 1)
        x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
        yy = np.arange(y0, y1, dtype=np.float32)[:, None]
        xx = np.arange(x0, x1, dtype=np.float32)[None, :]
        inside = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
        shade = (0.85 + 0.15 * (yy - cy) / r)[..., None]
        colour = rng.random(3, dtype=np.float32)
        patch = img[y0:y1, x0:x1]
        patch[:] = np.where(inside[..., None], 0.35 * patch + 0.65 * colour * shade, patch)
    img += rng.normal(0.0, grain, size=img.shape).astype(np.float32)
    np.clip(img, 0.0, 1.0, out=img)
    return img


def photo_tensor(width: int, height: int, batch: int = 1, seed: int = 0):
    """A ComfyUI ``IMAGE`` tensor ``[B, H, W, 3]`` of photo-like images."""
    import torch

    return torch.from_numpy(np.stack([photo_like(width, height, seed + i) for i in range(batch)]))
