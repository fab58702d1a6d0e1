"""Hostile responses through the Img2Img node (issue 5).

tests/client/test_client.py covers the client level (scheme refused, oversize
refused, persisting wrong shape). Here the node must turn each of these into
the pack's error with a clear message, never a blank or short result:
non-http(s) result URLs, a download over the cap (the node's real default),
an image that decodes to more pixels than 2048x2048, a body that is not an
image, and non-JSON or wrong-shaped JSON from each endpoint.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tools.node_driver import img2img, pack_module, photo


def image_requests(sandbox):
    return [r for r in sandbox.requests if r.server == "images"]


def png_bytes(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- result URLs


@pytest.mark.parametrize("scheme", ["file", "ftp", "gopher", "javascript"])
def test_non_http_result_urls_are_refused_without_fetching(node_client, env, errors, scheme):
    env.inject("poll", "scheme", count=1, scheme=scheme)
    with pytest.raises(errors.DownloadError) as info:
        img2img(photo())
    (task_id,) = env.tasks
    assert f"{scheme}://" in str(info.value) and "only http and https" in str(info.value)
    assert task_id in str(info.value)
    assert image_requests(env) == []


def test_download_over_the_default_cap_stops(env, errors):
    # The node's own client and its default cap (64 MiB): the image host announces one byte more.
    cap = pack_module("ppinfra.config").Settings(api_key="x").max_download_bytes
    env.inject("image", "oversize", count=1, size=cap + 1)
    with pytest.raises(errors.DownloadError) as info:
        img2img(photo())
    (task_id,) = env.tasks
    assert "cap" in str(info.value) and str(cap) in str(info.value) and task_id in str(info.value)


def test_download_growing_past_a_small_cap_stops(node_client, env, errors):
    node_client(max_download_bytes=300_000)
    env.inject("image", "oversize", count=1, size=5_000_000)
    with pytest.raises(errors.DownloadError) as info:
        img2img(photo())
    assert "300000" in str(info.value)


# --------------------------------------------------------------------------- result bodies


def test_image_with_more_pixels_than_documented_is_refused(node_client, env, errors):
    # A few kilobytes of PNG that would decode to 4096x4096 (64 MiB of pixels, 192 MiB as float).
    env.inject("image", "malformed", count=1, body=png_bytes(4096, 4096))
    with pytest.raises(errors.DownloadError) as info:
        img2img(photo())
    assert "4096x4096" in str(info.value) and "2048x2048" in str(info.value)


def test_image_one_pixel_over_the_limit_is_refused(node_client, env, errors):
    env.inject("image", "malformed", count=1, body=png_bytes(2049, 2048))
    with pytest.raises(errors.DownloadError) as info:
        img2img(photo())
    assert "2049x2048" in str(info.value)


def test_body_that_is_not_an_image_names_the_task(node_client, env, errors):
    env.inject("image", "malformed", count=50, body="<Error><Code>Oops</Code></Error>")
    with pytest.raises(errors.DownloadError) as info:
        img2img(photo())
    (task_id,) = env.tasks
    assert "corrupt after 3 downloads" in str(info.value) and "not a readable image" in str(info.value)
    assert task_id in str(info.value), "with a batch, the user must learn which task sent the bad file"


def test_oversized_result_in_a_batch_names_the_task(node_client, env, errors):
    env.inject("image", "malformed", count=1, body=png_bytes(4096, 4096))
    with pytest.raises(errors.DownloadError) as info:
        img2img(photo(batch=2))
    assert any(t in str(info.value) for t in env.tasks), "the message must name the task"


# --------------------------------------------------------------------------- JSON from the API

SUBMIT_BODIES = ["<html>502 Bad Gateway</html>", "[]", '{"task_id": 123}', '{"data": {"id": "x"}}', "null"]


@pytest.mark.parametrize("body", SUBMIT_BODIES)
def test_submit_answers_that_are_not_the_documented_json(node_client, env, errors, body):
    env.inject("submit", "malformed", count=1, body=body)
    with pytest.raises(errors.ResponseFormatError) as info:
        img2img(photo())
    assert "img2img submit" in str(info.value)
    # The task may exist: never submitted again, and the user is told to check.
    assert len([r for r in env.requests if r.method == "POST"]) == 1
    assert "task" in str(info.value).lower()


POLL_BODIES = ["<html>oops</html>", "[]", '{"task": null}', '{"task": "SUCCEED"}', "42"]


@pytest.mark.parametrize("body", POLL_BODIES)
def test_poll_answers_that_are_not_the_documented_json(node_client, env, errors, body):
    # Polls are safe to repeat and the task is paid for: a bad answer is polled again until the deadline.
    node_client(deadline=1.5)
    env.inject("poll", "malformed", count=500, body=body)
    with pytest.raises(errors.TaskTimeoutError) as info:
        img2img(photo())
    (task_id,) = env.tasks
    assert "task-result" in str(info.value) and task_id in str(info.value)


@pytest.mark.parametrize("body", POLL_BODIES)
def test_a_few_bad_poll_answers_then_success(node_client, env, body):
    env.inject("poll", "malformed", count=5, body=body)
    assert img2img(photo()) is not None


@pytest.mark.parametrize("images", ['"nope"', "[]", '[{"image_url": ""}]', '[{"url": "http://x/y.png"}]'])
def test_succeed_without_usable_images_is_an_error_not_a_short_result(node_client, env, errors, images):
    body = '{"task": {"task_id": "t", "status": "TASK_STATUS_SUCCEED"}, "images": %s}' % images
    env.inject("poll", "malformed", count=50, body=body)
    out = None
    with pytest.raises((errors.TaskFailedError, errors.ResponseFormatError)) as info:
        out = img2img(photo())
    assert out is None and "0 of 1" in str(info.value)


def test_image_url_of_the_wrong_type_is_refused(node_client, env, errors):
    body = json.dumps({"task": {"status": "TASK_STATUS_SUCCEED"}, "images": [{"image_url": {"href": "x"}}]})
    env.inject("poll", "malformed", count=50, body=body)
    with pytest.raises(errors.DownloadError):
        img2img(photo())
    assert image_requests(env) == []


def test_numbers_as_strings_and_odd_nsfw_fields_still_work(node_client, env):
    # docs/api.md, "Poll": seed and ttl arrive as strings,
    # nsfw_detection_result may be {} or null. The sandbox
    # sends strings already; the node must return the seed as an INT.
    images, seed, info = img2img(photo(), seed=77)
    assert seed == 77 and isinstance(seed, int) and np.isfinite(images.numpy()).all()


# ------------------------------------------------------------------ README promise: a redirect names the host


def test_a_redirect_to_another_host_stops_the_node_naming_that_host(node_client, env, errors):
    """docs/settings.md, "Which host": "if it ever answers with a redirect to another host, the pack stops
    with an error naming the new host instead of sending the key there".

    tests/client/test_retry_engine.py checks the key stays home; this checks the user is told where
    the service pointed (so they can set it themselves) and that nothing went there at all.
    Break: the error says "another host" without naming it.
    """
    from urllib.parse import urlsplit

    env.inject("poll", "redirect", count=1)
    with pytest.raises(errors.APIError) as info:
        img2img(photo())
    assert urlsplit(env.other_base_url).netloc in str(info.value)
    assert "base URL" in str(info.value)
    assert [r for r in env.requests if r.server == "other"] == []
