"""PPInfra Img2Img: the node that turns its inputs into img2img requests and returns the result images."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from typing import Any, Dict, List

from ..ppinfra.config import load_settings
from ..ppinfra.errors import ValidationError
from ..ppinfra.limits import LIMITS
from ..ppinfra.request import Embedding, Lora
from ..ppinfra.img2img_request import ControlNetUnit, Img2ImgRequest, IPAdapter
from ..ppinfra.redaction import redact

from . import comfy_bridge
from . import widgets as options
from .links import (
    CATEGORY,
    CONTROLNET,
    EMBEDDINGS,
    IP_ADAPTER,
    LORAS,
    MATCH_INPUT,
    ControlNetSpec,
    IPAdapterSpec,
    as_chain,
    check_total,
)

log = logging.getLogger("ppinfra")

CLIP_SKIP_SERVER = 0  # clip_skip 0: leave it to the server (sent as absent)
SEED_SERVER = -1
_IP_FAMILY = {"ip-adapter_sd15.bin": "sd15", "ip-adapter_sdxl.bin": "sdxl"}


class PPInfraImg2Img:
    DESCRIPTION = (
        "Image-to-image on PPInfra: sends each image of the input batch, with the prompt and the "
        "optional ControlNet units, LoRAs, embeddings and IP-Adapter, to the PPInfra img2img API, "
        "and returns image_num results per input image in input order. The API key is pasted in the "
        "editor's settings (Settings > PPInfra) or comes from the PPINFRA_API_KEY environment "
        "variable; never from a widget."
    )
    CATEGORY = CATEGORY
    FUNCTION = "generate"
    RETURN_TYPES = ("IMAGE", "INT", "STRING")
    RETURN_NAMES = ("images", "seed", "info")
    OUTPUT_TOOLTIPS = (
        "The results: image_num per input image, in input order.",
        "The seed the server used for the first image (-1 when it did not say).",
        "JSON with task ids, seeds, timings and the request sent (images and key left out).",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        options.refresh_soon()
        R = "request."
        return {
            "required": {
                "image": (
                    "IMAGE",
                    {
                        "tooltip": "Input image(s). A batch of B images runs B tasks, up to 4 at a time within the images-per-minute budget."
                    },
                ),
                "model_name": options.model_input(
                    "checkpoint", LIMITS[R + "model_name"].doc, preferred=("dreamshaper_8_93211.safetensors",)
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
                    {
                        "multiline": True,
                        "default": "",
                        "tooltip": f"{LIMITS[R + 'negative_prompt'].doc} May be empty.",
                    },
                ),
                "width": options.int_input(
                    R + "width",
                    "Result width in pixels; 0 = the input image's size "
                    "(scaled to fit 2048, snapped to 8, at least 128).",
                    min=MATCH_INPUT,
                    default=MATCH_INPUT,
                ),
                "height": options.int_input(
                    R + "height",
                    "Result height in pixels; 0 = the input image's size "
                    "(scaled to fit 2048, snapped to 8, at least 128).",
                    min=MATCH_INPUT,
                    default=MATCH_INPUT,
                ),
                "image_num": options.int_input(R + "image_num"),
                "steps": options.int_input(R + "steps"),
                "guidance_scale": options.float_input(R + "guidance_scale", step=0.1),
                "sampler_name": options.enum_input(R + "sampler_name"),
                "seed": options.int_input(
                    R + "seed",
                    "Noise seed; -1 lets the server pick (and re-runs on every "
                    "queue). A fixed seed lets ComfyUI reuse the cached result.",
                    control_after_generate=True,
                ),
                "strength": options.float_input(R + "strength"),
                "clip_skip": options.int_input(
                    R + "clip_skip",
                    "CLIP layers to skip; 0 leaves it to the server.",
                    min=CLIP_SKIP_SERVER,
                    default=CLIP_SKIP_SERVER,
                ),
                "sd_vae": options.model_input(
                    "vae",
                    "VAE; 'None' leaves it to the server (the checkpoint's own).",
                    with_none=True,
                    preferred=(options.NONE,),
                ),
                "response_image_type": options.enum_input("extra.response_image_type"),
            },
            "optional": {
                "controlnet": (
                    CONTROLNET,
                    {"tooltip": "ControlNet units from PPInfra ControlNet Unit nodes."},
                ),
                "loras": (LORAS, {"tooltip": "LoRAs from PPInfra LoRA Stack nodes (at most 5 in total)."}),
                "embeddings": (
                    EMBEDDINGS,
                    {"tooltip": "Embeddings from PPInfra Embedding nodes (at most 5)."},
                ),
                "ip_adapter": (IP_ADAPTER, {"tooltip": "The IP-Adapter from a PPInfra IP-Adapter node."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model_name=None, sd_vae=None):
        # Taking over these two lets a saved workflow keep a model missing from
        # today's list: the server decides. ComfyUI still checks every other input.
        ok = options.check_model_name("model_name", model_name)
        if ok is not True:
            return ok
        return options.check_model_name("sd_vae", sd_vae)

    @classmethod
    def IS_CHANGED(cls, seed=None, unique_id=None, **inputs):
        # A random (-1) seed must re-run on every queue: NaN never equals the
        # previous value. Linked inputs arrive as None here; ComfyUI's cache key
        # already holds the upstream node's inputs, so a fixed linked seed caches
        # and a changed one re-runs (a linked -1 is cached like any linked value).
        if seed == SEED_SERVER:
            return float("nan")
        plain = {k: v for k, v in inputs.items() if v is None or isinstance(v, (str, int, float, bool))}
        plain["seed"] = "linked" if seed is None else seed
        return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode("utf-8")).hexdigest()

    async def generate(
        self,
        image,
        model_name,
        prompt,
        negative_prompt,
        width,
        height,
        image_num,
        steps,
        guidance_scale,
        sampler_name,
        seed,
        strength,
        clip_skip,
        sd_vae,
        response_image_type,
        controlnet=None,
        loras=None,
        embeddings=None,
        ip_adapter=None,
        unique_id=None,
    ):
        from . import runner

        node_id = None if unique_id is None else str(unique_id)
        template = build_template(
            model_name=model_name,
            prompt=prompt,
            negative_prompt=negative_prompt,
            width=width,
            height=height,
            image_num=image_num,
            steps=steps,
            guidance_scale=guidance_scale,
            sampler_name=sampler_name,
            seed=seed,
            strength=strength,
            clip_skip=clip_skip,
            sd_vae=sd_vae,
            response_image_type=response_image_type,
            loras=loras,
            embeddings=embeddings,
        )
        units = as_chain(controlnet, ControlNetSpec, "controlnet")
        if ip_adapter is not None and not isinstance(ip_adapter, IPAdapterSpec):
            raise ValidationError(
                "ip_adapter", "the output of a PPInfra IP-Adapter node", type(ip_adapter).__name__
            )
        if image is None:
            raise ValidationError("image", "an IMAGE", None)
        template = replace(
            template,
            controlnet_units=tuple(
                ControlNetUnit(
                    model_name=u.model_name,
                    image_base64=None,
                    strength=u.strength,
                    preprocessor=u.preprocessor,
                    guidance_start=u.guidance_start,
                    guidance_end=u.guidance_end,
                )
                for u in units
            ),
            ip_adapters=()
            if ip_adapter is None
            else (
                IPAdapter(model_name=ip_adapter.model_name, image_base64=None, strength=ip_adapter.strength),
            ),
        )
        images = {"request.image_base64": image}
        images.update({f"request.controlnet.units[{k}].image_base64": u.image for k, u in enumerate(units)})
        if ip_adapter is not None:
            images["request.ip_adapters[0].image_base64"] = ip_adapter.image
        job = runner.Job(template=template, images=images)
        runner.check_pairing(runner.batch_size(image), dict(list(images.items())[1:]))
        warnings = family_warnings(model_name, template.loras, template.embeddings, units, ip_adapter)
        for w in warnings:
            log.warning("PPInfra: %s", w)
        if warnings:
            comfy_bridge.send_status("\n".join(f"warning: {w}" for w in warnings), node_id)

        client = make_client()
        result = await runner.run_job(job, client, node_id, notes=warnings)
        options.refresh_soon()
        from ..ppinfra.images import to_tensor

        seeds = [r.seed for r in result.results]
        first_seed = seeds[0] if seeds and seeds[0] is not None else SEED_SERVER
        info = build_info(result, warnings)
        return (to_tensor(result.images), int(first_seed), info)


# --------------------------------------------------------------------------- helpers


def make_client() -> Any:
    """A client from the environment or the config file in ComfyUI's user directory (never a widget)."""
    from ..ppinfra.client import PPInfraClient

    return PPInfraClient(settings=load_settings(config_path=comfy_bridge.user_config_path()))


