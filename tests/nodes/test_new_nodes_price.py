"""The price shown on the nodes before a run: one function (ppinfra/price.py) from the endpoint table's
formulas, served by GET /ppinfra/price (guarded like every route), always labelled an estimate with its
third-party source; and the Inpaint node's model list route (checkpoint?inpainting=1)."""

from __future__ import annotations

import pytest

from ppinfra.endpoints import ENDPOINTS
from ppinfra.errors import ValidationError
from ppinfra.price import ASSUMED_INPUT, estimate_price


def test_estimate_follows_the_endpoint_formulas():
    # txt2img: max(W*H*steps*1.44e-10, 0.001) per image, image_num images per run.
    small = estimate_price("txt2img", {"width": 512, "height": 512, "steps": 20, "image_num": 2})
    assert small.per == "run" and small.images == 2 and not small.assumed_input
    assert small.usd == pytest.approx(2 * 0.001)  # the floor: 512*512*20*1.44e-10 is below it
    big = estimate_price("txt2img", {"width": "1024", "height": "1024", "steps": "30", "image_num": "1"})
    assert big.usd == pytest.approx(1024 * 1024 * 30 * 1.44e-10)
    # Hires fix prices the final size.
    hires = estimate_price(
        "txt2img",
        {
            "width": 512,
            "height": 512,
            "steps": 30,
            "hires_fix": "true",
            "hires_target_width": 2048,
            "hires_target_height": 2048,
        },
    )
    assert (hires.width, hires.height) == (2048, 2048)
    assert hires.usd == pytest.approx(2048 * 2048 * 30 * 1.44e-10)
    # An endpoint that takes an image: per input image; unknown input size -> the assumed 512x512, said so.
    inpaint = estimate_price("inpainting", {"steps": 40, "image_num": 3})
    assert (
        inpaint.per == "input image"
        and inpaint.assumed_input
        and (inpaint.width, inpaint.height) == ASSUMED_INPUT
    )
    assert inpaint.usd == pytest.approx(3 * max(512 * 512 * 40 * 4e-10, 0.0015))
    up = estimate_price("upscale", {"scale_factor": 4})
    assert up.usd == pytest.approx(512 * 512 * 4 * 4e-9) and up.images == 1 and up.assumed_input
    sized = estimate_price("img2img", {"width": 768, "height": 1024, "steps": 25, "image_num": 1})
    assert not sized.assumed_input and sized.usd == pytest.approx(ENDPOINTS["img2img"].price(768, 1024, 25))
    assert estimate_price("img2img", {"width": 0, "height": 0}).assumed_input
    assert "third-party" in small.source and "estimate" in small.source.lower()


@pytest.mark.parametrize(
    "endpoint, values, field",
    [
        ("txt2img", {"steps": "many"}, "steps"),
        ("txt2img", {"width": 99999}, "width"),
        ("txt2img", {"image_num": 9}, "image_num"),
        ("upscale", {"scale_factor": 1}, "scale_factor"),
        ("unknown", {}, "endpoint"),
    ],
)
def test_estimate_refuses_values_out_of_range(endpoint, values, field):
    with pytest.raises(ValidationError) as info:
        estimate_price(endpoint, values)
    assert info.value.field == field


def test_price_route(route_server, isolated_env):
    server = route_server()
    r = server.get("/ppinfra/price?node=PPInfraTxt2Img&width=1024&height=1024&steps=30&image_num=2")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["ok"] and data["estimate"] is True and data["per"] == "run"
    assert data["usd"] == pytest.approx(2 * 1024 * 1024 * 30 * 1.44e-10)
    assert "third-party" in data["source"]
    r = server.get("/ppinfra/price?node=PPInfraUpscale&scale_factor=2")
    assert r.json()["per"] == "input image" and r.json()["assumed_input"] is True
    for path in ("/ppinfra/price?node=PPInfraLoraStack", "/ppinfra/price?node=PPInfraTxt2Img&steps=500"):
        bad = server.get(path)
        assert bad.status_code == 400 and bad.json()["ok"] is False, path
    # Guarded like every route: another site's page is refused.
    assert (
        server.get("/ppinfra/price?node=PPInfraTxt2Img", headers={"Sec-Fetch-Site": "cross-site"}).status_code
        == 403
    )
    assert (
        server.get(
            "/ppinfra/price?node=PPInfraTxt2Img", headers={"Host": f"evil.example:{server.port}"}
        ).status_code
        == 403
    )


def test_inpainting_checkpoint_route(route_server, sandbox, isolated_env, api_key, monkeypatch):
    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("PPINFRA_API_KEY", api_key)
    server = route_server()
    listed = server.get("/ppinfra/models/checkpoint?inpainting=1&refresh=1").json()
    assert listed and all("inpainting" in n for n in listed)
    asked = [r.query for r in sandbox.requests if r.path == "/v3/model"]
    assert any(q.get("filter.is_inpainting") == "true" for q in asked)
    every = server.get("/ppinfra/models/checkpoint").json()  # the plain list is unchanged
    assert "dreamshaper_8_93211.safetensors" in every and len(every) > len(listed)
