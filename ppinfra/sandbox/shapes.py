"""The documented body of each submit endpoint: which fields exist, which are required, how they nest.

One declaration per endpoint, read by both reading modes: :mod:`.leniency`
keeps only these fields (the real backend drops the rest), and
:mod:`.validation` refuses anything else in strict mode and checks every
leaf against ``ppinfra.limits.ENDPOINT_LIMITS[name]`` under the same
``request.loras[].strength`` key. Ranges and enums live in that table, not here.

Sources: the img2img page (docs/api.md) and SIBLINGS.md for txt2img,
inpainting and upscale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Tuple


@dataclass(frozen=True)
class Shape:
    """A JSON object: ``fields`` maps a name to None (a leaf), a :class:`Shape`, or a
    one-element tuple ``(Shape,)`` for a list of such objects; ``required`` names
    the fields that must be present."""

    fields: Dict[str, Any]
    required: FrozenSet[str]


def shape(required: Tuple[str, ...] = (), optional: Tuple[str, ...] = (), **nested: Any) -> Shape:
    """A :class:`Shape`; a nested field named in ``required`` is required too."""
    fields: Dict[str, Any] = {name: None for name in (*required, *optional)}
    fields.update(nested)
    return Shape(fields, frozenset(required))


def list_of(item: Shape) -> Tuple[Shape]:
    return (item,)


_LORA = shape(required=("model_name", "strength"))
_EMBEDDING = shape(required=("model_name",))
_UNIT = shape(
    required=("model_name", "image_base64", "strength"),
    optional=("preprocessor", "guidance_start", "guidance_end"),
)
_IP_ADAPTER = shape(required=("model_name", "image_base64", "strength"))
_SIDE = {"loras": list_of(_LORA), "embeddings": list_of(_EMBEDDING)}
_GENERATION = ("model_name", "prompt", "image_num", "steps", "guidance_scale", "sampler_name")
_GENERATION_OPTIONAL = ("negative_prompt", "sd_vae", "seed", "clip_skip")

# PPInfra documents only response_image_type. Novita's extras (webhook, NSFW options,
# custom_storage, enterprise_plan) are accepted only in lenient mode, where they are ignored.
_EXTRA = shape(optional=("response_image_type",))

_REQUESTS: Dict[str, Shape] = {
    "img2img": shape(
        required=(*_GENERATION, "image_base64", "width", "height"),
        optional=(*_GENERATION_OPTIONAL, "strength"),
        controlnet=shape(required=("units",), units=list_of(_UNIT)),
        ip_adapters=list_of(_IP_ADAPTER),
        **_SIDE,
    ),
    "txt2img": shape(
        required=(*_GENERATION, "width", "height"),
        optional=(*_GENERATION_OPTIONAL, "enable_transparent_background", "restore_faces"),
        hires_fix=shape(required=("target_width", "target_height"), optional=("strength", "upscaler")),
        refiner=shape(required=("switch_at",)),
        **_SIDE,
    ),
    "inpainting": shape(
        required=(*_GENERATION, "image_base64", "mask_image_base64"),
        optional=(
            *_GENERATION_OPTIONAL,
            "strength",
            "mask_blur",
            "inpainting_full_res",
            "inpainting_full_res_padding",
            "inpainting_mask_invert",
            "initial_noise_multiplier",
        ),
        **_SIDE,
    ),
    "upscale": shape(required=("model_name", "image_base64", "scale_factor")),
}

# extra before request: its fields are checked first, as the service reports them.
BODIES: Dict[str, Shape] = {
    name: Shape({"extra": _EXTRA, "request": req}, frozenset({"request"})) for name, req in _REQUESTS.items()
}
"""Endpoint name -> the documented shape of its whole body ``{"extra": ..., "request": ...}``."""

# Fields a client might carry over from another endpoint, and why this one refuses them (strict mode).
NOT_ACCEPTED: Dict[str, Dict[str, str]] = {
    "txt2img": {
        "controlnet": "ControlNet is img2img-only in V3",
        "ip_adapters": "IP-Adapter is img2img-only in V3",
        "image_base64": "text to image takes no input image",
    },
    "inpainting": {
        "controlnet": "inpainting takes no ControlNet",
        "ip_adapters": "inpainting takes no IP-Adapter",
        "hires_fix": "hires fix is txt2img-only",
        "refiner": "the refiner is txt2img-only",
        "width": "the result has the input image's size",
        "height": "the result has the input image's size",
    },
    "upscale": {
        "prompt": "upscale takes no prompt",
        "negative_prompt": "upscale takes no prompt",
        "seed": "upscale takes no seed",
        "image_num": "upscale returns one image",
    },
}

# Leaf fields (limit-table keys) that name a model of the catalog, and its type.
_CATALOG_FIELDS: Dict[str, str] = {
    "request.model_name": "checkpoint",
    "request.sd_vae": "vae",
    "request.loras[].model_name": "lora",
    "request.embeddings[].model_name": "textualinversion",
    "request.controlnet.units[].model_name": "controlnet",
}
# Upscale's model_name is one of three upscaler names (an enum of the limits table), not a catalog entry.
CATALOG_FIELDS: Dict[str, Dict[str, str]] = {
    name: ({} if name == "upscale" else _CATALOG_FIELDS) for name in _REQUESTS
}
# Leaf fields holding a base64 image file; decoded last, since they are the only costly checks.
IMAGE_FIELDS = ("image_base64", "mask_image_base64")
