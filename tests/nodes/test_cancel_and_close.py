"""Cancel and cleanup promises: late answers are closed, a node run closes its client,
a broken cancel API is loud."""

from __future__ import annotations

import logging
import sys
import time
import types

import pytest

from helpers import base_request
from tools.node_driver import img2img, pack_module, photo
from ppinfra import errors
from ppinfra.client import PPInfraClient


def test_late_answer_to_a_cancelled_download_is_closed(sandbox, api_key, isolated_env):
    with PPInfraClient(api_key=api_key, base_url=sandbox.base_url, deadline=20) as c:
        result = c.img2img(base_request(width=128, height=128))
        url = c.get_task_result(result.task_id).images[0].url
        answers = []
        real = c.transport.files.request

        def keep(*args, **kwargs):  # the real request over the socket; we only keep the answer
            resp = real(*args, **kwargs)
            answers.append(resp)
            return resp

        c.transport.files.request = keep
        sandbox.inject("image", "slow", count=1, delay=0.8)
        cancel_at = time.monotonic() + 0.2
        from ppinfra.waiting import Call, Deadline

        with pytest.raises(errors.CancelledError):
            c.transport.download(url, Call(Deadline(10), lambda: time.monotonic() > cancel_at))
        end = time.monotonic() + 5
        while not answers and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.2)
    assert answers, "the late answer arrived"
    assert answers[0].raw.closed, (
        "an answer nobody waits for any more must be closed, not left holding a socket"
    )


def test_a_node_run_closes_its_client(env, node_client, monkeypatch):
    generation_mod = pack_module("nodes.generation")
    made = []
    inner = generation_mod.make_client

    def counting():
        client = inner()
        real_close = client.close

        def close():
            made.append("closed")
            real_close()

        client.close = close
        made.append("made")
        return client

    monkeypatch.setattr(generation_mod, "make_client", counting)
    img2img(photo())
    deadline = time.monotonic() + 5
    while made.count("closed") < made.count("made") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert made.count("made") >= 1 and made.count("closed") == made.count("made")


def test_a_cancel_flag_that_cannot_be_read_is_said_once(monkeypatch, caplog):
    bridge = pack_module("nodes.comfy_bridge")
    comfy = types.ModuleType("comfy")
    mm = types.ModuleType("comfy.model_management")

    def broken():
        raise RuntimeError("renamed in this ComfyUI")

    mm.processing_interrupted = broken
    comfy.model_management = mm
    monkeypatch.setitem(sys.modules, "comfy", comfy)
    monkeypatch.setitem(sys.modules, "comfy.model_management", mm)
    monkeypatch.setattr(bridge, "_cancel_warned", False)
    with caplog.at_level(logging.WARNING):
        assert bridge.processing_interrupted() is False
        assert bridge.processing_interrupted() is False
    said = [r for r in caplog.records if "cancel flag" in r.getMessage()]
    assert len(said) == 1 and "renamed in this ComfyUI" in said[0].getMessage()


def test_outside_comfyui_cancel_is_quietly_absent(monkeypatch, caplog):
    bridge = pack_module("nodes.comfy_bridge")
    monkeypatch.setattr(bridge, "_cancel_warned", False)
    monkeypatch.setitem(sys.modules, "comfy", None)  # import comfy -> ModuleNotFoundError
    with caplog.at_level(logging.WARNING):
        assert bridge.processing_interrupted() is False
    assert not [r for r in caplog.records if "cancel flag" in r.getMessage()]


def test_the_node_status_line_tells_the_truth_during_retry_waits(env, node_client, monkeypatch):
    bridge = pack_module("nodes.comfy_bridge")
    runner = pack_module("nodes.runner")
    shown = []
    monkeypatch.setattr(bridge, "send_status", lambda text, node_id: shown.append(text))
    monkeypatch.setattr(runner, "STATUS_EVERY", 0.0)
    node_client(rate_limit_backoff=0.8, rate_limit_backoff_max=0.8, backoff_base=0.8, backoff_max=0.8)
    env.inject("submit", "status", count=1, status=429)
    env.inject("poll", "status", count=1, status=503)
    img2img(photo())
    assert any("1 rate-limited (HTTP 429): retrying in" in t for t in shown), shown
    assert any("1 server busy (HTTP 503): retrying in" in t for t in shown), shown
