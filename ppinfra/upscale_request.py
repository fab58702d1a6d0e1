"""The upscale request: ``POST /v3/async/upscale`` (one image in, one ``scale_factor`` times larger out)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple

from .request import EncodedImage, ImageSlots, TaskRequest, check_fields, image_size_of_base64

IMAGE = "request.image_base64"


@dataclass(frozen=True)
class UpscaleRequest(TaskRequest):
    """Every field of ``POST /v3/async/upscale``: no prompt, no seed, one result."""

    endpoint: ClassVar[str] = "upscale"

    model_name: str
    image_base64: Optional[str]
    scale_factor: float = 2.0
    response_image_type: Optional[str] = None

    def validate_fields(self, *, template: bool = False) -> None:
        check_fields(self, ("response_image_type", "model_name", "scale_factor"))

    def image_slots(self) -> ImageSlots:
        return [(IMAGE, self.image_base64)]

    def with_images(self, images: Mapping[str, str]) -> "UpscaleRequest":
        return replace(self, image_base64=images.get(IMAGE, self.image_base64))

    @property
    def images_expected(self) -> int:
        return 1

    def output_size(self) -> Tuple[int, int]:
        img = self.image_base64
        w, h = img.size if isinstance(img, EncodedImage) else image_size_of_base64(IMAGE, img, None, None)[:2]
        return round(w * self.scale_factor), round(h * self.scale_factor)

    def to_body(self) -> Dict[str, Any]:
        req = {
            "model_name": self.model_name,
            "image_base64": self.image_base64,
            "scale_factor": self.scale_factor,
        }
        return {"extra": self.extra_body(), "request": req}
