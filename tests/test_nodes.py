"""The nodes driven the way ComfyUI drives them, against the sandbox over real sockets.

Inputs are built from ``INPUT_TYPES`` (defaults for every widget), the method
named by ``FUNCTION`` is called with keyword arguments and awaited when it is a
coroutine. ComfyUI itself is not installed here: the ``comfy`` fixture puts
small stand-ins for the few ComfyUI modules the bridge imports into
``sys.modules`` (interrupt flag, progress bar whose hook clears the flag like
ComfyUI's does, status text, user directory).
"""
from __future__ import annotations

import asyncio
import base64
import importlib
import inspect
import io
import json
import logging
import math
import sys
import threading
import time
import types
from typing import Any, Dict, List

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import PACK_NAME, load_pack

pack = load_pack()
NODES = pack.NODE_CLASS_MAPPINGS
errors = importlib.import_module(f"{PACK_NAME}.ppinfra.errors")
images_mod = importlib.import_module(f"{PACK_NAME}.ppinfra.images")
options = importlib.import_module(f"{PACK_NAME}.nodes.options")
catalog_mod = importlib.import_module(f"{PACK_NAME}.nodes.catalog")

REAL_REFRESH_SOON = options.refresh_soon
IMG2IMG = NODES["PPInfraImg2Img"]
CONTROLNET = NODES["PPInfraControlNetUnit"]
LORAS = NODES["PPInfraLoraStack"]
EMBEDDING = NODES["PPInfraEmbedding"]
IP_ADAPTER = NODES["PPInfraIPAdapter"]

SD15 = "dreamshaper_8_93211.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


# --------------------------------------------------------------------------- helpers

def widget_defaults(cls) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for section in ("required", "optional"):
        for name, spec in (cls.INPUT_TYPES().get(section) or {}).items():
            kind = spec[0]
            extra = spec[1] if len(spec) > 1 else {}
            if isinstance(kind, list):
                out[name] = extra.get("default", kind[0])
            elif kind in ("INT", "FLOAT", "STRING", "BOOLEAN"):
                out[name] = extra["default"]
    return out


def call(cls, **given):
    """Call a node as ComfyUI does: every widget filled (defaults unless given), keyword arguments, awaited."""
    declared = {n for s in ("required", "optional", "hidden") for n in (cls.INPUT_TYPES().get(s) or {})}
    unknown = set(given) - declared
    assert not unknown, f"not inputs of {cls.__name__}: {unknown}"
    kwargs = {**widget_defaults(cls), **given}
    result = getattr(cls(), cls.FUNCTION)(**kwargs)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    assert isinstance(result, tuple) and len(result) == len(cls.RETURN_TYPES)
    return result


def solid(color, b: int = 1, h: int = 64, w: int = 96) -> torch.Tensor:
    return torch.tensor(color, dtype=torch.float32).view(1, 1, 1, 3).expand(b, h, w, 3).clone()


def batch(*colors, h: int = 64, w: int = 96) -> torch.Tensor:
    return torch.cat([solid(c, 1, h, w) for c in colors])


def decode_b64(data: str) -> Image.Image:
    im = Image.open(io.BytesIO(base64.b64decode(data)))
    im.load()
    return im.convert("RGB")


def dominant(im_or_array) -> int:
    arr = np.asarray(im_or_array, dtype=np.float32)
    return int(np.argmax(arr.reshape(-1, 3).mean(axis=0)))


def run_img2img(**given):
    params = dict(model_name=SD15, prompt="a lighthouse at dawn", image=solid(RED), seed=7, unique_id="7")
    params.update(given)
    return call(IMG2IMG, **params)


# --------------------------------------------------------------------------- fixtures

