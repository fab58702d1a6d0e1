"""The image codec: tensors in, base64 out within the size cap; result files back to float arrays."""

from __future__ import annotations

import base64
import io
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import photo_like
from ppinfra import errors
from ppinfra.images import decode_results, encode_uploads, match_input_size, tensor_to_pils, to_tensor
from ppinfra.limits import REQUEST_BODY_MAX_BYTES


def _decode(b64):
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_tensor_clamped_alpha_dropped_gray_spread():
    t = torch.tensor([[[[-0.5, 0.5, 2.0, 0.3]]]], dtype=torch.float32)  # [1,1,1,4]
    (im,) = tensor_to_pils(t)
    assert im.mode == "RGB" and im.getpixel((0, 0)) == (0, 128, 255)
    nan = torch.full((2, 3, 5, 1), float("nan"))
    ims = tensor_to_pils(nan)
    assert len(ims) == 2 and ims[0].size == (5, 3) and ims[0].getpixel((0, 0)) == (0, 0, 0)


@pytest.mark.parametrize("shape", [(4, 4), (1, 4, 4, 2), (1, 4, 4, 5), (0, 4, 4, 3), (1, 1, 4, 4, 3)])
def test_wrong_shapes_name_the_field(shape):
    with pytest.raises(errors.ImageInputError) as info:
        tensor_to_pils(torch.zeros(shape), field="controlnet.image")
    assert info.value.field == "controlnet.image" and str(shape).replace(" ", "")[:4] in str(
        info.value
    ).replace(" ", "")


def test_oversized_input_downscaled_keeping_aspect(caplog):
    caplog.set_level(logging.WARNING)
    im = Image.fromarray((photo_like(3000, 1500) * 255).astype(np.uint8))
    (b64,) = encode_uploads([("request.image_base64", im)])
    assert _decode(b64).size == (2048, 1024)
    assert "downscaled to 2048x1024" in caplog.text


def test_body_cap_respected_for_large_photos():
    ims = [Image.fromarray((photo_like(2048, 2048, seed=s) * 255).astype(np.uint8)) for s in range(3)]
    out = encode_uploads([(f"img{i}", im) for i, im in enumerate(ims)])
    assert sum(len(b) for b in out) < REQUEST_BODY_MAX_BYTES - 60_000
    assert all(_decode(b).size == (2048, 2048) for b in out)


def test_small_images_stay_lossless_png():
    arr = (photo_like(256, 256) * 255).astype(np.uint8)
    (b64,) = encode_uploads([("x", Image.fromarray(arr))])
    im = _decode(b64)
    assert im.format == "PNG" and np.array_equal(np.asarray(im), arr)


def test_impossible_budget_fails_clearly():
    im = Image.fromarray((np.random.default_rng(0).integers(0, 255, (2048, 2048, 3))).astype(np.uint8))
    with pytest.raises(errors.ImageInputError) as info:
        encode_uploads([("request.image_base64", im)], body_limit=200_000)
    assert info.value.field == "request.image_base64" and "2048x2048" in str(info.value)


@pytest.mark.parametrize(
    "size,expected",
    [
        ((512, 512), (512, 512)),
        ((1000, 750), (1000, 752)),
        ((4096, 2048), (2048, 1024)),
        ((100, 60), (128, 128)),
        ((2050, 10), (2048, 128)),
    ],
)
def test_match_input_size(size, expected):
    assert match_input_size(*size) == expected


def _png(arr, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def test_decode_results_rgb_float_in_order():
    a = np.zeros((8, 6, 3), np.uint8)
    a[..., 0] = 255
    b = np.zeros((8, 6, 4), np.uint8)
    b[..., 2] = 255
    b[..., 3] = 10
    out = decode_results([_png(a), _png(b)])
    assert out.shape == (2, 8, 6, 3) and out.dtype == np.float32
    assert out[0, 0, 0].tolist() == [1.0, 0.0, 0.0] and out[1, 0, 0].tolist() == [0.0, 0.0, 1.0]
    t = to_tensor(out)
    assert t.shape == (2, 8, 6, 3) and t.dtype == torch.float32


def test_decode_refuses_huge_and_truncated():
    big = _png(np.zeros((2049, 2048, 3), np.uint8))
    with pytest.raises(errors.DownloadError) as info:
        decode_results([big])
    assert "2048x2049" in str(info.value)
    good = _png((photo_like(64, 64) * 255).astype(np.uint8))
    with pytest.raises(errors.DownloadError):
        decode_results([good, good[: len(good) // 2]])
    with pytest.raises(errors.DownloadError):
        decode_results([b"not an image"])
