"""Every answer is bounded in time and size: a dripping or a huge answer cannot hold a node or fill memory.

The slow and huge servers here are real HTTP servers on loopback sockets: they
send their headers, then drip a byte at a time or stream without end.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import endless
from ppinfra import errors
from ppinfra.client import PPInfraClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def drip(conn: socket.socket, every: float = 0.3, stop_after: float = 30.0) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
    end = time.monotonic() + stop_after
    while time.monotonic() < end:
        time.sleep(every)
        conn.sendall(b" ")


def _client(base_url: str, **kw) -> PPInfraClient:
    return PPInfraClient(
        api_key="sk-test-key-0123456789",
        base_url=base_url,
        backoff_base=0.05,
        backoff_max=0.1,
        max_retries=1,
        **kw,
    )


def test_a_dripping_poll_ends_at_the_deadline(raw_server, isolated_env):
    """A task-result answer that sends a byte every 0.3 s never trips a per-read timeout;
    the deadline ends it. Break: read the body with requests' own read (resp.json()), as before."""
    srv = raw_server(drip)
    with _client(srv.base_url, deadline=60) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.TaskTimeoutError):
            c.get_task_result("t-1", deadline=__import__("ppinfra.waiting").waiting.Deadline(1.5))
        assert time.monotonic() - t0 < 3.0


def test_a_dripping_balance_ends_within_its_budget(raw_server, isolated_env):
    srv = raw_server(drip)
    with _client(srv.base_url) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.TaskTimeoutError):
            c.balance(timeout=1.0)
        assert time.monotonic() - t0 < 2.5


def test_cancel_ends_a_dripping_read(raw_server, isolated_env):
    srv = raw_server(drip)
    cancel_at = time.monotonic() + 0.8
    with _client(srv.base_url, deadline=60) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.CancelledError):
            c.get_task_result("t-1", should_cancel=lambda: time.monotonic() > cancel_at)
        assert time.monotonic() - t0 < 2.5


def test_an_oversized_answer_is_refused_naming_the_endpoint_and_the_cap(raw_server, isolated_env):
    srv = raw_server(endless)
    with _client(srv.base_url, deadline=30) as c:
        with pytest.raises(errors.AnswerTooLargeError) as info:
            c.balance(timeout=20)
    text = str(info.value)
    assert "user" in text and str(2 * 1024 * 1024) in text


def test_a_declared_oversized_answer_is_refused_unread(raw_server, isolated_env):
    def declared(conn):
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900000000\r\n\r\n{}"
        )
        time.sleep(2)

    srv = raw_server(declared)
    with _client(srv.base_url) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.AnswerTooLargeError, match="900000000 bytes"):
            c.get_task_result("t-1", deadline=__import__("ppinfra.waiting").waiting.Deadline(10))
        assert time.monotonic() - t0 < 1.5


def test_model_pages_have_a_larger_cap_than_task_answers(raw_server, isolated_env):
    """A real model page of 100 entries with long descriptions is larger than a poll may be."""
    page = json.dumps(
        {
            "models": [
                {
                    "sd_name": f"m{i}.safetensors",
                    "name": "x" * 30000,
                    "status": 1,
                    "type": {"name": "checkpoint"},
                }
                for i in range(100)
            ],
            "pagination": {"next_cursor": ""},
        }
    ).encode()
    assert len(page) > 2 * 1024 * 1024

    def answer(conn):
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(page)
            + page
        )

    srv = raw_server(answer)
    with _client(srv.base_url) as c:
        assert len(c.model_page("checkpoint", timeout=10).models) == 100


def test_memory_stays_flat_for_a_500_mb_answer(tmp_path):
    """Peak RSS for a 500 MB chunked task-result answer, in a fresh process: the read stops at the cap.
    Before the cap, resp.json() held such a body several times over (4.1 GB for 1 GB)."""
    script = textwrap.dedent(f"""
        import resource, sys, threading, time
        sys.path.insert(0, {ROOT!r}); sys.path.insert(0, {os.path.join(ROOT, 'tests')!r})
        from helpers import RawServer, endless
        from ppinfra.client import PPInfraClient
        from ppinfra import errors
        srv = RawServer(endless)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with PPInfraClient(api_key="sk-test-key-0123456789", base_url=srv.base_url, max_retries=0) as c:
            try:
                c.get_task_result("t-1")
            except errors.AnswerTooLargeError:
                pass
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024)
    """)
    env = {**os.environ, "PPINFRA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    grew_mb = int(out.stdout.strip().splitlines()[-1])
    print(f"peak RSS growth for a 500 MB answer: {grew_mb} MB")
    assert grew_mb < 40