class FakeComfy:
    """Stand-ins for comfy.model_management, comfy.utils, server and folder_paths."""

    def __init__(self, user_dir: str) -> None:
        self.flag = False
        self.lock = threading.RLock()
        self.progress: List[tuple] = []
        self.texts: List[tuple] = []
        self.user_dir = user_dir

        class InterruptProcessingException(Exception):
            pass

        self.Interrupt = InterruptProcessingException
        fake = self

        mm = types.ModuleType("comfy.model_management")
        mm.InterruptProcessingException = InterruptProcessingException

        def processing_interrupted():
            with fake.lock:
                return fake.flag

        def throw_exception_if_processing_interrupted():
            with fake.lock:
                if fake.flag:
                    fake.flag = False  # ComfyUI's own function clears the flag: the bridge must not use it
                    raise InterruptProcessingException()

        mm.processing_interrupted = processing_interrupted
        mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted

        utils = types.ModuleType("comfy.utils")

        class ProgressBar:
            def __init__(self, total, node_id=None):
                self.total, self.node_id = total, node_id

            def update_absolute(self, value, total=None, preview=None):
                if total is not None:
                    self.total = total
                throw_exception_if_processing_interrupted()  # as ComfyUI's progress hook does
                fake.progress.append((self.node_id, value, self.total))

        utils.ProgressBar = ProgressBar

        comfy = types.ModuleType("comfy")
        comfy.__path__ = []
        comfy.model_management = mm
        comfy.utils = utils

        server = types.ModuleType("server")

        class PromptServer:
            instance = None

            def send_progress_text(self, text, node_id, sid=None):
                fake.texts.append((node_id, text))

        PromptServer.instance = PromptServer()
        server.PromptServer = PromptServer

        folder_paths = types.ModuleType("folder_paths")
        folder_paths.get_user_directory = lambda: fake.user_dir

        self.modules = {"comfy": comfy, "comfy.model_management": mm, "comfy.utils": utils,
                        "server": server, "folder_paths": folder_paths}

    def interrupt(self) -> None:
        with self.lock:
            self.flag = True


@pytest.fixture(autouse=True)
def no_background_refresh(monkeypatch):
    """Dropdown builds would start model-list refreshes against the sandbox; only the refresh test wants one."""
    monkeypatch.setattr(options, "refresh_soon", lambda: None)


@pytest.fixture
def comfy(monkeypatch, tmp_path):
    fake = FakeComfy(str(tmp_path / "user"))
    for name, module in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return fake


@pytest.fixture
def env(sandbox, isolated_env, monkeypatch, api_key):
    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("PPINFRA_API_KEY", api_key)
    return sandbox


# --------------------------------------------------------------------------- the wire

