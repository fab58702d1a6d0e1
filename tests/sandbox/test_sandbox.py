"""The sandbox over real sockets, with plain `requests`: lifecycle, result images, validation, auth.

(Faults, the image host and the CLI: test_sandbox_faults.py.)
"""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
import requests
from PIL import Image

from helpers import SANDBOX_AUTH as AUTH, SANDBOX_KEY
from helpers import fetch_ok as fetch, img2img_body as body, poll_task as poll, run_img2img as run
from helpers import smooth_b64 as smooth, submit_img2img as submit
from ppinfra.limits import IMAGE_MAX_FILE_BYTES
from ppinfra.sandbox.errors import SandboxHTTPError
from ppinfra.sandbox.imaging import render_results
from ppinfra.sandbox.validation import decode_image

SUBMIT, MODELS = "/v3/async/img2img", "/v3/model"


# ---------------------------------------------------------------- lifecycle and result images


def test_lifecycle_queued_then_processing_then_succeed(sandbox):
    sandbox.configure(queue_seconds=0.3, task_seconds=1.0)
    r = submit(sandbox, body(seed=42))
    task_id = r.json()["task_id"]
    seen = []
    while True:
        data = poll(sandbox, task_id).json()
        seen.append((time.monotonic(), data))
        if data["task"]["status"] == "TASK_STATUS_SUCCEED":
            break
        assert data["images"] == [] and len(seen) < 200
        time.sleep(0.04)
    statuses = [d["task"]["status"] for _, d in seen]
    assert statuses[0] == "TASK_STATUS_QUEUED" and statuses[-1] == "TASK_STATUS_SUCCEED"
    first_processing = statuses.index("TASK_STATUS_PROCESSING")
    assert set(statuses[:first_processing]) == {"TASK_STATUS_QUEUED"}
    proc = [(t, d["task"]) for t, d in seen if d["task"]["status"] == "TASK_STATUS_PROCESSING"]
    percents = [t["progress_percent"] for _, t in proc]
    etas = [t["eta"] for _, t in proc]
    assert percents == sorted(percents) and len(set(percents)) >= 5 and max(percents) <= 99
    assert etas == sorted(etas, reverse=True) and seen[0][1]["task"]["eta"] == 2
    done_seen = seen[-1][0]
    for t, d in seen[:-1]:  # eta is the real remaining time, rounded up: clients schedule polls with it
        assert done_seen - t - 0.25 <= d["task"]["eta"] <= done_seen - t + 1.1
    data = seen[-1][1]
    assert (
        data["task"]["progress_percent"] == 100 and data["task"]["eta"] == 0 and data["task"]["reason"] == ""
    )
    assert data["extra"]["seed"] == "42" and data["task"]["task_type"] == "IMG_TO_IMG"
    assert all(isinstance(v, str) for v in data["extra"]["debug_info"].values())
    assert data["videos"] == [] and data["audios"] == []
    (img,) = data["images"]
    assert (
        img["image_url_ttl"] == "3600" and img["image_type"] == "png" and img["nsfw_detection_result"] is None
    )
    r = poll(sandbox, "00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and r.json()["reason"] == "TASK_NOT_FOUND"
    task = sandbox.tasks[task_id]
    assert task.status == "TASK_STATUS_SUCCEED" and task.done_at <= time.time()
    assert task.done_at - task.created >= 1.3 - 0.01


@pytest.mark.parametrize("image_type,fmt", [("png", "PNG"), ("webp", "WEBP"), ("jpeg", "JPEG")])
def test_result_images_have_size_format_and_count(sandbox, image_type, fmt):
    data = run(sandbox, body(extra={"response_image_type": image_type}, width=200, height=136, image_num=3))
    assert len(data["images"]) == 3
    for img in data["images"]:
        r = fetch(img["image_url"])
        assert r.headers["Content-Type"] == f"image/{image_type}"
        assert int(r.headers["Content-Length"]) == len(r.content)
        im = Image.open(io.BytesIO(r.content))
        assert im.format == fmt and im.size == (200, 136)


def _pixels(url):
    return np.asarray(Image.open(io.BytesIO(fetch(url).content)).convert("RGB"), dtype=np.float32)


def test_results_derive_from_input_and_differ_by_seed(sandbox):
    b64, arr = smooth(96, 64)
    reference = np.asarray(Image.fromarray(arr).resize((192, 128), Image.BILINEAR), dtype=np.float32)
    a = run(sandbox, body(image_base64=b64, width=192, height=128, image_num=2, seed=7))
    b = run(sandbox, body(image_base64=b64, width=192, height=128, image_num=1, seed=8))
    a0, a1 = (_pixels(i["image_url"]) for i in a["images"])
    b0 = _pixels(b["images"][0]["image_url"])
    for img in (a0, a1, b0):
        assert np.corrcoef(img.ravel(), reference.ravel())[0, 1] > 0.8
    assert np.abs(a0 - b0).mean() > 3 and np.abs(a0 - a1).mean() > 3
    assert np.array_equal(a1, b0)  # image i uses seed + i
    picked = run(sandbox, body(seed=-1))  # -1: the server picks a seed and reports it
    assert int(picked["extra"]["seed"]) >= 0 and sandbox.tasks[picked["task"]["task_id"]].seed == int(
        picked["extra"]["seed"]
    )


def test_render_is_fast():
    src = Image.fromarray(smooth(512, 512)[1])
    t0 = time.perf_counter()
    out = render_results(src, 1024, 1024, 1, 4, "png")
    assert len(out) == 4 and time.perf_counter() - t0 < 2.5


# ---------------------------------------------------------------- validation


def _cn(**unit):
    u = dict(model_name="control_v11p_sd15_canny", image_base64=smooth()[0], strength=1.0)
    u.update(unit)
    return {"units": [u]}


LORA = {"model_name": "add_detail_44319", "strength": 0.5}
BAD_FIELDS = [
    (dict(width=2049), "INVALID_REQUEST_BODY", "request.width must be in [128, 2048], got 2049"),
    (dict(width=512.0), "INVALID_REQUEST_BODY", "request.width must be an integer"),
    (dict(image_num=True), "INVALID_REQUEST_BODY", "request.image_num must be an integer"),
    (dict(strength=0), "INVALID_REQUEST_BODY", "request.strength must be in (0, 1], got 0"),
    (dict(loras=[LORA] * 6), "INVALID_REQUEST_BODY", "request.loras must have at most 5 entries, got 6"),
    (
        dict(loras=[LORA, dict(LORA, strength=1.5)]),
        "INVALID_REQUEST_BODY",
        "request.loras[1].strength must be in [0, 1], got 1.5",
    ),
    (
        dict(loras=[{"model_name": "add_detail_44319.safetensors", "strength": 0.5}]),
        "INVALID_REQUEST_BODY",
        "request.loras[0].model_name must name an available lora",
    ),
    (
        dict(
            ip_adapters=[{"model_name": "ip-adapter_sd15.bin", "image_base64": smooth()[0], "strength": 0.5}]
            * 2
        ),
        "INVALID_REQUEST_BODY",
        "request.ip_adapters must have at most 1 entries",
    ),
    (dict(clip_skip=13), "INVALID_REQUEST_BODY", "request.clip_skip must be in [1, 12], got 13"),
    (dict(seed=-2), "INVALID_REQUEST_BODY", "request.seed must be in [-1,"),
    (dict(prompt=""), "INVALID_REQUEST_BODY", "request.prompt must have length [1, 1024]"),
    (dict(sampler_name="euler"), "INVALID_REQUEST_BODY", "request.sampler_name must be one of"),
    (dict(cfg_scale=7), "INVALID_REQUEST_BODY", "request.cfg_scale is not a documented field"),
    (
        dict(model_name="nope.safetensors"),
        "INVALID_REQUEST_BODY",
        "request.model_name must name an available",
    ),
    (
        dict(controlnet=_cn(strength=0)),
        "INVALID_REQUEST_BODY",
        "request.controlnet.units[0].strength must be in (0, 1]",
    ),
    (
        dict(controlnet=_cn(guidance_start=0.5, guidance_end=0.5)),
        "INVALID_REQUEST_BODY",
        "request.controlnet.units[0].guidance_start must be below",
    ),
    (
        dict(controlnet={"units": [{"model_name": "control_v11p_sd15_canny", "strength": 1.0}]}),
        "INVALID_REQUEST_BODY",
        "request.controlnet.units[0].image_base64 is required",
    ),
    (dict(image_base64="data:image/png;base64," + smooth()[0]), "INVALID_IMAGE_FORMAT", "'data:' prefix"),
    (
        dict(image_base64=base64.b64encode(b"not an image").decode()),
        "INVALID_IMAGE_FORMAT",
        "request.image_base64",
    ),
    (
        dict(controlnet=_cn(image_base64=smooth(2049, 8)[0])),
        "IMAGE_EXCEEDS_MAX_RESOLUTION",
        "request.controlnet.units[0].image_base64 must have each side <= 2048 px, got 2049x8",
    ),
]


@pytest.mark.parametrize("fields,reason,message", BAD_FIELDS)
def test_invalid_fields_are_refused_naming_field_limit_value(sandbox, fields, reason, message):
    r = submit(sandbox, body(**fields))
    assert r.status_code == 400
    data = r.json()
    assert set(data) == {"code", "reason", "message", "metadata"} and data["code"] == 400
    assert data["reason"] == reason and message in data["message"], data["message"]
    assert not sandbox.tasks


def test_full_valid_body_is_accepted(sandbox):
    full = body(
        extra={"response_image_type": "jpeg"},
        negative_prompt="",
        sd_vae="vae-ft-mse-840000-ema-pruned.ckpt",
        controlnet=_cn(preprocessor="canny", guidance_start=0.0, guidance_end=1.0),
        seed=3,
        loras=[LORA] * 5,
        embeddings=[{"model_name": "EasyNegative"}],
        clip_skip=None,
        strength=1,
        ip_adapters=[{"model_name": "ip-adapter_sd15.bin", "image_base64": smooth()[0], "strength": 0}],
    )
    assert submit(sandbox, full).status_code == 200
    assert sandbox.submits == [full]


def test_file_size_limit():
    with pytest.raises(SandboxHTTPError) as info:
        decode_image("request.image_base64", "A" * (IMAGE_MAX_FILE_BYTES // 3 * 4 + 8))
    assert (
        info.value.reason == "IMAGE_FILE_EXCEEDS_MAX_SIZE" and str(IMAGE_MAX_FILE_BYTES) in info.value.message
    )


def test_body_must_be_json_with_json_content_type(sandbox):
    r = requests.post(
        sandbox.base_url + SUBMIT, data=b"x=1", headers=dict(AUTH, **{"Content-Type": "text/plain"})
    )
    assert r.status_code == 400 and "Content-Type" in r.json()["message"]
    r = requests.post(
        sandbox.base_url + SUBMIT, data=b"{oops", headers=dict(AUTH, **{"Content-Type": "application/json"})
    )
    assert r.status_code == 400 and r.json()["reason"] == "INVALID_REQUEST_BODY"


# ---------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "headers,status,reason",
    [
        ({}, 400, "MISSING_API_KEY"),
        ({"Authorization": "Bearer sk-wrong"}, 403, "INVALID_API_KEY"),
        # strict: the bare key is outside the page's 'Bearer <key>'
        ({"Authorization": SANDBOX_KEY}, 400, "MISSING_API_KEY"),
    ],
)
def test_auth_on_every_endpoint(sandbox, headers, status, reason):
    answers = [
        submit(sandbox, body(), headers=headers),
        poll(sandbox, "x", headers=headers),
        requests.get(sandbox.base_url + MODELS, headers=headers, timeout=5),
    ]
    for r in answers:
        assert r.status_code == status and r.json()["reason"] == reason and r.json()["code"] == status
    assert not sandbox.tasks
