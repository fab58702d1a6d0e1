"""PPInfra Upscale against the strict sandbox over real sockets: one task per image, a resize of the
input back, out-of-range values and oversize inputs refused before any request, and a host without the
endpoint named."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tools.node_driver import defaults, photo, run_node

NODE = "PPInfraUpscale"


def upscale(image, **widgets):
    inputs = defaults(NODE)
    inputs.update(unique_id="4")
    inputs.update(widgets)
    return run_node(NODE, image=image, **inputs)


def test_wire_carries_the_documented_fields_and_the_result_is_a_resize(node_client, env):
    image = photo(1, 96)
    images, info = upscale(image, model_name="4x-UltraSharp", scale_factor=2.5, response_image_type="png")
    (body,) = env.submitted("upscale")
    req = dict(body["request"])
    sent = Image.open(io.BytesIO(base64.b64decode(req.pop("image_base64"))))
    assert body["extra"] == {"response_image_type": "png"}
    assert req == {"model_name": "4x-UltraSharp", "scale_factor": 2.5}
    assert sent.size == (96, 96)
    assert tuple(images.shape) == (1, 240, 240, 3)
    # The sandbox returns a resize of the input: scaled back down, it matches the input closely.
    back = Image.fromarray((images[0].numpy() * 255).round().astype(np.uint8)).resize(
        (96, 96), Image.BILINEAR
    )
    assert np.abs(np.asarray(back, np.float32) / 255 - image[0].numpy()).mean() < 0.05
    data = json.loads(info)
    assert len(data["task_ids"]) == 1 and "seed" not in json.dumps(data["request"])


def test_a_batch_runs_one_task_per_image_in_order(node_client, env):
    image = torch.cat([photo(1, 64, seed=1), photo(1, 64, seed=2), photo(1, 64, seed=3)])
    images, info = upscale(image, scale_factor=2.0)
    assert tuple(images.shape) == (3, 128, 128, 3)
    assert len(env.submitted("upscale")) == 3 and len(json.loads(info)["task_ids"]) == 3
    for i in range(3):
        small = torch.nn.functional.interpolate(
            images[i : i + 1].permute(0, 3, 1, 2), size=(64, 64), mode="area"
        )
        errs = [float((small[0].permute(1, 2, 0) - image[j]).abs().mean()) for j in range(3)]
        assert int(np.argmin(errs)) == i, errs


@pytest.mark.parametrize(
    "widgets, field, limit, value",
    [
        (dict(scale_factor=1.0), "request.scale_factor", "(1, 4]", 1.0),
        (dict(scale_factor=4.5), "request.scale_factor", "(1, 4]", 4.5),
        (dict(model_name="RealESRGAN_x2plus"), "request.model_name", "'4x-UltraSharp'", "RealESRGAN_x2plus"),
        (dict(response_image_type="gif"), "extra.response_image_type", "'png'", "gif"),
    ],
)
def test_bad_values_are_refused_before_any_request(node_client, env, errors, widgets, field, limit, value):
    with pytest.raises(errors.ValidationError) as info:
        upscale(photo(1, 64), **widgets)
    err = info.value
    assert err.field == field and limit in err.limit and err.value == value, str(err)
    assert env.submitted("upscale") == []


def test_an_input_side_over_2048_is_refused_before_encoding(node_client, env, errors):
    image = torch.rand((1, 16, 2049, 3))
    with pytest.raises(errors.ValidationError) as info:
        upscale(image)
    err = info.value
    assert err.field == "request.image_base64" and "2048" in err.limit and err.value == "2049x16"
    assert env.submitted("upscale") == [] and env.requests == []


@pytest.mark.sandbox(provider="ppinfra")
def test_a_host_without_upscale_names_the_host_that_offers_it(node_client, env, errors):
    with pytest.raises(errors.EndpointNotOfferedError) as info:
        upscale(photo(1, 64))
    text = str(info.value)
    assert "does not offer upscale" in text and "novita" in text
    assert len(env.submitted("upscale")) == 1  # one try: a 404 is not retried
