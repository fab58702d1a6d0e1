"""Issue 10, results reused across restarts: time to results from the result cache in a new process.

Two fresh processes share one cache directory and the benchmark's sandbox. The first runs the
reference job through the nodes (a real sandbox task); the second, standing in for ComfyUI after a
restart, runs the same graph and must get the same images from the cache with no new task.
Run as ``python bench/cache_bench.py --child`` it is one such process (prints one JSON line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHECKPOINT = "dreamshaper_8_93211.safetensors"


def child() -> Dict[str, Any]:
    """The reference job through the nodes, as ComfyUI would run it after a restart."""
    t_start = time.perf_counter()
    for p in (ROOT, HERE):
        if p not in sys.path:
            sys.path.insert(0, p)
    import torch  # noqa: F401  (ComfyUI has torch loaded before any node runs)

    from synth import photo_tensor
    from tools.packload import load_pack

    pack = load_pack()
    nodes = pack.NODE_CLASS_MAPPINGS

    def run(node_id: str, **inputs: Any) -> Any:
        cls = nodes[node_id]
        out = getattr(cls(), cls.FUNCTION)(**inputs)
        return asyncio.run(out) if asyncio.iscoroutine(out) else out

    # The benchmark's reference job (bench/run.py): the same synthetic pictures, the same widgets.
    image, control, reference = (
        photo_tensor(1024, 1024, seed=1),
        photo_tensor(1024, 1024, seed=2),
        photo_tensor(512, 512, seed=3),
    )
    t_ready = time.perf_counter()
    (unit,) = run(
        "PPInfraControlNetUnit",
        image=control,
        model_name="control_v11p_sd15_canny",
        strength=1.0,
        preprocessor="canny",
        guidance_start=0.0,
        guidance_end=1.0,
    )
    (adapter,) = run("PPInfraIPAdapter", image=reference, model_name="ip-adapter_sd15.bin", strength=0.5)
    images, seed, info = run(
        "PPInfraImg2Img",
        image=image,
        model_name=CHECKPOINT,
        prompt="a photo of a harbour at dusk, detailed, 35mm",
        negative_prompt="",
        width=1024,
        height=1024,
        image_num=4,
        steps=20,
        guidance_scale=7.5,
        sampler_name="Euler a",
        seed=42,
        strength=0.75,
        clip_skip=0,
        sd_vae="None",
        response_image_type="png",
        controlnet=unit,
        ip_adapter=adapter,
    )
    t_done = time.perf_counter()
    data = json.loads(info)
    return {
        "node_seconds": t_done - t_ready,
        "process_seconds": t_done - t_start,
        "from_cache": data["from_cache"],
        "task_ids": data["task_ids"],
        "client_seconds": data["timings"][0]["total"],
        "shape": list(images.shape),
        "checksum": float(images.double().sum()),
    }


def run_child(env: Dict[str, str]) -> Dict[str, Any]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError(f"cache bench child failed: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - t0
    return result


def rows(bench: Any) -> None:
    """Into ``bench.row`` (``bench/run.py``): first process runs the task, the second reads the cache."""
    env = dict(os.environ)
    env.pop("PPINFRA_RESULT_CACHE", None)  # bench/run.py turns it off for its other figures
    env["PPINFRA_CACHE_DIR"] = tempfile.mkdtemp(prefix="ppinfra-bench-result-cache-")
    before = set(bench.sandbox.tasks)
    first = run_child(env)
    after_first = set(bench.sandbox.tasks)
    second = run_child(env)
    new_tasks = len(set(bench.sandbox.tasks) - after_first)
    tasks = bench.sandbox.tasks
    server = sum(tasks[t].done_at - tasks[t].created for t in after_first - before)
    same = second["checksum"] == first["checksum"] and second["shape"] == first["shape"]
    ok = (
        len(after_first - before) == 1
        and not any(first["from_cache"])
        and all(second["from_cache"])
        and new_tasks == 0
        and same
    )
    bench.row(
        "Time to results from the result cache after a restart (new process, same graph, reference job "
        "through the nodes: encode, key, read, decode to tensors)",
        f"{second['node_seconds'] * 1000:.0f} ms, of which the client call (key, read, decode of the "
        f"results into the output) {second['client_seconds'] * 1000:.0f} ms and encoding the inputs the "
        f"rest, as in any run; {new_tasks} new tasks; same tensors: {'yes' if same else 'NO'}",
        f"first run (a real task, server time {server:.2f} s): {first['node_seconds']:.2f} s; "
        f"process start to results "
        f"{second['process_seconds']:.1f} s (Python + torch + pack import included)",
        "0 new tasks, same images",
        ok,
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", action="store_true", help="run the job once and print one JSON line")
    if ap.parse_args().child:
        print(json.dumps(child()))
    else:
        ap.print_help()
