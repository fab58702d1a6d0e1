"""A real ComfyUI in a child process, for tests/editor/test_real_*.py (optional: ``COMFYUI_DIR``).

``COMFYUI_DIR`` names a ComfyUI checkout (the folder with ``main.py``);
``COMFYUI_PYTHON`` the interpreter that has its requirements (default: this
one); ``COMFYUI_FRONTEND_ROOT`` serves another frontend (a
``comfyui_frontend_package/static`` folder, passed as ``--front-end-root``)
instead of the one the checkout pins. tools/setup_comfyui.sh prepares all
three. ComfyUI starts on CPU with a temporary ``--base-directory`` whose
``custom_nodes`` holds a symlink to this repo, so nothing in the checkout is touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, Iterable, Iterator

import pytest

from helpers import ROOT

COMFYUI_DIR = os.environ.get("COMFYUI_DIR", "")
START_TIMEOUT = float(os.environ.get("COMFYUI_START_TIMEOUT", "240"))
FRONTEND_ROOT = os.environ.get("COMFYUI_FRONTEND_ROOT", "")
EXAMPLES = os.path.join(ROOT, "example_workflows")

needs_comfyui = pytest.mark.skipif(
    not (COMFYUI_DIR and os.path.isfile(os.path.join(COMFYUI_DIR, "main.py"))),
    reason="set COMFYUI_DIR to a ComfyUI checkout to run the pack in a real ComfyUI",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Comfy:
    """One ComfyUI process: its URL, base directory and log, and the HTTP calls the tests make."""

    def __init__(self, url: str, base: str, proc: subprocess.Popen, log_path: str) -> None:
        self.url, self.base, self.proc, self.log_path = url, base, proc, log_path

    @classmethod
    def launch(cls, base: str, env: Dict[str, str]) -> "Comfy":
        """Start ComfyUI (CPU) from COMFYUI_DIR on a free loopback port, with ``base`` as its base
        directory."""
        port = free_port()
        log_path = os.path.join(base, "comfyui.log")
        python = os.environ.get("COMFYUI_PYTHON") or sys.executable
        args = [
            python,
            "main.py",
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(port),
            "--disable-auto-launch",
            "--base-directory",
            base,
        ]
        if FRONTEND_ROOT:
            assert os.path.isfile(os.path.join(FRONTEND_ROOT, "index.html")), (
                f"COMFYUI_FRONTEND_ROOT={FRONTEND_ROOT} is not a frontend's static folder (no index.html)"
            )
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

        r = requests.post(
            self.url + "/prompt", json={"prompt": prompt, "client_id": uuid.uuid4().hex}, timeout=30
        )
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


@contextlib.contextmanager
def start_comfy(
    base: str, env_set: Dict[str, str], drop: Iterable[str] = (), ready: str = "/ppinfra/settings"
) -> Iterator[Comfy]:
    """ComfyUI on CPU with ``base`` as its base directory and this repo linked into custom_nodes.

    ``env_set`` is added to this process's environment, ``drop`` removed from it;
    ready when ``GET ready`` answers. Stopped on exit.
    """
    os.makedirs(os.path.join(base, "custom_nodes"))
    os.symlink(ROOT, os.path.join(base, "custom_nodes", "ComfyUI-PPInfra"))
    shutil.copytree(os.path.join(EXAMPLES, "input"), os.path.join(base, "input"))
    env = {k: v for k, v in os.environ.items() if k not in set(drop)}
    env.update({"PPINFRA_CACHE_DIR": os.path.join(base, "ppinfra-cache"), **env_set})
    if "HOME" in env_set:
        os.makedirs(env_set["HOME"], exist_ok=True)
    c = Comfy.launch(base, env)
    proc = c.proc
    try:
        end = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"ComfyUI exited with {proc.returncode}\n{c.log()[-4000:]}")
            try:
                c.get(ready)
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
