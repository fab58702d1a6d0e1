"""The nodes in ComfyUI's runtime: progress, cancel, concurrency, validation and caching hooks, the key and
family warnings (the driver: tools/node_driver.py)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import math
import shutil
import time

import pytest

from tools.node_driver import (
    BLUE,
    CONTROLNET,
    EMBEDDING,
    GREEN,
    IMG2IMG,
    IP_ADAPTER,
    LORAS,
    NODES,
    REAL_REFRESH_SOON,
    RED,
    SD15,
    SDXL,
    batch,
    call,
    catalog_mod,
    errors,
    run_img2img,
    solid,
    widget_defaults,
)

pytestmark = pytest.mark.usefixtures("no_background_refresh")

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
    kwargs = {
        **widget_defaults(IMG2IMG),
        "image": batch(RED, GREEN),
        "model_name": SD15,
        "prompt": "x",
        "seed": 1,
        "unique_id": "3",
    }

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
        tasks = [
            asyncio.ensure_future(f(**base, image=solid(c), unique_id=str(i)))
            for i, c in enumerate((RED, GREEN, BLUE))
        ]
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
    linked = dict(
        image=None,
        model_name=SD15,
        prompt="p",
        negative_prompt="",
        width=0,
        height=0,
        image_num=1,
        steps=20,
        guidance_scale=7.5,
        sampler_name="Euler a",
        strength=0.75,
        clip_skip=0,
        sd_vae="None",
        response_image_type="png",
        controlnet=None,
        loras=None,
        embeddings=None,
        ip_adapter=None,
        unique_id="5",
    )
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
    assert (
        IMG2IMG.VALIDATE_INPUTS(model_name="not_in_todays_list_v2.safetensors", sd_vae="other_vae.pt") is True
    )
    assert IMG2IMG.VALIDATE_INPUTS(model_name=None, sd_vae=None) is True
    assert IMG2IMG.VALIDATE_INPUTS(model_name=listed["model_name"], sd_vae="None") is True
    assert IMG2IMG.VALIDATE_INPUTS(model_name="", sd_vae="None") is not True
    assert (
        CONTROLNET.VALIDATE_INPUTS(model_name="my_private_controlnet", guidance_start=0.2, guidance_end=0.4)
        is True
    )
    assert CONTROLNET.VALIDATE_INPUTS(model_name=None, guidance_start=None, guidance_end=0.4) is True
    assert "below" in CONTROLNET.VALIDATE_INPUTS(model_name="c", guidance_start=0.5, guidance_end=0.4)
    assert "guidance_end" in CONTROLNET.VALIDATE_INPUTS(model_name="c", guidance_start=0.0, guidance_end=1.5)
    assert (
        LORAS.VALIDATE_INPUTS(
            lora_1="None", lora_2="unlisted_lora", lora_3=None, lora_4="None", lora_5="None"
        )
        is True
    )
    assert EMBEDDING.VALIDATE_INPUTS(model_name="unlisted_embedding") is True
    # Only model inputs (and the guidance pair) are taken over: ComfyUI keeps checking the rest.
    for cls in NODES.values():
        validate = getattr(cls, "VALIDATE_INPUTS", None)
        if validate is not None:
            named = set(inspect.signature(validate).parameters)
            assert named <= {
                "model_name",
                "sd_vae",
                "guidance_start",
                "guidance_end",
                *(f"lora_{i}" for i in range(1, 6)),
            }
            assert not any(p.kind == p.VAR_KEYWORD for p in inspect.signature(validate).parameters.values())


def test_unlisted_model_name_runs_and_reaches_the_wire(env):
    from ppinfra.sandbox.catalog import send_name

    listed = set(LORAS.INPUT_TYPES()["required"]["lora_1"][0])
    unlisted = next(
        send_name(m) for m in env.catalog.query(types=["lora"], is_sdxl=False) if send_name(m) not in listed
    )
    assert (
        LORAS.VALIDATE_INPUTS(lora_1=unlisted, lora_2="None", lora_3="None", lora_4="None", lora_5="None")
        is True
    )
    (loras,) = call(LORAS, lora_1=unlisted)
    run_img2img(loras=loras)
    assert env.submits[0]["request"]["loras"] == [{"model_name": unlisted, "strength": 0.8}]


def test_dropdowns_pick_up_a_refreshed_model_list_without_restart(env, isolated_env, monkeypatch):
    shutil.rmtree(isolated_env / "cache")  # no model cache yet: the dropdowns show the bundled list
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
    models_mod = importlib.import_module(catalog_mod.__name__.replace("nodes.catalog", "ppinfra.models"))
    monkeypatch.setattr(
        models_mod.ModelCatalog, "refresh_in_background", lambda self, *a, **k: started.append(1)
    )
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
