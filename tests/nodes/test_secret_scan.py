"""Secret scan (issue 5): run the nodes with a known key and look for it everywhere the pack writes or
returns.

Scanned: log output at DEBUG level (every logger) and the process's stdout and
stderr, exception texts (str, repr, args, formatted traceback with its
causes), the ``info`` output, the node's status text, the prompt and workflow
ComfyUI would save (and the PNG text chunks SaveImage writes them into), the
files the pack wrote (model cache), and every request the image host
received. The key may appear in exactly one place: the Authorization header
of requests to the API host.

Hostile servers are part of the scan: an API that echoes the key back in an
error message, a failure reason or a non-JSON body must not get it into an
exception or a log line.
"""

from __future__ import annotations

import io
import json
import os
import traceback

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tools.node_driver import defaults, pack_module, photo, run_node

NODE_ID = "7"


def exception_texts(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), repr(exc.args), repr(getattr(exc, "__dict__", {}))]
    parts += traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "\n".join(parts)


def graph(image_widgets: dict) -> dict:
    """The widget values of a full graph, as ComfyUI keeps them."""
    return {
        "3": (
            "PPInfraControlNetUnit",
            {**defaults("PPInfraControlNetUnit"), "model_name": "control_v11p_sd15_canny"},
        ),
        "5": ("PPInfraLoraStack", {**defaults("PPInfraLoraStack"), "lora_1": "add_detail_44319"}),
        "6": ("PPInfraEmbedding", {**defaults("PPInfraEmbedding"), "model_name": "EasyNegative"}),
        "8": ("PPInfraIPAdapter", defaults("PPInfraIPAdapter")),
        NODE_ID: ("PPInfraImg2Img", {**defaults("PPInfraImg2Img"), **image_widgets}),
    }


def run_graph(nodes: dict):
    """Run the graph node by node, as ComfyUI's executor would."""
    (cn,) = run_node("PPInfraControlNetUnit", image=photo(seed=1), **nodes["3"][1])
    (loras,) = run_node("PPInfraLoraStack", **nodes["5"][1])
    (embs,) = run_node("PPInfraEmbedding", **nodes["6"][1])
    (ipa,) = run_node("PPInfraIPAdapter", image=photo(seed=2), **nodes["8"][1])
    return run_node(
        "PPInfraImg2Img",
        image=photo(batch=2),
        controlnet=cn,
        loras=loras,
        embeddings=embs,
        ip_adapter=ipa,
        unique_id=NODE_ID,
        **nodes[NODE_ID][1],
    )


