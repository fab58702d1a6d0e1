"""A 40-image folder run against a sandbox that allows 10 images per window: wall time and 429s.

``python bench/pacing_bench.py [--window 6]`` (also a line of ``bench/run.py``).

The provider's window is a minute; the benchmark scales it (6 s by default)
so a run takes seconds. The minimum wall time for N one-image submits at L
per sliding window W is ceil(N / L - 1) * W: the first L go at once, each
later group of L one window after the group before (40 at 10 per 6 s: 18 s).
The figure is the paced run's wall time (the CLI's folder run with its
default concurrency, 10 in flight at this budget, to the last result
written) as a ratio to that minimum, and the number of
submits the sandbox refused with 429. Compared with: the same run with
pacing off, where the client's 429 backoff (scaled by the same factor)
does the waiting.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (ROOT, HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

KEY = "sk-bench-pacing-0123456789"
IMAGES, LIMIT = 40, 10
TASK_SECONDS = 0.3


def _inputs(folder: str, n: int) -> None:
    import numpy as np
    from PIL import Image

    from synth import photo_like

    for i in range(n):
        Image.fromarray((photo_like(96, 96, seed=i) * 255).astype(np.uint8)).save(
            os.path.join(folder, f"in{i:02d}.png")
        )


def run_once(window: float, paced: bool, images: int = IMAGES, limit: int = LIMIT) -> Dict[str, Any]:
    """One folder run of ``images`` inputs; returns wall seconds, submits, tasks, 429s, failures."""
    from ppinfra.cli.folder_run import FolderRun, collect_inputs
    from ppinfra.cli.main import build_parser, default_concurrency
    from ppinfra.cli.requests_from_args import RequestFactory
    from ppinfra.client import PPInfraClient
    from ppinfra.sandbox import SandboxServer

    scale = window / 60.0
    tmp = tempfile.mkdtemp(prefix="ppinfra-pacing-")
    src, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    os.makedirs(src)
    _inputs(src, images)
    srv = SandboxServer(
        api_keys=[KEY],
        queue_seconds=0.05,
        task_seconds=TASK_SECONDS,
        images_per_minute=limit,
        rate_window=window,
    ).start()
    try:
        args = build_parser().parse_args(
            [
                "img2img",
                "--image",
                src,
                "--prompt",
                "a harbour at dusk",
                "--width",
                "128",
                "--height",
                "128",
                "--out",
                out,
            ]
        )
        factory = RequestFactory(args)
        # Unpaced, the client's own 429 backoff waits (5, 10, 20, 30 s ... for a minute's window: scaled).
        client = PPInfraClient(
            api_key=KEY,
            base_url=srv.base_url,
            images_per_minute=limit if paced else 0,
            rate_window=window,
            rate_limit_backoff=5.0 * scale,
            rate_limit_backoff_max=30.0 * scale,
            rate_limit_retries=20,
            deadline=600.0,
        )
        try:
            run = FolderRun(
                client,
                collect_inputs([src]),
                out,
                factory.build,
                job_key=factory.job_key(srv.base_url),
                concurrency=default_concurrency(client.settings),
            )
            t0 = time.monotonic()
            summary = run.run()
            wall = time.monotonic() - t0
        finally:
            client.close()
        submits, tasks = len(srv.submits), len(srv.tasks)
    finally:
        srv.stop()
    return {
        "wall": wall,
        "submits": submits,
        "tasks": tasks,
        "refused": submits - tasks,
        "failed": len(summary.failed),
        "done": summary.done,
    }


def minimum(window: float, images: int = IMAGES, limit: int = LIMIT) -> float:
    from ppinfra.pacing import minimum_seconds

    return minimum_seconds(images, limit, window)


def pacing_row(row: Callable[..., None], window: float = 6.0) -> Dict[str, Any]:
    """Measure both runs and add one line to ``bench/run.py``'s table through its ``row``."""
    paced = run_once(window, paced=True)
    unpaced = run_once(window, paced=False)
    floor = minimum(window)
    ratio = paced["wall"] / floor
    row(
        f"{IMAGES}-image folder run at {LIMIT} images per window ({window:g} s window for 60 s): wall time / "
        f"minimum ceil(N/L-1)*W = {floor:.0f} s; 429s",
        f"{ratio:.2f}x ({paced['wall']:.1f} s), {paced['refused']} x 429, {paced['tasks']} tasks",
        f"pacing off: {unpaced['wall'] / floor:.2f}x ({unpaced['wall']:.1f} s), {unpaced['refused']} x 429",
        "<= 1.1x and 0",
        ratio <= 1.1 and paced["refused"] == 0 and paced["tasks"] == IMAGES,
    )
    return {"paced": paced, "unpaced": unpaced, "minimum": floor, "ratio": ratio}


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--window", type=float, default=6.0, help="seconds that stand for the provider's minute")
    args = ap.parse_args(argv)

    def show(figure: str, pack: str, other: str, target: str, met: Optional[bool]) -> None:
        print(f"{figure}\n  paced: {pack}\n  {other}\n  target {target}: {'met' if met else 'NOT met'}")

    pacing_row(show, args.window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
