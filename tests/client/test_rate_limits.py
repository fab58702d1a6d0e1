"""HTTP 429 in the client: its own retry budget and backoff schedule, Retry-After, the deadline, and the
images-per-minute budget a 429 lowers. The 429 tests of the client, gathered from the retry engine, the
client, its HTTP edges and pacing (the sandbox's own 429s are tested in tests/sandbox/)."""

from __future__ import annotations

import time

import pytest

from helpers import FAST_RETRIES as FAST, base_request, fast_client as make, small_request as small
from ppinfra import errors
from ppinfra.client import PPInfraClient
from ppinfra.pacing import Pacer, budget_for_settings
from ppinfra.retry import RATE_LIMITED, Backoff, Retrier, RetryPolicy
from ppinfra.waiting import Deadline

pytestmark = pytest.mark.usefixtures("no_pacing_env")


# ---------------------------------------------- the retry engine: own budget, schedule, Retry-After, deadline


def test_429_uses_its_own_longer_budget(sandbox, api_key, isolated_env):
    waits = []
    sandbox.inject("submit", "status", count=FAST["max_retries"] + 2, status=429)
    with make(sandbox, api_key) as c:
        c.submit_img2img(small(), on_wait=waits.append)
    assert [w.kind for w in waits] == [RATE_LIMITED] * (FAST["max_retries"] + 2)
    assert {w.budget for w in waits} == {FAST["rate_limit_retries"]}


def test_429_waits_follow_the_jittered_backoff_schedule(sandbox, api_key, isolated_env):
    waits = []
    n = 4
    sandbox.inject("submit", "status", count=n, status=429)
    with make(sandbox, api_key, rate_limit_backoff=0.05, rate_limit_backoff_max=0.2) as c:
        t0 = time.monotonic()
        c.submit_img2img(small(), on_wait=waits.append)
        took = time.monotonic() - t0
    steps = [min(0.2, 0.05 * 2**k) for k in range(n)]
    assert [w.attempt for w in waits] == list(range(1, n + 1))
    for w, step in zip(waits, steps):
        assert step * 0.5 <= w.delay <= step, (w.delay, step)
    assert took >= sum(w.delay for w in waits), "the engine must actually wait what it announced"


def test_retry_after_on_an_api_call_is_honoured(sandbox, api_key, isolated_env):
    waits = []
    sandbox.inject("submit", "status", count=1, status=429, retry_after=1)
    with make(sandbox, api_key) as c:
        t0 = time.monotonic()
        c.submit_img2img(small(), on_wait=waits.append)
        took = time.monotonic() - t0
    assert [w.retry_after for w in waits] == [1.0] and waits[0].delay >= 1.0
    assert took >= 1.0


def test_429_that_cannot_end_before_the_deadline_raises_rate_limit_error(sandbox, api_key, isolated_env):
    sandbox.inject("submit", "status", count=1, status=429, retry_after=120)
    with make(sandbox, api_key) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.RateLimitError):
            c.img2img(small(), deadline=5.0)
    assert time.monotonic() - t0 < 4.0, "no point waiting for a window that outlasts the deadline"


def test_429_schedule_past_the_deadline_raises_rate_limit_error_not_timeout():
    retrier = Retrier(
        RetryPolicy({RATE_LIMITED: Backoff(None, 10.0, 30.0)}),
        Deadline(1.0),
        what="t",
        sleep=lambda *a: pytest.fail("must not sleep past the deadline"),
    )
    assert retrier.retry(RATE_LIMITED, "HTTP 429") is False


# ------------------------------------------------------------------ the client: one task, a window waited out


def test_submit_retried_on_429_and_503_only_one_task(client, sandbox):
    sandbox.inject("submit", "status", count=1, status=429, retry_after=0)
    sandbox.inject("submit", "status", count=1, status=503)
    result = client.img2img(base_request(width=128, height=128))
    assert len(sandbox.tasks) == 1 and result.task_id in sandbox.tasks


