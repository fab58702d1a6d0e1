"""The checker of the example workflows against the nodes' own definitions (tests/docs/test_examples.py).

ComfyUI's editor applies ``widgets_values`` by position without a warning, so a
list shifted by one silently loads values into the wrong inputs; a dropdown
value that is not an option is kept as loaded and only fails at queue time.
These checks are the only thing that catches either before a user does.

Pack nodes are read from ``load_pack().NODE_CLASS_MAPPINGS`` (the pack loaded
as ComfyUI loads it); the few ComfyUI core nodes the examples use are described
literally below.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Optional, Tuple

from helpers import ROOT
from tools.node_reference import model_list

EXAMPLES = os.path.join(ROOT, "example_workflows")
INPUTS = os.path.join(EXAMPLES, "input")
REQUIRED_EXAMPLES = {
    "img2img_basic",
    "controlnet_canny_depth",
    "lora_embeddings",
    "ip_adapter_style",
    "sdxl",
    "batch",
    "everything_at_once",
    "txt2img_lora",
    "inpainting_mask",
    "img2img_upscale",
}
# Nodes that take no image: a graph made of them alone starts without a LoadImage.
IMAGELESS = ("PPInfraTxt2Img",)
TOP_KEYS = ("last_node_id", "last_link_id", "nodes", "links", "groups", "config", "extra", "version")
NODE_KEYS = (
    "id",
    "type",
    "pos",
    "size",
    "flags",
    "order",
    "mode",
    "inputs",
    "outputs",
    "properties",
    "widgets_values",
)
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
OUTPUT_NODES = ("SaveImage", "PreviewImage")

# ComfyUI core nodes the examples use. Each: socket inputs [(name, type)],
# widgets [(name, kind, options)], outputs [type]. LoadImage's second widget
# slot is its upload button, saved as the constant "image".
CORE: Dict[str, Dict[str, Any]] = {
    "LoadImage": {
        "sockets": [],
        "widgets": [("image", "FILE", None), ("upload", "CONST", "image")],
        "outputs": ["IMAGE", "MASK"],
    },
    "SaveImage": {
        "sockets": [("images", "IMAGE")],
        "widgets": [("filename_prefix", "STRING", None)],
        "outputs": [],
    },
    "PreviewImage": {"sockets": [("images", "IMAGE")], "widgets": [], "outputs": []},
    "ImageBatch": {
        "sockets": [("image1", "IMAGE"), ("image2", "IMAGE")],
        "widgets": [],
        "outputs": ["IMAGE"],
    },
    "RepeatImageBatch": {
        "sockets": [("image", "IMAGE")],
        "widgets": [("amount", "INT", {"min": 1, "max": 4096})],
        "outputs": ["IMAGE"],
    },
}

# Which dropdowns name a model from the provider's list, and of which type: read from each
# dropdown's remote route when its node's schema is built. A saved name missing from today's list
# still runs (the node validates those inputs itself), so the sandbox's well-known names are accepted too.
MODEL_INPUTS: Dict[Tuple[str, str], str] = {}


def example_names() -> List[str]:
    return sorted(f[:-5] for f in os.listdir(EXAMPLES) if f.endswith(".json"))


def read(path: str) -> Any:
    with open(path, "r", encoding="utf-8") as fh:
        return json.load(fh)


# ---------------------------------------------------------------- node definitions
def well_known() -> Dict[str, List[str]]:
    from ppinfra.sandbox.catalog import WELL_KNOWN

    return WELL_KNOWN


def _spec_kind(spec: Any) -> Tuple[str, Optional[List[Any]], Dict[str, Any]]:
    """(kind, options, extra) of one INPUT_TYPES entry. Handles both list and "COMBO" dropdowns."""
    t = spec[0]
    extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(t, (list, tuple)):
        return "COMBO", list(t), extra
    if t == "COMBO":
        return "COMBO", list(extra.get("options", [])), extra
    return t, None, extra


def node_schema(pack, node_type: str) -> Optional[Dict[str, Any]]:
    """Sockets, widget slots and output types of a node type, or None when it does not exist."""
    if node_type in CORE:
        return CORE[node_type]
    cls = pack.NODE_CLASS_MAPPINGS.get(node_type)
    if cls is None:
        return None
    types = cls.INPUT_TYPES()
    sockets, widgets, required = [], [], set()
    for section in ("required", "optional"):
        for name, spec in (types.get(section) or {}).items():
            kind, options, extra = _spec_kind(spec)
            if kind in WIDGET_TYPES:
                widgets.append((name, kind, options if kind == "COMBO" else extra))
                listed = model_list(extra)
                if listed:
                    MODEL_INPUTS[(node_type, name)] = listed[0]
                if kind == "INT" and (name == "seed" or extra.get("control_after_generate")):
                    widgets.append((name, "CONTROL", CONTROL_VALUES))
            else:
                sockets.append((name, kind))
                if section == "required":
                    required.add(name)
    return {"sockets": sockets, "widgets": widgets, "outputs": list(cls.RETURN_TYPES), "required": required}


# ---------------------------------------------------------------- the checker
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_widget(node_type: str, name: str, kind: str, opts: Any, value: Any) -> Optional[str]:
    where = f"{node_type}.{name}"
    if kind == "CONTROL":
        return (
            None
            if value in CONTROL_VALUES
            else f"{where}: control_after_generate {value!r} not in {CONTROL_VALUES}"
        )
    if kind == "CONST":
        return None if value == opts else f"{where}: expected {opts!r}, got {value!r}"
    if kind == "FILE":
        if not isinstance(value, str) or not os.path.isfile(os.path.join(INPUTS, value)):
            return f"{where}: {value!r} is not shipped in example_workflows/input/"
        return None
    if kind == "STRING":
        return None if isinstance(value, str) else f"{where}: {value!r} is not a string"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{where}: {value!r} is not a boolean"
    if kind in ("INT", "FLOAT"):
        ok = (
            _is_int(value)
            if kind == "INT"
            else (isinstance(value, (int, float)) and not isinstance(value, bool))
        )
        if not ok or (isinstance(value, float) and not math.isfinite(value)):
            return f"{where}: {value!r} is not a {kind}"
        lo, hi = opts.get("min"), opts.get("max")
        if lo is not None and value < lo:
            return f"{where}: {value!r} is below the minimum {lo}"
        if hi is not None and value > hi:
            return f"{where}: {value!r} is above the maximum {hi}"
        return None
    if kind == "COMBO":
        if value in opts:
            return None
        model_type = MODEL_INPUTS.get((node_type, name))
        if model_type and value in well_known().get(model_type, []):
            return None
        return f"{where}: {value!r} is not one of its options" + (
            f" nor a well-known {model_type}" if model_type else ""
        )
    return f"{where}: unknown widget kind {kind}"


def check_workflow(pack, wf: Dict[str, Any]) -> List[str]:
    """Every problem the editor would load silently or ComfyUI would refuse, as messages."""
    problems: List[str] = []
    for key in TOP_KEYS:
        if key not in wf:
            problems.append(f"top-level key {key!r} missing")
    if "id" in wf and not isinstance(wf["id"], str):
        problems.append("top-level id must be a string (the editor refuses null as 'Invalid workflow')")
    nodes = {n.get("id"): n for n in wf.get("nodes", [])}
    if len(nodes) != len(wf.get("nodes", [])):
        problems.append("duplicate node ids")
    links = {link[0]: link for link in wf.get("links", [])}
    if len(links) != len(wf.get("links", [])):
        problems.append("duplicate link ids")
    if nodes and wf.get("last_node_id", 0) < max(nodes):
        problems.append("last_node_id is below the largest node id")
    if links and wf.get("last_link_id", 0) < max(links):
        problems.append("last_link_id is below the largest link id")

    for nid, node in nodes.items():
        missing = [k for k in NODE_KEYS if k not in node]
        if missing:
            problems.append(f"node {nid}: keys {missing} missing (the editor says 'Invalid workflow')")
            continue
        ntype = node["type"]
        if node["properties"].get("Node name for S&R") != ntype:
            problems.append(f"node {nid}: properties['Node name for S&R'] should be {ntype!r}")
        schema = node_schema(pack, ntype)
        if schema is None:
            problems.append(f"node {nid}: type {ntype!r} does not exist")
            continue
        # Widgets, by position.
        widgets, values = schema["widgets"], node["widgets_values"]
        if len(values) != len(widgets):
            problems.append(
                f"node {nid} {ntype}: {len(values)} widgets_values for {len(widgets)} widget slots "
                f"{[w[0] + ('(control)' if w[1] == 'CONTROL' else '') for w in widgets]}"
            )
        for (name, kind, opts), value in zip(widgets, values):
            err = _check_widget(ntype, name, kind, opts, value)
            if err:
                problems.append(f"node {nid}: {err}")
        # Sockets: names and types in declaration order; required ones linked.
        declared = schema["sockets"]
        got = [(i.get("name"), i.get("type")) for i in node["inputs"] if "widget" not in i]
        if got != declared:
            problems.append(f"node {nid} {ntype}: socket inputs {got} differ from the definition {declared}")
        for name in schema.get("required", {n for n, _ in declared}):
            inp = next((i for i in node["inputs"] if i.get("name") == name), None)
            if inp is None or inp.get("link") is None:
                problems.append(f"node {nid} {ntype}: required input {name!r} is not linked")
        outs = [o.get("type") for o in node["outputs"]]
        if outs != schema["outputs"]:
            problems.append(
                f"node {nid} {ntype}: outputs {outs} differ from the definition {schema['outputs']}"
            )
        # Both ends of every link the node claims must exist.
        for slot, inp in enumerate(node["inputs"]):
            lid = inp.get("link")
            if lid is not None:
                link = links.get(lid)
                if link is None or link[3] != nid or link[4] != slot:
                    problems.append(
                        f"node {nid} input {inp.get('name')!r} claims link {lid}, which does not end there"
                    )
        for slot, out in enumerate(node["outputs"]):
            for lid in out.get("links") or []:
                link = links.get(lid)
                if link is None or link[1] != nid or link[2] != slot:
                    problems.append(
                        f"node {nid} output {out.get('name')!r} claims link {lid}, which does not start there"
                    )

    for lid, link in links.items():
        if len(link) != 6:
            problems.append(f"link {lid}: expected [id, from_node, from_slot, to_node, to_slot, type]")
            continue
        _, src, sslot, dst, dslot, ltype = link
        a, b = nodes.get(src), nodes.get(dst)
        if a is None or b is None:
            problems.append(f"link {lid}: joins a missing node")
            continue
        if not (0 <= sslot < len(a["outputs"])) or not (0 <= dslot < len(b["inputs"])):
            problems.append(f"link {lid}: slot out of range")
            continue
        out, inp = a["outputs"][sslot], b["inputs"][dslot]
        if not (out.get("type") == inp.get("type") == ltype):
            problems.append(
                f"link {lid}: {a['type']}.{out.get('name')} ({out.get('type')}) -> "
                f"{b['type']}.{inp.get('name')} ({inp.get('type')}) as {ltype}"
            )
        if lid not in (out.get("links") or []) or inp.get("link") != lid:
            problems.append(f"link {lid}: not recorded on both nodes")

    types = [n.get("type") for n in nodes.values()]
    takes_image = [
        t
        for t in types
        if t.startswith("PPInfra")
        and t not in IMAGELESS
        and "IMAGE" in [kind for _, kind in (node_schema(pack, t) or {}).get("sockets", [])]
    ]
    if takes_image and "LoadImage" not in types:
        problems.append(
            "no LoadImage: every example whose nodes take an image starts from ComfyUI's own LoadImage"
        )
    if not any(t in OUTPUT_NODES for t in types):
        problems.append("no SaveImage or PreviewImage at the end")
    text = json.dumps(wf)
    if "sk-" in text or "api_key" in text.lower():
        problems.append("something that looks like an API key is in the workflow")
    return problems


def api_problems(pack, wf: Dict[str, Any], api: Dict[str, Any]) -> List[str]:
    """Differences between a UI-format workflow and its API-format copy."""
    problems = []
    nodes = {str(n["id"]): n for n in wf["nodes"]}
    if set(api) != set(nodes):
        return [f"node ids differ: UI {sorted(nodes)} vs API {sorted(api)}"]
    links = {link[0]: link for link in wf["links"]}
    for nid, node in nodes.items():
        entry = api[nid]
        if entry.get("class_type") != node["type"]:
            problems.append(f"node {nid}: class_type {entry.get('class_type')!r} vs {node['type']!r}")
            continue
        schema = node_schema(pack, node["type"])
        want: Dict[str, Any] = {}
        for (name, kind, _), value in zip(schema["widgets"], node["widgets_values"]):
            if kind not in ("CONTROL", "CONST"):
                want[name] = value
        for inp in node["inputs"]:
            if inp.get("link") is not None:
                link = links[inp["link"]]
                want[inp["name"]] = [str(link[1]), link[2]]
        if entry.get("inputs") != want:
            problems.append(f"node {nid} {node['type']}: API inputs {entry.get('inputs')} vs UI {want}")
    return problems


def family_problems(wf: Dict[str, Any]) -> List[str]:
    """SD 1.5 and SDXL models mixed in one example (the server would refuse or produce noise)."""
    from ppinfra.sandbox import catalog

    sdxl = {
        name for items in getattr(catalog, "_WELL_KNOWN_SDXL", {}).values() for name, is_xl in items if is_xl
    }
    sdxl.add("ip-adapter_sdxl.bin")
    used = []
    for node in wf["nodes"]:
        if node["type"].startswith("PPInfra"):
            used += [v for v in node["widgets_values"] if isinstance(v, str)]
    known = [
        v
        for v in used
        if v in sdxl or any(v in names for names in well_known().values()) or v == "ip-adapter_sd15.bin"
    ]
    families = {v in sdxl for v in known}
    return [] if len(families) <= 1 else [f"mixes SD 1.5 and SDXL models: {known}"]


def load_image(name: str):
    """ComfyUI's LoadImage: IMAGE [1, H, W, 3] and MASK [1, H, W] = 1 - alpha (zeros without alpha)."""
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(os.path.join(INPUTS, name)) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        alpha = (
            np.asarray(im.getchannel("A"), dtype=np.float32) / 255.0
            if "A" in im.getbands()
            else np.ones(rgb.shape[:2], np.float32)
        )
    return torch.from_numpy(rgb)[None], torch.from_numpy(1.0 - alpha)[None]
