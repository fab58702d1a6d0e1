"""Comfy Registry readiness, without the network.

The metadata the Registry reads (``pyproject.toml``), what the published archive
holds (``.comfyignore``), the install command the READMEs print, the workflows'
``cnr_id`` and the publish workflow. When comfy-cli is installed, its own
``comfy node validate`` and ``comfy node pack`` run too (skipped otherwise: CI
does not need comfy-cli). Publishing itself, and the Registry's server-side
checks, need the network and a token: not tested here.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile

import pytest

from helpers import ROOT

# What runs in ComfyUI (and the files a user reads next to it) must be in the archive;
# tests, benchmarks, developer tools, CI and screenshots must not.
KEPT = [
    "__init__.py",
    "nodes/__init__.py",
    "ppinfra/__init__.py",
    "ppinfra/sandbox/__init__.py",
    "locales/zh/nodeDefs.json",
    "requirements.txt",
    "pyproject.toml",
    "README.md",
    "README.zh.md",
    "LICENSE",
    "CHANGELOG.md",
]
KEPT_GLOBS = [
    "web/*.js",
    "example_workflows/*.json",
    "example_workflows/*.jpg",
    "example_workflows/input/*.png",
    "example_workflows/api/*.json",
]
DROPPED_DIRS = ["tests", "bench", "tools", ".ci", ".github"]


def read(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
        return fh.read()


# ---------------------------------------------------------------- pyproject.toml
def test_the_node_id_follows_the_registry_naming_rules(pyproject):
    name = pyproject["project"]["name"]
    # The Registry's rules: under 100 characters; letters, digits, '-', '_', '.'; no two special
    # characters in a row; starts with a letter. Its advice: no "ComfyUI" in the id.
    assert len(name) < 100
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*", name), name
    assert "comfyui" not in name.lower(), f"the Registry advises against 'ComfyUI' in the node id: {name!r}"


def test_tool_comfy_has_every_key_the_registry_reads(pyproject):
    project, comfy = pyproject["project"], pyproject["tool"]["comfy"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["description"].strip()
    assert project["urls"]["Repository"].startswith("https://github.com/")
    for key in ("PublisherId", "DisplayName", "Icon", "requires-comfyui"):
        assert str(comfy.get(key, "")).strip(), f"[tool.comfy] {key} is empty"
    assert isinstance(comfy.get("includes"), list)


def test_the_icon_is_a_raw_github_url_of_a_small_square_png_in_the_repo(pyproject):
    repo = pyproject["project"]["urls"]["Repository"].removeprefix("https://github.com/").rstrip("/")
    icon = pyproject["tool"]["comfy"]["Icon"]
    prefix = f"https://raw.githubusercontent.com/{repo}/main/"
    assert icon.startswith(prefix), f"Icon should be {prefix}<path>, is {icon}"
    path = os.path.join(ROOT, icon[len(prefix) :])
    assert os.path.isfile(path), f"the Icon URL points at {icon[len(prefix) :]}, which is not in the repo"
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "the icon is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    assert width == height and width <= 400, (width, height)  # the Registry takes at most 800x400
    assert os.path.getsize(path) < 20_000


# ---------------------------------------------------------------- the id, everywhere
@pytest.mark.parametrize("readme", ["README.md", "README.zh.md"])
def test_the_readme_install_command_uses_the_node_id(pyproject, readme):
    ids = re.findall(r"comfy node install ([\w.-]+)", read(readme))
    assert ids, f"{readme} has no `comfy node install` command"
    assert set(ids) == {pyproject["project"]["name"]}, ids


def test_example_workflows_name_the_node_id_as_cnr_id(pyproject):
    """ComfyUI and the Manager find a missing pack by its nodes' ``cnr_id``: it must be the Registry id."""
    name = pyproject["project"]["name"]
    for path in sorted(glob.glob(os.path.join(ROOT, "example_workflows", "*.json"))):
        with open(path, encoding="utf-8") as fh:
            nodes = json.load(fh)["nodes"]
        ids = {n["properties"].get("cnr_id") for n in nodes if n["type"].startswith("PPInfra")}
        assert ids == {name}, f"{os.path.basename(path)}: cnr_id {ids}"


