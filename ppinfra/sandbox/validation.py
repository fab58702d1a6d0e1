"""Checks of a ``POST /v3/async/img2img`` body, as the real service would refuse it.

Strict mode checks the body exactly as sent: an unknown field, a ``null``
where the page allows none, or a number sent as a string is a 400 naming the
field. Lenient mode (the default) first reads the body as the real backend
does (:mod:`.leniency`) and then runs the same checks.

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
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from PIL import Image

from ..limits import IMAGE_MAX_FILE_BYTES, IMAGE_MAX_SIDE, LIMITS, Limit
from .catalog import Catalog
from .errors import bad_request
from .leniency import normalise

# request key -> required? Anything else in "request" is refused.
_REQUEST_KEYS = {
    "model_name": True, "image_base64": True, "prompt": True, "width": True, "height": True,
    "image_num": True, "steps": True, "guidance_scale": True, "sampler_name": True,
    "negative_prompt": False, "sd_vae": False, "controlnet": False, "seed": False, "loras": False,
    "embeddings": False, "clip_skip": False, "strength": False, "ip_adapters": False,
}
# PPInfra documents only response_image_type. Novita's extras (webhook, NSFW options,
# custom_storage, enterprise_plan) are accepted only in lenient mode, where they are ignored.
_EXTRA_KEYS = {"response_image_type"}
_UNIT_KEYS = {"model_name": True, "image_base64": True, "strength": True, "preprocessor": False,
              "guidance_start": False, "guidance_end": False}
_LORA_KEYS = {"model_name": True, "strength": True}
_EMBEDDING_KEYS = {"model_name": True}
_IP_ADAPTER_KEYS = {"model_name": True, "image_base64": True, "strength": True}


@dataclass
class ValidSubmit:
    """A body that passed every check, with the decoded input image."""

    extra: Dict[str, Any]
    request: Dict[str, Any]
    image: Image.Image
    image_type: str
    seed: int  # as sent; -1 means "server picks"


def validate_submit(body: Any, catalog: Catalog, strict: bool = True) -> ValidSubmit:
    """Check ``body`` (parsed JSON); raise a 400 :class:`SandboxHTTPError` on the first fault.

    ``strict=False`` reads it as the real service does first (unknown fields and nulls dropped,
    numeric strings parsed); the result's ``request`` is then the body as read.
    """
    if not strict:
        body = normalise(body)
    _require_object("body", body)
    _no_unknown("body", body, {"extra": False, "request": True})
    extra = body.get("extra")
    if extra is None:
        extra = {}
    _require_object("extra", extra)
    unknown = sorted(set(extra) - _EXTRA_KEYS)
    if unknown:
        raise bad_request(f"extra.{unknown[0]} is not a documented field (documented: response_image_type)")
    if "response_image_type" in extra:
        _check("extra.response_image_type", extra["response_image_type"], LIMITS["extra.response_image_type"])

    req = body.get("request")
    _require_object("request", req)
    _no_unknown("request", req, _REQUEST_KEYS)
    for key in ("model_name", "prompt", "negative_prompt", "width", "height", "image_num", "steps",
                "guidance_scale", "sampler_name", "sd_vae", "seed", "clip_skip", "strength"):
        if key in req:
            _check(f"request.{key}", req[key], LIMITS[f"request.{key}"])
    _known_model("request.model_name", req["model_name"], "checkpoint", catalog)
    if req.get("sd_vae") is not None:
        _known_model("request.sd_vae", req["sd_vae"], "vae", catalog)

    loras = _list_of_objects("request.loras", req.get("loras", []), LIMITS["request.loras"], _LORA_KEYS)
    for i, lora in enumerate(loras):
        _check(f"request.loras[{i}].model_name", lora["model_name"], LIMITS["request.loras[].model_name"])
        _known_model(f"request.loras[{i}].model_name", lora["model_name"], "lora", catalog)
        _check(f"request.loras[{i}].strength", lora["strength"], LIMITS["request.loras[].strength"])
    embeddings = _list_of_objects("request.embeddings", req.get("embeddings", []),
                                  LIMITS["request.embeddings"], _EMBEDDING_KEYS)
    for i, emb in enumerate(embeddings):
        path = f"request.embeddings[{i}].model_name"
        _check(path, emb["model_name"], LIMITS["request.embeddings[].model_name"])
        _known_model(path, emb["model_name"], "textualinversion", catalog)
    adapters = _list_of_objects("request.ip_adapters", req.get("ip_adapters", []),
                                LIMITS["request.ip_adapters"], _IP_ADAPTER_KEYS)
    for i, ad in enumerate(adapters):
        for key in ("model_name", "strength"):
            _check(f"request.ip_adapters[{i}].{key}", ad[key], LIMITS[f"request.ip_adapters[].{key}"])
    units = _controlnet_units(req, catalog)

    # Images last: they are the only checks that cost a decode.
    image = decode_image("request.image_base64", req["image_base64"])
    for i, unit in enumerate(units):
        decode_image(f"request.controlnet.units[{i}].image_base64", unit["image_base64"])
    for i, ad in enumerate(adapters):
        decode_image(f"request.ip_adapters[{i}].image_base64", ad["image_base64"])
    return ValidSubmit(extra=extra, request=req, image=image,
                       image_type=extra.get("response_image_type", LIMITS["extra.response_image_type"].default),
                       seed=req.get("seed", LIMITS["request.seed"].default))


def _controlnet_units(req: Dict[str, Any], catalog: Catalog) -> List[Dict[str, Any]]:
    if "controlnet" not in req:
        return []
    cn = req["controlnet"]
    _require_object("request.controlnet", cn)
    _no_unknown("request.controlnet", cn, {"units": True})
    units = _list_of_objects("request.controlnet.units", cn["units"], None, _UNIT_KEYS)
    for i, unit in enumerate(units):
        p = f"request.controlnet.units[{i}]"
        for key in ("model_name", "strength", "preprocessor", "guidance_start", "guidance_end"):
            if key in unit:
                _check(f"{p}.{key}", unit[key], LIMITS[f"request.controlnet.units[].{key}"])
        _known_model(f"{p}.model_name", unit["model_name"], "controlnet", catalog)
        start = unit.get("guidance_start", LIMITS["request.controlnet.units[].guidance_start"].default)
        end = unit.get("guidance_end", LIMITS["request.controlnet.units[].guidance_end"].default)
        if not start < end:
            raise bad_request(f"{p}.guidance_start must be below {p}.guidance_end ({end}), got {start!r}")
    return units


def _check(path: str, value: Any, lim: Limit) -> None:
    if value is None:
        if lim.nullable:
            return
        raise bad_request(f"{path} must not be null ({lim.describe()})")
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


def _known_model(path: str, name: str, model_type: str, catalog: Catalog) -> None:
    model, why_not = catalog.usable(model_type, name)
    if model is None:
        hint = "sd_name" if model_type == "checkpoint" else "sd_name_in_api"
        raise bad_request(f"{path} must name an available {model_type} model ({hint} from "
                          f"GET /v3/model?filter.types={model_type}), got {_show(name)}")
    if why_not:
        raise bad_request(f"{path} must name an available {model_type} model, got {_show(name)}, "
                          f"which the model list shows as {why_not}")


def _list_of_objects(path: str, value: Any, lim: Optional[Limit], keys: Dict[str, bool]) -> List[Dict[str, Any]]:
    if not isinstance(value, list):
        raise bad_request(f"{path} must be a list, got {_show(value)}")
    if lim is not None and lim.max is not None and len(value) > lim.max:
        raise bad_request(f"{path} must have {lim.describe()}, got {len(value)} entries")
    for i, item in enumerate(value):
        _require_object(f"{path}[{i}]", item)
        _no_unknown(f"{path}[{i}]", item, keys)
    return value


def _require_object(path: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise bad_request(f"{path} must be a JSON object, got {_show(value)}")


def _no_unknown(path: str, obj: Dict[str, Any], keys: Dict[str, bool]) -> None:
    unknown = sorted(set(obj) - set(keys))
    if unknown:
        raise bad_request(f"{path}.{unknown[0]} is not a documented field")
    for key, required in keys.items():
        if required and key not in obj:
            raise bad_request(f"{path}.{key} is required")


def decode_image(path: str, data: Any) -> Image.Image:
    """Decode a raw-base64 image field, refusing it with the provider's image reasons."""
    if not isinstance(data, str) or not data:
        raise bad_request(f"{path} must be raw base64 of an image file, got {_show(data)}",
                          "INVALID_IMAGE_FORMAT")
    if data.startswith("data:"):
        raise bad_request(f"{path} must be raw base64 without a 'data:' prefix, got {data[:30]!r}",
                          "INVALID_IMAGE_FORMAT")
    if len(data) // 4 * 3 > IMAGE_MAX_FILE_BYTES + 3:  # known from the length alone: skip the decode
        raise bad_request(f"{path} must be an image file of at most {IMAGE_MAX_FILE_BYTES} bytes, "
                          f"got about {len(data) // 4 * 3} bytes", "IMAGE_FILE_EXCEEDS_MAX_SIZE")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{path} must be valid base64, got {len(data)} characters that do not decode",
                          "INVALID_IMAGE_FORMAT") from None
    if len(raw) > IMAGE_MAX_FILE_BYTES:
        raise bad_request(f"{path} must be an image file of at most {IMAGE_MAX_FILE_BYTES} bytes, "
                          f"got {len(raw)} bytes", "IMAGE_FILE_EXCEEDS_MAX_SIZE")
    try:
        image = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError:
        raise bad_request(f"{path} must have each side <= {IMAGE_MAX_SIDE} px, got a larger image",
                          "IMAGE_EXCEEDS_MAX_RESOLUTION") from None
    except Exception:
        raise bad_request(f"{path} must be a PNG, JPEG or WebP image, got {len(raw)} bytes that are not one",
                          "INVALID_IMAGE_FORMAT") from None
    w, h = image.size
    if w > IMAGE_MAX_SIDE or h > IMAGE_MAX_SIDE:
        raise bad_request(f"{path} must have each side <= {IMAGE_MAX_SIDE} px, got {w}x{h}",
                          "IMAGE_EXCEEDS_MAX_RESOLUTION")
    try:
        image.load()
    except Exception:
        raise bad_request(f"{path} is a truncated or corrupt {image.format} file", "INVALID_IMAGE_FORMAT") from None
    return image


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
