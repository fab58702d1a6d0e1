"""The client against the sandbox over real sockets: the wire, errors, faults, paging, cache, the key."""

from __future__ import annotations

import io
import json
import logging
import threading
import time

import pytest
from PIL import Image

from helpers import base_request, png_b64
from ppinfra import errors
from ppinfra.client import PPInfraClient
from ppinfra.models import ModelCatalog
from ppinfra.request import Embedding, Lora
from ppinfra.img2img_request import ControlNetUnit, IPAdapter


def _full_request():
    return base_request(
        prompt="a red fox, 水彩",
        negative_prompt="blurry",
        width=256,
        height=192,
        image_num=2,
        steps=30,
        guidance_scale=6.5,
        sampler_name="DPM++ 2M Karras",
        sd_vae="vae-ft-mse-840000-ema-pruned.ckpt",
        controlnet_units=(
            ControlNetUnit("control_v11p_sd15_canny", png_b64(seed=3), 0.7, "canny", 0.1, 0.9),
            ControlNetUnit("control_v11f1p_sd15_depth", png_b64(seed=4), 1.0, None, 0.0, 1.0),
        ),
        seed=12345,
        loras=(Lora("add_detail_44319", 0.6), Lora("more_details_59655", 0.0)),
        embeddings=(Embedding("EasyNegative"),),
        clip_skip=2,
        strength=0.55,
        ip_adapters=(IPAdapter("ip-adapter_sd15.bin", png_b64(seed=5), 0.4),),
        response_image_type="webp",
    )


def test_every_field_reaches_the_wire_exactly(client, sandbox):
    req = _full_request()
    result = client.img2img(req)
    assert sandbox.submits[-1] == req.to_body()
    assert len(result.images) == 2 and result.seed == 12345
    for blob in result.images:
        im = Image.open(io.BytesIO(blob))
        assert im.format == "WEBP" and im.size == (256, 192)


def test_progress_reported_and_seed_parsed(client, sandbox):
    seen = []
    result = client.img2img(base_request(width=128, height=128), on_progress=seen.append)
    assert seen[-1].status == "TASK_STATUS_SUCCEED" and seen[-1].percent == 100
    assert all(p.task_id == result.task_id for p in seen)
    assert isinstance(result.seed, int) and result.seed >= 0  # server picked one for seed -1


def test_key_only_ever_reaches_the_api_host(client, sandbox, api_key):
    client.img2img(base_request(width=128, height=128, image_num=2))
    api = [r for r in sandbox.requests if r.server == "api"]
    images = [r for r in sandbox.requests if r.server == "images"]
    assert api and len(images) == 2
    assert all(r.headers.get("Authorization") == f"Bearer {api_key}" for r in api)
    for r in images:
        assert "Authorization" not in r.headers
        assert api_key not in json.dumps(r.headers) + r.path + json.dumps(r.query)
    assert api_key not in repr(client) and api_key not in repr(client.settings)


@pytest.mark.parametrize("key,cls", [("sk-wrong-key-000000", errors.AuthenticationError)])
def test_bad_key(sandbox, isolated_env, key, cls):
    with PPInfraClient(api_key=key, base_url=sandbox.base_url) as c:
        with pytest.raises(cls) as info:
            c.img2img(base_request())
    assert "INVALID_API_KEY" in str(info.value) and key not in str(info.value)
    assert not sandbox.tasks


def test_server_rejection_keeps_reason(client, sandbox):
    with pytest.raises(errors.BadRequestError) as info:
        client.img2img(base_request(model_name="no_such_model.safetensors"))
    assert info.value.reason == "INVALID_REQUEST_BODY" and "model_name" in str(info.value)


def test_invalid_request_sends_nothing(client, sandbox):
    with pytest.raises(errors.ValidationError):
        client.img2img(base_request(steps=0))
    assert sandbox.requests == []


# ---------------------------------------------------------------- faults


def test_submit_not_retried_on_500(client, sandbox):
    sandbox.inject("submit", "status", count=1, status=500)
    with pytest.raises(errors.ServerError):
        client.img2img(base_request())
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 1


