"""The command line, end to end against the in-process sandbox (the README's first command)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import photo_like

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _input(tmp_path, name="in.png", size=(300, 200)):
    path = tmp_path / name
    Image.fromarray((photo_like(*size) * 255).astype(np.uint8)).save(path)
    return str(path)


def test_cli_img2img_on_the_sandbox_writes_results(tmp_path, isolated_env, capsys):
    from ppinfra.cli import main

    img = _input(tmp_path)
    out = tmp_path / "out"
    code = main(
        [
            "img2img",
            "--sandbox",
            "--sandbox-task-seconds",
            "0.3",
            "--image",
            img,
            "--prompt",
            "a fox",
            "--image-num",
            "2",
            "--response-image-type",
            "jpeg",
            "--out",
            str(out),
            "--controlnet",
            f"control_v11p_sd15_canny={img},strength=0.5,preprocessor=canny",
            "--lora",
            "add_detail_44319=0.4",
            "--embedding",
            "EasyNegative",
            "--ip-adapter",
            f"ip-adapter_sd15.bin={img},strength=0.3",
        ]
    )
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
    proc = subprocess.run(
        [sys.executable, "-m", "ppinfra", "img2img", "--image", _input(tmp_path), "--prompt", "x"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "PPINFRA_API_KEY" in proc.stderr and "none.json" in proc.stderr


# --------------------------------------------------------------------------- option errors, pipes


def _cli_error(capsys, argv):
    """Run the CLI in-process; return (exit code, stderr). A traceback would escape as an exception."""
    from ppinfra.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_cli_lora_strength_that_is_not_a_number_is_named(tmp_path, isolated_env, capsys):
    code, err = _cli_error(
        capsys, ["img2img", "--sandbox", "--image", _input(tmp_path), "--prompt", "x", "--lora", "name=abc"]
    )
    assert code == 2 and "--lora strength must be a number, got 'abc'" in err and "Traceback" not in err


def test_cli_misspelt_key_is_an_error_naming_the_accepted_keys(tmp_path, isolated_env, capsys):
    img = _input(tmp_path)
    code, err = _cli_error(
        capsys,
        [
            "img2img",
            "--sandbox",
            "--image",
            img,
            "--prompt",
            "x",
            "--controlnet",
            f"control_v11p_sd15_canny={img},strenght=0.5",
        ],
    )
    assert code == 2 and "'strenght'" in err
    assert "strength, preprocessor, guidance_start, guidance_end" in err
    code, err = _cli_error(
        capsys,
        [
            "img2img",
            "--sandbox",
            "--image",
            img,
            "--prompt",
            "x",
            "--ip-adapter",
            f"ip-adapter_sd15.bin={img},strength=lots",
        ],
    )
    assert code == 2 and "--ip-adapter strength must be a number, got 'lots'" in err


def test_cli_sdxl_and_sd15_together_are_refused(isolated_env, capsys):
    from ppinfra.cli import main

    with pytest.raises(SystemExit) as info:
        main(["models", "--sandbox", "--sdxl", "--sd15"])
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_cli_lists_inpainting_checkpoints_only(isolated_env, capsys):
    """``models --inpainting`` asks the provider's own filter (filter.is_inpainting) and lists only those."""
    from ppinfra.cli import main
    from ppinfra.sandbox.catalog import INPAINTING_CHECKPOINT

    assert main(["models", "--sandbox", "--type", "checkpoint", "--inpainting"]) == 0
    names = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert INPAINTING_CHECKPOINT in names and all("inpainting" in n.lower() for n in names)
    assert main(["models", "--sandbox", "--type", "lora", "--inpainting"]) == 2
    assert "--inpainting must be used with --type checkpoint" in capsys.readouterr().err


def test_cli_piped_into_a_closed_reader_exits_quietly(tmp_path, isolated_env):
    """``python -m ppinfra models | head -1``: the reader goes away;
    no traceback, exit 141 as a shell tool."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PPINFRA_")}
    env.update(PPINFRA_CACHE_DIR=str(tmp_path / "cache"), PPINFRA_CONFIG=str(tmp_path / "none.json"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ppinfra", "models", "--sandbox"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # like `head` after its lines: every write now fails with EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err
