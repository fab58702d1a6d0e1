"""The checks that tie fields together, per endpoint: what a per-field range cannot say.

They run in both modes, after :mod:`.validation` has checked every field on
its own, so each may assume the fields it reads are present where required
and within range. One refusal names the field, the limit and the value.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

from ..limits import ENDPOINT_LIMITS
from .catalog import is_inpainting, is_sdxl
from .errors import bad_request
from .validation import MAIN_IMAGE, ValidSubmit

MASK_IMAGE = "request.mask_image_base64"
CHECKPOINT = "request.model_name"


def _img2img(v: ValidSubmit, strict: bool) -> None:
    units = v.request.get("controlnet", {}).get("units", [])
    limits = ENDPOINT_LIMITS["img2img"]
    for i, unit in enumerate(units):
        p = f"request.controlnet.units[{i}]"
        start = unit.get("guidance_start", limits["request.controlnet.units[].guidance_start"].default)
        end = unit.get("guidance_end", limits["request.controlnet.units[].guidance_end"].default)
        if not start < end:
            raise bad_request(f"{p}.guidance_start must be below {p}.guidance_end ({end}), got {start!r}")


def _txt2img(v: ValidSubmit, strict: bool) -> None:
    req = v.request
    hires = req.get("hires_fix")
    if hires is not None:
        for side in ("width", "height"):
            if hires[f"target_{side}"] < req[side]:
                raise bad_request(
                    f"request.hires_fix.target_{side} must be >= request.{side} ({req[side]}): "
                    f"hires fix enlarges the image, got {hires[f'target_{side}']}"
                )
    checkpoint = v.models[CHECKPOINT]
    if req.get("enable_transparent_background"):
        if v.image_type != "png":
            raise bad_request(
                "request.enable_transparent_background needs extra.response_image_type 'png' "
                f"(only PNG keeps transparency), got {v.image_type!r}"
            )
        if not is_sdxl(checkpoint):
            raise bad_request(
                "request.enable_transparent_background needs an SDXL checkpoint, got "
                f"{req['model_name']!r} (base model {checkpoint['base_model']!r})"
            )
    if "refiner" in req and not is_sdxl(checkpoint):
        raise bad_request(
            f"request.refiner needs an SDXL checkpoint, got {req['model_name']!r} "
            f"(base model {checkpoint['base_model']!r})"
        )


def _inpainting(v: ValidSubmit, strict: bool) -> None:
    image, mask = v.images[MAIN_IMAGE], v.images[MASK_IMAGE]
    if mask.size != image.size:
        raise bad_request(
            f"{MASK_IMAGE} must have the resolution of request.image_base64 "
            f"({image.size[0]}x{image.size[1]}), got {mask.size[0]}x{mask.size[1]}",
            "INVALID_IMAGE_SIZE",
        )
    # The page asks for an inpainting checkpoint (filter.is_inpainting=true). The service behind it is
    # A1111-like, which inpaints with any checkpoint (worse at the seams), so the lenient sandbox takes
    # a standard one as the real service plausibly does (inferred); strict holds the client to the page.
    if strict and not is_inpainting(v.models[CHECKPOINT]):
        raise bad_request(
            f"request.model_name must name an inpainting checkpoint (filter.is_inpainting=true, "
            f"base_model_type Inpainting), got {v.request['model_name']!r}"
        )


def _upscale(v: ValidSubmit, strict: bool) -> None:
    """Everything upscale asks is per field: the model enum, (1, 4] and the 2048 px side."""


RULES: Dict[str, Callable[[ValidSubmit, bool], Any]] = {
    "img2img": _img2img,
    "txt2img": _txt2img,
    "inpainting": _inpainting,
    "upscale": _upscale,
}
