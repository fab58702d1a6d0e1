"""Command line: ``python -m ppinfra img2img|txt2img|inpaint|upscale ...``, ``models`` and ``cache``.

Options use the API's own field names, with the limits' defaults and ranges
(:mod:`.options`). ``img2img``, ``inpaint`` and ``upscale`` take one image,
many, or folders of them: every input becomes one task; ``txt2img`` runs
``--count`` tasks. They run a few at a time under the endpoint's
images-per-minute budget, and a journal in the output folder lets an
interrupted run resume without paying twice. ``--sandbox`` runs against an
in-process sandbox (synthetic images, no key, no network).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Optional, Sequence

from ..errors import PPInfraError, ValidationError
from ..limits import MODEL_TYPES
from ..logs import eprint
from .options import DEFAULT_CHECKPOINT, INPAINT_FIELDS, add_task_options

# Subcommand -> endpoint (ppinfra/endpoints.py).
TASK_COMMANDS = {"img2img": "img2img", "txt2img": "txt2img", "inpaint": "inpainting", "upscale": "upscale"}
SIZE_NOTE = " (0: the input's size, fit to the limit, snapped to 8)"
HIRES_NOTE = "; default {} when the hires fix is on"


def _add_img2img(sub: Any) -> None:
    p = sub.add_parser("img2img", help="run img2img on one image, many, or folders, and write the results")
    add_task_options(
        p,
        "img2img",
        inputs=True,
        model_default=DEFAULT_CHECKPOINT,
        fields=(
            ("request.width", {"default": 0, "note": SIZE_NOTE}),
            ("request.height", {"default": 0, "note": SIZE_NOTE}),
            "request.strength",
        ),
    )
    p.add_argument(
        "--controlnet",
        action="append",
        default=[],
        metavar="MODEL=IMAGE[,strength=1,preprocessor=canny,guidance_start=0,guidance_end=1]",
        help="a ControlNet unit, the same for every input (repeatable)",
    )
    p.add_argument(
        "--ip-adapter",
        action="append",
        default=[],
        metavar="MODEL=IMAGE[,strength=0.5]",
        help="an IP-Adapter (at most 1)",
    )


def _add_txt2img(sub: Any) -> None:
    from ..limits import ENDPOINT_LIMITS

    limits = ENDPOINT_LIMITS["txt2img"]
    p = sub.add_parser("txt2img", help="run txt2img --count times and write the results")
    add_task_options(
        p,
        "txt2img",
        inputs=False,
        model_default=DEFAULT_CHECKPOINT,
        fields=(
            "request.width",
            "request.height",
            (
                "request.hires_fix.target_width",
                {"default": None, "note": "; both targets turn the hires fix on"},
            ),
            ("request.hires_fix.target_height", {"default": None}),
            (
                "request.hires_fix.strength",
                {"default": None, "note": HIRES_NOTE.format(limits["request.hires_fix.strength"].default)},
            ),
            (
                "request.hires_fix.upscaler",
                {"default": None, "note": HIRES_NOTE.format(limits["request.hires_fix.upscaler"].default)},
            ),
            (
                "request.refiner.switch_at",
                {"default": None, "note": "; sends the refiner (SDXL only) when given"},
            ),
            "request.restore_faces",
            "request.enable_transparent_background",
        ),
    )
    p.add_argument(
        "--count",
        type=int,
        default=1,
        help="tasks to run (default 1); each returns --image-num images, "
        "and with --seed S task k uses seed S+k",
    )
    p.add_argument("--name", default="txt2img", help="the results' stem: <name>_<k>.<ext> (default: txt2img)")


def _add_inpaint(sub: Any) -> None:
    p = sub.add_parser("inpaint", help="repaint the white part of --mask on one image, many, or folders")
    add_task_options(
        p,
        "inpainting",
        inputs=True,
        model_default=None,
        fields=INPAINT_FIELDS,
    )
    p.add_argument(
        "--mask",
        required=True,
        metavar="FILE",
        help="the mask for every input: white = repaint, black = keep; resized (nearest) to an input of "
        "another size, with a note",
    )


def _add_upscale(sub: Any) -> None:
    p = sub.add_parser("upscale", help="upscale one image, many, or folders (each side <= 2048 px in)")
    add_task_options(p, "upscale", inputs=True, fields=("request.scale_factor",))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ppinfra", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_img2img, _add_txt2img, _add_inpaint, _add_upscale):
        add(sub)

    models = sub.add_parser("models", help="list models by type")
    models.add_argument("--type", default="checkpoint", choices=MODEL_TYPES)
    family = models.add_mutually_exclusive_group()
    family.add_argument("--sdxl", action="store_true", help="only SDXL models")
    family.add_argument("--sd15", action="store_true", help="only SD 1.x models")
    models.add_argument(
        "--inpainting",
        action="store_true",
        help="only inpainting checkpoints (filter.is_inpainting; with --type checkpoint)",
    )
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


def default_concurrency(settings: Any, endpoint: str = "img2img") -> int:
    """A window's worth of the endpoint's budget in flight (4 to 10): fewer would spread each window's
    submits over several task times, and the run would fall behind the budget's pace."""
    from ..pacing import budget_for_settings

    return max(4, min(10, budget_for_settings(settings, endpoint).limit))


