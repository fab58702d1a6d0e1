"""Small builders and constants shared by the tests (plain functions; fixtures live in conftest.py files).

Node-level helpers (running a node, IMAGE tensors, ComfyUI stand-ins) are in the
one driver, ``tools/node_driver.py``, shared with the benchmark.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Callable, List

import numpy as np
import requests
from PIL import Image

from tools.node_driver import photo_like  # noqa: F401 - one definition, shared with the node driver
from tools.packload import PACK_NAME, load_pack  # noqa: F401 - the pack as ComfyUI loads it

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
SANDBOX_KEY = "sk-sandbox-test-key-0123456789"
NODE_JS = shutil.which("node") or shutil.which("nodejs")  # runs web/*.js in tests/editor
REDACTION_KEY = "sk-redaction-test-key-5f3a9c1e77"  # the key the redaction tests must never see
NODE_DEADLINE = 20.0  # the node's client deadline in the node suites (the default is 600 s)


def png_b64(width: int = 64, height: int = 48, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def base_request(**overrides):
    from ppinfra.img2img_request import Img2ImgRequest

    fields = dict(
        model_name="dreamshaper_8_93211.safetensors",
        image_base64=png_b64(),
        prompt="a cat",
        width=512,
        height=512,
    )
    fields.update(overrides)
    return Img2ImgRequest(**fields)


# Short retry budgets for the client tests of retries and rate limits.
FAST_RETRIES = dict(
    backoff_base=0.02,
    backoff_max=0.05,
    max_retries=2,
    rate_limit_retries=5,
    rate_limit_backoff=0.02,
    rate_limit_backoff_max=0.08,
)


def fast_client(sandbox, api_key, **kw):
    """A client on ``sandbox`` with ``FAST_RETRIES`` and a 20 s deadline; ``kw`` overrides settings."""
    from ppinfra.client import PPInfraClient

    settings = dict(FAST_RETRIES, deadline=20.0)
    settings.update(kw)
    return PPInfraClient(api_key=api_key, base_url=sandbox.base_url, **settings)


def small_request(**overrides):
    """``base_request`` at 128 x 128."""
    return base_request(**{"width": 128, "height": 128, **overrides})


def gradient_png(width=64, height=48):
    """A small PNG (base64) with a red gradient, as a documented request body carries it."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[..., 0] = np.arange(width, dtype=np.uint8)[None, :] * 3
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def documented(**req):
    """An img2img body exactly as the provider's docs show it; ``req`` overrides request fields."""
    fields = dict(
        model_name="dreamshaper_8_93211.safetensors",
        image_base64=gradient_png(),
        prompt="a cat",
        width=128,
        height=128,
        image_num=1,
        steps=20,
        guidance_scale=7.5,
        sampler_name="Euler a",
    )
    fields.update(req)
    return {"extra": {"response_image_type": "png"}, "request": fields}


# --------------------------------------------------------------------- raw loopback servers (bounded answers)


class RawServer:
    """A loopback server that answers every request with ``respond(conn)`` (raw socket writes)."""

    def __init__(self, respond: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.respond = respond
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.requests: List[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.requests.append(conn.recv(65536))
                self.respond(conn)
            except OSError:
                pass  # the client hung up: what a bounded read must do

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def endless(conn: socket.socket, block: int = 1 << 20, total: int = 500 * (1 << 20)) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % block + b" " * block + b"\r\n"
    for _ in range(total // block):
        conn.sendall(chunk)
    conn.sendall(b"0\r\n\r\n")


# --------------------------------------------------------------------------- a host that redirects to itself


class RedirectLoop(BaseHTTPRequestHandler):
    """Answers every GET with a redirect to the other of /a and /b, counting the hits."""

    hits = 0

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).hits += 1
        self.send_response(302)
        self.send_header("Location", "/b" if self.path == "/a" else "/a")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


# --------------------------------------------------------------------------- sibling endpoints on the sandbox

SANDBOX_AUTH = {"Authorization": f"Bearer {SANDBOX_KEY}"}


def encode_image(arr, fmt="PNG"):
    """An image array as base64 in ``fmt``."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return base64.b64encode(buf.getvalue()).decode()


def picture(width=80, height=60):
    """A smooth RGB test picture (uint8)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x * 7 + y * 3) % 256], -1).astype(np.uint8)


