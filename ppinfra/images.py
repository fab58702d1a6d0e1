"""The image codec: ComfyUI ``IMAGE`` tensors and PIL images to upload base64, and results back.

torch is imported only inside the functions that need it, so the CLI and the
sandbox run without it.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .errors import CorruptResultError, DownloadError, ImageInputError
from .limits import IMAGE_MAX_SIDE, LIMITS, REQUEST_BODY_MAX_BYTES, RESULT_MAX_PIXELS
from .request import EncodedImage
from .img2img_request import match_input_size as _match_input_size

log = logging.getLogger("ppinfra")

# Room left in the body for the JSON around the images (prompts, LoRAs...).
BODY_OVERHEAD = 64 * 1024
_WORKERS = max(2, min(8, (os.cpu_count() or 2)))
_DECODE_SLOTS = threading.BoundedSemaphore(_WORKERS)
_JPEG_QUALITIES = (95, 90, 85, 75)


# --------------------------------------------------------------------------- inputs


def tensor_to_pils(image: Any, field: str = "image") -> List[Image.Image]:
    """A ComfyUI ``IMAGE`` ([B,H,W,C] float 0..1, also a numpy array or one [H,W,C]) to RGB PIL images.

    Values are clamped before the cast to ``uint8`` (NaN becomes 0), alpha is
    dropped, and one channel is spread to RGB.
    """
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[0] < 1 or arr.shape[-1] not in (1, 3, 4) or min(arr.shape[1:3]) < 1:
        raise ImageInputError(
            field,
            "an IMAGE tensor [batch, height, width, channels] with 1, 3 or 4 channels",
            f"shape {tuple(arr.shape)}",
        )

    def convert(item: np.ndarray) -> Image.Image:
        if item.dtype == np.uint8:
            u8 = item
        else:
            u8 = (np.fmin(np.fmax(item.astype(np.float32, copy=False), 0.0), 1.0) * 255.0 + 0.5).astype(
                np.uint8
            )
        if u8.shape[-1] == 4:
            u8 = u8[..., :3]
        elif u8.shape[-1] == 1:
            u8 = np.repeat(u8, 3, axis=-1)
        return Image.fromarray(np.ascontiguousarray(u8), "RGB")

    if arr.shape[0] == 1:
        return [convert(arr[0])]
    # numpy releases the GIL on large arrays: a batch converts on every core.
    with ThreadPoolExecutor(max_workers=min(_WORKERS, arr.shape[0])) as pool:
        return list(pool.map(convert, arr))


def fit_within(img: Image.Image, field: str, max_side: int = IMAGE_MAX_SIDE) -> Image.Image:
    """Downscale ``img`` so each side is <= ``max_side``, keeping its aspect ratio (and say so)."""
    w, h = img.size
    if w <= max_side and h <= max_side:
        return img
    scale = max_side / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    log.warning(
        "%s is %dx%d, over the %d px limit per side: downscaled to %dx%d before upload",
        field,
        w,
        h,
        max_side,
        nw,
        nh,
    )
    return img.resize((nw, nh), Image.LANCZOS)


def match_input_size(width: int, height: int) -> Tuple[int, int]:
    """The ``width/height = 0`` rule: the input's size scaled to fit 2048, snapped to 8, at least 128."""
    return _match_input_size(width, height, LIMITS["request.width"])


# --------------------------------------------------------------------------- upload encoding policy
# Measured on 2048x2048 photo-like images (bench/upload_bench.py): a lossless
# PNG is 6.7 MB (8.9 MB as base64); JPEG with a flat quantisation table of
# step 4, no chroma subsampling and optimised Huffman tables is 2.4 MB (35%)
# at 41.7 dB PSNR. A flat table bounds the error of every DCT coefficient by
# the same step, so the PSNR hardly depends on the content: 41.8 dB even on
# heavy sensor noise, where JPEG quality 95 falls to 36 dB. WebP tops out
# near 38.7 dB (it always halves the chroma). The SD VAE alone loses 25-30 dB
# on photos, so the model cannot see the difference.
ENV_LOSSLESS = "PPINFRA_LOSSLESS_UPLOADS"
JPEG_FLAT_STEP = 4
# Below this many pixels (512x512) an image stays PNG: it costs at most ~0.8 MB.
SMALL_PIXELS = 512 * 512
# Photo-like: at least this many distinct colours in a sample of SAMPLE_PIXELS.
# Photos have tens of thousands; edge maps, line art and screenshots a few hundred.
PHOTO_MIN_COLOURS = 8192
SAMPLE_PIXELS = 65536
_FLAT_QTABLES = [[JPEG_FLAT_STEP] * 64, [JPEG_FLAT_STEP] * 64]


def lossless_forced() -> bool:
    """``PPINFRA_LOSSLESS_UPLOADS=1`` sends every upload as lossless PNG (when it fits the body cap)."""
    return os.environ.get(ENV_LOSSLESS, "").strip().lower() in ("1", "true", "yes", "on")