def test_submit_not_retried_when_dropped_after_create(client, sandbox):
    sandbox.inject("submit", "drop", count=1, after_create=True)
    with pytest.raises(errors.NetworkError) as info:
        client.img2img(base_request())
    assert "may have started" in str(info.value)
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 1 and len(sandbox.tasks) == 1


def test_submit_retried_when_connection_refused(sandbox, api_key, isolated_env):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with PPInfraClient(
        api_key=api_key, base_url=f"http://127.0.0.1:{port}", max_retries=2, backoff_base=0.01
    ) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.NetworkError) as info:
            c.img2img(base_request())
        assert "3 attempts" in str(info.value) and time.monotonic() - t0 < 5


def test_submit_malformed_answer(client, sandbox):
    sandbox.inject("submit", "malformed", count=1)
    with pytest.raises(errors.ResponseFormatError) as info:
        client.img2img(base_request())
    assert "img2img submit" in str(info.value)
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 1


@pytest.mark.parametrize(
    "kind,params",
    [
        ("status", {"status": 500}),
        ("status", {"status": 503}),
        ("status", {"status": 429}),
        ("drop", {}),
        ("malformed", {}),
        ("malformed", {"wrong_shape": True}),
    ],
)
def test_poll_faults_recover(client, sandbox, kind, params):
    sandbox.inject("poll", kind, count=2, **params)
    result = client.img2img(base_request(width=128, height=128))
    assert len(result.images) == 1 and len(sandbox.tasks) == 1


def test_poll_wrong_shape_persisting_names_endpoint(client, sandbox):
    sandbox.inject("poll", "malformed", count=500, wrong_shape=True)
    with pytest.raises(errors.TaskTimeoutError) as info:
        client.img2img(base_request(width=128, height=128), deadline=1.5)
    assert "task-result" in str(info.value) and info.value.task_id
    assert "task object" in str(info.value), "the timeout names the last problem"


def test_slow_poll_past_read_timeout_recovers(sandbox, api_key, isolated_env):
    with PPInfraClient(
        api_key=api_key, base_url=sandbox.base_url, poll_read_timeout=0.5, backoff_base=0.05, deadline=20
    ) as c:
        sandbox.inject("poll", "slow", count=1, delay=1.5)
        result = c.img2img(base_request(width=128, height=128))
    assert len(result.images) == 1


def test_task_failed_names_task_and_reason(client, sandbox):
    sandbox.configure(fail_reason="NSFW content detected in the result")
    with pytest.raises(errors.TaskFailedError) as info:
        client.img2img(base_request())
    assert "NSFW content detected" in str(info.value) and info.value.task_id in str(info.value)


def test_stuck_task_times_out_at_deadline(client, sandbox):
    sandbox.configure(stuck=True)
    t0 = time.monotonic()
    with pytest.raises(errors.TaskTimeoutError) as info:
        client.img2img(base_request(), deadline=1.5)
    took = time.monotonic() - t0
    assert 1.4 < took < 3.0 and info.value.task_id


def test_cancel_ends_wait_within_a_second(client, sandbox):
    sandbox.configure(stuck=True)
    flag = threading.Event()
    threading.Timer(0.5, flag.set).start()
    t0 = time.monotonic()
    with pytest.raises(errors.CancelledError) as info:
        client.img2img(base_request(), should_cancel=flag.is_set)
    assert time.monotonic() - t0 - 0.5 < 1.0 and "billed" in str(info.value)


def test_expired_urls_are_refreshed(client, sandbox):
    sandbox.configure(url_ttl=0)
    with pytest.raises(errors.DownloadError) as info:
        client.img2img(base_request(width=128, height=128))
    assert "expiring" in str(info.value)
    sandbox.configure(url_ttl=3600)
    task_id = client.submit_img2img(base_request(width=128, height=128))
    done = client.wait_for_task(task_id)
    sandbox.expire_urls()
    blobs = client.download_images(done, expected=1)
    assert len(blobs) == 1 and Image.open(io.BytesIO(blobs[0])).size == (128, 128)
    polls = [
        r for r in sandbox.requests if r.path.endswith("task-result") and r.query.get("task_id") == task_id
    ]
    assert len(polls) >= 2  # one more poll fetched fresh URLs


