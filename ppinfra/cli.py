"""Command line: ``python -m ppinfra img2img ...`` and ``python -m ppinfra models ...``.

Options use the API's own field names. ``--sandbox`` runs the job against an
in-process sandbox (synthetic images, no key, no network).
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .errors import PPInfraError, ValidationError
from .limits import LIMITS, MODEL_TYPES
from .logs import eprint

EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


def _default(field: str) -> Any:
    return LIMITS[field].default


def _parse_kv(spec: str, option: str) -> Tuple[str, Dict[str, str]]:
    """``NAME=VALUE,key=value,...`` -> (NAME, VALUE-and-keys)."""
    head, *rest = spec.split(",")
    if "=" not in head:
        raise ValidationError(option, "MODEL=IMAGE_FILE[,key=value...]", spec)
    name, value = head.split("=", 1)
    opts = {"value": value}
    for item in rest:
        if "=" not in item:
            raise ValidationError(option, "key=value pairs after the first comma", item)
        k, v = item.split("=", 1)
        opts[k.strip()] = v.strip()
    return name.strip(), opts


def _read_image(path: str, field: str):
    from .images import decode_file_to_pil

    try:
        with open(path, "rb") as fh:
            return decode_file_to_pil(fh.read(), field)
    except OSError as exc:
        raise ValidationError(field, "a readable image file", path, exc.strerror or "") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ppinfra", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    i2i = sub.add_parser("img2img", help="run one img2img job and write the result images")
    conn = i2i.add_argument_group("connection")
    conn.add_argument("--sandbox", action="store_true", help="run against an in-process sandbox (no key, no network)")
    conn.add_argument("--sandbox-task-seconds", type=float, default=1.0, help="sandbox processing time per task")
    conn.add_argument("--base-url", help="API host (default: PPINFRA_BASE_URL or https://api.ppinfra.com)")
    conn.add_argument("--deadline", type=float, default=None, help="overall seconds to wait, queue included")
    i2i.add_argument("--image", required=True, help="input image file")
    i2i.add_argument("--out", default="out", help="folder for the result images (default: out)")
    i2i.add_argument("--model-name", default="dreamshaper_8_93211.safetensors", help=LIMITS["request.model_name"].doc)
    i2i.add_argument("--prompt", required=True, help=LIMITS["request.prompt"].doc)
    i2i.add_argument("--negative-prompt", default=None, help=LIMITS["request.negative_prompt"].doc)
    i2i.add_argument("--width", type=int, default=0, help="result width; 0 = the input's size (fit to 2048, snapped to 8)")
    i2i.add_argument("--height", type=int, default=0, help="result height; 0 = the input's size")
    for name, typ in (("image_num", int), ("steps", int), ("guidance_scale", float)):
        lim = LIMITS[f"request.{name}"]
        i2i.add_argument("--" + name.replace("_", "-"), type=typ, default=lim.default,
                         help=f"{lim.doc} {lim.describe()}, default {lim.default}")
    i2i.add_argument("--sampler-name", default=_default("request.sampler_name"), help="sampler, e.g. 'Euler a'")
    i2i.add_argument("--seed", type=int, default=-1, help=LIMITS["request.seed"].doc)
    i2i.add_argument("--strength", type=float, default=None, help=LIMITS["request.strength"].doc + " (0, 1]")
    i2i.add_argument("--clip-skip", type=int, default=None, help=LIMITS["request.clip_skip"].doc)
    i2i.add_argument("--sd-vae", default=None, help=LIMITS["request.sd_vae"].doc)
    i2i.add_argument("--response-image-type", default=None, help="png (default), webp or jpeg")
    i2i.add_argument("--controlnet", action="append", default=[], metavar="MODEL=IMAGE[,strength=1,preprocessor=canny,"
                     "guidance_start=0,guidance_end=1]", help="a ControlNet unit (repeatable)")
    i2i.add_argument("--lora", action="append", default=[], metavar="NAME[=STRENGTH]", help="a LoRA (repeatable, <= 5)")
    i2i.add_argument("--embedding", action="append", default=[], metavar="NAME", help="an embedding (repeatable, <= 5)")
    i2i.add_argument("--ip-adapter", action="append", default=[], metavar="MODEL=IMAGE[,strength=0.5]",
                     help="an IP-Adapter (at most 1)")
    i2i.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    models = sub.add_parser("models", help="list models by type")
    models.add_argument("--type", default="checkpoint", choices=MODEL_TYPES)
    models.add_argument("--sdxl", action="store_true", help="only SDXL models")
    models.add_argument("--sd15", action="store_true", help="only SD 1.x models")
    models.add_argument("--refresh", action="store_true", help="ignore the disk cache")
    models.add_argument("--sandbox", action="store_true", help="list the sandbox's catalog")
    models.add_argument("--base-url")
    return p


def build_request(args: argparse.Namespace):
    """The typed request from parsed options: images encoded, nothing sent."""
    from .images import encode_uploads, match_input_size
    from .request import ControlNetUnit, Embedding, Img2ImgRequest, IPAdapter, Lora

    image = _read_image(args.image, "request.image_base64")
    uploads: List[Tuple[str, Any]] = [("request.image_base64", image)]

    def side_images(specs: List[str], option: str, field: str) -> List[Tuple[str, Dict[str, str]]]:
        """Parse MODEL=IMAGE[,k=v] options; queue each image for upload; return (model, options) pairs."""
        out = []
        for i, spec in enumerate(specs):
            name, opts = _parse_kv(spec, f"{option}[{i}]")
            path = field.format(i)
            uploads.append((path, _read_image(opts.pop("value"), path)))
            out.append((name, opts))
        return out

    units_spec = side_images(args.controlnet, "--controlnet", "request.controlnet.units[{}].image_base64")
    adapters_spec = side_images(args.ip_adapter, "--ip-adapter", "request.ip_adapters[{}].image_base64")
    encoded = encode_uploads(uploads)

    units = []
    for (name, opts), b64 in zip(units_spec, encoded[1:1 + len(units_spec)]):
        pre = opts.get("preprocessor")
        units.append(ControlNetUnit(model_name=name, image_base64=b64, strength=float(opts.get("strength", 1.0)),
                                    preprocessor=None if pre in (None, "", "none") else pre,
                                    guidance_start=float(opts.get("guidance_start", 0.0)),
                                    guidance_end=float(opts.get("guidance_end", 1.0))))
    adapters = [IPAdapter(model_name=name, image_base64=b64, strength=float(opts.get("strength", 0.5)))
                for (name, opts), b64 in zip(adapters_spec, encoded[1 + len(units_spec):])]
    loras = []
    for spec in args.lora:
        name, _, strength = spec.partition("=")
        loras.append(Lora(model_name=name, strength=float(strength) if strength else 0.8))
    width, height = args.width, args.height
    if width == 0 or height == 0:
        mw, mh = match_input_size(*image.size)
        width, height = width or mw, height or mh
    return Img2ImgRequest(
        model_name=args.model_name, image_base64=encoded[0], prompt=args.prompt, width=width, height=height,
        image_num=args.image_num, steps=args.steps, guidance_scale=args.guidance_scale,
        sampler_name=args.sampler_name, negative_prompt=args.negative_prompt, sd_vae=args.sd_vae,
        controlnet_units=tuple(units), seed=args.seed, loras=tuple(loras),
        embeddings=tuple(Embedding(e) for e in args.embedding), clip_skip=args.clip_skip, strength=args.strength,
        ip_adapters=tuple(adapters), response_image_type=args.response_image_type)


def _progress_printer():
    last = {"line": ""}

    def show(p) -> None:
        eta = "" if p.eta is None else f", eta {p.eta:.0f}s"
        line = f"[{p.task_id[:8]}] {p.status.replace('TASK_STATUS_', '').lower()} {p.percent:3.0f}%{eta}, {p.elapsed:.1f}s"
        if line != last["line"]:
            eprint(line)
            last["line"] = line

    return show


def _start_sandbox(task_seconds: float):
    from .sandbox import SandboxServer

    key = "sk-sandbox-cli"
    srv = SandboxServer(api_keys=(key,), task_seconds=task_seconds, queue_seconds=0.2).start()
    eprint(f"sandbox: {srv.base_url} (synthetic images, not diffusion)")
    return srv, key


def run_img2img(args: argparse.Namespace) -> int:
    from .client import PPInfraClient

    request = build_request(args)
    srv = None
    key = None
    base_url = args.base_url
    if args.sandbox:
        srv, key = _start_sandbox(args.sandbox_task_seconds)
        base_url = srv.base_url
    try:
        with PPInfraClient(api_key=key, base_url=base_url) as client:
            eprint(f"submitting to {client.settings.base_url}: {request.width}x{request.height} x{request.image_num}")
            result = client.img2img(request, on_progress=_progress_printer(), deadline=args.deadline)
    finally:
        if srv is not None:
            srv.stop()
    os.makedirs(args.out, exist_ok=True)
    ext = EXTENSIONS.get(result.image_type or request.response_image_type or "png", "png")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i, blob in enumerate(result.images):
        path = os.path.join(args.out, f"ppinfra-{stamp}-{result.task_id[:8]}-{i}.{ext}")
        with open(path, "wb") as fh:
            fh.write(blob)
        print(path)
    eprint(f"done: task {result.task_id}, seed {result.seed}, {result.timings['total']:.1f}s")
    return 0


def run_models(args: argparse.Namespace) -> int:
    from .client import PPInfraClient
    from .models import ModelCatalog

    srv = key = None
    base_url = args.base_url
    if args.sandbox:
        srv, key = _start_sandbox(1.0)
        base_url = srv.base_url
    try:
        catalog = ModelCatalog(lambda: PPInfraClient(api_key=key, base_url=base_url),
                               base_url=base_url or "")
        family = True if args.sdxl else (False if args.sd15 else None)
        for m in catalog.list(args.type, is_sdxl=family, refresh=args.refresh or args.sandbox):
            fam = "sdxl" if m.is_sdxl else ("sd15" if m.is_sdxl is False else "?")
            print(f"{m.name}\t{fam}\t{m.base_model}")
    finally:
        if srv is not None:
            srv.stop()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return run_img2img(args) if args.command == "img2img" else run_models(args)
    except PPInfraError as exc:
        eprint(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        eprint("cancelled (a submitted task may still run and be billed)")
        return 130
