"""Every documented limit at both edges and just outside, read from the limits table itself."""

from __future__ import annotations

import json

import pytest

from helpers import base_request, png_b64
from ppinfra.errors import ValidationError
from ppinfra.limits import LIMITS, PREPROCESSORS, SAMPLERS
from ppinfra.request import Embedding, Lora
from ppinfra.img2img_request import ControlNetUnit, IPAdapter


def _unit(**kw):
    args = dict(model_name="control_v11p_sd15_canny", image_base64=png_b64(seed=1))
    args.update(kw)
    return ControlNetUnit(**args)


def _adapter(**kw):
    args = dict(model_name="ip-adapter_sd15.bin", image_base64=png_b64(seed=2))
    args.update(kw)
    return IPAdapter(**args)


# field path -> a function building a request with that field set to `v`
BUILD = {
    "request.width": lambda v: base_request(width=v),
    "request.height": lambda v: base_request(height=v),
    "request.image_num": lambda v: base_request(image_num=v),
    "request.steps": lambda v: base_request(steps=v),
    "request.guidance_scale": lambda v: base_request(guidance_scale=v),
    "request.seed": lambda v: base_request(seed=v),
    "request.clip_skip": lambda v: base_request(clip_skip=v),
    "request.strength": lambda v: base_request(strength=v),
    "request.loras[].strength": lambda v: base_request(loras=(Lora("add_detail_44319", v),)),
    "request.ip_adapters[].strength": lambda v: base_request(ip_adapters=(_adapter(strength=v),)),
    "request.controlnet.units[].strength": lambda v: base_request(controlnet_units=(_unit(strength=v),)),
    "request.controlnet.units[].guidance_start": lambda v: base_request(
        controlnet_units=(_unit(guidance_start=v, guidance_end=1.0 if v < 1 else 1.0),)
    ),
    "request.controlnet.units[].guidance_end": lambda v: base_request(
        controlnet_units=(_unit(guidance_start=0.0, guidance_end=v),)
    ),
}
CONCRETE = {
    "request.loras[].strength": "request.loras[0].strength",
    "request.ip_adapters[].strength": "request.ip_adapters[0].strength",
    "request.controlnet.units[].strength": "request.controlnet.units[0].strength",
    "request.controlnet.units[].guidance_start": "request.controlnet.units[0].guidance_start",
    "request.controlnet.units[].guidance_end": "request.controlnet.units[0].guidance_end",
}


def _edge_cases():
    for field, build in BUILD.items():
        lim = LIMITS[field]
        step = 1 if lim.kind == "int" else 0.001
        if lim.min is not None:
            yield field, lim.min + (step if lim.min_exclusive else 0), True
            yield field, lim.min if lim.min_exclusive else lim.min - step, False
        if lim.max is not None:
            yield field, lim.max, True
            yield field, lim.max + step, False


def _num(field, v):
    return int(v) if LIMITS[field].kind == "int" else float(v)


@pytest.mark.parametrize("field,value,ok", list(_edge_cases()))
def test_numeric_edges(field, value, ok):
    value = _num(field, value)
    # guidance_start == 1 cannot be below guidance_end (max 1): the cross rule takes over there.
    if field.endswith("guidance_start") and value >= 1:
        ok = False
    if field.endswith("guidance_end") and value <= 0:
        ok = False
    req = BUILD[field](value)
    if ok:
        req.validate()
        return
    with pytest.raises(ValidationError) as info:
        req.validate()
    err = info.value
    assert err.field in (CONCRETE.get(field, field), "request.controlnet.units[0].guidance_start")
    assert str(value) in str(err) or repr(value) in str(err)
    assert "[" in err.limit or "(" in err.limit or "below" in err.limit


@pytest.mark.parametrize(
    "field,value",
    [
        ("request.width", 512.0),
        ("request.steps", True),
        ("request.guidance_scale", float("nan")),
        ("request.seed", "7"),
        ("request.clip_skip", 2.5),
    ],
)
def test_wrong_types(field, value):
    with pytest.raises(ValidationError) as info:
        BUILD[field](value).validate()
    assert info.value.field == field


