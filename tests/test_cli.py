"""The command line, end to end against the in-process sandbox (the README's first command)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from helpers import photo_like

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _input(tmp_path, name="in.png", size=(300, 200)):
    path = tmp_path / name
    Image.fromarray((photo_like(*size) * 255).astype(np.uint8)).save(path)
    return str(path)


def test_cli_img2img_on_the_sandbox_writes_results(tmp_path, isolated_env, capsys):
    from ppinfra.cli import main
    img = _input(tmp_path)
    out = tmp_path / "out"
    code = main(["img2img", "--sandbox", "--sandbox-task-seconds", "0.3", "--image", img, "--prompt", "a fox",
                 "--image-num", "2", "--response-image-type", "jpeg", "--out", str(out),
                 "--controlnet", f"control_v11p_sd15_canny={img},strength=0.5,preprocessor=canny",
                 "--lora", "add_detail_44319=0.4", "--embedding", "EasyNegative",
                 "--ip-adapter", f"ip-adapter_sd15.bin={img},strength=0.3"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    files = sorted(f for f in os.listdir(out) if not f.startswith("."))  # the journal is a dotfile
    assert files == ["in_0.jpg", "in_1.jpg"]  # named after the input
    assert Image.open(out / files[0]).size == (304, 200)  # width 0: the input's size snapped to 8
    assert "succeed 100%" in captured.err


def test_cli_bad_input_exits_nonzero_with_field(tmp_path, isolated_env, capsys):
    from ppinfra.cli import main
    code = main(["img2img", "--sandbox", "--image", _input(tmp_path), "--prompt", "x", "--steps", "101"])
    err = capsys.readouterr().err
    assert code == 2 and "request.steps" in err and "[1, 100]" in err and "101" in err


def test_cli_without_key_says_where_to_put_one(tmp_path, isolated_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PPINFRA_")}
    env["PPINFRA_CONFIG"] = str(tmp_path / "none.json")
    proc = subprocess.run([sys.executable, "-m", "ppinfra", "img2img", "--image", _input(tmp_path), "--prompt", "x"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "PPINFRA_API_KEY" in proc.stderr and "none.json" in proc.stderr
