"""Checks of a submit body (img2img, txt2img, inpainting, upscale), as the real service would refuse it.

Strict mode checks the body exactly as sent: an unknown field, a ``null``
where the page allows none, or a number sent as a string is a 400 naming the
field. Lenient mode (the default) first reads the body as the real backend
does (:mod:`.leniency`) and then runs the same checks.

Table-driven: one walk over the endpoint's documented shape (:mod:`.shapes`)
checks structure, then every leaf against ``ENDPOINT_LIMITS[endpoint]``
under the same key (``request.loras[].strength``), then the catalog names,
then decodes the images; the rules that tie fields together are in
:mod:`.rules`.

Deliberately written apart from :mod:`ppinfra.request` (it reads the same
:mod:`ppinfra.limits` table, but not the client's checker): the sandbox is the
oracle the client's own validation is tested against, so it must not share its
bugs. Every refusal names the field path, the limit and the value.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from PIL import Image

from ..limits import ENDPOINT_LIMITS, IMAGE_MAX_FILE_BYTES, IMAGE_MAX_SIDE, INPAINT_MAX_PIXELS, Limit
from .catalog import Catalog
from .errors import bad_request
from .leniency import normalise
from .shapes import BODIES, CATALOG_FIELDS, IMAGE_FIELDS, NOT_ACCEPTED, Shape

# Input image bounds per endpoint: (max side, max pixels); None = no such bound.
# img2img and upscale documented each side <= 2048; inpainting 16 megapixels.
_IMAGE_BOUNDS: Dict[str, Tuple[Optional[int], Optional[int]]] = {
    "img2img": (IMAGE_MAX_SIDE, None),
    "txt2img": (IMAGE_MAX_SIDE, None),
    "inpainting": (None, INPAINT_MAX_PIXELS),
    "upscale": (IMAGE_MAX_SIDE, None),
}
MAIN_IMAGE = "request.image_base64"


@dataclass
class ValidSubmit:
    """A body that passed every check, with its decoded images (by field path,
    e.g. ``request.image_base64``)."""

    endpoint: str
    extra: Dict[str, Any]
    request: Dict[str, Any]
    image_type: str
    seed: int  # as sent; -1 means "server picks"
    images: Dict[str, Image.Image] = field(default_factory=dict)
    models: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # field path -> catalog entry named there

    @property
    def image(self) -> Optional[Image.Image]:
        """The input image (None for txt2img)."""
        return self.images.get(MAIN_IMAGE)

    @property
    def image_num(self) -> int:
        return self.request.get("image_num", 1)  # upscale has no image_num: one result


def validate_submit(
    body: Any, catalog: Catalog, strict: bool = True, endpoint: str = "img2img"
) -> ValidSubmit:
    """Check ``body`` (parsed JSON) for ``endpoint``;
    raise a 400 :class:`SandboxHTTPError` on the first fault.

    ``strict=False`` reads it as the real service does first (unknown fields and nulls dropped,
    numeric strings parsed); the result's ``request`` is then the body as read.
    """
    from .rules import RULES  # the rules read ValidSubmit from here

    if not strict:
        body = normalise(body, endpoint)
    walk = _Walk(endpoint, catalog)
    walk.object("", body, BODIES[endpoint])
    extra = body.get("extra") or {}
    max_side, max_pixels = _IMAGE_BOUNDS[endpoint]
    images = {
        path: decode_image(path, data, max_side=max_side, max_pixels=max_pixels) for path, data in walk.images
    }
    limits = ENDPOINT_LIMITS[endpoint]
    seed_limit = limits.get("request.seed")
    valid = ValidSubmit(
        endpoint=endpoint,
        extra=extra,
        request=body["request"],
        images=images,
        models=walk.models,
        image_type=extra.get("response_image_type", limits["extra.response_image_type"].default),
        seed=body["request"].get("seed", seed_limit.default if seed_limit else 0),
    )
    RULES[endpoint](valid, strict)
    return valid


class _Walk:
    """One pass over a body and its documented shape; collects image fields and catalog entries on the way."""

    def __init__(self, endpoint: str, catalog: Catalog) -> None:
        self.endpoint = endpoint
        self.catalog = catalog
        self.limits = ENDPOINT_LIMITS[endpoint]
        self.catalog_fields = CATALOG_FIELDS[endpoint]
        self.images: List[Tuple[str, Any]] = []
        self.models: Dict[str, Dict[str, Any]] = {}

    def object(self, path: str, value: Any, shape: Shape, key: str = "") -> None:
        """``path`` is what messages show (``request.loras[0]``);
        ``key`` the limits table's (``request.loras[]``)."""
        _require_object(path or "body", value)
        self._no_unknown(path, value, shape)
        for name, sub in shape.fields.items():
            if name not in value:
                continue
            child, child_key = (f"{path}.{name}", f"{key}.{name}") if path else (name, name)
            if isinstance(sub, Shape):
                self.object(child, value[name], sub, child_key)
            elif isinstance(sub, tuple):
                items = _list(child, value[name], self.limits.get(child_key))
                for i, item in enumerate(items):
                    self.object(f"{child}[{i}]", item, sub[0], child_key + "[]")
            else:
                self.leaf(child, child_key, name, value[name])

    def leaf(self, path: str, key: str, name: str, value: Any) -> None:
        if name in IMAGE_FIELDS:
            self.images.append((path, value))
            return
        lim = self.limits.get(key)
        if lim is None:
            raise TypeError(f"{key} of {self.endpoint} has no limit in ppinfra.limits.ENDPOINT_LIMITS")
        _check(path, value, lim)
        model_type = self.catalog_fields.get(key)
        if model_type is not None and value is not None:
            self.models[path] = _known_model(path, value, model_type, self.catalog)

    def _no_unknown(self, path: str, obj: Dict[str, Any], shape: Shape) -> None:
        unknown = sorted(set(obj) - set(shape.fields))
        if unknown:
            where = f"{path}.{unknown[0]}" if path else f"body.{unknown[0]}"
            why = NOT_ACCEPTED.get(self.endpoint, {}).get(unknown[0]) if path == "request" else None
            if why:
                raise bad_request(f"{where} is not accepted by {self.endpoint} ({why})")
            hint = " (documented: " + ", ".join(shape.fields) + ")" if path == "extra" else ""
            raise bad_request(f"{where} is not a documented field{hint}")
        for key in sorted(shape.required):
            if key not in obj:
                raise bad_request(f"{path}.{key} is required" if path else f"{key} is required")


