"""PPInfra Inpaint: an image batch and a ComfyUI MASK in, the masked part repainted
(one inpainting task per image)."""

from __future__ import annotations

from ..ppinfra.errors import ValidationError
from ..ppinfra.inpainting_request import IMAGE, MASK, InpaintingRequest
from ..ppinfra.limits import ENDPOINT_LIMITS

from . import generation as gen
from . import widgets as options

ENDPOINT = "inpainting"
LIMITS = ENDPOINT_LIMITS[ENDPOINT]


def _flag_input(field: str) -> tuple:
    """A 0/1 integer field of the API as a toggle (sent as the integer 0 or 1, the page's type)."""
    lim = LIMITS[field]
    return ("BOOLEAN", {"default": bool(lim.default), "tooltip": f"{lim.doc} Sent as the integer 0 or 1."})


class PPInfraInpaint(gen.GenerationNode):
    ENDPOINT = ENDPOINT  # the endpoint it calls (ppinfra/endpoints.py): routes and price read it
    DESCRIPTION = (
        "Inpainting on PPInfra: repaints the part of each input image that the mask marks (a ComfyUI "
        "MASK, 1.0 = repaint, sent as white on black; LoadImage's mask is the transparent area of "
        "the PNG) with an inpainting checkpoint. A batch of B images runs B tasks and returns "
        "image_num results per image, each the input's size. One mask serves every image, or give one "
        "per image. The mask polarity (white = repaint) is inferred from the provider's tools; "
        "inpainting_mask_invert flips it. The API key comes from Settings > PPInfra or PPINFRA_API_KEY."
    )
    OUTPUT_TOOLTIPS = (
        "The results: image_num per input image, in input order, each the input's size.",
        gen.SEED_OUTPUT_TOOLTIP,
        "JSON with task ids, seeds, timings and the request sent (images and key left out).",
    )

    @classmethod
    def required_inputs(cls) -> dict:
        R, E = "request.", {"endpoint": ENDPOINT}
        return {
            "image": gen.image_batch_input(),
            "mask": (
                "MASK",
                {
                    "tooltip": "Where to repaint: 1.0 (white) = repaint, 0 = keep. One mask for "
                    "every image or one per image; another size is resized to the image."
                },
            ),
            **gen.prompt_inputs(ENDPOINT, inpainting=True),
            **gen.sampling_inputs(ENDPOINT),
            "strength": options.float_input(R + "strength", **E),
            "mask_blur": options.int_input(R + "mask_blur", **E),
            "inpainting_full_res": _flag_input(R + "inpainting_full_res"),
            "inpainting_full_res_padding": options.int_input(R + "inpainting_full_res_padding", **E),
            "inpainting_mask_invert": _flag_input(R + "inpainting_mask_invert"),
            "initial_noise_multiplier": options.float_input(R + "initial_noise_multiplier", **E),
            **gen.model_tail_inputs(ENDPOINT),
        }

    def prepare(
        self,
        image,
        mask,
        negative_prompt,
        strength,
        mask_blur,
        inpainting_full_res,
        inpainting_full_res_padding,
        inpainting_mask_invert,
        initial_noise_multiplier,
        **widgets,
    ):
        from . import runner
        from .masks import to_pil_masks

        template = InpaintingRequest(
            **gen.shared_fields(**widgets),
            image_base64=None,
            mask_image_base64=None,
            negative_prompt=negative_prompt or None,  # the page wants 1-1024 characters: omit when empty
            strength=strength,
            mask_blur=mask_blur,
            inpainting_full_res=_as_int(inpainting_full_res),
            inpainting_full_res_padding=inpainting_full_res_padding,
            inpainting_mask_invert=_as_int(inpainting_mask_invert),
            initial_noise_multiplier=initial_noise_multiplier,
        )
        template.validate_fields(template=True)  # every field before the masks are touched
        if image is None:
            raise ValidationError("image", "an IMAGE", None)
        if mask is None:
            raise ValidationError("mask", "a MASK", None)
        b = runner.batch_size(image)
        shape = getattr(image, "shape", None)
        if shape is None or len(shape) != 4:
            raise ValidationError("image", "an IMAGE tensor [B, H, W, C]", type(image).__name__)
        masks, notes = to_pil_masks(mask, b, (int(shape[2]), int(shape[1])))
        warnings = notes + gen.family_warnings(template.model_name, template.loras, template.embeddings)
        # Lossless while it fits: the server returns the unmasked pixels of the upload as they arrived.
        job = runner.Job(template=template, images={IMAGE: image, MASK: masks}, lossless=True)
        return job, warnings


def _as_int(flag) -> int:
    """A toggle (or a linked 0/1) as the integer the page types the field as;
    anything else is left to the check."""
    if isinstance(flag, bool):
        return int(flag)
    return flag
