"""Fixtures of the editor layer (web/*.js run in Node.js)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap

import pytest

from helpers import NODE_JS as NODE, ROOT


# Stand-ins for ComfyUI's scripts/app.js and scripts/api.js: what the modules import.
APP = "export const app = { extensions: [], registerExtension(e) { this.extensions.push(e); }, " \
      "extensionManager: { setting: { get: (id) => globalThis.__locale } } };\n"


API = "export const api = { getCustomNodesI18n: async () => globalThis.__i18n, " \
      "fetchApi: async () => { throw new Error('no server here'); } };\n"


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
