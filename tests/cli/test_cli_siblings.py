"""``python -m ppinfra txt2img|inpaint|upscale``: end to end on the sandbox, option errors before any send,
and the journal (keyed by endpoint and host) for reruns."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from helpers import photo_like
from ppinfra.sandbox.catalog import INPAINTING_CHECKPOINT

JOURNAL = ".ppinfra-journal.jsonl"
# The inpainting checkpoint every sandbox catalog lists (its generated names change with the catalog).
INPAINT_MODEL = INPAINTING_CHECKPOINT


def picture(path, width, height, seed=0):
    Image.fromarray((photo_like(width, height, seed=seed) * 255).astype(np.uint8)).save(path)
    return str(path)


def right_half_mask(path, width, height):
    mask = np.zeros((height, width), np.uint8)
    mask[:, width // 2 :] = 255  # white: repaint
    Image.fromarray(mask).save(path)
    return str(path)


def sent(srv):
    """Submits the sandbox received, to any endpoint."""
    from ppinfra.endpoints import ENDPOINTS

    return sum(len(srv.submitted(name)) for name in ENDPOINTS)


def results(out):
    return sorted(f for f in os.listdir(out) if not f.startswith("."))


def journal(out):
    with open(os.path.join(out, JOURNAL), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def run(capsys, argv):
    from ppinfra.cli import main

    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


def txt2img(out, *more):
    return ["txt2img", "--prompt", "a lighthouse", "--width", "128", "--height", "192", "--out", out, *more]


def inpaint(images, mask, out, *more):
    return [
        "inpaint",
        "--image",
        *images,
        "--mask",
        mask,
        "--model-name",
        INPAINT_MODEL,
        "--prompt",
        "a red door",
        "--out",
        out,
        *more,
    ]


def upscale(images, out, *more):
    return ["upscale", "--image", *images, "--out", out, *more]


# --------------------------------------------------------------------------- end to end on --sandbox


def test_txt2img_writes_count_times_image_num_files_of_the_requested_size(tmp_path, isolated_env, capsys):
    out = tmp_path / "out"
    code, cap = run(
        capsys, txt2img(out, "--sandbox", "--sandbox-task-seconds", "0.2", "--count", "2", "--image-num", "2")
    )
    assert code == 0, cap.err
    assert results(out) == ["txt2img_0.png", "txt2img_1.png", "txt2img_2.png", "txt2img_3.png"]
    assert all(Image.open(out / f).size == (128, 192) for f in results(out))
    assert cap.out.split() == [str(out / f) for f in results(out)]
    code, cap = run(
        capsys,
        txt2img(
            out,
            "--sandbox",
            "--name",
            "hires",
            "--hires-target-width",
            "256",
            "--hires-target-height",
            "384",
            "--response-image-type",
            "jpeg",
        ),
    )
    assert code == 0, cap.err
    assert Image.open(out / "hires_0.jpg").size == (256, 384)  # the hires fix's target size


def test_inpaint_keeps_each_input_size_and_resizes_the_mask_to_another_size(tmp_path, isolated_env, capsys):
    same = picture(tmp_path / "same.png", 120, 100, seed=1)
    other = picture(tmp_path / "other.png", 80, 60, seed=2)
    mask = right_half_mask(tmp_path / "mask.png", 120, 100)
    out = tmp_path / "out"
    code, cap = run(
        capsys,
        inpaint(
            [same, other],
            mask,
            out,
            "--sandbox",
            "--sandbox-task-seconds",
            "0.2",
            "--inpainting-full-res",
            "1",
            "--mask-blur",
            "4",
        ),
    )
    assert code == 0, cap.err
    assert results(out) == ["other_0.png", "same_0.png"]
    for name, size, src in (("same_0.png", (120, 100), same), ("other_0.png", (80, 60), other)):
        result = np.asarray(Image.open(out / name).convert("RGB")).astype(int)
        assert result.shape[1::-1] == size
        before = np.asarray(Image.open(src).convert("RGB")).astype(int)
        half = size[0] // 2
        assert np.abs(result[:, :half] - before[:, :half]).max() <= 2  # black: kept
        assert np.abs(result[:, half:] - before[:, half:]).mean() > 5  # white: repainted
    assert "other.png is 80x60" in cap.err and "resized" in cap.err and "same.png is" not in cap.err


def test_upscale_writes_the_input_times_the_scale_factor(tmp_path, isolated_env, capsys):
    a = picture(tmp_path / "a.png", 100, 80)
    b = picture(tmp_path / "b.png", 64, 48, seed=3)
    out = tmp_path / "out"
    code, cap = run(
        capsys,
        upscale(
            [a, b],
            out,
            "--sandbox",
            "--sandbox-task-seconds",
            "0.2",
            "--scale-factor",
            "2.5",
            "--model-name",
            "4x-UltraSharp",
        ),
    )
    assert code == 0, cap.err
    assert Image.open(out / "a_0.png").size == (250, 200) and Image.open(out / "b_0.png").size == (160, 120)


# --------------------------------------------------------------------------- refused before anything is sent

BAD = [
    (lambda p: txt2img(p / "o", "--width", "4000"), "--width (request.width)", "[128, 2048]", "4000"),
    (lambda p: txt2img(p / "o", "--guidance-scale", "31"), "--guidance-scale", "[1, 30]", "31"),
    (lambda p: txt2img(p / "o", "--count", "0"), "--count", "1 or more", "0"),
    (
        lambda p: txt2img(p / "o", "--hires-strength", "0.3"),
        "--hires-strength",
        "--hires-target-width",
        "0.3",
    ),
    (
        lambda p: txt2img(p / "o", "--hires-target-width", "256", "--hires-target-height", "160"),
        "--hires-target-height (request.hires_fix.target_height)",
        "request.height (192)",
        "160",
    ),
    (lambda p: txt2img(p / "o", "--refiner-switch-at", "1.5"), "--refiner-switch-at", "[0, 1]", "1.5"),
    (
        lambda p: txt2img(p / "o", "--seed", str(2**32 - 1), "--count", "2"),
        "--seed",
        "--count 2",
        "4294967295",
    ),
    (
        lambda p: txt2img(p / "o", "--lora", "detail=2"),
        "--lora strength (request.loras[0].strength)",
        "[0, 1]",
        "2.0",
    ),
    (
        lambda p: inpaint([p / "in.png"], p / "mask.png", p / "o", "--inpainting-full-res", "2"),
        "--inpainting-full-res (request.inpainting_full_res)",
        "[0, 1]",
        "2",
    ),
    (
        lambda p: inpaint([p / "in.png"], p / "mask.png", p / "o", "--mask-blur", "65"),
        "--mask-blur",
        "[0, 64]",
        "65",
    ),
    (
        lambda p: inpaint([p / "in.png"], p / "mask.png", p / "o", "--initial-noise-multiplier", "2"),
        "--initial-noise-multiplier",
        "[0, 1.5]",
        "2",
    ),
    (
        lambda p: inpaint([p / "in.png"], p / "nope.png", p / "o"),
        "--mask",
        "a readable image file",
        "nope.png",
    ),
    (
        lambda p: upscale([p / "in.png"], p / "o", "--scale-factor", "4.5"),
        "--scale-factor (request.scale_factor)",
        "(1, 4]",
        "4.5",
    ),
    (lambda p: upscale([p / "in.png"], p / "o", "--scale-factor", "1"), "--scale-factor", "(1, 4]", "1"),
    (
        lambda p: upscale([p / "in.png", p / "big.png"], p / "o"),
        "--image",
        "each side <= 2048 px",
        "2049x100",
    ),
]


@pytest.mark.parametrize("argv,option,limit,value", BAD, ids=[f"{b[1].split()[0]}-{b[3]}" for b in BAD])
def test_a_bad_option_is_refused_naming_option_limit_and_value(
    sandbox, cli_env, tmp_path, capsys, argv, option, limit, value
):
    cli_env(sandbox)
    picture(tmp_path / "in.png", 64, 48)
    right_half_mask(tmp_path / "mask.png", 64, 48)
    Image.new("RGB", (2049, 100)).save(tmp_path / "big.png")
    code, cap = run(capsys, argv(tmp_path))
    assert code == 2, cap.err
    assert option in cap.err and limit in cap.err and value in cap.err, cap.err
    assert "Traceback" not in cap.err
    assert sandbox.requests == []  # nothing sent, not even a model list


def test_an_upscale_model_outside_the_documented_list_is_refused_with_the_list(
    tmp_path, isolated_env, capsys
):
    picture(tmp_path / "in.png", 64, 48)
    with pytest.raises(SystemExit) as info:
        run(capsys, upscale([tmp_path / "in.png"], tmp_path / "o", "--sandbox", "--model-name", "2x-Mystery"))
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--model-name" in err and "'2x-Mystery'" in err and "4x-UltraSharp" in err


# --------------------------------------------------------------------------- the journal


def test_txt2img_reruns_pay_only_for_new_indexes(sandbox, cli_env, tmp_path, capsys):
    cli_env(sandbox)
    out = tmp_path / "out"
    assert run(capsys, txt2img(out, "--count", "3", "--seed", "7"))[0] == 0
    assert sorted(t.seed for t in sandbox.tasks.values()) == [7, 8, 9]  # task k uses seed + k
    code, cap = run(capsys, txt2img(out, "--count", "3", "--seed", "7"))
    assert code == 0 and sent(sandbox) == 3 and "3 task(s) already done" in cap.err
    assert run(capsys, txt2img(out, "--count", "4", "--seed", "7"))[0] == 0  # one more index: one more task
    assert sent(sandbox) == 4 and results(out) == [f"txt2img_{k}.png" for k in range(4)]
    assert run(capsys, txt2img(out, "--count", "1", "--seed", "7", "--steps", "21"))[0] == 0  # another job
    assert sent(sandbox) == 5


def test_inpaint_and_upscale_reruns_submit_nothing_finished(sandbox, cli_env, tmp_path, capsys):
    cli_env(sandbox)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        picture(src / f"p{i}.png", 64, 48, seed=i)
    mask = right_half_mask(tmp_path / "mask.png", 64, 48)
    for argv in (inpaint([src], mask, tmp_path / "inpainted"), upscale([src], tmp_path / "upscaled")):
        before = sent(sandbox)
        assert run(capsys, argv)[0] == 0
        assert sent(sandbox) == before + 2
        code, cap = run(capsys, argv)
        assert code == 0 and sent(sandbox) == before + 2 and "2 input(s) already done" in cap.err
    assert {t.endpoint for t in sandbox.tasks.values()} == {"inpainting", "upscale"}
    other_mask = right_half_mask(tmp_path / "mask2.png", 64, 48)
    Image.open(other_mask).transpose(Image.FLIP_LEFT_RIGHT).save(other_mask)
    assert (
        run(capsys, inpaint([src], other_mask, tmp_path / "inpainted"))[0] == 0
    )  # another mask: another job
    assert sent(sandbox) == 6


def test_the_same_options_against_another_host_run_again(make_sandbox, cli_env, tmp_path, capsys):
    """Issue 15: the job key holds the host. Left out, the run on B would skip what A did (and B's user
    would get A's files without B ever running them)."""
    a, b = make_sandbox(), make_sandbox()
    out = tmp_path / "out"
    image = picture(tmp_path / "in.png", 64, 48)
    for argv in (txt2img(out, "--count", "2"), upscale([image], out)):
        cli_env(a)
        assert run(capsys, argv)[0] == 0
        cli_env(b)
        assert run(capsys, argv)[0] == 0
        cli_env(a)
        code, cap = run(capsys, argv)
        assert code == 0 and "already done" in cap.err  # back on A: its journal lines still apply
    assert sent(a) == 3 and sent(b) == 3


def test_the_job_key_holds_the_endpoint(tmp_path):
    """The same fields sent to another endpoint are another job (its own billing and results)."""
    from ppinfra.cli import build_parser
    from ppinfra.cli.sibling_requests import UpscaleFactory

    factory = UpscaleFactory(build_parser().parse_args(upscale([str(tmp_path / "x.png")], str(tmp_path))))
    key = factory.job_key("https://api.novita.ai")
    assert key == factory.job_key("https://api.novita.ai/")  # the host as normalised, not as typed
    assert key != factory.job_key("https://api.ppinfra.com")
    factory.endpoint = "img2img"
    assert factory.job_key("https://api.novita.ai") != key
