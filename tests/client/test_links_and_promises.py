"""Bad links, bad text, error names, and the promises an independent run broke without the suite noticing.

Each test names what it guards ("Break: ..."): making that change turns it red.
"""

from __future__ import annotations

import inspect
import time

import pytest
import requests

from helpers import RedirectLoop as _Loop, base_request
from ppinfra import errors
from ppinfra.client import PPInfraClient
from ppinfra.config import load_settings
from ppinfra.result_cache import cache_key, lookup_for
from ppinfra.transport import Transport, internal_address
from ppinfra.waiting import Call, Deadline


def test_a_download_redirect_loop_fails_at_once_naming_the_loop(looping_host, isolated_env):
    """Break: follow redirects with requests' own loop (retried until the deadline: 372 tries in 45 s)."""
    settings = load_settings(api_key="sk-test-key-0123456789", base_url="http://127.0.0.1:9")
    transport = Transport(settings)
    try:
        t0 = time.monotonic()
        with pytest.raises(errors.DownloadError, match="redirects in a loop"):
            transport.download(looping_host + "/a", Call(Deadline(30)))
        assert time.monotonic() - t0 < 2 and _Loop.hits <= 3
    finally:
        transport.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8188/view?filename=x.png",
        "http://localhost/view",
        "http://10.1.2.3/a.png",
        "http://192.168.0.4/a.png",
        "http://169.254.169.254/x",
        "http://[::1]:8188/view",
    ],
)
def test_a_result_url_on_this_machine_or_a_private_network_is_refused(url, isolated_env):
    """Break: drop the address check in Transport._check_result_url."""
    settings = load_settings(api_key="sk-test-key-0123456789", base_url="https://api.ppinfra.com")
    transport = Transport(settings)
    try:
        with pytest.raises(errors.DownloadError, match="private network"):
            transport.download(url, Call(Deadline(5)))
    finally:
        transport.close()


def test_a_loopback_api_base_may_serve_loopback_results(client, sandbox):
    """The sandbox: API and image host are both on this machine, so its results download."""
    assert internal_address("127.0.0.1") and not internal_address("8.8.8.8")
    result = client.img2img(base_request(width=128, height=128))
    assert len(result.images) == 1


def test_a_redirect_from_https_to_http_on_the_same_host_is_not_followed(isolated_env):
    """The key rides in a header: https -> http would send it in clear text.
    Break: compare only host and port in Transport._redirect_target."""
    settings = load_settings(api_key="sk-test-key-0123456789", base_url="https://api.ppinfra.com")
    transport = Transport(settings)
    resp = requests.Response()
    resp.status_code = 301
    resp.headers["Location"] = "http://api.ppinfra.com/v3/user"
    with pytest.raises(errors.APIError, match="another host"):
        transport._redirect_target(resp, "https://api.ppinfra.com/v3/user", "user", True, 0, None)
    resp.headers["Location"] = "https://api.ppinfra.com/v3/user2"
    assert transport._redirect_target(
        resp, "https://api.ppinfra.com/v3/user", "user", True, 0, None
    ).endswith("user2")
    transport.close()


def test_a_lone_surrogate_in_the_prompt_is_a_validation_error_naming_field_and_position():
    req = base_request(prompt="a\ud800b")
    with pytest.raises(errors.ValidationError) as info:
        req.validate()
    assert (
        info.value.field == "request.prompt"
        and "position 1" in str(info.value)
        and "U+D800" in str(info.value)
    )


def test_every_error_reads_as_ppinfra_dot_name():
    """ComfyUI shows type(exc).__module__ + "." + name; a pack's module is its folder path.
    Break: remove the __module__ loop at the end of ppinfra/errors.py."""
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.PPInfraError)
    ]
    assert len(classes) > 10
    for cls in classes:
        assert f"{cls.__module__}.{cls.__name__}" == f"ppinfra.{cls.__name__}"


def test_the_result_cache_key_depends_on_the_endpoint():
    """Break: leave the endpoint out of cache_key (or pass a fixed one in lookup_for)."""
    body = b'{"extra":{},"request":{"model_name":"m","prompt":"p"}}'
    keys = {
        cache_key(body, "https://api.novita.ai", e) for e in ("img2img", "txt2img", "inpainting", "upscale")
    }
    assert len(keys) == 4


def test_the_result_cache_key_never_holds_the_api_key(isolated_env):
    """Two keys on one host share results (same body, same host); the key is no part of the slot.
    Break: hash settings.api_key into the cache key."""
    req = base_request(seed=5, width=128, height=128)
    a = lookup_for(load_settings(api_key="sk-first-key-0123456789", base_url="https://api.novita.ai"), req)
    b = lookup_for(load_settings(api_key="sk-other-key-9876543210", base_url="https://API.novita.ai/"), req)
    assert a is not None and a.key == b.key
    assert a.key == cache_key(req.to_json_bytes(), "https://api.novita.ai", "img2img")


@pytest.mark.sandbox(images_per_minute=0)
def test_a_submit_refused_with_503_gives_its_pacing_slot_back(sandbox, api_key, isolated_env):
    """503 proves no task was created: its images leave the budget.
    Break: drop 503 from pacing.certainly_unsent."""
    from ppinfra.pacing import budget_for

    sandbox.inject("submit", "status", count=10, status=503)
    with PPInfraClient(
        api_key=api_key,
        base_url=sandbox.base_url,
        images_per_minute=5,
        max_retries=1,
        backoff_base=0.01,
        backoff_max=0.02,
        deadline=10,
    ) as c:
        pacer = budget_for(sandbox.base_url, "img2img", images_per_minute=5)
        with pytest.raises(errors.ServerError):
            c.img2img(base_request(width=128, height=128, image_num=3))
        assert pacer.used() == 0


def test_a_submit_that_created_a_task_keeps_its_slot(sandbox, api_key, isolated_env):
    """The other side: a 500 after the task may exist keeps the images counted."""
    from ppinfra.pacing import budget_for

    sandbox.inject("submit", "status", count=10, status=500)
    with PPInfraClient(
        api_key=api_key, base_url=sandbox.base_url, images_per_minute=5, max_retries=0, deadline=10
    ) as c:
        pacer = budget_for(sandbox.base_url, "img2img", images_per_minute=5)
        with pytest.raises(errors.ServerError):
            c.img2img(base_request(width=128, height=128, image_num=2))
        assert pacer.used() == 2


def test_a_network_error_says_whether_it_was_sent(isolated_env):
    """``sent`` is a declared field: False when the connection never opened (pacing refunds on it)."""
    assert "sent" in inspect.signature(errors.NetworkError.__init__).parameters
    with PPInfraClient(
        api_key="sk-test-key-0123456789", base_url="http://127.0.0.1:9", max_retries=0, deadline=5
    ) as c:
        with pytest.raises(errors.NetworkError) as info:
            c.img2img(base_request(width=128, height=128))
    assert info.value.sent is False
