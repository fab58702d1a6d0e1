"""Fault suite through the Img2Img node (issue 5), against the sandbox's fault injection.

tests/client/test_client.py covers each fault at the client level. Here every fault
goes through the node the way ComfyUI runs it (inputs from INPUT_TYPES, the
FUNCTION awaited) and must end with the right images or the right error class
with a message naming the task, inside the deadline, never with a short
result, and never with a second submit of a task that may have started.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import NODE_DEADLINE as DEADLINE
from tools.node_driver import img2img, pack_module, photo


# --------------------------------------------------------------------------- helpers


def submits(sandbox):
    return [r for r in sandbox.requests if r.method == "POST" and r.path == "/v3/async/img2img"]


def polls(sandbox, task_id=None):
    return [
        r
        for r in sandbox.requests
        if r.path == "/v3/async/task-result" and (task_id is None or r.query.get("task_id") == task_id)
    ]


def assert_images_are_the_servers(out, sandbox, image_num: int = 1, size: int = 128):
    """The node returned exactly the sandbox's result files, decoded, nothing short or blank."""
    images, seed, info = out
    tasks = list(sandbox.tasks.values())
    assert len(tasks) == 1, f"expected one task, the sandbox has {len(tasks)}"
    task = tasks[0]
    assert tuple(images.shape) == (image_num, size, size, 3) and images.dtype == torch.float32
    for i, blob in enumerate(task.images):
        want = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"), dtype=np.float32) / 255.0
        np.testing.assert_allclose(images[i].numpy(), want, atol=1e-6)
    assert float(images.std()) > 0.01  # not blank
    assert task.task_id in info and seed == task.seed


def timed(fn, *args, **kwargs):
    t0 = time.monotonic()
    try:
        return fn(*args, **kwargs), time.monotonic() - t0
    except BaseException as exc:
        exc.elapsed = time.monotonic() - t0
        raise


# --------------------------------------------------------------------------- submit faults


def test_429_burst_on_submit_retried_into_one_task(node_client, env):
    env.inject("submit", "status", count=2, status=429, retry_after=0)
    out = img2img(photo(), image_num=2)
    assert len(submits(env)) == 3
    assert_images_are_the_servers(out, env, image_num=2)


def test_503_on_submit_retried_500_not(node_client, env, errors):
    env.inject("submit", "status", count=1, status=503)
    assert_images_are_the_servers(img2img(photo()), env)
    env.inject("submit", "status", count=1, status=500)
    n = len(submits(env))
    with pytest.raises(errors.ServerError) as info:
        img2img(photo())
    # A 500 on submit may come after the task was created: it is never sent again.
    assert len(submits(env)) == n + 1 and "HTTP 500" in str(info.value)


def test_submit_dropped_after_create_is_not_resubmitted(node_client, env, errors):
    env.inject("submit", "drop", count=1, after_create=True)
    with pytest.raises(errors.NetworkError) as info:
        img2img(photo())
    assert len(submits(env)) == 1 and len(env.tasks) == 1
    assert "may have started" in str(info.value) and "not resubmitted" in str(info.value)


def test_batch_with_a_dropped_submit_submits_each_item_once(node_client, env, errors):
    env.inject("submit", "drop", count=1, after_create=True)
    with pytest.raises(errors.NetworkError):
        img2img(photo(batch=3))
    bodies = [r.body for r in submits(env)]
    assert len(bodies) == len(set(bodies)), "an item was submitted twice"
    assert len(bodies) <= 3


# --------------------------------------------------------------------------- poll faults


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_burst_on_polls_recovers(node_client, env, status):
    env.inject("poll", "status", count=3, status=status)
    assert_images_are_the_servers(img2img(photo()), env)
    assert len(submits(env)) == 1 and not env.faults.pending()


def test_dropped_poll_connections_recover(node_client, env):
    env.inject("poll", "drop", count=2)
    assert_images_are_the_servers(img2img(photo()), env)
    assert not env.faults.pending()


def poll_requests(env):
    return [r for r in env.requests if r.server == "api" and r.path == "/v3/async/task-result"]


def test_5xx_on_polls_are_retried_until_the_deadline_naming_the_task(node_client, env, errors):
    # The task was accepted and is billed: polls are not given up after max_retries (3 here).
    node_client(deadline=2.0)
    env.inject("poll", "status", count=500, status=503)
    with pytest.raises(errors.TaskTimeoutError) as info:
        img2img(photo())
    (task_id,) = env.tasks
    assert task_id in str(info.value) and "task-result" in str(info.value) and "HTTP 503" in str(info.value)
    assert len(submits(env)) == 1
    assert len(poll_requests(env)) > 3 + 1


