// The model browser: a button under each model input of the pack's nodes opens
// a searchable, filterable view of the PPInfra catalog; a click sets the input.
//
// Searching goes through GET /ppinfra/models/search: the server searches its
// disk cache (or asks the provider with filter.query), so the key never reaches
// the browser and 20,000 LoRAs stay on the server, 60 at a time.
import { app } from "../../scripts/app.js";
import { allowsNone, el, ensureStyle, loadStrings, modelInputsOf, openModal, removeWidget, request, t } from "./common.js";
import { setValue } from "./saved_value.js";

const PAGE = 60;
const SEARCH_DELAY_MS = 200;
const FAMILY_LABEL = { sd15: "SD 1.5", sdxl: "SDXL" };
// Widgets the frontend adds under every remote combo (1.27.x: an auto-refresh
// toggle and a "refresh" button). They are saved in widgets_values *between*
// the inputs, so a workflow saved without them (every example, every older
// frontend) would load with its values shifted by position. They are replaced
// by one refresh button at the end of the node, which is never saved.
const isRemoteExtra = (w) =>
  (w.type === "toggle" && w.name === "Auto-refresh after generation") || (w.type === "button" && w.name === "refresh");

// ------------------------------------------------------------------ graph helpers

function linkById(graph, id) {
  return graph.getLink?.(id) ?? graph.links?.get?.(id) ?? graph.links?.[id];
}

/** The checkpoint this node feeds (its own, or the first one found downstream). */
export function checkpointFor(node) {
  const seen = new Set();
  const queue = [node];
  while (queue.length) {
    const n = queue.shift();
    if (!n || seen.has(n.id)) continue;
    seen.add(n.id);
    const models = n.constructor?.__ppinfraModels ?? {};
    const name = Object.keys(models).find((k) => models[k] === "checkpoint");
    const widget = name && n.widgets?.find((w) => w.name === name);
    if (widget && typeof widget.value === "string") return widget.value;
    for (const out of n.outputs ?? []) {
      for (const id of out.links ?? []) {
        const link = linkById(n.graph ?? app.graph, id);
        if (link) queue.push((n.graph ?? app.graph).getNodeById(link.target_id));
      }
    }
  }
  return null;
}

async function familyOf(checkpoint) {
  if (!checkpoint) return null;
  const q = new URLSearchParams({ type: "checkpoint", q: checkpoint, limit: "20" });
  const res = await request(`/ppinfra/models/search?${q}`);
  const hit = res.ok ? res.data.items?.find((m) => m.name === checkpoint) : null;
  return hit?.family ?? null;
}

// ------------------------------------------------------------------ the dialog

function cover(item) {
  // The initial stands in until the cover loads, and stays when there is none or it fails.
  const label = (item.display_name || item.name || "?").trim();
  const box = el("div", { class: "cover" }, label.charAt(0).toUpperCase());
  let hash = 0;
  for (const ch of label) hash = (hash * 31 + ch.charCodeAt(0)) % 360;
  box.style.setProperty("--hue", String(hash));
  if (item.cover_url) {
    const img = el("img", { loading: "lazy", alt: "", referrerpolicy: "no-referrer" });
    img.addEventListener("load", () => box.replaceChildren(img), { once: true });
    img.src = item.cover_url;
  }
  return box;
}

function card(item, current, pick) {
  const tags = (item.tags ?? []).slice(0, 4).map((tag) => el("span", { class: "tag" }, tag));
  if (item.family) tags.unshift(el("span", { class: "tag family" }, FAMILY_LABEL[item.family] ?? item.family));
  else if (item.base_model) tags.unshift(el("span", { class: "tag family" }, item.base_model));
  const node = el("div", {
    class: `card${item.name === current ? " current" : ""}`, tabindex: "0", role: "button",
    title: item.name, dataset: { name: item.name },
    onclick: () => pick(item.name),
    onkeydown: (e) => e.key === "Enter" && pick(item.name),
  },
  cover(item),
  el("div", { class: "body" },
    el("div", { class: "title" }, item.display_name || item.name),
    el("div", { class: "sd" }, item.sd_name && item.sd_name !== item.name ? `${item.name} · ${item.sd_name}` : item.name),
    el("div", { class: "tags" }, tags)));
  return node;
}

