"""The client's HTTP edges against the sandbox and raw loopback servers: dripping and gzip downloads,
extra result images, plain http only to this machine, Retry-After on downloads, 429 windows,
cancel mid-call."""

from __future__ import annotations

import base64
import threading
import time

import pytest

from helpers import base_request, png_b64
from ppinfra import errors
from ppinfra.client import PPInfraClient


def _one_shot_server(respond):
    """A raw loopback HTTP server for one request: ``respond(conn)`` writes whatever it likes. Returns the
    URL."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        conn.recv(65536)
        try:
            respond(conn)
        except OSError:
            pass
        conn.close()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{srv.getsockname()[1]}/x.png"


def test_dripping_download_stops_at_the_deadline(sandbox, api_key, isolated_env):
    from ppinfra.waiting import Call, Deadline

    def drip(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(100):
            conn.sendall(b"x")
            time.sleep(0.05)

    url = _one_shot_server(drip)
    with PPInfraClient(api_key=api_key, base_url=sandbox.base_url) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.TaskTimeoutError):
            c.transport.download(url, Call(Deadline(1.0)))
        assert time.monotonic() - t0 < 3.0


def test_extra_result_images_are_not_kept(client, sandbox):
    task_id = client.submit_img2img(base_request(width=128, height=128, image_num=1))
    done = client.wait_for_task(task_id)
    doubled = done.__class__(**{**done.__dict__, "images": done.images * 3})
    seen = []
    blobs = client.download_images(doubled, expected=1, on_image=lambda t, i, b: seen.append((t, i)))
    assert len(blobs) == 1 and seen == [(task_id, 0)]


def test_plain_http_only_to_this_machine(isolated_env):
    from ppinfra.config import load_settings

    with pytest.raises(errors.ConfigError) as info:
        load_settings(api_key="sk-test-123456", base_url="http://api.ppinfra.com")
    assert "https" in str(info.value) and "http://api.ppinfra.com" in str(info.value)
    assert (
        load_settings(api_key="sk-test-123456", base_url="http://localhost:9/").base_url
        == "http://localhost:9"
    )


def test_download_honours_retry_after(client, sandbox):
    sandbox.inject("image", "status", count=1, status=503, retry_after=1)
    t0 = time.monotonic()
    client.img2img(base_request(width=128, height=128))
    assert time.monotonic() - t0 >= 1.0


def test_gzip_encoded_download_is_decoded(sandbox, api_key, isolated_env):
    import gzip
    from ppinfra.waiting import Call, Deadline

    png = base64.b64decode(png_b64(32, 32))
    body = gzip.compress(png)
    url = _one_shot_server(
        lambda conn: conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Encoding: gzip\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    )
    with PPInfraClient(api_key=api_key, base_url=sandbox.base_url) as c:
        assert c.transport.download(url, Call(Deadline(5))) == png


def test_cancel_ends_a_slow_http_call_within_a_second(client, sandbox):
    sandbox.inject("poll", "slow", count=1, delay=6)
    flag = threading.Event()
    threading.Timer(0.6, flag.set).start()
    t0 = time.monotonic()
    with pytest.raises(errors.CancelledError):
        client.img2img(base_request(width=128, height=128), should_cancel=flag.is_set)
    assert time.monotonic() - t0 < 1.6
