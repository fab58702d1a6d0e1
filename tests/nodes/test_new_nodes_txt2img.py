"""PPInfra Txt2Img against the strict sandbox over real sockets: the documented fields on the wire and nothing
else, features off unless set, the contract's forbidden combinations refused before any request."""

from __future__ import annotations

import json

import pytest

from tools.node_driver import defaults, pack_module, run_node

SD15 = "dreamshaper_8_93211.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
pytestmark = pytest.mark.usefixtures("no_background_refresh")
NODE = "PPInfraTxt2Img"


def txt2img(**widgets):
    inputs = defaults(NODE)
    inputs.update(
        model_name=SD15, prompt="a lighthouse at dusk", width=128, height=160, seed=42, unique_id="3"
    )
    inputs.update(widgets)
    return run_node(NODE, **inputs)


def test_defaults_send_only_the_required_fields(node_client, env):
    images, seed, info = txt2img()
    (body,) = env.submitted("txt2img")
    assert body == {
        "extra": {"response_image_type": "png"},
        "request": {
            "model_name": SD15,
            "prompt": "a lighthouse at dusk",
            "width": 128,
            "height": 160,
            "image_num": 1,
            "steps": 20,
            "guidance_scale": 7.5,
            "sampler_name": "Euler a",
            "seed": 42,
        },
    }
    assert tuple(images.shape) == (1, 160, 128, 3) and seed == 42
    data = json.loads(info)
    assert len(data["task_ids"]) == 1 and data["request"]["request"]["prompt"] == "a lighthouse at dusk"
    assert env.submits == []  # nothing went to img2img


def test_every_input_reaches_the_wire(node_client, env):
    (loras,) = run_node(
        "PPInfraLoraStack",
        **{**defaults("PPInfraLoraStack"), "lora_1": "sdxl_lightning_4step_lora", "strength_1": 0.6},
    )
    (emb,) = run_node("PPInfraEmbedding", model_name="negativeXL_D")
    images, seed, _ = txt2img(
        model_name=SDXL,
        prompt="a glass teapot",
        negative_prompt="blurry",
        width=256,
        height=192,
        image_num=2,
        steps=12,
        guidance_scale=6.5,
        sampler_name="DPM++ 2M Karras",
        seed=7,
        clip_skip=2,
        sd_vae="sdxl_vae.safetensors",
        hires_fix=True,
        hires_target_width=384,
        hires_target_height=288,
        hires_strength=0.4,
        hires_upscaler="RealESRNet_x4plus",
        refiner_switch_at=0.7,
        restore_faces=True,
        enable_transparent_background=True,
        loras=loras,
        embeddings=emb,
    )
    (body,) = env.submitted("txt2img")
    assert body == {
        "extra": {"response_image_type": "png"},
        "request": {
            "model_name": SDXL,
            "prompt": "a glass teapot",
            "width": 256,
            "height": 192,
            "image_num": 2,
            "steps": 12,
            "guidance_scale": 6.5,
            "sampler_name": "DPM++ 2M Karras",
            "negative_prompt": "blurry",
            "sd_vae": "sdxl_vae.safetensors",
            "seed": 7,
            "clip_skip": 2,
            "hires_fix": {
                "target_width": 384,
                "target_height": 288,
                "strength": 0.4,
                "upscaler": "RealESRNet_x4plus",
            },
            "refiner": {"switch_at": 0.7},
            "enable_transparent_background": True,
            "restore_faces": True,
            "loras": [{"model_name": "sdxl_lightning_4step_lora", "strength": 0.6}],
            "embeddings": [{"model_name": "negativeXL_D"}],
        },
    }
    # One task, image_num images at the hires fix target size.
    assert tuple(images.shape) == (2, 288, 384, 3) and seed == 7


def test_no_controlnet_or_ip_adapter_input():
    spec = pack_module("nodes").NODE_CLASS_MAPPINGS[NODE].INPUT_TYPES()
    names = {n for section in spec.values() for n in section}
    assert not {"controlnet", "ip_adapter", "image"} & names


@pytest.mark.parametrize(
    "widgets, field, limit, value",
    [
        (
            dict(enable_transparent_background=True, response_image_type="webp", model_name=SDXL),
            "extra.response_image_type",
            "'png' with request.enable_transparent_background",
            "webp",
        ),
        (
            dict(enable_transparent_background=True),
            "request.enable_transparent_background",
            "SDXL checkpoint",
            True,
        ),
        (dict(refiner_switch_at=0.8), "request.refiner.switch_at", "SDXL checkpoint", 0.8),
        (
            dict(hires_fix=True, width=512, height=512, hires_target_width=384, hires_target_height=1024),
            "request.hires_fix.target_width",
            "at least request.width (512)",
            384,
        ),
        (
            dict(hires_fix=True, width=512, height=512, hires_target_width=1024, hires_target_height=256),
            "request.hires_fix.target_height",
            "at least request.height (512)",
            256,
        ),
        (dict(width=4096), "request.width", "[128, 2048]", 4096),
        (dict(image_num=9), "request.image_num", "[1, 8]", 9),
        (dict(prompt=""), "request.prompt", "length [1, 1024]", ""),
        (dict(hires_fix=True, hires_upscaler="Nearest"), "request.hires_fix.upscaler", "'Latent'", "Nearest"),
    ],
)
def test_forbidden_combinations_are_refused_before_any_request(
    node_client, env, errors, widgets, field, limit, value
):
    with pytest.raises(errors.ValidationError) as info:
        txt2img(**widgets)
    err = info.value
    assert err.field == field and limit in err.limit and err.value == value, str(err)
    assert field in str(err) and repr(value) in str(err)
    assert env.submitted("txt2img") == [] and env.submits == []


def test_sdxl_only_features_with_an_unknown_checkpoint_warn_and_let_the_server_decide(
    node_client, env, errors
):
    # A name the catalog does not know: its family is unknown, so the node does not refuse; the strict
    # sandbox (which knows the name is not SDXL) does, and its answer reaches the user as an API error.
    unknown = "myOwnMerge_v3.safetensors"
    bridge = pack_module("nodes.comfy_bridge")
    texts = []
    original = bridge.send_status
    bridge.send_status = lambda text, node_id: texts.append(text)
    try:
        with pytest.raises(errors.PPInfraError) as info:
            txt2img(model_name=unknown, refiner_switch_at=0.5)
    finally:
        bridge.send_status = original
    assert not isinstance(info.value, errors.ValidationError)
    assert len(env.submitted("txt2img")) == 1  # sent: the server decided
    assert any("refiner needs an SDXL checkpoint" in t and "unknown" in t for t in texts), texts


def test_off_features_are_not_sent_even_with_values_set(node_client, env):
    txt2img(
        hires_fix=False,
        hires_target_width=2048,
        refiner_switch_at=0.0,
        restore_faces=False,
        enable_transparent_background=False,
        negative_prompt="",
        clip_skip=0,
        sd_vae="None",
    )
    req = env.submitted("txt2img")[0]["request"]
    for absent in (
        "hires_fix",
        "refiner",
        "restore_faces",
        "enable_transparent_background",
        "negative_prompt",
        "clip_skip",
        "sd_vae",
        "loras",
        "embeddings",
    ):
        assert absent not in req