def _check(path: str, value: Any, lim: Limit) -> None:
    if value is None:
        if lim.nullable:
            return
        raise bad_request(f"{path} must not be null ({lim.describe()})")
    if lim.kind == "bool":
        if not isinstance(value, bool):  # 1, "true" and "1" are not JSON booleans
            raise bad_request(f"{path} must be a JSON boolean (true or false), got {_show(value)}")
        return
    if lim.kind == "enum":
        if not isinstance(value, str) or value not in lim.options:
            raise bad_request(f"{path} must be one of {', '.join(lim.options)}, got {_show(value)}")
        return
    if lim.kind == "str":
        if not isinstance(value, str):
            raise bad_request(f"{path} must be a string, got {_show(value)}")
        n = len(value)
        if (lim.min is not None and n < lim.min) or (lim.max is not None and n > lim.max):
            raise bad_request(f"{path} must have {lim.describe()}, got {n} characters")
        return
    if lim.kind == "int":
        # JSON 512.0 and true are not integers, even though Python would compare them equal to one.
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f"{path} must be an integer in {lim.describe()}, got {_show(value)}")
    elif lim.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad_request(f"{path} must be a number in {lim.describe()}, got {_show(value)}")
    else:
        raise TypeError(f"limit kind {lim.kind!r} of {path} cannot check a value")
    low = lim.min is not None and (value <= lim.min if lim.min_exclusive else value < lim.min)
    high = lim.max is not None and (value >= lim.max if lim.max_exclusive else value > lim.max)
    if low or high:
        raise bad_request(f"{path} must be in {lim.describe()}, got {_show(value)}")


