"""Folder runs from the command line: paced, named after their inputs, resumable without paying twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from helpers import photo_like

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOURNAL = ".ppinfra-journal.jsonl"


def folder(tmp_path, n, name="in", suffix=".png"):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    for i in range(n):
        Image.fromarray((photo_like(96, 64, seed=i) * 255).astype(np.uint8)).save(d / f"pic{i}{suffix}")
    return d


def args(inputs, out, *more):
    return [
        "img2img",
        "--image",
        *map(str, inputs),
        "--prompt",
        "a fox",
        "--width",
        "128",
        "--height",
        "128",
        "--out",
        str(out),
        *more,
    ]


def journal(out):
    try:
        with open(os.path.join(out, JOURNAL), encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def results(out):
    return sorted(f for f in os.listdir(out) if not f.startswith("."))


@pytest.mark.sandbox(images_per_minute=2, rate_window=1.0, task_seconds=0.1)
def test_a_folder_runs_under_the_budget_with_results_named_after_inputs(sandbox, cli_env, tmp_path, capsys):
    from ppinfra.cli import main

    cli_env(sandbox, PPINFRA_IMAGES_PER_MINUTE=2, PPINFRA_RATE_WINDOW=1.0)
    src = folder(tmp_path, 5)
    Image.fromarray((photo_like(64, 64, seed=9) * 255).astype(np.uint8)).save(src / "pic0.jpg")  # stem clash
    out = tmp_path / "out"
    assert main(args([src], out)) == 0
    err = capsys.readouterr().err
    names = results(out)
    assert len(names) == 6 and {"pic1_0.png", "pic2_0.png", "pic3_0.png", "pic4_0.png"} <= set(names)
    assert len([n for n in names if n.startswith("pic0")]) == 2  # pic0.png and pic0.jpg kept apart
    assert len(sandbox.submits) == 6 and len(sandbox.tasks) == 6  # paced: no 429, nothing twice
    assert "6/6 done" in err and "eta" in err and "waiting for the images-per-minute budget" in err


def test_a_rerun_submits_nothing_finished_and_fresh_starts_over(sandbox, cli_env, tmp_path, capsys):
    from ppinfra.cli import main

    cli_env(sandbox)
    src = folder(tmp_path, 3)
    out = tmp_path / "out"
    assert main(args([src], out)) == 0
    assert len(sandbox.tasks) == 3
    assert main(args([src], out)) == 0
    assert len(sandbox.tasks) == 3 and "3 input(s) already done" in capsys.readouterr().err
    assert (
        main(args([src], out, "--prompt", "another prompt")) == 0
    )  # another job: the journal does not apply
    assert len(sandbox.tasks) == 6
    assert main(args([src], out, "--fresh")) == 0
    assert len(sandbox.tasks) == 9


def test_a_bad_input_fails_alone_and_a_rerun_retries_only_it(sandbox, cli_env, tmp_path, capsys):
    from ppinfra.cli import main

    cli_env(sandbox)
    src = folder(tmp_path, 2)
    (src / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(args([src], out)) == 1
    err = capsys.readouterr().err
    assert "failed: " in err and "broken.png" in err and "request.image_base64" in err
    assert results(out) == ["pic0_0.png", "pic1_0.png"] and len(sandbox.tasks) == 2
    (src / "broken.png").unlink()
    Image.fromarray((photo_like(64, 64, seed=5) * 255).astype(np.uint8)).save(src / "broken.png")
    assert main(args([src], out)) == 0
    assert len(sandbox.tasks) == 3 and "broken_0.png" in results(out)


def test_a_missing_input_is_named_before_anything_is_sent(sandbox, cli_env, tmp_path, capsys):
    from ppinfra.cli import main

    cli_env(sandbox)
    assert main(args([tmp_path / "nope.png"], tmp_path / "out")) == 2
    assert "--image must be an existing image file or folder" in capsys.readouterr().err
    assert sandbox.requests == []


def test_a_killed_run_resumes_without_a_second_task_for_finished_or_accepted_items(
    make_sandbox, cli_env, tmp_path
):
    """Kill -9 mid-run, then run again: finished inputs are skipped, accepted ones are polled,
    not resubmitted."""
    from ppinfra.cli import main

    sandbox = make_sandbox(task_seconds=0.2)
    env = cli_env(sandbox)
    src = folder(tmp_path, 8)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ppinfra", *args([src], out, "--concurrency", "2")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def settled():
        """Both workers hold a slow accepted task and every accepted task is journaled: no submit in flight.

        (A kill between the server's answer and the journal line cannot be told
        apart from a lost request; the CLI then sends again and says so.)
        """
        accepted = {r["task_id"] for r in journal(out) if r["state"] == "accepted"}
        slow = [t for t in sandbox.tasks.values() if t.task_seconds == 3.0]
        return len(slow) == 2 and set(sandbox.tasks) <= accepted

    try:
        deadline = time.monotonic() + 60
        while sum(r["state"] == "done" for r in journal(out)) < 2:
            assert time.monotonic() < deadline and proc.poll() is None, "the first run ended too soon"
            time.sleep(0.02)
        sandbox.configure(task_seconds=3.0)  # later tasks stay in flight long enough to be cut off
        while not settled():
            assert time.monotonic() < deadline and proc.poll() is None, "the first run ended too soon"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    killed_at = time.time()
    before = journal(out)
    finished = {r["item"] for r in before if r["state"] == "done"}
    in_flight = {r["task_id"] for r in before if r["state"] == "accepted"} - {
        r["task_id"] for r in before if r["state"] == "done"
    }
    tasks_before = set(sandbox.tasks)
    assert len(finished) >= 2 and in_flight

    assert main(args([src], out, "--concurrency", "2")) == 0
    assert len(sandbox.tasks) == 8 and len(sandbox.submits) == 8  # one task per input, over both runs
    assert tasks_before <= set(sandbox.tasks)
    polled_again = {
        r.query.get("task_id")
        for r in sandbox.requests
        if r.path == "/v3/async/task-result" and r.time >= killed_at
    }
    assert in_flight <= polled_again
    assert results(out) == [f"pic{i}_0.png" for i in range(8)]
    assert {r["item"] for r in journal(out) if r["state"] == "done"} >= finished


def test_a_journal_line_cut_by_a_kill_is_skipped_and_not_glued_to_the_next(tmp_path):
    from ppinfra.cli.journal import Journal

    path = tmp_path / JOURNAL
    j = Journal(str(path), "job1")
    j.accepted("a:1", "task-a", 1)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"state": "accepted", "item": "b:2", "task_')  # killed mid-line
    j2 = Journal(str(path), "job1")
    j2.accepted("c:3", "task-c", 2)
    state = j2.load()
    assert set(state) == {"a:1", "c:3"} and state["c:3"]["task_id"] == "task-c"
    assert Journal(str(path), "another job").load() == {}


@pytest.mark.sandbox(images_per_minute=1, rate_window=1.5, task_seconds=0.05)
def test_runs_in_one_process_share_the_budget_and_a_single_input_says_it_waits(
    sandbox, cli_env, tmp_path, capsys
):
    from ppinfra.cli import main

    cli_env(sandbox, PPINFRA_IMAGES_PER_MINUTE=1, PPINFRA_RATE_WINDOW=1.5)
    src = folder(tmp_path, 2)
    assert main(args([src / "pic0.png"], tmp_path / "a")) == 0
    assert (
        main(args([src / "pic1.png"], tmp_path / "b")) == 0
    )  # a second run: the first one's image still counts
    err = capsys.readouterr().err
    assert "pic1.png: waiting for the images-per-minute budget (1 per 1.5 s)" in err
    assert len(sandbox.submits) == 2 and len(sandbox.tasks) == 2


def test_ctrl_c_stops_at_once_and_the_rerun_collects_the_accepted_tasks(make_sandbox, cli_env, tmp_path):
    from ppinfra.cli import main

    sandbox = make_sandbox(task_seconds=2.0)
    env = cli_env(sandbox)
    src = folder(tmp_path, 3)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ppinfra", *args([src], out, "--concurrency", "3")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while sum(r["state"] == "accepted" for r in journal(out)) < 3:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 130 and time.monotonic() - t0 < 1.5, err  # the tasks still had ~2 s to run
    assert "cancelled: accepted tasks are in the journal" in err and "Traceback" not in err
    assert main(args([src], out)) == 0
    assert len(sandbox.tasks) == 3 and len(sandbox.submits) == 3
