"""Fixtures of the editor layer: web/*.js run in Node.js, and (optional) a real ComfyUI with its editor."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap

import pytest

from helpers import NODE_JS as NODE, ROOT, SANDBOX_KEY


# Stand-ins for ComfyUI's scripts/app.js and scripts/api.js: what the modules import.
APP = (
    "export const app = { extensions: [], registerExtension(e) { this.extensions.push(e); }, "
    "extensionManager: { setting: { get: (id) => globalThis.__locale } } };\n"
)


API = (
    "export const api = { getCustomNodesI18n: async () => globalThis.__i18n, "
    "fetchApi: async () => { throw new Error('no server here'); } };\n"
)


@pytest.fixture(scope="module")
def run_js(tmp_path_factory):
    """Run an ES module body with the pack's web/ modules importable as ./ext/<file>."""
    base = tmp_path_factory.mktemp("web")
    (base / "scripts").mkdir()
    (base / "scripts" / "app.js").write_text(APP)
    (base / "scripts" / "api.js").write_text(API)
    shutil.copytree(os.path.join(ROOT, "web"), base / "extensions" / "pack")

    def run(body: str):
        script = base / "extensions" / "pack" / "case.mjs"
        script.write_text(textwrap.dedent(body))
        proc = subprocess.run([NODE, str(script)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run


# -------------------------------------------------------------- a real ComfyUI and its editor (optional)
# Module-scoped: each tests/editor/test_real_*.py file gets its own ComfyUI, so a
# file starts from a known state (no key stored, the editor's default settings).


@pytest.fixture(scope="module")
def editor_sandbox():
    """The sandbox behind the real editor, with an account catalog large enough to need a search."""
    from editor.editor_steps import CATALOG
    from ppinfra.sandbox import SandboxServer

    srv = SandboxServer(
        api_keys=[SANDBOX_KEY], queue_seconds=0.1, task_seconds=0.5, catalog_sizes=CATALOG
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def editor_comfy(editor_sandbox, tmp_path_factory):
    """ComfyUI on the sandbox with no key anywhere the pack looks (environment, config file under HOME)."""
    from editor.comfy_process import start_comfy

    base = str(tmp_path_factory.mktemp("comfy-editor"))
    with start_comfy(
        base,
        {"PPINFRA_BASE_URL": editor_sandbox.base_url, "HOME": os.path.join(base, "home")},
        drop=("PPINFRA_API_KEY", "PPINFRA_CONFIG"),
    ) as c:
        yield c


@pytest.fixture(scope="module")
def editor(editor_comfy):
    """One headless Chromium with the editor open on ``editor_comfy``."""
    from editor.editor_driver import Editor

    ed = Editor(editor_comfy.url)
    try:
        ed.open()
        yield ed
    finally:
        ed.close()


@pytest.fixture(scope="module")
def keyed_sandbox():
    """The sandbox behind tests/editor/test_real_comfyui.py (default catalog)."""
    from ppinfra.sandbox import SandboxServer

    srv = SandboxServer(api_keys=[SANDBOX_KEY], queue_seconds=0.1, task_seconds=0.5).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def keyed_comfy(keyed_sandbox, tmp_path_factory):
    """ComfyUI with the key and host in its environment, as a headless user runs it."""
    from editor.comfy_process import start_comfy

    base = str(tmp_path_factory.mktemp("comfy-base"))
    with start_comfy(
        base,
        {"PPINFRA_BASE_URL": keyed_sandbox.base_url, "PPINFRA_API_KEY": SANDBOX_KEY},
        drop=("PPINFRA_CONFIG",),
        ready="/object_info/PPInfraImg2Img",
    ) as c:
        yield c
