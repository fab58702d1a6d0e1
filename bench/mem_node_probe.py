"""Memory probe through the Img2Img node, run in a fresh subprocess by ``bench/run.py``.

One job with ``image_num`` 8 and 2048x2048 PNG results against a sandbox in
another process: the downloads and their decoding into the output tensor
happen in the node's worker threads, as in ComfyUI. Prints one JSON line with
the peak resident memory above the start (``VmHWM`` reset through
``/proc/self/clear_refs``) and the output tensor's size.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (ROOT, HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from mem_probe import _reset_peak, _status  # noqa: E402
from tools.packload import load_pack  # noqa: E402


def main() -> None:
    import torch

    from remote_sandbox import RemoteSandbox

    key = "sk-bench-memory-0123456789"
    sandbox = RemoteSandbox(api_keys=[key], queue_seconds=0.05, task_seconds=0.5)
    try:
        os.environ.update(
            PPINFRA_API_KEY=key,
            PPINFRA_BASE_URL=sandbox.base_url,
            PPINFRA_CACHE_DIR=sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, ".cache"),
        )
        pack = load_pack()
        node = pack.NODE_CLASS_MAPPINGS["PPInfraImg2Img"]
        image = torch.rand(1, 256, 256, 3)

        def run(size: int, n: int):
            return asyncio.run(
                node().generate(
                    image=image,
                    model_name="dreamshaper_8_93211.safetensors",
                    prompt="memory",
                    negative_prompt="",
                    width=size,
                    height=size,
                    image_num=n,
                    steps=20,
                    guidance_scale=7.5,
                    sampler_name="Euler a",
                    seed=3,
                    strength=0.75,
                    clip_skip=0,
                    sd_vae="None",
                    response_image_type="png",
                )
            )

        run(256, 2)  # warm-up: imports, pools, connections
        gc.collect()
        reset = _reset_peak()
        start = _status("VmRSS")
        images, _, _ = run(2048, 8)
        peak = _status("VmHWM")
        out_bytes = images.element_size() * images.nelement()
        print(
            json.dumps(
                {
                    "output_bytes": out_bytes,
                    "rss_start": start,
                    "rss_peak": peak,
                    "rss_above_start": peak - start,
                    "peak_reset": reset,
                    "shape": list(images.shape),
                }
            )
        )
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
