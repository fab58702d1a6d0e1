"""Render the endpoint reference (docs/endpoints.md and its Chinese twin) from the endpoint table and limits.

    python tools/endpoint_reference.py           # rewrite the blocks
    python tools/endpoint_reference.py --check   # exit 1 when a block is stale

Everything in the block comes from :data:`ppinfra.endpoints.ENDPOINTS` and
:data:`ppinfra.limits.ENDPOINT_LIMITS`: path, images-per-minute defaults per host,
side inputs, each field's documented range, and the estimate's price formula.
Nothing is restated by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ppinfra.endpoints import ENDPOINTS  # noqa: E402
from ppinfra.limits import INPAINT_MAX_PIXELS, IMAGE_MAX_SIDE  # noqa: E402

START = "<!-- endpoint-reference:start -->"
END = "<!-- endpoint-reference:end -->"
PAGES = {
    "en": os.path.join(ROOT, "docs", "endpoints.md"),
    "zh": os.path.join(ROOT, "docs", "endpoints.zh.md"),
}
HOSTS = ("novita", "ppinfra", "ppio")
WORDS = {
    "en": {
        "path": "Path",
        "ipm": "Images per minute (base plan)",
        "sides": "Side inputs",
        "none": "none",
        "unlisted": "not listed",
        "images": "Uploads",
        "field": "Field",
        "range": "Documented range",
        "default": "Default",
        "price": "Estimate per image (USD)",
        "work": {"upscale": "scale_factor"},
        "side": f"each side <= {IMAGE_MAX_SIDE} px",
        "pixels": f"<= {INPAINT_MAX_PIXELS} pixels",
        "optional": "omitted when not set",
    },
    "zh": {
        "path": "路径",
        "ipm": "每分钟图片数（基础套餐）",
        "sides": "可接的侧输入",
        "none": "无",
        "unlisted": "未列出",
        "images": "上传图片",
        "field": "字段",
        "range": "文档范围",
        "default": "默认值",
        "price": "每张图估价（美元）",
        "work": {"upscale": "scale_factor"},
        "side": f"每边 <= {IMAGE_MAX_SIDE} 像素",
        "pixels": f"<= {INPAINT_MAX_PIXELS} 像素",
        "optional": "未设置时不发送",
    },
}


def _num(x: float) -> str:
    return f"{x:g}"


def _price_formula(ep, w) -> str:
    # Read the two constants back from the formula itself: price(1, 1, 1) is max(rate, floor) = floor,
    # and price at a huge size is linear in the rate.
    floor = ep.price(1, 1, 1)
    rate = ep.price(10**6, 10**6, 1) / 10**12
    work = w["work"].get(ep.name, "steps")
    return f"max(width × height × {work} × {rate:.3g}, {_num(floor)})"


def render(lang: str) -> str:
    w = WORDS[lang]
    out: List[str] = []
    for ep in ENDPOINTS.values():
        request_type = ep.request_type
        out.append(f"### {ep.label}\n")
        ipm = ", ".join(
            f"{h} {ep.images_per_minute[h]}" if h in ep.images_per_minute else f"{h} {w['unlisted']}"
            for h in HOSTS
        )
        slots = [p for p, _ in request_type.image_slots(_blank(request_type))]
        limit = w["pixels"] if request_type.image_max_pixels else w["side"]
        out.append(f"- {w['path']}: `POST {ep.path}`")
        out.append(f"- {w['ipm']}: {ipm}")
        out.append(f"- {w['sides']}: {', '.join(ep.side_inputs) or w['none']}")
        out.append(
            f"- {w['images']}: {', '.join(f'`{s}`' for s in slots) or w['none']}"
            + (f" ({limit})" if slots else "")
        )
        out.append(f"- {w['price']}: `{_price_formula(ep, w)}`\n")
        out.append(f"| {w['field']} | {w['range']} | {w['default']} |")
        out.append("|---|---|---|")
        for field, lim in ep.limits.items():
            default = "" if lim.default in (None, "") else f"`{lim.default}`"
            rng = lim.describe() + (f" ({w['optional']})" if lim.nullable else "")
            if lim.kind == "enum" and len(lim.options) > 6:
                rng = ", ".join(f"`{o}`" for o in lim.options)
            out.append(f"| `{field}` | {rng} | {default} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _blank(request_type):
    """An instance with every field at a placeholder, only to ask it for its upload slots."""
    import dataclasses

    values = {}
    for f in dataclasses.fields(request_type):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            values[f.name] = None
    return request_type(**values)


def update(path: str, lang: str, check: bool) -> bool:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    new = f"{head}{START}\n{render(lang)}{END}{tail}"
    if new == text:
        return True
    if not check:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(new)
    return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report whether the blocks are fresh")
    args = ap.parse_args(argv)
    stale = [path for lang, path in PAGES.items() if not update(path, lang, args.check)]
    if stale:
        print(("stale: " if args.check else "rewrote: ") + ", ".join(stale))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
