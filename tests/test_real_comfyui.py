"""The pack inside a real ComfyUI, queued through ComfyUI's HTTP API against the sandbox.

Optional: runs only when ``COMFYUI_DIR`` names a ComfyUI checkout (the folder
with ``main.py``). ``COMFYUI_PYTHON`` picks the interpreter that has ComfyUI's
requirements installed (default: this one); ``COMFYUI_FRONTEND_ROOT`` serves
another frontend (a ``comfyui_frontend_package/static`` folder, passed as
``--front-end-root``) instead of the one the checkout pins.
tools/setup_comfyui.sh prepares all three. ComfyUI starts on CPU with a
temporary ``--base-directory`` whose ``custom_nodes`` holds a symlink to this
repo, so nothing in the checkout is touched.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from typing import Any, Dict

import pytest

from conftest import ROOT, SANDBOX_KEY

COMFYUI_DIR = os.environ.get("COMFYUI_DIR", "")
pytestmark = pytest.mark.skipif(not (COMFYUI_DIR and os.path.isfile(os.path.join(COMFYUI_DIR, "main.py"))),
                                reason="set COMFYUI_DIR to a ComfyUI checkout to run the nodes in a real ComfyUI")

START_TIMEOUT = float(os.environ.get("COMFYUI_START_TIMEOUT", "240"))
FRONTEND_ROOT = os.environ.get("COMFYUI_FRONTEND_ROOT", "")
EXAMPLES = os.path.join(ROOT, "example_workflows")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Comfy:
    def __init__(self, url: str, base: str, proc: subprocess.Popen, log_path: str) -> None:
        self.url, self.base, self.proc, self.log_path = url, base, proc, log_path

    @classmethod
    def launch(cls, base: str, env: Dict[str, str]) -> "Comfy":
        """Start ComfyUI (CPU) from COMFYUI_DIR on a free loopback port, with ``base`` as its base directory."""
        port = free_port()
        log_path = os.path.join(base, "comfyui.log")
        python = os.environ.get("COMFYUI_PYTHON") or sys.executable
        args = [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                "--disable-auto-launch", "--base-directory", base]
        if FRONTEND_ROOT:
            assert os.path.isfile(os.path.join(FRONTEND_ROOT, "index.html")), \
                f"COMFYUI_FRONTEND_ROOT={FRONTEND_ROOT} is not a frontend's static folder (no index.html)"
            args += ["--front-end-root", os.path.abspath(FRONTEND_ROOT)]
        with open(log_path, "w") as log:
            proc = subprocess.Popen(args, cwd=COMFYUI_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
        return cls(f"http://127.0.0.1:{port}", base, proc, log_path)

    def log(self) -> str:
        with open(self.log_path, "r", encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def get(self, path: str) -> Any:
        import requests
        r = requests.get(self.url + path, timeout=30)
        r.raise_for_status()
        return r.json()

    def queue(self, prompt: Dict[str, Any]) -> str:
        import requests
        r = requests.post(self.url + "/prompt", json={"prompt": prompt, "client_id": uuid.uuid4().hex}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["prompt_id"]

    def interrupt(self) -> None:
        import requests
        requests.post(self.url + "/interrupt", timeout=30).raise_for_status()

    def wait(self, prompt_id: str, timeout: float = 120) -> Dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            hist = self.get(f"/history/{prompt_id}")
            if prompt_id in hist and hist[prompt_id].get("status", {}).get("completed") is not None:
                entry = hist[prompt_id]
                if entry["status"].get("status_str") in ("success", "error"):
                    return entry
            time.sleep(0.2)
        raise AssertionError(f"prompt {prompt_id} did not finish in {timeout} s\n{self.log()[-4000:]}")


@pytest.fixture(scope="module")
def sandbox_srv():
    from ppinfra.sandbox import SandboxServer
    srv = SandboxServer(api_keys=[SANDBOX_KEY], queue_seconds=0.1, task_seconds=0.5)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def comfy(sandbox_srv, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("comfy-base"))
    os.makedirs(os.path.join(base, "custom_nodes"))
    os.symlink(ROOT, os.path.join(base, "custom_nodes", "ComfyUI-PPInfra"))
    shutil.copytree(os.path.join(EXAMPLES, "input"), os.path.join(base, "input"))
    env = dict(os.environ)
    env.update(PPINFRA_BASE_URL=sandbox_srv.base_url, PPINFRA_API_KEY=SANDBOX_KEY,
               PPINFRA_CACHE_DIR=os.path.join(base, "ppinfra-cache"))
    env.pop("PPINFRA_CONFIG", None)
    c = Comfy.launch(base, env)
    proc = c.proc
    try:
        end = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"ComfyUI exited with {proc.returncode}\n{c.log()[-4000:]}")
            try:
                c.get("/object_info/PPInfraImg2Img")
                break
            except Exception:
                if time.monotonic() > end:
                    raise AssertionError(f"ComfyUI did not answer in {START_TIMEOUT} s\n{c.log()[-4000:]}")
                time.sleep(0.5)
        yield c
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def example(name: str) -> Dict[str, Any]:
    with open(os.path.join(EXAMPLES, "api", name + ".json"), "r", encoding="utf-8") as fh:
        return json.load(fh)


def output_files(entry: Dict[str, Any]):
    return [img for out in entry["outputs"].values() for img in out.get("images", [])]


def test_nodes_are_registered_with_their_inputs(comfy):
    info = comfy.get("/object_info")
    for node_id in ("PPInfraImg2Img", "PPInfraControlNetUnit", "PPInfraLoraStack", "PPInfraEmbedding",
                    "PPInfraIPAdapter"):
        assert node_id in info, node_id
        assert info[node_id]["category"] == "PPInfra"
    img = info["PPInfraImg2Img"]
    assert img["output"] == ["IMAGE", "INT", "STRING"]
    assert list(img["input"]["required"])[:3] == ["image", "model_name", "prompt"]
    assert "Cannot import" not in comfy.log() or "ComfyUI-PPInfra" not in comfy.log().split("Cannot import")[1][:300]


def test_example_graph_runs_and_saves_images(comfy, sandbox_srv):
    from PIL import Image
    before = len(sandbox_srv.submits)
    entry = comfy.wait(comfy.queue(example("img2img_basic")))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:2000]
    files = output_files(entry)
    assert len(files) == 1
    path = os.path.join(comfy.base, "output", files[0].get("subfolder", ""), files[0]["filename"])
    with Image.open(path) as im:
        assert im.size[0] >= 128 and im.size[1] >= 128
        meta = json.dumps(dict(im.info), default=str)
    assert SANDBOX_KEY not in meta
    assert len(sandbox_srv.submits) == before + 1
    assert SANDBOX_KEY not in json.dumps(comfy.get("/history"))


def test_fixed_seed_requeue_uses_the_cache(comfy, sandbox_srv):
    prompt = example("img2img_basic")
    comfy.wait(comfy.queue(prompt))
    before = len(sandbox_srv.submits)
    entry = comfy.wait(comfy.queue(prompt))
    assert entry["status"]["status_str"] == "success"
    assert len(sandbox_srv.submits) == before, "an unchanged graph with a fixed seed was billed again"


def test_batch_and_everything_at_once(comfy, sandbox_srv):
    for name in ("batch", "everything_at_once"):
        entry = comfy.wait(comfy.queue(example(name)))
        assert entry["status"]["status_str"] == "success", (name, json.dumps(entry["status"])[:2000])
        assert output_files(entry), name


def test_cancel_is_an_interruption(comfy, sandbox_srv):
    sandbox_srv.configure(task_seconds=60)
    try:
        prompt = example("img2img_basic")
        node = next(k for k, v in prompt.items() if v["class_type"] == "PPInfraImg2Img")
        prompt[node]["inputs"]["seed"] = 12345  # a new input: not served from the cache
        n = len(sandbox_srv.submits)
        prompt_id = comfy.queue(prompt)
        end = time.monotonic() + 60
        while len(sandbox_srv.submits) == n and time.monotonic() < end:
            time.sleep(0.1)
        t0 = time.monotonic()
        comfy.interrupt()
        entry = comfy.wait(prompt_id, timeout=30)
        took = time.monotonic() - t0
        kinds = [m[0] for m in entry["status"].get("messages", [])]
        assert "execution_interrupted" in kinds, kinds
        assert "execution_error" not in kinds
        assert took < 5, took
    finally:
        sandbox_srv.configure(task_seconds=0.5)


def test_random_seed_runs_again(comfy, sandbox_srv):
    prompt = example("img2img_basic")
    node = next(k for k, v in prompt.items() if v["class_type"] == "PPInfraImg2Img")
    prompt[node]["inputs"]["seed"] = -1
    comfy.wait(comfy.queue(prompt))
    before = len(sandbox_srv.submits)
    entry = comfy.wait(comfy.queue(prompt))
    assert entry["status"]["status_str"] == "success"
    assert len(sandbox_srv.submits) == before + 1, "seed -1 must run again on every queue"


def test_unlisted_model_name_passes_validation_and_the_server_decides(comfy, sandbox_srv):
    prompt = example("img2img_basic")
    node = next(k for k, v in prompt.items() if v["class_type"] == "PPInfraImg2Img")
    prompt[node]["inputs"]["model_name"] = "not_in_any_list_v1.safetensors"
    prompt[node]["inputs"]["seed"] = 777
    entry = comfy.wait(comfy.queue(prompt))  # /prompt accepted it: no value_not_in_list
    assert entry["status"]["status_str"] == "error"
    errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert errors and "not_in_any_list_v1.safetensors" in errors[0]["exception_message"]
    assert errors[0]["exception_type"].endswith("BadRequestError")
    assert sandbox_srv.submits[-1]["request"]["model_name"] == "not_in_any_list_v1.safetensors"
