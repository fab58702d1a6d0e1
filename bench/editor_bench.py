"""The editor at the real catalog's size (issue 9): ``python bench/editor_bench.py [--quick]``.

ComfyUI calls every node's ``INPUT_TYPES`` on each ``/object_info`` and again
while validating each queued prompt. Without a ComfyUI process this measures
the pack's share of both, with a model cache of 50,000 models (30,000
checkpoints, 20,000 LoRAs, plus 3,000 embeddings, as the issue measured) and
of 50, in one run, alternating:

* ``/object_info``: ``INPUT_TYPES()`` of all five nodes plus ``json.dumps`` of
  their specs (what ComfyUI's ``node_info`` does per node, then serialises);
* ``POST /prompt``: ComfyUI's per-node validation for the PPInfra nodes of
  ``example_workflows/api/everything_at_once.json``: ``INPUT_TYPES()``, the
  "value in the option list" check for every combo input the node does not
  validate itself, then ``VALIDATE_INPUTS``.

Both are steady-state figures (the cache parsed once, as on every call after
the first); the first call after the cache file changed is reported apart.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional
from envguard import restore_env, saved_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PACK = "ppinfra_pack"
WORKFLOW = os.path.join(ROOT, "example_workflows", "api", "everything_at_once.json")
BIG = {"checkpoint": 30000, "lora": 20000, "textualinversion": 3000, "vae": 40, "controlnet": 40}
SMALL = {"checkpoint": 20, "lora": 20, "textualinversion": 10, "vae": 5, "controlnet": 5}
OBJECT_INFO_GOAL, PROMPT_GOAL = 1.5, 2.0


def _pack() -> Any:
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from tools.packload import load_pack

    return load_pack(ROOT, PACK)


def write_cache(cache_dir: str, counts: Dict[str, int]) -> None:
    """A model cache as a refresh writes it, with the names the workflow uses among the generated ones."""
    catalog = importlib.import_module(f"{PACK}.nodes.catalog")
    workflow_names = {t: [] for t in counts}
    for node in json.load(open(WORKFLOW, encoding="utf-8")).values():
        for key, value in node["inputs"].items():
            model_type = {
                "model_name": {
                    "PPInfraImg2Img": "checkpoint",
                    "PPInfraControlNetUnit": "controlnet",
                    "PPInfraEmbedding": "textualinversion",
                }.get(node["class_type"]),
                "sd_vae": "vae",
            }.get(key) or ("lora" if key.startswith("lora_") else None)
            if model_type and isinstance(value, str) and value != "None":
                workflow_names[model_type].append(value)
    data = {}
    for model_type, n in counts.items():
        names = [*workflow_names[model_type], *(f"{model_type}_{i:05d}" for i in range(n))][: max(n, 1)]
        data[model_type] = {
            "fetched_at": time.time(),
            "models": [
                {
                    "name": name,
                    "model_type": model_type,
                    "is_sdxl": i % 3 == 0,
                    "base_model": "SDXL 1.0" if i % 3 == 0 else "SD 1.5",
                    "tags": ["detail"] if i % 7 == 0 else [],
                }
                for i, name in enumerate(names)
            ],
        }
    os.environ["PPINFRA_CACHE_DIR"] = cache_dir
    path = catalog.catalog().cache_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(path + ".tmp", path)


def object_info(nodes: Dict[str, Any]) -> int:
    """What ``GET /object_info`` costs the pack: every node's inputs, serialised. Returns the payload size."""
    return len(json.dumps({name: cls.INPUT_TYPES() for name, cls in nodes.items()}))


def validate_prompt(nodes: Dict[str, Any], prompt: Dict[str, Any]) -> None:
    """ComfyUI's per-node validation of a queued prompt, for the pack's nodes."""
    for node in prompt.values():
        cls = nodes.get(node["class_type"])
        if cls is None:
            continue
        spec = cls.INPUT_TYPES()
        declared = {**spec.get("required", {}), **spec.get("optional", {})}
        validate = getattr(cls, "VALIDATE_INPUTS", None)
        own = set(inspect.signature(validate).parameters) if validate else set()
        for name, value in node["inputs"].items():
            options = declared.get(name, (None,))[0]
            if isinstance(value, list) or name in own or not isinstance(options, list):
                continue
            if value not in options:
                raise AssertionError(f"{node['class_type']}.{name}: {value!r} not in the list")
        if validate:
            args = {k: (None if isinstance(v, list) else v) for k, v in node["inputs"].items() if k in own}
            result = validate(**args)
            if result is not True:
                raise AssertionError(f"{node['class_type']}: {result}")


