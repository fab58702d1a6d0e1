// Cost before you click: an estimated price per run (or per input image) drawn
// in the title bar of each PPInfra node that calls the API, refreshed when a
// widget changes. The figure comes from GET /ppinfra/price (ppinfra/price.py):
// a third-party copy of the provider's price formula, never a provider's
// statement, so the text always says "estimate" and the node's menu names the source.
import { app } from "../../scripts/app.js";
import { el, isPackNode, loadStrings, openModal, request, t } from "./common.js";

const PRICED = new Set(["PPInfraImg2Img", "PPInfraTxt2Img", "PPInfraInpaint", "PPInfraUpscale"]);
const INPUTS = ["width", "height", "steps", "image_num", "scale_factor", "hires_fix", "hires_target_width",
  "hires_target_height"];
const DELAY_MS = 300;

function money(usd) {
  return usd >= 0.01 ? usd.toFixed(3) : usd.toFixed(4);
}

/** The line shown on the node, from the route's answer (null: nothing to show). */
export function priceLabel(data) {
  if (!data || typeof data.usd !== "number") return null;
  const per = data.per === "run" ? t("price.perRun") : t("price.perImage");
  const size = data.assumed_input ? ` ${t("price.assumed", { size: `${data.width}×${data.height}` })}` : "";
  return t("price.label", { usd: money(data.usd), per }) + size;
}

async function refresh(node) {
  const q = new URLSearchParams({ node: node.comfyClass ?? node.type });
  for (const w of node.widgets ?? []) {
    if (INPUTS.includes(w.name) && w.value !== undefined && w.value !== null) q.set(w.name, String(w.value));
  }
  const res = await request(`/ppinfra/price?${q}`);
  node.__ppinfraPrice = res.ok ? { text: priceLabel(res.data), source: res.data.source } : null;
  node.setDirtyCanvas?.(true, false);
}

function schedule(node) {
  clearTimeout(node.__ppinfraPriceTimer);
  node.__ppinfraPriceTimer = setTimeout(() => refresh(node), DELAY_MS);
}

function watchWidgets(node) {
  for (const w of node.widgets ?? []) {
    if (!INPUTS.includes(w.name) || w.__ppinfraPriceWatched) continue;
    const callback = w.callback;
    w.callback = function () {
      const r = callback?.apply(this, arguments);
      schedule(node);
      return r;
    };
    w.__ppinfraPriceWatched = true;
  }
}

function explain(node) {
  openModal(t("price.title"), el("p", {}, node.__ppinfraPrice?.source ?? t("price.source")));
}

app.registerExtension({
  name: "ppinfra.price",
  async init() {
    await loadStrings();
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!isPackNode(nodeData) || !PRICED.has(nodeData.name)) return;

    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = created?.apply(this, arguments);
      watchWidgets(this);
      schedule(this);
      return r;
    };
    // A loaded workflow sets the widget values after creation: ask again with them.
    const configured = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const r = configured?.apply(this, arguments);
      schedule(this);
      return r;
    };
    const changed = nodeType.prototype.onWidgetChanged;
    nodeType.prototype.onWidgetChanged = function (name) {
      const r = changed?.apply(this, arguments);
      if (INPUTS.includes(name)) schedule(this);
      return r;
    };
    const draw = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx) {
      const r = draw?.apply(this, arguments);
      const text = this.__ppinfraPrice?.text;
      if (text && !this.flags?.collapsed) {
        const title = globalThis.LiteGraph?.NODE_TITLE_HEIGHT ?? 30;
        ctx.save();
        ctx.font = "11px sans-serif";
        ctx.fillStyle = "#9aa0a6";
        ctx.textAlign = "right";
        ctx.fillText(text, this.size[0] - 8, -title - 4);
        ctx.restore();
      }
      return r;
    };
    const menu = nodeType.prototype.getExtraMenuOptions;
    nodeType.prototype.getExtraMenuOptions = function (canvas, options) {
      const r = menu?.apply(this, arguments);
      options.push(null, { content: t("price.menu"), callback: () => explain(this) });
      return r;
    };
  },
});
