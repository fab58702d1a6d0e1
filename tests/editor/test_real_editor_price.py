"""The price estimate on the PPInfra nodes, in the real editor (web/price.js, GET /ppinfra/price).

The estimate is a one-line DOM widget at the bottom of each node that calls
the API: the one surface shown on frontend 1.27 and 1.58, with Nodes 2.0 off
and on (a canvas hook does not run for Vue nodes, and above the title it
collided with 1.58's node-source badge). It must say "estimate", follow the
node's widgets, keep its source one click away, and never be saved: saved
workflows load ``widgets_values`` by position. Its own ComfyUI (tests/editor/conftest.py).
"""

from __future__ import annotations

import re
from typing import Any, Dict

import pytest
import requests

from editor.editor_driver import Editor, wait_for
from editor.editor_steps import REAL_EDITOR, close_pack_dialog, workflow
from helpers import ROOT

pytestmark = REAL_EDITOR

EXAMPLES = {
    "PPInfraImg2Img": f"{ROOT}/example_workflows/img2img_basic.json",
    "PPInfraTxt2Img": f"{ROOT}/example_workflows/txt2img_lora.json",
}
PRICE = "ppinfra_price"
LABEL = re.compile(r"^≈ \$(\d+\.\d+) per (run|input image) \(estimate\)( \(for a \d+×\d+ input\))?$")


def route_price(comfy: Any, editor: Editor, node_id: int, node_type: str) -> float:
    """What GET /ppinfra/price answers for the node's current widget values."""
    names = (
        "width",
        "height",
        "steps",
        "image_num",
        "scale_factor",
        "hires_fix",
        "hires_target_width",
        "hires_target_height",
    )
    query = {"node": node_type}
    for name in names:
        value = editor.widget_value(node_id, name)
        if value is not None:
            query[name] = str(value).lower() if isinstance(value, bool) else str(value)
    data = requests.get(comfy.url + "/ppinfra/price", params=query, timeout=30).json()
    assert data["ok"] and data["estimate"] is True, data
    return data["usd"]


def shown_price(editor: Editor, node_id: int, differs_from: str = "") -> str:
    """The node's price line once it shows a label (and, if given, a different one)."""
    editor.show_widget(node_id, PRICE)
    return wait_for(
        f"the price line on node {node_id}",
        lambda: (lambda text: text if text and LABEL.match(text) and text != differs_from else None)(
            editor.widget_text(node_id, PRICE)
        ),
        timeout=20,
    )


def check_node(comfy: Any, editor: Editor, node_type: str) -> Dict[str, Any]:
    saved = workflow(EXAMPLES[node_type])
    editor.load_workflow(saved)
    node = wait_for(f"the {node_type} node", lambda: editor.node_id(node_type))
    text = shown_price(editor, node)
    usd, per = LABEL.match(text).group(1, 2)
    assert per == ("run" if node_type == "PPInfraTxt2Img" else "input image"), text
    expected = route_price(comfy, editor, node, node_type)
    assert abs(float(usd) - expected) <= 0.0006, (text, expected)

    # An edit that changes the cost changes the line.
    name, value = ("steps", 40) if node_type == "PPInfraImg2Img" else ("width", 1024)
    editor.set_widget(node, name, value)
    changed = shown_price(editor, node, differs_from=text)
    assert (
        abs(float(LABEL.match(changed).group(1)) - route_price(comfy, editor, node, node_type)) <= 0.0006
    ), changed
    editor.set_widget(
        node,
        name,
        next(n for n in saved["nodes"] if n["type"] == node_type)["widgets_values"][
            editor.widget_names(node).index(name)
        ],
    )
    shown_price(editor, node, differs_from=changed)

    # Never saved: the workflow's values are the file's, position by position; the API prompt has
    # no such input.
    for n in saved["nodes"]:
        if n["type"].startswith("PPInfra"):
            ours = next(m for m in editor.serialized_workflow()["nodes"] if str(m["id"]) == str(n["id"]))
            assert ours["widgets_values"] == n["widgets_values"], (node_type, n["type"])
    prompt = editor.js_async("app.graphToPrompt().then(p => done(p.output), e => done(String(e)))")
    assert PRICE not in prompt[str(node)]["inputs"], prompt[str(node)]["inputs"]
    return {"node": node, "text": text}


@pytest.mark.parametrize("node_type", ["PPInfraImg2Img", "PPInfraTxt2Img"])
def test_the_price_shows_on_classic_nodes(editor_comfy, editor, node_type):
    assert not editor.vue_nodes()
    node = check_node(editor_comfy, editor, node_type)["node"]
    # Inside the node's body, under its title bar: clear of the frontend's node-source badge above the title.
    top = editor.js(
        "const n = app.graph.getNodeById(arguments[0]); "
        "const w = n.widgets.find(w => w.name === arguments[1]);"
        "const r = app.canvas.canvas.getBoundingClientRect();"
        "const [, y] = app.canvas.ds.convertOffsetToCanvas([n.pos[0], n.pos[1]]);"
        "return [w.element.getBoundingClientRect().top, r.top + y]",
        node,
        PRICE,
    )
    assert top[0] >= top[1] - 1, top
    print(f"\nfrontend {editor.frontend_version()}, classic: {node_type}: {editor.widget_text(node, PRICE)}")


def test_the_price_source_is_one_click_away(editor_comfy, editor):
    editor.load_workflow(workflow(EXAMPLES["PPInfraImg2Img"]))
    node = wait_for("the Img2Img node", lambda: editor.node_id("PPInfraImg2Img"))
    shown_price(editor, node)
    editor.context_menu_entry(node, "About the price estimate").click()
    dialog = wait_for("the price estimate dialog", lambda: editor.panel(".ppinfra-ui.modal-back .modal"))
    assert "third-party" in dialog.text and "balance" in dialog.text, dialog.text
    close_pack_dialog(editor)


def test_the_price_shows_on_nodes_2_0(editor_comfy, editor):
    if not editor.frontend_at_least(1, 28):
        pytest.skip(f"frontend {editor.frontend_version()}: Nodes 2.0 is an unfinished experiment there")
    editor.set_vue_nodes(True)
    try:
        for node_type in EXAMPLES:
            editor.load_workflow(workflow(EXAMPLES[node_type]))
            node = wait_for(f"the {node_type} node", lambda: editor.node_id(node_type))
            wait_for(f"the {node_type} node as a Vue component", lambda: editor.node_element(node))
            check_node(editor_comfy, editor, node_type)
            # The line is part of the Vue node itself.
            assert "(estimate)" in editor.node_element(node).text
            print(
                f"\nfrontend {editor.frontend_version()}, Nodes 2.0: "
                f"{node_type}: {editor.widget_text(node, PRICE)}"
            )
    finally:
        editor.set_vue_nodes(False)
    wait_for(
        "the nodes back on the canvas",
        lambda: not editor.js("return document.querySelectorAll('[data-node-id]').length"),
    )
