"""PPInfra Inpaint: an image batch and a ComfyUI MASK in, the masked part repainted (one inpainting task per image)."""

from __future__ import annotations

import logging

from ..ppinfra.errors import ValidationError
from ..ppinfra.inpainting_request import IMAGE, MASK, InpaintingRequest
from ..ppinfra.limits import ENDPOINT_LIMITS
from ..ppinfra.request import Embedding, Lora

from . import comfy_bridge
from . import img2img as i2i
from . import widgets as options
from .links import CATEGORY, EMBEDDINGS, LORAS, as_chain, check_total

log = logging.getLogger("ppinfra")

ENDPOINT = "inpainting"
LIMITS = ENDPOINT_LIMITS[ENDPOINT]


def _flag_input(field: str, tooltip: str) -> tuple:
    """A 0/1 integer field of the API as a toggle (sent as the integer 0 or 1, the page's type)."""
    return (
        "BOOLEAN",
        {"default": bool(LIMITS[field].default), "tooltip": f"{tooltip} Sent as the integer 0 or 1."},
    )


class PPInfraInpaint:
    DESCRIPTION = (
        "Inpainting on PPInfra: repaints the part of each input image that the mask marks (a ComfyUI "
        "MASK, 1.0 = repaint, sent as white on black; LoadImage's mask is the transparent area of "
        "the PNG) with an inpainting checkpoint. A batch of B images runs B tasks and returns "
        "image_num results per image, each the input's size. One mask serves every image, or give one "
        "per image. The mask polarity (white = repaint) is inferred from the provider's tools; "
        "inpainting_mask_invert flips it. The API key comes from Settings > PPInfra or PPINFRA_API_KEY."
    )
    CATEGORY = CATEGORY
    FUNCTION = "generate"
    RETURN_TYPES = ("IMAGE", "INT", "STRING")
    RETURN_NAMES = ("images", "seed", "info")
    OUTPUT_TOOLTIPS = (
        "The results: image_num per input image, in input order, each the input's size.",
        "The seed the server used for the first image (-1 when it did not say).",
        "JSON with task ids, seeds, timings and the request sent (images and key left out).",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        options.refresh_soon()
        R, E = "request.", {"endpoint": ENDPOINT}
        return {
            "required": {
                "image": (
                    "IMAGE",
                    {
                        "tooltip": "Input image(s). A batch of B images runs B tasks, up to 4 at a "
                        "time within the images-per-minute budget."
                    },
                ),
                "mask": (
                    "MASK",
                    {
                        "tooltip": "Where to repaint: 1.0 (white) = repaint, 0 = keep. One mask for "
                        "every image or one per image; another size is resized to the image."
                    },
                ),
                "model_name": options.model_input(
                    "checkpoint", LIMITS[R + "model_name"].doc, inpainting=True
                ),
                "prompt": (
                    "STRING",
                    {
                        "multiline": True,
                        "default": "",
                        "tooltip": f"{LIMITS[R + 'prompt'].doc} {LIMITS[R + 'prompt'].describe()}.",
                    },
                ),
                "negative_prompt": (
                    "STRING",
                    {"multiline": True, "default": "", "tooltip": LIMITS[R + "negative_prompt"].doc},
                ),
                "image_num": options.int_input(R + "image_num", **E),
                "steps": options.int_input(R + "steps", **E),
                "guidance_scale": options.float_input(R + "guidance_scale", step=0.1, **E),
                "sampler_name": options.enum_input(R + "sampler_name", **E),
                "seed": options.int_input(
                    R + "seed",
                    "Noise seed; -1 lets the server pick (and re-runs on every "
                    "queue). A fixed seed lets ComfyUI reuse the cached result.",
                    control_after_generate=True,
                    **E,
                ),
                "strength": options.float_input(R + "strength", **E),
                "mask_blur": options.int_input(R + "mask_blur", **E),
                "inpainting_full_res": _flag_input(
                    R + "inpainting_full_res", LIMITS[R + "inpainting_full_res"].doc
                ),
                "inpainting_full_res_padding": options.int_input(R + "inpainting_full_res_padding", **E),
                "inpainting_mask_invert": _flag_input(
                    R + "inpainting_mask_invert", LIMITS[R + "inpainting_mask_invert"].doc
                ),
                "initial_noise_multiplier": options.float_input(R + "initial_noise_multiplier", **E),
                "clip_skip": options.int_input(
                    R + "clip_skip",
                    "CLIP layers to skip; 0 leaves it to the server.",
                    min=i2i.CLIP_SKIP_SERVER,
                    default=i2i.CLIP_SKIP_SERVER,
                    **E,
                ),
                "sd_vae": options.model_input(
                    "vae",
                    "VAE; 'None' leaves it to the server (the checkpoint's own).",
                    with_none=True,
                    preferred=(options.NONE,),
                ),
                "response_image_type": options.enum_input("extra.response_image_type", **E),
            },
            "optional": {
                "loras": (LORAS, {"tooltip": "LoRAs from PPInfra LoRA Stack nodes (at most 5 in total)."}),
                "embeddings": (
                    EMBEDDINGS,
                    {"tooltip": "Embeddings from PPInfra Embedding nodes (at most 5)."},
                ),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model_name=None, sd_vae=None):
        ok = options.check_model_name("model_name", model_name)
        if ok is not True:
            return ok
        return options.check_model_name("sd_vae", sd_vae)

    @classmethod
    def IS_CHANGED(cls, seed=None, unique_id=None, **inputs):
        return i2i.PPInfraImg2Img.IS_CHANGED(seed=seed, unique_id=unique_id, **inputs)

    async def generate(
        self,
        image,
        mask,
        model_name,
        prompt,
        negative_prompt,
        image_num,
        steps,
        guidance_scale,
        sampler_name,
        seed,
        strength,
        mask_blur,
        inpainting_full_res,
        inpainting_full_res_padding,
        inpainting_mask_invert,
        initial_noise_multiplier,
        clip_skip,
        sd_vae,
        response_image_type,
        loras=None,
        embeddings=None,
        unique_id=None,
    ):
        from . import runner
        from .masks import to_pil_masks

        node_id = None if unique_id is None else str(unique_id)
        lora_chain = as_chain(loras, Lora, "loras")
        emb_chain = as_chain(embeddings, Embedding, "embeddings")
        check_total("request.loras", len(lora_chain), "LoRA Stack")
        check_total("request.embeddings", len(emb_chain), "Embedding")
        vae = None if sd_vae in (None, "", options.NONE) else sd_vae
        template = InpaintingRequest(
            model_name=model_name,
            image_base64=None,
            mask_image_base64=None,
            prompt=prompt,
            image_num=image_num,
            steps=steps,
            guidance_scale=guidance_scale,
            sampler_name=sampler_name,
            negative_prompt=negative_prompt or None,  # the page wants 1-1024 characters: omit when empty
            sd_vae=vae,
            seed=seed,
            loras=lora_chain,
            embeddings=emb_chain,
            clip_skip=None if clip_skip == i2i.CLIP_SKIP_SERVER else clip_skip,
            strength=strength,
            mask_blur=mask_blur,
            inpainting_full_res=_as_int(inpainting_full_res),
            inpainting_full_res_padding=inpainting_full_res_padding,
            inpainting_mask_invert=_as_int(inpainting_mask_invert),
            initial_noise_multiplier=initial_noise_multiplier,
            response_image_type=response_image_type,
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
        warnings = notes + i2i.family_warnings(model_name, lora_chain, emb_chain, (), None)
        for w in warnings:
            log.warning("PPInfra: %s", w)
        if warnings:
            comfy_bridge.send_status("\n".join(f"warning: {w}" for w in warnings), node_id)
        # Lossless while it fits: the server returns the unmasked pixels of the upload as they arrived.
        job = runner.Job(template=template, images={IMAGE: image, MASK: masks}, lossless=True)
        result = await runner.run_job(job, i2i.make_client(), node_id, notes=warnings)
        options.refresh_soon()
        from ..ppinfra.images import to_tensor

        seeds = [r.seed for r in result.results]
        first_seed = seeds[0] if seeds and seeds[0] is not None else i2i.SEED_SERVER
        return (to_tensor(result.images), int(first_seed), i2i.build_info(result, warnings))


def _as_int(flag) -> int:
    """A toggle (or a linked 0/1) as the integer the page types the field as; anything else is left to the check."""
    if isinstance(flag, bool):
        return int(flag)
    return flag
