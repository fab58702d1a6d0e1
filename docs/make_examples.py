"""Write the example workflows (UI and API format) and their thumbnails.

    python docs/make_examples.py            # example_workflows/*.json, api/*.json, *.jpg
    python docs/make_examples.py --docs     # also docs/graph_everything_at_once.png
    python docs/make_examples.py sdxl batch # only these examples

Widget order comes from the pack's own node definitions (``INPUT_TYPES``),
loaded the way ComfyUI loads the pack, so a list here can never shift against
the nodes; ``tests/docs/test_examples.py`` checks the result independently. The
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

from draw_graph import render  # noqa: E402  (docs/ is on sys.path when this script runs)

EXAMPLES = os.path.join(ROOT, "example_workflows")
INPUTS = os.path.join(EXAMPLES, "input")
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")

# ComfyUI core nodes the examples use: (socket inputs, widgets, outputs).
# Only the facts a workflow file depends on, written from ComfyUI's documented node surface.
CORE = {
    "LoadImage": ([], [("image", "COMBO"), ("upload", "UPLOAD")], [("IMAGE", "IMAGE"), ("MASK", "MASK")]),
    "SaveImage": ([("images", "IMAGE")], [("filename_prefix", "STRING")], []),
    "PreviewImage": ([("images", "IMAGE")], [], []),
    "ImageBatch": ([("image1", "IMAGE"), ("image2", "IMAGE")], [], [("IMAGE", "IMAGE")]),
}
TITLES = {
    "LoadImage": "Load Image",
    "SaveImage": "Save Image",
    "PreviewImage": "Preview Image",
    "ImageBatch": "Batch Images",
}


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

    def add(
        self, node_type: str, pos, values: Dict[str, Any] = None, width: int = None, title: str = None
    ) -> int:
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
            "id": nid,
            "type": node_type,
            "pos": list(pos),
            "size": [width or (400 if node_type == "PPInfraImg2Img" else 320), height],
            "flags": {},
            "order": 0,
            "mode": 0,
            "inputs": [{"name": n, "type": t, "link": None} for n, t in sockets],
            "outputs": [
                {"name": n, "type": t, "links": [], "slot_index": i} for i, (n, t) in enumerate(outputs)
            ],
            "properties": {"Node name for S&R": node_type},
            "widgets_values": wv,
        }
        if node_type.startswith("PPInfra"):
            node["properties"]["cnr_id"] = "ppinfra"
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
            raise TypeError(
                f"{s['type']}.{out['name']} ({out['type']}) -> {d['type']}.{input_name} ({inp['type']})"
            )
        out["links"].append(lid)
        inp["link"] = lid
        self.links.append([lid, src, out_slot, dst, slot, out["type"]])

    def _order(self) -> None:
        deps = {n["id"]: {link[1] for link in self.links if link[3] == n["id"]} for n in self.nodes}
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
            # The editor's schema wants a string id (null is refused as "Invalid workflow");
            # stable per example.
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "comfyui-ppinfra/example_workflows/" + self.name)),
            "revision": 0,
            "last_node_id": len(self.nodes),
            "last_link_id": len(self.links),
            "nodes": self.nodes,
            "links": self.links,
            "groups": [],
            "config": {},
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
                    link = next(link for link in self.links if link[0] == inp["link"])
                    inputs[inp["name"]] = [str(link[1]), link[2]]
            out[str(n["id"])] = {
                "class_type": n["type"],
                "inputs": inputs,
                "_meta": {"title": n.get("title") or display_name(n["type"])},
            }
        return out


# ---------------------------------------------------------------- the examples
# Only model names the provider's docs show (ppinfra.model_info.DOCUMENTED_NAMES; a test holds
# every example to it): SD 1.5 checkpoints and one SD 1.5 LoRA; one SDXL checkpoint and the SDXL
# ControlNets. No VAE and no embedding name is documented, so sd_vae stays "None" and no example
# names an embedding; ControlNet examples are SDXL, because no SD 1.5 ControlNet name is documented.
SD15 = "dreamshaper_8_93211.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
# Not confirmed by a provider page: the common name of the official SD 1.5 inpainting checkpoint.
INPAINTING = "sd-v1-5-inpainting.ckpt"
NEG = "blurry, low quality, deformed, watermark, text"


def img2img_basic() -> Graph:
    g = Graph(
        "img2img_basic",
        "Plain img2img: one photo in, a watercolor version out. "
        "Copy example_workflows/input/*.png into ComfyUI/input/.",
    )
    li = g.add("LoadImage", (40, 120), {"image": "ppinfra_portrait.png"})
    ii = g.add(
        "PPInfraImg2Img",
        (400, 80),
        {
            "model_name": SD15,
            "prompt": "a watercolor portrait of a young woman, soft light, paper texture",
            "negative_prompt": NEG,
            "width": 0,
            "height": 0,
            "image_num": 1,
            "steps": 20,
            "guidance_scale": 7.5,
            "sampler_name": "Euler a",
            "seed": 42,
            "strength": 0.6,
        },
    )
    sv = g.add("SaveImage", (860, 120), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, ii, "image")
    g.link(ii, 0, sv, "images")
    return g


def controlnet_canny_depth() -> Graph:
    g = Graph(
        "controlnet_canny_depth",
        "Two chained SDXL ControlNet units (canny for the lines, depth for the space) "
        "on the SDXL base checkpoint at 1024x1024; the server runs the preprocessors.",
    )
    li = g.add("LoadImage", (40, 160), {"image": "ppinfra_street.png"})
    c1 = g.add(
        "PPInfraControlNetUnit",
        (400, 40),
        {
            "model_name": "controlnet-canny-sdxl-1.0",
            "strength": 1.0,
            "preprocessor": "canny",
            "guidance_start": 0.0,
            "guidance_end": 1.0,
        },
    )
    c2 = g.add(
        "PPInfraControlNetUnit",
        (400, 300),
        {
            "model_name": "controlnet-depth-sdxl-1.0",
            "strength": 0.6,
            "preprocessor": "depth_midas",
            "guidance_start": 0.0,
            "guidance_end": 0.8,
        },
    )
    ii = g.add(
        "PPInfraImg2Img",
        (760, 80),
        {
            "model_name": SDXL,
            "prompt": "a rainy city street at dusk, neon signs, wet asphalt, photo",
            "negative_prompt": NEG,
            "width": 1024,
            "height": 1024,
            "steps": 25,
            "guidance_scale": 7.0,
            "sampler_name": "DPM++ 2M Karras",
            "seed": 1234,
            "strength": 0.75,
        },
    )
    sv = g.add("SaveImage", (1220, 120), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, c1, "image")
    g.link(li, 0, c2, "image")
    g.link(c1, 0, c2, "controlnet")
    g.link(li, 0, ii, "image")
    g.link(c2, 0, ii, "controlnet")
    g.link(ii, 0, sv, "images")
    return g


def lora_embeddings() -> Graph:
    g = Graph(
        "lora_embeddings",
        "A LoRA Stack (add_detail_44319, the LoRA the provider's docs show) on an SD 1.5 checkpoint. "
        "No embedding name is documented: add a PPInfra Embedding node and pick one from your list, "
        "then link it to 'embeddings'.",
    )
    li = g.add("LoadImage", (40, 80), {"image": "ppinfra_portrait.png"})
    ls = g.add("PPInfraLoraStack", (40, 440), {"lora_1": "add_detail_44319", "strength_1": 0.7})
    ii = g.add(
        "PPInfraImg2Img",
        (760, 80),
        {
            "model_name": SD15,
            "prompt": "a detailed oil painting portrait, dramatic rim light",
            "negative_prompt": NEG,
            "steps": 28,
            "guidance_scale": 7.0,
            "sampler_name": "DPM++ 2M Karras",
            "seed": 777,
            "strength": 0.65,
            "clip_skip": 2,
        },
    )
    sv = g.add("SaveImage", (1220, 120), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, ii, "image")
    g.link(ls, 0, ii, "loras")
    g.link(ii, 0, sv, "images")
    return g


def ip_adapter_style() -> Graph:
    g = Graph(
        "ip_adapter_style",
        "IP-Adapter style transfer: the second image gives the style, the first the content.",
    )
    li = g.add("LoadImage", (40, 60), {"image": "ppinfra_room.png"})
    ls = g.add("LoadImage", (40, 420), {"image": "ppinfra_style.png"}, title="Load Image (style)")
    ip = g.add("PPInfraIPAdapter", (400, 460), {"model_name": "ip-adapter_sd15.bin", "strength": 0.6})
    ii = g.add(
        "PPInfraImg2Img",
        (760, 60),
        {
            "model_name": SD15,
            "prompt": "a cozy living room painted with swirling expressive brush strokes",
            "negative_prompt": NEG,
            "steps": 25,
            "seed": 2024,
            "strength": 0.7,
        },
    )
    sv = g.add("SaveImage", (1220, 100), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, ii, "image")
    g.link(ls, 0, ip, "image")
    g.link(ip, 0, ii, "ip_adapter")
    g.link(ii, 0, sv, "images")
    return g


def sdxl() -> Graph:
    g = Graph(
        "sdxl",
        "SDXL: the SDXL base checkpoint with an SDXL ControlNet (soft edges) at 1024x1024. "
        "sd_vae stays 'None' (the checkpoint's own VAE).",
    )
    li = g.add("LoadImage", (40, 100), {"image": "ppinfra_landscape.png"})
    cn = g.add(
        "PPInfraControlNetUnit",
        (400, 40),
        {
            "model_name": "controlnet-softedge-sdxl-1.0",
            "strength": 0.5,
            "preprocessor": "softedge_pidinet",
            "guidance_start": 0.0,
            "guidance_end": 1.0,
        },
    )
    ii = g.add(
        "PPInfraImg2Img",
        (760, 60),
        {
            "model_name": SDXL,
            "prompt": "an alpine lake at golden hour, dramatic clouds, 35mm photo",
            "negative_prompt": NEG,
            "width": 1024,
            "height": 1024,
            "steps": 30,
            "guidance_scale": 6.0,
            "sampler_name": "DPM++ 2M Karras",
            "seed": 31337,
            "strength": 0.7,
            "response_image_type": "webp",
        },
    )
    sv = g.add("SaveImage", (1220, 100), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, cn, "image")
    g.link(li, 0, ii, "image")
    g.link(cn, 0, ii, "controlnet")
    g.link(ii, 0, sv, "images")
    return g


def batch() -> Graph:
    g = Graph(
        "batch",
        "An input batch of two images: two tasks run at the same time; "
        "the output holds 2 x image_num images in input order.",
    )
    l1 = g.add("LoadImage", (40, 40), {"image": "ppinfra_portrait.png"})
    l2 = g.add("LoadImage", (40, 400), {"image": "ppinfra_room.png"})
    bt = g.add("ImageBatch", (400, 300), {}, width=220)
    ii = g.add(
        "PPInfraImg2Img",
        (680, 60),
        {
            "model_name": SD15,
            "prompt": "a pencil sketch, cross hatching, white paper",
            "negative_prompt": NEG,
            "width": 512,
            "height": 512,
            "image_num": 2,
            "seed": 5,
            "strength": 0.7,
        },
    )
    sv = g.add("PreviewImage", (1140, 100), {}, width=360)
    g.link(l1, 0, bt, "image1")
    g.link(l2, 0, bt, "image2")
    g.link(bt, 0, ii, "image")
    g.link(ii, 0, sv, "images")
    return g


def everything_at_once() -> Graph:
    g = Graph(
        "everything_at_once",
        "SDXL with two ControlNet units, a LoRA Stack and an IP-Adapter. The stack is empty: "
        "the only documented LoRA is SD 1.5, so pick an SDXL LoRA from your list. No embedding name is "
        "documented: add a PPInfra Embedding node with one from your list.",
    )
    li = g.add("LoadImage", (40, 60), {"image": "ppinfra_portrait.png"})
    ls_img = g.add("LoadImage", (40, 440), {"image": "ppinfra_style.png"}, title="Load Image (style)")
    c1 = g.add(
        "PPInfraControlNetUnit",
        (400, 20),
        {
            "model_name": "controlnet-openpose-sdxl-1.0",
            "strength": 0.8,
            "preprocessor": "openpose_full",
            "guidance_start": 0.0,
            "guidance_end": 1.0,
        },
    )
    c2 = g.add(
        "PPInfraControlNetUnit",
        (400, 250),
        {
            "model_name": "controlnet-depth-sdxl-1.0",
            "strength": 0.5,
            "preprocessor": "depth_midas",
            "guidance_start": 0.1,
            "guidance_end": 0.9,
        },
    )
    lo = g.add("PPInfraLoraStack", (400, 480), {})
    ip = g.add("PPInfraIPAdapter", (400, 820), {"model_name": "ip-adapter_sdxl.bin", "strength": 0.4})
    ii = g.add(
        "PPInfraImg2Img",
        (780, 60),
        {
            "model_name": SDXL,
            "prompt": "a portrait in the style of a post-impressionist painting, vivid colors",
            "negative_prompt": NEG,
            "width": 896,
            "height": 1120,
            "image_num": 2,
            "steps": 30,
            "guidance_scale": 7.0,
            "sampler_name": "DPM++ 2M Karras",
            "seed": 99,
            "strength": 0.8,
            "clip_skip": 2,
            "response_image_type": "png",
        },
    )
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


def txt2img_lora() -> Graph:
    g = Graph(
        "txt2img_lora",
        "Text to image with a LoRA Stack (add_detail_44319, the LoRA the provider's docs show) "
        "on an SD 1.5 checkpoint: one task, image_num images. No input image.",
    )
    ls = g.add("PPInfraLoraStack", (40, 80), {"lora_1": "add_detail_44319", "strength_1": 0.6})
    ti = g.add(
        "PPInfraTxt2Img",
        (400, 60),
        {
            "model_name": SD15,
            "prompt": "a lighthouse on a cliff at dawn, soft light, detailed, photo",
            "negative_prompt": NEG,
            "width": 512,
            "height": 768,
            "image_num": 2,
            "steps": 25,
            "guidance_scale": 7.0,
            "sampler_name": "DPM++ 2M Karras",
            "seed": 4242,
        },
        width=400,
    )
    sv = g.add("SaveImage", (860, 100), {"filename_prefix": "PPInfra"}, width=360)
    g.link(ls, 0, ti, "loras")
    g.link(ti, 0, sv, "images")
    return g


def inpainting_mask() -> Graph:
    g = Graph(
        "inpainting_mask",
        "Inpainting with a mask drawn in ComfyUI: LoadImage's MASK is the transparent area "
        "of the PNG (right-click the image > Open in MaskEditor to paint your own). White/1.0 = repaint. "
        "model_name is sd-v1-5-inpainting.ckpt, the widely distributed name of the official SD 1.5 "
        "inpainting checkpoint; no provider page confirms it, so if the host does not list it, pick "
        "another inpainting checkpoint from the list (it shows your account's, filter.is_inpainting).",
    )
    li = g.add("LoadImage", (40, 100), {"image": "ppinfra_room_hole.png"})
    ip = g.add(
        "PPInfraInpaint",
        (400, 60),
        {
            "model_name": INPAINTING,
            "prompt": "a large potted monstera plant, soft daylight",
            "negative_prompt": NEG,
            "steps": 25,
            "seed": 77,
            "strength": 1.0,
            "mask_blur": 4,
        },
        width=400,
    )
    sv = g.add("SaveImage", (860, 100), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, ip, "image")
    g.link(li, 1, ip, "mask")
    g.link(ip, 0, sv, "images")
    return g


def img2img_upscale() -> Graph:
    g = Graph(
        "img2img_upscale",
        "Img2img, then the result made twice as large by the upscale endpoint (Novita's "
        "host offers it; on PPInfra/PPIO the Upscale node says the host does not).",
    )
    li = g.add("LoadImage", (40, 120), {"image": "ppinfra_portrait.png"})
    ii = g.add(
        "PPInfraImg2Img",
        (400, 80),
        {
            "model_name": SD15,
            "prompt": "a watercolor portrait of a young woman, soft light, paper texture",
            "negative_prompt": NEG,
            "width": 512,
            "height": 640,
            "steps": 20,
            "seed": 42,
            "strength": 0.6,
        },
    )
    up = g.add("PPInfraUpscale", (860, 120), {"model_name": "RealESRNet_x4plus", "scale_factor": 2.0})
    sv = g.add("SaveImage", (1220, 120), {"filename_prefix": "PPInfra"}, width=360)
    g.link(li, 0, ii, "image")
    g.link(ii, 0, up, "image")
    g.link(up, 0, sv, "images")
    return g


ALL = [
    img2img_basic,
    controlnet_canny_depth,
    lora_embeddings,
    ip_adapter_style,
    sdxl,
    batch,
    everything_at_once,
    txt2img_lora,
    inpainting_mask,
    img2img_upscale,
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", action="store_true", help="also render docs/graph_everything_at_once.png")
    ap.add_argument("names", nargs="*", help="only these examples (default: all)")
    args = ap.parse_args()
    os.makedirs(os.path.join(EXAMPLES, "api"), exist_ok=True)
    for make in ALL:
        if args.names and make.__name__ not in args.names:
            continue
        g = make()
        ui = g.ui()
        with open(os.path.join(EXAMPLES, g.name + ".json"), "w", encoding="utf-8") as fh:
            json.dump(ui, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        with open(os.path.join(EXAMPLES, "api", g.name + ".json"), "w", encoding="utf-8") as fh:
            json.dump(g.api(), fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        render(
            ui,
            os.path.join(EXAMPLES, g.name + ".jpg"),
            schema,
            display_name,
            INPUTS,
            scale=0.5,
            thumb=(640, 400),
        )
        if args.docs and g.name in ("everything_at_once", "controlnet_canny_depth"):
            render(
                ui, os.path.join(ROOT, "docs", f"graph_{g.name}.png"), schema, display_name, INPUTS, scale=1.0
            )
        print("wrote", g.name)


if __name__ == "__main__":
    main()
