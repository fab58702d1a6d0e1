"""What the real backend makes of a submit body before it checks it (the sandbox's default, lenient mode).

The provider's error body and its string-typed 64-bit numbers are the marks
of a go-kratos/protobuf service, whose JSON decoding (protojson with
``DiscardUnknown``) ignores unknown fields at every level, treats ``null``
as "not set" and reads numbers sent as strings. The provider's own SDK
relies on all three (docs/api.md, "What the real service accepts"): it sends
``extra.enterprise_plan``, ``custom_storage``, a stray ``request.extra`` and
``null`` for every optional field it does not set.

Which fields exist is each endpoint's documented shape (:mod:`.shapes`).
:func:`normalise` applies exactly that, plus one habit of the SDK (booleans in
inpainting's 0/1 integer fields, read as 1/0), and nothing more; the checks of the
page (ranges, enums, counts, images) then run unchanged on the result, so the
lenient mode still refuses everything the page forbids. Strict mode skips
this step.
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, Optional

from ..limits import ENDPOINT_LIMITS, Limit
from .shapes import BODIES, Shape

_INT = re.compile(r"[-+]?[0-9]+")


def normalise(body: Any, endpoint: str = "img2img") -> Any:
    """``body`` as the real service reads it for ``endpoint``: unknown fields and nulls dropped,
    numeric strings parsed.

    Anything of the wrong JSON type is left as it is, for the checks to refuse.
    """
    return _object(body, BODIES[endpoint], "", ENDPOINT_LIMITS[endpoint])


def _object(value: Any, shape: Shape, path: str, limits: Dict[str, Limit]) -> Any:
    if not isinstance(value, dict):
        return value
    out: Dict[str, Any] = {}
    for key, item in value.items():
        if key not in shape.fields or item is None:
            continue  # unknown field, or null = not set
        sub = shape.fields[key]
        child = f"{path}.{key}" if path else key
        if isinstance(sub, Shape):
            out[key] = _object(item, sub, child, limits)
        elif isinstance(sub, tuple):
            out[key] = (
                [_object(x, sub[0], child + "[]", limits) for x in item] if isinstance(item, list) else item
            )
        else:
            out[key] = _scalar(item, limits.get(child))
    return out


def _scalar(value: Any, limit: Optional[Limit]) -> Any:
    """A string holding a number, read as one where the field is numeric (protojson reads int64 that way).

    A JSON boolean in a 0/1 integer field (inpainting's ``inpainting_full_res``,
    ``inpainting_mask_invert``) reads as 1 or 0: the provider's Python SDK sends
    booleans there, the page documents integers, and the SDK works (inferred).
    """
    if limit is None:
        return value
    if isinstance(value, bool) and limit.kind == "int" and (limit.min, limit.max) == (0, 1):
        return int(value)
    if not isinstance(value, str) or limit.kind not in ("int", "float"):
        return value
    text = value.strip()
    if limit.kind == "int":
        return int(text) if _INT.fullmatch(text) else value
    try:
        number = float(text)
    except ValueError:
        return value
    return number if math.isfinite(number) else value