def saved_png(images, nodes: dict) -> bytes:
    """What SaveImage writes: the result with the API prompt and the UI workflow as PNG text chunks."""
    prompt = {nid: {"class_type": cls, "inputs": widgets} for nid, (cls, widgets) in nodes.items()}
    workflow = {
        "nodes": [
            {
                "id": int(nid),
                "type": cls,
                "widgets_values": list(widgets.values()),
                "properties": {"Node name for S&R": cls},
            }
            for nid, (cls, widgets) in nodes.items()
        ]
    }
    meta = PngInfo()
    meta.add_text("prompt", json.dumps(prompt))
    meta.add_text("workflow", json.dumps(workflow))
    arr = (images[0].numpy() * 255).clip(0, 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", pnginfo=meta, compress_level=1)
    return buf.getvalue()


def test_no_input_of_any_node_can_hold_a_key(env):
    for node_id, cls in pack_module("nodes").NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        names = [n for section in spec.values() for n in section]
        for name in names:
            assert not any(w in name.lower() for w in ("key", "token", "secret", "auth", "password")), (
                f"{node_id}.{name} looks like a credential widget"
            )


def test_key_appears_nowhere_after_a_full_run(
    node_client, env, api_key, logs, status_texts, capfd, isolated_env
):
    nodes = graph({"prompt": "a harbour", "width": 128, "height": 128, "image_num": 2, "seed": 5})
    images, seed, info = run_graph(nodes)
    assert tuple(images.shape) == (4, 128, 128, 3)

    # Something was really captured, or the scan would prove nothing.
    assert status_texts and logs.records and json.loads(info)["task_ids"]
    assert len([r for r in env.requests if r.server == "images"]) == 4

    png = saved_png(images, nodes)
    saved = Image.open(io.BytesIO(png))
    assert "workflow" in saved.text and "prompt" in saved.text
    out, err = capfd.readouterr()
    written = ""
    for root, _, files in os.walk(isolated_env):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                written += fh.read().decode("utf-8", "replace")

    places = {
        "logs": logs.text + "\n".join(r.getMessage() for r in logs.records),
        "stdout/stderr": out + err,
        "info output": info,
        "status text": "\n".join(status_texts),
        "saved PNG bytes": png.decode("latin-1"),
        "PNG text chunks": json.dumps(saved.text),
        "files written": written,
        "image host requests": "\n".join(
            repr((r.path, r.query, r.headers, r.body)) for r in env.requests if r.server == "images"
        ),
        "API requests other than the auth header": "\n".join(
            repr((r.path, r.query, {k: v for k, v in r.headers.items() if k != "Authorization"}, r.body))
            for r in env.requests
            if r.server == "api"
        ),
    }
    leaked = [where for where, text in places.items() if api_key in text]
    assert not leaked, f"the API key leaked into: {leaked}"
    assert all(
        r.headers.get("Authorization") == f"Bearer {api_key}" for r in env.requests if r.server == "api"
    )
    assert all("Authorization" not in r.headers for r in env.requests if r.server == "images")


def _scan_failure(api_key, logs, status_texts, capfd, exc):
    out, err = capfd.readouterr()
    places = {
        "exception": exception_texts(exc),
        "logs": logs.text,
        "stdout/stderr": out + err,
        "status text": "\n".join(status_texts),
    }
    leaked = [where for where, text in places.items() if api_key in text]
    assert not leaked, f"the API key leaked into: {leaked}"


def test_key_echoed_in_an_error_message_is_redacted(
    node_client, env, api_key, errors, logs, status_texts, capfd
):
    env.inject(
        "submit",
        "status",
        count=1,
        status=400,
        reason="INVALID_REQUEST_BODY",
        message=f"bad request from Bearer {api_key}",
    )
    with pytest.raises(errors.BadRequestError) as info:
        run_node(
            "PPInfraImg2Img",
            image=photo(),
            unique_id=NODE_ID,
            **{**defaults("PPInfraImg2Img"), "prompt": "x", "width": 128, "height": 128},
        )
    assert "INVALID_REQUEST_BODY" in str(info.value)
    _scan_failure(api_key, logs, status_texts, capfd, info.value)


def test_key_echoed_in_a_failure_reason_is_redacted(
    node_client, env, api_key, errors, logs, status_texts, capfd
):
    env.configure(fail_reason=f"quota exceeded for {api_key}")
    with pytest.raises(errors.TaskFailedError) as info:
        run_node(
            "PPInfraImg2Img",
            image=photo(),
            unique_id=NODE_ID,
            **{**defaults("PPInfraImg2Img"), "prompt": "x", "width": 128, "height": 128},
        )
    assert "quota exceeded" in str(info.value)
    _scan_failure(api_key, logs, status_texts, capfd, info.value)


def test_key_echoed_in_a_non_json_body_is_redacted(
    node_client, env, api_key, errors, logs, status_texts, capfd
):
    # Whether persisting bad polls end as a format error or at the deadline is the retry engine's
    # business; here only the key matters, so any PPInfra error will do, within a short deadline.
    node_client(deadline=2.0)
    env.inject("poll", "malformed", count=500, body=f"<html>401 for Bearer {api_key}</html>")
    with pytest.raises(errors.PPInfraError) as info:
        run_node(
            "PPInfraImg2Img",
            image=photo(),
            unique_id=NODE_ID,
            **{**defaults("PPInfraImg2Img"), "prompt": "x", "width": 128, "height": 128},
        )
    assert "task-result" in str(info.value)
    _scan_failure(api_key, logs, status_texts, capfd, info.value)


def test_missing_key_error_and_wrong_key_error_hold_no_key(env, errors, monkeypatch, capfd, logs):
    wrong = "sk-wrong-but-secret-key-987654321"
    monkeypatch.setenv("PPINFRA_API_KEY", wrong)
    with pytest.raises(errors.AuthenticationError) as info:
        run_node(
            "PPInfraImg2Img",
            image=photo(),
            **{**defaults("PPInfraImg2Img"), "prompt": "x", "width": 128, "height": 128},
        )
    assert "INVALID_API_KEY" in str(info.value)
    out, err = capfd.readouterr()
    assert wrong not in exception_texts(info.value) + logs.text + out + err