def test_every_input_reaches_the_wire_as_given(env):
    sandbox = env
    (cn,) = call(CONTROLNET, image=solid(GREEN, h=80, w=80), model_name="control_v11p_sd15_canny", strength=0.8,
                 preprocessor="canny", guidance_start=0.1, guidance_end=0.9)
    (cn,) = call(CONTROLNET, image=solid(BLUE), model_name="control_v11f1p_sd15_depth", strength=0.5,
                 preprocessor="none", guidance_start=0.0, guidance_end=0.6, controlnet=cn)
    (loras,) = call(LORAS, lora_1="add_detail_44319", strength_1=0.6, lora_3="more_details_59655", strength_3=0.3)
    (emb,) = call(EMBEDDING, model_name="EasyNegative")
    (emb,) = call(EMBEDDING, model_name="badhandv4_16755", embeddings=emb)
    (ip,) = call(IP_ADAPTER, image=solid(BLUE, h=48, w=48), model_name="ip-adapter_sd15.bin", strength=0.4)
    images, seed, info = run_img2img(
        image=solid(RED, h=64, w=96), prompt="a portrait, vivid colors", negative_prompt="blurry, text",
        width=256, height=192, image_num=2, steps=30, guidance_scale=6.5, sampler_name="DPM++ 2M Karras",
        seed=99, strength=0.8, clip_skip=2, sd_vae="vae-ft-mse-840000-ema-pruned.ckpt",
        response_image_type="webp", controlnet=cn, loras=loras, embeddings=emb, ip_adapter=ip)

    assert len(sandbox.submits) == 1
    body = sandbox.submits[0]
    req = dict(body["request"])
    assert body["extra"] == {"response_image_type": "webp"}
    main = decode_b64(req.pop("image_base64"))
    assert main.size == (96, 64) and dominant(main) == 0
    units = req.pop("controlnet")["units"]
    assert [decode_b64(u.pop("image_base64")).size for u in units] == [(80, 80), (96, 64)]
    ips = req.pop("ip_adapters")
    assert decode_b64(ips[0].pop("image_base64")).size == (48, 48)
    assert req == {
        "model_name": SD15, "prompt": "a portrait, vivid colors", "negative_prompt": "blurry, text",
        "width": 256, "height": 192, "image_num": 2, "steps": 30, "guidance_scale": 6.5,
        "sampler_name": "DPM++ 2M Karras", "seed": 99, "strength": 0.8, "clip_skip": 2,
        "sd_vae": "vae-ft-mse-840000-ema-pruned.ckpt",
        "loras": [{"model_name": "add_detail_44319", "strength": 0.6},
                  {"model_name": "more_details_59655", "strength": 0.3}],
        "embeddings": [{"model_name": "EasyNegative"}, {"model_name": "badhandv4_16755"}],
    }
    assert units == [
        {"model_name": "control_v11p_sd15_canny", "strength": 0.8, "preprocessor": "canny",
         "guidance_start": 0.1, "guidance_end": 0.9},
        {"model_name": "control_v11f1p_sd15_depth", "strength": 0.5, "guidance_start": 0.0, "guidance_end": 0.6},
    ]
    assert ips == [{"model_name": "ip-adapter_sd15.bin", "strength": 0.4}]

    assert isinstance(images, torch.Tensor) and images.dtype == torch.float32
    assert tuple(images.shape) == (2, 192, 256, 3)
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    assert seed == 99
    data = json.loads(info)
    assert data["task_ids"] == list(sandbox.tasks) and data["seeds"] == [99]
    assert set(data["timings"][0]) >= {"submit", "wait", "download", "total"}
    assert data["request"]["request"]["image_base64"].endswith("base64 chars>")
    assert "base64 chars>" in json.dumps(data["request"]["request"]["controlnet"])


def test_defaults_leave_optional_fields_to_the_server(env):
    images, seed, _ = run_img2img(image=solid(RED, h=300, w=200), seed=-1)
    req = env.submits[0]["request"]
    w, h = images_mod.match_input_size(200, 300)
    assert (req["width"], req["height"]) == (w, h) == (200, 304)
    assert req["seed"] == -1 and req["strength"] == 0.75 and req["steps"] == 20 and req["image_num"] == 1
    assert req["sampler_name"] == "Euler a" and req["guidance_scale"] == 7.5 and req["negative_prompt"] == ""
    for absent in ("clip_skip", "sd_vae", "controlnet", "loras", "embeddings", "ip_adapters"):
        assert absent not in req
    assert env.submits[0]["extra"] == {"response_image_type": "png"}
    assert tuple(images.shape) == (1, 304, 200, 3)
    assert seed >= 0  # the seed the server picked, not -1


# --------------------------------------------------------------------------- batches

def test_batch_fans_out_and_keeps_input_order(env):
    images, _, info = run_img2img(image=batch(RED, GREEN, BLUE, h=128, w=160), image_num=2, seed=3)
    assert tuple(images.shape) == (6, 128, 160, 3)
    # Each pair of outputs derives from its own input image (the sandbox grades the input).
    assert [dominant(images[i].numpy()) for i in range(6)] == [0, 0, 1, 1, 2, 2]
    data = json.loads(info)
    assert len(data["task_ids"]) == 3 and len(env.submits) == 3
    for i, task_id in enumerate(data["task_ids"]):
        sent = decode_b64(env.tasks[task_id].request["image_base64"])
        assert dominant(sent) == i


def test_batch_concurrency_is_bounded(env, monkeypatch):
    monkeypatch.setenv("PPINFRA_RESULT_CACHE", "0")  # result cache: repeated items would reuse a finished task
    env.configure(queue_seconds=0.0, task_seconds=0.4)
    images, _, info = run_img2img(image=batch(RED, GREEN, BLUE, RED, GREEN, BLUE), seed=1)
    assert images.shape[0] == 6
    spans = []
    for task_id in json.loads(info)["task_ids"]:
        start = env.tasks[task_id].created
        end = max(r.time for r in env.requests if r.server == "images" and task_id in r.path)
        spans.append((start, end))
    overlap = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert 2 <= overlap <= 4, spans


