"""The sandbox over real sockets, with plain `requests`: injected faults, rate limits, the image host
(signed, expiring URLs) and the CLI.

(Lifecycle, result images, validation and auth: test_sandbox.py.)
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from helpers import ROOT
from helpers import SANDBOX_AUTH as AUTH
from helpers import fetch_ok as fetch, img2img_body as body, list_models as models, poll_task as poll
from helpers import run_img2img as run, submit_img2img as submit, wait_task as wait


# ---------------------------------------------------------------- faults


def test_status_fault_sets_retry_after_and_creates_nothing(sandbox):
    sandbox.inject("submit", "status", count=2, status=503, retry_after=2)
    for _ in range(2):
        r = submit(sandbox, body())
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        assert r.json()["reason"] == "SERVICE_UNAVAILABLE"
    assert not sandbox.tasks and submit(sandbox, body()).status_code == 200


@pytest.mark.parametrize(
    "endpoint,status,reason",
    [
        ("submit", 500, "CREATE_TASK_FAILED"),
        ("poll", 500, "GET_RESULT_FAILED"),
        ("models", 429, "RATE_LIMIT_EXCEEDED"),
    ],
)
def test_status_fault_reasons(sandbox, endpoint, status, reason):
    sandbox.inject(endpoint, "status", status=status)
    r = {
        "submit": lambda: submit(sandbox, body()),
        "poll": lambda: poll(sandbox, "x"),
        "models": lambda: models(sandbox),
    }[endpoint]()
    assert r.status_code == status and r.json()["reason"] == reason and "Retry-After" not in r.headers


@pytest.mark.parametrize("after_create,tasks", [(False, 0), (True, 1)])
def test_drop_on_submit(sandbox, after_create, tasks):
    sandbox.inject("submit", "drop", after_create=after_create)
    with pytest.raises(requests.ConnectionError):
        submit(sandbox, body())
    assert len(sandbox.tasks) == tasks and len(sandbox.submits) == 1


def test_slow_and_malformed_faults(sandbox):
    sandbox.inject("models", "slow", delay=0.4)
    t0 = time.monotonic()
    assert models(sandbox).status_code == 200 and time.monotonic() - t0 >= 0.4
    sandbox.inject("submit", "malformed")
    r = submit(sandbox, body())
    assert r.status_code == 200 and r.text == '{"task_id": ' and not sandbox.tasks
    sandbox.inject("poll", "malformed", wrong_shape=True)
    assert poll(sandbox, "x").json() == []


def test_image_faults(sandbox):
    url = run(sandbox, body(width=256, height=256))["images"][0]["image_url"]
    full = fetch(url).content
    sandbox.inject("image", "truncate")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        requests.get(url, timeout=5).content
    sandbox.inject("image", "oversize", size=300_000)
    r = requests.get(url, timeout=5, stream=True)
    assert r.headers["Content-Length"] == "300000" and len(r.raw.read(400_000)) == 300_000
    sandbox.inject("image", "status", status=503)
    r = requests.get(url, timeout=5)
    assert r.status_code == 503 and r.text.startswith("<?xml") and "<Code>SlowDown</Code>" in r.text
    sandbox.inject("image", "drop")
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    assert fetch(url).content == full  # every fault used up


def test_scheme_fault_applies_to_the_next_succeed(sandbox):
    sandbox.inject("poll", "scheme")
    task_id = submit(sandbox, body(image_num=2)).json()["task_id"]
    assert poll(sandbox, task_id).json()["images"] == []  # queued: the fault waits
    urls = [i["image_url"] for i in wait(sandbox, task_id)["images"]]
    assert urls[0].startswith("file://") and urls[1].startswith("ftp://")
    assert poll(sandbox, task_id).json()["images"][0]["image_url"].startswith("http://")


def test_fail_reason_and_stuck(sandbox):
    sandbox.configure(fail_reason="NSFW content detected")
    data = run(sandbox, body())
    assert (
        data["task"]["status"] == "TASK_STATUS_FAILED" and data["task"]["reason"] == "NSFW content detected"
    )
    assert data["images"] == []
    sandbox.configure(fail_reason=None, stuck=True)
    task_id = submit(sandbox, body()).json()["task_id"]
    time.sleep(0.5)
    assert poll(sandbox, task_id).json()["task"]["status"] == "TASK_STATUS_QUEUED"


def test_images_per_minute(sandbox):
    sandbox.configure(images_per_minute=3)
    assert submit(sandbox, body(image_num=2)).status_code == 200
    r = submit(sandbox, body(image_num=2))
    assert r.status_code == 429 and r.json()["reason"] == "RATE_LIMIT_EXCEEDED" and len(sandbox.tasks) == 1
    assert submit(sandbox, body(image_num=1)).status_code == 200


def test_inject_refuses_nonsense(sandbox):
    for call, exc in [
        (lambda: sandbox.inject("upload", "drop"), ValueError),
        (lambda: sandbox.inject("submit", "truncate"), ValueError),
        (lambda: sandbox.inject("submit", "status"), TypeError),
        (lambda: sandbox.configure(colour="red"), TypeError),
    ]:
        with pytest.raises(exc):
            call()


# ---------------------------------------------------------------- image host


def test_image_host_is_another_host_and_refuses_auth(sandbox):
    api, img = requests.utils.urlparse(sandbox.base_url), requests.utils.urlparse(sandbox.image_base_url)
    assert api.hostname != img.hostname and api.port != img.port
    url = run(sandbox, body())["images"][0]["image_url"]
    assert url.startswith(sandbox.image_base_url + "/results/")
    r = requests.get(url, headers=AUTH, timeout=5)
    assert r.status_code == 400 and "Only one auth mechanism allowed" in r.text
    bad = url[:-4] + "0000"
    r = requests.get(bad, timeout=5)
    assert r.status_code == 403 and "SignatureDoesNotMatch" in r.text


def test_url_expiry_and_refresh(sandbox):
    data = run(sandbox, body())
    url = data["images"][0]["image_url"]
    fetch(url)
    sandbox.expire_urls()
    r = requests.get(url, timeout=5)
    assert r.status_code == 403 and "Request has expired" in r.text
    fresh = poll(sandbox, data["task"]["task_id"]).json()["images"][0]["image_url"]
    assert fresh != url and fetch(fresh).content
    sandbox.configure(url_ttl=0)
    short = poll(sandbox, data["task"]["task_id"]).json()["images"][0]
    assert short["image_url_ttl"] == "0" and requests.get(short["image_url"], timeout=5).status_code == 403


# ---------------------------------------------------------------- construction and CLI


def test_cli_serves_until_interrupted():
    proc = subprocess.Popen(
        [sys.executable, "-m", "ppinfra.sandbox", "--port", "0", "--image-port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        base = line.split(" at ")[1].strip()
        assert "not diffusion" in requests.get(base + "/", timeout=5).text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