def plan(args: argparse.Namespace) -> tuple:
    """(factory, items, noun) of a task subcommand: every option and input checked, nothing sent."""
    from .folder_run import collect_inputs, counted_items

    if args.concurrency is not None and args.concurrency < 1:
        raise ValidationError("--concurrency", "1 or more", args.concurrency)
    if args.images_per_minute is not None and args.images_per_minute < 0:
        raise ValidationError("--images-per-minute", "0 (no pacing) or more", args.images_per_minute)
    if args.command == "txt2img":
        from .sibling_requests import Txt2ImgFactory

        factory = Txt2ImgFactory(args)
        return factory, counted_items(args.name, factory.count, args.image_num), "task(s)"
    inputs = collect_inputs(args.image)
    if args.command == "img2img":
        from .requests_from_args import RequestFactory

        return RequestFactory(args), inputs, "input(s)"
    if args.command == "inpaint":
        from .sibling_requests import InpaintFactory

        return InpaintFactory(args), inputs, "input(s)"
    from .sibling_requests import UpscaleFactory

    factory = UpscaleFactory(args)
    factory.check_sizes(inputs)
    return factory, inputs, "input(s)"


def run_tasks(args: argparse.Namespace) -> int:
    """Any task subcommand: plan, then a folder run against the host (or an in-process sandbox)."""
    from ..client import PPInfraClient
    from ..progress_view import TaskProgress
    from .folder_run import FolderRun
    from .progress_bar import ProgressBar

    endpoint = TASK_COMMANDS[args.command]
    factory, items, noun = plan(args)  # every option checked before anything is sent
    srv = key = None
    base_url = args.base_url
    if args.sandbox:
        srv, key = _start_sandbox(args.sandbox_task_seconds)
        base_url = srv.base_url
    overrides = {} if args.images_per_minute is None else {"images_per_minute": args.images_per_minute}
    try:
        with PPInfraClient(api_key=key, base_url=base_url, **overrides) as client:
            host = client.settings.base_url
            single = len(items) == 1
            concurrency = args.concurrency or default_concurrency(client.settings, endpoint)
            eprint(f"{len(items)} {noun} to {host} ({endpoint}), up to {concurrency} at a time")
            # One item: a line per poll with the task's progress; many: one bar for the run.
            per_task = (
                (lambda req: _progress_printer(TaskProgress.for_request(req, base_url=host)))
                if single
                else None
            )
            run = FolderRun(
                client,
                items,
                args.out,
                factory.build,
                job_key=factory.job_key(host),
                concurrency=concurrency,
                deadline=args.deadline,
                fresh=args.fresh,
                progress=None if single else ProgressBar(len(items)),
                progress_for=per_task,
                endpoint=endpoint,
            )
            summary = run.run()
    finally:
        if srv is not None:
            srv.stop()
    return report(summary, args.out, noun)


def report(summary: Any, out: str, noun: str) -> int:
    """The files on stdout, the rest on stderr; the exit status."""
    for path in summary.files:
        print(path)
    if summary.skipped:
        eprint(
            f"{summary.skipped} {noun} already done by an earlier run (journal in {out}); "
            "--fresh runs them again"
        )
    for path in summary.resent:
        eprint(
            f"note: {path} was being submitted when an earlier run stopped, before the server answered; "
            "it was sent again, so that earlier task may also have run and been billed"
        )
    for path, error in summary.failed.items():
        eprint(f"failed: {path}: {error}")
    if summary.cancelled:
        eprint(
            "cancelled: accepted tasks are in the journal; run the same command again to collect "
            "them without paying twice"
        )
        return 130
    eprint(f"done: {summary.done} new, {summary.skipped} earlier, {len(summary.failed)} failed")
    return 1 if summary.failed else 0


def run_models(args: argparse.Namespace) -> int:
    from ..client import PPInfraClient
    from ..limits import INPAINTING_LIST
    from ..models import ModelCatalog

    srv = key = None
    base_url = args.base_url
    if args.sandbox:
        srv, key = _start_sandbox(1.0)
        base_url = srv.base_url
    try:
        catalog = ModelCatalog(
            lambda: PPInfraClient(api_key=key, base_url=base_url),
            base_url=base_url or "",
            persist=not args.sandbox,
        )  # no cache file per sandbox port
        family = True if args.sdxl else (False if args.sd15 else None)
        listed = args.type
        if args.inpainting:
            if args.type != "checkpoint":
                raise ValidationError("--inpainting", "used with --type checkpoint", args.type)
            listed = INPAINTING_LIST
        for m in catalog.list(listed, is_sdxl=family, refresh=args.refresh or args.sandbox):
            fam = m.family or "?"
            print(f"{m.name}\t{fam}\t{m.base_model}")
    finally:
        if srv is not None:
            srv.stop()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "cache":  # result cache
            from ..result_cache import main as cache_main

            return cache_main(args.action)
        code = run_tasks(args) if args.command in TASK_COMMANDS else run_models(args)
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
