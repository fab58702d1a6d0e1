"""The typed img2img request and its validation.

Validation reads every number from :mod:`ppinfra.limits` and raises
:class:`~ppinfra.errors.ValidationError` naming the field path, the limit and
the value, before anything is sent.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import math
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Sequence, Tuple

from .errors import ValidationError
from .limits import IMAGE_MAX_FILE_BYTES, IMAGE_MAX_SIDE, LIMITS, REQUEST_BODY_MAX_BYTES, Limit


@dataclass(frozen=True)
class ControlNetUnit:
    """One entry of ``request.controlnet.units``. ``image_base64`` is raw base64 (no ``data:`` prefix)."""

    model_name: str
    image_base64: str
    strength: float = 1.0
    preprocessor: Optional[str] = None
    guidance_start: float = 0.0
    guidance_end: float = 1.0


@dataclass(frozen=True)
class Lora:
    """One entry of ``request.loras``."""

    model_name: str
    strength: float = 0.8


@dataclass(frozen=True)
class Embedding:
    """One entry of ``request.embeddings``."""

    model_name: str


@dataclass(frozen=True)
class IPAdapter:
    """One entry of ``request.ip_adapters``."""

    model_name: str
    image_base64: str
    strength: float = 0.5


@dataclass(frozen=True)
class Img2ImgRequest:
    """Every field of ``POST /v3/async/img2img``, in the provider's names.

    Optional fields left at ``None`` (or empty lists) are omitted from the
    body, so the server applies its own default.
    """

    model_name: str
    image_base64: str
    prompt: str
    width: int
    height: int
    image_num: int = 1
    steps: int = 20
    guidance_scale: float = 7.5
    sampler_name: str = "Euler a"
    negative_prompt: Optional[str] = None
    sd_vae: Optional[str] = None
    controlnet_units: Tuple[ControlNetUnit, ...] = ()
    seed: Optional[int] = -1
    loras: Tuple[Lora, ...] = ()
    embeddings: Tuple[Embedding, ...] = ()
    clip_skip: Optional[int] = None
    strength: Optional[float] = None
    ip_adapters: Tuple[IPAdapter, ...] = ()
    response_image_type: Optional[str] = None

    def validate(self) -> None:
        """Check every documented limit; raise :class:`ValidationError` on the first violation."""
        validate_request(self)

    def to_body(self) -> Dict[str, Any]:
        """The JSON body as the API expects it: ``{"extra": {...}, "request": {...}}``."""
        req: Dict[str, Any] = {
            "model_name": self.model_name,
            "image_base64": self.image_base64,
            "prompt": self.prompt,
            "width": self.width,
            "height": self.height,
            "image_num": self.image_num,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "sampler_name": self.sampler_name,
        }
        if self.negative_prompt is not None:
            req["negative_prompt"] = self.negative_prompt
        if self.sd_vae is not None:
            req["sd_vae"] = self.sd_vae
        if self.controlnet_units:
            req["controlnet"] = {"units": [_unit_body(u) for u in self.controlnet_units]}
        if self.seed is not None:
            req["seed"] = self.seed
        if self.loras:
            req["loras"] = [{"model_name": l.model_name, "strength": l.strength} for l in self.loras]
        if self.embeddings:
            req["embeddings"] = [{"model_name": e.model_name} for e in self.embeddings]
        if self.clip_skip is not None:
            req["clip_skip"] = self.clip_skip
        if self.strength is not None:
            req["strength"] = self.strength
        if self.ip_adapters:
            req["ip_adapters"] = [
                {"model_name": a.model_name, "image_base64": a.image_base64, "strength": a.strength}
                for a in self.ip_adapters
            ]
        extra: Dict[str, Any] = {}
        if self.response_image_type is not None:
            extra["response_image_type"] = self.response_image_type
        return {"extra": extra, "request": req}

    def to_json_bytes(self) -> bytes:
        """The serialised body, checked against the request-body cap."""
        data = json.dumps(self.to_body(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(data) > REQUEST_BODY_MAX_BYTES:
            raise ValidationError(
                "request body", f"at most {REQUEST_BODY_MAX_BYTES} bytes", f"{len(data)} bytes",
                "send smaller or fewer images (each side <= 2048 px), or JPEG instead of PNG")
        return data

    def redacted(self) -> Dict[str, Any]:
        """The body with every base64 image replaced by its length: safe for logs and info outputs."""
        return _redact_images(self.to_body())


def _unit_body(u: ControlNetUnit) -> Dict[str, Any]:
    body: Dict[str, Any] = {"model_name": u.model_name, "image_base64": u.image_base64, "strength": u.strength}
    if u.preprocessor is not None:
        body["preprocessor"] = u.preprocessor
    body["guidance_start"] = u.guidance_start
    body["guidance_end"] = u.guidance_end
    return body


def _redact_images(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: (f"<{len(v)} base64 chars>" if k.endswith("image_base64") and isinstance(v, str)
                    else _redact_images(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact_images(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- validation

def check_value(path: str, value: Any, lim: Limit) -> None:
    """Check one value against its limit; ``path`` is the concrete path (``request.loras[2].strength``)."""
    if value is None:
        if lim.nullable:
            return
        raise ValidationError(path, f"set ({lim.describe()})", value)
    if lim.kind == "enum":
        if not isinstance(value, str) or value not in lim.options:
            hint = "" if len(lim.options) <= 6 else "valid: " + ", ".join(lim.options)
            raise ValidationError(path, lim.describe(), value, hint)
        return
    if lim.kind == "str":
        if not isinstance(value, str):
            raise ValidationError(path, f"a string of {lim.describe()}", value)
        n = len(value)
        if (lim.min is not None and n < lim.min) or (lim.max is not None and n > lim.max):
            # Long texts are shown by their length: the message must stay readable.
            raise ValidationError(path, f"a string of {lim.describe()}", value if n <= 40 else f"<{n} characters>")
        return
    if lim.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(path, f"an integer in {lim.describe()}", value)
    elif lim.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValidationError(path, f"a number in {lim.describe()}", value)
    else:  # pragma: no cover - table misuse
        raise TypeError(f"unsupported limit kind {lim.kind!r} for {path}")
    too_low = lim.min is not None and (value <= lim.min if lim.min_exclusive else value < lim.min)
    too_high = lim.max is not None and (value >= lim.max if lim.max_exclusive else value > lim.max)
    if too_low or too_high:
        raise ValidationError(path, f"in {lim.describe()}", value)


def check_count(path: str, items: Sequence[Any], lim: Limit) -> None:
    if lim.max is not None and len(items) > lim.max:
        raise ValidationError(path, lim.describe(), f"{len(items)} entries")


def image_size_of_base64(path: str, data: str) -> Tuple[int, int, int]:
    """Decode ``data`` just far enough to know (width, height, file bytes); reject bad base64/images."""
    if not isinstance(data, str) or not data:
        raise ValidationError(path, "raw base64 of an image file", "<empty>" if data == "" else type(data).__name__)
    if data.startswith("data:"):
        raise ValidationError(path, "raw base64 without a 'data:' prefix", data[:30])
    # The decoded size is known from the length: check it before decoding anything.
    approx = len(data) * 3 // 4
    if approx > IMAGE_MAX_FILE_BYTES + 3:
        raise ValidationError(path, f"an image file of at most {IMAGE_MAX_FILE_BYTES} bytes", f"{approx} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(path, "valid base64", f"<{len(data)} characters that do not decode>") from None
    from PIL import Image  # deferred: keeps `import ppinfra` light

    try:
        with Image.open(io.BytesIO(raw)) as im:
            w, h = im.size
    except Exception:
        raise ValidationError(path, "a PNG, JPEG or WebP image", f"<{len(raw)} bytes that are not an image>") from None
    if w > IMAGE_MAX_SIDE or h > IMAGE_MAX_SIDE:
        raise ValidationError(path, f"an image with each side <= {IMAGE_MAX_SIDE} px", f"{w}x{h}")
    return w, h, len(raw)


def validate_request(r: Img2ImgRequest) -> None:
    """Check every field of ``r`` against :data:`ppinfra.limits.LIMITS`."""
    L = LIMITS
    check_value("extra.response_image_type", r.response_image_type, _nullable(L["extra.response_image_type"]))
    check_value("request.model_name", r.model_name, L["request.model_name"])
    check_value("request.prompt", r.prompt, L["request.prompt"])
    if r.negative_prompt is not None:
        check_value("request.negative_prompt", r.negative_prompt, L["request.negative_prompt"])
    for name in ("width", "height", "image_num", "steps", "guidance_scale", "sampler_name"):
        check_value(f"request.{name}", getattr(r, name), L[f"request.{name}"])
    check_value("request.sd_vae", r.sd_vae, L["request.sd_vae"])
    if r.seed is not None:
        check_value("request.seed", r.seed, L["request.seed"])
    check_value("request.clip_skip", r.clip_skip, L["request.clip_skip"])
    check_value("request.strength", r.strength, L["request.strength"])

    check_count("request.loras", r.loras, L["request.loras"])
    for i, lora in enumerate(r.loras):
        check_value(f"request.loras[{i}].model_name", lora.model_name, L["request.loras[].model_name"])
        check_value(f"request.loras[{i}].strength", lora.strength, L["request.loras[].strength"])
    check_count("request.embeddings", r.embeddings, L["request.embeddings"])
    for i, emb in enumerate(r.embeddings):
        check_value(f"request.embeddings[{i}].model_name", emb.model_name, L["request.embeddings[].model_name"])
    check_count("request.ip_adapters", r.ip_adapters, L["request.ip_adapters"])
    for i, ad in enumerate(r.ip_adapters):
        p = f"request.ip_adapters[{i}]"
        check_value(f"{p}.model_name", ad.model_name, L["request.ip_adapters[].model_name"])
        check_value(f"{p}.strength", ad.strength, L["request.ip_adapters[].strength"])
    for i, u in enumerate(r.controlnet_units):
        p = f"request.controlnet.units[{i}]"
        for name in ("model_name", "strength", "preprocessor", "guidance_start", "guidance_end"):
            check_value(f"{p}.{name}", getattr(u, name), L[f"request.controlnet.units[].{name}"])
        if not u.guidance_start < u.guidance_end:
            raise ValidationError(f"{p}.guidance_start", f"below {p}.guidance_end ({u.guidance_end})",
                                  u.guidance_start)

    # Images last: they are the only checks that cost a decode.
    image_size_of_base64("request.image_base64", r.image_base64)
    for i, u in enumerate(r.controlnet_units):
        image_size_of_base64(f"request.controlnet.units[{i}].image_base64", u.image_base64)
    for i, ad in enumerate(r.ip_adapters):
        image_size_of_base64(f"request.ip_adapters[{i}].image_base64", ad.image_base64)


def _nullable(lim: Limit) -> Limit:
    return replace(lim, nullable=True)
