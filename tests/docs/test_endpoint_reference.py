"""docs/endpoints.md (and its twin) read the endpoint table and the limits: regenerate when either changes."""

from __future__ import annotations

from dataclasses import replace

from ppinfra import endpoints, limits
from tools import endpoint_reference


def test_the_endpoint_reference_is_fresh():
    assert endpoint_reference.main(["--check"]) == 0, "run `python tools/endpoint_reference.py`"


def test_the_reference_reads_the_table_not_a_copy(monkeypatch):
    """Break: hard-code a range or a path in the page generator."""
    before = endpoint_reference.render("en")
    lim = limits.ENDPOINT_LIMITS["upscale"]["request.scale_factor"]
    monkeypatch.setitem(limits.ENDPOINT_LIMITS["upscale"], "request.scale_factor", replace(lim, max=3))
    monkeypatch.setitem(
        endpoints.ENDPOINTS,
        "txt2img",
        replace(endpoints.ENDPOINTS["txt2img"], images_per_minute={"novita": 33}),
    )
    after = endpoint_reference.render("en")
    assert "(1, 3]" in after and "(1, 3]" not in before
    assert "novita 33, ppinfra not listed" in after


def test_every_endpoint_and_its_price_source_are_on_both_pages():
    for lang, path in endpoint_reference.PAGES.items():
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        for ep in endpoints.ENDPOINTS.values():
            assert f"POST {ep.path}" in text, (lang, ep.name)
        assert "inpainting_mask_invert" in text
