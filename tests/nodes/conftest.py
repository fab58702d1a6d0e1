"""Fixtures of the node layer. For the editor's routes (nodes/routes.py): the pack's aiohttp app on a loopback
port, and a provider that answers too slowly. Real sockets throughout.

aiohttp is imported by the route fixtures only (ComfyUI provides it): the node tests run without it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import types
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional

import pytest
import requests

from helpers import PACK_NAME, load_pack
from tools.node_driver import pack_module

load_pack()


def pack(name: str) -> Any:
    """A module of the pack as ComfyUI imports it (``<pack>.nodes.routes``), not the plain ``ppinfra``."""
    return importlib.import_module(f"{PACK_NAME}.{name}")


class RouteServer:
    """``routes.make_app()`` (plus ``extra(app)``) on 127.0.0.1:<free port>, served from its own loop thread.

    ``default_workers`` sizes the loop's default executor, the one ComfyUI's own
    handlers share (``/view`` reads its file there): about 6 threads on a small machine.
    """

    def __init__(
        self, extra: Optional[Callable[[Any], None]] = None, default_workers: Optional[int] = None
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.default_pool: Optional[ThreadPoolExecutor] = None
        if default_workers:
            self.default_pool = ThreadPoolExecutor(
                max_workers=default_workers, thread_name_prefix="comfy-default"
            )
            self.loop.set_default_executor(self.default_pool)
        self.extra = extra
        self.runner: Any = None
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10), "the route server did not start"

    def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            app = pack("nodes.routes").make_app()
            if self.extra is not None:
                self.extra(app)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]

        self.loop.run_until_complete(start())
        ready.set()
        self.loop.run_forever()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        return requests.get(self.origin + path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        # As the editor sends it: same origin, JSON body.
        headers = {"Origin": self.origin, **kw.pop("headers", {})}
        kw.setdefault("timeout", 30)
        if "data" not in kw:
            kw["json"] = {} if body is None else body
        return requests.post(self.origin + path, headers=headers, **kw)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if self.default_pool is not None:
            self.default_pool.shutdown(wait=False)


@pytest.fixture
def route_server():
    """A factory: ``route_server(extra=..., default_workers=...)``; every server is stopped after the test."""
    pytest.importorskip("aiohttp", reason="ComfyUI provides aiohttp; pip install -r requirements-dev.txt")
    started: List[RouteServer] = []

    def make(**kwargs: Any) -> RouteServer:
        srv = RouteServer(**kwargs)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def server(route_server):
    """One route server (``RouteServer``) for the test."""
    return route_server()


@pytest.fixture
def keyless_env(sandbox, isolated_env, monkeypatch):
    """Key checks and model lists go to the sandbox (PPINFRA_BASE_URL wins over any host choice); no key set,
    no extra allowed host names (the routes' Host check sees only the defaults)."""
    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    monkeypatch.delenv("PPINFRA_ALLOWED_HOSTS", raising=False)
    return sandbox


class DrippingProvider:
    """An HTTP server that sends a 200 with its headers at once, then one byte every ``every`` seconds.

    Every read by the client succeeds within any per-read timeout, so only a
    deadline on the whole call can end it. ``requests_seen`` counts the requests.
    """

    def __init__(self, every: float = 0.7, length: int = 100_000) -> None:
        self.every, self.length = every, length
        self.stopped = threading.Event()
        self.requests_seen = 0
        self._lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.threads: List[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._drip, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            seen = b""
            try:
                while b"\r\n\r\n" not in seen:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    seen += chunk
                with self._lock:
                    self.requests_seen += 1
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % self.length
                )
                for _ in range(self.length):
                    if self.stopped.wait(self.every):
                        return
                    conn.sendall(b" ")
            except OSError:
                return

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)


@pytest.fixture
def dripping_provider():
    srv = DrippingProvider()
    yield srv
    srv.stop()


# ------------------------------------------------------------------------ status lines and logs (secret scan)


@pytest.fixture
def status_texts(env, monkeypatch):
    """Every status line that reaches the editor: ComfyUI's ``PromptServer.instance.send_progress_text``."""
    seen = []

    class Instance:
        def send_progress_text(self, text, node_id, client_id=None):
            seen.append(str(text))

    server = types.ModuleType("server")
    server.PromptServer = type("PromptServer", (), {"instance": Instance()})
    monkeypatch.setitem(sys.modules, "server", server)
    return seen


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    saved = {name: logging.getLogger(name).level for name in ("ppinfra", "urllib3", "requests")}
    for name in saved:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield caplog
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


# --------------------------------------------------------------------------- nothing sent (bad inputs)


@pytest.fixture
def quiet(env):
    """The sandbox must stay untouched: checked after every test of this file that uses it."""
    yield env
    assert env.requests == [], f"the sandbox received {len(env.requests)} request(s): {env.requests[:2]}"


@pytest.fixture
def validated(monkeypatch, quiet):
    """Replace the client with a marker: reaching it proves every check passed, and nothing is sent."""

    class Reached(Exception):
        pass

    def make_client():
        raise Reached()

    monkeypatch.setattr(pack_module("nodes.generation"), "make_client", make_client)
    return Reached


# ------------------------------------------------------------------- model-cache reads (input types at scale)


@pytest.fixture
def counted_reads(isolated_env, monkeypatch):
    monkeypatch.setattr(pack_module("nodes.catalog"), "refresh_soon", lambda: None)
    monkeypatch.setattr(pack_module("nodes.widgets"), "refresh_soon", lambda: None)
    cat = pack_module("nodes.catalog").catalog()
    reads = []
    real = cat._read_cache
    monkeypatch.setattr(cat, "_read_cache", lambda: reads.append(threading.current_thread().name) or real())
    return reads
