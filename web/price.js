// Cost before you click: an estimated price per run (or per input image) shown
// as a one-line, read-only DOM widget at the bottom of each PPInfra node that
// calls the API, refreshed when a widget changes. The figure comes from
// GET /ppinfra/price (ppinfra/price.py): a third-party copy of the provider's
// price formula, never a provider's statement, so the text always says
// "estimate", its tooltip and the node's menu name the source.
//
// Why a DOM widget: it is the one surface that shows on frontend 1.27 and 1.58,
// classic canvas and Nodes 2.0 alike. A canvas hook (onDrawForeground) does not
// run for Vue nodes and, above the title, collides with 1.58's node-source badge.
// The widget is never saved (serialize: false, and last in the list), so saved
// workflows' widgets_values, which load by position, stay exactly as they were.
import { app } from "../../scripts/app.js";
import { ROOT_CLASS, el, loadStrings, openModal, request, t } from "./common.js";
import { callsApi } from "./key_hint.js";

const INPUTS = ["width", "height", "steps", "image_num", "scale_factor", "hires_fix", "hires_target_width",
  "hires_target_height"];
const WIDGET = "ppinfra_price";
const LINE_PX = 20;
const DELAY_MS = 300;
const STYLE = "font: 11px/20px sans-serif; color: #9aa0a6; text-align: right; padding: 0 8px; height: 20px;" +
  " overflow: hidden; white-space: nowrap; text-overflow: ellipsis; pointer-events: auto; cursor: help;";

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

/** The node's price line (created once, last among its widgets, never serialised). */
function priceWidget(node) {
  const found = node.widgets?.find((w) => w.name === WIDGET);
  if (found) return found;
  const line = el("div", { class: `${ROOT_CLASS} price`, style: STYLE, "data-ppinfra": "price",
    title: t("price.source"), onclick: () => explain(node) });
  const widget = node.addDOMWidget(WIDGET, "ppinfra_price", line, {
    serialize: false, hideOnZoom: true, margin: 0, getValue: () => "", setValue: () => {},
    getMinHeight: () => LINE_PX, getMaxHeight: () => LINE_PX, getHeight: () => LINE_PX,
  });
  widget.serialize = false; // not in widgets_values
  widget.options.serialize = false; // not in the API prompt
  return widget;
}

/** Grow the node so the line is not cut off (a loaded workflow's size was saved without it). */
function fit(node) {
  const need = node.computeSize?.();
  if (need && node.size && need[1] > node.size[1]) node.setSize?.([node.size[0], need[1]]);
}

function show(node) {
  const widget = priceWidget(node);
  const text = node.__ppinfraPrice?.text ?? "";
  widget.element.textContent = text;
  widget.element.title = node.__ppinfraPrice?.source ?? t("price.source");
  node.setDirtyCanvas?.(true, false);
}

async function refresh(node) {
  const q = new URLSearchParams({ node: node.comfyClass ?? node.type });
  for (const w of node.widgets ?? []) {
    if (INPUTS.includes(w.name) && w.value !== undefined && w.value !== null) q.set(w.name, String(w.value));
  }
  const res = await request(`/ppinfra/price?${q}`);
  node.__ppinfraPrice = res.ok ? { text: priceLabel(res.data), source: res.data.source } : null;
  show(node);
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
    if (!callsApi(nodeData)) return; // the nodes that call the API: the key hint's rule

    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = created?.apply(this, arguments);
      priceWidget(this);
      fit(this);
      watchWidgets(this);
      schedule(this);
      return r;
    };
    // A loaded workflow sets the widget values (and its saved size) after creation: ask again with them.
    const configured = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const r = configured?.apply(this, arguments);
      fit(this);
      schedule(this);
      return r;
    };
    const changed = nodeType.prototype.onWidgetChanged;
    nodeType.prototype.onWidgetChanged = function (name) {
      const r = changed?.apply(this, arguments);
      if (INPUTS.includes(name)) schedule(this);
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
