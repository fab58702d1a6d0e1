"""The shared images-per-minute budget: the mechanism, then a batch against the sandbox's own limit."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import base_request
from ppinfra import errors
from ppinfra.client import PPInfraClient
from ppinfra.config import load_settings
from ppinfra.pacing import BudgetWait, Pacer, budget_for, budget_for_settings, minimum_seconds, plan_limit
from ppinfra.waiting import Call, Deadline


pytestmark = pytest.mark.usefixtures("no_pacing_env")


# --------------------------------------------------------------------------- the mechanism


def test_within_the_limit_no_wait_and_no_room_before_the_deadline_fails_at_once():
    pacer = Pacer(3, window=30)
    waits = []
    for _ in range(3):
        pacer.acquire(1, Call(Deadline(None), on_wait=waits.append)).settle()
    assert waits == [] and pacer.used() == 3
    t0 = time.monotonic()
    with pytest.raises(errors.RateLimitError) as info:
        pacer.acquire(1, Call(Deadline(0.5), on_wait=waits.append))
    assert time.monotonic() - t0 < 0.5  # known at once: nothing to wait for
    text = str(info.value)
    assert "3 per 30 s" in text and "Nothing was sent" in text and "PPINFRA_IMAGES_PER_MINUTE" in text
    assert pacer.used() == 3 and waits == []


def test_a_wait_is_reported_and_ends_when_the_window_frees_the_slot():
    pacer = Pacer(2, window=0.4)
    first = pacer.acquire(2)
    time.sleep(0.2)  # the submit's upload: the server counts it when it arrives, not when it left
    first.settle()
    settled_at = time.monotonic()
    waits = []
    pacer.acquire(1, Call(Deadline(None), on_wait=waits.append))
    granted_at = time.monotonic()
    assert granted_at - settled_at >= 0.4 - 0.01  # a slot frees a full window after its answer
    assert len(waits) >= 3 and all(isinstance(w, BudgetWait) for w in waits)
    assert all(0 < w.delay <= 0.4 for w in waits[:-1]) and waits[-1].delay == 0  # the end is told too
    assert waits[0].delay >= waits[-2].delay  # counts down
    assert "images-per-minute budget (2 per 0.4 s)" in waits[0].describe()


def test_cancel_during_the_wait_is_seen_within_a_slice():
    pacer = Pacer(1, window=30)
    pacer.acquire(1).settle()
    checks = []
    cancelled_at = []

    def should_cancel():
        checks.append(time.monotonic())
        return bool(cancelled_at)

    threading.Timer(0.3, lambda: cancelled_at.append(time.monotonic())).start()
    with pytest.raises(errors.CancelledError):
        pacer.acquire(1, Call(Deadline(60), should_cancel))
    # The mechanism: the cancel check runs every <= 50 ms slice while waiting, not once per wait,
    # and the check that saw the flag was the first one after it was set.
    gaps = [b - a for a, b in zip(checks, checks[1:])]
    assert len(checks) >= 5 and max(gaps) < 0.05 + 0.03
    assert checks[-2] < cancelled_at[0] <= checks[-1]
    # The cancelled waiter left the queue: the next one is not behind a ghost.
    assert pacer.projected_wait(1) <= 30


def test_waiters_are_served_first_come_first_served():
    pacer = Pacer(1, window=0.25)
    pacer.acquire(1).settle()
    order = []

    def take(name):
        pacer.acquire(1).settle()
        order.append(name)

    a = threading.Thread(target=take, args=("a",))
    a.start()
    time.sleep(0.05)
    b = threading.Thread(target=take, args=("b",))
    b.start()
    a.join(5)
    b.join(5)
    assert order == ["a", "b"]


def test_a_refused_submit_gives_its_slot_back_an_uncertain_one_keeps_it():
    pacer = Pacer(10, window=30)
    with pytest.raises(errors.RateLimitError):
        with pacer.acquire(2):
            raise errors.RateLimitError("429", status_code=429)
    assert pacer.used() == 0 and pacer.current_limit() == 5  # given back, and the budget halved
    with pytest.raises(errors.NetworkError):
        with pacer.acquire(2):
            raise errors.NetworkError("read timed out after sending")  # may have created a task
    assert pacer.used() == 2
    unsent = errors.NetworkError("connection refused")
    unsent.sent = False
    with pytest.raises(errors.NetworkError):
        with pacer.acquire(1):
            raise unsent
    assert pacer.used() == 2


def test_plan_defaults_settings_and_the_shared_registry(monkeypatch, isolated_env):
    assert plan_limit(None, "https://api.ppinfra.com", "img2img") == 10  # the base plan
    assert plan_limit(None, "http://127.0.0.1:8930", "img2img") == 0  # the sandbox has no plan
    assert plan_limit(0, "https://api.ppinfra.com", "img2img") == 0
    assert minimum_seconds(40, 10, 60) == 180 and minimum_seconds(10, 10, 60) == 0
    monkeypatch.setenv("PPINFRA_IMAGES_PER_MINUTE", "7")
    monkeypatch.setenv("PPINFRA_RATE_WINDOW", "6")
    st = load_settings("sk-test-0123456789", "https://api.ppio.com")
    assert (st.images_per_minute, st.rate_window) == (7, 6.0)
    pacer = budget_for_settings(st, "img2img")
    assert (pacer.limit, pacer.window) == (7, 6.0)
    seen = set()
    with ThreadPoolExecutor(8) as pool:
        for p in pool.map(
            lambda _: budget_for("https://api.ppio.com/", "img2img", images_per_minute=7, window=6.0),
            range(32),
        ):
            seen.add(id(p))
    assert seen == {id(pacer)}  # one budget per host and endpoint in the process
    assert budget_for("https://api.ppio.com", "txt2img") is not pacer
    monkeypatch.setenv("PPINFRA_IMAGES_PER_MINUTE", "ten")
    with pytest.raises(errors.ConfigError) as info:
        load_settings("sk-test-0123456789", "https://api.ppio.com")
    assert "PPINFRA_IMAGES_PER_MINUTE" in str(info.value) and "'ten'" in str(info.value)


# --------------------------------------------------------------------------- against the sandbox's limit


def _batch(sandbox, api_key, n, **client_kw):
    """``n`` one-image jobs from 4 threads through one client; returns (results or errors, budget waits)."""
    waits = []
    client = PPInfraClient(
        api_key=api_key,
        base_url=sandbox.base_url,
        deadline=30.0,
        rate_limit_retries=0,
        backoff_base=0.01,
        backoff_max=0.05,
        **client_kw,
    )

    def job(i):
        try:
            return client.img2img(base_request(width=128, height=128, seed=1000 + i), on_wait=waits.append)
        except errors.RateLimitError as exc:
            return exc

    try:
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(job, range(n))), waits
    finally:
        client.close()


@pytest.mark.sandbox(images_per_minute=3, rate_window=1.0, task_seconds=0.1)
def test_a_batch_of_three_times_the_limit_gets_no_429_and_exactly_one_task_each(
    sandbox, api_key, isolated_env
):
    results, waits = _batch(sandbox, api_key, 9, images_per_minute=3, rate_window=1.0)
    assert all(not isinstance(r, Exception) for r in results), results
    # Every submit the sandbox saw was accepted (a 429 is a submit without a task), once per item.
    assert len(sandbox.submits) == 9 and len(sandbox.tasks) == 9
    seeds = sorted(t.body["request"]["seed"] for t in sandbox.tasks.values())
    assert seeds == list(range(1000, 1009))
    assert any(w.delay > 0 for w in waits)  # it waited for the budget, not for luck


@pytest.mark.sandbox(images_per_minute=3, rate_window=5.0, task_seconds=0.1)
def test_the_same_batch_without_pacing_does_hit_the_limit(sandbox, api_key, isolated_env):
    """The test above can fail: unpaced, the sandbox refuses the batch's tail with 429."""
    results, waits = _batch(sandbox, api_key, 6, images_per_minute=0, rate_window=5.0)
    refused = [r for r in results if isinstance(r, errors.RateLimitError)]
    assert refused and len(sandbox.tasks) == 3 and waits == []