/** Open the browser for one model input of `node`. */
export async function openBrowser(node, inputName) {
  ensureStyle();
  await loadStrings();
  const nodeData = node.constructor?.nodeData ?? node.constructor?.__ppinfraNodeData;
  const models = node.constructor?.__ppinfraModels ?? {};
  let target = inputName;
  let type = models[target];
  const checkpoint = checkpointFor(node);
  const checkpointFamily = await familyOf(checkpoint); // presets the family filter for every other type

  const search = el("input", { type: "search", class: "q", placeholder: t("browser.searchPlaceholder"),
    "aria-label": t("browser.search"), autocomplete: "off", spellcheck: "false" });
  const targetSelect = el("select", { class: "target", "aria-label": t("browser.type") },
    Object.entries(models).map(([name, mt]) =>
      el("option", { value: name, selected: name === target }, `${name} — ${t(`types.${mt}`)}`)));
  const familySelect = el("select", { class: "family", "aria-label": t("browser.family") },
    el("option", { value: "" }, t("browser.allFamilies")),
    el("option", { value: "sd15" }, "SD 1.5"),
    el("option", { value: "sdxl" }, "SDXL"));
  familySelect.value = type === "checkpoint" ? "" : checkpointFamily ?? "";
  const refreshButton = el("button", { class: "refresh", title: t("browser.refreshTitle") }, `↻ ${t("browser.refresh")}`);
  const noneButton = el("button", { class: "none" }, t("browser.none"));
  const hint = el("div", { class: "row muted hint" });
  const grid = el("div", { class: "grid", role: "list" });
  const count = el("span", { class: "count muted grow" });
  const more = el("button", { class: "more" }, t("browser.more"));
  const content = el("div", { class: "browser" },
    el("div", { class: "row filters" }, search, targetSelect, familySelect, refreshButton),
    hint, grid,
    el("div", { class: "foot" }, count, noneButton, more));
  const close = openModal(t("browser.title", { node: node.title ?? node.type }), content);

  let seq = 0;
  let offset = 0;
  let timer = null;

  const widget = () => node.widgets?.find((w) => w.name === target);
  function pick(name) {
    const w = widget();
    if (!w) return;
    setValue(node, w, name);
    close();
  }
  function describe() {
    const fam = FAMILY_LABEL[familySelect.value];
    hint.replaceChildren(checkpoint && type !== "checkpoint"
      ? t("browser.matching", { checkpoint, family: FAMILY_LABEL[checkpointFamily] ?? t("browser.unknownFamily") })
      : "", fam ? ` ${t("browser.showingFamily", { family: fam })}` : "");
    noneButton.style.display = allowsNone(nodeData ?? {}, target) ? "" : "none";
  }

  async function load(append = false) {
    const mine = ++seq;
    if (!append) offset = 0;
    const q = new URLSearchParams({ type, q: search.value.trim(), limit: String(PAGE), offset: String(offset) });
    if (familySelect.value) q.set("family", familySelect.value);
    count.textContent = t("browser.searching");
    more.disabled = true;
    const res = await request(`/ppinfra/models/search?${q}`);
    if (mine !== seq) return; // a newer search superseded this one
    if (!res.ok) {
      count.textContent = res.data.error || t("browser.failed");
      count.className = "count err grow";
      return;
    }
    count.className = "count muted grow";
    const items = res.data.items ?? [];
    const current = widget()?.value;
    if (!append) grid.replaceChildren();
    grid.append(...items.map((item) => card(item, current, pick)));
    offset += items.length;
    const total = res.data.total ?? offset;
    count.textContent = total ? t("browser.count", { shown: offset, total }) : t("browser.empty");
    if (res.data.partial) count.textContent += ` · ${t("browser.partial")}`;
    more.disabled = offset >= total || items.length === 0;
    more.style.display = offset >= total ? "none" : "";
  }

  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => load(false), SEARCH_DELAY_MS);
  });
  search.addEventListener("keydown", (e) => {
    e.stopPropagation(); // typing here must not trigger the editor's shortcuts
    if (e.key === "Enter") grid.querySelector(".card")?.click();
  });
  familySelect.onchange = () => { describe(); load(false); };
  targetSelect.onchange = () => {
    target = targetSelect.value;
    type = models[target];
    familySelect.value = type === "checkpoint" ? "" : checkpointFamily ?? "";
    describe();
    load(false);
  };
  more.onclick = () => load(true);
  noneButton.onclick = () => pick("None");
  refreshButton.onclick = async () => {
    refreshButton.disabled = true;
    count.textContent = t("browser.refreshing");
    const res = await request(`/ppinfra/models/${type}?refresh=1`);
    refreshButton.disabled = false;
    if (!res.ok) count.textContent = res.data.error || t("browser.failed");
    for (const w of node.widgets ?? []) if (models[w.name] === type) w.refresh?.();
    await load(false);
  };

  describe();
  await load(false);
  search.focus();
}

// ------------------------------------------------------------------ the nodes

/**
 * One click: the server asks PPInfra for each model type of the node (bounded
 * by its own deadline), then the node's lists fetch again from the server.
 */
async function refreshLists(node, button) {
  const models = node.constructor.__ppinfraModels ?? {};
  const label = button?.label;
  if (button) button.label = t("browser.refreshing");
  node.setDirtyCanvas?.(true, true);
  try {
    await Promise.all([...new Set(Object.values(models))].map((type) => request(`/ppinfra/models/${type}?refresh=1`)));
  } finally {
    if (button) button.label = label;
    for (const w of node.widgets ?? []) if (models[w.name]) w.refresh?.();
    node.setDirtyCanvas?.(true, true);
  }
}

function addButtons(node) {
  const models = node.constructor.__ppinfraModels ?? {};
  for (const w of (node.widgets ?? []).filter(isRemoteExtra)) removeWidget(node, w);
  const add = (name, label, callback) => {
    const w = node.addWidget("button", name, null, () => callback(w), { serialize: false });
    w.label = label;
    w.serialize = false; // never in widgets_values: saved workflows load the same with or without this pack's JS
  };
  for (const input of Object.keys(models)) {
    add(`ppinfra_browse_${input}`, t("browser.button", { input }), () => openBrowser(node, input));
  }
  if (Object.values(models).length) add("ppinfra_refresh", `↻ ${t("browser.refreshLists")}`, (w) => refreshLists(node, w));
}

app.registerExtension({
  name: "ppinfra.modelBrowser",
  async init() {
    await loadStrings();
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const models = modelInputsOf(nodeData);
    if (!Object.keys(models).length) return;
    nodeType.__ppinfraModels = models;
    nodeType.__ppinfraNodeData = nodeData;

    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = created?.apply(this, arguments);
      addButtons(this);
      return r;
    };

    const menu = nodeType.prototype.getExtraMenuOptions;
    nodeType.prototype.getExtraMenuOptions = function (canvas, options) {
      const r = menu?.apply(this, arguments);
      options.push(null, ...Object.keys(models).map((input) => ({
        content: t("browser.menu", { input }),
        callback: () => openBrowser(this, input),
      })));
      return r;
    };
  },
});
