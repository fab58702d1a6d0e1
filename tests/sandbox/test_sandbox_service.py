"""The sandbox as a service: silent progress, the real faults, the account endpoint, bounded memory,
CLI modes."""

from __future__ import annotations

import argparse
import base64
import io
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import requests
from PIL import Image

from helpers import ROOT, SANDBOX_KEY
from ppinfra.sandbox.__main__ import catalog_size
from ppinfra.sandbox.server import IMAGE_PRICE
from helpers import documented

SUBMIT, RESULT, MODELS, USER = "/v3/async/img2img", "/v3/async/task-result", "/v3/model", "/v3/user"
AUTH = {"Authorization": f"Bearer {SANDBOX_KEY}"}
DONE = ("TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED")


def submit(srv, **req):
    r = requests.post(srv.base_url + SUBMIT, json=documented(**req), headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


def poll(srv, task_id):
    return requests.get(srv.base_url + RESULT, params={"task_id": task_id}, headers=AUTH, timeout=10)


def wait(srv, task_id, timeout=10.0):
    seen = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        data = poll(srv, task_id).json()
        seen.append(data["task"])
        if data["task"]["status"] in DONE:
            return data, seen
        time.sleep(0.03)
    raise AssertionError(f"task {task_id} did not finish")


def test_fixture_is_strict_by_default(sandbox):
    assert sandbox.strict is True


@pytest.mark.sandbox(strict=False, task_seconds=0.1)
def test_fixture_takes_sandbox_arguments_from_the_marker(sandbox):
    assert sandbox.strict is False and sandbox.tasks == {}


# ---------------------------------------------------------------- progress


@pytest.mark.parametrize("via", ["constructor", "configure"])
def test_silent_progress_stays_zero_until_and_at_succeed(make_sandbox, via):
    srv = make_sandbox(
        queue_seconds=0.2, task_seconds=0.8, **({"progress": "silent"} if via == "constructor" else {})
    )
    if via == "configure":
        srv.configure(progress="silent")
    data, seen = wait(srv, submit(srv))
    statuses = [t["status"] for t in seen]
    assert statuses[0] == "TASK_STATUS_QUEUED" and "TASK_STATUS_PROCESSING" in statuses
    assert data["task"]["status"] == "TASK_STATUS_SUCCEED" and data["images"]
    assert all(
        t["eta"] == 0 and t["progress_percent"] == 0 for t in seen
    )  # the documented SUCCEED samples too
    srv.configure(progress="reported")
    _, seen = wait(srv, submit(srv))
    assert any(t["progress_percent"] > 0 for t in seen) and seen[0]["eta"] > 0
    with pytest.raises(ValueError):
        srv.configure(progress="loud")


# ---------------------------------------------------------------- faults


def test_task_failed_is_http_500_on_that_poll_and_every_later_one(sandbox):
    first, other = submit(sandbox), submit(sandbox)
    sandbox.inject("poll", "task_failed", message="image generation failed: out of memory")
    for _ in range(3):
        r = poll(sandbox, first)
        assert r.status_code == 500
        assert r.json() == {
            "code": 500,
            "reason": "TASK_FAILED",
            "message": "image generation failed: out of memory",
            "metadata": {},
        }
    time.sleep(0.5)  # past the time it would have succeeded: still failed
    assert poll(sandbox, first).status_code == 500
    assert sandbox.tasks[first].status == "TASK_STATUS_FAILED"
    data, _ = wait(sandbox, other)  # the other task is untouched
    assert data["task"]["status"] == "TASK_STATUS_SUCCEED"


def test_task_failed_can_target_one_task(sandbox):
    first, second = submit(sandbox), submit(sandbox)
    sandbox.inject("poll", "task_failed", task_id=second)
    assert poll(sandbox, first).status_code == 200
    r = poll(sandbox, second)
    assert r.status_code == 500 and r.json()["reason"] == "TASK_FAILED" and r.json()["message"]
    assert not sandbox.faults.pending()


def _other(srv):
    return [r for r in srv.requests if r.server == "other"]


@pytest.mark.parametrize("status", [302, 307])
def test_redirect_to_another_host_records_whether_the_key_followed(sandbox, status):
    task_id = submit(sandbox)
    sandbox.inject("poll", "redirect", status=status)
    r = requests.get(
        sandbox.base_url + RESULT,
        params={"task_id": task_id},
        headers=AUTH,
        timeout=10,
        allow_redirects=False,
    )
    assert r.status_code == status
    assert r.headers["Location"] == f"{sandbox.other_base_url}{RESULT}?task_id={task_id}"
    assert not sandbox.other_base_url.startswith(sandbox.base_url.rsplit(":", 1)[0])  # another host name
    sandbox.inject("poll", "redirect", status=status)
    r = poll(sandbox, task_id)  # requests follows and drops the key on a host change
    assert r.status_code == 400 and r.json()["reason"] == "MISSING_API_KEY"
    (arrived,) = _other(sandbox)
    assert arrived.path == RESULT and "Authorization" not in arrived.headers
    # The recorder is not blind: a client that re-sends the key to the other host is seen doing it.
    assert (
        requests.get(
            sandbox.other_base_url + RESULT, params={"task_id": task_id}, headers=AUTH, timeout=10
        ).status_code
        == 200
    )
    assert "Authorization" in _other(sandbox)[-1].headers


def test_redirected_submit_keeps_method_and_body_but_not_the_key(sandbox):
    sandbox.inject("submit", "redirect")  # 307 by default: the body is sent again
    r = requests.post(sandbox.base_url + SUBMIT, json=documented(), headers=AUTH, timeout=10)
    assert r.status_code == 400 and r.json()["reason"] == "MISSING_API_KEY" and not sandbox.tasks
    (arrived,) = _other(sandbox)
    assert arrived.method == "POST" and arrived.body_size > 0 and "Authorization" not in arrived.headers


def test_image_redirect_and_corrupt_image(sandbox):
    data, _ = wait(sandbox, submit(sandbox, width=256, height=192))
    url = data["images"][0]["image_url"]
    good = requests.get(url, timeout=10).content
    sandbox.inject("image", "redirect")
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.content == good and r.history[0].status_code == 307
    sandbox.inject("image", "corrupt")
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(r.content) == len(good)
    assert r.content != good and r.content[:8] == good[:8]
    with pytest.raises((OSError, SyntaxError)):  # PIL's "cannot identify" / "broken PNG file"
        Image.open(io.BytesIO(r.content)).load()
    assert requests.get(url, timeout=10).content == good  # the fault is used up


def test_inject_checks_the_new_kinds(sandbox):
    for call in (
        lambda: sandbox.inject("submit", "task_failed"),
        lambda: sandbox.inject("poll", "corrupt"),
        lambda: sandbox.inject("poll", "redirect", status=200),
        lambda: sandbox.inject("poll", "redirect", to="moon"),
    ):
        with pytest.raises(ValueError):
            call()


# ---------------------------------------------------------------- account


def test_user_endpoint_and_balance_running_out(sandbox):
    r = requests.get(sandbox.base_url + USER, headers=AUTH, timeout=5)
    assert r.status_code == 200 and set(r.json()) == {"credit_balance", "allow_features", "free_trial"}
    unlimited = r.json()["credit_balance"]
    assert isinstance(unlimited, int) and unlimited > 0
    submit(sandbox, image_num=8)  # not configured: never refused, but it still goes down
    assert sandbox.balance == unlimited - 8 * IMAGE_PRICE
    sandbox.configure(credit_balance=5 * IMAGE_PRICE)
    submit(sandbox, image_num=4)
    r = requests.post(sandbox.base_url + SUBMIT, json=documented(image_num=2), headers=AUTH, timeout=10)
    assert (
        r.status_code == 400
        and r.json()["reason"] == "BILLING_BALANCE_NOT_ENOUGH"
        and len(sandbox.tasks) == 2
    )
    assert (
        requests.get(sandbox.base_url + USER, headers=AUTH, timeout=5).json()["credit_balance"] == IMAGE_PRICE
    )
    submit(sandbox, image_num=1)
    assert sandbox.account()["credit_balance"] == 0
    assert requests.get(sandbox.base_url + USER, timeout=5).status_code == 400  # no key


# ---------------------------------------------------------------- rate window


def test_images_per_minute_on_a_short_window(make_sandbox):
    srv = make_sandbox(images_per_minute=2, rate_window=0.6)
    submit(srv)
    submit(srv)
    r = requests.post(srv.base_url + SUBMIT, json=documented(), headers=AUTH, timeout=10)
    assert (
        r.status_code == 429
        and r.json()["reason"] == "RATE_LIMIT_EXCEEDED"
        and "0.6 s" in r.json()["message"]
    )
    time.sleep(0.7)
    submit(srv)  # the window has moved on
    with pytest.raises(ValueError):
        srv.configure(rate_window=0)


# ---------------------------------------------------------------- bounded memory


def test_old_requests_bodies_and_tasks_are_dropped_past_the_caps(make_sandbox):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "PNG")
    image = base64.b64encode(
        buf.getvalue()
    ).decode()  # ~16 KB that does not compress: the body is mostly image
    one_body = len(json.dumps(documented(image_base64=image)))
    srv = make_sandbox(max_requests=6, max_request_bytes=int(one_body * 2.5), max_tasks=3, task_seconds=0.05)
    ids = [submit(srv, image_base64=image) for _ in range(5)]
    assert list(srv.tasks) == ids[-3:]
    r = poll(srv, ids[0])
    assert r.status_code == 404 and r.json()["reason"] == "TASK_NOT_FOUND"
    kept = srv.requests
    assert len(kept) == 6 and kept[-1].path == RESULT
    posts = [q for q in kept if q.method == "POST"]
    assert len(posts) == 5 and all(q.body_size > 0 for q in posts)
    assert [bool(q.body) for q in posts] == [False, False, False, True, True]  # oldest bodies go first
    assert len(srv.submits) == 2
    kept_tasks = list(srv.tasks.values())  # their input images count against the same byte cap
    assert kept_tasks[0].body["request"]["image_base64"].endswith("characters dropped to bound memory>")
    assert kept_tasks[0].request["prompt"] == "a cat" and "dropped" in kept_tasks[0].request["image_base64"]
    assert kept_tasks[-1].body == documented(image_base64=image)
    for _ in range(10):
        poll(srv, ids[-1])
    assert len(srv.requests) == 6 and srv.requests[0].method == "GET"


