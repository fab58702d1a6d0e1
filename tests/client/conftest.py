"""Fixtures of the client layer (ppinfra/*)."""

from __future__ import annotations

import io
import logging
import sys
import threading
import types
from http.server import ThreadingHTTPServer

import pytest

from helpers import REDACTION_KEY as KEY, RawServer, RedirectLoop, load_pack
from ppinfra.client import PPInfraClient
from ppinfra.images import ENV_LOSSLESS


@pytest.fixture
def no_pacing_env(monkeypatch):
    """No images-per-minute setting leaks in from the developer's environment."""
    for name in ("PPINFRA_IMAGES_PER_MINUTE", "PPINFRA_RATE_WINDOW"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- result cache


@pytest.fixture
def make_client(sandbox, api_key, isolated_env):
    made = []

    def make(base_url=None, **overrides):
        c = PPInfraClient(api_key=api_key, base_url=base_url or sandbox.base_url, deadline=30.0, **overrides)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


# --------------------------------------------------------------------------- ComfyUI's status line


@pytest.fixture
def status_line(monkeypatch):
    """A stand-in for ComfyUI's server with the progress-text call the status line uses."""
    texts = []
    server = types.ModuleType("server")

    class PromptServer:
        def send_progress_text(self, text, node_id, sid=None):
            texts.append((node_id, text))

    PromptServer.instance = PromptServer()
    server.PromptServer = PromptServer
    monkeypatch.setitem(sys.modules, "server", server)
    return texts


# --------------------------------------------------------------------------- uploads


@pytest.fixture
def no_forced_lossless(monkeypatch):
    monkeypatch.delenv(ENV_LOSSLESS, raising=False)


# --------------------------------------------------------------------------- redaction


@pytest.fixture
def pack_logs():
    """The pack loaded as ComfyUI loads it, its logs module, and ``KEY`` remembered by that copy."""
    pack = load_pack()
    config = __import__(f"{pack.__name__}.ppinfra.config", fromlist=["load_settings"])
    config.load_settings(api_key=KEY, base_url="https://api.ppinfra.com")  # remembers the key, as a run does
    return __import__(f"{pack.__name__}.ppinfra.logs", fromlist=["eprint"])


@pytest.fixture
def console(caplog):
    """A StreamHandler on the root logger, like ComfyUI's console; text in ``console.getvalue()``."""
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


# --------------------------------------------------------------------------- raw loopback servers


@pytest.fixture
def raw_server():
    servers = []

    def start(respond):
        srv = RawServer(respond)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.close()


@pytest.fixture
def looping_host():
    RedirectLoop.hits = 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), RedirectLoop)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
