"""What a run may cost, before it runs: an *estimate* from a third-party copy of the provider's price formula.

No API page states a per-call price (SIBLINGS.md, "Prices"). The formulas in
:data:`ppinfra.endpoints.ENDPOINTS` (``Endpoint.price(width, height, work)``,
USD per image) come from a public copy of Novita's website pricing code [3P];
every figure shown to a user says "estimate" and names that source. The
account balance (``GET /v3/user``) is the truth.

One function serves the editor (``GET /ppinfra/price``) and anything else that
wants a figure: :func:`estimate_price`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from .endpoints import ENDPOINTS
from .errors import ValidationError
from .limits import HIRES_MAX_SIDE

# The input's size is unknown until the graph runs (img2img at width/height 0, inpainting, upscale):
# the estimate is then given for an input of this size, and says so.
ASSUMED_INPUT: Tuple[int, int] = (512, 512)
SOURCE = (
    "Estimate from a third-party copy of Novita's website pricing code (the API pages state no per-call "
    "price); your balance is the truth."
)
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class PriceEstimate:
    """``usd`` for one ``per`` (``"run"`` for txt2img,
    ``"input image"`` for the endpoints that take images)."""

    endpoint: str
    usd: float
    per: str
    width: int
    height: int
    work: float
    images: int
    assumed_input: bool
    source: str = SOURCE

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _number(
    values: Mapping[str, Any], name: str, default: float, low: float, high: float, integer: bool = True
) -> float:
    raw = values.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValidationError(name, "a number", raw) from None
    if not math.isfinite(value) or not low <= value <= high or (integer and not value.is_integer()):
        kind = "a whole number" if integer else "a number"
        raise ValidationError(name, f"{kind} in [{low:g}, {high:g}]", raw)
    return int(value) if integer else value


def _flag(values: Mapping[str, Any], name: str) -> bool:
    raw = values.get(name)
    return raw is True or str(raw).strip().lower() in _TRUE


def estimate_price(endpoint: str, values: Mapping[str, Any]) -> PriceEstimate:
    """The estimated USD of one run (txt2img) or one input image (the others), from a node's widget values.

    ``values`` holds widget values (numbers, or the strings of a query):
    ``width``, ``height``, ``steps``, ``image_num``, ``scale_factor`` and, for
    txt2img, ``hires_fix`` with ``hires_target_width``/``hires_target_height``
    (the estimate then prices the final size). A width or height of 0 or
    absent on an endpoint that takes an image prices :data:`ASSUMED_INPUT`.
    Raises :class:`ValidationError` for a value that is not a number in range.
    """
    ep = ENDPOINTS.get(endpoint)
    if ep is None:
        raise ValidationError("endpoint", f"one of {', '.join(ENDPOINTS)}", endpoint)
    limits = ep.limits
    takes_image = endpoint != "txt2img"

    def lim(field: str) -> Optional[Any]:
        return limits.get(f"request.{field}")

    if endpoint == "upscale":
        scale = lim("scale_factor")
        work = _number(values, "scale_factor", scale.default, scale.widget_min(), scale.max, integer=False)
        images = 1
    else:
        steps = lim("steps")
        work = _number(values, "steps", steps.default, steps.min, steps.max)
        num = lim("image_num")
        images = _number(values, "image_num", num.default, num.min, num.max)
    size_lim = lim("width")
    default_w = 0 if size_lim is None or takes_image else size_lim.default
    default_h = 0 if size_lim is None or takes_image else lim("height").default
    high = size_lim.max if size_lim is not None else HIRES_MAX_SIDE
    low = 0 if takes_image else size_lim.min
    width = _number(values, "width", default_w, low, high)
    height = _number(values, "height", default_h, low, high)
    if endpoint == "txt2img" and _flag(values, "hires_fix"):
        tw, th = lim("hires_fix.target_width"), lim("hires_fix.target_height")
        width = _number(values, "hires_target_width", tw.default, tw.min, tw.max)
        height = _number(values, "hires_target_height", th.default, th.min, th.max)
    assumed = takes_image and not (width and height)
    if assumed:
        width, height = ASSUMED_INPUT
    usd = ep.price(int(width), int(height), float(work)) * int(images)
    return PriceEstimate(
        endpoint=endpoint,
        usd=usd,
        per="input image" if takes_image else "run",
        width=int(width),
        height=int(height),
        work=float(work),
        images=int(images),
        assumed_input=assumed,
    )
