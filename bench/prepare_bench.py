"""Client-side preparation of one 2048x2048 img2img job: widgets -> checked request -> body bytes.

No server: this is the part of the client overhead the request path itself
costs (encode, validate, serialise), and how many times the uploads are
decoded again along the way. It runs against the code it is started in, so
the same command on an older checkout gives the "before" figure::

    python bench/prepare_bench.py                 # this checkout
    git worktree add /tmp/before <commit>
    python bench/prepare_bench.py --root /tmp/before

(``--root`` measures the pack at that path with this script, so the older
checkout needs no copy of it.) It prints the median of ``--runs`` runs and the
decode count of one run; ``--json`` prints every run's time instead, which
``bench/run.py`` reads to alternate the two checkouts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def photo(size: int, seed: int):
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    base = np.stack([0.5 + 0.5 * np.sin(x / 53.0 + k) * np.cos(y / 37.0 - k) for k in range(3)], axis=-1)
    return torch.from_numpy(np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)[None])


def prepare_once(image, control) -> bytes:
    """The node's path from its inputs to the body of the first request, in this checkout's shape."""
    from tools.packload import load_pack

    pack = load_pack()
    import importlib
    import importlib.util

    mod = importlib.import_module(pack.__name__ + ".nodes.img2img")
    runner = importlib.import_module(pack.__name__ + ".nodes.runner")
    fields = dict(
        model_name="dreamshaper_8_93211.safetensors",
        prompt="a harbour at dawn",
        negative_prompt="",
        width=0,
        height=0,
        image_num=1,
        steps=20,
        guidance_scale=7.5,
        sampler_name="Euler a",
        seed=5,
        strength=0.6,
        clip_skip=0,
        sd_vae="None",
        response_image_type="png",
    )
    template = mod.build_template(**fields)
    if importlib.util.find_spec(pack.__name__ + ".ppinfra.binding") is None:
        from concurrent.futures import ThreadPoolExecutor

        links = importlib.import_module(pack.__name__ + ".nodes.sockets")
        unit = links.ControlNetSpec("control_v11p_sd15_canny", control, 1.0, "canny", 0.0, 1.0)
        job = runner.Job(image=image, template=template, controlnet=(unit,))
        with ThreadPoolExecutor(4) as pool:
            reqs = [f.result() for f in runner.prepare_requests(job, pool, lambda: False)]
        reqs[0].validate()  # the client validated again before sending
        return reqs[0].to_json_bytes()
    from dataclasses import replace

    # The img2img request types moved from request.py to img2img_request.py: take them where they are.
    where = pack.__name__ + ".ppinfra.img2img_request"
    request_mod = importlib.import_module(
        where if importlib.util.find_spec(where) else pack.__name__ + ".ppinfra.request"
    )
    template = replace(
        template,
        controlnet_units=(
            request_mod.ControlNetUnit("control_v11p_sd15_canny", None, 1.0, "canny", 0.0, 1.0),
        ),
    )
    job = runner.Job(
        template=template,
        images={"request.image_base64": image, "request.controlnet.units[0].image_base64": control},
    )
    reqs = runner.prepare_requests(job, lambda: False)
    reqs[0].validate()  # what the client does before sending: a no-op for a bound request
    return reqs[0].to_json_bytes()


def count_decodes(image, control) -> int:
    """How many times PIL opens an image during one preparation (the encoder itself opens none)."""
    from PIL import Image

    real = Image.open
    seen = [0]

    def counting(*args, **kwargs):
        seen[0] += 1
        return real(*args, **kwargs)

    Image.open = counting
    try:
        prepare_once(image, control)
    finally:
        Image.open = real
    return seen[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--root", default=ROOT, help="the checkout whose pack is measured (default: this one)")
    ap.add_argument(
        "--json", action="store_true", help="one JSON line: every run's seconds, body size, decodes"
    )
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    if root != ROOT:
        sys.path.remove(ROOT)
        sys.path.insert(0, root)  # tools.packload (and so the pack) from that checkout
    os.environ.setdefault("PPINFRA_CACHE_DIR", "/tmp/ppinfra-prepare-bench")
    image, control = photo(2048, 1), photo(2048, 2)
    prepare_once(image, control)  # warm-up: imports, model cache
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        body = prepare_once(image, control)
        times.append(time.perf_counter() - t0)
    decodes = count_decodes(image, control)
    if args.json:
        print(json.dumps({"seconds": times, "body_bytes": len(body), "decodes": decodes}))
        return 0
    print(
        f"prepare 2048x2048 img2img + 2048 ControlNet: median {statistics.median(times) * 1000:.0f} ms "
        f"over {args.runs} runs (body {len(body) / 1e6:.1f} MB), uploads decoded again: "
        f"{decodes} time(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