def _known_model(path: str, name: str, model_type: str, catalog: Catalog) -> Dict[str, Any]:
    model, why_not = catalog.usable(model_type, name)
    if model is None:
        hint = "sd_name" if model_type == "checkpoint" else "sd_name_in_api"
        raise bad_request(
            f"{path} must name an available {model_type} model ({hint} from "
            f"GET /v3/model?filter.types={model_type}), got {_show(name)}"
        )
    if why_not:
        raise bad_request(
            f"{path} must name an available {model_type} model, got {_show(name)}, "
            f"which the model list shows as {why_not}"
        )
    return model


def _list(path: str, value: Any, lim: Optional[Limit]) -> List[Any]:
    if not isinstance(value, list):
        raise bad_request(f"{path} must be a list, got {_show(value)}")
    if lim is not None and lim.max is not None and len(value) > lim.max:
        raise bad_request(f"{path} must have {lim.describe()}, got {len(value)} entries")
    return value


def _require_object(path: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise bad_request(f"{path} must be a JSON object, got {_show(value)}")


def decode_image(
    path: str, data: Any, max_side: Optional[int] = IMAGE_MAX_SIDE, max_pixels: Optional[int] = None
) -> Image.Image:
    """Decode a raw-base64 image field, refusing it with the provider's image reasons.

    ``max_side`` bounds each side (img2img, upscale), ``max_pixels`` the area (inpainting);
    None: no such bound.
    """
    if not isinstance(data, str) or not data:
        raise bad_request(
            f"{path} must be raw base64 of an image file, got {_show(data)}", "INVALID_IMAGE_FORMAT"
        )
    if data.startswith("data:"):
        raise bad_request(
            f"{path} must be raw base64 without a 'data:' prefix, got {data[:30]!r}", "INVALID_IMAGE_FORMAT"
        )
    if len(data) // 4 * 3 > IMAGE_MAX_FILE_BYTES + 3:  # known from the length alone: skip the decode
        raise bad_request(
            f"{path} must be an image file of at most {IMAGE_MAX_FILE_BYTES} bytes, "
            f"got about {len(data) // 4 * 3} bytes",
            "IMAGE_FILE_EXCEEDS_MAX_SIZE",
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(
            f"{path} must be valid base64, got {len(data)} characters that do not decode",
            "INVALID_IMAGE_FORMAT",
        ) from None
    if len(raw) > IMAGE_MAX_FILE_BYTES:
        raise bad_request(
            f"{path} must be an image file of at most {IMAGE_MAX_FILE_BYTES} bytes, got {len(raw)} bytes",
            "IMAGE_FILE_EXCEEDS_MAX_SIZE",
        )
    bound = (
        f"each side <= {max_side} px"
        if max_side
        else f"at most {max_pixels} pixels ({max_pixels / 2**20:g} megapixels)"
    )
    try:
        image = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError:
        raise bad_request(
            f"{path} must have {bound}, got a larger image", "IMAGE_EXCEEDS_MAX_RESOLUTION"
        ) from None
    except Exception:
        raise bad_request(
            f"{path} must be a PNG, JPEG or WebP image, got {len(raw)} bytes that are not one",
            "INVALID_IMAGE_FORMAT",
        ) from None
    w, h = image.size
    if (max_side and (w > max_side or h > max_side)) or (max_pixels and w * h > max_pixels):
        raise bad_request(f"{path} must have {bound}, got {w}x{h}", "IMAGE_EXCEEDS_MAX_RESOLUTION")
    try:
        image.load()
    except Exception:
        raise bad_request(
            f"{path} is a truncated or corrupt {image.format} file", "INVALID_IMAGE_FORMAT"
        ) from None
    return image


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
