// Points a user without a key to the settings: a "Set the API key" button on the
// nodes that call PPInfra while no key is configured, and a menu entry on every
// node of the pack that opens the account panel.
import { app } from "../../scripts/app.js";
import { account, fetchAccount, isPackNode, loadStrings, removeWidget, t } from "./common.js";
import { openAccountDialog } from "./settings.js";

const HINT = "ppinfra_key_hint";

function graphNodes() {
  const graph = app.graph;
  return graph?._nodes ?? graph?.nodes ?? [];
}

/**
 * Whether one of the pack's node definitions calls the API (and so needs the key):
 * the nodes that make images (Img2Img, Txt2Img, Inpaint, Upscale) have an IMAGE
 * output; the side nodes (LoRA Stack, ControlNet Unit, ...) only feed them. A rule,
 * not a list, so a new image node gets the hint without an edit here.
 */
export function callsApi(nodeData) {
  return isPackNode(nodeData) && String(nodeData.category ?? "").startsWith("PPInfra")
    && (nodeData.output ?? []).includes("IMAGE");
}

function needsKey(nodeType) {
  return nodeType?.__ppinfraCallsApi === true;
}

/** Show or hide the hint widget; it is never saved (serialize: false, last in the list). */
function updateHint(node) {
  if (!needsKey(node.constructor)) return;
  const missing = account.summary ? !account.summary.configured : false;
  const widget = node.widgets?.find((w) => w.name === HINT);
  if (missing && !widget) {
    const w = node.addWidget("button", HINT, null, () => openAccountDialog(), { serialize: false });
    w.label = `⚠ ${t("hint.setKey")}`;
    w.serialize = false;
  } else if (!missing && widget) {
    removeWidget(node, widget);
    node.setSize?.(node.computeSize());
  }
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "ppinfra.keyHint",
  async setup() {
    await loadStrings();
    account.addEventListener("change", () => graphNodes().forEach(updateHint));
    if (!account.summary) await fetchAccount(false);
    graphNodes().forEach(updateHint);
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!isPackNode(nodeData)) return;
    nodeType.__ppinfraCallsApi = callsApi(nodeData);

    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = created?.apply(this, arguments);
      updateHint(this);
      return r;
    };
    const menu = nodeType.prototype.getExtraMenuOptions;
    nodeType.prototype.getExtraMenuOptions = function (canvas, options) {
      const r = menu?.apply(this, arguments);
      options.push(null, { content: t("hint.menu"), callback: () => openAccountDialog() });
      return r;
    };
  },
});