# --------------------------------------------------------------------------- the node's status line


def test_the_status_line_says_what_an_item_waits_for():
    from tools.node_driver import pack_module

    runner = pack_module("nodes.runner")
    tracker = runner._Tracker(3)
    for i in range(3):
        tracker.set(i, "submitting")
    tracker.on_wait(1)(BudgetWait("img2img", 1, 10, 60.0, 12.0))
    text = tracker.status(3.0)
    assert (
        "1 waiting for the images-per-minute budget (10 per minute): 12 s" in text and "2 submitting" in text
    )
    tracker.on_wait(1)(BudgetWait("img2img", 1, 10, 60.0, 0.0))  # the wait is over
    assert "budget" not in tracker.status(3.0) and "3 submitting" in tracker.status(3.0)


@pytest.mark.sandbox(images_per_minute=2, rate_window=1.0, task_seconds=0.1)
def test_a_node_batch_over_the_limit_waits_in_turn_and_says_so(sandbox, api_key, isolated_env, monkeypatch):
    from tools.node_driver import img2img, pack_module, photo, write_fresh_model_cache

    monkeypatch.setenv("PPINFRA_API_KEY", api_key)
    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("PPINFRA_IMAGES_PER_MINUTE", "2")
    monkeypatch.setenv("PPINFRA_RATE_WINDOW", "1.0")
    write_fresh_model_cache(str(isolated_env / "cache"), sandbox.base_url)
    bridge = pack_module("nodes.comfy_bridge")
    runner = pack_module("nodes.runner")
    shown = []
    monkeypatch.setattr(bridge, "send_status", lambda text, node_id: shown.append(text))
    monkeypatch.setattr(runner, "STATUS_EVERY", 0.0)  # every change of the line, not one per half second
    images = img2img(photo(batch=6))[0]
    assert tuple(images.shape) == (6, 128, 128, 3)
    assert len(sandbox.submits) == 6 and len(sandbox.tasks) == 6  # no 429, no item sent twice
    assert any("waiting for the images-per-minute budget (2 per 1 s)" in t for t in shown), shown