# ---------------------------------------------------------------- the archive
def ignore_patterns() -> list:
    lines = [line.strip() for line in read(".comfyignore").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_comfyignore_drops_tests_bench_tools_and_ci():
    patterns = {p.strip("/").removesuffix("/**") for p in ignore_patterns()}
    missing = [d for d in DROPPED_DIRS if d not in patterns]
    assert not missing, f".comfyignore does not drop {missing}"
    assert "docs/*.png" in patterns


def test_comfyignore_keeps_what_runs_in_comfyui():
    tops = {p.strip("/").split("/")[0] for p in ignore_patterns() if "*" not in p.split("/")[0]}
    for path in KEPT + KEPT_GLOBS:
        assert path.split("/")[0] not in tops, f".comfyignore drops {path}"
    assert not any(p.lstrip("/").startswith(("*", "!")) for p in ignore_patterns()), (
        "a bare wildcard or negation in .comfyignore can reach the runtime files: name folders instead"
    )


# ---------------------------------------------------------------- the publish workflow
def test_the_publish_workflow_runs_on_a_version_tag_with_the_registry_token():
    text = read(os.path.join(".github", "workflows", "publish.yml"))
    assert "uses: Comfy-Org/publish-node-action@" in text
    assert "personal_access_token: ${{ secrets.REGISTRY_ACCESS_TOKEN }}" in text
    assert re.search(r"^on:\n  push:\n    tags:\n      - \"v\*\"\n  workflow_dispatch:", text, re.M), (
        "publish.yml should run on a pushed v* tag and by hand (workflow_dispatch)"
    )


# ---------------------------------------------------------------- comfy-cli's own checks
needs_comfy = pytest.mark.skipif(
    importlib.util.find_spec("comfy_cli") is None or importlib.util.find_spec("ruff") is None,
    reason="comfy-cli (and the ruff it runs) not installed: pip install comfy-cli",
)


def comfy(*args: str, cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DO_NOT_TRACK="1")
    return subprocess.run(
        [sys.executable, "-m", "comfy_cli", "--skip-prompt", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@needs_comfy
def test_comfy_node_validate_passes_without_warnings():
    result = comfy("node", "validate", cwd=ROOT)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "warning" not in out.lower() and not re.search(r"\b(E702|S102|S307)\b", out), out
    assert "passed" in out, out


@needs_comfy
def test_comfy_node_pack_builds_an_archive_of_the_runtime_files_only(tmp_path):
    # A copy of the files git would publish (tracked, plus new ones not ignored), in a fresh repository:
    # `comfy node pack` lists files with `git ls-files` and writes node.zip where it runs.
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the Registry archive is built from git-tracked files")
    files = listed.stdout.split("\0")
    copy = tmp_path / "pack"
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(copy / os.path.dirname(rel), exist_ok=True)
            shutil.copy2(src, copy / rel)
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    subprocess.run(["git", "add", "-A"], cwd=copy, check=True)

    result = comfy("node", "pack", cwd=str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(copy / "node.zip") as zf:
        names = set(zf.namelist())
    tops = {n.split("/")[0] for n in names}
    assert not tops & set(DROPPED_DIRS), f"the archive holds {sorted(tops & set(DROPPED_DIRS))}"
    assert not [n for n in names if n.startswith("docs/") and n.endswith(".png")]
    for path in KEPT:
        assert path in names, f"the archive lacks {path}"
    for pattern in KEPT_GLOBS:
        wanted = {os.path.relpath(p, copy).replace(os.sep, "/") for p in glob.glob(str(copy / pattern))}
        assert wanted and wanted <= names, f"the archive lacks {sorted(wanted - names) or pattern}"
    assert os.path.getsize(copy / "node.zip") < 4_000_000
