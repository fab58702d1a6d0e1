"""Command line: ``python -m ppinfra img2img ...`` and ``python -m ppinfra models ...``.

Options use the API's own field names. ``img2img`` takes one image, many, or
folders of them: every input becomes one task, run a few at a time under the
process's images-per-minute budget, results named after their inputs, and a
journal in the output folder lets an interrupted run resume without paying
twice. ``--sandbox`` runs against an in-process sandbox (synthetic images, no
key, no network).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Optional, Sequence

from ..errors import PPInfraError
from ..limits import LIMITS, MODEL_TYPES
from ..logs import eprint


def _default(field: str) -> Any:
    return LIMITS[field].default


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ppinfra", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    i2i = sub.add_parser("img2img", help="run img2img on one image, many, or folders, and write the results")
    conn = i2i.add_argument_group("connection")
    conn.add_argument("--sandbox", action="store_true", help="run against an in-process sandbox (no key, no network)")
    conn.add_argument("--sandbox-task-seconds", type=float, default=1.0, help="sandbox processing time per task")
    conn.add_argument("--base-url", help="API host (default: PPINFRA_BASE_URL or https://api.ppinfra.com)")
    conn.add_argument("--deadline", type=float, default=None, help="overall seconds to wait per input, queue included")
    runs = i2i.add_argument_group("inputs and pacing")
    runs.add_argument("--image", required=True, nargs="+", action="extend", metavar="FILE_OR_FOLDER",
                      help="input image files and/or folders of them (.png .jpg .jpeg .webp); one task each")
    runs.add_argument("--out", default="out", help="folder for the results, named <input stem>_<k>.<ext> "
                      "(default: out); its journal lets a rerun resume")
    runs.add_argument("--concurrency", type=int, default=None,
                      help="tasks in flight at once (default: one window of the budget, 4 to 10)")
    runs.add_argument("--images-per-minute", type=int, default=None,
                      help="your plan's img2img images per minute, shared by every run in this process "
                           "(default: PPINFRA_IMAGES_PER_MINUTE, else 10 on the provider's hosts; 0 = no pacing)")
    runs.add_argument("--fresh", action="store_true", help="ignore the journal: run every input again")
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
                     "guidance_start=0,guidance_end=1]", help="a ControlNet unit, the same for every input (repeatable)")
    i2i.add_argument("--lora", action="append", default=[], metavar="NAME[=STRENGTH]", help="a LoRA (repeatable, <= 5)")
    i2i.add_argument("--embedding", action="append", default=[], metavar="NAME", help="an embedding (repeatable, <= 5)")
    i2i.add_argument("--ip-adapter", action="append", default=[], metavar="MODEL=IMAGE[,strength=0.5]",
                     help="an IP-Adapter (at most 1)")
    i2i.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    models = sub.add_parser("models", help="list models by type")
    models.add_argument("--type", default="checkpoint", choices=MODEL_TYPES)
    family = models.add_mutually_exclusive_group()
    family.add_argument("--sdxl", action="store_true", help="only SDXL models")
    family.add_argument("--sd15", action="store_true", help="only SD 1.x models")
    models.add_argument("--refresh", action="store_true", help="ignore the disk cache")
    models.add_argument("--sandbox", action="store_true", help="list the sandbox's catalog")
    models.add_argument("--base-url")

    # result cache (ppinfra/result_cache.py): no key needed
    cache = sub.add_parser("cache", help="show or clear the result cache (results reused across restarts)")
    cache.add_argument("action", choices=("info", "clear"))
    return p


def _progress_printer(view=None):
    last = {"line": ""}

    def show(p) -> None:
        eta = "" if p.eta is None else f", eta {p.eta:.0f}s"
        if view is not None:  # a TaskProgress: the server's figure, else an estimate that says so
            view.update(p)
        figure = view.text() if view is not None else f"{p.percent:3.0f}%{eta}"
        line = f"[{p.task_id[:8]}] {p.status.replace('TASK_STATUS_', '').lower()} {figure}, {p.elapsed:.1f}s"
        if line != last["line"]:
            eprint(line)
            last["line"] = line

    return show


def _start_sandbox(task_seconds: float):
    from ..sandbox import SandboxServer

    key = "sk-sandbox-cli"
    srv = SandboxServer(api_keys=(key,), task_seconds=task_seconds, queue_seconds=0.2).start()
    eprint(f"sandbox: {srv.base_url} (synthetic images, not diffusion)")
    return srv, key


def default_concurrency(settings: Any) -> int:
    """A window's worth of the budget in flight (4 to 10): fewer would spread each window's submits
    over several task times, and the run would fall behind the budget's pace."""
    from ..pacing import budget_for_settings

    return max(4, min(10, budget_for_settings(settings, "img2img").limit))


