"""Start-up probe, run in a fresh subprocess by ``bench/run.py``.

Imports torch first (ComfyUI has it loaded before any custom node), then
imports the repo root as a package the way ComfyUI loads a custom node folder,
then builds the node list (``INPUT_TYPES`` of every node, as ComfyUI does for
``/object_info``). Every socket connect is recorded, and every file opened
while building the node list. Prints one JSON line.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import socket
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools.packload import load_pack  # noqa: E402


def main() -> None:
    import torch  # noqa: F401

    connects = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self, address):
        connects.append(repr(address))
        return real_connect(self, address)

    def connect_ex(self, address):
        connects.append(repr(address))
        return real_connect_ex(self, address)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex

    t0 = time.perf_counter()
    module = load_pack()
    import_seconds = time.perf_counter() - t0
    connects_import = len(connects)

    opened = []
    real_open, real_io_open = builtins.open, io.open

    def tracking_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    builtins.open = tracking_open
    io.open = tracking_open
    t1 = time.perf_counter()
    mappings = getattr(module, "NODE_CLASS_MAPPINGS", {})
    options = {}
    for name, cls in mappings.items():
        options[name] = cls.INPUT_TYPES()
    list_seconds = time.perf_counter() - t1
    builtins.open, io.open = real_open, real_io_open
    time.sleep(0.5)  # a background refresh started by the node list would connect now
    cache_dir = os.environ.get("PPINFRA_CACHE_DIR", "")
    ckpt = options.get("PPInfraImg2Img", {}).get("required", {}).get("model_name", [[]])[0]
    print(
        json.dumps(
            {
                "import_seconds": import_seconds,
                "node_list_seconds": list_seconds,
                "nodes": sorted(mappings),
                "connects_import": connects_import,
                "connects_total": len(connects),
                "connects": connects[:5],
                "files_opened": opened,
                "files_outside_cache": [
                    f for f in opened if cache_dir and not os.path.abspath(f).startswith(cache_dir)
                ],
                "checkpoint_options": len(ckpt) if isinstance(ckpt, (list, tuple)) else -1,
                "cache_marker_listed": os.environ.get("BENCH_CACHE_MARKER", "")
                in (ckpt if isinstance(ckpt, (list, tuple)) else []),
            }
        )
    )


if __name__ == "__main__":
    main()
