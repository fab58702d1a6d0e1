"""PPInfra Inpaint against the strict sandbox over real sockets: ComfyUI masks reach the wire
white-on-black at the image's size, only masked pixels change, the 0/1 fields travel as integers,
and bad inputs never leave the machine."""

from __future__ import annotations

import base64
import io
import logging

import numpy as np
import pytest
import requests
import torch
from PIL import Image

from helpers import SANDBOX_KEY
from tools.node_driver import defaults, pack_module, photo, run_node

pytestmark = pytest.mark.usefixtures("no_background_refresh")
NODE = "PPInfraInpaint"


def inpainting_checkpoint(srv) -> str:
    """An inpainting checkpoint, found the way the pack's list finds one (filter.is_inpainting=true)."""
    r = requests.get(
        srv.base_url + "/v3/model",
        headers={"Authorization": f"Bearer {SANDBOX_KEY}"},
        timeout=10,
        params={"filter.types": "checkpoint", "filter.is_inpainting": "true", "pagination.limit": 100},
    )
    return next(m["sd_name"] for m in r.json()["models"] if m["status"] == 1)


def right_half(h=64, w=64, b=1) -> torch.Tensor:
    mask = torch.zeros((b, h, w), dtype=torch.float32)
    mask[:, :, w // 2 :] = 1.0
    return mask


def inpaint(env, image, mask, **widgets):
    inputs = defaults(NODE)
    inputs.update(model_name=inpainting_checkpoint(env), prompt="a red door", seed=5, unique_id="9")
    inputs.update(widgets)
    return run_node(NODE, image=image, mask=mask, **inputs)


def wire_mask(body) -> np.ndarray:
    im = Image.open(io.BytesIO(base64.b64decode(body["request"]["mask_image_base64"])))
    return np.asarray(im.convert("L"))


def test_wire_fields_mask_polarity_and_untouched_pixels(node_client, env):
    image = photo(1, 64)
    images, seed, _ = inpaint(env, image, right_half(), response_image_type="png")
    (body,) = env.submitted("inpainting")
    req = dict(body["request"])
    sent_image = Image.open(io.BytesIO(base64.b64decode(req.pop("image_base64"))))
    mask = wire_mask(body)
    req.pop("mask_image_base64")
    assert body["extra"] == {"response_image_type": "png"}
    assert req == {
        "model_name": inpainting_checkpoint(env),
        "prompt": "a red door",
        "image_num": 1,
        "steps": 20,
        "guidance_scale": 7.5,
        "sampler_name": "Euler a",
        "seed": 5,
        "strength": 1.0,
        "mask_blur": 0,
        "inpainting_full_res": 0,
        "inpainting_full_res_padding": 8,
        "inpainting_mask_invert": 0,
        "initial_noise_multiplier": 0.5,
    }
    for name in ("inpainting_full_res", "inpainting_mask_invert"):
        assert type(req[name]) is int  # the page's integer type, not a JSON boolean
    # The mask arrives with the image's size; 1.0 in the ComfyUI mask is white (repaint).
    assert sent_image.size == (64, 64) and mask.shape == (64, 64)
    assert (mask[:, 32:] == 255).all() and (mask[:, :32] == 0).all()
    # Unmasked pixels come back untouched, masked ones repainted.
    assert tuple(images.shape) == (1, 64, 64, 3) and seed == 5
    diff = (images[0] - image[0]).abs()
    assert float(diff[:, :32].max()) <= 1.0 / 255 + 1e-6
    assert float(diff[:, 32:].mean()) > 0.02


def test_flags_go_out_as_integers_one_and_invert_flips_the_repainted_half(node_client, env):
    image = photo(1, 64, seed=3)
    images, _, _ = inpaint(
        env,
        image,
        right_half(),
        inpainting_mask_invert=True,
        inpainting_full_res=True,
        inpainting_full_res_padding=32,
        mask_blur=4,
        strength=0.6,
        initial_noise_multiplier=1.2,
        negative_prompt="text",
        clip_skip=2,
    )
    req = env.submitted("inpainting")[0]["request"]
    assert (req["inpainting_mask_invert"], req["inpainting_full_res"]) == (1, 1)
    assert type(req["inpainting_mask_invert"]) is int and type(req["inpainting_full_res"]) is int
    assert (req["inpainting_full_res_padding"], req["mask_blur"], req["strength"]) == (32, 4, 0.6)
    assert (req["initial_noise_multiplier"], req["negative_prompt"], req["clip_skip"]) == (1.2, "text", 2)
    diff = (images[0] - image[0]).abs()
    assert float(diff[:, 32:].max()) <= 1.0 / 255 + 1e-6  # inverted: the black half is repainted
    assert float(diff[:, :32].mean()) > 0.02


def test_a_mask_of_another_size_is_resized_to_the_image_and_the_node_says_so(node_client, env, caplog):
    bridge = pack_module("nodes.comfy_bridge")
    texts = []
    original = bridge.send_status
    bridge.send_status = lambda text, node_id: texts.append(text)
    try:
        with caplog.at_level(logging.WARNING, logger="ppinfra"):
            inpaint(env, photo(1, 64), right_half(16, 16)[0])  # a [H, W] mask, a quarter of the size
    finally:
        bridge.send_status = original
    mask = wire_mask(env.submitted("inpainting")[0])
    assert mask.shape == (64, 64)
    assert (mask[:, 34:] == 255).all() and (mask[:, :30] == 0).all()
    assert set(np.unique(mask)) <= {0, 255}  # thresholded: no grey seam
    said = "mask is 16x16 but the image is 64x64: resized to the image (bilinear, then thresholded at 0.5)"
    assert any(said in t for t in texts), texts
    assert said in caplog.text


def test_one_mask_serves_a_batch_and_a_mask_per_image_pairs(node_client, env):
    images, _, _ = inpaint(env, photo(2, 64), right_half(b=1))
    assert tuple(images.shape) == (2, 64, 64, 3)
    masks = [wire_mask(b) for b in env.submitted("inpainting")]
    assert len(masks) == 2 and all((m[:, 32:] == 255).all() for m in masks)
    per_image = torch.stack([right_half()[0], 1.0 - right_half()[0]])
    inpaint(env, photo(2, 64, seed=7), per_image)
    second = sorted((wire_mask(b) for b in env.submitted("inpainting")[2:]), key=lambda m: int(m[0, 0]))
    assert (second[0][:, 32:] == 255).all() and (second[1][:, :32] == 255).all()


def test_mask_batch_mismatch_is_refused_before_any_request(node_client, env, errors):
    with pytest.raises(errors.ValidationError) as info:
        inpaint(env, photo(3, 64), right_half(b=2))
    err = info.value
    assert err.field == "mask" and err.value == "a batch of 2" and "3" in err.limit
    assert "image batch of 3" in str(err)
    assert env.submitted("inpainting") == []


@pytest.mark.parametrize(
    "widgets, field, value",
    [
        (dict(strength=1.5), "request.strength", 1.5),
        (dict(mask_blur=65), "request.mask_blur", 65),
        (dict(inpainting_full_res_padding=300), "request.inpainting_full_res_padding", 300),
        (dict(initial_noise_multiplier=2.0), "request.initial_noise_multiplier", 2.0),
        (dict(inpainting_mask_invert=2), "request.inpainting_mask_invert", 2),
        (dict(image_num=0), "request.image_num", 0),
        (dict(prompt=""), "request.prompt", ""),
        (dict(sampler_name="euler"), "request.sampler_name", "euler"),
    ],
)
def test_bad_inputs_are_refused_before_any_request(node_client, env, errors, widgets, field, value):
    with pytest.raises(errors.ValidationError) as info:
        inpaint(env, photo(1, 64), right_half(), **widgets)
    assert info.value.field == field and info.value.value == value
    assert field in str(info.value) and info.value.limit in str(info.value)
    assert env.submitted("inpainting") == []


def test_model_list_shows_inpainting_checkpoints(env):
    catalog = pack_module("nodes.catalog")
    widgets = pack_module("nodes.widgets")
    # Before the filtered list is fetched: checkpoint names that say "inpaint",
    # from the cached checkpoint list.
    cat = catalog.catalog()
    from ppinfra.models import ModelInfo

    cat._write_cache(
        "checkpoint",
        [
            ModelInfo(n, "checkpoint", False)
            for n in ("dreamshaper_8_93211.safetensors", "dreamshaper_8Inpainting.safetensors")
        ],
    )
    assert catalog.inpainting_names() == ["dreamshaper_8Inpainting.safetensors"]

    # Once fetched with filter.is_inpainting=true, that list is the one shown.
    def asked():
        return [r.query for r in env.requests if r.path == "/v3/model"]

    before = len(asked())
    assert catalog.refresh_now(catalog.INPAINTING, 10)
    fetched = asked()[before:]
    assert fetched and all(
        q.get("filter.is_inpainting") == "true" and q.get("filter.types") == "checkpoint" for q in fetched
    )
    listed = catalog.inpainting_names()
    assert inpainting_checkpoint(env) in listed and all("inpainting" in n for n in listed)
    spec = widgets.model_input("checkpoint", "tip", inpainting=True)
    assert spec[1]["remote"]["route"] == "/ppinfra/models/checkpoint?inpainting=1"
    assert spec[0] == sorted(listed, key=str.lower) or set(spec[0]) <= set(listed)
