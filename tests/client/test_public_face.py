"""The package's public face and its layering: what a newcomer may import, and which way imports point."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import ppinfra

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _imports(path: str):
    """(module, level) of every import statement in a file."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield (node.module or ""), node.level, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, 0, []


def _py_files(*parts: str):
    for folder, _, files in os.walk(os.path.join(ROOT, *parts)):
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def test_every_public_name_resolves():
    for name in ppinfra.__all__:
        assert getattr(ppinfra, name) is not None, name
    assert {
        "PPInfraClient",
        "Txt2ImgRequest",
        "InpaintingRequest",
        "UpscaleRequest",
        "Img2ImgRequest",
        "PPInfraError",
        "ValidationError",
    } <= set(ppinfra.__all__)


def test_import_ppinfra_stays_light():
    """ComfyUI imports every pack at start: the package itself pulls in neither requests nor Pillow."""
    code = "import sys, ppinfra; print(sorted({'requests', 'PIL', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_client_layer_imports_nothing_of_the_nodes():
    for path in _py_files("ppinfra"):
        for module, level, _ in _imports(path):
            assert not (level != 1 and module.startswith("nodes")), path  # ..nodes from ppinfra/ would be it
            if level == 0:  # ComfyUI's own top-level modules
                assert not module.startswith(("comfy", "server", "folder_paths", "execution")), (path, module)


def test_nothing_outside_the_client_reaches_its_transport():
    """Callers use the client's methods (run, balance, model_page, search_models), never its HTTP layer."""
    for path in [
        *_py_files("nodes"),
        *_py_files("tools"),
        *_py_files("bench"),
        os.path.join(ROOT, "__init__.py"),
    ]:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        assert ".transport" not in text, path
        for module, _, names in _imports(path):
            assert not module.endswith("transport") and "transport" not in names, path


def test_no_two_modules_of_the_pack_share_a_name():
    """nodes/, ppinfra/ and ppinfra/cli/ name each module once (the sandbox may mirror the API's nouns)."""
    seen = {}
    for layer in ("nodes", "ppinfra", os.path.join("ppinfra", "cli")):
        for name in os.listdir(os.path.join(ROOT, layer)):
            if name.endswith(".py") and name not in ("__init__.py", "__main__.py"):
                assert name not in seen, f"{layer}/{name} and {seen[name]}/{name}"
                seen[name] = layer
