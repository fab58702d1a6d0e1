"""The logic of the editor extensions, run in Node.js against stand-ins for the editor's app and api.

The saved-selection guard, the model-input detection and the string lookup are
plain functions: they run here without a browser (the optional real-editor test
proves them inside ComfyUI's frontend). Skips when ``node`` is not installed.
"""

from __future__ import annotations

import json
import shutil

import pytest

from helpers import load_pack


NODE = shutil.which("node") or shutil.which("nodejs")
pytestmark = pytest.mark.skipif(not NODE, reason="needs Node.js to run the web/ modules")


WIDGETS = """
class BaseWidget {            // like the frontend's: value is an accessor on the prototype
  #value;
  constructor(name, value, values) { this.name = name; this.#value = value; this.options = { values }; }
  get value() { return this.#value; }
  set value(v) { this.#value = v; }
}
const plain = (name, value, values) => ({ name, value, options: { values } });  // older frontends
"""


def test_the_guard_refuses_only_the_first_item_written_over_a_loaded_value(run_js):
    out = run_js(
        WIDGETS
        + """
    import { arm, setValue } from "./saved_value.js";
    const results = {};
    for (const [kind, make] of [["class", (...a) => new BaseWidget(...a)], ["plain", plain]]) {
      const r = results[kind] = {};
      const w = make("lora_1", "detail_b", ["None", "detail_a", "detail_b"]);
      arm(w);
      w.value = "None";                 // the frontend's first load: the list's first item
      r.afterFirstLoad = w.value;
      r.refused = w.__ppinfraGuard.refused;
      w.value = "None";                 // later writes go through: the guard refuses once at most
      r.afterUserPick = w.value;

      const v = make("lora_2", "detail_a", ["None", "detail_a"]);
      arm(v);
      v.value = "detail_a";             // the same value: nothing to refuse, still armed
      v.value = "detail_x";             // a user's choice (not the first item): through, disarmed
      r.userChoice = v.value;
      v.value = "None";
      r.afterDisarm = v.value;

      const n = make("model_name", "m2", ["m1", "m2"]);
      arm(n);
      setValue({ setDirtyCanvas() {} }, n, "m1");   // the model browser: never refused
      r.browserPick = n.value;

      const e = make("sd_vae", "vae2", ["None", "vae2"]);
      arm(e);
      e.__ppinfraGuard.armedUntil = Date.now() - 1; // armed too long ago
      e.value = "None";
      r.expired = e.value;
    }
    console.log(JSON.stringify(results));
    """
    )
    for kind in ("class", "plain"):
        r = out[kind]
        assert r["afterFirstLoad"] == "detail_b" and r["refused"] == 1, (kind, r)
        assert r["afterUserPick"] == "None", (kind, r)
        assert r["userChoice"] == "detail_x" and r["afterDisarm"] == "None", (kind, r)
        assert r["browserPick"] == "m1", (kind, r)
        assert r["expired"] == "None", (kind, r)


def test_configure_disarms_while_values_load_then_arms_with_them(run_js):
    out = run_js(
        WIDGETS
        + """
    import { app } from "../../scripts/app.js";
    await import("./saved_value.js");
    const ext = app.extensions.find((e) => e.name === "ppinfra.savedSelection");
    class Node {
      constructor() {
        this.widgets = [new BaseWidget("lora_1", "None", ["None", "a", "b"])]; this.onNodeCreated?.();
      }
      configure(info) { info.widgets_values.forEach((v, i) => { this.widgets[i].value = v; }); }
    }
    const nodeData = { name: "PPInfraLoraStack", input: { required: {
      lora_1: [["None"], { remote: { route: "/ppinfra/models/lora?with_none=1" } }] } } };
    await ext.beforeRegisterNodeDef(Node, nodeData);
    const node = new Node();
    node.configure({ widgets_values: ["a"] });   // "a" is not refused although armed with "None"
    const loaded = node.widgets[0].value;
    node.widgets[0].value = "None";              // the frontend's first load
    console.log(JSON.stringify({ loaded, kept: node.widgets[0].value }));
    """
    )
    assert out == {"loaded": "a", "kept": "a"}


def test_model_inputs_come_from_the_remote_routes(run_js):
    out = run_js("""
    import { allowsNone, modelInputsOf } from "./common.js";
    const spec = (route) => [["x"], { remote: { route } }];
    const nodeData = { name: "PPInfraImg2Img", input: {
      required: { model_name: spec("/ppinfra/models/checkpoint"), prompt: ["STRING", {}],
                  sd_vae: spec("/ppinfra/models/vae?with_none=1"), sampler_name: [["a", "b"], {}] },
      optional: { other: spec("/somewhere/models/lora") } } };
    console.log(JSON.stringify({
      inputs: modelInputsOf(nodeData),
      foreign: modelInputsOf({ ...nodeData, name: "KSampler" }),
      none: [allowsNone(nodeData, "sd_vae"), allowsNone(nodeData, "model_name")],
    }));
    """)
    assert out["inputs"] == {"model_name": "checkpoint", "sd_vae": "vae"}
    assert out["foreign"] == {}
    assert out["none"] == [True, False]


def test_strings_follow_the_editor_language_with_english_as_fallback(run_js):
    out = run_js("""
    import { loadStrings, t } from "./common.js";
    globalThis.__i18n = { en: { ppinfra: { a: { b: "Hello {name}", only: "English only" } } },
                          zh: { ppinfra: { a: { b: "你好 {name}" } } } };
    globalThis.__locale = "zh";
    await loadStrings();
    const zh = [t("a.b", { name: "X" }), t("a.only"), t("a.missing")];
    globalThis.__locale = "en";
    await loadStrings();
    console.log(JSON.stringify({ zh, en: t("a.b", { name: "Y" }) }));
    """)
    assert out["zh"] == ["你好 X", "English only", "a.missing"]
    assert out["en"] == "Hello Y"


def test_the_key_hint_goes_on_every_node_that_calls_the_api(run_js):
    # The pack's own node definitions, as /object_info gives them to the editor.
    pack = load_pack().NODE_CLASS_MAPPINGS
    defs = [
        {"name": name, "category": cls.CATEGORY, "output": list(cls.RETURN_TYPES)}
        for name, cls in pack.items()
    ]
    out = run_js(
        """
    globalThis.document = { getElementById: () => null, head: { append() {} }, createElement: () => ({}) };
    const { callsApi } = await import("./key_hint.js");
    const defs = %s;
    console.log(JSON.stringify(defs.filter(callsApi).map((d) => d.name).sort()));
    """
        % json.dumps(defs)
    )
    assert out == sorted(["PPInfraImg2Img", "PPInfraTxt2Img", "PPInfraInpaint", "PPInfraUpscale"])
