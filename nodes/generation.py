"""What the generation nodes (Img2Img, Txt2Img, Inpaint) share, written once.

Their common widgets (built for each endpoint from its limits), the request
fields every generation endpoint takes alike, the model-family warnings, the
``info`` output, and one run: a node's ``prepare`` turns its inputs into a job
and warnings, and :class:`GenerationNode` reports them, runs the job and
returns ``(images, seed, info)``. Each node file keeps only what is its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Dict, List, Sequence, Tuple

from ..ppinfra.config import load_settings
from ..ppinfra.limits import ENDPOINT_LIMITS
from ..ppinfra.redaction import redact
from ..ppinfra.request import Embedding, Lora

from . import comfy_bridge
from . import widgets as options
from .links import CATEGORY, EMBEDDINGS, LORAS, as_chain, check_total

log = logging.getLogger("ppinfra")

CLIP_SKIP_SERVER = 0  # clip_skip 0: leave it to the server (sent as absent)
SEED_SERVER = -1
FAMILY_LABEL = {"sdxl": "SDXL", "sd15": "SD 1.5"}
_IP_FAMILY = {"ip-adapter_sd15.bin": "sd15", "ip-adapter_sdxl.bin": "sdxl"}
_CHECKPOINT = "dreamshaper_8_93211.safetensors"  # the default checkpoint where it is listed
SEED_OUTPUT_TOOLTIP = "The seed the server used for the first image (-1 when it did not say)."
_SEED_TOOLTIP = (
    "Noise seed; -1 lets the server pick (and re-runs on every queue). "
    "A fixed seed lets ComfyUI reuse the cached result."
)


# --------------------------------------------------------------------------- widgets


def image_batch_input() -> tuple:
    """The input batch of the nodes that run one task per image."""
    return (
        "IMAGE",
        {
            "tooltip": "Input image(s). A batch of B images runs B tasks, up to 4 at a "
            "time within the images-per-minute budget."
        },
    )


def prompt_inputs(endpoint: str, *, negative_note: str = "", inpainting: bool = False) -> Dict[str, tuple]:
    """``model_name``, ``prompt`` and ``negative_prompt`` (whose tooltip is the limit's doc, then
    ``negative_note``); ``inpainting`` lists the inpainting checkpoints."""
    limits = ENDPOINT_LIMITS[endpoint]
    R = "request."
    model = (
        options.model_input("checkpoint", limits[R + "model_name"].doc, inpainting=True)
        if inpainting
        else options.model_input("checkpoint", limits[R + "model_name"].doc, preferred=(_CHECKPOINT,))
    )
    negative = limits[R + "negative_prompt"].doc + (f" {negative_note}" if negative_note else "")
    return {
        "model_name": model,
        "prompt": (
            "STRING",
            {
                "multiline": True,
                "default": "",
                "tooltip": f"{limits[R + 'prompt'].doc} {limits[R + 'prompt'].describe()}.",
            },
        ),
        "negative_prompt": ("STRING", {"multiline": True, "default": "", "tooltip": negative}),
    }


def sampling_inputs(endpoint: str, *, image_num_tooltip: str = "") -> Dict[str, tuple]:
    """``image_num``, ``steps``, ``guidance_scale``, ``sampler_name`` and ``seed``."""
    R, E = "request.", {"endpoint": endpoint}
    return {
        "image_num": options.int_input(R + "image_num", image_num_tooltip, **E),
        "steps": options.int_input(R + "steps", **E),
        "guidance_scale": options.float_input(R + "guidance_scale", step=0.1, **E),
        "sampler_name": options.enum_input(R + "sampler_name", **E),
        "seed": options.int_input(R + "seed", _SEED_TOOLTIP, control_after_generate=True, **E),
    }


def model_tail_inputs(endpoint: str) -> Dict[str, tuple]:
    """``clip_skip``, ``sd_vae`` and ``response_image_type``: every generation node's last required inputs."""
    E = {"endpoint": endpoint}
    return {
        "clip_skip": options.int_input(
            "request.clip_skip",
            "CLIP layers to skip; 0 leaves it to the server.",
            min=CLIP_SKIP_SERVER,
            default=CLIP_SKIP_SERVER,
            **E,
        ),
        "sd_vae": options.model_input(
            "vae",
            "VAE; 'None' leaves it to the server (the checkpoint's own).",
            with_none=True,
            preferred=(options.NONE,),
        ),
        "response_image_type": options.enum_input("extra.response_image_type", **E),
    }


