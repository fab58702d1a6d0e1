"""Progress when the server says nothing: the estimate, its history on disk, and where it is shown.

The sandbox in ``progress="silent"`` mode answers ``eta: 0, progress_percent: 0``
until SUCCEED, as many of the provider's APIs do. A figure that moves must
then come from the estimate; the server's own figure must win whenever it has one.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import pytest

from helpers import load_pack
from ppinfra.client import PPInfraClient, PollUpdate
from ppinfra.estimate import (
    CAP,
    HISTORY_FILE,
    MAX_KINDS,
    SAMPLES_PER_KIND,
    Estimator,
    TaskKind,
    default_seconds,
    estimated_percent,
)
from ppinfra.progress_view import TaskProgress
from ppinfra.img2img_request import Img2ImgRequest

from helpers import png_b64

SUCCEED, PROCESSING, QUEUED = "TASK_STATUS_SUCCEED", "TASK_STATUS_PROCESSING", "TASK_STATUS_QUEUED"


def request(**over) -> Img2ImgRequest:
    args = dict(
        model_name="dreamshaper_8_93211.safetensors",
        image_base64=png_b64(seed=1),
        prompt="a red boat",
        width=128,
        height=128,
        image_num=1,
        steps=20,
        guidance_scale=7.5,
        sampler_name="Euler a",
    )
    args.update(over)
    return Img2ImgRequest(**args)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- the curve


def test_estimated_percent_rises_and_never_reaches_100():
    points = [estimated_percent(t / 10, 10.0) for t in range(0, 100_001, 7)]
    assert points == sorted(points)
    assert points[0] == 0 and max(points) <= CAP < 100
    assert estimated_percent(5, 10) == pytest.approx(50)
    assert estimated_percent(9, 10) == pytest.approx(90)
    assert 90 < estimated_percent(12, 10) < estimated_percent(20, 10) < CAP
    assert estimated_percent(1e12, 10) == CAP
    assert (
        estimated_percent(5, 0) == 0
        and estimated_percent(-1, 10) == 0
        and estimated_percent(float("nan"), 10) == 0
    )


def test_default_before_history_grows_with_the_work():
    small = TaskKind("sd15", 512, 512, 20, 1)
    assert default_seconds(small) > 0
    for bigger in (
        TaskKind("sd15", 1024, 1024, 20, 1),
        TaskKind("sd15", 512, 512, 50, 1),
        TaskKind("sd15", 512, 512, 20, 4),
        TaskKind("sdxl", 512, 512, 20, 1),
    ):
        assert default_seconds(bigger) > default_seconds(small), bigger


# ---------------------------------------------------------------- the history on disk


def test_history_is_learned_and_persisted_across_instances(tmp_path):
    kind = TaskKind("sd15", 512, 512, 20, 1, "api.ppinfra.com")
    first = Estimator(str(tmp_path))
    assert first.expected(kind) == pytest.approx(default_seconds(kind))
    for seconds in (11.0, 12.0, 13.0):
        first.record(kind, seconds)
    again = Estimator(str(tmp_path))  # a new process, as it were
    assert again.expected(kind) == pytest.approx(12.0)
    # A kind never run yet is scaled by how this install's tasks compared with the formula.
    other = TaskKind("sd15", 1024, 1024, 30, 2, "api.ppinfra.com")
    ratio = 12.0 / default_seconds(kind)
    assert again.expected(other) == pytest.approx(default_seconds(other) * ratio, rel=0.05)
    assert sorted(os.listdir(tmp_path)) == [HISTORY_FILE]  # written atomically: no temp file left


def test_histories_of_hosts_stay_apart(tmp_path):
    est = Estimator(str(tmp_path))
    sandbox = TaskKind("sd15", 512, 512, 20, 1, "sandbox")
    real = TaskKind("sd15", 512, 512, 20, 1, "api.ppinfra.com")
    est.record(sandbox, 0.4)
    assert est.expected(sandbox) == pytest.approx(0.5)  # floor
    assert est.expected(real) == pytest.approx(default_seconds(real))
    # Every local sandbox port is one host: no new history per port.
    a = TaskKind.of(request(), "sd15", "http://127.0.0.1:40001").key()
    assert a == TaskKind.of(request(), "sd15", "http://127.0.0.1:51234").key()
    assert a != TaskKind.of(request(), "sd15", "https://api.ppinfra.com").key()


def test_history_size_is_bounded(tmp_path):
    est = Estimator(str(tmp_path))
    kind = TaskKind("sdxl", 1024, 1024, 30, 1, "h")
    for k in range(SAMPLES_PER_KIND + 15):
        est.record(kind, 10.0 + k)
    for n in range(MAX_KINDS + 30):
        est.record(TaskKind("sd15", 512, 512, 20, 1, f"host{n % 40}.example"), 5.0 + (n % 7))
        est.record(TaskKind(None, 128 + 8 * n, 128, 1 + n % 100, 1 + n % 8, "h"), 3.0)
    data = json.loads((tmp_path / HISTORY_FILE).read_text())
    assert len(data["kinds"]) <= MAX_KINDS
    assert all(len(e["samples"]) <= SAMPLES_PER_KIND for e in data["kinds"].values())
    assert len(data["ratios"]) <= 10
    assert (tmp_path / HISTORY_FILE).stat().st_size < 200_000


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"[1, 2]",
        b'{"kinds": {"x": {"samples": ["a", -3, true]}}}',
        b"\x00\xff\xfe",
        b'{"kinds": 5, "ratios": {"h": 7}}',
    ],
)
def test_corrupt_history_counts_as_none(tmp_path, content):
    (tmp_path / HISTORY_FILE).write_bytes(content)
    est = Estimator(str(tmp_path))
    kind = TaskKind("sd15", 512, 512, 20, 1, "h")
    assert est.expected(kind) == pytest.approx(default_seconds(kind))
    est.record(kind, 7.0)  # and the next task writes a good file over it
    assert Estimator(str(tmp_path)).expected(kind) == pytest.approx(7.0)


# ---------------------------------------------------------------- the view (mechanism, with a fake clock)


def test_view_moves_on_the_clock_while_the_server_says_nothing(tmp_path):
    clock = Clock()
    kind = TaskKind("sd15", 512, 512, 20, 1, "h")
    view = TaskProgress(kind, Estimator(str(tmp_path)), clock=clock)
    view.update(PollUpdate("t1", QUEUED, 0.0, 0.0, 0.5))
    seen = []
    for _ in range(200):
        clock.now += view.expected / 50  # four times the expected duration in all
        seen.append(view.percent())
        if len(seen) % 20 == 0:
            view.update(PollUpdate("t1", PROCESSING, 0.0, 0.0, view.elapsed()))
    assert seen == sorted(seen) and seen[0] > 0 and len(set(seen)) > 100
    assert max(seen) < 100
    assert view.estimated and "(estimated)" in view.text() and view.text().startswith("~")
    view.update(PollUpdate("t1", SUCCEED, 100.0, 0.0, view.elapsed()))
    assert view.percent() == 100 and not view.estimated and "estimated" not in view.text()


def test_server_figures_win_over_the_estimate(tmp_path):
    clock = Clock()
    view = TaskProgress(TaskKind("sd15", 512, 512, 20, 1, "h"), Estimator(str(tmp_path)), clock=clock)
    view.update(PollUpdate("t", PROCESSING, 0.0, 0.0, 1.0))
    clock.now += view.expected * 0.6
    assert view.percent() > 50 and view.estimated
    view.update(PollUpdate("t", PROCESSING, 20.0, 4.0, view.elapsed()))
    assert view.percent() == 20 and not view.estimated
    assert view.text() == "20%, eta 4 s"
    clock.now += 100  # the clock alone no longer moves a server figure
    assert view.percent() == 20
    view.update(PollUpdate("t", PROCESSING, 0.0, 0.0, view.elapsed()))  # a silent poll after a report
    assert view.percent() == 20 and not view.estimated
    # Only an eta from the server: the figure follows the server's expected end, not ours.
    eta_only = TaskProgress(TaskKind("sd15", 512, 512, 20, 1, "h"), None, clock=clock)
    eta_only.update(PollUpdate("u", PROCESSING, 0.0, 30.0, 10.0))
    assert eta_only.percent() == pytest.approx(25.0) and not eta_only.estimated


def test_success_is_recorded_once(tmp_path):
    est = Estimator(str(tmp_path))
    kind = TaskKind("sd15", 512, 512, 20, 1, "h")
    view = TaskProgress(kind, est, clock=Clock())
    view.update(PollUpdate("t", SUCCEED, 100.0, 0.0, 8.0))
    view.update(PollUpdate("t", SUCCEED, 100.0, 0.0, 9.0))  # a re-poll for fresh URLs
    data = json.loads((tmp_path / HISTORY_FILE).read_text())
    assert [e["samples"] for e in data["kinds"].values()] == [[8.0]]


# ---------------------------------------------------------------- against the sandbox, over real sockets


def _run_sampled(client, view, req):
    """Run one task; sample the view every 20 ms from another thread, as a progress bar does."""
    samples, events, stop = [], [], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((view.percent(), view.estimated))
            time.sleep(0.02)

    def on_progress(p) -> None:
        events.append(p)
        view.update(p)

    t = threading.Thread(target=sample)
    t.start()
    try:
        result = client.img2img(req, on_progress=on_progress)
    finally:
        stop.set()
        t.join()
    return result, samples, events


def test_silent_sandbox_bar_moves_and_stays_below_100_until_the_end(sandbox, api_key, tmp_path):
    sandbox.configure(progress="silent", queue_seconds=0.1, task_seconds=1.2)
    req = request()
    with PPInfraClient(api_key=api_key, base_url=sandbox.base_url) as client:
        view = TaskProgress.for_request(
            req, cache_dir=str(tmp_path), family="sd15", base_url=sandbox.base_url
        )
        result, samples, events = _run_sampled(client, view, req)
    assert len(result.images) == 1
    before_end = [e for e in events if e.status != SUCCEED]
    assert before_end and all(e.percent == 0 and not e.eta for e in before_end)  # the server said nothing
    estimated = [p for p, est in samples if est]
    assert len(set(round(p, 3) for p in estimated)) > 5 and estimated[-1] > estimated[0]
    assert max(estimated) < 100
    assert view.percent() == 100
    # The duration joined the history, on disk, for the next task of this kind.
    learned = Estimator(str(tmp_path)).expected(view.kind)
    assert learned == pytest.approx(events[-1].elapsed, rel=0.01)
    assert 1.0 < learned < 10


def test_reported_sandbox_progress_wins(sandbox, api_key, tmp_path):
    sandbox.configure(progress="reported", queue_seconds=0.05, task_seconds=1.2)
    req = request()
    with PPInfraClient(api_key=api_key, base_url=sandbox.base_url) as client:
        view = TaskProgress.for_request(
            req, cache_dir=str(tmp_path), family="sd15", base_url=sandbox.base_url
        )
        seen = []

        def on_progress(p) -> None:
            view.update(p)
            seen.append((p, view.percent(), view.text()))

        client.img2img(req, on_progress=on_progress)
    reported = [(p, shown, text) for p, shown, text in seen if p.status != SUCCEED and p.percent > 0]
    assert reported, "the sandbox in reported mode gave no progress_percent"
    for p, shown, text in reported:
        assert shown == p.percent and "estimated" not in text


# ---------------------------------------------------------------- where it is shown: the node and the CLI


def test_node_bar_and_text_move_on_an_estimate(env, isolated_env, comfy, no_background_refresh):
    from tools.node_driver import RED, solid, widget_defaults

    sandbox, fake = env, comfy
    pack = load_pack()
    sandbox.configure(progress="silent", queue_seconds=0.1, task_seconds=1.5)
    cls = pack.NODE_CLASS_MAPPINGS["PPInfraImg2Img"]
    inputs = {
        **widget_defaults(cls),
        "image": solid(RED),
        "model_name": "dreamshaper_8_93211.safetensors",
        "prompt": "a lighthouse",
        "width": 128,
        "height": 128,
        "seed": 3,
        "unique_id": "5",
    }
    asyncio.run(getattr(cls(), cls.FUNCTION)(**inputs))
    values = [v for node, v, total in fake.progress if node == "5"]
    middle = [v for v in values if 0 < v < 100]
    assert len(set(middle)) >= 3 and values == sorted(values) and values[-1] == 100
    texts = [t for node, t in fake.texts if node == "5"]
    assert any("(estimated)" in t and "~" in t for t in texts), texts
    history = isolated_env / "cache" / HISTORY_FILE
    assert history.is_file() and json.loads(history.read_text())["kinds"]


def test_cli_prints_an_estimate_when_the_server_is_silent(
    sandbox, api_key, isolated_env, tmp_path, capsys, monkeypatch
):
    import base64

    from ppinfra import cli

    sandbox.configure(progress="silent", queue_seconds=0.1, task_seconds=1.5)
    monkeypatch.setenv("PPINFRA_API_KEY", api_key)
    img = tmp_path / "in.png"
    img.write_bytes(base64.b64decode(png_b64(seed=2)))
    code = cli.main(
        [
            "img2img",
            "--base-url",
            sandbox.base_url,
            "--image",
            str(img),
            "--prompt",
            "a boat",
            "--width",
            "128",
            "--height",
            "128",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert any("~" in line and "(estimated)" in line for line in lines), err
    assert "100%" in lines[-1] and "estimated" not in lines[-1]
    assert (isolated_env / "cache" / HISTORY_FILE).is_file()  # learned for the next run
