"""The retry engine's promises, each held by a test that fails when the behaviour is broken.

Timing promises are checked by the mechanism (which budget, which delays the
engine asked for, how often cancel was looked at), with a stopwatch only as a
lower or generous upper bound.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from helpers import FAST_RETRIES as FAST, base_request, fast_client as make, small_request as small
from ppinfra import errors
from ppinfra.client import PPInfraClient, TaskResult
from ppinfra.retry import (
    CORRUPT,
    NETWORK,
    RATE_LIMITED,
    SERVER,
    Backoff,
    Retrier,
    RetryPolicy,
    reached_server,
)
from ppinfra.waiting import Deadline


def submits(sandbox):
    return [r for r in sandbox.requests if r.server == "api" and r.method == "POST"]


def polls(sandbox):
    return [r for r in sandbox.requests if r.server == "api" and r.path == "/v3/async/task-result"]


def image_gets(sandbox):
    return [r for r in sandbox.requests if r.server == "images"]


# --------------------------------------------------------------------------- submit is never sent twice


def test_submit_whose_answer_never_arrives_is_not_sent_again(sandbox, api_key, isolated_env):
    sandbox.inject("submit", "slow", count=1, delay=2.0)
    with make(sandbox, api_key, read_timeout=0.5) as c:
        with pytest.raises(errors.NetworkError) as info:
            c.img2img(small())
    assert len(submits(sandbox)) == 1, "a read timeout after the body went out must not re-send (bills twice)"
    assert "not resubmitted" in str(info.value)


def test_submit_to_a_port_that_refuses_is_retried_within_the_network_budget(api_key, isolated_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    waits = []
    with PPInfraClient(api_key=api_key, base_url=f"http://127.0.0.1:{port}", **FAST) as c:
        with pytest.raises(errors.NetworkError) as info:
            c.submit_img2img(small(), on_wait=waits.append)
    assert [w.kind for w in waits] == [NETWORK] * FAST["max_retries"]
    assert "could not connect" in str(info.value)


def test_reached_server_is_decided_by_types_not_names():
    import requests
    import urllib3

    refused = requests.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.NewConnectionError(None, "refused"))
    )
    assert reached_server(refused) is False
    assert reached_server(requests.ConnectTimeout()) is False
    assert reached_server(requests.ReadTimeout()) is True
    assert reached_server(requests.ConnectionError(urllib3.exceptions.ProtocolError("reset"))) is True

    class NewConnectionError(Exception):  # same name, another type: no proof the request was unsent
        pass

    assert reached_server(requests.ConnectionError(NewConnectionError())) is True


# --------------------------------------------------- a budget per kind of failure (429s: test_rate_limits.py)


def test_503_on_submit_uses_the_ordinary_budget(sandbox, api_key, isolated_env):
    waits = []
    sandbox.inject("submit", "status", count=FAST["max_retries"] + 1, status=503)
    with make(sandbox, api_key) as c:
        with pytest.raises(errors.ServerError):
            c.submit_img2img(small(), on_wait=waits.append)
    assert [w.kind for w in waits] == [SERVER] * FAST["max_retries"]
    assert len(submits(sandbox)) == FAST["max_retries"] + 1 and not sandbox.tasks


def test_backoff_is_jittered_so_a_batch_does_not_retry_in_lockstep():
    budget = Backoff(attempts=None, base=5.0, cap=30.0)
    delays = {round(budget.delay(2, __import__("random").random), 6) for _ in range(20)}
    assert len(delays) > 10 and all(5.0 <= d <= 10.0 for d in delays)


def test_each_kind_of_failure_has_a_budget_of_its_own():
    slept = []
    policy = RetryPolicy(
        {
            RATE_LIMITED: Backoff(3, 0.01, 0.01),
            SERVER: Backoff(1, 0.01, 0.01),
            NETWORK: Backoff(1, 0.01, 0.01),
        }
    )
    r = Retrier(policy, Deadline(10), what="t", sleep=lambda d, *a: slept.append(d))
    assert r.retry(SERVER, "503") and not r.retry(SERVER, "503")
    assert r.retry(NETWORK, "reset") and not r.retry(NETWORK, "reset")
    assert all(r.retry(RATE_LIMITED, "429") for _ in range(3)) and not r.retry(RATE_LIMITED, "429")
    assert not r.retry(CORRUPT, "no budget for this kind")
    assert len(slept) == 5


# --------------------------------------------------------------------------- cancel


def test_cancel_ends_a_retry_wait_within_a_second(sandbox, api_key, isolated_env):
    sandbox.inject("submit", "status", count=1, status=429, retry_after=10)
    looks = []
    cancel_at = time.monotonic() + 0.3

    def should_cancel():
        looks.append(time.monotonic())
        return time.monotonic() >= cancel_at

    with make(sandbox, api_key) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.CancelledError):
            c.submit_img2img(small(), should_cancel=should_cancel)
        took = time.monotonic() - t0
    during = [t for t in looks if t0 + 0.05 < t < cancel_at]
    assert len(during) >= 3, "the wait must look at cancel in short slices, not sleep 10 s in one go"
    assert took < 1.3


def test_cancel_during_a_submit_upload_aborts_it(sandbox, api_key, isolated_env):
    import numpy as np

    from helpers import png_b64

    big = base_request(image_base64=png_b64(1400, 1400, seed=3))  # several MB of base64: many blocks
    reads = []

    def should_cancel():
        reads.append(threading.current_thread().name)
        # Cancel once the sending thread has started reading the body.
        return sum(1 for n in reads if n.startswith("ppinfra-http")) >= 3

    with make(sandbox, api_key) as c:
        with pytest.raises(errors.CancelledError):
            c.submit_img2img(big, should_cancel=should_cancel)
    time.sleep(0.3)
    assert not sandbox.tasks, "a cancelled upload must never reach the server whole"
    assert np is not None


# --------------------------------------------------------------------------- polls, TASK_FAILED, downloads


def test_ten_failed_polls_in_a_row_then_success(sandbox, api_key, isolated_env):
    sandbox.inject("poll", "status", count=4, status=503)
    sandbox.inject("poll", "drop", count=3)
    sandbox.inject("poll", "malformed", count=3)
    with make(sandbox, api_key) as c:  # max_retries=2: a fixed count would have given up
        result = c.img2img(small())
    assert len(result.images) == 1 and len(submits(sandbox)) == 1 and len(polls(sandbox)) >= 11


def test_task_failed_on_http_500_ends_the_wait_at_once(sandbox, api_key, isolated_env):
    sandbox.configure(task_seconds=5.0)
    sandbox.inject("poll", "task_failed", message="the model crashed on this input")
    with make(sandbox, api_key) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.TaskFailedError) as info:
            c.img2img(small())
    assert time.monotonic() - t0 < 3.0
    text = str(info.value)
    assert "the model crashed on this input" in text and info.value.task_id in text
    assert "try again in a minute" not in text
    assert len(polls(sandbox)) == 1, "TASK_FAILED is final: no further poll"


def test_corrupt_result_then_good_one(sandbox, api_key, isolated_env):
    sandbox.inject("image", "corrupt", count=1)
    with make(sandbox, api_key) as c:
        result = c.img2img(small())
    from ppinfra.client import undecodable

    assert undecodable(result.images[0]) is None and len(image_gets(sandbox)) == 2


def test_corrupt_every_time_names_task_and_image_after_fresh_urls(sandbox, api_key, isolated_env):
    sandbox.inject("image", "corrupt", count=50)
    with make(sandbox, api_key) as c:
        with pytest.raises(errors.DownloadError) as info:
            c.img2img(small())
    (task_id,) = sandbox.tasks
    assert task_id in str(info.value) and "Result image 1" in str(info.value)
    assert len(polls(sandbox)) >= 2 and len(image_gets(sandbox)) == 3, (
        "the last try uses a freshly signed URL"
    )


def test_cross_host_redirect_does_not_carry_the_key(sandbox, api_key, isolated_env):
    sandbox.inject("poll", "redirect", count=1)
    with make(sandbox, api_key) as c:
        with pytest.raises(errors.APIError) as info:
            c.img2img(small())
    assert "another host" in str(info.value)
    other = [r for r in sandbox.requests if r.server == "other"]
    assert all("Authorization" not in r.headers and api_key not in repr(r) for r in other)


def test_nan_and_inf_seeds_are_no_seed():
    for raw in ("nan", "inf", "-inf"):
        r = TaskResult.parse({"task": {"status": "TASK_STATUS_SUCCEED"}, "extra": {"seed": raw}}, "t")
        assert r.seed is None


def test_retry_wait_is_told_with_a_truthful_status_line(sandbox, api_key, isolated_env):
    waits = []
    sandbox.inject("poll", "status", count=1, status=503)
    sandbox.inject("submit", "status", count=1, status=429)
    with make(sandbox, api_key) as c:
        c.img2img(small(), on_wait=waits.append)
    texts = [w.describe() for w in waits]
    assert any(t.startswith("rate-limited (HTTP 429): retrying in") for t in texts)
    assert any(t.startswith("server busy (HTTP 503): retrying in") for t in texts)


def test_a_submit_that_never_reached_the_server_says_so_on_the_error(api_key, isolated_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with PPInfraClient(api_key=api_key, base_url=f"http://127.0.0.1:{port}", **FAST) as c:
        with pytest.raises(errors.NetworkError) as info:
            c.submit_img2img(small())
    assert info.value.sent is False  # pacing gives the images back: nothing was counted
