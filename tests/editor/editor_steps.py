"""What the real-editor test files share: their skip marks, the journey's workflow, and small steps.

The fixtures (``editor_sandbox``, ``editor_comfy``, ``editor``) are in
tests/editor/conftest.py; the browser driver is tests/editor/editor_driver.py.
"""

from __future__ import annotations

import glob
import json
import os
import time
from typing import Any, Dict

import pytest

from editor.comfy_process import Comfy, needs_comfyui
from editor.editor_driver import Editor, available, wait_for
from helpers import ROOT

# Every test_real_editor*.py file: ``pytestmark = REAL_EDITOR``.
REAL_EDITOR = [
    needs_comfyui,
    pytest.mark.skipif(
        bool(available()), reason=f"needs Chromium, chromedriver and selenium ({available()} missing)"
    ),
]

SCREENSHOTS = os.environ.get("PPINFRA_SCREENSHOTS", "")
WORKFLOW = os.path.join(ROOT, "example_workflows", "lora_embeddings.json")
CATALOG = {"checkpoint": 300, "lora": 20000, "textualinversion": 300}


def workflow(path: str = WORKFLOW) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def shot(editor: Editor, name: str, element: Any = None) -> None:
    if SCREENSHOTS:
        editor.screenshot(os.path.join(SCREENSHOTS, name), element)


def settings(comfy: Comfy) -> Dict[str, Any]:
    return comfy.get("/ppinfra/settings")


def message(panel: Any, kind: str) -> str:
    """The panel's message once it has settled on ``kind`` (ok, err, warn)."""

    def check():
        msg = panel.find_element("css selector", ".msg")
        return msg.text if kind in msg.get_attribute("class").split() else None

    return wait_for(f"a {kind} message in the settings panel", check, timeout=30)


def close_pack_dialog(editor: Editor) -> None:
    editor.driver.find_element("css selector", ".ppinfra-ui.modal-back button.close").click()
    wait_for("the dialog to close", lambda: editor.panel(".ppinfra-ui.modal-back") is None)


def examples_load_with_their_own_values(editor: Editor) -> None:
    """Every example workflow loads with exactly its saved ``widgets_values``, also once the remote
    lists arrive."""
    # The frontend puts extra widgets under each remote combo (1.27: a refresh
    # button and a toggle; 1.58 adds none), and the pack adds its own (the key
    # hint, the price line); were they saved in between, every value after them
    # would load one slot off.
    paths = sorted(glob.glob(os.path.join(ROOT, "example_workflows", "*.json")))
    assert paths
    for path in paths:
        saved = workflow(path)
        ours = [n for n in saved["nodes"] if n["type"].startswith("PPInfra")]
        editor.load_workflow(saved)
        # A node type the server does not know loads as a placeholder that keeps
        # its widgets_values untouched: that would pass the comparison below vacuously.
        unknown = editor.js(
            "return arguments[0].filter(t => !LiteGraph.registered_node_types[t])",
            sorted({n["type"] for n in saved["nodes"]}),
        )
        assert not unknown, (os.path.basename(path), unknown)
        for node in ours:
            assert editor.widget_names(node["id"]), (os.path.basename(path), node["type"], "no widgets")
        for when in ("loaded", "after the remote lists arrived"):
            if when != "loaded":
                for node in ours:
                    for name in editor.js(
                        "return app.graph.getNodeById(arguments[0]).widgets"
                        ".filter(w => w.refresh).map(w => w.name)",
                        node["id"],
                    ):
                        wait_for(
                            f"{name}'s remote list", lambda: len(editor.widget_options(node["id"], name)) > 1
                        )
                editor.js("app.canvas.setDirty(true, true); app.canvas.draw(true, true)")
                time.sleep(0.5)
            # Keyed by str(id): under Nodes 2.0, 1.58.1 gives loaded nodes string ids.
            loaded = {str(n["id"]): n for n in editor.serialized_workflow()["nodes"]}
            for node in ours:
                assert loaded[str(node["id"])]["widgets_values"] == node["widgets_values"], (
                    os.path.basename(path),
                    node["type"],
                    when,
                )
