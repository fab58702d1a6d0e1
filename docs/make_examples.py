"""Write the example workflows (UI and API format) and their thumbnails.

    python docs/make_examples.py            # example_workflows/*.json, api/*.json, *.jpg
    python docs/make_examples.py --docs     # also docs/graph_everything_at_once.png

Widget order comes from the pack's own node definitions (``INPUT_TYPES``),
loaded the way ComfyUI loads the pack, so a list here can never shift against
the nodes; ``tests/test_examples.py`` checks the result independently. The
thumbnails are diagrams of the graph drawn with Pillow, not screenshots.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from typing import Any, Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools.packload import load_pack  # noqa: E402

EXAMPLES = os.path.join(ROOT, "example_workflows")
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")

# ComfyUI core nodes the examples use: (socket inputs, widgets, outputs).
# Only the facts a workflow file depends on, written from ComfyUI's documented node surface.
CORE = {
    "LoadImage": ([], [("image", "COMBO"), ("upload", "UPLOAD")], [("IMAGE", "IMAGE"), ("MASK", "MASK")]),
    "SaveImage": ([("images", "IMAGE")], [("filename_prefix", "STRING")], []),
    "PreviewImage": ([("images", "IMAGE")], [], []),
    "ImageBatch": ([("image1", "IMAGE"), ("image2", "IMAGE")], [], [("IMAGE", "IMAGE")]),
}
TITLES = {"LoadImage": "Load Image", "SaveImage": "Save Image", "PreviewImage": "Preview Image",
          "ImageBatch": "Batch Images"}


def _kind(spec: Any) -> str:
    t = spec[0]
    if isinstance(t, (list, tuple)):
        return "COMBO"
    return t


def schema(node_type: str) -> Tuple[list, list, list, dict]:
    """(socket inputs, widgets [(name, kind)], outputs, input options) for a node type."""
    if node_type in CORE:
        s, w, o = CORE[node_type]
        return s, w, o, {}
    cls = load_pack().NODE_CLASS_MAPPINGS[node_type]
    types = cls.INPUT_TYPES()
    sockets, widgets, opts = [], [], {}
    for section in ("required", "optional"):
        for name, spec in types.get(section, {}).items():
            kind = _kind(spec)
            opts[name] = spec[1] if len(spec) > 1 else {}
            if kind in WIDGET_TYPES:
                widgets.append((name, kind))
                if kind == "INT" and (name == "seed" or opts[name].get("control_after_generate")):
                    widgets.append((name + "#control", "CONTROL"))
            else:
                sockets.append((name, kind))
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    outputs = list(zip(names, cls.RETURN_TYPES))
    return sockets, widgets, outputs, opts


def display_name(node_type: str) -> str:
    if node_type in TITLES:
        return TITLES[node_type]
    return getattr(load_pack(), "NODE_DISPLAY_NAME_MAPPINGS", {}).get(node_type, node_type)


class Graph:
    def __init__(self, name: str, note: str = "") -> None:
        self.name = name
        self.note = note
        self.nodes: List[Dict[str, Any]] = []
        self.links: List[list] = []

    def add(self, node_type: str, pos, values: Dict[str, Any] = None, width: int = None, title: str = None) -> int:
        nid = len(self.nodes) + 1
        sockets, widgets, outputs, opts = schema(node_type)
        values = dict(values or {})
        wv = []
        for wname, kind in widgets:
            if kind == "CONTROL":
                wv.append(values.pop(wname, "fixed"))
            elif kind == "UPLOAD":
                wv.append("image")
            elif wname in values:
                wv.append(values.pop(wname))
            else:
                default = opts.get(wname, {}).get("default")
                if default is None and kind == "COMBO":
                    spec = load_pack().NODE_CLASS_MAPPINGS[node_type].INPUT_TYPES()
                    spec = spec.get("required", {}).get(wname) or spec.get("optional", {}).get(wname)
                    default = list(spec[0])[0]
                wv.append(default)
        if values:
            raise KeyError(f"{node_type} has no widget {sorted(values)}")
        rows = max(len(sockets), len(outputs))
        nwidgets = len(widgets)
        multiline = sum(1 for n, k in widgets if k == "STRING" and opts.get(n, {}).get("multiline"))
        height = 10 + rows * 22 + nwidgets * 24 + multiline * 60
        if node_type in ("SaveImage", "PreviewImage"):
            height = max(height, 300)
        if node_type == "LoadImage":
            height = 320
        node = {
            "id": nid, "type": node_type, "pos": list(pos),
            "size": [width or (400 if node_type == "PPInfraImg2Img" else 320), height],
            "flags": {}, "order": 0, "mode": 0,
            "inputs": [{"name": n, "type": t, "link": None} for n, t in sockets],
            "outputs": [{"name": n, "type": t, "links": [], "slot_index": i} for i, (n, t) in enumerate(outputs)],
            "properties": {"Node name for S&R": node_type},
            "widgets_values": wv,
        }
        if node_type.startswith("PPInfra"):
            node["properties"]["cnr_id"] = "comfyui-ppinfra"
        if title:
            node["title"] = title
        self.nodes.append(node)
        return nid

    def link(self, src: int, out_slot: int, dst: int, input_name: str) -> None:
        lid = len(self.links) + 1
        s, d = self.nodes[src - 1], self.nodes[dst - 1]
        out = s["outputs"][out_slot]
        slot = [i["name"] for i in d["inputs"]].index(input_name)
        inp = d["inputs"][slot]
        if out["type"] != inp["type"]:
            raise TypeError(f"{s['type']}.{out['name']} ({out['type']}) -> {d['type']}.{input_name} ({inp['type']})")
        out["links"].append(lid)
        inp["link"] = lid
        self.links.append([lid, src, out_slot, dst, slot, out["type"]])

    def _order(self) -> None:
        deps = {n["id"]: {l[1] for l in self.links if l[3] == n["id"]} for n in self.nodes}
        done: List[int] = []
        while len(done) < len(self.nodes):
            for n in self.nodes:
                if n["id"] not in done and deps[n["id"]] <= set(done):
                    done.append(n["id"])
                    break
        for n in self.nodes:
            n["order"] = done.index(n["id"])

    def ui(self) -> Dict[str, Any]:
        self._order()
        for n in self.nodes:
            for o in n["outputs"]:
                if not o["links"]:
                    o["links"] = None
        return {
            # The editor's schema wants a string id (null is refused as "Invalid workflow"); stable per example.
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "comfyui-ppinfra/example_workflows/" + self.name)),
            "revision": 0,
            "last_node_id": len(self.nodes), "last_link_id": len(self.links),
            "nodes": self.nodes, "links": self.links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 0.75, "offset": [40, 40]}, "ppinfra_note": self.note},
            "version": 0.4,
        }

    def api(self) -> Dict[str, Any]:
        out = {}
        for n in self.nodes:
            sockets, widgets, _, _ = schema(n["type"])
            inputs: Dict[str, Any] = {}
            for (wname, kind), value in zip(widgets, n["widgets_values"]):
                if kind in ("CONTROL", "UPLOAD"):
                    continue
                inputs[wname] = value
            for inp in n["inputs"]:
                if inp["link"] is not None:
                    l = next(l for l in self.links if l[0] == inp["link"])
                    inputs[inp["name"]] = [str(l[1]), l[2]]
            out[str(n["id"])] = {"class_type": n["type"], "inputs": inputs,
                                 "_meta": {"title": n.get("title") or display_name(n["type"])}}
        return out


# ---------------------------------------------------------------- the examples
# Only model names the provider's docs show (ppinfra.model_info.DOCUMENTED_NAMES; a test holds
# every example to it): SD 1.5 checkpoints and one SD 1.5 LoRA; one SDXL checkpoint and the SDXL
# ControlNets. No VAE and no embedding name is documented, so sd_vae stays "None" and no example
# names an embedding; ControlNet examples are SDXL, because no SD 1.5 ControlNet name is documented.
SD15 = "dreamshaper_8_93211.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
NEG = "blurry, low quality, deformed, watermark, text"


def img2img_basic() -> Graph:
    g = Graph("img2img_basic", "Plain img2img: one photo in, a watercolor version out. Copy example_workflows/input/*.png into ComfyUI/input/.")
    li = g.add("LoadImage", (40, 120), {"image": "ppinfra_portrait.png"})
    ii = g.add("PPInfraImg2Img", (400, 80), {
        "model_name": SD15, "prompt": "a watercolor portrait of a young woman, soft light, paper texture",
        "negative_prompt": NEG, "width": 0, "height": 0, "image_num": 1, "steps": 20,
        "guidance_scale": 7.5, "sampler_name": "Euler a", "seed": 42, "strength": 0.6})
    sv = g.add("SaveImage", (860, 120), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, ii, "image")
    g.link(ii, 0, sv, "images")
    return g


def controlnet_canny_depth() -> Graph:
    g = Graph("controlnet_canny_depth", "Two chained SDXL ControlNet units (canny for the lines, depth for the space) on the SDXL base checkpoint at 1024x1024; the server runs the preprocessors.")
    li = g.add("LoadImage", (40, 160), {"image": "ppinfra_street.png"})
    c1 = g.add("PPInfraControlNetUnit", (400, 40), {
        "model_name": "controlnet-canny-sdxl-1.0", "strength": 1.0, "preprocessor": "canny",
        "guidance_start": 0.0, "guidance_end": 1.0})
    c2 = g.add("PPInfraControlNetUnit", (400, 300), {
        "model_name": "controlnet-depth-sdxl-1.0", "strength": 0.6, "preprocessor": "depth_midas",
        "guidance_start": 0.0, "guidance_end": 0.8})
    ii = g.add("PPInfraImg2Img", (760, 80), {
        "model_name": SDXL, "prompt": "a rainy city street at dusk, neon signs, wet asphalt, photo",
        "negative_prompt": NEG, "width": 1024, "height": 1024, "steps": 25, "guidance_scale": 7.0,
        "sampler_name": "DPM++ 2M Karras", "seed": 1234, "strength": 0.75})
    sv = g.add("SaveImage", (1220, 120), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, c1, "image")
    g.link(li, 0, c2, "image")
    g.link(c1, 0, c2, "controlnet")
    g.link(li, 0, ii, "image")
    g.link(c2, 0, ii, "controlnet")
    g.link(ii, 0, sv, "images")
    return g


def lora_embeddings() -> Graph:
    g = Graph("lora_embeddings", "A LoRA Stack (add_detail_44319, the LoRA the provider's docs show) on an SD 1.5 checkpoint. "
              "No embedding name is documented: add a PPInfra Embedding node and pick one from your list, then link it to 'embeddings'.")
    li = g.add("LoadImage", (40, 80), {"image": "ppinfra_portrait.png"})
    ls = g.add("PPInfraLoraStack", (40, 440), {"lora_1": "add_detail_44319", "strength_1": 0.7})
    ii = g.add("PPInfraImg2Img", (760, 80), {
        "model_name": SD15, "prompt": "a detailed oil painting portrait, dramatic rim light",
        "negative_prompt": NEG, "steps": 28, "guidance_scale": 7.0,
        "sampler_name": "DPM++ 2M Karras", "seed": 777, "strength": 0.65, "clip_skip": 2})
    sv = g.add("SaveImage", (1220, 120), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, ii, "image")
    g.link(ls, 0, ii, "loras")
    g.link(ii, 0, sv, "images")
    return g


def ip_adapter_style() -> Graph:
    g = Graph("ip_adapter_style", "IP-Adapter style transfer: the second image gives the style, the first the content.")
    li = g.add("LoadImage", (40, 60), {"image": "ppinfra_room.png"})
    ls = g.add("LoadImage", (40, 420), {"image": "ppinfra_style.png"}, title="Load Image (style)")
    ip = g.add("PPInfraIPAdapter", (400, 460), {"model_name": "ip-adapter_sd15.bin", "strength": 0.6})
    ii = g.add("PPInfraImg2Img", (760, 60), {
        "model_name": SD15, "prompt": "a cozy living room painted with swirling expressive brush strokes",
        "negative_prompt": NEG, "steps": 25, "seed": 2024, "strength": 0.7})
    sv = g.add("SaveImage", (1220, 100), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, ii, "image")
    g.link(ls, 0, ip, "image")
    g.link(ip, 0, ii, "ip_adapter")
    g.link(ii, 0, sv, "images")
    return g


def sdxl() -> Graph:
    g = Graph("sdxl", "SDXL: the SDXL base checkpoint with an SDXL ControlNet (soft edges) at 1024x1024. "
              "sd_vae stays 'None' (the checkpoint's own VAE).")
    li = g.add("LoadImage", (40, 100), {"image": "ppinfra_landscape.png"})
    cn = g.add("PPInfraControlNetUnit", (400, 40), {
        "model_name": "controlnet-softedge-sdxl-1.0", "strength": 0.5, "preprocessor": "softedge_pidinet",
        "guidance_start": 0.0, "guidance_end": 1.0})
    ii = g.add("PPInfraImg2Img", (760, 60), {
        "model_name": SDXL, "prompt": "an alpine lake at golden hour, dramatic clouds, 35mm photo",
        "negative_prompt": NEG, "width": 1024, "height": 1024, "steps": 30,
        "guidance_scale": 6.0, "sampler_name": "DPM++ 2M Karras", "seed": 31337, "strength": 0.7,
        "response_image_type": "webp"})
    sv = g.add("SaveImage", (1220, 100), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, cn, "image")
    g.link(li, 0, ii, "image")
    g.link(cn, 0, ii, "controlnet")
    g.link(ii, 0, sv, "images")
    return g


def batch() -> Graph:
    g = Graph("batch", "An input batch of two images: two tasks run at the same time; the output holds 2 x image_num images in input order.")
    l1 = g.add("LoadImage", (40, 40), {"image": "ppinfra_portrait.png"})
    l2 = g.add("LoadImage", (40, 400), {"image": "ppinfra_room.png"})
    bt = g.add("ImageBatch", (400, 300), {}, width=220)
    ii = g.add("PPInfraImg2Img", (680, 60), {
        "model_name": SD15, "prompt": "a pencil sketch, cross hatching, white paper",
        "negative_prompt": NEG, "width": 512, "height": 512, "image_num": 2, "seed": 5, "strength": 0.7})
    sv = g.add("PreviewImage", (1140, 100), {}, width=360)
    g.link(l1, 0, bt, "image1")
    g.link(l2, 0, bt, "image2")
    g.link(bt, 0, ii, "image")
    g.link(ii, 0, sv, "images")
    return g


def everything_at_once() -> Graph:
    g = Graph("everything_at_once", "SDXL with two ControlNet units, a LoRA Stack and an IP-Adapter. The stack is empty: "
              "the only documented LoRA is SD 1.5, so pick an SDXL LoRA from your list. No embedding name is "
              "documented: add a PPInfra Embedding node with one from your list.")
    li = g.add("LoadImage", (40, 60), {"image": "ppinfra_portrait.png"})
    ls_img = g.add("LoadImage", (40, 440), {"image": "ppinfra_style.png"}, title="Load Image (style)")
    c1 = g.add("PPInfraControlNetUnit", (400, 20), {
        "model_name": "controlnet-openpose-sdxl-1.0", "strength": 0.8, "preprocessor": "openpose_full",
        "guidance_start": 0.0, "guidance_end": 1.0})
    c2 = g.add("PPInfraControlNetUnit", (400, 250), {
        "model_name": "controlnet-depth-sdxl-1.0", "strength": 0.5, "preprocessor": "depth_midas",
        "guidance_start": 0.1, "guidance_end": 0.9})
    lo = g.add("PPInfraLoraStack", (400, 480), {})
    ip = g.add("PPInfraIPAdapter", (400, 820), {"model_name": "ip-adapter_sdxl.bin", "strength": 0.4})
    ii = g.add("PPInfraImg2Img", (780, 60), {
        "model_name": SDXL, "prompt": "a portrait in the style of a post-impressionist painting, vivid colors",
        "negative_prompt": NEG, "width": 896, "height": 1120, "image_num": 2, "steps": 30,
        "guidance_scale": 7.0, "sampler_name": "DPM++ 2M Karras", "seed": 99, "strength": 0.8,
        "clip_skip": 2, "response_image_type": "png"})
    sv = g.add("SaveImage", (1240, 100), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, c1, "image")
    g.link(li, 0, c2, "image")
    g.link(c1, 0, c2, "controlnet")
    g.link(ls_img, 0, ip, "image")
    g.link(li, 0, ii, "image")
    g.link(c2, 0, ii, "controlnet")
    g.link(lo, 0, ii, "loras")
    g.link(ip, 0, ii, "ip_adapter")
    g.link(ii, 0, sv, "images")
    return g


ALL = [img2img_basic, controlnet_canny_depth, lora_embeddings, ip_adapter_style, sdxl, batch, everything_at_once]


# ---------------------------------------------------------------- the diagram
TYPE_COLORS = {"IMAGE": (100, 183, 231), "MASK": (129, 200, 122), "INT": (160, 200, 120), "STRING": (200, 160, 120),
               "PPINFRA_CONTROLNET": (0, 214, 160), "PPINFRA_LORAS": (230, 130, 90),
               "PPINFRA_EMBEDDINGS": (200, 120, 220), "PPINFRA_IP_ADAPTER": (240, 200, 80)}


def _font(size: int, bold: bool = False):
    from PIL import ImageFont
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans%s.ttf" % ("-Bold" if bold else ""),):
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def render(ui: Dict[str, Any], path: str, scale: float = 1.0, thumb: Tuple[int, int] = None) -> None:
    """Draw the graph the way ComfyUI's canvas lays it out: positions, sizes, sockets, wires, widget values."""
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
        d.rounded_rectangle([P(x, y - title_h), P(x + w, y + h)], radius=int(8 * s), fill=(48, 48, 52), outline=(20, 20, 20))
        d.rounded_rectangle([P(x, y - title_h), P(x + w, y)], radius=int(8 * s), fill=head)
        d.rectangle([P(x, y - 8), P(x + w, y)], fill=head)
        d.ellipse([P(x + 10, y - 19), P(x + 18, y - 11)], fill=(150, 150, 150))
        d.text(P(x + 26, y - 23), n.get("title") or display_name(n["type"]), font=f_title, fill=(230, 230, 230))
        rows = max(len(n["inputs"]), len(n["outputs"]))
        for i, inp in enumerate(n["inputs"]):
            c = TYPE_COLORS.get(inp["type"], (170, 170, 170))
            cy = slot_y(n, i)
            d.ellipse([P(x + 6, cy - 5), P(x + 16, cy + 5)], fill=c if inp["link"] else (48, 48, 52), outline=c, width=max(1, int(2 * s)))
            d.text(P(x + 22, cy - 8), inp["name"], font=f_text, fill=(200, 200, 200))
        for i, out in enumerate(n["outputs"]):
            c = TYPE_COLORS.get(out["type"], (170, 170, 170))
            cy = slot_y(n, i)
            d.ellipse([P(x + w - 16, cy - 5), P(x + w - 6, cy + 5)], fill=c if out["links"] else (48, 48, 52), outline=c, width=max(1, int(2 * s)))
            tw = d.textlength(out["name"], font=f_text)
            d.text((P(x + w - 22, cy - 8)[0] - tw, P(0, cy - 8)[1]), out["name"], font=f_text, fill=(200, 200, 200))
        _, widgets, _, opts = schema(n["type"])
        wy = n["pos"][1] + 6 + rows * 22
        for (wname, kind), value in zip(widgets, n["widgets_values"]):
            if kind == "CONTROL":
                wname = "control after generate"
            if kind == "UPLOAD":
                wname, value = "choose file to upload", ""
            multiline = kind == "STRING" and opts.get(wname, {}).get("multiline")
            hh = 80 if multiline else 20
            d.rounded_rectangle([P(x + 10, wy), P(x + w - 10, wy + hh)], radius=int(8 * s), fill=(34, 34, 36), outline=(70, 70, 74))
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
            src = os.path.join(EXAMPLES, "input", n["widgets_values"][0])
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
            cx = (1 - t) ** 3 * ax + 3 * (1 - t) ** 2 * t * (ax + dx) + 3 * (1 - t) * t ** 2 * (bx - dx) + t ** 3 * bx
            cy = (1 - t) ** 3 * ay + 3 * (1 - t) ** 2 * t * ay + 3 * (1 - t) * t ** 2 * by + t ** 3 * by
            pts.append((cx, cy))
        d.line(pts, fill=color, width=max(2, int(3 * s)))

    for lid, src, sslot, dst, dslot, typ in ui["links"]:
        a, b = byid[src], byid[dst]
        bezier(P(a["pos"][0] + a["size"][0] - 11, slot_y(a, sslot)), P(b["pos"][0] + 11, slot_y(b, dslot)),
               TYPE_COLORS.get(typ, (170, 170, 170)))
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", action="store_true", help="also render docs/graph_everything_at_once.png")
    args = ap.parse_args()
    os.makedirs(os.path.join(EXAMPLES, "api"), exist_ok=True)
    for make in ALL:
        g = make()
        ui = g.ui()
        with open(os.path.join(EXAMPLES, g.name + ".json"), "w", encoding="utf-8") as fh:
            json.dump(ui, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        with open(os.path.join(EXAMPLES, "api", g.name + ".json"), "w", encoding="utf-8") as fh:
            json.dump(g.api(), fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        render(ui, os.path.join(EXAMPLES, g.name + ".jpg"), scale=0.5, thumb=(640, 400))
        if args.docs and g.name in ("everything_at_once", "controlnet_canny_depth"):
            render(ui, os.path.join(ROOT, "docs", f"graph_{g.name}.png"), scale=1.0)
        print("wrote", g.name)


if __name__ == "__main__":
    main()
