"""The pack inside a real ComfyUI, queued through ComfyUI's HTTP API against the sandbox.

Optional: runs only when ``COMFYUI_DIR`` names a ComfyUI checkout (the folder
with ``main.py``); tests/editor/comfy_process.py starts it (``COMFYUI_PYTHON``,
``COMFYUI_FRONTEND_ROOT``) and the ``keyed_comfy`` fixture (tests/editor/conftest.py)
gives it the key and the sandbox's host in its environment.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict

from editor.comfy_process import EXAMPLES, needs_comfyui
from helpers import SANDBOX_KEY, load_pack

pytestmark = needs_comfyui


def example(name: str) -> Dict[str, Any]:
    with open(os.path.join(EXAMPLES, "api", name + ".json"), "r", encoding="utf-8") as fh:
        return json.load(fh)


def output_files(entry: Dict[str, Any]):
    return [img for out in entry["outputs"].values() for img in out.get("images", [])]


def test_nodes_are_registered_with_their_inputs(keyed_comfy):
    info = keyed_comfy.get("/object_info")
    # Every node the pack declares, read from the pack itself: a new node needs no edit here.
    pack = load_pack().NODE_CLASS_MAPPINGS
    assert len(pack) >= 8, sorted(pack)
    for node_id, cls in pack.items():
        assert node_id in info, node_id
        assert info[node_id]["category"] == "PPInfra", node_id
        assert info[node_id]["output"] == list(cls.RETURN_TYPES), node_id
        assert info[node_id]["input"].get("required"), node_id
    assert sorted(n for n in info if n.startswith("PPInfra")) == sorted(pack), (
        "a PPInfra node the pack does not declare"
    )
    img = info["PPInfraImg2Img"]
    assert img["output"] == ["IMAGE", "INT", "STRING"]
    assert list(img["input"]["required"])[:3] == ["image", "model_name", "prompt"]
    assert (
        "Cannot import" not in keyed_comfy.log()
        or "ComfyUI-PPInfra" not in keyed_comfy.log().split("Cannot import")[1][:300]
    )


def test_example_graph_runs_and_saves_images(keyed_comfy, keyed_sandbox):
    from PIL import Image

    before = len(keyed_sandbox.submits)
    entry = keyed_comfy.wait(keyed_comfy.queue(example("img2img_basic")))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:2000]
    files = output_files(entry)
    assert len(files) == 1
    path = os.path.join(keyed_comfy.base, "output", files[0].get("subfolder", ""), files[0]["filename"])
    with Image.open(path) as im:
        assert im.size[0] >= 128 and im.size[1] >= 128
        meta = json.dumps(dict(im.info), default=str)
    assert SANDBOX_KEY not in meta
    assert len(keyed_sandbox.submits) == before + 1
    assert SANDBOX_KEY not in json.dumps(keyed_comfy.get("/history"))


def test_fixed_seed_requeue_uses_the_cache(keyed_comfy, keyed_sandbox):
    prompt = example("img2img_basic")
    keyed_comfy.wait(keyed_comfy.queue(prompt))
    before = len(keyed_sandbox.submits)
    entry = keyed_comfy.wait(keyed_comfy.queue(prompt))
    assert entry["status"]["status_str"] == "success"
    assert len(keyed_sandbox.submits) == before, "an unchanged graph with a fixed seed was billed again"


def test_batch_and_everything_at_once(keyed_comfy, keyed_sandbox):
    for name in ("batch", "everything_at_once"):
        entry = keyed_comfy.wait(keyed_comfy.queue(example(name)))
        assert entry["status"]["status_str"] == "success", (name, json.dumps(entry["status"])[:2000])
        assert output_files(entry), name


def test_cancel_is_an_interruption(keyed_comfy, keyed_sandbox):
    keyed_sandbox.configure(task_seconds=60)
    try:
        prompt = example("img2img_basic")
        node = next(k for k, v in prompt.items() if v["class_type"] == "PPInfraImg2Img")
        prompt[node]["inputs"]["seed"] = 12345  # a new input: not served from the cache
        n = len(keyed_sandbox.submits)
        prompt_id = keyed_comfy.queue(prompt)
        end = time.monotonic() + 60
        while len(keyed_sandbox.submits) == n and time.monotonic() < end:
            time.sleep(0.1)
        t0 = time.monotonic()
        keyed_comfy.interrupt()
        entry = keyed_comfy.wait(prompt_id, timeout=30)
        took = time.monotonic() - t0
        kinds = [m[0] for m in entry["status"].get("messages", [])]
        assert "execution_interrupted" in kinds, kinds
        assert "execution_error" not in kinds
        assert took < 5, took
    finally:
        keyed_sandbox.configure(task_seconds=0.5)


def test_random_seed_runs_again(keyed_comfy, keyed_sandbox):
    prompt = example("img2img_basic")
    node = next(k for k, v in prompt.items() if v["class_type"] == "PPInfraImg2Img")
    prompt[node]["inputs"]["seed"] = -1
    keyed_comfy.wait(keyed_comfy.queue(prompt))
    before = len(keyed_sandbox.submits)
    entry = keyed_comfy.wait(keyed_comfy.queue(prompt))
    assert entry["status"]["status_str"] == "success"
    assert len(keyed_sandbox.submits) == before + 1, "seed -1 must run again on every queue"


def test_unlisted_model_name_passes_validation_and_the_server_decides(keyed_comfy, keyed_sandbox):
    prompt = example("img2img_basic")
    node = next(k for k, v in prompt.items() if v["class_type"] == "PPInfraImg2Img")
    prompt[node]["inputs"]["model_name"] = "not_in_any_list_v1.safetensors"
    prompt[node]["inputs"]["seed"] = 777
    entry = keyed_comfy.wait(keyed_comfy.queue(prompt))  # /prompt accepted it: no value_not_in_list
    assert entry["status"]["status_str"] == "error"
    errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert errors and "not_in_any_list_v1.safetensors" in errors[0]["exception_message"]
    assert errors[0]["exception_type"].endswith("BadRequestError")
    assert keyed_sandbox.submits[-1]["request"]["model_name"] == "not_in_any_list_v1.safetensors"