def test_truncated_image_retried(client, sandbox):
    sandbox.inject("image", "truncate", count=1)
    result = client.img2img(base_request(width=128, height=128))
    Image.open(io.BytesIO(result.images[0])).load()


def test_oversize_download_refused(sandbox, api_key, isolated_env):
    with PPInfraClient(api_key=api_key, base_url=sandbox.base_url, max_download_bytes=200_000) as c:
        sandbox.inject("image", "oversize", count=1, size=1_000_000)
        with pytest.raises(errors.DownloadError) as info:
            c.img2img(base_request(width=128, height=128))
    assert "cap" in str(info.value)


def test_non_http_scheme_refused(client, sandbox):
    sandbox.inject("poll", "scheme", count=1)
    with pytest.raises(errors.DownloadError) as info:
        client.img2img(base_request(width=128, height=128))
    assert "Refused" in str(info.value)
    assert not [r for r in sandbox.requests if r.server == "images"]


def test_fewer_images_than_asked_is_an_error(client, sandbox):
    task_id = client.submit_img2img(base_request(width=128, height=128, image_num=2))
    done = client.wait_for_task(task_id)
    short = done.__class__(**{**done.__dict__, "images": done.images[:1]})
    with pytest.raises(errors.TaskFailedError) as info:
        client.download_images(short, expected=2)
    assert "1 of 2" in str(info.value)


def test_images_per_minute_limit(client, sandbox):
    sandbox.configure(images_per_minute=3)
    client.img2img(base_request(width=128, height=128, image_num=3))
    with pytest.raises(errors.RateLimitError) as info:
        client.img2img(base_request(width=128, height=128, image_num=1))
    assert "RATE_LIMIT_EXCEEDED" in str(info.value) and "wait" in str(info.value)
    assert len(sandbox.tasks) == 1


# ---------------------------------------------------------------- model list and cache


def test_model_list_pages_to_the_end_and_caches(client, sandbox, tmp_path):
    raw = client.list_models_raw("checkpoint")
    pages = [r for r in sandbox.requests if r.path == "/v3/model"]
    assert len(pages) >= 3 and len(raw) == len({m["id"] for m in raw})
    sandbox.clear_requests()
    catalog = ModelCatalog(
        lambda: PPInfraClient(api_key=client.settings.api_key, base_url=sandbox.base_url),
        cache_dir=str(tmp_path / "c"),
        base_url=sandbox.base_url,
    )
    all_ckpt = catalog.list("checkpoint")
    # Entries a node cannot send (status 0, .zip archives) are dropped; every other one is kept.
    usable = [
        r
        for r in raw
        if r.get("status") == 1
        and not str(r.get("sd_name") or r.get("model_name") or "").lower().endswith(".zip")
    ]
    assert len(usable) < len(raw) and len(all_ckpt) == len(usable)
    assert "sd_xl_base_1.0.safetensors" in [m.name for m in catalog.list("checkpoint", is_sdxl=True)]
    n = len(sandbox.requests)
    again = ModelCatalog(None, cache_dir=str(tmp_path / "c"), base_url=sandbox.base_url)
    assert [m.name for m in again.list("checkpoint")] == [m.name for m in all_ckpt]
    assert len(sandbox.requests) == n  # served from disk
    assert "add_detail_44319" in [m.name for m in catalog.list("lora")]
    assert again.family("lora", "add_detail_44319") == "sd15"
    sdxl = {m.name: m.is_sdxl for m in catalog.list("controlnet")}
    assert sdxl["diffusers_xl_canny_full"] is True and sdxl["control_v11p_sd15_canny"] is False


def test_stale_cache_is_refetched(client, sandbox, tmp_path):
    catalog = ModelCatalog(
        lambda: PPInfraClient(api_key=client.settings.api_key, base_url=sandbox.base_url),
        cache_dir=str(tmp_path),
        ttl=0.0,
        base_url=sandbox.base_url,
    )
    catalog.list("vae")
    n = len(sandbox.requests)
    catalog.list("vae")
    assert len(sandbox.requests) > n


