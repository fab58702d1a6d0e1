"""What the sandbox refuses on txt2img, inpainting and upscale (SIBLINGS.md),
over real sockets with `requests`.

Strict refusals name the field; lenient mode reads bodies like the real backend
and still refuses what the page forbids. (Results, rate limits and billing:
test_sibling_endpoints.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import sibling_body as build
from helpers import encode_image as encode, half_mask, inpainting_body as inpainting, picture, refusal
from helpers import submit_to as submit, txt2img_body as txt2img

SD15, SDXL = "dreamshaper_8_93211.safetensors", "sd_xl_base_1.0.safetensors"


# --------------------------------------------------------------------------- strict refusals name the field

STRICT_REFUSALS = [
    ("txt2img", dict(controlnet={"units": []}), "request.controlnet is not accepted by txt2img"),
    ("txt2img", dict(ip_adapters=[]), "request.ip_adapters is not accepted by txt2img"),
    ("txt2img", dict(image_base64="x"), "request.image_base64 is not accepted by txt2img"),
    ("txt2img", dict(width=2049), "request.width must be in [128, 2048]"),
    ("txt2img", dict(height=None), "request.height must not be null"),
    ("txt2img", dict(negative_prompt="x" * 1025), "request.negative_prompt must have length [0, 1024]"),
    ("txt2img", dict(sampler_name="Euler b"), "request.sampler_name must be one of"),
    ("txt2img", dict(image_num=9), "request.image_num must be in [1, 8]"),
    (
        "txt2img",
        dict(loras=[{"model_name": "add_detail_44319", "strength": 0.5}] * 6),
        "request.loras must have at most 5 entries",
    ),
    ("txt2img", dict(restore_faces=1), "request.restore_faces must be a JSON boolean"),
    (
        "txt2img",
        dict(enable_transparent_background="true", model_name=SDXL),
        "request.enable_transparent_background must be a JSON boolean",
    ),
    ("txt2img", dict(enable_transparent_background=True), "needs an SDXL checkpoint"),
    ("txt2img", dict(refiner={"switch_at": 0.8}), "request.refiner needs an SDXL checkpoint"),
    (
        "txt2img",
        dict(refiner={"switch_at": 1.5}, model_name=SDXL),
        "request.refiner.switch_at must be in [0, 1]",
    ),
    (
        "txt2img",
        dict(hires_fix={"target_width": 100, "target_height": 160}),
        "request.hires_fix.target_width",
    ),
    (
        "txt2img",
        dict(hires_fix={"target_width": 256, "target_height": 150}),
        "request.hires_fix.target_height must be >= request.height (160)",
    ),
    (
        "txt2img",
        dict(hires_fix={"target_width": 4097, "target_height": 200}),
        "request.hires_fix.target_width must be in [128, 4096]",
    ),
    ("txt2img", dict(hires_fix={"target_width": 256}), "request.hires_fix.target_height is required"),
    (
        "txt2img",
        dict(hires_fix={"target_width": 256, "target_height": 200, "upscaler": "ESRGAN"}),
        "request.hires_fix.upscaler must be one of",
    ),
    (
        "txt2img",
        dict(hires_fix={"target_width": 256, "target_height": 200, "hr_scale": 2}),
        "request.hires_fix.hr_scale is not a documented field",
    ),
    (
        "inpainting",
        dict(hires_fix={"target_width": 256, "target_height": 256}),
        "request.hires_fix is not accepted by inpainting",
    ),
    ("inpainting", dict(refiner={"switch_at": 0.5}), "request.refiner is not accepted by inpainting"),
    ("inpainting", dict(controlnet={"units": []}), "request.controlnet is not accepted by inpainting"),
    ("inpainting", dict(ip_adapters=[]), "request.ip_adapters is not accepted by inpainting"),
    ("inpainting", dict(width=512), "request.width is not accepted by inpainting"),
    ("inpainting", dict(negative_prompt=""), "request.negative_prompt must have length [1, 1024]"),
    (
        "inpainting",
        dict(inpainting_full_res=True),
        "request.inpainting_full_res must be an integer in [0, 1]",
    ),
    ("inpainting", dict(inpainting_mask_invert=2), "request.inpainting_mask_invert must be in [0, 1]"),
    ("inpainting", dict(inpainting_mask_invert=1.0), "request.inpainting_mask_invert must be an integer"),
    ("inpainting", dict(mask_blur=65), "request.mask_blur must be in [0, 64]"),
    (
        "inpainting",
        dict(inpainting_full_res_padding=257),
        "request.inpainting_full_res_padding must be in [0, 256]",
    ),
    (
        "inpainting",
        dict(initial_noise_multiplier=1.6),
        "request.initial_noise_multiplier must be in [0, 1.5]",
    ),
    ("inpainting", dict(model_name=SD15), "request.model_name must name an inpainting checkpoint"),
    ("inpainting", dict(mask_image_base64=None), "request.mask_image_base64 must be raw base64"),
    ("inpainting", dict(mask_image_base64="not base64!"), "request.mask_image_base64 must be valid base64"),
    (
        "inpainting",
        dict(mask_image_base64=encode(half_mask(40, 30))),
        "request.mask_image_base64 must have the resolution of request.image_base64 (80x60), got 40x30",
    ),
    ("upscale", dict(model_name="4x-Sharper"), "request.model_name must be one of"),
    ("upscale", dict(scale_factor=1), "request.scale_factor must be in (1, 4]"),
    ("upscale", dict(scale_factor=4.01), "request.scale_factor must be in (1, 4]"),
    ("upscale", dict(scale_factor="2"), "request.scale_factor must be a number"),
    ("upscale", dict(prompt="sharper"), "request.prompt is not accepted by upscale"),
    ("upscale", dict(seed=1), "request.seed is not accepted by upscale"),
    (
        "upscale",
        dict(image_base64=encode(picture(2049, 16))),
        "request.image_base64 must have each side <= 2048 px, got 2049x16",
    ),
    ("upscale", dict(scale_factor=None), "request.scale_factor must not be null"),
]


@pytest.mark.parametrize(
    "name,change,text",
    STRICT_REFUSALS,
    ids=[f"{n}-{'-'.join(c)}-{i}" for i, (n, c, _) in enumerate(STRICT_REFUSALS)],
)
def test_strict_refusals_name_the_field(sandbox, name, change, text):
    reason, message = refusal(submit(sandbox, name, build(sandbox, name, change)))
    assert text in message, message
    assert not sandbox.tasks


def test_refusals_for_missing_fields_and_wrong_image_type(sandbox):
    for name, field in (
        ("txt2img", "prompt"),
        ("inpainting", "mask_image_base64"),
        ("upscale", "scale_factor"),
    ):
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


# ------------------------------------------------------------------------ lenient reads like the real backend

LENIENT_ONLY = [
    ("txt2img", dict(controlnet={"units": [{"model_name": "control_v11p_sd15_canny"}]}, ip_adapters=None)),
    (
        "txt2img",
        dict(steps="20", seed="42", guidance_scale="7.5", negative_prompt=None, sd_vae=None, extra={}),
    ),
    (
        "inpainting",
        dict(inpainting_full_res=False, inpainting_mask_invert=False, mask_blur="4"),
    ),  # the SDK's booleans
    ("inpainting", dict(model_name=SD15)),  # a standard checkpoint: inferred to work on the real service
    ("inpainting", dict(hires_fix={"target_width": 1}, loras=None, strength=None)),
    ("upscale", dict(scale_factor="2", prompt="ignored", seed=None)),
]


@pytest.mark.parametrize(
    "name,change", LENIENT_ONLY, ids=[f"{n}-{i}" for i, (n, _) in enumerate(LENIENT_ONLY)]
)
def test_lenient_accepts_what_strict_refuses(make_sandbox, name, change):
    lenient, strict = make_sandbox(strict=False), make_sandbox()
    r = submit(lenient, name, build(lenient, name, change))
    assert r.status_code == 200, r.text
    assert refusal(submit(strict, name, build(strict, name, change)))[0] == "INVALID_REQUEST_BODY"


@pytest.mark.sandbox(strict=False)
@pytest.mark.parametrize(
    "name,change,text",
    [
        (
            "txt2img",
            dict(hires_fix={"target_width": 64, "target_height": 96}),
            "request.hires_fix.target_width",
        ),
        ("txt2img", dict(restore_faces="true"), "request.restore_faces must be a JSON boolean"),
        (
            "txt2img",
            dict(enable_transparent_background=True, model_name=SDXL, steps="30"),
            None,
        ),  # accepted: the png extra is there
        ("inpainting", dict(inpainting_mask_invert=2), "request.inpainting_mask_invert must be in [0, 1]"),
        ("inpainting", dict(mask_image_base64=encode(half_mask(40, 30))), "must have the resolution of"),
        ("upscale", dict(scale_factor="5"), "request.scale_factor must be in (1, 4]"),
    ],
)
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
