"""What every request type shares: the base class, the upload type, LoRAs and embeddings, and the checks.

Validation reads every number from :mod:`ppinfra.limits` and raises
:class:`~ppinfra.errors.ValidationError` naming the field path, the limit and
the value, before anything is sent.

A request is checked in two halves: :meth:`TaskRequest.validate_fields` (every
scalar, list and cross-field rule) and :meth:`TaskRequest.validate_images`
(each upload's format, size and file size). A template (images not yet set)
checks its fields once; :func:`ppinfra.binding.bind_batch` then fills in each
item's images, which the encoder hands over as :class:`EncodedImage` with their
size known, so no upload is decoded again to learn it.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import ValidationError
from .limits import ENDPOINT_LIMITS, IMAGE_MAX_FILE_BYTES, IMAGE_MAX_SIDE, REQUEST_BODY_MAX_BYTES, Limit

MATCH_INPUT = 0  # width/height 0 in an img2img template: the input image's size (see match_input_size)


class EncodedImage(str):
    """Raw base64 of an upload, with the size the encoder already knows (no decode needed to check it)."""

    width: int
    height: int
    nbytes: int

    def __new__(cls, b64: str, width: int, height: int, nbytes: int) -> "EncodedImage":
        obj = super().__new__(cls, b64)
        obj.width, obj.height, obj.nbytes = int(width), int(height), int(nbytes)
        return obj

    @property
    def size(self) -> Tuple[int, int]:
        return self.width, self.height


ImageSlots = List[Tuple[str, Optional[str]]]


class TaskRequest:
    """What every request type shares (mixed into frozen dataclasses).

    A type sets ``endpoint`` (a key of :data:`ppinfra.endpoints.ENDPOINTS`) and
    implements :meth:`validate_fields`, :meth:`image_slots`, :meth:`with_images`
    and :meth:`to_body`; the rest is here.
    """

    endpoint: ClassVar[str] = ""
    # Each upload's limits: a maximum side, or a maximum of pixels (inpainting).
    image_max_side: ClassVar[Optional[int]] = IMAGE_MAX_SIDE
    image_max_pixels: ClassVar[Optional[int]] = None

    # -- to implement ----------------------------------------------------------
    def validate_fields(self, *, template: bool = False) -> None:
        """Every non-image field; ``template``: images are not set yet (and img2img's size may be 0)."""
        raise NotImplementedError

    def image_slots(self) -> ImageSlots:
        """``(field path, base64 or None)`` of every upload, in a fixed order."""
        return []

    def with_images(self, images: Mapping[str, str]) -> "TaskRequest":
        """A copy with the uploads of ``images`` (field path -> base64) filled in."""
        if images:
            raise ValidationError(next(iter(images)), "no image on this endpoint", "an image")
        return self

    def to_body(self) -> Dict[str, Any]:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------
    @property
    def limits(self) -> Dict[str, Limit]:
        return ENDPOINT_LIMITS[self.endpoint]

    @property
    def images_expected(self) -> int:
        """How many result images one task returns (``image_num``; upscale returns one)."""
        return int(getattr(self, "image_num", 1) or 1)

    def output_size(self) -> Tuple[int, int]:
        """The result images' size as requested (what a decoder preallocates)."""
        return int(getattr(self, "width")), int(getattr(self, "height"))

    def check(self, path: str, value: Any) -> None:
        """``value`` against this endpoint's limit for ``path`` (``loras[2].strength`` reads ``loras[]``)."""
        check_value(path, value, self.limits[_generic(path)])

    def validate_images(self) -> Dict[str, Tuple[int, int]]:
        """Check every upload (format, size, file size); return each one's (width, height)."""
        sizes = {}
        for path, data in self.image_slots():
            w, h, _ = image_size_of_base64(path, data, self.image_max_side, self.image_max_pixels)
            sizes[path] = (w, h)
        return sizes

    def validate(self) -> None:
        """Check every documented limit; raise :class:`ValidationError` on the first violation.

        A request that passed once (a bound request) is not checked again.
        """
        if self.__dict__.get("_checked"):
            return
        self.validate_fields()
        self.validate_images()
        self.mark_checked()

    def mark_checked(self) -> None:
        object.__setattr__(self, "_checked", True)

    def to_json_bytes(self) -> bytes:
        """The serialised body, checked against the request-body cap."""
        data = json.dumps(self.to_body(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(data) > REQUEST_BODY_MAX_BYTES:
            raise ValidationError(
                "request body",
                f"at most {REQUEST_BODY_MAX_BYTES} bytes",
                f"{len(data)} bytes",
                "send smaller or fewer images (each side <= 2048 px), or JPEG instead of PNG",
            )
        return data

    def redacted(self) -> Dict[str, Any]:
        """The body with every base64 image replaced by its length: safe for logs and info outputs."""
        return _redact_images(self.to_body())

    def extra_body(self) -> Dict[str, Any]:
        rit = getattr(self, "response_image_type", None)
        return {} if rit is None else {"response_image_type": rit}


def _generic(path: str) -> str:
    """``request.loras[2].strength`` -> ``request.loras[].strength``: the limit table's key."""
    out, depth = [], 0
    for ch in path:
        if ch == "[":
            depth += 1
            out.append("[]")
        elif ch == "]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class Lora:
    """One entry of ``request.loras``."""

    model_name: str
    strength: float = 0.8


@dataclass(frozen=True)
class Embedding:
    """One entry of ``request.embeddings``."""

    model_name: str


# The fields every generating endpoint (img2img, txt2img, inpainting) shares, in the provider's names,
# checked in this order before the endpoint's own; keyword-only, after each type's required fields.
GENERATION_FIELDS = (
    "response_image_type",
    "model_name",
    "prompt",
    "negative_prompt",
    "image_num",
    "steps",
    "guidance_scale",
    "sampler_name",
    "sd_vae",
    "seed",
    "clip_skip",
)


# The sampling fields, in the order the bodies send them after each endpoint's own leading fields.
SAMPLING = ("image_num", "steps", "guidance_scale", "sampler_name", "negative_prompt", "sd_vae")


@dataclass(frozen=True, kw_only=True)
class GenerationRequest(TaskRequest):
    """The shared part of the img2img, txt2img and inpainting requests; ``None`` fields are omitted."""

    image_num: int = 1
    steps: int = 20
    guidance_scale: float = 7.5
    sampler_name: str = "Euler a"
    negative_prompt: Optional[str] = None
    sd_vae: Optional[str] = None
    seed: Optional[int] = -1
    loras: Tuple[Lora, ...] = ()
    embeddings: Tuple[Embedding, ...] = ()
    clip_skip: Optional[int] = None
    response_image_type: Optional[str] = None

    def check_fields(self, *own: str) -> None:
        """The shared fields and ``own`` (this endpoint's scalar fields), then LoRAs and embeddings."""
        check_fields(self, (*GENERATION_FIELDS, *own))
        check_count("request.loras", self.loras, self.limits["request.loras"])
        for i, lora in enumerate(self.loras):
            self.check(f"request.loras[{i}].model_name", lora.model_name)
            self.check(f"request.loras[{i}].strength", lora.strength)
        check_count("request.embeddings", self.embeddings, self.limits["request.embeddings"])
        for i, emb in enumerate(self.embeddings):
            self.check(f"request.embeddings[{i}].model_name", emb.model_name)

    def request_body(self, names: Sequence[str]) -> Dict[str, Any]:
        """``request`` entries for ``names`` in that order (None left out), the LoRAs and embeddings last."""
        req: Dict[str, Any] = {n: getattr(self, n) for n in names if getattr(self, n) is not None}
        if self.loras:
            req["loras"] = [{"model_name": lo.model_name, "strength": lo.strength} for lo in self.loras]
        if self.embeddings:
            req["embeddings"] = [{"model_name": e.model_name} for e in self.embeddings]
        return req


def check_fields(r: TaskRequest, names: Sequence[str]) -> None:
    """Each named field against the request's own table (``response_image_type`` lives in ``extra``)."""
    for name in names:
        value = getattr(r, name)
        if name == "response_image_type":
            path = "extra.response_image_type"
            check_value(path, value, replace(r.limits[path], nullable=True))
        elif not (name in ("seed", "negative_prompt") and value is None):
            r.check(f"request.{name}", value)


def _redact_images(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: (
                f"<{len(v)} base64 chars>"
                if k.endswith("image_base64") and isinstance(v, str)
                else _redact_images(v)
            )
            for k, v in obj.items()
        }
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
    if lim.kind == "bool":
        if not isinstance(value, bool):
            raise ValidationError(path, "true or false", value)
        return
    if lim.kind == "str":
        if not isinstance(value, str):
            raise ValidationError(path, f"a string of {lim.describe()}", value)
        check_encodable(path, value)
        n = len(value)
        if (lim.min is not None and n < lim.min) or (lim.max is not None and n > lim.max):
            # Long texts are shown by their length: the message must stay readable.
            raise ValidationError(
                path, f"a string of {lim.describe()}", value if n <= 40 else f"<{n} characters>"
            )
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


def check_encodable(path: str, text: str) -> None:
    """Text that cannot go out as UTF-8 (a lone surrogate pasted from a broken source) names its position."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise ValidationError(
            path,
            "text that can be sent as UTF-8",
            f"a lone surrogate U+{ord(bad):04X} at position {exc.start}",
            "remove or retype that character",
        ) from None


def image_size_of_base64(
    path: str, data: Optional[str], max_side: Optional[int] = IMAGE_MAX_SIDE, max_pixels: Optional[int] = None
) -> Tuple[int, int, int]:
    """(width, height, file bytes) of an upload; rejects bad base64, bad images and oversize ones.

    An :class:`EncodedImage` carries its size: nothing is decoded. Raw base64
    from elsewhere is decoded just far enough to read the header.
    """
    if data is None:
        raise ValidationError(path, "raw base64 of an image file", None, "the image was never filled in")
    if isinstance(data, EncodedImage):
        w, h, nbytes = data.width, data.height, data.nbytes
    else:
        w, h, nbytes = _decode_size(path, data)
    if nbytes > IMAGE_MAX_FILE_BYTES:
        raise ValidationError(
            path, f"an image file of at most {IMAGE_MAX_FILE_BYTES} bytes", f"{nbytes} bytes"
        )
    if max_side is not None and (w > max_side or h > max_side):
        raise ValidationError(path, f"an image with each side <= {max_side} px", f"{w}x{h}")
    if max_pixels is not None and w * h > max_pixels:
        raise ValidationError(path, f"an image of at most {max_pixels} pixels", f"{w}x{h} ({w * h} pixels)")
    return w, h, nbytes


def _decode_size(path: str, data: str) -> Tuple[int, int, int]:
    if not isinstance(data, str) or not data:
        raise ValidationError(
            path, "raw base64 of an image file", "<empty>" if data == "" else type(data).__name__
        )
    if data.startswith("data:"):
        raise ValidationError(path, "raw base64 without a 'data:' prefix", data[:30])
    # The decoded size is known from the length: check it before decoding anything.
    approx = len(data) * 3 // 4
    if approx > IMAGE_MAX_FILE_BYTES + 3:
        raise ValidationError(
            path, f"an image file of at most {IMAGE_MAX_FILE_BYTES} bytes", f"{approx} bytes"
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(path, "valid base64", f"<{len(data)} characters that do not decode>") from None
    from PIL import Image  # deferred: keeps `import ppinfra` light

    try:
        with Image.open(io.BytesIO(raw)) as im:
            w, h = im.size
    except Exception:
        raise ValidationError(
            path, "a PNG, JPEG or WebP image", f"<{len(raw)} bytes that are not an image>"
        ) from None
    return w, h, len(raw)