def run_img2img(args: argparse.Namespace) -> int:
    from .folder_run import FolderRun, collect_inputs
    from .requests_from_args import RequestFactory
    from ..client import PPInfraClient
    from .progress_bar import ProgressBar
    from ..progress_view import TaskProgress

    if args.concurrency is not None and args.concurrency < 1:
        raise PPInfraError(f"--concurrency must be 1 or more, got {args.concurrency}.")
    if args.images_per_minute is not None and args.images_per_minute < 0:
        raise PPInfraError(f"--images-per-minute must be 0 (no pacing) or more, got {args.images_per_minute}.")
    inputs = collect_inputs(args.image)
    factory = RequestFactory(args)  # every option checked before anything is sent
    srv = key = None
    base_url = args.base_url
    if args.sandbox:
        srv, key = _start_sandbox(args.sandbox_task_seconds)
        base_url = srv.base_url
    overrides = {} if args.images_per_minute is None else {"images_per_minute": args.images_per_minute}
    try:
        with PPInfraClient(api_key=key, base_url=base_url, **overrides) as client:
            host = client.settings.base_url
            single = len(inputs) == 1
            concurrency = args.concurrency or default_concurrency(client.settings)
            eprint(f"{len(inputs)} input(s) to {host}, up to {concurrency} at a time")
            # One input: a line per poll with the task's progress; many: one bar for the run.
            per_task = (lambda req: _progress_printer(TaskProgress.for_request(req, base_url=host))) if single else None
            run = FolderRun(client, inputs, args.out, factory.build, job_key=factory.job_key(host),
                            concurrency=concurrency, deadline=args.deadline, fresh=args.fresh,
                            progress=None if single else ProgressBar(len(inputs)), progress_for=per_task)
            summary = run.run()
    finally:
        if srv is not None:
            srv.stop()
    for path in summary.files:
        print(path)
    if summary.skipped:
        eprint(f"{summary.skipped} input(s) already done by an earlier run (journal in {args.out}); "
               "--fresh runs them again")
    for path in summary.resent:
        eprint(f"note: {path} was being submitted when an earlier run stopped, before the server answered; "
               "it was sent again, so that earlier task may also have run and been billed")
    for path, error in summary.failed.items():
        eprint(f"failed: {path}: {error}")
    if summary.cancelled:
        eprint("cancelled: accepted tasks are in the journal; run the same command again to collect "
               "them without paying twice")
        return 130
    eprint(f"done: {summary.done} new, {summary.skipped} earlier, {len(summary.failed)} failed")
    return 1 if summary.failed else 0


def run_models(args: argparse.Namespace) -> int:
    from ..client import PPInfraClient
    from ..models import ModelCatalog

    srv = key = None
    base_url = args.base_url
    if args.sandbox:
        srv, key = _start_sandbox(1.0)
        base_url = srv.base_url
    try:
        catalog = ModelCatalog(lambda: PPInfraClient(api_key=key, base_url=base_url),
                               base_url=base_url or "", persist=not args.sandbox)  # no cache file per sandbox port
        family = True if args.sdxl else (False if args.sd15 else None)
        for m in catalog.list(args.type, is_sdxl=family, refresh=args.refresh or args.sandbox):
            fam = m.family or "?"
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
        if args.command == "cache":  # result cache
            from ..result_cache import main as cache_main
            return cache_main(args.action)
        code = run_img2img(args) if args.command == "img2img" else run_models(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at exit
        return code
    except PPInfraError as exc:
        eprint(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        eprint("cancelled (a submitted task may still run and be billed)")
        return 130
    except BrokenPipeError:
        # Piped into `head` or a closed pager: stop quietly, as shell tools do (128 + SIGPIPE).
        # The flush at exit then writes to devnull instead of raising again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
