"""The sandbox serves txt2img, inpainting and upscale like img2img (SIBLINGS.md),
over real sockets with `requests`.

Each endpoint accepts a documented body and gives a checkable result (size,
masked-only change, a resize of the input); rate limits count per endpoint;
upscale is Novita's only. (What each endpoint refuses: test_sibling_refusals.py.)
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests
from PIL import Image

from helpers import SANDBOX_AUTH as AUTH, half_mask
from helpers import inpainting_body as inpainting, picture, run_to_success as run, submit_to as submit
from helpers import sibling_body as build, txt2img_body as txt2img, upscale_body as upscale
from ppinfra.endpoints import ENDPOINTS

RESULT, MODELS = "/v3/async/task-result", "/v3/model"
SD15, SDXL = "dreamshaper_8_93211.safetensors", "sd_xl_base_1.0.safetensors"


# ---------------------------------------------------------------- txt2img


def test_txt2img_result_has_the_requested_size_and_follows_the_seed(sandbox):
    data, images, _ = run(sandbox, "txt2img", txt2img(image_num=2))
    assert data["task"]["task_type"] == "TXT_TO_IMG" and data["extra"]["seed"] == "42"
    assert [im.size for im in images] == [(128, 160)] * 2
    first, second = (np.asarray(im) for im in images)
    assert not np.array_equal(first, second)  # image i uses seed + i
    _, again, _ = run(sandbox, "txt2img", txt2img(seed=43))
    assert np.array_equal(np.asarray(again[0]), second)  # deterministic: seed 43 is the batch's second image
    _, other, _ = run(sandbox, "txt2img", txt2img(seed=1000))
    assert not np.array_equal(np.asarray(other[0]), first)


def test_txt2img_hires_fix_gives_the_target_size(sandbox):
    body = txt2img(
        hires_fix={"target_width": 256, "target_height": 200, "strength": 0.5, "upscaler": "Latent"}
    )
    _, images, _ = run(sandbox, "txt2img", body)
    assert images[0].size == (256, 200)


def test_txt2img_transparent_background_on_sdxl_is_a_png_with_alpha(sandbox):
    _, images, _ = run(
        sandbox,
        "txt2img",
        txt2img(
            model_name=SDXL,
            enable_transparent_background=True,
            restore_faces=False,
            refiner={"switch_at": 0.8},
        ),
    )
    alpha = np.asarray(images[0])[..., 3]
    assert images[0].mode == "RGBA" and alpha.min() == 0 and alpha.max() == 255


def test_txt2img_and_img2img_report_progress_inpainting_and_upscale_do_not(make_sandbox):
    srv = make_sandbox(task_seconds=0.6)
    _, _, polls = run(srv, "txt2img", txt2img())
    assert any(0 < p["task"]["progress_percent"] < 100 for p in polls)
    for name, body in (("inpainting", inpainting(srv)), ("upscale", upscale())):
        _, _, polls = run(srv, name, body)
        assert len(polls) > 3
        assert all(p["task"]["progress_percent"] == 0 for p in polls[:-1]), name
        assert polls[-1]["task"]["progress_percent"] in (0, 100)


# ---------------------------------------------------------------- inpainting


def changed(result, source):
    return np.any(np.asarray(result.convert("RGB")).astype(int) != source.astype(int), axis=-1)


def test_inpainting_changes_only_the_masked_pixels(sandbox):
    source = picture()
    data, images, _ = run(sandbox, "inpainting", inpainting(sandbox, image=source, image_num=2))
    assert data["task"]["task_type"] == "INPAINTING"
    masked = half_mask() > 127
    for im in images:
        assert im.size == (80, 60)
        diff = changed(im, source)
        assert not diff[~masked].any()  # byte-identical outside the mask (PNG)
        assert diff[masked].mean() > 0.9  # and the masked area is repainted
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))


def test_inpainting_mask_invert_and_grey_values(sandbox):
    source = picture()
    mask = half_mask()
    mask[:, :10] = 127  # grey at or below 127: kept
    mask[:, -10:] = 128  # above 127: repainted
    _, images, _ = run(sandbox, "inpainting", inpainting(sandbox, image=source, mask=mask))
    diff = changed(images[0], source)
    assert not diff[:, :40].any() and diff[:, 40:].mean() > 0.9
    _, images, _ = run(
        sandbox, "inpainting", inpainting(sandbox, image=source, mask=mask, inpainting_mask_invert=1)
    )
    diff = changed(images[0], source)
    assert not diff[:, 40:].any() and diff[:, :40].mean() > 0.9


def test_inpainting_takes_every_documented_optional_field(sandbox):
    body = inpainting(
        sandbox,
        negative_prompt="blurry",
        sd_vae="vae-ft-mse-840000-ema-pruned.ckpt",
        clip_skip=2,
        loras=[{"model_name": "add_detail_44319", "strength": 0.5}],
        embeddings=[{"model_name": "EasyNegative"}],
        strength=1.0,
        mask_blur=4,
        inpainting_full_res=1,
        inpainting_full_res_padding=32,
        inpainting_mask_invert=0,
        initial_noise_multiplier=1.5,
    )
    _, images, _ = run(sandbox, "inpainting", body)
    assert images[0].size == (80, 60)


# ---------------------------------------------------------------- upscale


@pytest.mark.parametrize(
    "scale,size", [(2, (160, 120)), (2.5, (200, 150)), (4, (320, 240)), (1.01, (81, 61))]
)
def test_upscale_is_a_resize_of_the_input(sandbox, scale, size):
    source = picture()
    data, images, _ = run(sandbox, "upscale", upscale(image=source, scale_factor=scale))
    assert data["task"]["task_type"] == "UPSCALE" and len(images) == 1 and "seed" not in data["extra"]
    assert images[0].size == size
    expected = np.asarray(Image.fromarray(source).resize(size, Image.BICUBIC)).astype(int)
    assert np.abs(np.asarray(images[0].convert("RGB")).astype(int) - expected).mean() < 3


# ---------------------------------------------------------------- rate limits, billing, auth, faults, hosts


def test_rate_limit_counts_images_per_endpoint(make_sandbox):
    srv = make_sandbox(images_per_minute=3)
    assert submit(srv, "txt2img", txt2img(image_num=2)).status_code == 200
    r = submit(srv, "txt2img", txt2img(image_num=2))
    assert (
        r.status_code == 429
        and r.json()["reason"] == "RATE_LIMIT_EXCEEDED"
        and "txt2img" in r.json()["message"]
    )
    # Another endpoint has its own budget.
    for _ in range(3):
        assert submit(srv, "upscale", upscale()).status_code == 200
    assert submit(srv, "upscale", upscale()).status_code == 429
    assert submit(srv, "inpainting", inpainting(srv, image_num=3)).status_code == 200
    assert submit(srv, "txt2img", txt2img(image_num=1)).status_code == 200


def test_rate_limits_per_endpoint_from_a_mapping_or_the_providers_plan(make_sandbox):
    srv = make_sandbox(images_per_minute={"txt2img": 1})
    assert [submit(srv, "txt2img", txt2img()).status_code for _ in range(2)] == [200, 429]
    assert [submit(srv, "upscale", upscale()).status_code for _ in range(3)] == [
        200
    ] * 3  # not named: unlimited
    plan = make_sandbox(images_per_minute="plan")  # as Novita: txt2img 20, inpainting 10
    assert [submit(plan, "txt2img", txt2img(image_num=8)).status_code for _ in range(3)] == [200, 200, 429]
    assert [submit(plan, "inpainting", inpainting(plan, image_num=8)).status_code for _ in range(2)] == [
        200,
        429,
    ]
    ppinfra = make_sandbox(images_per_minute="plan", provider="ppinfra")  # txt2img 10 there
    assert [submit(ppinfra, "txt2img", txt2img(image_num=8)).status_code for _ in range(2)] == [200, 429]


def test_balance_is_charged_per_image_on_every_endpoint(make_sandbox):
    from ppinfra.sandbox.server import IMAGE_PRICE

    srv = make_sandbox(credit_balance=IMAGE_PRICE * 4)
    assert submit(srv, "txt2img", txt2img(image_num=2)).status_code == 200
    assert submit(srv, "upscale", upscale()).status_code == 200
    assert srv.balance == IMAGE_PRICE
    r = submit(srv, "inpainting", inpainting(srv, image_num=2))
    assert r.status_code == 400 and r.json()["reason"] == "BILLING_BALANCE_NOT_ENOUGH"
    assert submit(srv, "inpainting", inpainting(srv)).status_code == 200 and srv.balance == 0


@pytest.mark.parametrize("name", ["txt2img", "inpainting", "upscale"])
def test_auth_as_img2img(sandbox, name):
    body = build(sandbox, name, {})
    r = submit(sandbox, name, body, headers={})
    assert r.status_code == 400 and r.json()["reason"] == "MISSING_API_KEY"
    r = submit(sandbox, name, body, headers={"Authorization": "Bearer sk-wrong"})
    assert r.status_code == 403 and r.json() == {
        "code": 403,
        "reason": "INVALID_API_KEY",
        "message": "invalid api-key",
        "metadata": {},
    }
    assert requests.get(sandbox.base_url + ENDPOINTS[name].path, headers=AUTH, timeout=10).status_code == 405


def test_submit_faults_reach_every_endpoint_or_the_one_named(sandbox):
    sandbox.inject("submit", "status", status=503, api="txt2img")
    assert submit(sandbox, "upscale", upscale()).status_code == 200  # not for upscale
    assert submit(sandbox, "txt2img", txt2img()).status_code == 503
    sandbox.inject("submit", "status", status=500)
    r = submit(sandbox, "inpainting", inpainting(sandbox))
    assert r.status_code == 500 and r.json()["reason"] == "CREATE_TASK_FAILED"
    with pytest.raises(ValueError):
        sandbox.inject("submit", "status", status=503, api="outpainting")


def test_a_task_failed_fault_and_fail_reason_apply_to_siblings(sandbox):
    sandbox.configure(fail_reason="out of memory")
    task_id = submit(sandbox, "upscale", upscale()).json()["task_id"]
    time.sleep(0.5)
    data = requests.get(
        sandbox.base_url + RESULT, params={"task_id": task_id}, headers=AUTH, timeout=10
    ).json()
    assert data["task"]["status"] == "TASK_STATUS_FAILED" and data["task"]["reason"] == "out of memory"
    assert data["task"]["task_type"] == "UPSCALE" and data["images"] == []


@pytest.mark.parametrize("provider", ["ppinfra", "ppio"])
def test_upscale_is_not_found_as_ppinfra_or_ppio(make_sandbox, provider):
    srv = make_sandbox(provider=provider)
    r = submit(srv, "upscale", upscale())
    assert r.status_code == 404 and r.json()["reason"] == "API_NOT_FOUND" and r.json()["code"] == 404
    unknown = requests.post(srv.base_url + "/v3/async/no-such-thing", json={}, headers=AUTH, timeout=10)
    assert set(r.json()) == set(unknown.json()) and unknown.json()["reason"] == "API_NOT_FOUND"
    assert (
        submit(srv, "upscale", upscale(), headers={}).status_code == 404
    )  # before auth, like a missing path
    for name in ("txt2img", "inpainting"):
        assert submit(srv, name, build(srv, name, {})).status_code == 200
    assert sorted(task.endpoint for task in srv.tasks.values()) == ["inpainting", "txt2img"]
    assert submit(make_sandbox(provider="novita"), "upscale", upscale()).status_code == 200


def test_submitted_bodies_are_kept_per_endpoint(sandbox):
    submit(sandbox, "txt2img", txt2img(prompt="one"))
    submit(sandbox, "upscale", upscale(scale_factor=3))
    assert [b["request"]["prompt"] for b in sandbox.submitted("txt2img")] == ["one"]
    assert [b["request"]["scale_factor"] for b in sandbox.submitted("upscale")] == [3]
    assert sandbox.submits == []  # img2img's
