"""What the real backend makes of a submit body before it checks it (the sandbox's default, lenient mode).

The provider's error body and its string-typed 64-bit numbers are the marks
of a go-kratos/protobuf service, whose JSON decoding (protojson with
``DiscardUnknown``) ignores unknown fields at every level, treats ``null``
as "not set" and reads numbers sent as strings. The provider's own SDK
relies on all three (docs/api.md, "What the real service accepts"): it sends
``extra.enterprise_plan``, ``custom_storage``, a stray ``request.extra`` and
``null`` for every optional field it does not set.

:func:`normalise` applies exactly that, and nothing more; the checks of the
page (ranges, enums, counts, images) then run unchanged on the result, so the
lenient mode still refuses everything the page forbids. Strict mode skips
this step.
"""
from __future__ import annotations

import math
import re
from typing import Any, Dict, Optional

from ..limits import LIMITS

_INT = re.compile(r"[-+]?[0-9]+")

# Documented shape: field -> nested shape (a dict), [shape] for a list of objects, or None for a leaf.
_UNIT = {"model_name": None, "image_base64": None, "strength": None, "preprocessor": None,
         "guidance_start": None, "guidance_end": None}
_SHAPE: Dict[str, Any] = {
    "extra": {"response_image_type": None},
    "request": {
        "model_name": None, "image_base64": None, "prompt": None, "width": None, "height": None,
        "image_num": None, "steps": None, "guidance_scale": None, "sampler_name": None,
        "negative_prompt": None, "sd_vae": None, "seed": None, "clip_skip": None, "strength": None,
        "controlnet": {"units": [_UNIT]},
        "loras": [{"model_name": None, "strength": None}],
        "embeddings": [{"model_name": None}],
        "ip_adapters": [{"model_name": None, "image_base64": None, "strength": None}],
    },
}


def normalise(body: Any) -> Any:
    """``body`` as the real service reads it: unknown fields and nulls dropped, numeric strings parsed.

    Anything of the wrong JSON type is left as it is, for the checks to refuse.
    """
    return _object(body, _SHAPE, "")


def _object(value: Any, shape: Dict[str, Any], path: str) -> Any:
    if not isinstance(value, dict):
        return value
    out: Dict[str, Any] = {}
    for key, item in value.items():
        if key not in shape or item is None:
            continue  # unknown field, or null = not set
        sub = shape[key]
        child = f"{path}.{key}" if path else key
        if isinstance(sub, dict):
            out[key] = _object(item, sub, child)
        elif isinstance(sub, list):
            out[key] = [_object(x, sub[0], child + "[]") for x in item] if isinstance(item, list) else item
        else:
            out[key] = _number(item, LIMITS.get(child))
    return out


def _number(value: Any, limit: Optional[Any]) -> Any:
    """A string holding a number, read as one where the field is numeric (protojson reads int64 that way)."""
    if not isinstance(value, str) or limit is None or limit.kind not in ("int", "float"):
        return value
    text = value.strip()
    if limit.kind == "int":
        return int(text) if _INT.fullmatch(text) else value
    try:
        number = float(text)
    except ValueError:
        return value
    return number if math.isfinite(number) else value
