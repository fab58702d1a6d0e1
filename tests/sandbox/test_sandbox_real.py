"""The sandbox takes what the real service takes (docs/api.md, "What the real service accepts"),
and strict mode refuses it.

Each request shape is built the way another client builds it (the provider's
Python SDK novita-client 0.7.1, its JS SDK), sent with plain `requests` over
real sockets, and must be accepted by the default (lenient) sandbox and
refused with a 400 naming the field by a strict one.
"""

from __future__ import annotations

import base64
import json

import pytest
import requests

from helpers import SANDBOX_KEY, documented, gradient_png as png

SUBMIT, RESULT, MODELS = "/v3/async/img2img", "/v3/async/task-result", "/v3/model"
AUTH = {"Authorization": f"Bearer {SANDBOX_KEY}"}
CHECKPOINT = "dreamshaper_8_93211.safetensors"


def sdk_body():
    """What novita-client 0.7.1's img2img_v3 posts: CommonV3Extra,
    and null for every optional it leaves unset."""
    return {
        "extra": {
            "response_image_type": "jpeg",
            "enable_nsfw_detection": False,
            "nsfw_detection_level": 0,
            "custom_storage": {},
            "enterprise_plan": {},
        },
        "request": {
            "model_name": CHECKPOINT,
            "image_base64": png(),
            "prompt": "a cat",
            "width": 128,
            "height": 128,
            "negative_prompt": None,
            "sd_vae": None,
            "loras": None,
            "embeddings": None,
            "seed": -1,
            "image_num": 1,
            "steps": 20,
            "clip_skip": None,
            "guidance_scale": 7.5,
            "strength": 0.5,
            "sampler_name": "Euler a",
            "extra": {},
            "controlnet": None,
        },
    }


def with_unknown_fields():
    body = documented(
        loras=[{"model_name": "add_detail_44319", "strength": 0.5, "weight_name": "x"}],
        controlnet={
            "units": [
                {
                    "model_name": "control_v11p_sd15_canny",
                    "image_base64": png(),
                    "strength": 1.0,
                    "control_mode": 0,
                }
            ],
            "mode": "balanced",
        },
        hires_fix={"target_width": 256},
    )
    body["trace_id"] = "abc"
    return body


def with_nulls():
    return documented(
        negative_prompt=None,
        sd_vae=None,
        loras=None,
        embeddings=None,
        controlnet=None,
        clip_skip=None,
        strength=None,
        ip_adapters=None,
        seed=None,
    )


def with_extra_blocks():
    body = documented()
    body["extra"].update(
        {
            "enterprise_plan": {"enabled": True},
            "custom_storage": {"aws_s3": {"region": "us-east-1", "bucket": "b", "path": "/out"}},
            "webhook": {"url": "https://hooks.invalid/x"},
            "enable_nsfw_detection": True,
            "nsfw_detection_level": 2,
        }
    )
    return body


def post(body):
    return lambda srv: requests.post(srv.base_url + SUBMIT, json=body, headers=AUTH, timeout=10)


def get_models(params, headers=AUTH):
    return lambda srv: requests.get(srv.base_url + MODELS, params=params, headers=headers, timeout=10)


