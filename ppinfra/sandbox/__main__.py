"""``python -m ppinfra.sandbox``: run the sandbox in the foreground until Ctrl-C.

Lenient (real-like) by default; ``--strict`` refuses every shape outside the provider's page.
``--provider ppinfra|ppio|novita`` picks whose answers it gives (default novita).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Dict, List, Optional, Union

from ..limits import MODEL_TYPES
from .server import DEFAULT_MAX_REQUESTS, DEFAULT_MAX_TASKS, DEFAULT_PROVIDER, PLAN, PROVIDERS, SandboxServer
from .tasks import PROGRESS_MODES


def catalog_size(text: str) -> Union[int, Dict[str, int]]:
    """``30000`` (checkpoints) or ``checkpoint=30000,lora=20000,textualinversion=3000``."""
    if text.isdigit():
        return int(text)
    sizes: Dict[str, int] = {}
    for part in text.split(","):
        name, sep, count = part.partition("=")
        if not sep or name.strip() not in MODEL_TYPES or not count.strip().isdigit():
            raise argparse.ArgumentTypeError(
                f"expected a number or type=count pairs with types {', '.join(MODEL_TYPES)}, got {part!r}"
            )
        sizes[name.strip()] = int(count)
    return sizes


def images_per_minute(text: str) -> Union[int, str]:
    """``10`` (each endpoint's limit) or ``plan``."""
    if text == PLAN:
        return text
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number or {PLAN!r}, got {text!r}")
    return int(text)


def main(argv: Optional[List[str]] = None) -> int:
    """Parse the command line, start the sandbox, print its URLs and serve until interrupted."""
    ap = argparse.ArgumentParser(
        prog="python -m ppinfra.sandbox",
        description="Local stand-in for the PPInfra / Novita image API (synthetic images, not diffusion).",
    )
    ap.add_argument("--host", default="127.0.0.1", help="address to bind the servers to (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8930, help="API port (0 = any free port)")
    ap.add_argument("--image-port", type=int, default=8931, help="image host port (0 = any free port)")
    ap.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help="accepted API key; repeat for several (default sk-sandbox)",
    )
    ap.add_argument("--queue-seconds", type=float, default=0.2)
    ap.add_argument("--task-seconds", type=float, default=1.0)
    ap.add_argument("--url-ttl", type=float, default=3600, help="seconds a result URL stays valid")
    ap.add_argument(
        "--other-port", type=int, default=0, help="port of the host redirect faults point to (0 = any)"
    )
    ap.add_argument(
        "--provider",
        choices=PROVIDERS,
        default=DEFAULT_PROVIDER,
        help="whose answers to give: novita (default; Novita's model list shape, upscale served), "
        "ppinfra or ppio (PPInfra's model list shape, no upscale)",
    )
    ap.add_argument(
        "--images-per-minute",
        type=images_per_minute,
        default=None,
        help=f"rate limit per endpoint: a number, or {PLAN!r} for the provider's base plan (default none)",
    )
    ap.add_argument(
        "--rate-window",
        type=float,
        default=60.0,
        help="seconds the images-per-minute limit counts over (default 60; shorter for benchmarks)",
    )
    ap.add_argument(
        "--catalog-size",
        type=catalog_size,
        default=None,
        help="checkpoints listed (default 260), or type=count pairs, e.g. "
        "checkpoint=30000,lora=20000,textualinversion=3000",
    )
    ap.add_argument(
        "--strict",
        action="store_true",
        help="refuse unknown fields, nulls and any shape outside the provider's page "
        "(default: lenient, like the real service)",
    )
    ap.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="reported",
        help="reported: eta/progress_percent move; silent: both stay 0, as many provider APIs do",
    )
    ap.add_argument(
        "--credit-balance",
        type=int,
        default=None,
        help="account balance, USD x 10,000 (default: not enforced)",
    )
    ap.add_argument("--max-requests", type=int, default=DEFAULT_MAX_REQUESTS, help="requests kept in the log")
    ap.add_argument(
        "--max-tasks", type=int, default=DEFAULT_MAX_TASKS, help="tasks kept before the oldest go"
    )
    args = ap.parse_args(argv)

    srv = SandboxServer(
        api_keys=args.api_keys or ["sk-sandbox"],
        host=args.host,
        port=args.port,
        image_port=args.image_port,
        other_port=args.other_port,
        queue_seconds=args.queue_seconds,
        task_seconds=args.task_seconds,
        url_ttl=args.url_ttl,
        images_per_minute=args.images_per_minute,
        rate_window=args.rate_window,
        catalog_size=args.catalog_size,
        strict=args.strict,
        progress=args.progress,
        credit_balance=args.credit_balance,
        provider=args.provider,
        max_requests=args.max_requests,
        max_tasks=args.max_tasks,
    )
    srv.start()
    mode = ("strict" if args.strict else "lenient, like the real service") + f"; speaking as {args.provider}"
    print(f"PPInfra sandbox (synthetic images, not diffusion) at {srv.base_url}", flush=True)
    print(f"  mode: {mode}; progress {args.progress}", flush=True)
    print(f"  result images on {srv.image_base_url}; keys: {', '.join(srv.api_keys)}", flush=True)
    print("  e.g. PPINFRA_BASE_URL=" + srv.base_url + "; Ctrl-C stops.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
