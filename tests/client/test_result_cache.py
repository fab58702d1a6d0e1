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
import pytest
import torch
from PIL import Image

from helpers import ROOT, load_pack
from helpers import base_request, photo_like, png_b64
from ppinfra import result_cache
from ppinfra.img2img_request import ControlNetUnit

OTHER_CHECKPOINT = "realisticVisionV51_v51VAE_94301.safetensors"


def results_dir(isolated_env) -> str:
    return str(isolated_env / "cache" / result_cache.SUBDIR)


def entries(isolated_env):
    d = results_dir(isolated_env)
    return sorted(f for f in os.listdir(d) if f.endswith(result_cache.SUFFIX)) if os.path.isdir(d) else []


def png_of(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


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


# --------------------------------------------------------------------------- switching off, size cap, damage


def test_switched_off_by_env_or_setting(make_client, sandbox, isolated_env, monkeypatch):
    req = base_request(seed=3, width=128, height=128)
    off = make_client(result_cache=False)
    off.img2img(req)
    off.img2img(req)
    assert len(sandbox.tasks) == 2 and entries(isolated_env) == []
    monkeypatch.setenv(result_cache.ENV_ENABLED, "0")
    client = make_client()
    client.img2img(req)
    assert not client.img2img(req).from_cache and len(sandbox.tasks) == 4 and entries(isolated_env) == []
    monkeypatch.delenv(result_cache.ENV_ENABLED)
    client.img2img(req)
    assert client.img2img(req).from_cache and len(sandbox.tasks) == 5


def test_least_recently_used_entry_is_evicted_under_the_cap(make_client, sandbox, isolated_env, monkeypatch):
    client = make_client()
    reqs = {s: base_request(seed=s, width=128, height=128) for s in (1, 2, 3)}
    client.img2img(reqs[1])
    client.img2img(reqs[2])
    a, b = (os.path.join(results_dir(isolated_env), name) for name in _names(client, reqs[1], reqs[2]))
    os.utime(a, (1_000_000, 1_000_000))  # both old, b the newer of the two ...
    os.utime(b, (2_000_000, 2_000_000))
    assert client.img2img(reqs[1]).from_cache  # ... until a hit makes a the most recently used
    assert os.path.getmtime(a) > os.path.getmtime(b)
    monkeypatch.setenv(result_cache.ENV_MAX_BYTES, str(os.path.getsize(a) + os.path.getsize(b) + 100))
    client.img2img(reqs[3])  # a third entry does not fit: the least recently used (b) goes
    assert os.path.exists(a) and not os.path.exists(b) and len(entries(isolated_env)) == 2
    tasks = len(sandbox.tasks)
    assert client.img2img(reqs[1]).from_cache and len(sandbox.tasks) == tasks
    assert not client.img2img(reqs[2]).from_cache and len(sandbox.tasks) == tasks + 1
    total = sum(os.path.getsize(os.path.join(results_dir(isolated_env), f)) for f in entries(isolated_env))
    assert total <= int(os.environ[result_cache.ENV_MAX_BYTES])


def test_an_entry_over_the_cap_is_not_kept(make_client, sandbox, isolated_env):
    client = make_client(result_cache_max_bytes=1000)
    req = base_request(seed=4, width=128, height=128)
    client.img2img(req)
    assert not client.img2img(req).from_cache and len(sandbox.tasks) == 2 and entries(isolated_env) == []


WRITER = r"""
import io, sys
sys.path.insert(0, sys.argv[1])
from PIL import Image
from ppinfra.result_cache import ResultCache
cache = ResultCache(sys.argv[2], max_bytes=int(sys.argv[4]))
for i in range(40):
    buf = io.BytesIO()
    Image.new("RGB", (64 + i, 64), (int(sys.argv[3]) * 60, i, 0)).save(buf, format="PNG")
    key = "shared" if i % 2 else f"own-{sys.argv[3]}-{i}"
    cache.put(key, task_id=f"w{sys.argv[3]}-{i}", images=[buf.getvalue()] * 2, seed=i, image_type="png")
"""


def test_concurrent_writers_and_a_reader_see_only_whole_entries(tmp_path):
    directory = str(tmp_path / "results")
    cap = 40_000  # small: the writers evict each other's entries all along
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, ROOT, directory, str(n), str(cap)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    reader = result_cache.ResultCache(directory, max_bytes=cap)
    hits = 0
    while any(w.poll() is None for w in writers):
        entry = reader.get("shared", expected=2)
        if entry is not None:  # never a torn entry: both images present, equal, and readable
            hits += 1
            assert entry.images[0] == entry.images[1] and entry.task_id.startswith("w")
            Image.open(io.BytesIO(entry.images[0])).load()
    assert [w.wait() for w in writers] == [0, 0, 0], [w.stderr.read() for w in writers]
    assert hits > 0 and reader.get("shared", expected=2) is not None
    assert not [f for f in os.listdir(directory) if not f.endswith(result_cache.SUFFIX)]  # no temp file left
    assert reader.info()["bytes"] <= cap + 2 * 1024  # at most the last writer's own entry above the cap


def _names(client, *reqs):
    slots = [result_cache.lookup_for(client.settings, r) for r in reqs]
    return [os.path.basename(s.cache.path(s.key)) for s in slots]


def _rewrite(path, damage):
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path, "wb") as fh:
        fh.write(damage(data))