# name -> (request, text the strict 400 must contain)
SHAPES = {
    "sdk_body_nulls_and_extras": (post(sdk_body()), "extra.custom_storage is not a documented field"),
    "unknown_fields_every_level": (post(with_unknown_fields()), "is not a documented field"),
    "null_for_every_optional": (post(with_nulls()), "request.negative_prompt must not be null"),
    "extra_blocks": (post(with_extra_blocks()), "is not a documented field"),
    "stray_request_extra": (post(documented(extra={})), "request.extra is not a documented field"),
    "seed_as_string": (post(documented(seed="123")), "request.seed must be an integer"),
    "sdk_cursor_c_0": (
        get_models({"filter.types": "checkpoint", "pagination.cursor": "c_0"}),
        "pagination.cursor",
    ),
    "sdk_cursor_c_100": (
        get_models({"filter.types": "checkpoint", "pagination.limit": 100, "pagination.cursor": "c_100"}),
        "pagination.cursor",
    ),
    "bool_True": (get_models({"filter.types": "checkpoint", "filter.is_sdxl": "True"}), "filter.is_sdxl"),
    "bool_0": (get_models({"filter.types": "lora", "filter.is_sdxl": "0"}), "filter.is_sdxl"),
    "sdk_filter_type_singular": (
        get_models({"filter.types": "checkpoint", "filter.type": "checkpoint"}),
        "filter.type is not a documented query parameter",
    ),
    "js_sdk_bare_authorization": (
        get_models({"filter.types": "vae"}, {"Authorization": SANDBOX_KEY}),
        "Bearer",
    ),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_real_service_shape_accepted_by_default_refused_when_strict(make_sandbox, shape):
    call, strict_text = SHAPES[shape]
    lenient = make_sandbox(strict=False)
    r = call(lenient)
    assert r.status_code == 200, r.text
    strict = make_sandbox(strict=True)
    r = call(strict)
    assert r.status_code == 400, r.text
    assert strict_text in r.json()["message"] and r.json()["code"] == 400
    assert not strict.tasks


# ---------------------------------------------------------------- what the lenient reading means


@pytest.mark.sandbox(strict=False)
def test_lenient_reading_of_sdk_body_seed_string_and_nulls(sandbox):
    ids = [
        requests.post(sandbox.base_url + SUBMIT, json=b, headers=AUTH, timeout=10).json()["task_id"]
        for b in (sdk_body(), documented(seed="123"), with_nulls())
    ]
    sdk, seeded, nulls = (sandbox.tasks[i] for i in ids)
    assert (
        sdk.image_type == "jpeg" and sdk.request["strength"] == 0.5 and "negative_prompt" not in sdk.request
    )
    assert "extra" not in sdk.request and sdk.body == sdk_body() | {"request": sdk.body["request"]}
    assert seeded.seed == 123 and seeded.request["seed"] == 123
    r = requests.get(sandbox.base_url + RESULT, params={"task_id": ids[1]}, headers=AUTH, timeout=10)
    assert r.json()["extra"]["seed"] == "123"
    assert not {"clip_skip", "strength", "seed", "controlnet"} & set(nulls.request)


@pytest.mark.sandbox(strict=False)
def test_sdk_offset_cursors_page_like_the_servers_own(sandbox):
    mine, cursor = [], ""
    for _ in range(3):
        data = get_models(
            {"filter.types": "checkpoint", "pagination.limit": 100, "pagination.cursor": cursor}
        )(sandbox)
        data = data.json()
        mine.append([m["id"] for m in data["models"]])
        cursor = data["pagination"]["next_cursor"]
        if cursor:  # the real look: c_ + base64 of a JSON key
            assert cursor.startswith("c_") and isinstance(json.loads(base64.b64decode(cursor[2:])), list)
    sdk = [
        [
            m["id"]
            for m in get_models(
                {"filter.types": "checkpoint", "pagination.limit": 100, "pagination.cursor": f"c_{k * 100}"}
            )(sandbox).json()["models"]
        ]
        for k in range(3)
    ]
    assert sdk == mine and [len(p) for p in mine] == [100, 100, 60]


@pytest.mark.sandbox(strict=False)
@pytest.mark.parametrize("true,false", [("True", "False"), ("1", "0"), ("true", "false"), ("TRUE", "f")])
def test_query_booleans_in_every_spelling(sandbox, true, false):
    xl = get_models({"filter.types": "checkpoint", "filter.is_sdxl": true, "pagination.limit": 100})(
        sandbox
    ).json()
    sd = get_models({"filter.types": "checkpoint", "filter.is_sdxl": false, "pagination.limit": 100})(
        sandbox
    ).json()
    assert xl["models"] and all(m["base_model"] not in ("SD 1.5", "SD 2.1", "Flux.1 D") for m in xl["models"])
    assert sd["models"] and all(m["base_model"] in ("SD 1.5", "SD 2.1", "Flux.1 D") for m in sd["models"])
    r = get_models({"filter.is_sdxl": "yes"})(sandbox)
    assert r.status_code == 400 and "filter.is_sdxl" in r.json()["message"]


@pytest.mark.sandbox(strict=False)
def test_singular_filter_type_is_ignored_like_any_unknown_key(sandbox):
    data = get_models({"filter.type": "vae", "pagination.limit": 100})(sandbox).json()
    unfiltered = get_models({"pagination.limit": 100})(sandbox).json()
    assert [m["id"] for m in data["models"]] == [m["id"] for m in unfiltered["models"]]
    assert {m["type"]["name"] for m in data["models"]} == {"checkpoint"}  # no VAE filter applied


# ---------------------------------------------------------------- lenient still refuses what the page forbids

LORA = {"model_name": "add_detail_44319", "strength": 0.5}
FORBIDDEN = [
    (dict(width=4096), "INVALID_REQUEST_BODY", "request.width must be in [128, 2048], got 4096"),
    (dict(width="4096"), "INVALID_REQUEST_BODY", "request.width must be in [128, 2048], got 4096"),
    (dict(width="wide"), "INVALID_REQUEST_BODY", "request.width must be an integer"),
    (dict(seed="-2"), "INVALID_REQUEST_BODY", "request.seed must be in [-1,"),
    (
        dict(guidance_scale="31.5"),
        "INVALID_REQUEST_BODY",
        "request.guidance_scale must be in [1, 30], got 31.5",
    ),
    (dict(sampler_name="euler"), "INVALID_REQUEST_BODY", "request.sampler_name must be one of"),
    (dict(loras=[LORA] * 6), "INVALID_REQUEST_BODY", "request.loras must have at most 5 entries, got 6"),
    (dict(prompt=None), "INVALID_REQUEST_BODY", "request.prompt is required"),
    (dict(image_base64="data:image/png;base64," + png()), "INVALID_IMAGE_FORMAT", "'data:' prefix"),
    (
        dict(image_base64=base64.b64encode(b"not an image").decode()),
        "INVALID_IMAGE_FORMAT",
        "request.image_base64",
    ),
    (dict(image_base64=png(2049, 8)), "IMAGE_EXCEEDS_MAX_RESOLUTION", "got 2049x8"),
    (
        dict(model_name="nope.safetensors"),
        "INVALID_REQUEST_BODY",
        "request.model_name must name an available",
    ),
]


@pytest.mark.sandbox(strict=False)
@pytest.mark.parametrize("fields,reason,message", FORBIDDEN)
def test_lenient_still_refuses_what_the_page_forbids(sandbox, fields, reason, message):
    r = requests.post(sandbox.base_url + SUBMIT, json=documented(**fields), headers=AUTH, timeout=10)
    assert r.status_code == 400 and r.json()["reason"] == reason and message in r.json()["message"], r.text
    assert not sandbox.tasks


@pytest.mark.sandbox(strict=False)
def test_lenient_refuses_an_unknown_image_type_and_nonsense_extra_value(sandbox):
    body = documented()
    body["extra"]["response_image_type"] = "gif"
    r = requests.post(sandbox.base_url + SUBMIT, json=body, headers=AUTH, timeout=10)
    assert r.status_code == 400 and "extra.response_image_type must be one of" in r.json()["message"]


# ---------------------------------------------------------------- the real error answers


@pytest.mark.parametrize("strict", [False, True])
def test_bad_key_is_403_invalid_api_key_word_for_word(make_sandbox, strict):
    srv = make_sandbox(strict=strict)
    for headers in ({"Authorization": "Bearer sk-wrong"}, {"Authorization": "Bearer " + SANDBOX_KEY + "x"}):
        r = requests.get(srv.base_url + MODELS, headers=headers, timeout=5)
        assert r.status_code == 403
        assert r.json() == {
            "code": 403,
            "reason": "INVALID_API_KEY",
            "message": "invalid api-key",
            "metadata": {},
        }
    r = requests.get(srv.base_url + MODELS, headers={"Authorization": "sk-wrong"}, timeout=5)
    assert r.status_code == (400 if strict else 403)
    r = requests.get(srv.base_url + MODELS, timeout=5)
    assert r.status_code == 400 and r.json()["reason"] == "MISSING_API_KEY"


@pytest.mark.parametrize("strict", [False, True])
def test_unknown_path_is_404_api_not_found(make_sandbox, strict):
    srv = make_sandbox(strict=strict)
    for method, path in (("GET", "/v3/nope"), ("POST", "/v3/async/txt2imgg"), ("GET", "/v2/model")):
        r = requests.request(method, srv.base_url + path, headers=AUTH, timeout=5)
        assert r.status_code == 404 and r.json()["reason"] == "API_NOT_FOUND" and r.json()["code"] == 404


def test_js_sdk_bare_key_works_on_every_endpoint_by_default(make_sandbox):
    srv = make_sandbox(strict=False)
    bare = {"Authorization": SANDBOX_KEY}
    r = requests.post(srv.base_url + SUBMIT, json=documented(), headers=bare, timeout=10)
    assert r.status_code == 200
    task_id = r.json()["task_id"]
    assert (
        requests.get(srv.base_url + RESULT, params={"task_id": task_id}, headers=bare, timeout=5).status_code
        == 200
    )
    assert requests.get(srv.base_url + "/v3/user", headers=bare, timeout=5).status_code == 200