@pytest.mark.parametrize(
    "field,make",
    [
        ("request.prompt", lambda n: base_request(prompt="x" * n)),
        ("request.negative_prompt", lambda n: base_request(negative_prompt="x" * n)),
    ],
)
def test_text_lengths(field, make):
    lim = LIMITS[field]
    make(int(lim.min)).validate()
    make(int(lim.max)).validate()
    with pytest.raises(ValidationError) as info:
        make(int(lim.max) + 1).validate()
    assert info.value.field == field and "1024" in str(info.value) and "1025" in str(info.value)
    if lim.min > 0:
        with pytest.raises(ValidationError) as info:
            make(int(lim.min) - 1).validate()
        assert info.value.field == field


@pytest.mark.parametrize(
    "field,make,good",
    [
        ("request.sampler_name", lambda v: base_request(sampler_name=v), SAMPLERS),
        ("extra.response_image_type", lambda v: base_request(response_image_type=v), ("png", "webp", "jpeg")),
        (
            "request.controlnet.units[0].preprocessor",
            lambda v: base_request(controlnet_units=(_unit(preprocessor=v),)),
            PREPROCESSORS,
        ),
        (
            "request.ip_adapters[0].model_name",
            lambda v: base_request(ip_adapters=(_adapter(model_name=v),)),
            ("ip-adapter_sd15.bin", "ip-adapter_sdxl.bin"),
        ),
    ],
)
def test_enums(field, make, good):
    for v in good:
        make(v).validate()
    for bad in ("euler_a", "", "PNG", "none"):
        if bad in good:
            continue
        with pytest.raises(ValidationError) as info:
            make(bad).validate()
        assert info.value.field == field and repr(bad) in str(info.value)


@pytest.mark.parametrize(
    "field,make",
    [
        ("request.loras", lambda n: base_request(loras=tuple(Lora(f"l{i}", 0.5) for i in range(n)))),
        (
            "request.embeddings",
            lambda n: base_request(embeddings=tuple(Embedding(f"e{i}") for i in range(n))),
        ),
        ("request.ip_adapters", lambda n: base_request(ip_adapters=tuple(_adapter() for _ in range(n)))),
    ],
)
def test_counts(field, make):
    top = int(LIMITS[field].max)
    make(top).validate()
    with pytest.raises(ValidationError) as info:
        make(top + 1).validate()
    assert info.value.field == field and f"{top + 1} entries" in str(info.value)


def test_guidance_start_not_below_end():
    with pytest.raises(ValidationError) as info:
        base_request(controlnet_units=(_unit(guidance_start=0.5, guidance_end=0.5),)).validate()
    assert info.value.field == "request.controlnet.units[0].guidance_start" and "guidance_end" in str(
        info.value
    )


def test_images_checked():
    with pytest.raises(ValidationError) as info:
        base_request(image_base64="data:image/png;base64," + png_b64()).validate()
    assert "data:" in str(info.value)
    with pytest.raises(ValidationError) as info:
        base_request(image_base64="!!!notbase64").validate()
    assert info.value.field == "request.image_base64"
    with pytest.raises(ValidationError) as info:
        base_request(controlnet_units=(_unit(image_base64=png_b64(2049, 16)),)).validate()
    assert info.value.field == "request.controlnet.units[0].image_base64" and "2049x16" in str(info.value)
    base_request(image_base64=png_b64(2048, 8)).validate()


def test_body_shape_and_omitted_optionals():
    body = base_request().to_body()
    assert set(body) == {"extra", "request"} and body["extra"] == {}
    assert "clip_skip" not in body["request"] and "strength" not in body["request"]
    full = base_request(
        negative_prompt="",
        sd_vae="v",
        clip_skip=2,
        strength=0.5,
        seed=7,
        loras=(Lora("a", 0.3),),
        embeddings=(Embedding("e"),),
        controlnet_units=(_unit(preprocessor="canny"),),
        ip_adapters=(_adapter(),),
        response_image_type="webp",
    ).to_body()
    r = full["request"]
    assert full["extra"] == {"response_image_type": "webp"}
    assert r["controlnet"]["units"][0]["preprocessor"] == "canny"
    assert r["loras"] == [{"model_name": "a", "strength": 0.3}] and r["embeddings"] == [{"model_name": "e"}]
    assert r["clip_skip"] == 2 and r["strength"] == 0.5 and r["negative_prompt"] == "" and r["seed"] == 7
    redacted = json.dumps(base_request(ip_adapters=(_adapter(),)).redacted())
    assert "base64 chars" in redacted and png_b64() not in redacted
