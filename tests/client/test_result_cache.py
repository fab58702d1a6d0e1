"""The result cache against the sandbox over real sockets: a fixed-seed request answered once is not a new
(billed) task again, in this process or the next; anything different is; broken entries are misses."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import types

import numpy as np
import torch
from PIL import Image

from helpers import ROOT, load_pack
from helpers import base_request, photo_like, png_b64
from client.result_cache_support import OTHER_CHECKPOINT, entries, png_of
from ppinfra.img2img_request import ControlNetUnit

# --------------------------------------------------------------------------- across a restart

CHILD = r"""
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
from PIL import Image
from ppinfra.client import PPInfraClient
from ppinfra.images import encode_uploads
from ppinfra.img2img_request import Img2ImgRequest

(b64,) = encode_uploads([("request.image_base64", Image.open(sys.argv[2]).convert("RGB"))])
req = Img2ImgRequest(model_name="dreamshaper_8_93211.safetensors", image_base64=b64,
                     prompt="a harbour at dusk", width=256, height=256, image_num=2, seed=int(sys.argv[3]))
with PPInfraClient() as client:
    r = client.img2img(req)
print(json.dumps({"task_id": r.task_id, "from_cache": r.from_cache, "seed": r.seed,
                  "jpeg": b64.startswith("/9j/"),
                  "images": [hashlib.sha256(b).hexdigest() for b in r.images]}))
