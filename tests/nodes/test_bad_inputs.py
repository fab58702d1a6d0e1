"""Bad-input suite through the nodes (issue 5): every bad value is refused before any request.

tests/client/test_request_validation.py checks each limit of the typed request at
both edges. Here the same limits are reached the way a user reaches them,
through node widgets, chained stacks and IMAGE tensors: each wrong value stops
the node with the pack's ValidationError (or ConfigError for a missing key)
naming the field, the limit and the value, and the sandbox received nothing
at all. Oversized images are downscaled and sent, not refused.
"""

from __future__ import annotations

import base64
import io
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from tools.node_driver import defaults, img2img, pack_module, photo, run_node

CN = "control_v11p_sd15_canny"


def cn_unit(**widgets):
    inputs = defaults("PPInfraControlNetUnit")
    inputs.update(model_name=CN, image=photo())
    inputs.update(widgets)
    return run_node("PPInfraControlNetUnit", **inputs)[0]


def lora_stack(names, chain=None, strength=0.5):
    inputs = defaults("PPInfraLoraStack")
    for i, name in enumerate(names, start=1):
        inputs[f"lora_{i}"] = name
        inputs[f"strength_{i}"] = strength
    if chain is not None:
        inputs["loras"] = chain
    return run_node("PPInfraLoraStack", **inputs)[0]


def embedding(name, chain=None):
    return run_node("PPInfraEmbedding", model_name=name, **({} if chain is None else {"embeddings": chain}))[
        0
    ]


def assert_names(exc, field, limit_words, value):
    text = str(exc)
    assert field in text, f"{field!r} missing from: {text}"
    assert all(w in text for w in limit_words), f"{limit_words} missing from: {text}"
    assert str(value) in text, f"{value!r} missing from: {text}"


# --------------------------------------------------------------------------- Img2Img widgets just outside

OUTSIDE = [
    ("width", 127, ["[128, 2048]"]),
    ("width", 2049, ["[128, 2048]"]),
    ("height", 127, ["[128, 2048]"]),
    ("height", 2049, ["[128, 2048]"]),
    ("image_num", 0, ["[1, 8]"]),
    ("image_num", 9, ["[1, 8]"]),
    ("steps", 0, ["[1, 100]"]),
    ("steps", 101, ["[1, 100]"]),
    ("guidance_scale", 0.99, ["[1, 30]"]),
    ("guidance_scale", 30.01, ["[1, 30]"]),
    ("seed", -2, ["[-1, 4294967295]"]),
    ("seed", 2**32, ["[-1, 4294967295]"]),
    ("strength", 0.0, ["(0, 1]"]),
    ("strength", 1.01, ["(0, 1]"]),
    ("clip_skip", 13, ["[1, 12]"]),
    ("clip_skip", -1, ["[1, 12]"]),
    ("sampler_name", "Euler z", ["20 documented values"]),
    ("response_image_type", "gif", ["'png'", "'webp'", "'jpeg'"]),
    ("prompt", "", ["length [1, 1024]"]),
    ("prompt", "x" * 1025, ["length [1, 1024]", "1025 characters"]),
    ("negative_prompt", "n" * 1025, ["length [0, 1024]", "1025 characters"]),
]


@pytest.mark.parametrize("field,value,words", OUTSIDE, ids=[f"{f}={str(v)[:12]}" for f, v, _ in OUTSIDE])
def test_img2img_widget_just_outside_its_limit(quiet, errors, field, value, words):
    with pytest.raises(errors.ValidationError) as info:
        img2img(photo(), **{field: value})
    shown = value if not isinstance(value, str) or len(value) <= 40 else ""
    assert_names(
        info.value,
        f"request.{field}" if field != "response_image_type" else "extra.response_image_type",
        words,
        shown,
    )


EDGES = [
    {
        "width": 128,
        "height": 2048,
        "image_num": 1,
        "steps": 1,
        "guidance_scale": 1.0,
        "seed": -1,
        "strength": 0.01,
        "clip_skip": 1,
        "prompt": "x",
        "negative_prompt": "",
    },
    {
        "width": 2048,
        "height": 128,
        "image_num": 8,
        "steps": 100,
        "guidance_scale": 30.0,
        "seed": 2**32 - 1,
        "strength": 1.0,
        "clip_skip": 12,
        "prompt": "p" * 1024,
        "negative_prompt": "n" * 1024,
    },
    {
        "width": 0,
        "height": 0,
        "clip_skip": 0,
        "sd_vae": "None",
        "response_image_type": "jpeg",
        "sampler_name": "UniPC",
    },
]


@pytest.mark.parametrize("widgets", EDGES, ids=["low-edges", "high-edges", "server-defaults"])
def test_img2img_edges_pass_every_check(validated, widgets):
    with pytest.raises(validated):
        img2img(photo(), **widgets)


# --------------------------------------------------------------------------- side nodes


