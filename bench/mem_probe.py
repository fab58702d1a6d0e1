"""Memory probe, run in a fresh subprocess by ``bench/run.py``: decode N result files of W x H.

Prints one JSON line: the output tensor's size, the peak resident memory above
the start (``VmHWM`` after resetting it via ``/proc/self/clear_refs`` when the
kernel allows, else ``VmHWM`` minus the starting ``VmRSS``) and the
tracemalloc peak (numpy's allocations are visible to tracemalloc, PIL's
decode buffers are not: the RSS figure is the one that counts).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def main() -> None:
    blob_dir = sys.argv[1]
    import torch  # noqa: F401 - imported before the start mark, as in ComfyUI

    from ppinfra.images import decode_results, to_tensor

    blobs = []
    for name in sorted(os.listdir(blob_dir)):
        with open(os.path.join(blob_dir, name), "rb") as fh:
            blobs.append(fh.read())
    # Warm up the decoder and thread pool on a small slice so their one-off
    # allocations (code pages, pools) do not count as decode memory.
    decode_results(blobs[:1])
    gc.collect()
    reset = _reset_peak()
    start = _status("VmRSS")
    tracemalloc.start()
    t0 = time.perf_counter()
    out = to_tensor(decode_results(blobs))
    took = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = _status("VmHWM")
    out_bytes = out.element_size() * out.nelement()
    print(
        json.dumps(
            {
                "output_bytes": out_bytes,
                "rss_start": start,
                "rss_peak": peak,
                "rss_above_start": peak - start,
                "traced_peak": traced_peak,
                "peak_reset": reset,
                "seconds": took,
                "shape": list(out.shape),
            }
        )
    )


if __name__ == "__main__":
    main()