def test_ten_failed_polls_in_a_row_then_success(node_client, env):
    env.inject("poll", "status", count=4, status=500)
    env.inject("poll", "drop", count=3)
    env.inject("poll", "malformed", count=3)
    out = img2img(photo())
    assert_images_are_the_servers(out, env)
    assert len(submits(env)) == 1 and len(poll_requests(env)) >= 11


def test_slow_poll_past_read_timeout_recovers(node_client, env):
    node_client(poll_read_timeout=0.5)
    env.inject("poll", "slow", count=1, delay=1.2)
    out, took = timed(img2img, photo())
    assert_images_are_the_servers(out, env)
    assert took < DEADLINE


def test_slow_polls_forever_end_at_the_deadline_naming_the_task(node_client, env, errors):
    node_client(poll_read_timeout=0.5, deadline=2.5, max_retries=10)
    env.inject("poll", "slow", count=100, delay=1.0)
    with pytest.raises((errors.TaskTimeoutError, errors.NetworkError)) as info:
        timed(img2img, photo())
    (task_id,) = env.tasks
    assert task_id in str(info.value)
    assert info.value.elapsed < 2.5 + 1.5  # the deadline, plus one read timeout at most


@pytest.mark.parametrize("params", [{}, {"wrong_shape": True}])
def test_malformed_poll_answers_recover(node_client, env, params):
    env.inject("poll", "malformed", count=2, **params)
    assert_images_are_the_servers(img2img(photo()), env)


def test_malformed_poll_answers_persisting_name_endpoint_and_task(node_client, env, errors):
    node_client(deadline=2.0)
    env.inject("poll", "malformed", count=500)
    with pytest.raises(errors.TaskTimeoutError) as info:
        img2img(photo())
    (task_id,) = env.tasks
    assert "task-result" in str(info.value) and task_id in str(info.value) and "not JSON" in str(info.value)


def test_malformed_submit_answer_is_not_resubmitted(node_client, env, errors):
    env.inject("submit", "malformed", count=1)
    with pytest.raises(errors.ResponseFormatError) as info:
        img2img(photo())
    assert len(submits(env)) == 1 and "img2img submit" in str(info.value)


# --------------------------------------------------------------------------- task outcomes


def test_failed_task_names_task_and_reason(node_client, env, errors):
    env.configure(fail_reason="ILLEGAL_IMAGE_CONTENT: the input image was refused")
    with pytest.raises(errors.TaskFailedError) as info:
        img2img(photo())
    (task_id,) = env.tasks
    assert task_id in str(info.value) and "ILLEGAL_IMAGE_CONTENT" in str(info.value)
    assert info.value.task_id == task_id and len(submits(env)) == 1


def test_one_failed_item_of_a_batch_fails_the_node_without_a_short_result(node_client, env, errors):
    env.inject("poll", "status", count=100, status=404, reason="TASK_NOT_FOUND", message="no such task")
    with pytest.raises(errors.NotFoundError) as info:
        img2img(photo(batch=2))
    assert any(t in str(info.value) for t in env.tasks), "the message must name the task"
    assert len(submits(env)) == 2


def test_stuck_task_times_out_at_the_deadline_naming_the_task(node_client, env, errors):
    node_client(deadline=1.5)
    env.configure(stuck=True)
    with pytest.raises(errors.TaskTimeoutError) as info:
        timed(img2img, photo())
    (task_id,) = env.tasks
    assert task_id in str(info.value) and "deadline" in str(info.value)
    assert 1.4 < info.value.elapsed < 3.0
    assert len(submits(env)) == 1


# --------------------------------------------------------------------------- downloads


def test_expired_urls_are_refreshed_by_a_new_poll(node_client, env):
    # The object store refuses both links as expired once; the node polls again for fresh ones.
    env.inject("image", "status", count=2, status=403, message="Request has expired")
    out = img2img(photo(), image_num=2)
    assert_images_are_the_servers(out, env, image_num=2)
    (task_id,) = env.tasks
    task = env.tasks[task_id]
    after_done = [r for r in polls(env, task_id) if r.time >= task.done_at]
    fetched = [r for r in env.requests if r.server == "images"]
    assert len(after_done) == 2, "one poll saw SUCCEED, one more fetched fresh links"
    assert len(fetched) == 4  # two refused as expired, two fetched again
    assert len(submits(env)) == 1


def test_urls_that_keep_expiring_fail_naming_the_task(node_client, env, errors):
    env.configure(url_ttl=0)
    with pytest.raises(errors.DownloadError) as info:
        img2img(photo())
    (task_id,) = env.tasks
    assert task_id in str(info.value) and "expir" in str(info.value)
    assert len(submits(env)) == 1


