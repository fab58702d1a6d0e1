"""Loading the pack: the import opens no connection, and the pack needs only ComfyUI's dependencies.

README promises (issue 11: every promise held by a test that can fail), moved here from
tests/test_readme_promises.py. Each test names the README sentence it holds and the break
it fails under (found by breaking the behaviour in a scratch copy of the tree).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from helpers import ROOT


# --------------------------------------------------------------------------- start-up


def test_importing_the_pack_with_a_key_set_opens_no_connection(sandbox, api_key, tmp_path):
    """README, "Quick start": "makes no network call while ComfyUI starts (model lists come
    from a disk cache and are refreshed in the background)".

    tests/nodes/test_pack_imports.py checks the import without a key; every network
    path of the pack (model-list refresh, account checks) needs one, so here a
    key and a reachable host are set and the model cache is empty (stale), and
    connections are counted during the import and until every thread it started has ended.
    Break: nodes/__init__.py starts the model-list refresh at import.
    """
    code = textwrap.dedent(f"""
        import socket, sys, threading
        sys.path.insert(0, {ROOT!r})
        connects = []
        real = socket.socket.connect
        def counted(self, *a, **k):
            connects.append(a)
            return real(self, *a, **k)
        socket.socket.connect = counted
        started = []
        real_start = threading.Thread.start
        def recorded(self):
            started.append(self)
            return real_start(self)
        threading.Thread.start = recorded
        from tools.packload import load_pack
        mod = load_pack()
        threading.Thread.start = real_start
        assert len(mod.NODE_CLASS_MAPPINGS) == 8
        # Wait for the threads the import started (a refresh thread would connect, then end),
        # rather than for a fixed time: the count is then complete.
        for t in started:
            t.join(60)
        print(len(started), len(connects))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PPINFRA_")}
    env.update(
        PPINFRA_API_KEY=api_key,
        PPINFRA_BASE_URL=sandbox.base_url,
        PPINFRA_CACHE_DIR=str(tmp_path / "cache"),
        PPINFRA_CONFIG=str(tmp_path / "config.json"),
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    threads, connects = out.stdout.strip().splitlines()[-1].split()
    assert connects == "0", (
        f"{connects} connection(s) opened by importing the pack ({threads} thread(s) started)"
    )
    assert not [r for r in sandbox.requests], "the sandbox was asked something while the pack was imported"


# --------------------------------------------------------------------------- install

# The modules the pack may import: ComfyUI's own dependencies and modules, plus requests
# (and urllib3, which requests always brings). aiohttp is ComfyUI's server.
ALLOWED_THIRD_PARTY = {
    "torch",
    "numpy",
    "PIL",
    "requests",
    "urllib3",
    "aiohttp",
    "comfy",
    "comfy_api",
    "comfy_execution",
    "execution",
    "folder_paths",
    "server",
}
# What would run pip or any other program on the user's machine.
FORBIDDEN_MODULES = {"pip", "ensurepip", "subprocess", "runpy"}
FORBIDDEN_CALLS = {
    "os.system",
    "os.popen",
    "os.startfile",
    "os.posix_spawn",
    "os.execv",
    "os.execvp",
    "os.execl",
    "os.execlp",
    "os.execve",
    "os.spawnv",
    "os.spawnl",
    "os.spawnlp",
    "os.spawnvp",
}


def _pack_sources():
    """Every Python file ComfyUI or the CLI runs (tests, bench,
    tools and docs scripts are not shipped code)."""
    yield os.path.join(ROOT, "__init__.py")
    for sub in ("nodes", "ppinfra"):
        for folder, _, files in os.walk(os.path.join(ROOT, sub)):
            for name in sorted(files):
                if name.endswith(".py"):
                    yield os.path.join(folder, name)


def _imports_and_calls(path):
    import ast

    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield "import", alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield "import", node.module.split(".")[0], node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
        ):
            yield "call", f"{node.func.value.id}.{node.func.attr}", node.lineno
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
            yield "call", "__import__", node.lineno


def test_the_pack_needs_only_comfyuis_dependencies_and_requests_and_never_runs_pip():
    """README, "Quick start": "The pack needs nothing beyond ComfyUI's own dependencies and
    `requests`. It never runs `pip` by itself, at install or at start-up".

    Read from the source (every import, guarded or not, and every call that starts a program):
    an import of a new library would break the ComfyUI Manager install, which installs
    requirements.txt only. Breaks: a guarded ``import cv2`` in ppinfra/images.py; a
    ``subprocess`` call of ``pip install`` at import in nodes/__init__.py.
    """
    stdlib = set(sys.stdlib_module_names)
    sources = list(_pack_sources())
    assert len(sources) > 20, sources  # the walk really found the pack
    unknown, runs = [], []
    for path in sources:
        where = os.path.relpath(path, ROOT)
        for kind, name, line in _imports_and_calls(path):
            if kind == "import" and name in FORBIDDEN_MODULES:
                runs.append(f"{where}:{line} imports {name}")
            elif kind == "import" and name not in stdlib and name not in ALLOWED_THIRD_PARTY:
                unknown.append(f"{where}:{line} imports {name}")
            elif kind == "call" and (name in FORBIDDEN_CALLS or name == "__import__"):
                runs.append(f"{where}:{line} calls {name}()")
    assert not unknown, (
        f"not a ComfyUI dependency nor requests (add it to requirements.txt and here?): {unknown}"
    )
    assert not runs, f"the pack must never run pip or another program: {runs}"
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as fh:
        required = [line.split("#")[0].strip() for line in fh if line.split("#")[0].strip()]
    assert [r.split(">")[0].split("=")[0].split("<")[0].strip() for r in required] == ["requests"], required