def test_controlnet_batch_of_one_applies_to_every_item(env):
    (cn,) = call(CONTROLNET, image=solid(BLUE), model_name="control_v11p_sd15_canny")
    run_img2img(image=batch(RED, GREEN), controlnet=cn)
    sent = [decode_b64(s["request"]["controlnet"]["units"][0]["image_base64"]) for s in env.submits]
    assert len(sent) == 2 and all(dominant(im) == 2 for im in sent)


def test_controlnet_and_ip_adapter_batches_pair_item_by_item(env):
    (cn,) = call(CONTROLNET, image=batch(GREEN, BLUE), model_name="control_v11p_sd15_canny")
    (ip,) = call(IP_ADAPTER, image=batch(BLUE, RED))
    _, _, info = run_img2img(image=batch(RED, GREEN), controlnet=cn, ip_adapter=ip)
    task_ids = json.loads(info)["task_ids"]
    pairs = []
    for task_id in task_ids:
        req = env.tasks[task_id].request
        pairs.append((dominant(decode_b64(req["image_base64"])),
                      dominant(decode_b64(req["controlnet"]["units"][0]["image_base64"])),
                      dominant(decode_b64(req["ip_adapters"][0]["image_base64"]))))
    assert pairs == [(0, 1, 2), (1, 2, 0)]


def test_shared_side_image_is_encoded_once_and_every_body_fits_the_cap(env, monkeypatch):
    real = images_mod.encode_uploads
    calls = []

    def counting(items, *args, **kwargs):
        calls.append(len(items))
        return real(items, *args, **kwargs)

    monkeypatch.setattr(images_mod, "encode_uploads", counting)
    rng = np.random.default_rng(0)
    noise = lambda b: torch.from_numpy(rng.random((b, 1400, 1400, 3), dtype=np.float32))
    (cn,) = call(CONTROLNET, image=noise(1), model_name="control_v11p_sd15_canny")
    (ip,) = call(IP_ADAPTER, image=noise(2))
    run_img2img(image=noise(2), controlnet=cn, ip_adapter=ip, width=512, height=512)
    assert calls == [2 + 1 + 2]  # two inputs, one shared control image, two reference images
    bodies = [r.body for r in env.requests if r.path == "/v3/async/img2img"]
    assert len(bodies) == 2 and all(len(b) <= 10 * 1000 * 1000 for b in bodies), [len(b) for b in bodies]
    units = [s["request"]["controlnet"]["units"][0]["image_base64"] for s in env.submits]
    assert units[0] == units[1]


@pytest.mark.parametrize("side", ["controlnet", "ip_adapter"])
def test_mismatched_side_batch_is_a_clear_error_before_any_request(env, side):
    if side == "controlnet":
        (value,) = call(CONTROLNET, image=batch(RED, GREEN, BLUE), model_name="control_v11p_sd15_canny")
    else:
        (value,) = call(IP_ADAPTER, image=batch(RED, GREEN, BLUE))
    with pytest.raises(errors.ValidationError) as info:
        run_img2img(image=batch(RED, GREEN), **{side: value})
    msg = str(info.value)
    assert "a batch of 3" in msg and "1 image" in msg and "or 2" in msg
    assert ("controlnet.units[0].image" if side == "controlnet" else "ip_adapters[0].image") in msg
    assert env.submits == []


# --------------------------------------------------------------------------- chains and totals

