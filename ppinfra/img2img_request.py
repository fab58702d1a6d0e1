"""The img2img request: ``POST /v3/async/img2img`` (an input image, ControlNet units, an IP-Adapter)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple

from .errors import ValidationError
from .limits import Limit
from .request import SAMPLING, MATCH_INPUT, EncodedImage, GenerationRequest, ImageSlots, check_count


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
class IPAdapter:
    """One entry of ``request.ip_adapters``."""

    model_name: str
    image_base64: str
    strength: float = 0.5


@dataclass(frozen=True)
class Img2ImgRequest(GenerationRequest):
    """Every field of ``POST /v3/async/img2img``, in the provider's names.

    Optional fields left at ``None`` (or empty lists) are omitted from the
    body, so the server applies its own default. In a template (images not yet
    set) ``image_base64`` and the side units' images are ``None``, and
    ``width``/``height`` may be 0: the input image's size. The shared fields
    (:class:`~ppinfra.request.GenerationRequest`) are keyword-only.
    """

    endpoint: ClassVar[str] = "img2img"

    model_name: str
    image_base64: Optional[str]
    prompt: str
    width: int
    height: int
    controlnet_units: Tuple[ControlNetUnit, ...] = ()
    strength: Optional[float] = None
    ip_adapters: Tuple[IPAdapter, ...] = ()

    def validate_fields(self, *, template: bool = False) -> None:
        sized = [n for n in ("width", "height") if not (template and getattr(self, n) == MATCH_INPUT)]
        self.check_fields(*sized, "strength")
        check_count("request.ip_adapters", self.ip_adapters, self.limits["request.ip_adapters"])
        for i, ad in enumerate(self.ip_adapters):
            self.check(f"request.ip_adapters[{i}].model_name", ad.model_name)
            self.check(f"request.ip_adapters[{i}].strength", ad.strength)
        for i, u in enumerate(self.controlnet_units):
            p = f"request.controlnet.units[{i}]"
            for name in ("model_name", "strength", "preprocessor", "guidance_start", "guidance_end"):
                self.check(f"{p}.{name}", getattr(u, name))
            if not u.guidance_start < u.guidance_end:
                raise ValidationError(
                    f"{p}.guidance_start", f"below {p}.guidance_end ({u.guidance_end})", u.guidance_start
                )

    def image_slots(self) -> ImageSlots:
        slots: ImageSlots = [("request.image_base64", self.image_base64)]
        slots += [
            (f"request.controlnet.units[{i}].image_base64", u.image_base64)
            for i, u in enumerate(self.controlnet_units)
        ]
        slots += [
            (f"request.ip_adapters[{i}].image_base64", a.image_base64) for i, a in enumerate(self.ip_adapters)
        ]
        return slots

    def with_images(self, images: Mapping[str, str]) -> "Img2ImgRequest":
        """Uploads filled in; a 0 width/height becomes the input image's size (:func:`match_input_size`)."""
        main = images.get("request.image_base64", self.image_base64)
        units = tuple(
            replace(u, image_base64=images.get(f"request.controlnet.units[{i}].image_base64", u.image_base64))
            for i, u in enumerate(self.controlnet_units)
        )
        ips = tuple(
            replace(a, image_base64=images.get(f"request.ip_adapters[{i}].image_base64", a.image_base64))
            for i, a in enumerate(self.ip_adapters)
        )
        width, height = self.width, self.height
        if MATCH_INPUT in (width, height):
            if not isinstance(main, EncodedImage):
                raise ValidationError(
                    "request.width", "set (0 = the input's size needs an encoded input image)", width
                )
            mw, mh = match_input_size(main.width, main.height, self.limits["request.width"])
            width, height = width or mw, height or mh
        return replace(
            self, image_base64=main, controlnet_units=units, ip_adapters=ips, width=width, height=height
        )

    def validate_images(self) -> Dict[str, Tuple[int, int]]:
        self.check("request.width", self.width)  # a template's 0 resolved by with_images
        self.check("request.height", self.height)
        return super().validate_images()

    def to_body(self) -> Dict[str, Any]:
        """The JSON body as the API expects it: ``{"extra": {...}, "request": {...}}``."""
        req = self.request_body(_HEAD)
        if self.controlnet_units:
            req["controlnet"] = {"units": [_unit_body(u) for u in self.controlnet_units]}
        req.update(self.request_body(("seed", "clip_skip", "strength")))
        if self.ip_adapters:
            req["ip_adapters"] = [
                {"model_name": a.model_name, "image_base64": a.image_base64, "strength": a.strength}
                for a in self.ip_adapters
            ]
        return {"extra": self.extra_body(), "request": req}


_HEAD = ("model_name", "image_base64", "prompt", "width", "height", *SAMPLING)


def match_input_size(width: int, height: int, lim: Limit) -> Tuple[int, int]:
    """The ``width/height = 0`` rule: the input's size fitted to the limit, snapped to 8, at least its min."""
    from .limits import SIZE_SNAP

    lo, hi = int(lim.min), int(lim.max)
    scale = min(1.0, hi / max(width, height))

    def snap(v: float) -> int:
        return max(lo, min(hi, int(round(v * scale / SIZE_SNAP)) * SIZE_SNAP))

    return snap(width), snap(height)


def _unit_body(u: ControlNetUnit) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "model_name": u.model_name,
        "image_base64": u.image_base64,
        "strength": u.strength,
    }
    if u.preprocessor is not None:
        body["preprocessor"] = u.preprocessor
    body["guidance_start"] = u.guidance_start
    body["guidance_end"] = u.guidance_end
    return body
