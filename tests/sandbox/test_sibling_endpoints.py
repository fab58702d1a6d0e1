"""The sandbox serves txt2img, inpainting and upscale like img2img (SIBLINGS.md), over real sockets with `requests`.

Each endpoint accepts a documented body and gives a checkable result (size,
masked-only change, a resize of the input); strict refusals name the field;
lenient mode reads bodies like the real backend and still refuses what the
page forbids; rate limits count per endpoint; upscale is Novita's only.
"""
from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
import requests
from PIL import Image

from helpers import SANDBOX_KEY
from ppinfra.endpoints import ENDPOINTS

AUTH = {"Authorization": f"Bearer {SANDBOX_KEY}"}
RESULT, MODELS = "/v3/async/task-result", "/v3/model"
SD15, SDXL = "dreamshaper_8_93211.safetensors", "sd_xl_base_1.0.safetensors"


def encode(arr, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return base64.b64encode(buf.getvalue()).decode()


def picture(width=80, height=60):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x * 7 + y * 3) % 256], -1).astype(np.uint8)


def half_mask(width=80, height=60, fill=255):
    mask = np.zeros((height, width), np.uint8)
    mask[:, width // 2:] = fill  # the right half is white: repaint it
    return mask


def inpainting_checkpoint(srv):
    """An available inpainting checkpoint, found the way a client finds one."""
    r = requests.get(srv.base_url + MODELS, headers=AUTH, timeout=10, params={
        "filter.types": "checkpoint", "filter.is_inpainting": "true", "pagination.limit": 100})
    return next(m.get("sd_name") or m["model_name"] for m in r.json()["models"] if m["status"] == 1)


def txt2img(**req):
    fields = dict(model_name=SD15, prompt="a lighthouse", width=128, height=160, image_num=1, steps=20,
                  guidance_scale=7.5, sampler_name="Euler a", seed=42)
    fields.update(req)
    return {"extra": {"response_image_type": "png"}, "request": fields}


def inpainting(srv, image=None, mask=None, **req):
    fields = dict(model_name=inpainting_checkpoint(srv), image_base64=encode(picture() if image is None else image),
                  mask_image_base64=encode(half_mask() if mask is None else mask), prompt="a red door",
                  image_num=1, steps=20, guidance_scale=7.5, sampler_name="Euler a", seed=7)
    fields.update(req)
    return {"extra": {"response_image_type": "png"}, "request": fields}


def upscale(image=None, **req):
    fields = dict(model_name="RealESRGAN_x4plus_anime_6B", image_base64=encode(picture() if image is None else image),
                  scale_factor=2)
    fields.update(req)
    return {"extra": {"response_image_type": "png"}, "request": fields}


def submit(srv, name, body, headers=AUTH):
    return requests.post(srv.base_url + ENDPOINTS[name].path, json=body, headers=headers, timeout=10)


def run(srv, name, body, timeout=15.0):
    """Submit, poll to SUCCEED (every poll kept), download the images with no auth header."""
    r = submit(srv, name, body)
    assert r.status_code == 200, r.text
    task_id, polls = r.json()["task_id"], []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        data = requests.get(srv.base_url + RESULT, params={"task_id": task_id}, headers=AUTH, timeout=10).json()
        polls.append(data)
        if data["task"]["status"] == "TASK_STATUS_SUCCEED":
            images = [Image.open(io.BytesIO(requests.get(i["image_url"], timeout=10).content))
                      for i in data["images"]]
            return data, images, polls
        assert data["task"]["status"] != "TASK_STATUS_FAILED", data
        time.sleep(0.03)
    raise AssertionError(f"task {task_id} did not finish")


def refusal(r):
    assert r.status_code == 400, r.text
    data = r.json()
    assert data["code"] == 400 and data["metadata"] == {}
    return data["reason"], data["message"]


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
    body = txt2img(hires_fix={"target_width": 256, "target_height": 200, "strength": 0.5, "upscaler": "Latent"})
    _, images, _ = run(sandbox, "txt2img", body)
    assert images[0].size == (256, 200)


def test_txt2img_transparent_background_on_sdxl_is_a_png_with_alpha(sandbox):
    _, images, _ = run(sandbox, "txt2img", txt2img(model_name=SDXL, enable_transparent_background=True,
                                                   restore_faces=False, refiner={"switch_at": 0.8}))
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
    _, images, _ = run(sandbox, "inpainting", inpainting(sandbox, image=source, mask=mask, inpainting_mask_invert=1))
    diff = changed(images[0], source)
    assert not diff[:, 40:].any() and diff[:, :40].mean() > 0.9


def test_inpainting_takes_every_documented_optional_field(sandbox):
    body = inpainting(sandbox, negative_prompt="blurry", sd_vae="vae-ft-mse-840000-ema-pruned.ckpt", clip_skip=2,
                      loras=[{"model_name": "add_detail_44319", "strength": 0.5}],
                      embeddings=[{"model_name": "EasyNegative"}], strength=1.0, mask_blur=4,
                      inpainting_full_res=1, inpainting_full_res_padding=32, inpainting_mask_invert=0,
                      initial_noise_multiplier=1.5)
    _, images, _ = run(sandbox, "inpainting", body)
    assert images[0].size == (80, 60)


# ---------------------------------------------------------------- upscale

@pytest.mark.parametrize("scale,size", [(2, (160, 120)), (2.5, (200, 150)), (4, (320, 240)), (1.01, (81, 61))])
def test_upscale_is_a_resize_of_the_input(sandbox, scale, size):
    source = picture()
    data, images, _ = run(sandbox, "upscale", upscale(image=source, scale_factor=scale))
    assert data["task"]["task_type"] == "UPSCALE" and len(images) == 1 and "seed" not in data["extra"]
    assert images[0].size == size
    expected = np.asarray(Image.fromarray(source).resize(size, Image.BICUBIC)).astype(int)
    assert np.abs(np.asarray(images[0].convert("RGB")).astype(int) - expected).mean() < 3


# ---------------------------------------------------------------- strict refusals name the field

STRICT_REFUSALS = [
    ("txt2img", dict(controlnet={"units": []}), "request.controlnet is not accepted by txt2img"),
    ("txt2img", dict(ip_adapters=[]), "request.ip_adapters is not accepted by txt2img"),
    ("txt2img", dict(image_base64="x"), "request.image_base64 is not accepted by txt2img"),
    ("txt2img", dict(width=2049), "request.width must be in [128, 2048]"),
    ("txt2img", dict(height=None), "request.height must not be null"),
    ("txt2img", dict(negative_prompt="x" * 1025), "request.negative_prompt must have length [0, 1024]"),
    ("txt2img", dict(sampler_name="Euler b"), "request.sampler_name must be one of"),
    ("txt2img", dict(image_num=9), "request.image_num must be in [1, 8]"),
    ("txt2img", dict(loras=[{"model_name": "add_detail_44319", "strength": 0.5}] * 6),
     "request.loras must have at most 5 entries"),
    ("txt2img", dict(restore_faces=1), "request.restore_faces must be a JSON boolean"),
    ("txt2img", dict(enable_transparent_background="true", model_name=SDXL),
     "request.enable_transparent_background must be a JSON boolean"),
    ("txt2img", dict(enable_transparent_background=True), "needs an SDXL checkpoint"),
    ("txt2img", dict(refiner={"switch_at": 0.8}), "request.refiner needs an SDXL checkpoint"),
    ("txt2img", dict(refiner={"switch_at": 1.5}, model_name=SDXL), "request.refiner.switch_at must be in [0, 1]"),
    ("txt2img", dict(hires_fix={"target_width": 100, "target_height": 160}), "request.hires_fix.target_width"),
    ("txt2img", dict(hires_fix={"target_width": 256, "target_height": 150}),
     "request.hires_fix.target_height must be >= request.height (160)"),
    ("txt2img", dict(hires_fix={"target_width": 4097, "target_height": 200}),
     "request.hires_fix.target_width must be in [128, 4096]"),
    ("txt2img", dict(hires_fix={"target_width": 256}), "request.hires_fix.target_height is required"),
    ("txt2img", dict(hires_fix={"target_width": 256, "target_height": 200, "upscaler": "ESRGAN"}),
     "request.hires_fix.upscaler must be one of"),
    ("txt2img", dict(hires_fix={"target_width": 256, "target_height": 200, "hr_scale": 2}),
     "request.hires_fix.hr_scale is not a documented field"),
    ("inpainting", dict(hires_fix={"target_width": 256, "target_height": 256}),
     "request.hires_fix is not accepted by inpainting"),
    ("inpainting", dict(refiner={"switch_at": 0.5}), "request.refiner is not accepted by inpainting"),
    ("inpainting", dict(controlnet={"units": []}), "request.controlnet is not accepted by inpainting"),
    ("inpainting", dict(ip_adapters=[]), "request.ip_adapters is not accepted by inpainting"),
    ("inpainting", dict(width=512), "request.width is not accepted by inpainting"),
    ("inpainting", dict(negative_prompt=""), "request.negative_prompt must have length [1, 1024]"),
    ("inpainting", dict(inpainting_full_res=True), "request.inpainting_full_res must be an integer in [0, 1]"),
    ("inpainting", dict(inpainting_mask_invert=2), "request.inpainting_mask_invert must be in [0, 1]"),
    ("inpainting", dict(inpainting_mask_invert=1.0), "request.inpainting_mask_invert must be an integer"),
    ("inpainting", dict(mask_blur=65), "request.mask_blur must be in [0, 64]"),
    ("inpainting", dict(inpainting_full_res_padding=257), "request.inpainting_full_res_padding must be in [0, 256]"),
    ("inpainting", dict(initial_noise_multiplier=1.6), "request.initial_noise_multiplier must be in [0, 1.5]"),
    ("inpainting", dict(model_name=SD15), "request.model_name must name an inpainting checkpoint"),
    ("inpainting", dict(mask_image_base64=None), "request.mask_image_base64 must be raw base64"),
    ("inpainting", dict(mask_image_base64="not base64!"), "request.mask_image_base64 must be valid base64"),
    ("inpainting", dict(mask_image_base64=encode(half_mask(40, 30))),
     "request.mask_image_base64 must have the resolution of request.image_base64 (80x60), got 40x30"),
    ("upscale", dict(model_name="4x-Sharper"), "request.model_name must be one of"),
    ("upscale", dict(scale_factor=1), "request.scale_factor must be in (1, 4]"),
    ("upscale", dict(scale_factor=4.01), "request.scale_factor must be in (1, 4]"),
    ("upscale", dict(scale_factor="2"), "request.scale_factor must be a number"),
    ("upscale", dict(prompt="sharper"), "request.prompt is not accepted by upscale"),
    ("upscale", dict(seed=1), "request.seed is not accepted by upscale"),
    ("upscale", dict(image_base64=encode(picture(2049, 16))),
     "request.image_base64 must have each side <= 2048 px, got 2049x16"),
    ("upscale", dict(scale_factor=None), "request.scale_factor must not be null"),
]


def build(srv, name, change):
    body = {"txt2img": lambda: txt2img(), "inpainting": lambda: inpainting(srv), "upscale": lambda: upscale()}[name]()
    body["request"].update(change)
    return body


@pytest.mark.parametrize("name,change,text", STRICT_REFUSALS,
                         ids=[f"{n}-{'-'.join(c)}-{i}" for i, (n, c, _) in enumerate(STRICT_REFUSALS)])
def test_strict_refusals_name_the_field(sandbox, name, change, text):
    reason, message = refusal(submit(sandbox, name, build(sandbox, name, change)))
    assert text in message, message
    assert not sandbox.tasks


def test_refusals_for_missing_fields_and_wrong_image_type(sandbox):
    for name, field in (("txt2img", "prompt"), ("inpainting", "mask_image_base64"), ("upscale", "scale_factor")):
        body = build(sandbox, name, {})
        del body["request"][field]
        assert refusal(submit(sandbox, name, body))[1] == f"request.{field} is required"
        body = build(sandbox, name, {})
        body["extra"]["response_image_type"] = "gif"
        assert "extra.response_image_type must be one of" in refusal(submit(sandbox, name, body))[1]


def test_inpainting_image_over_16_megapixels_is_refused_below_it_is_not(sandbox):
    big = np.zeros((4097, 4096, 3), np.uint8)  # one row over 16 MP; each side past img2img's 2048
    wide_mask = np.zeros((4097, 4096), np.uint8)
    reason, message = refusal(submit(sandbox, "inpainting", inpainting(sandbox, image=big, mask=wide_mask)))
    assert reason == "IMAGE_EXCEEDS_MAX_RESOLUTION"
    assert "request.image_base64 must have at most 16777216 pixels" in message
    wide = np.zeros((500, 3000, 3), np.uint8)  # wider than 2048 but 1.5 MP: inpainting bounds the area only
    r = submit(sandbox, "inpainting", inpainting(sandbox, image=wide, mask=np.zeros((500, 3000), np.uint8)))
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- lenient reads like the real backend

LENIENT_ONLY = [
    ("txt2img", dict(controlnet={"units": [{"model_name": "control_v11p_sd15_canny"}]}, ip_adapters=None)),
    ("txt2img", dict(steps="20", seed="42", guidance_scale="7.5", negative_prompt=None, sd_vae=None, extra={})),
    ("inpainting", dict(inpainting_full_res=False, inpainting_mask_invert=False, mask_blur="4")),  # the SDK's booleans
    ("inpainting", dict(model_name=SD15)),  # a standard checkpoint: inferred to work on the real service
    ("inpainting", dict(hires_fix={"target_width": 1}, loras=None, strength=None)),
    ("upscale", dict(scale_factor="2", prompt="ignored", seed=None)),
]


@pytest.mark.parametrize("name,change", LENIENT_ONLY, ids=[f"{n}-{i}" for i, (n, _) in enumerate(LENIENT_ONLY)])
def test_lenient_accepts_what_strict_refuses(make_sandbox, name, change):
    lenient, strict = make_sandbox(strict=False), make_sandbox()
    r = submit(lenient, name, build(lenient, name, change))
    assert r.status_code == 200, r.text
    assert refusal(submit(strict, name, build(strict, name, change)))[0] == "INVALID_REQUEST_BODY"


@pytest.mark.sandbox(strict=False)
@pytest.mark.parametrize("name,change,text", [
    ("txt2img", dict(hires_fix={"target_width": 64, "target_height": 96}), "request.hires_fix.target_width"),
    ("txt2img", dict(restore_faces="true"), "request.restore_faces must be a JSON boolean"),
    ("txt2img", dict(enable_transparent_background=True, model_name=SDXL, steps="30"),
     None),  # accepted: the png extra is there
    ("inpainting", dict(inpainting_mask_invert=2), "request.inpainting_mask_invert must be in [0, 1]"),
    ("inpainting", dict(mask_image_base64=encode(half_mask(40, 30))), "must have the resolution of"),
    ("upscale", dict(scale_factor="5"), "request.scale_factor must be in (1, 4]"),
])
def test_lenient_still_refuses_what_the_page_forbids(sandbox, name, change, text):
    r = submit(sandbox, name, build(sandbox, name, change))
    if text is None:
        assert r.status_code == 200, r.text
    else:
        assert text in refusal(r)[1]


@pytest.mark.sandbox(strict=False)
def test_lenient_transparent_background_still_needs_png(sandbox):
    body = txt2img(model_name=SDXL, enable_transparent_background=True)
    body["extra"]["response_image_type"] = "jpeg"
    assert "needs extra.response_image_type 'png'" in refusal(submit(sandbox, "txt2img", body))[1]


# ---------------------------------------------------------------- rate limits, billing, auth, faults, hosts

def test_rate_limit_counts_images_per_endpoint(make_sandbox):
    srv = make_sandbox(images_per_minute=3)
    assert submit(srv, "txt2img", txt2img(image_num=2)).status_code == 200
    r = submit(srv, "txt2img", txt2img(image_num=2))
    assert r.status_code == 429 and r.json()["reason"] == "RATE_LIMIT_EXCEEDED" and "txt2img" in r.json()["message"]
    # Another endpoint has its own budget.
    for _ in range(3):
        assert submit(srv, "upscale", upscale()).status_code == 200
    assert submit(srv, "upscale", upscale()).status_code == 429
    assert submit(srv, "inpainting", inpainting(srv, image_num=3)).status_code == 200
    assert submit(srv, "txt2img", txt2img(image_num=1)).status_code == 200


def test_rate_limits_per_endpoint_from_a_mapping_or_the_providers_plan(make_sandbox):
    srv = make_sandbox(images_per_minute={"txt2img": 1})
    assert [submit(srv, "txt2img", txt2img()).status_code for _ in range(2)] == [200, 429]
    assert [submit(srv, "upscale", upscale()).status_code for _ in range(3)] == [200] * 3  # not named: unlimited
    plan = make_sandbox(images_per_minute="plan")  # as Novita: txt2img 20, inpainting 10
    assert [submit(plan, "txt2img", txt2img(image_num=8)).status_code for _ in range(3)] == [200, 200, 429]
    assert [submit(plan, "inpainting", inpainting(plan, image_num=8)).status_code for _ in range(2)] == [200, 429]
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
    assert r.status_code == 403 and r.json() == {"code": 403, "reason": "INVALID_API_KEY", "message": "invalid api-key",
                                                 "metadata": {}}
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
    data = requests.get(sandbox.base_url + RESULT, params={"task_id": task_id}, headers=AUTH, timeout=10).json()
    assert data["task"]["status"] == "TASK_STATUS_FAILED" and data["task"]["reason"] == "out of memory"
    assert data["task"]["task_type"] == "UPSCALE" and data["images"] == []


@pytest.mark.parametrize("provider", ["ppinfra", "ppio"])
def test_upscale_is_not_found_as_ppinfra_or_ppio(make_sandbox, provider):
    srv = make_sandbox(provider=provider)
    r = submit(srv, "upscale", upscale())
    assert r.status_code == 404 and r.json()["reason"] == "API_NOT_FOUND" and r.json()["code"] == 404
    unknown = requests.post(srv.base_url + "/v3/async/no-such-thing", json={}, headers=AUTH, timeout=10)
    assert set(r.json()) == set(unknown.json()) and unknown.json()["reason"] == "API_NOT_FOUND"
    assert submit(srv, "upscale", upscale(), headers={}).status_code == 404  # before auth, like a missing path
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
