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
from http.server import BaseHTTPRequestHandler
from typing import Callable, List

import numpy as np
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
    from ppinfra.request import Img2ImgRequest

    fields = dict(model_name="dreamshaper_8_93211.safetensors", image_base64=png_b64(), prompt="a cat",
                  width=512, height=512)
    fields.update(overrides)
    return Img2ImgRequest(**fields)


# Short retry budgets for the client tests of retries and rate limits.
FAST_RETRIES = dict(backoff_base=0.02, backoff_max=0.05, max_retries=2, rate_limit_retries=5,
                    rate_limit_backoff=0.02, rate_limit_backoff_max=0.08)


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
    fields = dict(model_name="dreamshaper_8_93211.safetensors", image_base64=gradient_png(), prompt="a cat",
                  width=128, height=128, image_num=1, steps=20, guidance_scale=7.5, sampler_name="Euler a")
    fields.update(req)
    return {"extra": {"response_image_type": "png"}, "request": fields}


# --------------------------------------------------------------------------- raw loopback servers (bounded answers)

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