def build_template(
    *,
    model_name,
    prompt,
    negative_prompt,
    width,
    height,
    image_num,
    steps,
    guidance_scale,
    sampler_name,
    seed,
    strength,
    clip_skip,
    sd_vae,
    response_image_type,
    loras=None,
    embeddings=None,
) -> Img2ImgRequest:
    """The request without images, every widget checked against its limit (nothing is sent yet).

    ``VALIDATE_INPUTS`` names model inputs (so ComfyUI skips its own checks for
    them) and linked values skip validation altogether: everything is checked
    by the binder, once, as a template (width/height 0 mean the input's size).
    """
    lora_chain = as_chain(loras, Lora, "loras")
    emb_chain = as_chain(embeddings, Embedding, "embeddings")
    check_total("request.loras", len(lora_chain), "LoRA Stack")
    check_total("request.embeddings", len(emb_chain), "Embedding")
    vae = None if sd_vae in (None, "", options.NONE) else sd_vae
    template = Img2ImgRequest(
        model_name=model_name,
        image_base64=None,
        prompt=prompt,
        width=width,
        height=height,
        image_num=image_num,
        steps=steps,
        guidance_scale=guidance_scale,
        sampler_name=sampler_name,
        negative_prompt=negative_prompt,
        sd_vae=vae,
        seed=seed,
        loras=lora_chain,
        embeddings=emb_chain,
        clip_skip=None if clip_skip == CLIP_SKIP_SERVER else clip_skip,
        strength=strength,
        response_image_type=response_image_type,
    )
    return template  # checked once, with its side units, by the binder (ppinfra/binding.py)


