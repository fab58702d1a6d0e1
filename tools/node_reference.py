"""Render the README's node reference from the node definitions and the limits table.

    python tools/node_reference.py           # rewrite the block in README.md and README.zh.md
    python tools/node_reference.py --check   # exit 1 when a README block is stale

The block sits between ``<!-- node-reference:start -->`` and
``<!-- node-reference:end -->``. Ranges and defaults come from the widgets
(``INPUT_TYPES``, which read :mod:`ppinfra.limits`), the API's own range from
``LIMITS[field].describe()``, meanings from the English tooltips or, for
README.zh.md, from ``locales/zh/nodeDefs.json``. Model lists are named, never
listed: they change with the account and the day.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from urllib.parse import urlsplit
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ppinfra.request import GENERATION_FIELDS  # noqa: E402
from ppinfra.limits import ENDPOINT_LIMITS  # noqa: E402
from tools.packload import load_pack  # noqa: E402

START = "<!-- node-reference:start -->"
END = "<!-- node-reference:end -->"
README = {"en": os.path.join(ROOT, "README.md"), "zh": os.path.join(ROOT, "README.zh.md")}

# Which API field each node input feeds: the limits table says the API's range and meaning.
_I2I = {
    n: f"request.{n}"
    for n in (
        "model_name",
        "prompt",
        "negative_prompt",
        "width",
        "height",
        "image_num",
        "steps",
        "guidance_scale",
        "sampler_name",
        "seed",
        "strength",
        "clip_skip",
        "sd_vae",
        "loras",
        "embeddings",
    )
}
_I2I.update({"response_image_type": "extra.response_image_type", "ip_adapter": "request.ip_adapters"})
FIELDS: Dict[str, Dict[str, str]] = {
    "PPInfraImg2Img": _I2I,
    "PPInfraControlNetUnit": {
        n: f"request.controlnet.units[].{n}"
        for n in ("model_name", "strength", "preprocessor", "guidance_start", "guidance_end")
    },
    "PPInfraLoraStack": {
        **{f"lora_{i}": "request.loras[].model_name" for i in range(1, 6)},
        **{f"strength_{i}": "request.loras[].strength" for i in range(1, 6)},
        "loras": "request.loras",
    },
    "PPInfraEmbedding": {"model_name": "request.embeddings[].model_name", "embeddings": "request.embeddings"},
    "PPInfraIPAdapter": {
        "model_name": "request.ip_adapters[].model_name",
        "strength": "request.ip_adapters[].strength",
    },
}


def _generation(**extra: str) -> Dict[str, str]:
    names = (*(n for n in GENERATION_FIELDS if n != "response_image_type"), "loras", "embeddings")
    return {**{n: f"request.{n}" for n in names}, "response_image_type": "extra.response_image_type", **extra}


FIELDS.update(
    {
        "PPInfraTxt2Img": _generation(
            width="request.width",
            height="request.height",
            hires_target_width="request.hires_fix.target_width",
            hires_target_height="request.hires_fix.target_height",
            hires_strength="request.hires_fix.strength",
            hires_upscaler="request.hires_fix.upscaler",
            refiner_switch_at="request.refiner.switch_at",
            restore_faces="request.restore_faces",
            enable_transparent_background="request.enable_transparent_background",
        ),
        "PPInfraInpaint": _generation(
            **{
                n: f"request.{n}"
                for n in (
                    "strength",
                    "mask_blur",
                    "inpainting_full_res",
                    "inpainting_full_res_padding",
                    "inpainting_mask_invert",
                    "initial_noise_multiplier",
                )
            },
            image="request.image_base64",
            mask="request.mask_image_base64",
        ),
        "PPInfraUpscale": {
            "model_name": "request.model_name",
            "scale_factor": "request.scale_factor",
            "response_image_type": "extra.response_image_type",
        },
    }
)


def model_list(extra: Dict[str, Any]) -> Optional[Tuple[str, bool]]:
    """(model type, inpainting only) of a model dropdown, read from the remote route its spec names
    (``/ppinfra/models/checkpoint?inpainting=1``); None for any other dropdown."""
    route = (extra.get("remote") or {}).get("route") or ""
    if not route:
        return None
    parts = urlsplit(route)
    return parts.path.rstrip("/").rsplit("/", 1)[-1], "inpainting=1" in parts.query


TEXT = {
    "en": {
        "inputs": "Input",
        "type": "Type",
        "range": "Widget range / options",
        "api": "API limit",
        "default": "Default",
        "meaning": "Meaning",
        "outputs": "Outputs",
        "optional": "optional",
        "link": "link",
        "models": "model list ({})",
        "options": "{} options",
        "generated": (
            "Generated by `python tools/node_reference.py` from the node definitions "
            "and `ppinfra/limits.py`; do not edit by hand."
        ),
    },
    "zh": {
        "inputs": "输入",
        "type": "类型",
        "range": "控件范围 / 选项",
        "api": "API 限制",
        "default": "默认值",
        "meaning": "说明",
        "outputs": "输出",
        "optional": "可选",
        "link": "连线",
        "models": "模型列表（{}）",
        "options": "{} 个选项",
        "generated": (
            "由 `python tools/node_reference.py` 根据节点定义和 `ppinfra/limits.py` 生成，请勿手工编辑。"
        ),
    },
}


def load_zh() -> Dict[str, Any]:
    with open(os.path.join(ROOT, "locales", "zh", "nodeDefs.json"), "r", encoding="utf-8") as fh:
        return json.load(fh)


def _num(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return f"{x:.1f}"
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _inputs(cls) -> List[Tuple[str, str, Any, Dict[str, Any], bool]]:
    """(name, kind, options, extra, optional) in declaration order."""
    out = []
    types = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, spec in (types.get(section) or {}).items():
            t = spec[0]
            extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if isinstance(t, (list, tuple)):
                out.append((name, "COMBO", list(t), extra, section == "optional"))
            elif t == "COMBO":
                out.append((name, "COMBO", list(extra.get("options", [])), extra, section == "optional"))
            else:
                out.append((name, t, None, extra, section == "optional"))
    return out


def render_node(node_id: str, cls, lang: str, zh: Dict[str, Any], display: str) -> str:
    t = TEXT[lang]
    loc = zh.get(node_id, {}) if lang == "zh" else {}
    title = loc.get("display_name") or display
    desc = loc.get("description") if lang == "zh" else getattr(cls, "DESCRIPTION", "")
    lines = [f"### {title} (`{node_id}`)", ""]
    if desc:
        lines += [_cell(desc), ""]
    lines += [
        f"| {t['inputs']} | {t['type']} | {t['range']} | {t['api']} | {t['default']} | {t['meaning']} |",
        "|---|---|---|---|---|---|",
    ]
    for name, kind, options, extra, optional in _inputs(cls):
        field = FIELDS.get(node_id, {}).get(name)
        table = ENDPOINT_LIMITS[getattr(cls, "ENDPOINT", None) or "img2img"]
        lim = table.get(field) if field else None
        if kind in ("INT", "FLOAT"):
            rng = f"{_num(extra.get('min', '-'))} .. {_num(extra.get('max', '-'))}"
            if extra.get("step") is not None and kind == "FLOAT":
                rng += f" (step {_num(extra['step'])})"
            default = _num(extra.get("default", "")) if "default" in extra else ""
        elif kind == "COMBO":
            listed = model_list(extra)
            if listed:
                rng = t["models"].format(listed[0] + (", filter.is_inpainting" if listed[1] else ""))
                if options and options[0] in ("None", "none"):
                    rng += f"; `{options[0]}`"
                default = f"`{options[0]}`" if options and options[0] in ("None", "none") else ""
            else:
                shown = options if len(options) <= 6 else None
                rng = ", ".join(f"`{o}`" for o in shown) if shown else t["options"].format(len(options))
                default = f"`{extra.get('default', options[0] if options else '')}`"
        elif kind == "STRING":
            rng = "multiline" if extra.get("multiline") else "text"
            if lang == "zh":
                rng = "多行文本" if extra.get("multiline") else "文本"
            default = f"`{extra['default']}`" if extra.get("default") else ""
        elif kind == "BOOLEAN":
            rng = "true / false"
            default = f"`{str(extra.get('default', False)).lower()}`"
        else:
            rng = t["link"]
            default = ""
        api = lim.describe() if lim else ""
        if lang == "zh":
            meaning = (loc.get("inputs", {}).get(name, {}) or {}).get("tooltip", "")
            shown_name = f"`{name}`（{loc.get('inputs', {}).get(name, {}).get('name', name)}）"
        else:
            meaning = extra.get("tooltip") or (lim.doc if lim else "")
            shown_name = f"`{name}`"
        typ = kind + (f" ({t['optional']})" if optional else "")
        lines.append(
            f"| {shown_name} | {typ} | {_cell(rng)} | {_cell(api)} | {_cell(default)} | {_cell(meaning)} |"
        )
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    outs = []
    for i, (n, ty) in enumerate(zip(names, cls.RETURN_TYPES)):
        if lang == "zh":
            zn = (loc.get("outputs", {}).get(str(i), {}) or {}).get("name")
            outs.append(f"`{n}`（{zn}） {ty}" if zn else f"`{n}` {ty}")
        else:
            outs.append(f"`{n}` {ty}")
    lines += ["", f"{t['outputs']}: " + ", ".join(outs), ""]
    return "\n".join(lines)


def render(lang: str) -> str:
    pack = load_pack()
    zh = load_zh() if lang == "zh" else {}
    display = getattr(pack, "NODE_DISPLAY_NAME_MAPPINGS", {})
    parts = [START, "", f"_{TEXT[lang]['generated']}_", ""]
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        parts.append(render_node(node_id, cls, lang, zh, display.get(node_id, node_id)))
    parts.append(END)
    return "\n".join(parts)


def current_block(text: str) -> Optional[str]:
    s, e = text.find(START), text.find(END)
    if s < 0 or e < 0:
        return None
    return text[s : e + len(END)]


def update(path: str, lang: str, check: bool) -> bool:
    """Rewrite (or, with ``check``, compare) one README's block. True when it was already fresh."""
    with open(path, "r", encoding="utf-8") as fh:
        text = fh.read()
    old = current_block(text)
    if old is None:
        raise SystemExit(f"{path} has no {START} ... {END} block")
    new = render(lang)
    if old == new:
        return True
    if not check:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text.replace(old, new))
    return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Render the node reference into README.md and README.zh.md.")
    ap.add_argument("--check", action="store_true", help="only report whether the blocks are fresh")
    args = ap.parse_args(argv)
    stale = [lang for lang, path in README.items() if not update(path, lang, args.check)]
    if stale:
        print(("stale: " if args.check else "rewrote: ") + ", ".join(README[lang] for lang in stale))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