def measure(quick: bool = False) -> List[Dict[str, str]]:
    """Rows for bench/run.py's table (and this script's own output)."""
    saved = saved_env("PPINFRA_CACHE_DIR", "PPINFRA_API_KEY", "PPINFRA_CONFIG")
    os.environ.pop("PPINFRA_API_KEY", None)  # no background refresh: only the cache is measured
    tmp = tempfile.mkdtemp(prefix="ppinfra-editor-bench-")
    os.environ["PPINFRA_CONFIG"] = os.path.join(tmp, "no-key.json")
    try:
        nodes = _pack().NODE_CLASS_MAPPINGS
        prompt = json.load(open(WORKFLOW, encoding="utf-8"))
        dirs = {"small": os.path.join(tmp, "small"), "big": os.path.join(tmp, "big")}
        write_cache(dirs["small"], SMALL)
        write_cache(dirs["big"], BIG)
        os.environ["PPINFRA_CACHE_DIR"] = dirs["big"]
        t = time.perf_counter()
        object_info(nodes)  # the first call after the cache changed parses it once
        first_big = (time.perf_counter() - t) * 1000
        sizes = {}
        for name, d in dirs.items():
            os.environ["PPINFRA_CACHE_DIR"] = d
            sizes[name] = object_info(nodes)
            validate_prompt(nodes, prompt)
        reps = 300 if quick else 1500
        samples: Dict[str, Dict[str, List[float]]] = {
            "info": {"small": [], "big": []},
            "queue": {"small": [], "big": []},
        }
        order = list(dirs.items())
        for i in range(reps):  # interleaved call by call, so both sizes see the same machine load
            for name, d in order if i % 2 else order[::-1]:
                os.environ["PPINFRA_CACHE_DIR"] = d
                t = time.perf_counter()
                object_info(nodes)
                t1 = time.perf_counter()
                validate_prompt(nodes, prompt)
                t2 = time.perf_counter()
                samples["info"][name].append((t1 - t) * 1000)
                samples["queue"][name].append((t2 - t1) * 1000)
        oi = {k: statistics.median(v) for k, v in samples["info"].items()}
        pq = {k: statistics.median(v) for k, v in samples["queue"].items()}
    finally:
        restore_env(saved)
    r_oi, r_pq = oi["big"] / oi["small"], pq["big"] / pq["small"]
    total = sum(BIG.values())
    return [
        {
            "figure": f"/object_info, pack's share: {total:,} models vs {sum(SMALL.values())}",
            "pack": f"{oi['big']:.2f} ms vs {oi['small']:.2f} ms = {r_oi:.2f}x; "
            f"{sizes['big'] / 1024:.0f} KB vs {sizes['small'] / 1024:.0f} KB",
            "other": "issue 9, before this change: about 3 s and 5 MB at this size",
            "target": f"<= {OBJECT_INFO_GOAL}x",
            "met": "yes" if r_oi <= OBJECT_INFO_GOAL else "NO",
        },
        {
            "figure": f"POST /prompt validation, pack's share ({os.path.basename(WORKFLOW)}): "
            f"{total:,} models vs {sum(SMALL.values())}",
            "pack": f"{pq['big']:.2f} ms vs {pq['small']:.2f} ms = {r_pq:.2f}x",
            "other": "issue 9, before this change: 2-4 s per queued prompt at this size",
            "target": f"<= {PROMPT_GOAL}x",
            "met": "yes" if r_pq <= PROMPT_GOAL else "NO",
        },
        {
            "figure": f"First /object_info after the model cache changed ({total:,} models: parsed once)",
            "pack": f"{first_big:.0f} ms",
            "other": "",
            "target": "report",
            "met": "n/a",
        },
    ]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args(argv)
    for row in measure(args.quick):
        print(f"{row['figure']}: {row['pack']} | {row['other']} | target {row['target']} | met: {row['met']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