@pytest.mark.parametrize("low", [True, False], ids=["low-edges", "high-edges"])
def test_side_node_edges_pass_every_check(validated, low):
    unit = cn_unit(
        strength=0.01 if low else 1.0,
        guidance_start=0.0 if low else 0.99,
        guidance_end=0.01 if low else 1.0,
        preprocessor="none" if low else "depth_leres++",
    )
    ipa = run_node(
        "PPInfraIPAdapter",
        **{
            **defaults("PPInfraIPAdapter"),
            "image": photo(),
            "model_name": "ip-adapter_sd15.bin" if low else "ip-adapter_sdxl.bin",
            "strength": 0.0 if low else 1.0,
        },
    )[0]
    loras = lora_stack(["a", "b", "c", "d", "e"], strength=0.0 if low else 1.0)
    embs = None
    for i in range(1 if low else 5):
        embs = embedding(f"emb_{i}", embs)
    with pytest.raises(validated):
        img2img(photo(), controlnet=unit, ip_adapter=ipa, loras=loras, embeddings=embs)


@pytest.mark.parametrize(
    "widgets,field,words,value",
    [
        ({"strength": 0.0}, "request.controlnet.units[0].strength", ["(0, 1]"], 0.0),
        ({"strength": 1.01}, "request.controlnet.units[0].strength", ["(0, 1]"], 1.01),
        ({"guidance_start": -0.01}, "request.controlnet.units[0].guidance_start", ["[0, 1]"], -0.01),
        ({"guidance_end": 1.01}, "request.controlnet.units[0].guidance_end", ["[0, 1]"], 1.01),
        (
            {"preprocessor": "sobel"},
            "request.controlnet.units[0].preprocessor",
            ["28 documented values"],
            "sobel",
        ),
        (
            {"guidance_start": 0.5, "guidance_end": 0.5},
            "request.controlnet.units[0].guidance_start",
            ["below", "guidance_end", "0.5"],
            0.5,
        ),
        (
            {"guidance_start": 0.8, "guidance_end": 0.2},
            "request.controlnet.units[0].guidance_start",
            ["below", "guidance_end", "0.2"],
            0.8,
        ),
    ],
)
def test_controlnet_unit_refuses(quiet, errors, widgets, field, words, value):
    with pytest.raises(errors.ValidationError) as info:
        cn_unit(**widgets)
    assert_names(info.value, field, words, value)


def test_controlnet_guidance_order_in_validate_inputs_and_linked_values():
    cls = pack_module("nodes").NODE_CLASS_MAPPINGS["PPInfraControlNetUnit"]
    assert "guidance_start" in str(cls.VALIDATE_INPUTS(model_name=CN, guidance_start=0.6, guidance_end=0.4))
    assert cls.VALIDATE_INPUTS(model_name=CN, guidance_start=0.4, guidance_end=0.6) is True
    # ComfyUI passes None for linked inputs: that must not fail the prompt.
    assert cls.VALIDATE_INPUTS(model_name=None, guidance_start=None, guidance_end=0.4) is True


def test_second_unit_in_a_chain_is_named_by_its_index(quiet, errors):
    first = cn_unit()
    with pytest.raises(errors.ValidationError) as info:
        cn_unit(controlnet=first, guidance_start=0.9, guidance_end=0.1)
    assert "request.controlnet.units[1].guidance_start" in str(info.value)


@pytest.mark.parametrize(
    "widgets,field,words,value",
    [
        (
            {"model_name": "ip-adapter_sd21.bin"},
            "request.ip_adapters[0].model_name",
            ["'ip-adapter_sd15.bin'", "'ip-adapter_sdxl.bin'"],
            "ip-adapter_sd21.bin",
        ),
        ({"strength": 1.01}, "request.ip_adapters[0].strength", ["[0, 1]"], 1.01),
        ({"strength": -0.01}, "request.ip_adapters[0].strength", ["[0, 1]"], -0.01),
    ],
)
def test_ip_adapter_refuses(quiet, errors, widgets, field, words, value):
    inputs = {**defaults("PPInfraIPAdapter"), "image": photo(), **widgets}
    with pytest.raises(errors.ValidationError) as info:
        run_node("PPInfraIPAdapter", **inputs)
    assert_names(info.value, field, words, value)


def test_lora_strength_just_outside(quiet, errors):
    with pytest.raises(errors.ValidationError) as info:
        lora_stack(["add_detail_44319"], strength=1.01)
    assert_names(info.value, "request.loras[0].strength", ["[0, 1]"], 1.01)
    with pytest.raises(errors.ValidationError):
        lora_stack(["add_detail_44319"], strength=-0.01)


def test_six_loras_across_chained_stacks(quiet, errors):
    names = ["add_detail_44319", "more_details_59655", "lora_a", "lora_b", "lora_c"]
    five = lora_stack(names[:3], chain=lora_stack(names[3:]))
    assert len(five) == 5  # the limit itself is fine
    with pytest.raises(errors.ValidationError) as info:
        lora_stack(["one_too_many"], chain=five)
    assert_names(info.value, "request.loras", ["at most 5"], "6 entries")


