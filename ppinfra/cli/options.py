"""The options of the task subcommands, built from the endpoint's limits by one helper.

An option is its API field in kebab-case (``request.guidance_scale`` ->
``--guidance-scale``), and its type, default, choices and help come from
``ENDPOINT_LIMITS[endpoint]``: no number is restated here. The same table
names the option in an error (:func:`named`), so a refusal reads
``--steps (request.steps) must be in [1, 100], got 101``.
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, Iterable, Optional, Tuple

from ..endpoints import ENDPOINTS
from ..errors import ValidationError
from ..limits import ENDPOINT_LIMITS, Limit
from ..inpainting_request import OWN_FIELDS
from ..request import _generic

# Inpainting's own optional fields (after the ones every generating endpoint shares).
INPAINT_FIELDS = tuple(f"request.{name}" for name in OWN_FIELDS)

# The checkpoint img2img and txt2img use when --model-name is left out (an SD 1.5 model every host lists).
DEFAULT_CHECKPOINT = "dreamshaper_8_93211.safetensors"
FROM_LIMIT = object()  # the option's default is the limit's (None, "omit", for a nullable field)

# The fields every generating endpoint takes, in the order --help shows them; an endpoint gets those its
# limit table has (upscale: the model only).
GENERATION = (
    "request.model_name",
    "request.prompt",
    "request.negative_prompt",
    "request.image_num",
    "request.steps",
    "request.guidance_scale",
    "request.sampler_name",
    "request.seed",
    "request.clip_skip",
    "request.sd_vae",
)
# Fields left out of the body unless given: the server's own default applies.
OMITTED_UNLESS_SET = ("request.negative_prompt", "extra.response_image_type")

# Flags that the field path does not give by itself (shorter names, or a list option's entries).
FLAGS: Dict[str, str] = {
    "request.hires_fix.target_width": "--hires-target-width",
    "request.hires_fix.target_height": "--hires-target-height",
    "request.hires_fix.strength": "--hires-strength",
    "request.hires_fix.upscaler": "--hires-upscaler",
    "request.loras": "--lora",
    "request.loras[].model_name": "--lora",
    "request.loras[].strength": "--lora strength",
    "request.embeddings": "--embedding",
    "request.embeddings[].model_name": "--embedding",
    "request.ip_adapters": "--ip-adapter",
    "request.ip_adapters[].model_name": "--ip-adapter",
    "request.ip_adapters[].strength": "--ip-adapter strength",
    "request.controlnet.units[].model_name": "--controlnet",
    "request.controlnet.units[].strength": "--controlnet strength",
    "request.controlnet.units[].preprocessor": "--controlnet preprocessor",
    "request.controlnet.units[].guidance_start": "--controlnet guidance_start",
    "request.controlnet.units[].guidance_end": "--controlnet guidance_end",
    "request.image_base64": "--image",
    "request.mask_image_base64": "--mask",
}


def flag(path: str) -> str:
    """The option for a field path (``request.refiner.switch_at`` -> ``--refiner-switch-at``)."""
    generic = _generic(path)
    if generic in FLAGS:
        return FLAGS[generic]
    return "--" + generic.split(".", 1)[1].replace("[]", "").replace(".", "-").replace("_", "-")


def dest(path: str) -> str:
    """The argparse attribute of a field path (``request.hires_fix.strength`` -> ``hires_fix_strength``)."""
    return path.split(".", 1)[1].replace("[]", "").replace(".", "_")


def value(args: argparse.Namespace, path: str) -> Any:
    return getattr(args, dest(path))


def named(exc: ValidationError) -> ValidationError:
    """``exc`` with the option in front of the field path it names
    (``--steps (request.steps) must be ...``)."""
    field = exc.field.split(" ")[0]
    if not field.startswith(("request.", "extra.")) or not str(exc).startswith(exc.field):
        return exc
    label = f"{flag(field)} ({exc.field})"
    try:
        out = type(exc)(label, exc.limit, exc.value)
    except TypeError:  # a subclass with another signature
        out = ValidationError(label, exc.limit, exc.value)
    out.args = (label + str(exc)[len(exc.field) :],)
    return out


def _help(lim: Limit, default: Any, server_default: bool) -> str:
    text = lim.doc.rstrip(".")
    if lim.kind in ("int", "float") or (lim.kind == "enum" and len(lim.options) > 6):
        text += f", {lim.describe()}"
    elif lim.kind == "str" and lim.max is not None:
        text += f" ({lim.describe()})"
    if lim.kind == "bool":
        return text
    if default is not None:
        return f"{text}; default {default}"
    if server_default and lim.default not in (None, ""):
        return f"{text}; default: the server's ({lim.default})"
    return text


def add_field(
    group: Any, endpoint: str, path: str, *, default: Any = FROM_LIMIT, required: bool = False, note: str = ""
) -> None:
    """One option for the field ``path`` of ``endpoint``: its flag, type, choices, default and help."""
    lim = ENDPOINT_LIMITS[endpoint][path]
    from_limit = default is FROM_LIMIT
    if from_limit:
        default = None if (lim.nullable or path in OMITTED_UNLESS_SET) else lim.default
    kw: Dict[str, Any] = {"dest": dest(path), "help": _help(lim, default, from_limit) + note}
    if lim.kind == "bool":
        kw.update(action="store_true", default=None)
    else:
        kw.update(type={"int": int, "float": float}.get(lim.kind, str), default=default, required=required)
        if lim.kind == "enum" and len(lim.options) <= 6:
            kw["choices"] = lim.options
        if "choices" not in kw:
            kw["metavar"] = flag(path)[2:].upper().replace("-", "_")
    group.add_argument(flag(path), **kw)


def add_task_options(
    parser: argparse.ArgumentParser,
    endpoint: str,
    *,
    inputs: bool,
    model_default: Any = FROM_LIMIT,
    fields: Iterable[Any] = (),
) -> None:
    """Everything a task subcommand takes: connection, inputs and pacing, the shared generation fields
    that ``endpoint``'s limits list, then ``fields`` (paths, or ``(path, add_field keywords)``)."""
    limits = ENDPOINT_LIMITS[endpoint]
    ep = ENDPOINTS[endpoint]
    conn = parser.add_argument_group("connection")
    conn.add_argument(
        "--sandbox", action="store_true", help="run against an in-process sandbox (no key, no network)"
    )
    conn.add_argument(
        "--sandbox-task-seconds", type=float, default=1.0, help="sandbox processing time per task"
    )
    conn.add_argument("--base-url", help="API host (default: PPINFRA_BASE_URL or https://api.ppinfra.com)")
    conn.add_argument(
        "--deadline", type=float, default=None, help="overall seconds to wait per task, queue included"
    )
    runs = parser.add_argument_group("inputs, results and pacing")
    if inputs:
        runs.add_argument(
            "--image",
            required=True,
            nargs="+",
            action="extend",
            metavar="FILE_OR_FOLDER",
            help="input image files and/or folders of them (.png .jpg .jpeg .webp); one task each",
        )
    named_after = "<input stem>_<k>.<ext>" if inputs else "<name>_<k>.<ext>"
    runs.add_argument(
        "--out",
        default="out",
        help=f"folder for the results, named {named_after} (default: out); "
        "its journal lets a rerun resume without paying twice",
    )
    runs.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="tasks in flight at once (default: one window of the budget, 4 to 10)",
    )
    plans = ", ".join(f"{n} on {host}" for host, n in ep.images_per_minute.items())
    runs.add_argument(
        "--images-per-minute",
        type=int,
        default=None,
        help=f"your plan's {ep.name} images per minute, shared by every run in this process "
        f"(default: PPINFRA_IMAGES_PER_MINUTE, else the base plan's: {plans}; 0 = no pacing)",
    )
    runs.add_argument("--fresh", action="store_true", help="ignore the journal: run every task again")
    gen = parser.add_argument_group(f"{ep.name} fields (the API's names)")
    for path in GENERATION:
        if path not in limits:
            continue
        if path == "request.model_name":
            default = limits[path].default if model_default is FROM_LIMIT else model_default
            add_field(gen, endpoint, path, default=default, required=default is None)
        else:
            add_field(gen, endpoint, path, required=path == "request.prompt")
    add_field(gen, endpoint, "extra.response_image_type")
    if "request.loras" in limits:
        strength = limits["request.loras[].strength"]
        gen.add_argument(
            "--lora",
            action="append",
            default=[],
            metavar="NAME[=STRENGTH]",
            help=f"a LoRA, strength {strength.describe()} (default {strength.default}); repeatable, "
            f"{limits['request.loras'].describe()}",
        )
        gen.add_argument(
            "--embedding",
            action="append",
            default=[],
            metavar="NAME",
            help=f"an embedding; repeatable, {limits['request.embeddings'].describe()}",
        )
    for item in fields:
        path, kw = item if isinstance(item, tuple) else (item, {})
        add_field(gen, endpoint, path, **kw)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def chains(args: argparse.Namespace) -> Tuple[tuple, tuple]:
    """``--lora`` and ``--embedding`` as request entries."""
    from ..request import Embedding
    from .requests_from_args import parse_lora

    return tuple(parse_lora(s) for s in args.lora), tuple(Embedding(e) for e in args.embedding)


def optional_text(args: argparse.Namespace, path: str) -> Optional[str]:
    """A text option, None when empty (the API wants it left out rather than sent empty)."""
    text = value(args, path)
    return text if text else None


def generation_fields(args: argparse.Namespace) -> Dict[str, Any]:
    """The fields every generating endpoint shares (``request.GenerationRequest``), from their options."""
    loras, embeddings = chains(args)
    return dict(
        model_name=args.model_name,
        prompt=args.prompt,
        image_num=args.image_num,
        steps=args.steps,
        guidance_scale=args.guidance_scale,
        sampler_name=args.sampler_name,
        negative_prompt=optional_text(args, "request.negative_prompt"),
        sd_vae=args.sd_vae,
        seed=args.seed,
        loras=loras,
        embeddings=embeddings,
        clip_skip=args.clip_skip,
        response_image_type=args.response_image_type,
    )