def test_truncated_image_bytes_are_fetched_again(node_client, env):
    env.inject("image", "truncate", count=2)
    assert_images_are_the_servers(img2img(photo(), image_num=2), env, image_num=2)
    assert not env.faults.pending()


def test_truncated_every_time_fails_naming_the_task(node_client, env, errors):
    node_client(deadline=2.0)
    env.inject("image", "truncate", count=500)
    with pytest.raises(errors.PPInfraError) as info:
        img2img(photo())
    (task_id,) = env.tasks
    assert task_id in str(info.value) and "truncated" in str(info.value)


def test_image_host_dropping_connections_recovers(node_client, env):
    env.inject("image", "drop", count=2)
    assert_images_are_the_servers(img2img(photo(), image_num=2), env, image_num=2)


# --------------------------------------------------------------------------- rate limit


def test_batch_over_the_images_per_minute_limit(node_client, env, errors):
    """A batch of 4 against 3 images/minute: the fourth submit is refused with 429.

    Either outcome is right: all 4 images in input order (the node waited for
    the window), or RateLimitError with a message that says what to do. Wrong:
    returning the three images it got as if the batch had succeeded, or
    submitting an accepted item twice (only a 429'd submit may be sent again).
    """
    import json

    env.configure(images_per_minute=3)
    try:
        images, _, _ = img2img(photo(batch=4))
    except errors.RateLimitError as exc:
        assert "RATE_LIMIT_EXCEEDED" in str(exc) and "minute" in str(exc)
        assert len(env.tasks) == 3
    else:
        assert tuple(images.shape) == (4, 128, 128, 3) and len(env.tasks) == 4
    accepted = [json.dumps(t.body, sort_keys=True) for t in env.tasks.values()]
    assert len(set(accepted)) == len(accepted), "an item was accepted (and billed) twice"
    bodies = [r.body for r in submits(env)]
    assert len(set(bodies)) == 4, "every item was tried"


def test_batch_within_the_limit_returns_every_image_in_input_order(node_client, env):
    env.configure(images_per_minute=4)
    batch = photo(batch=4, seed=10)
    images, _, info = img2img(batch)
    assert tuple(images.shape) == (4, 128, 128, 3)
    # Results derive from their input: each output is closest to its own input.
    for i in range(4):
        dists = [float((images[i] - batch[j]).abs().mean()) for j in range(4)]
        assert int(np.argmin(dists)) == i


# --------------------------------------------------------------------------- README promises: errors


def test_an_unexpected_failure_inside_a_run_still_reaches_comfyui_as_a_ppinfra_error(
    node_client, env, errors, monkeypatch
):
    """docs/troubleshooting.md: "Every error the pack raises is a subclass of `PPInfraError`".

    tests/nodes/test_nodes.py proves it for a failed task (already a PPInfraError); here the
    client fails with something no code path expects (a bug), which must still arrive as a
    PPInfraError saying what it was, with the original as its cause.
    Break: runner.as_ppinfra_error passes every exception through unwrapped.
    """
    generation_mod = pack_module("nodes.generation")
    make_client = generation_mod.make_client  # the fixture's: short backoffs, short deadline

    def client_with_a_bug():
        client = make_client()

        def run(*args, **kwargs):
            raise KeyError("images")

        client.run = run
        return client

    monkeypatch.setattr(generation_mod, "make_client", client_with_a_bug)
    with pytest.raises(errors.PPInfraError) as info:
        img2img(photo())
    assert "KeyError" in str(info.value) and "report" in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)
    assert env.submits == []


def test_a_corrupt_result_file_is_fetched_again_the_last_time_from_a_freshly_signed_url(node_client, env):
    """docs/troubleshooting.md, errors table: "DownloadError: ... the file kept arriving short or corrupt
    (it is downloaded up to three times, the last time from a freshly signed URL)".

    Two corrupt answers, then a good one: the node returns the image, and between the second
    and the third download it polled the task again for its links (tests/client/test_retry_engine.py
    counts the downloads; a count cannot tell where the third URL came from).
    Break: ppinfra/client.py never raises ExpiredURL after the second corrupt file.
    """
    env.inject("image", "corrupt", count=2)
    images, _, info = img2img(photo())
    assert images.shape[0] == 1
    (task_id,) = json.loads(info)["task_ids"]
    trail = sorted(
        (
            r
            for r in env.requests
            if r.server == "images"
            or (r.path == "/v3/async/task-result" and r.query.get("task_id") == task_id)
        ),
        key=lambda r: r.time,
    )
    kinds = ["get" if r.server == "images" else "poll" for r in trail]
    gets = [i for i, k in enumerate(kinds) if k == "get"]
    assert len(gets) == 3, kinds
    assert "poll" in kinds[gets[1] : gets[2]], (
        f"no fresh link was asked for before the last download: {kinds}"
    )
