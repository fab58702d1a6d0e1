"""The one request path (ppinfra/binding.py): a template checked once, each upload encoded once,
decoded never."""

from __future__ import annotations

import pytest
from PIL import Image

import ppinfra.images as images_mod
import ppinfra.request as request_mod
from ppinfra import errors
from ppinfra.binding import Binder, bind_batch
from ppinfra.inpainting_request import InpaintingRequest
from ppinfra.img2img_request import ControlNetUnit, Img2ImgRequest
from ppinfra.txt2img_request import Txt2ImgRequest


@pytest.fixture
def spies(monkeypatch):
    """Counts: images handed to the encoder, and uploads decoded to learn their size."""
    seen = {"encoded": [], "decoded": 0, "fields": 0}
    real_encode, real_decode = images_mod.encode_uploads, request_mod._decode_size
    real_fields = Img2ImgRequest.validate_fields

    def encode(items, *a, **kw):
        seen["encoded"].extend(label for label, _ in items)
        return real_encode(items, *a, **kw)

    def decode(*a, **kw):
        seen["decoded"] += 1
        return real_decode(*a, **kw)

    def fields(self, **kw):
        seen["fields"] += 1
        return real_fields(self, **kw)

    monkeypatch.setattr(images_mod, "encode_uploads", encode)
    monkeypatch.setattr(request_mod, "_decode_size", decode)
    monkeypatch.setattr(Img2ImgRequest, "validate_fields", fields)
    return seen


def _img(w=300, h=200, colour=(10, 20, 30)):
    return Image.new("RGB", (w, h), colour)


def test_a_batch_encodes_each_upload_once_checks_fields_once_and_decodes_nothing(spies):
    template = Img2ImgRequest(
        model_name="m",
        image_base64=None,
        prompt="p",
        width=0,
        height=0,
        controlnet_units=(ControlNetUnit("cn", None, 1.0, "canny"),),
    )
    inputs = {
        "request.image_base64": [_img(), _img(colour=(1, 2, 3)), _img(colour=(4, 5, 6))],
        "request.controlnet.units[0].image_base64": [_img()],
    }
    reqs = bind_batch(template, inputs)
    for r in reqs:
        r.validate()  # what the client does before sending: nothing left to check
        r.to_json_bytes()
    assert len(reqs) == 3 and [(r.width, r.height) for r in reqs] == [(304, 200)] * 3
    assert sorted(spies["encoded"]) == sorted(
        ["request.controlnet.units[0].image_base64", *(f"request.image_base64 (input {i})" for i in range(3))]
    )
    assert spies["decoded"] == 0 and spies["fields"] == 1
    shared = {r.controlnet_units[0].image_base64 for r in reqs}
    assert len(shared) == 1  # one encoding, in every request


def test_raw_base64_from_elsewhere_is_still_decoded_and_checked(spies):
    from helpers import png_b64

    req = Img2ImgRequest(model_name="m", image_base64=png_b64(), prompt="p", width=512, height=512)
    req.validate()
    req.validate()  # once checked, never again
    assert spies["decoded"] == 1


def test_a_side_batch_that_matches_neither_one_nor_b_is_refused_naming_it():
    template = Img2ImgRequest(
        model_name="m",
        image_base64=None,
        prompt="p",
        width=512,
        height=512,
        controlnet_units=(ControlNetUnit("cn", None, 1.0, "canny"),),
    )
    with pytest.raises(errors.ValidationError) as info:
        bind_batch(
            template,
            {"request.image_base64": [_img()] * 3, "request.controlnet.units[0].image_base64": [_img()] * 2},
        )
    assert info.value.field == "request.controlnet.units[0].image" and "a batch of 2" in str(info.value)


def test_bad_fields_fail_before_any_image_is_encoded(spies):
    template = Img2ImgRequest(model_name="m", image_base64=None, prompt="p", width=512, height=512, steps=0)
    with pytest.raises(errors.ValidationError, match="request.steps"):
        bind_batch(template, {"request.image_base64": [_img()]})
    assert spies["encoded"] == []


def test_a_mask_of_another_size_is_refused_by_the_request_itself():
    binder = Binder(InpaintingRequest(model_name="m", image_base64=None, mask_image_base64=None, prompt="p"))
    with pytest.raises(errors.ValidationError) as info:
        binder.bind({"request.image_base64": _img(300, 200), "request.mask_image_base64": _img(200, 200)})
    assert info.value.field == "request.mask_image_base64" and "300x200" in str(info.value)


def test_masks_are_sent_lossless():
    import numpy as np

    big = Image.fromarray(np.random.default_rng(0).integers(0, 256, (900, 900, 3), dtype=np.uint8), "RGB")
    binder = Binder(InpaintingRequest(model_name="m", image_base64=None, mask_image_base64=None, prompt="p"))
    req = binder.bind({"request.image_base64": big, "request.mask_image_base64": big})
    import base64

    assert base64.b64decode(req.mask_image_base64)[:4] == b"\x89PNG"
    assert base64.b64decode(req.image_base64)[:2] == b"\xff\xd8"  # a photo-like input may go as JPEG


def test_an_endpoint_without_uploads_binds_to_its_template():
    (req,) = bind_batch(Txt2ImgRequest(model_name="m", prompt="p", width=512, height=768), {})
    assert req.output_size() == (512, 768)
    with pytest.raises(
        errors.ValidationError, match="no image on this endpoint|an image this endpoint takes"
    ):
        Binder(Txt2ImgRequest(model_name="m", prompt="p", width=512, height=512)).bind(
            {"request.image_base64": _img()}
        )