def test_six_embeddings_across_a_chain(quiet, errors):
    chain = None
    for i in range(5):
        chain = embedding(f"emb_{i}", chain)
    with pytest.raises(errors.ValidationError) as info:
        embedding("emb_5", chain)
    assert_names(info.value, "request.embeddings", ["at most 5"], "6 entries")


def test_chain_values_are_not_mutated(quiet):
    first = lora_stack(["add_detail_44319"])
    second = lora_stack(["more_details_59655"], chain=first)
    assert len(first) == 1 and len(second) == 2 and second[0] == first[0]


def test_foreign_value_on_a_chain_socket(quiet, errors):
    with pytest.raises(errors.ValidationError) as info:
        img2img(photo(), loras=[("add_detail_44319", 0.5)])
    assert "loras" in str(info.value)


# --------------------------------------------------------------------------- tensors

BAD_SHAPES = [(128, 128), (1, 128, 128, 2), (1, 128, 128, 5), (0, 128, 128, 3), (1, 1, 128, 128, 3)]


@pytest.mark.parametrize("shape", BAD_SHAPES, ids=[str(s) for s in BAD_SHAPES])
def test_wrong_input_tensor_shape(quiet, errors, node_client, shape):
    with pytest.raises(errors.ValidationError) as info:
        img2img(torch.zeros(shape))
    assert "image" in str(info.value) and str(shape[-1]) in str(info.value)


@pytest.mark.parametrize("shape", [(1, 64, 64, 2), (64, 64)])
def test_wrong_side_tensor_shape(quiet, errors, node_client, shape):
    unit = cn_unit(image=torch.zeros(shape))
    with pytest.raises(errors.ValidationError) as info:
        img2img(photo(), controlnet=unit)
    assert "request.controlnet.units[0]" in str(info.value)
    ipa = run_node("PPInfraIPAdapter", **{**defaults("PPInfraIPAdapter"), "image": torch.zeros(shape)})[0]
    with pytest.raises(errors.ValidationError) as info:
        img2img(photo(), ip_adapter=ipa)
    assert "request.ip_adapters[0]" in str(info.value)


def test_side_batch_that_does_not_pair(quiet, errors, node_client):
    unit = cn_unit(image=photo(batch=2))
    with pytest.raises(errors.ValidationError) as info:
        img2img(photo(batch=3), controlnet=unit)
    assert_names(info.value, "request.controlnet.units[0].image", ["batch of 1", "3"], "a batch of 2")


def test_one_and_four_channels_are_accepted(node_client, env):
    gray = photo()[..., :1]
    rgba = torch.cat([photo(), torch.ones(1, 128, 128, 1)], dim=-1)
    images, _, _ = img2img(gray)
    assert tuple(images.shape) == (1, 128, 128, 3)
    images, _, _ = img2img(rgba)
    assert tuple(images.shape) == (1, 128, 128, 3)


# --------------------------------------------------------------------------- image sizes


def _sent_image(body: dict, path=("request", "image_base64")) -> Image.Image:
    value = body
    for key in path:
        value = value[key]
    return Image.open(io.BytesIO(base64.b64decode(value)))


def test_images_over_2048_px_are_downscaled_not_refused(node_client, env, caplog):
    caplog.set_level(logging.WARNING)
    wide = torch.from_numpy(np.stack([np.tile(photo()[0].numpy(), (8, 17, 1))[:1024, :2100]]))  # 2100x1024
    unit = cn_unit(image=torch.from_numpy(np.tile(photo()[0].numpy(), (17, 4, 1))[None, :2176, :512]))
    images, _, _ = img2img(wide, controlnet=unit)
    assert tuple(images.shape) == (1, 128, 128, 3)
    (body,) = env.submits
    main = _sent_image(body)
    assert main.size == (2048, round(1024 * 2048 / 2100))
    control = _sent_image(body["request"]["controlnet"]["units"][0], ("image_base64",))
    assert control.size == (round(512 * 2048 / 2176), 2048)
    assert "downscaled" in caplog.text


def test_images_over_the_size_limit_are_refused_before_sending(quiet, errors, node_client):
    rng = np.random.default_rng(0)

    def noise():  # pure noise: no encoding gets three of these under the request-body limit
        return torch.from_numpy(rng.random((1, 2048, 2048, 3), dtype=np.float32))

    unit = cn_unit(image=noise())
    ipa = run_node("PPInfraIPAdapter", **{**defaults("PPInfraIPAdapter"), "image": noise()})[0]
    with pytest.raises(errors.ValidationError) as info:
        img2img(noise(), controlnet=unit, ip_adapter=ipa)
    assert "bytes" in str(info.value) and "2048x2048" in str(info.value)


# --------------------------------------------------------------------------- key


def test_missing_key_stops_the_node_saying_where_to_put_one(quiet, errors, monkeypatch, isolated_env):
    monkeypatch.delenv("PPINFRA_API_KEY", raising=False)
    with pytest.raises(errors.ConfigError) as info:
        img2img(photo())
    text = str(info.value)
    assert "PPINFRA_API_KEY" in text and str(isolated_env / "config.json") in text
