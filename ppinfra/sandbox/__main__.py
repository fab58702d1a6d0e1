"""``python -m ppinfra.sandbox``: run the sandbox in the foreground until Ctrl-C."""
from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

from .server import SandboxServer


def main(argv: Optional[List[str]] = None) -> int:
    """Parse the command line, start the sandbox, print its URLs and serve until interrupted."""
    ap = argparse.ArgumentParser(prog="python -m ppinfra.sandbox",
                                 description="Local stand-in for the PPInfra img2img API (synthetic images, not diffusion).")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind both servers to (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8930, help="API port (0 = any free port)")
    ap.add_argument("--image-port", type=int, default=8931, help="image host port (0 = any free port)")
    ap.add_argument("--api-key", action="append", dest="api_keys",
                    help="accepted API key; repeat for several (default sk-sandbox)")
    ap.add_argument("--queue-seconds", type=float, default=0.2)
    ap.add_argument("--task-seconds", type=float, default=1.0)
    ap.add_argument("--url-ttl", type=float, default=3600, help="seconds a result URL stays valid")
    ap.add_argument("--images-per-minute", type=int, default=None, help="rate limit (default none)")
    ap.add_argument("--catalog-size", type=int, default=None, help="number of checkpoints listed (default 260)")
    args = ap.parse_args(argv)

    srv = SandboxServer(api_keys=args.api_keys or ["sk-sandbox"], host=args.host, port=args.port,
                        image_port=args.image_port, queue_seconds=args.queue_seconds,
                        task_seconds=args.task_seconds, url_ttl=args.url_ttl,
                        images_per_minute=args.images_per_minute, catalog_size=args.catalog_size)
    srv.start()
    print(f"PPInfra sandbox (synthetic images, not diffusion) at {srv.base_url}", flush=True)
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