def test_chains_are_immutable_and_keep_order():
    (first,) = call(LORAS, lora_1="add_detail_44319", strength_1=0.5)
    snapshot = tuple(first)
    (second,) = call(LORAS, lora_2="more_details_59655", strength_2=0.25, loras=first)
    assert first == snapshot and isinstance(first, tuple) and isinstance(second, tuple)
    assert [(l.model_name, l.strength) for l in second] == [("add_detail_44319", 0.5), ("more_details_59655", 0.25)]
    with pytest.raises(Exception):
        second[0].strength = 1.0  # frozen
    (cn1,) = call(CONTROLNET, image=solid(RED), model_name="control_v11p_sd15_canny")
    (cn2,) = call(CONTROLNET, image=solid(GREEN), model_name="control_v11f1p_sd15_depth", controlnet=cn1)
    assert len(cn1) == 1 and [u.model_name for u in cn2] == ["control_v11p_sd15_canny", "control_v11f1p_sd15_depth"]
    (e1,) = call(EMBEDDING, model_name="EasyNegative")
    (e2,) = call(EMBEDDING, model_name="badhandv4_16755", embeddings=e1)
    assert len(e1) == 1 and [e.model_name for e in e2] == ["EasyNegative", "badhandv4_16755"]


def test_lora_total_across_chained_stacks_is_capped_at_five():
    names = ["add_detail_44319", "more_details_59655", "add_detail_44319"]
    (three,) = call(LORAS, **{f"lora_{i + 1}": n for i, n in enumerate(names)})
    (five,) = call(LORAS, lora_1="more_details_59655", lora_5="add_detail_44319", loras=three)
    assert len(five) == 5
    with pytest.raises(errors.ValidationError) as info:
        call(LORAS, lora_1="more_details_59655", lora_2="add_detail_44319", loras=five)
    assert info.value.field == "request.loras" and "at most 5" in str(info.value) and "7 entries" in str(info.value)


def test_embedding_total_is_capped_at_five():
    chain = None
    for _ in range(5):
        (chain,) = call(EMBEDDING, model_name="EasyNegative", **({"embeddings": chain} if chain else {}))
    with pytest.raises(errors.ValidationError) as info:
        call(EMBEDDING, model_name="badhandv4_16755", embeddings=chain)
    assert info.value.field == "request.embeddings" and "6 entries" in str(info.value)


def test_empty_lora_stack_passes_the_chain_through():
    (first,) = call(LORAS, lora_1="add_detail_44319")
    (same,) = call(LORAS, loras=first)
    assert same == first
    (empty,) = call(LORAS)
    assert empty == ()


# --------------------------------------------------------------------------- limits before any request

@pytest.mark.parametrize("given, field", [
    ({"prompt": ""}, "request.prompt"),
    ({"prompt": "x" * 1025}, "request.prompt"),
    ({"width": 100}, "request.width"),
    ({"height": 4096}, "request.height"),
    ({"clip_skip": 13}, "request.clip_skip"),
    ({"strength": 0.0}, "request.strength"),
    ({"steps": 101}, "request.steps"),
    ({"seed": -2}, "request.seed"),
    ({"model_name": ""}, "request.model_name"),
])
def test_limits_are_checked_before_any_request(env, given, field):
    with pytest.raises(errors.ValidationError) as info:
        run_img2img(**given)
    assert info.value.field == field
    assert str(info.value).startswith(field) and "must be" in str(info.value)
    assert env.requests == []


def test_controlnet_guidance_order_is_checked_when_the_node_runs():
    with pytest.raises(errors.ValidationError) as info:
        call(CONTROLNET, image=solid(RED), model_name="control_v11p_sd15_canny", guidance_start=0.7, guidance_end=0.7)
    assert "guidance_start" in info.value.field and "0.7" in str(info.value)
    with pytest.raises(errors.ValidationError):
        call(CONTROLNET, image=solid(RED), model_name="control_v11p_sd15_canny", guidance_end=1.5)


def test_every_error_is_a_ppinfra_error(env):
    env.configure(fail_reason="the GPU caught fire")
    with pytest.raises(errors.PPInfraError) as info:
        run_img2img()
    assert isinstance(info.value, errors.TaskFailedError)
    assert "the GPU caught fire" in str(info.value) and info.value.task_id in str(info.value)


# --------------------------------------------------------------------------- progress, async, cancel

def test_progress_bar_and_status_text_follow_the_tasks(env, comfy):
    env.configure(queue_seconds=0.4, task_seconds=0.8)
    run_img2img(image=batch(RED, GREEN), unique_id="12")
    values = [v for node, v, total in comfy.progress]
    assert all(node == "12" for node, _, _ in comfy.progress)
    assert all(total == 100 for _, _, total in comfy.progress)
    assert values == sorted(values) and values[-1] == 100
    assert any(0 < v < 100 for v in values), values
    texts = [t for node, t in comfy.texts if node == "12"]
    assert any("queued" in t for t in texts), texts
    assert any("processing" in t and "%" in t for t in texts), texts
    assert any("elapsed" in t for t in texts) and "2 image(s)" in texts[-1]