def family_warnings(model_name: str, loras, embeddings, units, ip_adapter) -> List[str]:
    """Mixing SD 1.5 and SDXL models works badly or not at all: say so (not an error: the server decides)."""
    base = options.family_of("checkpoint", model_name)
    if base is None:
        return []
    label = {"sdxl": "SDXL", "sd15": "SD 1.5"}
    out = []
    checks = [("LoRA", "lora", l.model_name) for l in loras]
    checks += [("embedding", "textualinversion", e.model_name) for e in embeddings]
    checks += [("ControlNet", "controlnet", u.model_name) for u in units]
    for kind, model_type, name in checks:
        fam = options.family_of(model_type, name)
        if fam is not None and fam != base:
            out.append(f"{kind} {name} is {label[fam]} but the checkpoint {model_name} is {label[base]}")
    if ip_adapter is not None:
        fam = _IP_FAMILY.get(ip_adapter.model_name)
        if fam is not None and fam != base:
            out.append(
                f"IP-Adapter {ip_adapter.model_name} is for {label[fam]} but the checkpoint "
                f"{model_name} is {label[base]}"
            )
    return out


def build_info(result: Any, warnings: List[str]) -> str:
    """The ``info`` output: task ids, seeds, timings and the first request, without images or key."""
    first = result.requests[0].redacted() if result.requests else {}
    info: Dict[str, Any] = {
        "task_ids": [r.task_id for r in result.results],
        "seeds": [r.seed for r in result.results],
        # result cache: true where the images came from the disk cache (no task ran, no charge)
        "from_cache": [bool(getattr(r, "from_cache", False)) for r in result.results],
        "timings": [{k: round(v, 3) for k, v in r.timings.items()} for r in result.results],
        "elapsed": round(result.elapsed, 3),
        "images": sum(len(r.images) for r in result.results),
        "request": first,
        "warnings": warnings,
    }
    return redact(json.dumps(info, ensure_ascii=False))
