"""Every documented limit of the image API, written once, one table per endpoint.

The provider's img2img page is the authority for img2img (summarised in
``docs/api.md``); ``SIBLINGS.md``'s summary of the txt2img, inpainting and upscale
pages for the others. The request validation, the sandbox, the ComfyUI widgets'
min/max/options and the README's node reference all read these values from here;
nothing else may restate a number. ``LIMITS`` is img2img's table;
``ENDPOINT_LIMITS[name]`` is any endpoint's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

SAMPLERS: Tuple[str, ...] = (
    "Euler a",
    "Euler",
    "LMS",
    "Heun",
    "DPM2",
    "DPM2 a",
    "DPM++ 2S a",
    "DPM++ 2M",
    "DPM++ SDE",
    "DPM fast",
    "DPM adaptive",
    "LMS Karras",
    "DPM2 Karras",
    "DPM2 a Karras",
    "DPM++ 2S a Karras",
    "DPM++ 2M Karras",
    "DPM++ SDE Karras",
    "DDIM",
    "PLMS",
    "UniPC",
)

PREPROCESSORS: Tuple[str, ...] = (
    "scribble_hed",
    "softedge_hed",
    "scribble_hedsafe",
    "softedge_hedsafe",
    "depth_midas",
    "mlsd",
    "openpose",
    "openpose_face",
    "openpose_faceonly",
    "openpose_full",
    "openpose_hand",
    "dwpose",
    "scribble_pidinet",
    "softedge_pidinet",
    "scribble_pidsafe",
    "softedge_pidsafe",
    "normal_bae",
    "lineart_coarse",
    "lineart_realistic",
    "lineart_anime",
    "lineart",
    "depth_zoe",
    "shuffle",
    "mediapipe_face",
    "canny",
    "depth",
    "depth_leres",
    "depth_leres++",
)

IP_ADAPTER_MODELS: Tuple[str, ...] = ("ip-adapter_sd15.bin", "ip-adapter_sdxl.bin")

RESPONSE_IMAGE_TYPES: Tuple[str, ...] = ("png", "webp", "jpeg")

# txt2img's hires fix upscalers (the SDK's default is Latent) and the upscale endpoint's models.
HIRES_UPSCALERS: Tuple[str, ...] = ("Latent", "RealESRGAN_x4plus_anime_6B", "RealESRNet_x4plus")
UPSCALE_MODELS: Tuple[str, ...] = ("RealESRGAN_x4plus_anime_6B", "RealESRNet_x4plus", "4x-UltraSharp")

# task-result `task.status` values (docs/api.md, "Task statuses"): SUCCEED and FAILED are terminal.
STATUS_QUEUED = "TASK_STATUS_QUEUED"
STATUS_PROCESSING = "TASK_STATUS_PROCESSING"
STATUS_SUCCEED = "TASK_STATUS_SUCCEED"
STATUS_FAILED = "TASK_STATUS_FAILED"

MODEL_TYPES: Tuple[str, ...] = ("checkpoint", "lora", "vae", "controlnet", "textualinversion", "upscaler")
# The checkpoint list filtered with filter.is_inpainting=true, cached and listed under this name.
INPAINTING_LIST = "checkpoint_inpainting"
# GET /v3/model: pagination.limit range (docs/api.md, "Model list").
MODEL_PAGE_MIN, MODEL_PAGE_MAX = 1, 100

# Image limits. PPInfra documents 30 MB per image file; Novita documents
# 10 MB and 16 MP. We hold every *request body* to 10 MB so one upload works on
# every host (docs/api.md, "Submit").
IMAGE_MAX_SIDE = 2048
IMAGE_MAX_FILE_BYTES = 30 * 1024 * 1024
REQUEST_BODY_MAX_BYTES = 10 * 1000 * 1000
# Inpainting takes an image (and its mask) of up to 16 megapixels instead of a side limit.
INPAINT_MAX_PIXELS = 16 * 1024 * 1024
# txt2img's hires fix may target up to this side; upscale multiplies an input of up to 2048 by 4.
HIRES_MAX_SIDE = 4096
UPSCALE_MAX_SCALE = 4
# The most pixels a *result* image may decode to: the documented maximum side, squared, or the
# size the request itself asked for when that is larger (hires fix, upscale).
RESULT_MAX_PIXELS = IMAGE_MAX_SIDE * IMAGE_MAX_SIDE
# No rule says width/height must be multiples of 8 (inferred): we snap derived sizes to it.
SIZE_SNAP = 8

# Seeds: the provider's page says only ">= -1". The upper bound is inferred from the
# 32-bit seeds Stable Diffusion servers use; it also bounds the ComfyUI widget.
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class Limit:
    """One documented limit.

    ``kind`` is ``int``, ``float``, ``bool``, ``str`` (a length range), ``enum``
    or ``count`` (a list's length). ``min_exclusive``/``max_exclusive`` make an
    end open, as in ``(0, 1]``.
    """

    field: str
    kind: str
    min: Optional[float] = None
    max: Optional[float] = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    options: Tuple[str, ...] = ()
    default: Any = None
    nullable: bool = False
    doc: str = ""

    def describe(self) -> str:
        """The limit in the page's own notation, e.g. ``(0, 1]`` or ``one of 20 values``."""
        if self.kind == "enum":
            if len(self.options) <= 6:
                return "one of " + ", ".join(repr(o) for o in self.options)
            return f"one of {len(self.options)} documented values"
        if self.kind == "count":
            return f"at most {int(self.max)} entries"
        if self.kind == "bool":
            return "true or false"
        lo = "-inf" if self.min is None else _num(self.min)
        hi = "inf" if self.max is None else _num(self.max)
        left = "(" if (self.min_exclusive or self.min is None) else "["
        right = ")" if (self.max_exclusive or self.max is None) else "]"
        text = f"{left}{lo}, {hi}{right}"
        if self.kind == "str":
            return f"length {text}"
        return text

    def widget_min(self) -> float:
        """The smallest value a widget may offer (open ends step in by 0.01)."""
        if self.min is None:
            raise ValueError(f"{self.field} has no lower bound")
        return self.min + (0.01 if self.min_exclusive else 0)

    def widget_max(self) -> float:
        if self.max is None:
            raise ValueError(f"{self.field} has no upper bound")
        return self.max - (0.01 if self.max_exclusive else 0)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


_IMG2IMG = (
    Limit(
        "extra.response_image_type",
        "enum",
        options=RESPONSE_IMAGE_TYPES,
        default="png",
        doc="Format of the result images.",
    ),
    Limit(
        "request.model_name", "str", min=1, doc="Checkpoint (sd_name from /v3/model?filter.types=checkpoint)."
    ),
    Limit("request.prompt", "str", min=1, max=1024, doc="Text that guides the generation."),
    Limit(
        "request.negative_prompt",
        "str",
        min=0,
        max=1024,
        default="",
        doc="What the image should not contain.",
    ),
    Limit("request.width", "int", min=128, max=IMAGE_MAX_SIDE, default=512, doc="Result width in pixels."),
    Limit("request.height", "int", min=128, max=IMAGE_MAX_SIDE, default=512, doc="Result height in pixels."),
    Limit("request.image_num", "int", min=1, max=8, default=1, doc="Images generated per input image."),
    Limit("request.steps", "int", min=1, max=100, default=20, doc="Sampling steps."),
    Limit(
        "request.guidance_scale",
        "float",
        min=1,
        max=30,
        default=7.5,
        doc="How closely to follow the prompt (CFG).",
    ),
    Limit("request.sampler_name", "enum", options=SAMPLERS, default="Euler a", doc="Sampler."),
    Limit(
        "request.sd_vae",
        "str",
        min=1,
        nullable=True,
        doc="VAE (filter.types=vae); omit for the checkpoint's own.",
    ),
    Limit(
        "request.seed", "int", min=-1, max=SEED_MAX, default=-1, doc="Noise seed; -1 lets the server pick."
    ),
    Limit("request.loras", "count", max=5, doc="LoRA models."),
    Limit("request.loras[].model_name", "str", min=1, doc="LoRA (sd_name_in_api from filter.types=lora)."),
    Limit("request.loras[].strength", "float", min=0, max=1, default=0.8, doc="LoRA weight."),
    Limit("request.embeddings", "count", max=5, doc="Textual inversion embeddings."),
    Limit("request.embeddings[].model_name", "str", min=1, doc="Embedding (filter.types=textualinversion)."),
    Limit(
        "request.clip_skip",
        "int",
        min=1,
        max=12,
        nullable=True,
        doc="CLIP layers to skip; null leaves it to the server.",
    ),
    Limit(
        "request.strength",
        "float",
        min=0,
        max=1,
        min_exclusive=True,
        nullable=True,
        default=0.75,
        doc="How far the result may move away from the input image.",
    ),
    Limit("request.ip_adapters", "count", max=1, doc="IP-Adapter units."),
    Limit(
        "request.ip_adapters[].model_name",
        "enum",
        options=IP_ADAPTER_MODELS,
        default=IP_ADAPTER_MODELS[0],
        doc="IP-Adapter model: sd15 for SD 1.x checkpoints, sdxl for SDXL.",
    ),
    Limit("request.ip_adapters[].strength", "float", min=0, max=1, default=0.5, doc="IP-Adapter weight."),
    Limit(
        "request.controlnet.units[].model_name",
        "str",
        min=1,
        doc="ControlNet model (filter.types=controlnet).",
    ),
    Limit(
        "request.controlnet.units[].strength",
        "float",
        min=0,
        max=1,
        min_exclusive=True,
        default=1.0,
        doc="ControlNet weight.",
    ),
    Limit(
        "request.controlnet.units[].preprocessor",
        "enum",
        options=PREPROCESSORS,
        nullable=True,
        doc="Preprocessor applied to the control image by the server; omit to send the image as is.",
    ),
    Limit(
        "request.controlnet.units[].guidance_start",
        "float",
        min=0,
        max=1,
        default=0.0,
        doc="Fraction of the steps where the unit starts; must be below guidance_end.",
    ),
    Limit(
        "request.controlnet.units[].guidance_end",
        "float",
        min=0,
        max=1,
        default=1.0,
        doc="Fraction of the steps where the unit ends; must be above guidance_start.",
    ),
)

# Fields the siblings share with img2img (same ranges) are taken from its table by name.
_SHARED = {limit.field: limit for limit in _IMG2IMG}


def _pick(*fields: str) -> Tuple[Limit, ...]:
    return tuple(_SHARED[f] for f in fields)


_GENERATION = (
    "extra.response_image_type",
    "request.model_name",
    "request.prompt",
    "request.image_num",
    "request.steps",
    "request.guidance_scale",
    "request.sampler_name",
    "request.sd_vae",
    "request.seed",
    "request.loras",
    "request.loras[].model_name",
    "request.loras[].strength",
    "request.embeddings",
    "request.embeddings[].model_name",
    "request.clip_skip",
)

_TXT2IMG = _pick(*_GENERATION, "request.negative_prompt", "request.width", "request.height") + (
    Limit(
        "request.hires_fix.target_width",
        "int",
        min=128,
        max=HIRES_MAX_SIDE,
        default=1024,
        doc="Hires fix: the final width in pixels (larger than width).",
    ),
    Limit(
        "request.hires_fix.target_height",
        "int",
        min=128,
        max=HIRES_MAX_SIDE,
        default=1024,
        doc="Hires fix: the final height in pixels (larger than height).",
    ),
    Limit(
        "request.hires_fix.strength",
        "float",
        min=0,
        max=1,
        default=0.5,
        doc="Hires fix: how much the second pass may change the image.",
    ),
    Limit(
        "request.hires_fix.upscaler",
        "enum",
        options=HIRES_UPSCALERS,
        default="Latent",
        doc="Hires fix: how the first image is enlarged before the second pass.",
    ),
    Limit(
        "request.refiner.switch_at",
        "float",
        min=0,
        max=1,
        default=0.8,
        doc="SDXL refiner: the fraction of the steps after which the refiner takes over.",
    ),
    Limit(
        "request.enable_transparent_background",
        "bool",
        default=False,
        doc="Transparent background (SDXL checkpoints, PNG results only).",
    ),
    Limit("request.restore_faces", "bool", default=False, doc="Restore faces after generation."),
)

_INPAINTING = _pick(*_GENERATION) + (
    Limit(
        "request.model_name",
        "str",
        min=1,
        doc=(
            "Inpainting checkpoint "
            "(sd_name from /v3/model?filter.types=checkpoint&filter.is_inpainting=true)."
        ),
    ),
    Limit(
        "request.negative_prompt",
        "str",
        min=1,
        max=1024,
        default="",
        doc="What the image should not contain (omitted when empty).",
    ),
    Limit(
        "request.strength",
        "float",
        min=0,
        max=1,
        nullable=True,
        default=1.0,
        doc="How far the masked area may move away from the input image.",
    ),
    Limit(
        "request.mask_blur",
        "int",
        min=0,
        max=64,
        nullable=True,
        default=0,
        doc="Pixels of blur on the mask's edge.",
    ),
    Limit(
        "request.inpainting_full_res",
        "int",
        min=0,
        max=1,
        nullable=True,
        default=0,
        doc="1: work on the masked area at full resolution, then paste it back.",
    ),
    Limit(
        "request.inpainting_full_res_padding",
        "int",
        min=0,
        max=256,
        nullable=True,
        default=8,
        doc="Pixels around the mask kept as context in full-resolution mode.",
    ),
    Limit(
        "request.inpainting_mask_invert",
        "int",
        min=0,
        max=1,
        nullable=True,
        default=0,
        doc="1: the server repaints the black part of the mask instead of the white part.",
    ),
    Limit(
        "request.initial_noise_multiplier",
        "float",
        min=0,
        max=1.5,
        nullable=True,
        default=0.5,
        doc="Noise added to the masked area before sampling.",
    ),
)

_UPSCALE = (
    _SHARED["extra.response_image_type"],
    Limit(
        "request.model_name", "enum", options=UPSCALE_MODELS, default=UPSCALE_MODELS[0], doc="Upscaler model."
    ),
    Limit(
        "request.scale_factor",
        "float",
        min=1,
        max=UPSCALE_MAX_SCALE,
        min_exclusive=True,
        default=2.0,
        doc="How many times larger the result is; more than 1, at most 4.",
    ),
)

ENDPOINT_LIMITS = {
    name: {limit.field: limit for limit in table}
    for name, table in (
        ("img2img", _IMG2IMG),
        ("txt2img", _TXT2IMG),
        ("inpainting", _INPAINTING),
        ("upscale", _UPSCALE),
    )
}
LIMITS = ENDPOINT_LIMITS["img2img"]
