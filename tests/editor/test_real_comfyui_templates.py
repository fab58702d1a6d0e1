"""The three templates of issue 16 queued as shipped in a real ComfyUI, against the sandbox.

txt2img_lora, inpainting_mask and img2img_upscale: each API copy
(example_workflows/api/) goes through ComfyUI's ``/prompt`` unchanged and must
finish with images saved. Optional like the other real-ComfyUI tests: runs only
when ``COMFYUI_DIR`` names a ComfyUI checkout (tests/editor/comfy_process.py).
The ``keyed_sandbox`` speaks as Novita (the sandbox's default provider), the host
that serves upscale.
"""

from __future__ import annotations

import base64
import io
import json
import os
from typing import Any, Dict, List, Tuple

import pytest

from editor.comfy_process import EXAMPLES, needs_comfyui

pytestmark = needs_comfyui

ENDPOINT = {"txt2img_lora": "txt2img", "inpainting_mask": "inpainting", "img2img_upscale": "upscale"}


def example(name: str) -> Dict[str, Any]:
    with open(os.path.join(EXAMPLES, "api", name + ".json"), "r", encoding="utf-8") as fh:
        return json.load(fh)


def node_of(prompt: Dict[str, Any], class_type: str) -> Dict[str, Any]:
    return next(v for v in prompt.values() if v["class_type"] == class_type)


def decoded_size(b64: str) -> Tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        return im.size


def saved_sizes(comfy, entry: Dict[str, Any]) -> List[Tuple[int, int]]:
    from PIL import Image

    sizes = []
    for out in entry["outputs"].values():
        for img in out.get("images", []):
            if img.get("type", "output") != "output":
                continue
            path = os.path.join(comfy.base, "output", img.get("subfolder", ""), img["filename"])
            with Image.open(path) as im:
                sizes.append(im.size)
    return sizes


def run_as_shipped(comfy, sandbox, name: str):
    """Queue the API copy unchanged; (history entry, saved image sizes, the new submits' bodies)."""
    before = len(sandbox.submitted(ENDPOINT[name]))
    entry = comfy.wait(comfy.queue(example(name)), timeout=180)
    assert entry["status"]["status_str"] == "success", (name, json.dumps(entry["status"])[:2000])
    sizes = saved_sizes(comfy, entry)
    assert sizes, f"{name}: no image saved"
    new = sandbox.submitted(ENDPOINT[name])[before:]
    assert new, f"{name}: the sandbox received no {ENDPOINT[name]} submit"
    return entry, sizes, new


def test_sandbox_serves_upscale(keyed_sandbox):
    assert keyed_sandbox.provider == "novita"


def test_txt2img_lora_runs_as_shipped(keyed_comfy, keyed_sandbox):
    prompt = example("txt2img_lora")
    node = node_of(prompt, "PPInfraTxt2Img")["inputs"]
    _, sizes, bodies = run_as_shipped(keyed_comfy, keyed_sandbox, "txt2img_lora")
    req = bodies[-1]["request"]
    assert req["loras"] and req["loras"][0]["model_name"] == "add_detail_44319"
    assert len(sizes) == node["image_num"]
    assert set(sizes) == {(node["width"], node["height"])}


def test_inpainting_mask_runs_as_shipped_with_loadimage_alpha_as_the_mask(keyed_comfy, keyed_sandbox):
    from PIL import Image

    prompt = example("inpainting_mask")
    node = node_of(prompt, "PPInfraInpaint")["inputs"]
    assert node["model_name"] == "sd-v1-5-inpainting.ckpt"
    with Image.open(os.path.join(EXAMPLES, "input", node_of(prompt, "LoadImage")["inputs"]["image"])) as im:
        source = im.size
        assert "A" in im.getbands(), "the example's mask is the PNG's transparent area"
    _, sizes, bodies = run_as_shipped(keyed_comfy, keyed_sandbox, "inpainting_mask")
    req = bodies[-1]["request"]
    assert req["model_name"] == "sd-v1-5-inpainting.ckpt"
    assert decoded_size(req["image_base64"]) == source
    assert decoded_size(req["mask_image_base64"]) == source, "the mask must be the image's size"
    with Image.open(io.BytesIO(base64.b64decode(req["mask_image_base64"]))) as mask:
        lo, hi = mask.convert("L").getextrema()
    assert (lo, hi) == (0, 255), "LoadImage's alpha hole arrives as white on black"
    assert sizes == [source]


def test_img2img_upscale_runs_as_shipped_and_scales_the_img2img_output(keyed_comfy, keyed_sandbox):
    prompt = example("img2img_upscale")
    factor = node_of(prompt, "PPInfraUpscale")["inputs"]["scale_factor"]
    img2img_before = len(keyed_sandbox.submitted("img2img"))
    _, sizes, bodies = run_as_shipped(keyed_comfy, keyed_sandbox, "img2img_upscale")
    assert len(keyed_sandbox.submitted("img2img")) == img2img_before + 1
    req = bodies[-1]["request"]
    assert req["scale_factor"] == pytest.approx(factor)
    w, h = decoded_size(req["image_base64"])  # what img2img returned, as the upscale node sent it
    ii = node_of(prompt, "PPInfraImg2Img")["inputs"]
    assert (w, h) == (ii["width"], ii["height"])
    assert sizes == [(round(w * factor), round(h * factor))]
