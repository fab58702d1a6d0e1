"""ComfyUI MASKs as the inpainting API wants them: white-on-black ``L`` images the size of the input image.

A ComfyUI ``MASK`` is a float tensor ``[B, H, W]`` (or ``[H, W]``), 1.0 where
the graph wants change. The API repaints white (255) and keeps black (0)
(SIBLINGS.md, "Mask polarity": inferred), so 1.0 becomes 255 and grey values
stay grey. A mask of another size than the image is resized to it: bilinear,
then thresholded at 0.5, so its edge stays where it was and no grey seam appears
where nearest-neighbour would leave stair steps; the node says so.
"""

from __future__ import annotations

from typing import Any, List, Tuple

from ..ppinfra.errors import ValidationError

FIELD = "mask"
THRESHOLD = 0.5


def mask_batch(mask: Any) -> Any:
    """The mask as a float numpy array ``[B, H, W]`` in 0..1 (``[H, W]`` and ``[B, H, W, 1]`` accepted)."""
    import numpy as np

    arr = (
        mask.detach().cpu().float().numpy() if hasattr(mask, "detach") else np.asarray(mask, dtype=np.float32)
    )
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValidationError(FIELD, "a MASK of shape [B, H, W] or [H, W]", f"shape {list(arr.shape)}")
    return np.nan_to_num(np.clip(arr, 0.0, 1.0))


def to_pil_masks(mask: Any, batch: int, size: Tuple[int, int]) -> Tuple[List[Any], List[str]]:
    """``(L-mode masks, notes)``: one mask (used for every image) or ``batch`` of them, each ``size`` (w, h).

    Refuses a mask batch that is neither 1 nor ``batch``, naming both batches.
    """
    import numpy as np
    from PIL import Image

    arr = mask_batch(mask)
    n = arr.shape[0]
    if n not in (1, batch):
        raise ValidationError(
            FIELD,
            f"a batch of 1 mask (used for every image) or {batch} (one per image of the "
            f"image batch of {batch})",
            f"a batch of {n}",
            "make the mask batch match the image batch, or use one mask",
        )
    width, height = size
    notes: List[str] = []
    out = []
    for item in arr:
        h, w = item.shape
        if (w, h) != (width, height):
            if not notes:
                notes.append(
                    f"mask is {w}x{h} but the image is {width}x{height}: resized to the image "
                    f"(bilinear, then thresholded at {THRESHOLD})"
                )
            resized = Image.fromarray(item.astype(np.float32)).resize((width, height), Image.BILINEAR)
            item = (np.asarray(resized) >= THRESHOLD).astype(np.float32)
        out.append(Image.fromarray(np.round(item * 255.0).astype(np.uint8)))
    return out, notes