def test_result_images_are_dropped_oldest_first_past_the_byte_cap(make_sandbox):
    srv = make_sandbox(max_image_bytes=1, task_seconds=0.05)
    first, _ = wait(srv, submit(srv))
    second, _ = wait(srv, submit(srv))
    assert requests.get(second["images"][0]["image_url"], timeout=5).status_code == 200
    r = requests.get(first["images"][0]["image_url"], timeout=5)
    assert r.status_code == 404 and "NoSuchKey" in r.text
    assert srv._store.image_bytes == len(srv.tasks[second["task"]["task_id"]].images[0])


# ---------------------------------------------------------------- command line


def test_catalog_size_argument():
    assert catalog_size("300") == 300
    assert catalog_size("checkpoint=30000,lora=20000") == {"checkpoint": 30000, "lora": 20000}
    for bad in ("loras=3", "checkpoint=x", "big"):
        with pytest.raises(argparse.ArgumentTypeError):
            catalog_size(bad)


@pytest.mark.parametrize("strict", [False, True])
def test_cli_modes_and_flags(strict):
    args = [
        sys.executable,
        "-m",
        "ppinfra.sandbox",
        "--port",
        "0",
        "--image-port",
        "0",
        "--api-key",
        "k",
        "--catalog-size",
        "checkpoint=30,lora=12",
        "--progress",
        "silent",
        "--rate-window",
        "5",
    ]
    proc = subprocess.Popen(
        args + (["--strict"] if strict else []), cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        base = proc.stdout.readline().split(" at ")[1].strip()
        assert ("mode: strict" in proc.stdout.readline()) == strict
        r = requests.get(
            base + MODELS,
            params={"filter.types": "checkpoint", "pagination.limit": 100},
            headers={"Authorization": "k"},
            timeout=5,
        )
        assert r.status_code == (400 if strict else 200)
        r = requests.get(
            base + MODELS,
            params={"filter.types": "lora", "pagination.limit": 100},
            headers={"Authorization": "Bearer k"},
            timeout=5,
        )
        assert len(r.json()["models"]) == 12
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ----------------------------------------------------------------- README promise: the sandbox's history size


def test_the_sandbox_keeps_the_last_10000_requests_and_tasks_by_default():
    """docs/sandbox.md: "As a long-running server it keeps the last 10,000 requests and tasks."

    The tests above prove the dropping with small caps; this holds the number
    the README gives (``python -m ppinfra.sandbox`` passes the same defaults).
    Break: DEFAULT_MAX_REQUESTS / DEFAULT_MAX_TASKS = 1,000.
    """
    import inspect

    from ppinfra.sandbox import SandboxServer

    params = inspect.signature(SandboxServer).parameters
    assert params["max_requests"].default == params["max_tasks"].default == 10_000
