"""The upload encoding policy: large photo-like inputs go up as near-lossless JPEG (>= 40 dB PSNR),
control maps, small images and non-photos stay lossless PNG, and PPINFRA_LOSSLESS_UPLOADS=1 forces PNG.
Checked on the encoder and on what the sandbox receives over real sockets through the node."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import load_pack
from helpers import photo_like
from ppinfra import images
from ppinfra.images import ENV_LOSSLESS, encode_uploads, upload_format

pytestmark = pytest.mark.usefixtures("no_forced_lossless")

MAIN = "request.image_base64"
CONTROL = "request.controlnet.units[0].image_base64"
IP = "request.ip_adapters[0].image_base64"


def photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    return (photo_like(w, h, seed=seed) * 255 + 0.5).astype(np.uint8)


def decoded(b64: str) -> Image.Image:
    im = Image.open(io.BytesIO(base64.b64decode(b64)))
    im.load()
    return im


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def png_bytes(arr: np.ndarray) -> int:
    buf = io.BytesIO()
    Image.fromarray(arr).save(
        buf, format="PNG", compress_level=1, compress_type=3
    )  # the lossless path's settings
    return buf.tell()


# --------------------------------------------------------------------------- the encoder


@pytest.mark.parametrize("field", [MAIN, IP, "request.image_base64 (input 3)"])
def test_large_photo_goes_lossy_above_40_db(field):
    # The helpers' photo carries heavy sensor noise (sigma 15/255): the hardest case for a lossy codec.
    src = photo(2048, 2048, seed=1)
    (b64,) = encode_uploads([(field, Image.fromarray(src))])
    im = decoded(b64)
    assert im.format == "JPEG" and im.size == (2048, 2048) and im.mode == "RGB"
    assert psnr(src, np.asarray(im)) >= 40.0
    assert len(base64.b64decode(b64)) < 0.6 * png_bytes(src)


def test_control_map_stays_lossless_even_when_photo_like():
    src = photo(1024, 1024, seed=2)
    (b64,) = encode_uploads([(CONTROL, Image.fromarray(src))])
    im = decoded(b64)
    assert im.format == "PNG" and np.array_equal(np.asarray(im), src)


def test_small_photo_stays_lossless():
    src = photo(500, 500, seed=3)  # under 512x512 pixels
    (b64,) = encode_uploads([(MAIN, Image.fromarray(src))])
    im = decoded(b64)
    assert im.format == "PNG" and np.array_equal(np.asarray(im), src)
    assert upload_format(MAIN, Image.fromarray(photo(512, 512))) == "jpeg"  # the threshold itself goes lossy


def test_large_image_with_few_colours_stays_lossless():
    # Line art / an edge map used as the main image: crisp lines, few colours, PNG is small anyway.
    src = np.full((1024, 1024, 3), 255, np.uint8)
    src[::16, :, :] = 0
    src[:, 5::23, 1] = 40
    (b64,) = encode_uploads([(MAIN, Image.fromarray(src))])
    im = decoded(b64)
    assert im.format == "PNG" and np.array_equal(np.asarray(im), src)


def test_forced_lossless_by_env_or_argument(monkeypatch):
    src = photo(1024, 1024, seed=4)
    (b64,) = encode_uploads([(MAIN, Image.fromarray(src))], lossless=True)
    assert decoded(b64).format == "PNG" and np.array_equal(np.asarray(decoded(b64)), src)
    monkeypatch.setenv(ENV_LOSSLESS, "1")
    (b64,) = encode_uploads([(MAIN, Image.fromarray(src))])
    assert decoded(b64).format == "PNG" and np.array_equal(np.asarray(decoded(b64)), src)
    monkeypatch.setenv(ENV_LOSSLESS, "0")
    (b64,) = encode_uploads([(MAIN, Image.fromarray(src))])
    assert decoded(b64).format == "JPEG"


def test_same_image_encodes_to_the_same_bytes():
    # The result cache keys on the exact body: an unchanged input must encode identically every time.
    src = Image.fromarray(photo(1024, 768, seed=5))
    assert encode_uploads([(MAIN, src)]) == encode_uploads([(MAIN, src.copy())])


def test_alpha_is_dropped_keeping_the_colour_channels():
    rgb = photo(1024, 1024, seed=6)
    rgba = np.dstack([rgb, np.linspace(0, 255, 1024 * 1024).reshape(1024, 1024).astype(np.uint8)])
    lossy, lossless = encode_uploads(
        [(MAIN, Image.fromarray(rgba, "RGBA")), (CONTROL, Image.fromarray(rgba, "RGBA"))]
    )
    assert decoded(lossy).mode == "RGB" and psnr(rgb, np.asarray(decoded(lossy))) >= 40.0
    assert decoded(lossless).mode == "RGB" and np.array_equal(np.asarray(decoded(lossless)), rgb)


def test_over_the_body_cap_still_falls_back_to_smaller_jpeg():
    # The request-body cap comes first: an image that fits no other way goes as JPEG of falling quality.
    src = photo(2048, 2048, seed=7)
    (b64,) = encode_uploads([(MAIN, Image.fromarray(src))], body_limit=2_500_000)
    im = decoded(b64)
    assert im.format == "JPEG" and im.size == (2048, 2048) and len(b64) <= 2_500_000


def test_thresholds_are_the_documented_numbers():
    assert (images.SMALL_PIXELS, images.PHOTO_MIN_COLOURS, images.JPEG_FLAT_STEP) == (512 * 512, 8192, 4)


# --------------------------------------------------------------------------- what the server receives


def test_node_sends_photo_lossy_and_control_map_lossless(sandbox, api_key, isolated_env, monkeypatch):
    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("PPINFRA_API_KEY", api_key)
    monkeypatch.setenv("PPINFRA_RESULT_CACHE", "0")
    nodes = load_pack().NODE_CLASS_MAPPINGS
    # Three images share the 10 MB body: the control map's PNG (768x768, ~1.5 MB) fits its share.
    main, control, ref = photo(1024, 1024, seed=8), photo(768, 768, seed=9), photo(768, 768, seed=10)

    def tensor(a):
        return torch.from_numpy(a.astype(np.float32) / 255.0)[None]

    import asyncio

    def run(node_id, **inputs):
        cls = nodes[node_id]
        out = getattr(cls(), cls.FUNCTION)(**inputs)
        return asyncio.run(out) if asyncio.iscoroutine(out) else out

    (unit,) = run(
        "PPInfraControlNetUnit",
        image=tensor(control),
        model_name="control_v11p_sd15_canny",
        strength=1.0,
        preprocessor="canny",
        guidance_start=0.0,
        guidance_end=1.0,
    )
    (adapter,) = run("PPInfraIPAdapter", image=tensor(ref), model_name="ip-adapter_sd15.bin", strength=0.5)
    run(
        "PPInfraImg2Img",
        image=tensor(main),
        model_name="dreamshaper_8_93211.safetensors",
        prompt="a harbour",
        negative_prompt="",
        width=128,
        height=128,
        image_num=1,
        steps=20,
        guidance_scale=7.5,
        sampler_name="Euler a",
        seed=3,
        strength=0.75,
        clip_skip=0,
        sd_vae="None",
        response_image_type="png",
        controlnet=unit,
        ip_adapter=adapter,
    )
    (body,) = sandbox.submits
    req = body["request"]
    sent_main = decoded(req["image_base64"])
    sent_control = decoded(req["controlnet"]["units"][0]["image_base64"])
    sent_ref = decoded(req["ip_adapters"][0]["image_base64"])
    assert sent_main.format == "JPEG" and psnr(main, np.asarray(sent_main)) >= 40.0
    assert sent_ref.format == "JPEG" and psnr(ref, np.asarray(sent_ref)) >= 40.0
    assert sent_control.format == "PNG" and np.array_equal(np.asarray(sent_control), control)
    monkeypatch.setenv(ENV_LOSSLESS, "1")
    run(
        "PPInfraImg2Img",
        image=tensor(main),
        model_name="dreamshaper_8_93211.safetensors",
        prompt="a harbour",
        negative_prompt="",
        width=128,
        height=128,
        image_num=1,
        steps=20,
        guidance_scale=7.5,
        sampler_name="Euler a",
        seed=3,
        strength=0.75,
        clip_skip=0,
        sd_vae="None",
        response_image_type="png",
    )
    forced = decoded(sandbox.submits[-1]["request"]["image_base64"])
    assert forced.format == "PNG" and np.array_equal(np.asarray(forced), main)
