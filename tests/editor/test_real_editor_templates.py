"""The three templates of issue 16 run from the real editor: opened as shipped, queued with Run.

Each UI workflow (example_workflows/<name>.json) is loaded with
``app.loadGraphData`` (the editor's Open), queued with the ``Comfy.QueuePrompt``
command (the Run button) and must finish in ComfyUI's /history with images
saved. Optional like the other real-editor tests (``COMFYUI_DIR``, Chromium,
chromedriver, selenium). ComfyUI has the key and the sandbox's host in its
environment (the ``keyed_comfy`` fixture), so no settings dialog is involved;
the sandbox speaks as Novita, the host that serves upscale.
"""

from __future__ import annotations

import json
import os

import pytest

from editor.comfy_process import EXAMPLES
from editor.editor_driver import wait_for
from editor.editor_steps import REAL_EDITOR, workflow

pytestmark = REAL_EDITOR

ENDPOINT = {"txt2img_lora": "txt2img", "inpainting_mask": "inpainting", "img2img_upscale": "upscale"}


@pytest.fixture(scope="module")
def keyed_editor(keyed_comfy):
    """One headless Chromium with the editor open on ``keyed_comfy``."""
    from editor.editor_driver import Editor

    ed = Editor(keyed_comfy.url)
    try:
        ed.open()
        yield ed
    finally:
        ed.close()


@pytest.mark.parametrize("name", sorted(ENDPOINT))
def test_template_runs_from_the_editor_as_shipped(keyed_comfy, keyed_sandbox, keyed_editor, name):
    saved = workflow(os.path.join(EXAMPLES, name + ".json"))
    before = len(keyed_sandbox.submitted(ENDPOINT[name]))
    known = set(keyed_comfy.get("/history"))
    keyed_editor.load_workflow(saved)
    keyed_editor.run()
    prompt_id = wait_for(
        "the run to appear in /history",
        lambda: next(iter(set(keyed_comfy.get("/history")) - known), None),
        timeout=60,
    )
    entry = keyed_comfy.wait(prompt_id, timeout=180)
    assert entry["status"]["status_str"] == "success", (name, json.dumps(entry["status"])[:2000])
    images = [
        img
        for out in entry["outputs"].values()
        for img in out.get("images", [])
        if img.get("type", "output") == "output"
    ]
    assert images, f"{name}: no image saved"
    for img in images:
        assert os.path.isfile(
            os.path.join(keyed_comfy.base, "output", img.get("subfolder", ""), img["filename"])
        )
    sent = keyed_sandbox.submitted(ENDPOINT[name])[before:]
    assert sent, f"{name}: the sandbox received no {ENDPOINT[name]} submit"
    if name == "inpainting_mask":
        assert sent[-1]["request"]["model_name"] == "sd-v1-5-inpainting.ckpt"
        assert sent[-1]["request"]["mask_image_base64"]