def half_mask(width=80, height=60, fill=255):
    """A mask whose right half is ``fill``."""
    mask = np.zeros((height, width), np.uint8)
    mask[:, width // 2 :] = fill  # the right half is white: repaint it
    return mask


def inpainting_checkpoint(srv):
    """An available inpainting checkpoint, found the way a client finds one."""
    r = requests.get(
        srv.base_url + "/v3/model",
        headers=SANDBOX_AUTH,
        timeout=10,
        params={"filter.types": "checkpoint", "filter.is_inpainting": "true", "pagination.limit": 100},
    )
    return next(m.get("sd_name") or m["model_name"] for m in r.json()["models"] if m["status"] == 1)


def txt2img_body(**req):
    """A documented txt2img body; ``req`` overrides request fields."""
    fields = dict(
        model_name="dreamshaper_8_93211.safetensors",
        prompt="a lighthouse",
        width=128,
        height=160,
        image_num=1,
        steps=20,
        guidance_scale=7.5,
        sampler_name="Euler a",
        seed=42,
    )
    fields.update(req)
    return {"extra": {"response_image_type": "png"}, "request": fields}


def inpainting_body(srv, image=None, mask=None, **req):
    """A documented inpainting body on one of ``srv``'s inpainting checkpoints."""
    fields = dict(
        model_name=inpainting_checkpoint(srv),
        image_base64=encode_image(picture() if image is None else image),
        mask_image_base64=encode_image(half_mask() if mask is None else mask),
        prompt="a red door",
        image_num=1,
        steps=20,
        guidance_scale=7.5,
        sampler_name="Euler a",
        seed=7,
    )
    fields.update(req)
    return {"extra": {"response_image_type": "png"}, "request": fields}


def upscale_body(image=None, **req):
    """A documented upscale body."""
    fields = dict(
        model_name="RealESRGAN_x4plus_anime_6B",
        image_base64=encode_image(picture() if image is None else image),
        scale_factor=2,
    )
    fields.update(req)
    return {"extra": {"response_image_type": "png"}, "request": fields}


def sibling_body(srv, name, change):
    """The documented body of endpoint ``name`` with ``change`` applied to its request fields."""
    body = {
        "txt2img": lambda: txt2img_body(),
        "inpainting": lambda: inpainting_body(srv),
        "upscale": lambda: upscale_body(),
    }[name]()
    body["request"].update(change)
    return body


def submit_to(srv, name, body, headers=SANDBOX_AUTH):
    """POST ``body`` to endpoint ``name`` of the sandbox ``srv``."""
    from ppinfra.endpoints import ENDPOINTS

    return requests.post(srv.base_url + ENDPOINTS[name].path, json=body, headers=headers, timeout=10)


def run_to_success(srv, name, body, timeout=15.0):
    """Submit, poll to SUCCEED (every poll kept), download the images with no auth header."""
    r = submit_to(srv, name, body)
    assert r.status_code == 200, r.text
    task_id, polls = r.json()["task_id"], []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        data = requests.get(
            srv.base_url + "/v3/async/task-result",
            params={"task_id": task_id},
            headers=SANDBOX_AUTH,
            timeout=10,
        ).json()
        polls.append(data)
        if data["task"]["status"] == "TASK_STATUS_SUCCEED":
            images = [
                Image.open(io.BytesIO(requests.get(i["image_url"], timeout=10).content))
                for i in data["images"]
            ]
            return data, images, polls
        assert data["task"]["status"] != "TASK_STATUS_FAILED", data
        time.sleep(0.03)
    raise AssertionError(f"task {task_id} did not finish")


def refusal(r):
    """A 400 answer's (reason, message), checking its shape."""
    assert r.status_code == 400, r.text
    data = r.json()
    assert data["code"] == 400 and data["metadata"] == {}
    return data["reason"], data["message"]


# -------------------------------------------------------------------- img2img on the sandbox, plain requests


def smooth_b64(width=96, height=64, fmt="PNG"):
    """A smooth RGB gradient as (base64 in ``fmt``, the uint8 array)."""
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1).astype(
        np.uint8
    )
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return base64.b64encode(buf.getvalue()).decode(), arr


def img2img_body(extra=None, **req):
    """A strict-valid img2img body on ``smooth_b64()``; ``req`` overrides request fields."""
    fields = dict(
        model_name="dreamshaper_8_93211.safetensors",
        image_base64=smooth_b64()[0],
        prompt="a cat",
        width=128,
        height=128,
        image_num=1,
        steps=20,
        guidance_scale=7.5,
        sampler_name="Euler a",
    )
    fields.update(req)
    return {"extra": extra or {}, "request": fields}


def submit_img2img(srv, payload, headers=SANDBOX_AUTH):
    """POST ``payload`` to the sandbox's img2img endpoint; the raw answer."""
    return requests.post(srv.base_url + "/v3/async/img2img", json=payload, headers=headers, timeout=10)


def poll_task(srv, task_id, headers=SANDBOX_AUTH):
    """One task-result poll; the raw answer."""
    return requests.get(
        srv.base_url + "/v3/async/task-result", params={"task_id": task_id}, headers=headers, timeout=10
    )


def wait_task(srv, task_id, timeout=10.0):
    """Poll until the task succeeds or fails; its last answer."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        data = poll_task(srv, task_id).json()
        if data["task"]["status"] in ("TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"):
            return data
        time.sleep(0.03)
    raise AssertionError(f"task {task_id} did not finish")


def run_img2img(srv, payload):
    """Submit (which must be accepted) and wait; the last poll's answer."""
    r = submit_img2img(srv, payload)
    assert r.status_code == 200, r.text
    return wait_task(srv, r.json()["task_id"])


def fetch_ok(url):
    """GET ``url`` (no auth header), which must answer 200."""
    r = requests.get(url, timeout=10)
    assert r.status_code == 200, r.text
    return r


def list_models(srv, **params):
    """GET the sandbox's model list with ``params``; the raw answer."""
    return requests.get(srv.base_url + "/v3/model", params=params, headers=SANDBOX_AUTH, timeout=10)