def test_cancel_stops_the_wait_within_a_second_and_is_an_interruption(env, comfy):
    env.configure(task_seconds=30)
    node = IMG2IMG()
    kwargs = {**widget_defaults(IMG2IMG), "image": batch(RED, GREEN), "model_name": SD15, "prompt": "x",
              "seed": 1, "unique_id": "3"}

    async def scenario():
        task = asyncio.ensure_future(getattr(node, IMG2IMG.FUNCTION)(**kwargs))
        deadline = time.monotonic() + 5
        while len(env.tasks) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        comfy.interrupt()
        t0 = time.monotonic()
        with pytest.raises(comfy.Interrupt):
            await task
        return time.monotonic() - t0

    took = asyncio.run(scenario())
    assert took < 1.0
    assert comfy.flag is True  # read, never cleared: other nodes waiting in the same prompt see it too
    polls = lambda: sum(1 for r in env.requests if r.path == "/v3/async/task-result")
    time.sleep(0.3)
    before = polls()
    time.sleep(0.6)
    assert polls() == before, "worker threads kept polling after the cancel"


def test_one_cancel_stops_every_waiting_node(env, comfy):
    env.configure(task_seconds=30)
    node = IMG2IMG()
    base = {**widget_defaults(IMG2IMG), "model_name": SD15, "prompt": "x", "seed": 1}

    async def scenario():
        f = getattr(node, IMG2IMG.FUNCTION)
        tasks = [asyncio.ensure_future(f(**base, image=solid(c), unique_id=str(i)))
                 for i, c in enumerate((RED, GREEN, BLUE))]
        deadline = time.monotonic() + 5
        while len(env.tasks) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        comfy.interrupt()
        t0 = time.monotonic()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        return outcomes, time.monotonic() - t0

    outcomes, took = asyncio.run(scenario())
    assert all(isinstance(o, comfy.Interrupt) for o in outcomes), outcomes
    assert took < 1.0


def test_two_nodes_run_at_the_same_time(env):
    env.configure(queue_seconds=0.0, task_seconds=1.0)
    node = IMG2IMG()
    base = {**widget_defaults(IMG2IMG), "model_name": SD15, "prompt": "x", "seed": 1}

    async def both():
        f = getattr(node, IMG2IMG.FUNCTION)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.05)

        t = asyncio.ensure_future(ticker())
        t0 = time.monotonic()
        await asyncio.gather(f(**base, image=solid(RED)), f(**base, image=solid(GREEN)))
        t.cancel()
        return time.monotonic() - t0, ticks

    took, ticks = asyncio.run(both())
    assert took < 1.9, f"two 1 s tasks took {took:.2f} s: they did not overlap"
    assert ticks >= 10, "the event loop was blocked while the nodes waited"


# --------------------------------------------------------------------------- validation and caching hooks

def test_is_changed_reruns_random_seeds_and_caches_fixed_and_linked_ones():
    linked = dict(image=None, model_name=SD15, prompt="p", negative_prompt="", width=0, height=0, image_num=1,
                  steps=20, guidance_scale=7.5, sampler_name="Euler a", strength=0.75, clip_skip=0, sd_vae="None",
                  response_image_type="png", controlnet=None, loras=None, embeddings=None, ip_adapter=None,
                  unique_id="5")
    assert math.isnan(IMG2IMG.IS_CHANGED(seed=-1, **linked))
    # A linked seed arrives as None: ComfyUI's cache key already follows the upstream
    # value, so a fixed linked seed must not re-run (and re-bill) on every queue.
    assert IMG2IMG.IS_CHANGED(seed=None, **linked) == IMG2IMG.IS_CHANGED(seed=None, **linked)
    assert not isinstance(IMG2IMG.IS_CHANGED(seed=None, **linked), float)
    a = IMG2IMG.IS_CHANGED(seed=42, **linked)
    assert a == IMG2IMG.IS_CHANGED(seed=42, **{**linked, "unique_id": "6"})
    assert a != IMG2IMG.IS_CHANGED(seed=43, **linked)
    assert a != IMG2IMG.IS_CHANGED(seed=42, **{**linked, "prompt": "q"})
    assert IMG2IMG.IS_CHANGED(seed=42, **{**linked, "prompt": None}) != a