"""


def run_child(tmp_path, sandbox, api_key, image_path, seed):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PPINFRA_")}
    env.update(
        PPINFRA_API_KEY=api_key,
        PPINFRA_BASE_URL=sandbox.base_url,
        PPINFRA_CONFIG=str(tmp_path / "none.json"),
        PPINFRA_CACHE_DIR=str(tmp_path / "cache"),
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, ROOT, image_path, str(seed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_hit_after_a_restart_runs_no_new_task(sandbox, api_key, isolated_env, tmp_path):
    path = str(tmp_path / "in.png")
    Image.fromarray((photo_like(1024, 1024, seed=3) * 255).astype(np.uint8)).save(path)
    first = run_child(tmp_path, sandbox, api_key, path, 42)
    assert (
        first["jpeg"] and not first["from_cache"] and len(sandbox.tasks) == 1
    )  # the lossy upload is cached too
    submits = len(sandbox.submits)
    second = run_child(tmp_path, sandbox, api_key, path, 42)  # a new process: ComfyUI restarted
    assert second["from_cache"] and len(sandbox.tasks) == 1 and len(sandbox.submits) == submits
    assert (second["task_id"], second["seed"], second["images"]) == (first["task_id"], 42, first["images"])
    stored = [hashlib.sha256(b).hexdigest() for b in sandbox.tasks[first["task_id"]].images]
    assert second["images"] == stored


def test_seed_minus_one_is_never_cached(make_client, sandbox, isolated_env):
    client = make_client()
    req = base_request(seed=-1, width=128, height=128)
    a, b = client.img2img(req), client.img2img(req)
    assert not a.from_cache and not b.from_cache and len(sandbox.tasks) == 2
    client.img2img(base_request(seed=None, width=128, height=128))  # no seed sent: the server picks as well
    assert len(sandbox.tasks) == 3 and entries(isolated_env) == []


# --------------------------------------------------------------------------- what counts as the same request


def test_a_hit_is_the_same_images_handed_over_like_downloads(make_client, sandbox):
    client = make_client()
    req = base_request(seed=5, width=128, height=128, image_num=3)
    first = client.img2img(req)
    seen = []
    again = client.img2img(req, on_image=lambda task_id, i, data: seen.append((task_id, i, data)))
    assert again.from_cache and not first.from_cache and len(sandbox.tasks) == 1
    assert again.images == first.images and again.seed == first.seed == 5 and again.task_id == first.task_id
    assert sorted(seen, key=lambda s: s[1]) == [(first.task_id, i, b) for i, b in enumerate(first.images)]


def test_any_field_or_pixel_that_differs_is_a_new_task(make_client, sandbox, make_sandbox):
    pixels = (photo_like(64, 48, seed=1) * 255).astype(np.uint8)
    nudged = pixels.copy()
    nudged[10, 20, 1] ^= 1  # one pixel, one bit
    unit = ControlNetUnit("control_v11p_sd15_canny", png_b64(seed=3), 1.0, "canny")
    unit_nudged_arr = np.asarray(Image.open(io.BytesIO(base64.b64decode(unit.image_base64)))).copy()
    unit_nudged_arr[0, 0, 0] ^= 1
    base = base_request(seed=9, width=128, height=128, image_base64=png_of(pixels), controlnet_units=(unit,))
    client = make_client()
    client.img2img(base)
    assert client.img2img(base).from_cache and len(sandbox.tasks) == 1
    variants = {
        "prompt": dict(prompt="a dog"),
        "negative_prompt": dict(negative_prompt="blurry"),
        "model_name": dict(model_name=OTHER_CHECKPOINT),
        "width": dict(width=136),
        "steps": dict(steps=21),
        "guidance_scale": dict(guidance_scale=7.0),
        "sampler_name": dict(sampler_name="DDIM"),
        "seed": dict(seed=10),
        "strength": dict(strength=0.5),
        "image_num": dict(image_num=2),
        "response_image_type": dict(response_image_type="jpeg"),
        "clip_skip": dict(clip_skip=2),
        "one pixel": dict(image_base64=png_of(nudged)),
        "control map pixel": dict(
            controlnet_units=(ControlNetUnit(unit.model_name, png_of(unit_nudged_arr), 1.0, "canny"),)
        ),
        "controlnet strength": dict(
            controlnet_units=(ControlNetUnit(unit.model_name, unit.image_base64, 0.9, "canny"),)
        ),
    }
    for name, change in variants.items():
        before = len(sandbox.tasks)
        result = client.img2img(base_request(**{**_fields(base), **change}))
        assert not result.from_cache and len(sandbox.tasks) == before + 1, name
    other = make_sandbox()  # another host: the same bytes are another provider's task
    result = make_client(base_url=other.base_url).img2img(base)
    assert not result.from_cache and len(other.tasks) == 1
    assert client.img2img(base).from_cache  # the original is still there


def _fields(req):
    import dataclasses

    return {f.name: getattr(req, f.name) for f in dataclasses.fields(req)}


# --------------------------------------------------------------------------- the node


def test_node_status_line_and_info_say_from_cache(sandbox, api_key, isolated_env, monkeypatch):
    pack = load_pack()
    texts = []
    instance = types.SimpleNamespace(send_progress_text=lambda text, node_id, *a: texts.append(text))
    monkeypatch.setitem(
        sys.modules, "server", types.SimpleNamespace(PromptServer=types.SimpleNamespace(instance=instance))
    )
    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("PPINFRA_API_KEY", api_key)
    node = pack.NODE_CLASS_MAPPINGS["PPInfraImg2Img"]
    spec = node.INPUT_TYPES()["required"]
    inputs = {
        n: (s[1]["default"] if len(s) > 1 and "default" in s[1] else s[0][0])
        for n, s in spec.items()
        if n != "image"
    }
    inputs.update(
        model_name="dreamshaper_8_93211.safetensors",
        prompt="a lighthouse",
        width=128,
        height=128,
        seed=8,
        sd_vae="None",
        unique_id="5",
    )
    image = torch.from_numpy(photo_like(96, 64, seed=2)[None])
    import asyncio

    first = asyncio.run(node().generate(image=image, **inputs))
    assert json.loads(first[2])["from_cache"] == [False]
    assert not any("from cache" in t for t in texts)
    second = asyncio.run(node().generate(image=image, **inputs))
    info = json.loads(second[2])
    assert info["from_cache"] == [True] and len(sandbox.tasks) == 1
    assert any("from cache, no charge" in t for t in texts)
    assert torch.equal(first[0], second[0]) and second[1] == 8
