"""Draw a workflow graph as ComfyUI's canvas shows it (Pillow): the example thumbnails and the docs' diagrams.

Used by ``docs/make_examples.py``; the pictures are diagrams of the saved graph, not screenshots.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Tuple

TYPE_COLORS = {
    "IMAGE": (100, 183, 231),
    "MASK": (129, 200, 122),
    "INT": (160, 200, 120),
    "STRING": (200, 160, 120),
    "PPINFRA_CONTROLNET": (0, 214, 160),
    "PPINFRA_LORAS": (230, 130, 90),
    "PPINFRA_EMBEDDINGS": (200, 120, 220),
    "PPINFRA_IP_ADAPTER": (240, 200, 80),
}


def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans%s.ttf" % ("-Bold" if bold else ""),):
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def render(
    ui: Dict[str, Any],
    path: str,
    schema: Callable[[str], tuple],
    display_name: Callable[[str], str],
    inputs_dir: str,
    scale: float = 1.0,
    thumb: Optional[Tuple[int, int]] = None,
) -> None:
    """Draw the graph the way ComfyUI's canvas lays it out: positions, sizes, sockets, wires, widget values.

    ``schema(node_type)`` gives (sockets, widgets, outputs, input options) as in make_examples.py;
    LoadImage nodes show their picture from ``inputs_dir``.
    """
    from PIL import Image, ImageDraw

    nodes = ui["nodes"]
    title_h = 30
    x0 = min(n["pos"][0] for n in nodes) - 40
    y0 = min(n["pos"][1] for n in nodes) - title_h - 40
    x1 = max(n["pos"][0] + n["size"][0] for n in nodes) + 40
    y1 = max(n["pos"][1] + n["size"][1] for n in nodes) + 40
    s = scale
    W, H = int((x1 - x0) * s), int((y1 - y0) * s)
    img = Image.new("RGB", (W, H), (32, 32, 34))
    d = ImageDraw.Draw(img)
    for gx in range(0, W, int(20 * s) or 1):
        d.line([(gx, 0), (gx, H)], fill=(38, 38, 41))
    for gy in range(0, H, int(20 * s) or 1):
        d.line([(0, gy), (W, gy)], fill=(38, 38, 41))
    f_title, f_text = _font(int(15 * s), True), _font(int(12 * s))
    P = lambda x, y: (int((x - x0) * s), int((y - y0) * s))
    byid = {n["id"]: n for n in nodes}
    slot_y = lambda n, i: n["pos"][1] + 14 + i * 22

    for n in nodes:
        x, y = n["pos"]
        w, h = n["size"]
        pack = n["type"].startswith("PPInfra")
        head = (58, 52, 96) if pack else (53, 53, 56)
        d.rounded_rectangle(
            [P(x, y - title_h), P(x + w, y + h)], radius=int(8 * s), fill=(48, 48, 52), outline=(20, 20, 20)
        )
        d.rounded_rectangle([P(x, y - title_h), P(x + w, y)], radius=int(8 * s), fill=head)
        d.rectangle([P(x, y - 8), P(x + w, y)], fill=head)
        d.ellipse([P(x + 10, y - 19), P(x + 18, y - 11)], fill=(150, 150, 150))
        d.text(
            P(x + 26, y - 23), n.get("title") or display_name(n["type"]), font=f_title, fill=(230, 230, 230)
        )
        rows = max(len(n["inputs"]), len(n["outputs"]))
        for i, inp in enumerate(n["inputs"]):
            c = TYPE_COLORS.get(inp["type"], (170, 170, 170))
            cy = slot_y(n, i)
            d.ellipse(
                [P(x + 6, cy - 5), P(x + 16, cy + 5)],
                fill=c if inp["link"] else (48, 48, 52),
                outline=c,
                width=max(1, int(2 * s)),
            )
            d.text(P(x + 22, cy - 8), inp["name"], font=f_text, fill=(200, 200, 200))
        for i, out in enumerate(n["outputs"]):
            c = TYPE_COLORS.get(out["type"], (170, 170, 170))
            cy = slot_y(n, i)
            d.ellipse(
                [P(x + w - 16, cy - 5), P(x + w - 6, cy + 5)],
                fill=c if out["links"] else (48, 48, 52),
                outline=c,
                width=max(1, int(2 * s)),
            )
            tw = d.textlength(out["name"], font=f_text)
            d.text(
                (P(x + w - 22, cy - 8)[0] - tw, P(0, cy - 8)[1]),
                out["name"],
                font=f_text,
                fill=(200, 200, 200),
            )
        _, widgets, _, opts = schema(n["type"])
        wy = n["pos"][1] + 6 + rows * 22
        for (wname, kind), value in zip(widgets, n["widgets_values"]):
            if kind == "CONTROL":
                wname = "control after generate"
            if kind == "UPLOAD":
                wname, value = "choose file to upload", ""
            multiline = kind == "STRING" and opts.get(wname, {}).get("multiline")
            hh = 80 if multiline else 20
            d.rounded_rectangle(
                [P(x + 10, wy), P(x + w - 10, wy + hh)],
                radius=int(8 * s),
                fill=(34, 34, 36),
                outline=(70, 70, 74),
            )
            text = str(value)
            if multiline:
                words, lines, cur = text.split(), [], ""
                for word in words:
                    if d.textlength(cur + " " + word, font=f_text) > (w - 30) * s:
                        lines.append(cur)
                        cur = word
                    else:
                        cur = (cur + " " + word).strip()
                lines.append(cur)
                for k, line in enumerate(lines[:5]):
                    d.text(P(x + 16, wy + 3 + k * 15), line, font=f_text, fill=(210, 210, 210))
            else:
                d.text(P(x + 18, wy + 3), wname, font=f_text, fill=(150, 150, 150))
                maxw = (w - 40) * s - d.textlength(wname, font=f_text) - 10 * s
                while text and d.textlength(text, font=f_text) > maxw:
                    text = text[:-2]
                    if len(text) < 4:
                        break
                if text != str(value):
                    text += "…"
                tw = d.textlength(text, font=f_text)
                d.text((P(x + w - 18, 0)[0] - tw, P(0, wy + 3)[1]), text, font=f_text, fill=(225, 225, 225))
            wy += hh + 4
        if n["type"] == "LoadImage":
            src = os.path.join(inputs_dir, n["widgets_values"][0])
            if os.path.exists(src):
                im = Image.open(src).convert("RGB")
                box_w, box_h = (w - 20) * s, (h - (wy - y) - 10) * s
                k = min(box_w / im.width, box_h / im.height)
                im = im.resize((max(1, int(im.width * k)), max(1, int(im.height * k))))
                px, py = P(x + w / 2, wy + 4)
                img.paste(im, (int(px - im.width / 2), py))

    def bezier(p0, p3, color):
        (ax, ay), (bx, by) = p0, p3
        dx = max(40 * s, abs(bx - ax) * 0.5)
        pts = []
        for k in range(41):
            t = k / 40
            cx = (
                (1 - t) ** 3 * ax
                + 3 * (1 - t) ** 2 * t * (ax + dx)
                + 3 * (1 - t) * t**2 * (bx - dx)
                + t**3 * bx
            )
            cy = (1 - t) ** 3 * ay + 3 * (1 - t) ** 2 * t * ay + 3 * (1 - t) * t**2 * by + t**3 * by
            pts.append((cx, cy))
        d.line(pts, fill=color, width=max(2, int(3 * s)))

    for lid, src, sslot, dst, dslot, typ in ui["links"]:
        a, b = byid[src], byid[dst]
        bezier(
            P(a["pos"][0] + a["size"][0] - 11, slot_y(a, sslot)),
            P(b["pos"][0] + 11, slot_y(b, dslot)),
            TYPE_COLORS.get(typ, (170, 170, 170)),
        )
    if thumb:
        from PIL import Image as _I

        canvas = _I.new("RGB", thumb, (32, 32, 34))
        k = min(thumb[0] / img.width, thumb[1] / img.height)
        small = img.resize((int(img.width * k), int(img.height * k)), _I.LANCZOS)
        canvas.paste(small, ((thumb[0] - small.width) // 2, (thumb[1] - small.height) // 2))
        img = canvas
    if path.endswith(".jpg"):
        img.save(path, quality=88)
    else:
        img.save(path, optimize=True)