def test_validate_inputs_accepts_unlisted_and_linked_model_names():
    listed = widget_defaults(IMG2IMG)
    assert "not_in_todays_list_v2.safetensors" not in IMG2IMG.INPUT_TYPES()["required"]["model_name"][0]
    assert IMG2IMG.VALIDATE_INPUTS(model_name="not_in_todays_list_v2.safetensors", sd_vae="other_vae.pt") is True
    assert IMG2IMG.VALIDATE_INPUTS(model_name=None, sd_vae=None) is True
    assert IMG2IMG.VALIDATE_INPUTS(model_name=listed["model_name"], sd_vae="None") is True
    assert IMG2IMG.VALIDATE_INPUTS(model_name="", sd_vae="None") is not True
    assert CONTROLNET.VALIDATE_INPUTS(model_name="my_private_controlnet", guidance_start=0.2, guidance_end=0.4) is True
    assert CONTROLNET.VALIDATE_INPUTS(model_name=None, guidance_start=None, guidance_end=0.4) is True
    assert "below" in CONTROLNET.VALIDATE_INPUTS(model_name="c", guidance_start=0.5, guidance_end=0.4)
    assert "guidance_end" in CONTROLNET.VALIDATE_INPUTS(model_name="c", guidance_start=0.0, guidance_end=1.5)
    assert LORAS.VALIDATE_INPUTS(lora_1="None", lora_2="unlisted_lora", lora_3=None, lora_4="None",
                                 lora_5="None") is True
    assert EMBEDDING.VALIDATE_INPUTS(model_name="unlisted_embedding") is True
    # Only model inputs (and the guidance pair) are taken over: ComfyUI keeps checking the rest.
    for cls in NODES.values():
        validate = getattr(cls, "VALIDATE_INPUTS", None)
        if validate is not None:
            named = set(inspect.signature(validate).parameters)
            assert named <= {"model_name", "sd_vae", "guidance_start", "guidance_end",
                             *(f"lora_{i}" for i in range(1, 6))}
            assert not any(p.kind == p.VAR_KEYWORD for p in inspect.signature(validate).parameters.values())


def test_unlisted_model_name_runs_and_reaches_the_wire(env):
    from ppinfra.sandbox.catalog import send_name
    listed = set(LORAS.INPUT_TYPES()["required"]["lora_1"][0])
    unlisted = next(send_name(m) for m in env.catalog.query(types=["lora"], is_sdxl=False)
                    if send_name(m) not in listed)
    assert LORAS.VALIDATE_INPUTS(lora_1=unlisted, lora_2="None", lora_3="None", lora_4="None", lora_5="None") is True
    (loras,) = call(LORAS, lora_1=unlisted)
    run_img2img(loras=loras)
    assert env.submits[0]["request"]["loras"] == [{"model_name": unlisted, "strength": 0.8}]


def test_dropdowns_pick_up_a_refreshed_model_list_without_restart(env, monkeypatch):
    before = IMG2IMG.INPUT_TYPES()["required"]["model_name"][0]
    assert env.requests == []  # building dropdowns reads only the cache / bundled list
    cat = catalog_mod.catalog()
    cat.list("checkpoint", refresh=True)
    after = IMG2IMG.INPUT_TYPES()["required"]["model_name"][0]
    assert len(after) > len(before) and SD15 in after
    assert catalog_mod.catalog() is cat
    monkeypatch.setattr(catalog_mod, "_last_check", float("-inf"))
    REAL_REFRESH_SOON()
    deadline = time.monotonic() + 10
    while not cat.is_fresh("lora") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(LORAS.INPUT_TYPES()["required"]["lora_1"][0]) > 4