def test_cached_names_without_cache_or_key(tmp_path):
    catalog = ModelCatalog(None, cache_dir=str(tmp_path))
    assert "dreamshaper_8_93211.safetensors" in catalog.cached_names("checkpoint")


# ---------------------------------------------------------------- configuration


def test_config_precedence(isolated_env, monkeypatch):
    from ppinfra.config import load_settings

    cfg = isolated_env / "config.json"
    cfg.write_text(json.dumps({"api_key": "sk-from-file-123", "base_url": "https://api.novita.ai"}))
    s = load_settings()
    assert s.api_key == "sk-from-file-123" and s.base_url == "https://api.novita.ai"
    monkeypatch.setenv("PPINFRA_API_KEY", "sk-from-env-456")
    assert load_settings().api_key == "sk-from-env-456"
    assert load_settings(api_key="sk-explicit-789").api_key == "sk-explicit-789"
    assert "sk-" not in repr(load_settings())


def test_missing_key_says_where_to_put_one(isolated_env):
    from ppinfra.config import load_settings

    with pytest.raises(errors.ConfigError) as info:
        load_settings()
    assert "PPINFRA_API_KEY" in str(info.value) and str(isolated_env / "config.json") in str(info.value)


def test_key_never_logged(sandbox, api_key, isolated_env, caplog):
    caplog.set_level(logging.DEBUG)
    with PPInfraClient(api_key=api_key, base_url=sandbox.base_url) as c:
        c.img2img(base_request(width=128, height=128))
        logging.getLogger("ppinfra").warning("oops the key is %s", api_key)
    assert api_key not in caplog.text


@pytest.mark.parametrize(
    "status,reason,cls,advice",
    [
        (400, "BILLING_BALANCE_NOT_ENOUGH", errors.InsufficientBalanceError, "Top up"),
        (403, "NEED_REAL_NAME_VERIFY", errors.PermissionDeniedError, "identity verification"),
        (403, "FEATURE_NOT_ALLOWED", errors.PermissionDeniedError, "may not use"),
        (401, "INVALID_API_KEY", errors.AuthenticationError, "PPINFRA_API_KEY"),
        (400, "ILLEGAL_PROMPT", errors.BadRequestError, "fix the field"),
        (400, "IMAGE_EXCEEDS_MAX_RESOLUTION", errors.BadRequestError, "fix the field"),
    ],
)
def test_every_error_reason_maps_to_its_class(client, sandbox, status, reason, cls, advice):
    sandbox.inject("submit", "status", count=1, status=status, reason=reason, message="provider says no")
    with pytest.raises(cls) as info:
        client.img2img(base_request())
    err = info.value
    assert err.reason == reason and err.status_code == status and err.provider_message == "provider says no"
    assert reason in str(err) and advice in str(err)
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 1  # never retried


def test_unknown_task_is_not_found(client, sandbox):
    with pytest.raises(errors.NotFoundError) as info:
        client.get_task_result("no-such-task")
    assert info.value.reason == "TASK_NOT_FOUND" and "no-such-task" in str(info.value)


def test_server_errors_on_polls_outlasting_the_deadline(client, sandbox):
    sandbox.inject("poll", "status", count=500, status=503)
    with pytest.raises(errors.TaskTimeoutError) as info:
        client.img2img(base_request(width=128, height=128), deadline=1.5)
    assert info.value.task_id and "HTTP 503" in str(info.value)


def test_deadline_from_the_environment(isolated_env, monkeypatch):
    from ppinfra.config import load_settings

    monkeypatch.setenv("PPINFRA_DEADLINE", "42.5")
    assert load_settings(api_key="sk-test-123456").deadline == 42.5
    monkeypatch.setenv("PPINFRA_DEADLINE", "soon")
    with pytest.raises(errors.ConfigError) as info:
        load_settings(api_key="sk-test-123456")
    assert "PPINFRA_DEADLINE" in str(info.value) and "'soon'" in str(info.value)
