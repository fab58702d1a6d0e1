"""The txt2img request: ``POST /v3/async/txt2img`` (no upload; hires fix and the SDXL refiner optional)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Dict, Optional, Tuple

from .errors import ValidationError
from .request import SAMPLING, GenerationRequest


@dataclass(frozen=True)
class HiresFix:
    """``request.hires_fix``: a second pass at ``target_width`` x ``target_height``."""

    target_width: int
    target_height: int
    strength: float = 0.5
    upscaler: str = "Latent"


@dataclass(frozen=True)
class Refiner:
    """``request.refiner``: the SDXL refiner takes over after ``switch_at`` of the steps."""

    switch_at: float


@dataclass(frozen=True)
class Txt2ImgRequest(GenerationRequest):
    """Every field of ``POST /v3/async/txt2img``, in the provider's names; ``None`` fields are omitted."""

    endpoint: ClassVar[str] = "txt2img"

    model_name: str
    prompt: str
    width: int
    height: int
    hires_fix: Optional[HiresFix] = None
    refiner: Optional[Refiner] = None
    enable_transparent_background: Optional[bool] = None
    restore_faces: Optional[bool] = None

    def validate_fields(self, *, template: bool = False) -> None:
        self.check_fields("width", "height")
        h = self.hires_fix
        if h is not None:
            for name in ("target_width", "target_height", "strength", "upscaler"):
                self.check(f"request.hires_fix.{name}", getattr(h, name))
            for name, base in (("target_width", self.width), ("target_height", self.height)):
                if getattr(h, name) < base:
                    side = name.split("_")[1]
                    raise ValidationError(
                        f"request.hires_fix.{name}",
                        f"at least request.{side} ({base})",
                        getattr(h, name),
                        "hires fix enlarges the first image",
                    )
        if self.refiner is not None:
            self.check("request.refiner.switch_at", self.refiner.switch_at)
        for name in ("enable_transparent_background", "restore_faces"):
            if getattr(self, name) is not None:
                self.check(f"request.{name}", getattr(self, name))
        if self.enable_transparent_background and self.response_image_type not in (None, "png"):
            raise ValidationError(
                "extra.response_image_type",
                "'png' with request.enable_transparent_background",
                self.response_image_type,
                "only PNG carries transparency",
            )

    def output_size(self) -> Tuple[int, int]:
        if self.hires_fix is not None:
            return self.hires_fix.target_width, self.hires_fix.target_height
        return self.width, self.height

    def to_body(self) -> Dict[str, Any]:
        req = self.request_body(_HEAD)
        req.update(self.request_body(("seed", "clip_skip")))
        if self.hires_fix is not None:
            req["hires_fix"] = asdict(self.hires_fix)
        if self.refiner is not None:
            req["refiner"] = asdict(self.refiner)
        req.update(self.request_body(("enable_transparent_background", "restore_faces")))
        return {"extra": self.extra_body(), "request": req}


_HEAD = ("model_name", "prompt", "width", "height", *SAMPLING)