def test_no_refresh_without_a_key(isolated_env, monkeypatch):
    started = []
    monkeypatch.setattr(catalog_mod.ModelCatalog, "refresh_in_background", lambda self, *a, **k: started.append(1))
    monkeypatch.setattr(catalog_mod, "_last_check", float("-inf"))
    REAL_REFRESH_SOON()
    assert started == []
    monkeypatch.setenv("PPINFRA_API_KEY", "sk-some-key-0123456789")
    monkeypatch.setattr(catalog_mod, "_last_check", float("-inf"))
    REAL_REFRESH_SOON()
    REAL_REFRESH_SOON()  # throttled: ComfyUI builds every node's inputs in one go
    assert started == [1]


# --------------------------------------------------------------------------- the key

def test_missing_key_says_where_to_put_it(sandbox, isolated_env, monkeypatch, comfy):
    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    monkeypatch.delenv("PPINFRA_CONFIG")
    with pytest.raises(errors.ConfigError) as info:
        run_img2img()
    msg = str(info.value)
    assert "PPINFRA_API_KEY" in msg
    assert str(isolated_env / "user" / "ppinfra" / "config.json") in msg
    assert sandbox.requests == []


def test_key_from_the_config_file_in_comfyui_user_dir(sandbox, isolated_env, monkeypatch, comfy, api_key):
    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    monkeypatch.delenv("PPINFRA_CONFIG")
    path = isolated_env / "user" / "ppinfra" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"api_key": api_key}))
    images, _, _ = run_img2img()
    assert images.shape[0] == 1
    assert sandbox.requests[0].headers.get("Authorization") == f"Bearer {api_key}"


def test_the_key_is_in_no_output_log_or_widget(env, api_key, caplog):
    caplog.set_level(logging.DEBUG)
    (cn,) = call(CONTROLNET, image=solid(GREEN), model_name="control_v11p_sd15_canny")
    images, seed, info = run_img2img(controlnet=cn, seed=-1)
    assert api_key not in info and api_key not in caplog.text
    for cls in NODES.values():
        spec = json.dumps(cls.INPUT_TYPES(), default=str).lower()
        assert "api_key" not in spec and "token" not in spec and api_key not in spec
    # The image host never receives the key either.
    assert all("Authorization" not in r.headers for r in env.requests if r.server == "images")


def test_a_wrong_key_is_an_authentication_error_without_the_key(env, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-key-abcdef0123456789"
    monkeypatch.setenv("PPINFRA_API_KEY", wrong)
    with pytest.raises(errors.AuthenticationError) as info:
        run_img2img()
    assert wrong not in str(info.value) and wrong not in caplog.text


# --------------------------------------------------------------------------- family warning

def test_mixing_families_warns_in_log_and_status(env, comfy, caplog):
    (loras,) = call(LORAS, lora_1="add_detail_44319")
    (ip,) = call(IP_ADAPTER, model_name="ip-adapter_sd15.bin", image=solid(BLUE))
    with caplog.at_level(logging.WARNING, logger="ppinfra"):
        _, _, info = run_img2img(model_name=SDXL, loras=loras, ip_adapter=ip, unique_id="4")
    assert "add_detail_44319 is SD 1.5" in caplog.text and "IP-Adapter" in caplog.text
    texts = [t for node, t in comfy.texts if node == "4"]
    assert "warning" in texts[0] and "add_detail_44319" in texts[0]
    assert "image(s)" in texts[-1] and "add_detail_44319" in texts[-1], "the warning must stay visible"
    assert len(json.loads(info)["warnings"]) == 2
    assert len(env.submits) == 1  # a warning, not an error


def test_one_family_gives_no_warning(env, caplog):
    (loras,) = call(LORAS, lora_1="sdxl_lightning_4step_lora")
    (emb,) = call(EMBEDDING, model_name="negativeXL_D")
    with caplog.at_level(logging.WARNING, logger="ppinfra"):
        _, _, info = run_img2img(model_name=SDXL, loras=loras, embeddings=emb, width=1024, height=1024)
    assert json.loads(info)["warnings"] == [] and "is SD 1.5" not in caplog.text