def is_control_map(field: str) -> bool:
    """ControlNet unit images (edge, depth, pose maps) and masks need crisp edges: never lossy by choice."""
    return field.startswith("request.controlnet.") or field.startswith("request.mask_image_base64")


def is_photo_like(img: Image.Image) -> bool:
    """Many distinct colours in an evenly spread sample (nearest-neighbour, so values are exact)."""
    w, h = img.size
    step = max(1.0, ((w * h) / SAMPLE_PIXELS) ** 0.5)
    sw, sh = max(1, int(w / step)), max(1, int(h / step))
    sample = np.asarray(img.resize((sw, sh), Image.NEAREST) if (sw, sh) != (w, h) else img, dtype=np.uint8)
    packed = (
        (sample[..., 0].astype(np.uint32) << 16) | (sample[..., 1].astype(np.uint32) << 8) | sample[..., 2]
    )
    return len(np.unique(packed)) >= min(PHOTO_MIN_COLOURS, sw * sh // 8)


def upload_format(field: str, img: Image.Image, lossless: Optional[bool] = None) -> str:
    """``"png"`` or ``"jpeg"``: what :func:`encode_uploads` sends ``img`` as when the body cap allows it.

    JPEG only for a large photo-like image that is not a control map, unless
    lossless is forced (``lossless=True`` or :data:`ENV_LOSSLESS`).
    """
    if lossless is None:
        lossless = lossless_forced()
    w, h = img.size
    if lossless or is_control_map(field) or w * h < SMALL_PIXELS:
        return "png"
    return "jpeg" if is_photo_like(img) else "png"


def _b64(buf: io.BytesIO, size: Tuple[int, int]) -> EncodedImage:
    # The size travels with the upload: validation never decodes it again.
    return EncodedImage(base64.b64encode(buf.getbuffer()).decode("ascii"), size[0], size[1], buf.tell())


def _flat_jpeg(img: Image.Image) -> io.BytesIO:
    buf = io.BytesIO()
    try:
        img.save(buf, format="JPEG", qtables=_FLAT_QTABLES, subsampling=0, optimize=True)
    except OSError:
        # Pillow sizes the optimise buffer at 2 bytes a pixel; near-noise images
        # need more ("Suspension not allowed here"): write them unoptimised.
        buf = io.BytesIO()
        img.save(buf, format="JPEG", qtables=_FLAT_QTABLES, subsampling=0)
    return buf


def _encode_one(img: Image.Image, field: str, budget: int, lossless: Optional[bool] = None) -> EncodedImage:
    """Encode by :func:`upload_format`, within ``budget`` file bytes; over it, JPEG of falling quality."""
    # Alpha is dropped the way ComfyUI's LoadImage does (colour channels kept):
    # the API takes RGB, and JPEG could not carry it anyway.
    img = fit_within(img.convert("RGB") if img.mode != "RGB" else img, field)
    w, h = img.size
    if upload_format(field, img, lossless) == "jpeg":
        buf = _flat_jpeg(img)
        if buf.tell() <= budget:
            log.debug("%s sent as JPEG, flat step %d (%d bytes)", field, JPEG_FLAT_STEP, buf.tell())
            return _b64(buf, (w, h))
    # A photo-like PNG rarely compresses below half its raw size: skip PNG when it cannot fit.
    elif w * h * 3 // 2 <= budget:
        buf = io.BytesIO()
        img.save(
            buf, format="PNG", compress_level=1, compress_type=3
        )  # zlib Z_RLE: faster and smaller on photos
        if buf.tell() <= budget:
            return _b64(buf, (w, h))
    for quality in _JPEG_QUALITIES:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
        if buf.tell() <= budget:
            log.info(
                "%s sent as JPEG quality %d (%d bytes) to stay under the request size limit",
                field,
                quality,
                buf.tell(),
            )
            return _b64(buf, (w, h))
    raise ImageInputError(
        field,
        f"an image that encodes to at most {budget} bytes",
        f"{w}x{h} that needs {buf.tell()} bytes even as JPEG quality {_JPEG_QUALITIES[-1]}",
        "send a smaller image or fewer images in one request",
    )


def encode_uploads(
    items: Sequence[Tuple[str, Image.Image]],
    body_limit: int = REQUEST_BODY_MAX_BYTES,
    *,
    lossless: Optional[bool] = None,
) -> List[EncodedImage]:
    """Encode images for one request (field path, image) to raw base64 with their sizes, concurrently.

    The format follows :func:`upload_format` (the field path tells a control
    map from a photo). Together they fit ``body_limit`` (base64 counted):
    each image gets an equal share of the budget. ``lossless=None`` reads
    :data:`ENV_LOSSLESS`.
    """
    if not items:
        return []
    if lossless is None:
        lossless = lossless_forced()
    share_b64 = (body_limit - BODY_OVERHEAD) // len(items)
    budget = share_b64 * 3 // 4
    if len(items) == 1:
        return [_encode_one(items[0][1], items[0][0], budget, lossless)]
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(items))) as pool:
        return list(pool.map(lambda it: _encode_one(it[1], it[0], budget, lossless), items))