def test_rate_limit_waits_out_the_window_by_default(sandbox, api_key, isolated_env):
    from ppinfra.config import Settings

    s = Settings(api_key="x")
    delays = [min(s.rate_limit_backoff_max, s.rate_limit_backoff * 2**i) for i in range(s.rate_limit_retries)]
    assert sum(delays) * 0.75 > 60  # even with jitter, the retries outlast a per-minute window
    with PPInfraClient(
        api_key=api_key, base_url=sandbox.base_url, rate_limit_backoff=0.3, rate_limit_backoff_max=0.3
    ) as c:
        sandbox.inject("submit", "status", count=3, status=429)
        t0 = time.monotonic()
        c.img2img(base_request(width=128, height=128))
        assert time.monotonic() - t0 >= 0.9 * 0.75 and len(sandbox.tasks) == 1


# ---------------------------------------------------------- pacing: a 429 lowers the images-per-minute budget


def test_429_halves_the_budget_once_per_burst_then_it_grows_back():
    pacer = Pacer(10, window=0.3)
    assert pacer.on_rate_limited() == 5
    assert pacer.on_rate_limited() == 5  # the same burst (several workers): counted once
    time.sleep(0.3 / 12 + 0.01)
    assert pacer.on_rate_limited() == 2
    time.sleep(0.03)
    assert pacer.on_rate_limited() == 1
    time.sleep(0.03)
    assert pacer.on_rate_limited() == 1  # floor
    assert pacer.current_limit() == 1
    time.sleep(0.3 * 2 + 0.02)
    assert pacer.current_limit() == 3  # +1 (a tenth of 10) per quiet window
    pacer.configure(10, 0.3)
    assert pacer.current_limit() == 3  # same plan: the lowering stands
    pacer.configure(12, 0.3)
    assert pacer.current_limit() == 12  # a new plan starts over


@pytest.mark.sandbox(images_per_minute=1, rate_window=30.0, task_seconds=0.1)
def test_a_429_refund_leaves_the_budget_as_the_server_counts_it(sandbox, api_key, isolated_env):
    client = PPInfraClient(
        api_key=api_key,
        base_url=sandbox.base_url,
        deadline=20.0,
        rate_limit_retries=0,
        images_per_minute=5,
        rate_window=30.0,
    )
    try:
        client.img2img(base_request(width=128, height=128))
        with pytest.raises(errors.RateLimitError):
            client.img2img(base_request(width=128, height=128, seed=2))
    finally:
        client.close()
    pacer = budget_for_settings(client.settings, "img2img")
    assert pacer.used() == 1 and len(sandbox.tasks) == 1  # the refused image was given back
    assert [s["request"]["seed"] for s in sandbox.submits] == [-1, 2]
    assert pacer.current_limit() == 2  # and the 429 halved the budget (5 -> 2)


@pytest.mark.sandbox(images_per_minute=2, rate_window=1.0, task_seconds=0.05)
def test_a_429_the_budget_let_through_lowers_it_and_the_retry_still_lands_once(
    sandbox, api_key, isolated_env
):
    """The plan is smaller than the setting says: the 429 retry wait halves the budget; nothing is lost."""
    waits = []
    client = PPInfraClient(
        api_key=api_key,
        base_url=sandbox.base_url,
        deadline=20.0,
        rate_limit_retries=5,
        rate_limit_backoff=0.3,
        rate_limit_backoff_max=0.6,
        images_per_minute=6,
        rate_window=1.0,
    )
    try:
        for i in range(4):
            client.img2img(base_request(width=128, height=128, seed=10 + i), on_wait=waits.append)
    finally:
        client.close()
    assert any(getattr(w, "kind", "") == "rate_limited" for w in waits)
    assert budget_for_settings(client.settings, "img2img").current_limit() < 6
    assert sorted(t.body["request"]["seed"] for t in sandbox.tasks.values()) == [10, 11, 12, 13]
