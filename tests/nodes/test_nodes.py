"""The nodes driven the way ComfyUI drives them, against the sandbox over real sockets: what reaches the
wire, batches, chains and totals, and limits checked before any request (the driver: tools/node_driver.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tools.node_driver import img2img, photo
from tools.node_driver import (
    BLUE,
    CONTROLNET,
    EMBEDDING,
    GREEN,
    IP_ADAPTER,
    LORAS,
    RED,
    SD15,
    batch,
    call,
    decode_b64,
    dominant,
    errors,
    images_mod,
    run_img2img,
    solid,
)

pytestmark = pytest.mark.usefixtures("no_background_refresh")

# --------------------------------------------------------------------------- the wire


def test_every_input_reaches_the_wire_as_given(env):
    sandbox = env
    (cn,) = call(
        CONTROLNET,
        image=solid(GREEN, h=80, w=80),
        model_name="control_v11p_sd15_canny",
        strength=0.8,
        preprocessor="canny",
        guidance_start=0.1,
        guidance_end=0.9,
    )
    (cn,) = call(
        CONTROLNET,
        image=solid(BLUE),
        model_name="control_v11f1p_sd15_depth",
        strength=0.5,
        preprocessor="none",
        guidance_start=0.0,
        guidance_end=0.6,
        controlnet=cn,
    )
    (loras,) = call(
        LORAS, lora_1="add_detail_44319", strength_1=0.6, lora_3="more_details_59655", strength_3=0.3
    )
    (emb,) = call(EMBEDDING, model_name="EasyNegative")
    (emb,) = call(EMBEDDING, model_name="badhandv4_16755", embeddings=emb)
    (ip,) = call(IP_ADAPTER, image=solid(BLUE, h=48, w=48), model_name="ip-adapter_sd15.bin", strength=0.4)
    images, seed, info = run_img2img(
        image=solid(RED, h=64, w=96),
        prompt="a portrait, vivid colors",
        negative_prompt="blurry, text",
        width=256,
        height=192,
        image_num=2,
        steps=30,
        guidance_scale=6.5,
        sampler_name="DPM++ 2M Karras",
        seed=99,
        strength=0.8,
        clip_skip=2,
        sd_vae="vae-ft-mse-840000-ema-pruned.ckpt",
        response_image_type="webp",
        controlnet=cn,
        loras=loras,
        embeddings=emb,
        ip_adapter=ip,
    )

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
        "model_name": SD15,
        "prompt": "a portrait, vivid colors",
        "negative_prompt": "blurry, text",
        "width": 256,
        "height": 192,
        "image_num": 2,
        "steps": 30,
        "guidance_scale": 6.5,
        "sampler_name": "DPM++ 2M Karras",
        "seed": 99,
        "strength": 0.8,
        "clip_skip": 2,
        "sd_vae": "vae-ft-mse-840000-ema-pruned.ckpt",
        "loras": [
            {"model_name": "add_detail_44319", "strength": 0.6},
            {"model_name": "more_details_59655", "strength": 0.3},
        ],
        "embeddings": [{"model_name": "EasyNegative"}, {"model_name": "badhandv4_16755"}],
    }
    assert units == [
        {
            "model_name": "control_v11p_sd15_canny",
            "strength": 0.8,
            "preprocessor": "canny",
            "guidance_start": 0.1,
            "guidance_end": 0.9,
        },
        {
            "model_name": "control_v11f1p_sd15_depth",
            "strength": 0.5,
            "guidance_start": 0.0,
            "guidance_end": 0.6,
        },
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
    monkeypatch.setenv(
        "PPINFRA_RESULT_CACHE", "0"
    )  # result cache: repeated items would reuse a finished task
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
        pairs.append(
            (
                dominant(decode_b64(req["image_base64"])),
                dominant(decode_b64(req["controlnet"]["units"][0]["image_base64"])),
                dominant(decode_b64(req["ip_adapters"][0]["image_base64"])),
            )
        )
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
    # the shared control image once, then both items' own images (two inputs, two references) in one go
    assert calls == [1, 2 + 2]
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
    assert [(lora.model_name, lora.strength) for lora in second] == [
        ("add_detail_44319", 0.5),
        ("more_details_59655", 0.25),
    ]
    with pytest.raises(Exception):
        second[0].strength = 1.0  # frozen
    (cn1,) = call(CONTROLNET, image=solid(RED), model_name="control_v11p_sd15_canny")
    (cn2,) = call(CONTROLNET, image=solid(GREEN), model_name="control_v11f1p_sd15_depth", controlnet=cn1)
    assert len(cn1) == 1 and [u.model_name for u in cn2] == [
        "control_v11p_sd15_canny",
        "control_v11f1p_sd15_depth",
    ]
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
    assert (
        info.value.field == "request.loras"
        and "at most 5" in str(info.value)
        and "7 entries" in str(info.value)
    )


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


@pytest.mark.parametrize(
    "given, field",
    [
        ({"prompt": ""}, "request.prompt"),
        ({"prompt": "x" * 1025}, "request.prompt"),
        ({"width": 100}, "request.width"),
        ({"height": 4096}, "request.height"),
        ({"clip_skip": 13}, "request.clip_skip"),
        ({"strength": 0.0}, "request.strength"),
        ({"steps": 101}, "request.steps"),
        ({"seed": -2}, "request.seed"),
        ({"model_name": ""}, "request.model_name"),
    ],
)
def test_limits_are_checked_before_any_request(env, given, field):
    with pytest.raises(errors.ValidationError) as info:
        run_img2img(**given)
    assert info.value.field == field
    assert str(info.value).startswith(field) and "must be" in str(info.value)
    assert env.requests == []


def test_controlnet_guidance_order_is_checked_when_the_node_runs():
    with pytest.raises(errors.ValidationError) as info:
        call(
            CONTROLNET,
            image=solid(RED),
            model_name="control_v11p_sd15_canny",
            guidance_start=0.7,
            guidance_end=0.7,
        )
    assert "guidance_start" in info.value.field and "0.7" in str(info.value)
    with pytest.raises(errors.ValidationError):
        call(CONTROLNET, image=solid(RED), model_name="control_v11p_sd15_canny", guidance_end=1.5)


def test_every_error_is_a_ppinfra_error(env):
    env.configure(fail_reason="the GPU caught fire")
    with pytest.raises(errors.PPInfraError) as info:
        run_img2img()
    assert isinstance(info.value, errors.TaskFailedError)
    assert "the GPU caught fire" in str(info.value) and info.value.task_id in str(info.value)


# --------------------------------------------------------------------------- README promise: the seed output


def test_the_seed_output_is_the_seed_the_server_used_for_the_first_image(node_client, env):
    """README, node reference: outputs ``seed`` INT, "The seed the server used for the first image".

    With seed -1 each task of a batch gets its own seed from the server, so the
    output must be the first input's, not any other item's.
    Break: generate() returns the seed of the last item.
    """
    images, seed, info = img2img(photo(batch=3), seed=-1)
    data = json.loads(info)
    tasks = [env.tasks[t] for t in data["task_ids"]]
    assert len({t.seed for t in tasks}) == 3, "precondition: the server picked a different seed per task"
    first = next(t for t in tasks if t.task_id == data["task_ids"][0])
    assert seed == first.seed == data["seeds"][0]
    assert images.shape[0] == 3