def _bad_image_entry(path):
    # A well-formed entry whose checksums match, but whose "image" is no image at all.
    key = os.path.basename(path)[: -len(result_cache.SUFFIX)]
    result_cache.ResultCache(os.path.dirname(path)).put(
        key, task_id="t", images=[b"not an image at all"], seed=6, image_type="png"
    )


DAMAGE = {
    "truncated": lambda p: _rewrite(p, lambda d: d[: len(d) // 2]),
    "empty": lambda p: _rewrite(p, lambda d: b""),
    "bad json": lambda p: _rewrite(
        p, lambda d: d[: len(result_cache.MAGIC) + 8] + b"{" * 40 + d[len(result_cache.MAGIC) + 48 :]
    ),
    "flipped image byte": lambda p: _rewrite(p, lambda d: d[:-10] + bytes([d[-10] ^ 0xFF]) + d[-9:]),
    "wrong magic": lambda p: _rewrite(p, lambda d: b"X" + d[1:]),
    "bad image bytes": _bad_image_entry,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_corrupt_entry_is_a_miss_never_a_failure(make_client, sandbox, isolated_env, damage):
    client = make_client()
    req = base_request(seed=6, width=128, height=128)
    first = client.img2img(req)
    (name,) = entries(isolated_env)
    DAMAGE[damage](os.path.join(results_dir(isolated_env), name))
    again = client.img2img(req)
    assert not again.from_cache and len(sandbox.tasks) == 2 and len(again.images) == 1
    Image.open(io.BytesIO(again.images[0])).load()
    third = client.img2img(req)  # the broken entry was replaced by the new task's result
    assert third.from_cache and third.images == again.images and len(sandbox.tasks) == 2
    assert first.task_id != again.task_id


def test_the_key_is_in_no_cache_file(make_client, sandbox, isolated_env, api_key):
    client = make_client()
    for seed in (1, 2):
        req = base_request(seed=seed, width=128, height=128, image_num=2)
        client.img2img(req)
        client.img2img(req)
    files = [os.path.join(d, f) for d, _, fs in os.walk(isolated_env / "cache") for f in fs]
    assert len([f for f in files if f.endswith(result_cache.SUFFIX)]) == 2
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        for needle in (api_key, api_key[-8:], base64.b64encode(api_key.encode()).decode(), "Bearer"):
            assert needle.encode() not in data, (path, needle)


def test_bad_size_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(result_cache.ENV_MAX_BYTES, "lots")
    with pytest.raises(Exception) as info:
        result_cache.max_bytes()
    assert (
        result_cache.ENV_MAX_BYTES in str(info.value)
        and "'lots'" in str(info.value)
        and "2G" in str(info.value)
    )
    monkeypatch.setenv(result_cache.ENV_MAX_BYTES, "500M")
    assert result_cache.max_bytes() == 500 * 1024**2


def test_command_line_info_and_clear(make_client, sandbox, isolated_env):
    client = make_client()
    for seed in (1, 2):
        client.img2img(base_request(seed=seed, width=128, height=128))
    env = dict(os.environ)

    def cli(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "ppinfra", "cache", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "2 result(s)" in cli("info") and results_dir(isolated_env) in cli("info")
    assert "removed 2 cached result(s)" in cli("clear")
    assert entries(isolated_env) == [] and "0 result(s)" in cli("info")
    assert not client.img2img(base_request(seed=1, width=128, height=128)).from_cache


def test_the_cli_uses_the_same_cache(sandbox, api_key, isolated_env, tmp_path):
    src = tmp_path / "inputs"
    src.mkdir()
    for i in range(2):
        Image.fromarray((photo_like(600, 400, seed=i) * 255).astype(np.uint8)).save(src / f"p{i}.png")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PPINFRA_")}
    env.update(
        PPINFRA_API_KEY=api_key,
        PPINFRA_CONFIG=str(tmp_path / "none.json"),
        PPINFRA_CACHE_DIR=str(isolated_env / "cache"),
    )

    def cli(out, seed):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ppinfra",
                "img2img",
                "--base-url",
                sandbox.base_url,
                "--image",
                str(src),
                "--prompt",
                "a harbour",
                "--width",
                "256",
                "--height",
                "256",
                "--seed",
                str(seed),
                "--out",
                str(tmp_path / out),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return {
            f: (tmp_path / out / f).read_bytes()
            for f in sorted(os.listdir(tmp_path / out))
            if not f.startswith(".")
        }

    first = cli("a", 21)
    assert len(sandbox.tasks) == 2 and len(first) == 2
    second = cli("b", 21)  # another output folder: no journal to skip by, only the cache
    assert len(sandbox.tasks) == 2 and second == first
    cli("c", -1)
    assert len(sandbox.tasks) == 4


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