# --------------------------------------------------------------------------- results


def _open_checked(
    blob: bytes, index: int, task_id: Optional[str], max_pixels: int = RESULT_MAX_PIXELS
) -> Image.Image:
    """``index`` counts from 0; messages count from 1, as the client's do."""
    try:
        im = Image.open(io.BytesIO(blob))
    except Exception:
        raise CorruptResultError(
            f"Result image {index + 1} is not a readable image ({len(blob)} bytes).",
            endpoint="download",
            task_id=task_id,
        ) from None
    w, h = im.size
    if w * h > max_pixels:
        most = (
            f"the documented maximum of {IMAGE_MAX_SIDE}x{IMAGE_MAX_SIDE}"
            if max_pixels == RESULT_MAX_PIXELS
            else f"the {max_pixels} pixels this request can produce"
        )
        raise DownloadError(
            f"Result image {index + 1} is {w}x{h}, more than {most} pixels: refused.",
            endpoint="download",
            task_id=task_id,
        )
    return im


class ResultDecoder:
    """Decodes result files straight into the slots of one preallocated ``[N,H,W,3]`` float32 array.

    :meth:`put` may be called from several threads at once (one slot each), for
    example from the download workers as each file arrives, so decoding
    overlaps the downloads and the peak memory stays near the output's size.
    A file of another size than ``(width, height)`` is resized to it (and logged).
    """

    def __init__(self, count: int, width: int, height: int) -> None:
        self.size = (width, height)
        self.max_pixels = max(RESULT_MAX_PIXELS, width * height)
        self.array = np.empty((count, height, width, 3), dtype=np.float32)

    def put(self, slot: int, blob: bytes, task_id: Optional[str] = None, index: Optional[int] = None) -> None:
        # Each decode in flight holds a full image twice (PIL and uint8): bound them
        # to the cores so eight concurrent downloads do not mean eight such copies.
        with _DECODE_SLOTS:
            self._put(slot, blob, task_id, slot if index is None else index)

    def _put(self, slot: int, blob: bytes, task_id: Optional[str], index: int) -> None:
        if not 0 <= slot < len(self.array):
            raise DownloadError(
                f"Result image {index + 1} has no place among the {len(self.array)} expected.",
                endpoint="download",
                task_id=task_id,
            )
        im = _open_checked(blob, index, task_id, self.max_pixels)
        try:
            im.load()
        except Exception as exc:
            raise CorruptResultError(
                f"Result image {index + 1} is truncated or corrupt ({exc.__class__.__name__}).",
                endpoint="download",
                task_id=task_id,
            ) from None
        if im.mode != "RGB":
            im = im.convert("RGB")
        if im.size != self.size:
            log.warning(
                "result image %d is %dx%d, expected %dx%d: resized to match", index + 1, *im.size, *self.size
            )
            im = im.resize(self.size, Image.LANCZOS)
        np.multiply(np.asarray(im), _SCALE, out=self.array[slot])


_SCALE = np.float32(1.0 / 255.0)


def decode_results(blobs: Sequence[bytes], task_ids: Optional[Sequence[Optional[str]]] = None) -> np.ndarray:
    """Decode result files into one RGB float32 array ``[N,H,W,3]`` in 0..1, concurrently.

    The size is the first image's; ``task_ids`` (one per blob) go into any error.
    """
    if not blobs:
        raise DownloadError("No result images to decode.", endpoint="download")
    ids = list(task_ids) if task_ids is not None else [None] * len(blobs)
    w, h = _open_checked(blobs[0], 0, ids[0]).size
    decoder = ResultDecoder(len(blobs), w, h)
    if len(blobs) == 1:
        decoder.put(0, blobs[0], ids[0])
    else:
        with ThreadPoolExecutor(max_workers=min(_WORKERS, len(blobs))) as pool:
            list(pool.map(lambda i: decoder.put(i, blobs[i], ids[i]), range(len(blobs))))
    return decoder.array


def to_tensor(array: np.ndarray) -> Any:
    """A float32 ``[N,H,W,3]`` array as a torch tensor, without copying."""
    import torch

    return torch.from_numpy(array)


def decode_file_to_pil(data: bytes, field: str) -> Image.Image:
    """An image file's bytes as an RGB PIL image (used by the CLI for its inputs)."""
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception:
        raise ImageInputError(field, "a readable PNG, JPEG or WebP file", f"{len(data)} bytes") from None
    return im.convert("RGB") if im.mode != "RGB" else im
