"""The inpainting request: ``POST /v3/async/inpainting`` (an image and a same-size mask, white = repaint)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple

from .errors import ValidationError
from .limits import INPAINT_MAX_PIXELS
from .request import SAMPLING, EncodedImage, GenerationRequest, ImageSlots, image_size_of_base64

IMAGE, MASK = "request.image_base64", "request.mask_image_base64"


@dataclass(frozen=True)
class InpaintingRequest(GenerationRequest):
    """Every field of ``POST /v3/async/inpainting``; the result has the input image's size.

    The 0/1 fields (``inpainting_full_res``, ``inpainting_mask_invert``) are
    integers on the wire, as the provider's page types them.
    """

    endpoint: ClassVar[str] = "inpainting"
    image_max_side: ClassVar[Optional[int]] = None
    image_max_pixels: ClassVar[Optional[int]] = INPAINT_MAX_PIXELS

    model_name: str
    image_base64: Optional[str]
    mask_image_base64: Optional[str]
    prompt: str
    strength: Optional[float] = None
    mask_blur: Optional[int] = None
    inpainting_full_res: Optional[int] = None
    inpainting_full_res_padding: Optional[int] = None
    inpainting_mask_invert: Optional[int] = None
    initial_noise_multiplier: Optional[float] = None

    def validate_fields(self, *, template: bool = False) -> None:
        self.check_fields(*OWN_FIELDS)

    def image_slots(self) -> ImageSlots:
        return [(IMAGE, self.image_base64), (MASK, self.mask_image_base64)]

    def with_images(self, images: Mapping[str, str]) -> "InpaintingRequest":
        return replace(
            self,
            image_base64=images.get(IMAGE, self.image_base64),
            mask_image_base64=images.get(MASK, self.mask_image_base64),
        )

    def validate_images(self) -> Dict[str, Tuple[int, int]]:
        sizes = super().validate_images()
        if sizes[MASK] != sizes[IMAGE]:
            mw, mh = sizes[MASK]
            raise ValidationError(
                MASK,
                "the same size as request.image_base64 ({}x{})".format(*sizes[IMAGE]),
                f"{mw}x{mh}",
                "resize the mask to the image",
            )
        return sizes

    def output_size(self) -> Tuple[int, int]:
        img = self.image_base64
        if isinstance(img, EncodedImage):
            return img.size
        w, h, _ = image_size_of_base64(IMAGE, img, None, None)
        return w, h

    def to_body(self) -> Dict[str, Any]:
        head = (
            "model_name",
            "image_base64",
            "mask_image_base64",
            "prompt",
            *SAMPLING,
            "seed",
            "clip_skip",
            *OWN_FIELDS,
        )
        return {"extra": self.extra_body(), "request": self.request_body(head)}


# This endpoint's own optional fields, checked and sent after the shared ones.
OWN_FIELDS = (
    "strength",
    "mask_blur",
    "inpainting_full_res",
    "inpainting_full_res_padding",
    "inpainting_mask_invert",
    "initial_noise_multiplier",
)