def chain_inputs() -> Dict[str, tuple]:
    """The optional ``loras`` and ``embeddings`` chains."""
    return {
        "loras": (LORAS, {"tooltip": "LoRAs from PPInfra LoRA Stack nodes (at most 5 in total)."}),
        "embeddings": (EMBEDDINGS, {"tooltip": "Embeddings from PPInfra Embedding nodes (at most 5)."}),
    }


# --------------------------------------------------------------------------- requests


def shared_fields(
    *,
    model_name,
    prompt,
    image_num,
    steps,
    guidance_scale,
    sampler_name,
    seed,
    clip_skip,
    sd_vae,
    response_image_type,
    loras=None,
    embeddings=None,
) -> Dict[str, Any]:
    """The request fields every generation endpoint takes alike from the widgets (chain totals checked)."""
    lora_chain = as_chain(loras, Lora, "loras")
    emb_chain = as_chain(embeddings, Embedding, "embeddings")
    check_total("request.loras", len(lora_chain), "LoRA Stack")
    check_total("request.embeddings", len(emb_chain), "Embedding")
    return dict(
        model_name=model_name,
        prompt=prompt,
        image_num=image_num,
        steps=steps,
        guidance_scale=guidance_scale,
        sampler_name=sampler_name,
        sd_vae=None if sd_vae in (None, "", options.NONE) else sd_vae,
        seed=seed,
        loras=lora_chain,
        embeddings=emb_chain,
        clip_skip=None if clip_skip == CLIP_SKIP_SERVER else clip_skip,
        response_image_type=response_image_type,
    )


def family_warnings(model_name: str, loras, embeddings, units=(), ip_adapter=None) -> List[str]:
    """Mixing SD 1.5 and SDXL models works badly or not at all: say so (not an error: the server decides)."""
    base = options.family_of("checkpoint", model_name)
    if base is None:
        return []
    label = FAMILY_LABEL
    out = []
    checks = [("LoRA", "lora", lora.model_name) for lora in loras]
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


# --------------------------------------------------------------------------- running


def make_client() -> Any:
    """A client from the environment or the config file in ComfyUI's user directory (never a widget)."""
    from ..ppinfra.client import PPInfraClient

    return PPInfraClient(settings=load_settings(config_path=comfy_bridge.user_config_path()))


async def run(job: Any, node_id: Any, warnings: Sequence[str] = ()) -> Any:
    """Warnings to the log and under the node, then ``job`` on a fresh client (closed by the runner)."""
    from . import runner

    for w in warnings:
        log.warning("PPInfra: %s", w)
    if warnings:
        comfy_bridge.send_status("\n".join(f"warning: {w}" for w in warnings), node_id)
    return await runner.run_job(job, make_client(), node_id, notes=warnings)


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


class GenerationNode:
    """The ComfyUI side every generation node shares.

    A subclass declares ``DESCRIPTION``, ``OUTPUT_TOOLTIPS``, its inputs
    (``required_inputs``, and ``optional_inputs`` when they are more than the
    LoRA and embedding chains) and ``prepare``.
    """

    CATEGORY = CATEGORY
    FUNCTION = "generate"
    RETURN_TYPES = ("IMAGE", "INT", "STRING")
    RETURN_NAMES = ("images", "seed", "info")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        options.refresh_soon()
        return {
            "required": cls.required_inputs(),
            "optional": cls.optional_inputs(),
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def required_inputs(cls) -> Dict[str, tuple]:
        """The widgets and sockets in the order saved workflows hold their values."""
        raise NotImplementedError

    @classmethod
    def optional_inputs(cls) -> Dict[str, tuple]:
        return chain_inputs()

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

    def prepare(self, **inputs: Any) -> Tuple[Any, List[str]]:
        """The node's inputs as ``(runner.Job, warnings)``: every check done, nothing sent yet."""
        raise NotImplementedError

    async def generate(self, unique_id=None, **inputs):
        # ComfyUI calls FUNCTION with every input by name (and awaits it: it must stay a coroutine).
        node_id = None if unique_id is None else str(unique_id)
        job, warnings = self.prepare(**inputs)
        result = await run(job, node_id, warnings)
        options.refresh_soon()
        from ..ppinfra.images import to_tensor

        seeds = [r.seed for r in result.results]
        first_seed = seeds[0] if seeds and seeds[0] is not None else SEED_SERVER
        return (to_tensor(result.images), int(first_seed), build_info(result, warnings))
