"""Issue 15, "never hang": slow PPInfra answers never starve ComfyUI's own handlers, and no route hangs.

The pack's routes share an aiohttp app (so an event loop and its default
executor) with a stand-in for ComfyUI's ``/view``, which reads its file on the
default executor as ComfyUI's does. The provider sends its headers and then a
byte now and then: every read succeeds, so only a budget on the whole call ends it.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from typing import Any, Dict, List

import requests
from aiohttp import web

from helpers import PACK_NAME, SANDBOX_KEY


def pack(name: str) -> Any:
    return importlib.import_module(f"{PACK_NAME}.{name}")


# What a small machine gives the loop's default executor (min(32, cpus + 4) with 2 CPUs).
COMFY_DEFAULT_WORKERS = 6
VIEW_LIMIT = 1.0  # seconds /view may take while the slow calls are in flight
ANSWER_WITHIN = (
    8.0  # seconds any settings call may take, however slowly the provider answers (ROUTE_BUDGET + slack)
)


def view_app(path: str):
    """Add ``GET /view``: the file at ``path``, read on the default executor like ComfyUI's own handler."""

    def read() -> bytes:
        with open(path, "rb") as fh:
            return fh.read()

    async def view(request: Any) -> Any:
        loop = __import__("asyncio").get_running_loop()
        return web.Response(body=await loop.run_in_executor(None, read), content_type="image/png")

    return lambda app: app.router.add_get("/view", view)


def test_ten_slow_balance_checks_leave_view_answering_and_end_within_their_budget(
    route_server, dripping_provider, isolated_env, monkeypatch
):
    routes = pack("nodes.routes")
    assert routes.ROUTE_BUDGET < ANSWER_WITHIN - 1
    monkeypatch.setenv("PPINFRA_API_KEY", SANDBOX_KEY)
    monkeypatch.setenv("PPINFRA_BASE_URL", dripping_provider.base_url)
    image = isolated_env / "out.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2048))
    server = route_server(extra=view_app(str(image)), default_workers=COMFY_DEFAULT_WORKERS)

    answers: List[Dict[str, Any]] = []

    def settings() -> None:
        t0 = time.monotonic()
        try:
            resp = requests.get(server.origin + "/ppinfra/settings?refresh=1", timeout=ANSWER_WITHIN + 20)
            answers.append({"took": time.monotonic() - t0, "status": resp.status_code, "json": resp.json()})
        except Exception as exc:  # a hang ends in the client's timeout: recorded as a failure below
            answers.append({"took": time.monotonic() - t0, "status": None, "json": repr(exc)})

    calls = [threading.Thread(target=settings, daemon=True) for _ in range(10)]
    for t in calls:
        t.start()
    deadline = time.monotonic() + 5
    while dripping_provider.requests_seen == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dripping_provider.requests_seen >= 1, (
        "the balance check never reached the slow provider",
        answers,
    )
    time.sleep(0.5)  # every settings call has reached its handler by now

    view_times = []
    for _ in range(3):
        t0 = time.monotonic()
        resp = requests.get(server.origin + "/view", timeout=ANSWER_WITHIN + 20)
        view_times.append(time.monotonic() - t0)
        assert resp.status_code == 200 and resp.content == image.read_bytes()
    print(
        "/view while 10 slow settings calls were in flight: "
        f"{', '.join(f'{t * 1000:.0f} ms' for t in view_times)}"
    )
    assert max(view_times) < VIEW_LIMIT, view_times

    for t in calls:
        t.join(ANSWER_WITHIN + 25)
    assert len(answers) == 10
    for a in answers:
        # Every call ends within the route's budget (and some slack for the test machine), with a JSON error.
        assert a["took"] < ANSWER_WITHIN, answers
        body = a["json"]
        assert isinstance(body, dict), answers
        if a["status"] == 200:  # the balance check gave up on its own: the panel shows why
            assert body["configured"] is True and body["balance"] is None and body["balance_error"], body
        else:
            assert a["status"] in (503, 504) and body["ok"] is False and "PPInfra" in body["error"], answers
    # Ten refreshes at once share the provider call in flight: they do not pile up on the provider.
    assert dripping_provider.requests_seen <= 2, dripping_provider.requests_seen
    # Nothing keeps a worker once the provider is gone.
    dripping_provider.stop()
    deadline = time.monotonic() + ANSWER_WITHIN
    while routes.in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert routes.in_flight() == 0


def test_a_full_pool_answers_503_at_once(route_server, isolated_env, monkeypatch):
    """Past ROUTE_WORKERS + ROUTE_QUEUE calls in flight a route refuses at once, saying why."""
    routes = pack("nodes.routes")
    account_mod = pack("nodes.account_panel")
    release = threading.Event()
    started = threading.Semaphore(0)

    def stuck_status(self, **kw):
        started.release()
        release.wait(30)
        return {"stuck": True}

    monkeypatch.setattr(type(account_mod.account()), "status", stuck_status)
    server = route_server()
    assert routes.in_flight() == 0
    capacity = routes.ROUTE_WORKERS + routes.ROUTE_QUEUE
    results: List[int] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                requests.get(server.origin + "/ppinfra/settings", timeout=30).status_code
            ),
            daemon=True,
        )
        for _ in range(capacity)
    ]
    try:
        for t in threads:
            t.start()
        for _ in range(routes.ROUTE_WORKERS):
            assert started.acquire(timeout=10)
        deadline = time.monotonic() + 5
        while routes.in_flight() < capacity and time.monotonic() < deadline:
            time.sleep(0.02)
        assert routes.in_flight() == capacity, (results, routes.in_flight())
        t0 = time.monotonic()
        resp = requests.get(server.origin + "/ppinfra/settings", timeout=30)
        took = time.monotonic() - t0
        assert resp.status_code == 503 and took < 0.5, (resp.status_code, took)
        assert (
            resp.json()["error"] == f"PPInfra is busy with {capacity} slow calls; try again in a few seconds."
        )
    finally:
        release.set()
        for t in threads:
            t.join(30)
    assert sorted(set(results)) == [200]
    deadline = time.monotonic() + 5
    while routes.in_flight() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert routes.in_flight() == 0  # every slot is given back, queued or run
