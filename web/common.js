// Small helpers shared by the pack's editor extensions: DOM building, text from
// the locale files, calls to the pack's routes, one scoped stylesheet, a modal.
// Plain ES module, no build step: ComfyUI serves web/ as it is.
import { api } from "../../scripts/api.js";
import { app } from "../../scripts/app.js";

export const ROOT_CLASS = "ppinfra-ui";

// ------------------------------------------------------------------ DOM

/** `el("div", {class: "x", onclick: fn}, "text", child)`; null/false children are skipped. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      node.className = value;
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (name in node && typeof value !== "string") {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ------------------------------------------------------------------ text

// Strings live in locales/<lang>/main.json under "ppinfra". ComfyUI's /i18n
// route serves every pack's locale files (the editor loads them the same way),
// so there is one copy of each string and no English hard-coded here.
let strings = {};
let fallback = {};
let loaded = { lang: null, promise: null };

export function locale() {
  const get = app.extensionManager?.setting?.get ?? ((id) => app.ui?.settings?.getSettingValue?.(id));
  try {
    return String(get("Comfy.Locale") || navigator.language || "en");
  } catch {
    return "en";
  }
}

/** Load the strings for the editor's current language (once per language). */
export function loadStrings() {
  const lang = locale();
  if (loaded.promise && loaded.lang === lang) return loaded.promise;
  loaded = { lang, promise: null };
  loaded.promise = (async () => {
    let all = {};
    try {
      all = api.getCustomNodesI18n ? await api.getCustomNodesI18n() : await (await api.fetchApi("/i18n")).json();
    } catch (err) {
      console.warn("PPInfra: could not load the locale files", err);
    }
    fallback = all?.en?.ppinfra ?? {};
    strings = all?.[lang]?.ppinfra ?? all?.[lang.split("-")[0]]?.ppinfra ?? fallback;
  })();
  return loaded.promise;
}

/** The string for a dotted key, `{name}` placeholders filled from `vars`; the key itself when missing. */
export function t(key, vars = {}) {
  const pick = (table) => key.split(".").reduce((o, k) => (o && typeof o === "object" ? o[k] : undefined), table);
  let text = pick(strings);
  if (typeof text !== "string") text = pick(fallback);
  if (typeof text !== "string") return key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

// ------------------------------------------------------------------ server

/**
 * JSON call to one of the pack's routes through `api.fetchApi` (keeps a
 * sub-path deployment and ComfyUI's own headers working). Never throws:
 * `{ok, status, data}`; `data.error` carries the server's message.
 */
export async function request(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: {}, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    const res = await api.fetchApi(path, init);
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = { error: `HTTP ${res.status}` };
    }
    return { ok: res.ok && !(data && data.ok === false), status: res.status, data: data ?? {} };
  } catch (err) {
    if (err?.name === "AbortError") throw err;
    return { ok: false, status: 0, data: { error: String(err?.message || err) } };
  }
}

// The last account summary seen, shared by the settings panel and the nodes'
// key hint. Holds no key: the routes never return one.
export const account = new EventTarget();
account.summary = null;

export async function fetchAccount(refresh = false) {
  const res = await request(`/ppinfra/settings${refresh ? "?refresh=1" : ""}`);
  if (res.ok) setAccount(res.data);
  return res;
}

export function setAccount(summary) {
  account.summary = summary;
  account.dispatchEvent(new CustomEvent("change", { detail: summary }));
}

export function formatBalance(balance) {
  if (!balance) return "";
  const usd = Number(balance.usd ?? (balance.credit_balance ?? 0) / 10000);
  return `$${usd.toFixed(2)}`;
}

// ------------------------------------------------------------------ styles

const CSS = `
.${ROOT_CLASS} { font: 13px/1.4 system-ui, sans-serif; color: var(--input-text, #ddd); }
.${ROOT_CLASS} * { box-sizing: border-box; }
.${ROOT_CLASS} button { font: inherit; cursor: pointer; padding: 4px 10px; border-radius: 6px;
  border: 1px solid var(--border-color, #555); background: var(--comfy-input-bg, #222); color: inherit; }
.${ROOT_CLASS} button:hover:not(:disabled) { border-color: var(--p-primary-color, #4a8ff7); }
.${ROOT_CLASS} button:disabled { opacity: .5; cursor: default; }
.${ROOT_CLASS} button.primary { background: var(--p-primary-color, #2f6fd6); border-color: transparent; color: #fff; }
.${ROOT_CLASS} button.danger { color: #f28b82; }
.${ROOT_CLASS} input, .${ROOT_CLASS} select { font: inherit; padding: 4px 8px; border-radius: 6px; color: inherit;
  border: 1px solid var(--border-color, #555); background: var(--comfy-input-bg, #222); min-width: 0; }
.${ROOT_CLASS} .row { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; margin: 4px 0; }
.${ROOT_CLASS} .grow { flex: 1 1 auto; }
.${ROOT_CLASS} .muted { opacity: .7; }
.${ROOT_CLASS} .ok { color: #81c995; }
.${ROOT_CLASS} .warn { color: #fdd663; }
.${ROOT_CLASS} .err { color: #f28b82; }
.${ROOT_CLASS} .msg { min-height: 1.4em; white-space: pre-wrap; }
.${ROOT_CLASS}.account { width: 440px; max-width: 100%; text-align: left; }
.${ROOT_CLASS}.account .status { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin-bottom: 8px; }
.${ROOT_CLASS}.account .status dt { opacity: .7; }
.${ROOT_CLASS}.account .status dd { margin: 0; }
.${ROOT_CLASS}.account .balance { font-weight: 600; }
.${ROOT_CLASS}.account input[type=password] { flex: 1 1 200px; }
.${ROOT_CLASS}.modal-back { position: fixed; inset: 0; z-index: 10000; background: rgba(0,0,0,.55);
  display: flex; align-items: center; justify-content: center; }
.${ROOT_CLASS} .modal { background: var(--comfy-menu-bg, #1e1e1e); border: 1px solid var(--border-color, #444);
  border-radius: 10px; padding: 14px 16px; max-width: 94vw; max-height: 90vh; display: flex; flex-direction: column;
  box-shadow: 0 10px 40px rgba(0,0,0,.5); }
.${ROOT_CLASS} .modal-head { display: flex; align-items: center; gap: 8px; margin-bottom: 10px; }
.${ROOT_CLASS} .modal-head h3 { margin: 0; font-size: 15px; flex: 1; }
.${ROOT_CLASS} .browser { width: 920px; height: 80vh; display: flex; flex-direction: column; }
.${ROOT_CLASS} .browser .filters input[type=search] { flex: 1 1 260px; }
.${ROOT_CLASS} .browser .grid { flex: 1; overflow-y: auto; display: grid; gap: 10px; padding: 4px 2px;
  grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); grid-auto-rows: max-content; align-content: start; }
.${ROOT_CLASS} .card { border: 1px solid var(--border-color, #444); border-radius: 8px; overflow: hidden;
  cursor: pointer; background: var(--comfy-input-bg, #222); display: flex; flex-direction: column; }
.${ROOT_CLASS} .card:hover, .${ROOT_CLASS} .card:focus { outline: 2px solid var(--p-primary-color, #4a8ff7); }
.${ROOT_CLASS} .card.current { outline: 2px solid #81c995; }
.${ROOT_CLASS} .card .cover { aspect-ratio: 1; background: hsl(var(--hue, 210) 30% 28%); display: flex;
  align-items: center; justify-content: center; font-size: 40px; font-weight: 700; color: hsl(var(--hue, 210) 45% 70%);
  overflow: hidden; }
.${ROOT_CLASS} .card .cover img { width: 100%; height: 100%; object-fit: cover; }
.${ROOT_CLASS} .card .body { padding: 6px 8px; display: flex; flex-direction: column; gap: 2px; }
.${ROOT_CLASS} .card .title { font-weight: 600; overflow-wrap: anywhere; }
.${ROOT_CLASS} .card .sd { font-size: 11px; opacity: .7; overflow-wrap: anywhere; }
.${ROOT_CLASS} .tags { display: flex; flex-wrap: wrap; gap: 3px; }
.${ROOT_CLASS} .tag { font-size: 10px; padding: 0 5px; border-radius: 8px; background: rgba(128,128,128,.25); }
.${ROOT_CLASS} .tag.family { background: rgba(74,143,247,.3); }
.${ROOT_CLASS} .foot { display: flex; align-items: center; gap: 8px; margin-top: 8px; }
`;

export function ensureStyle() {
  if (document.getElementById("ppinfra-style")) return;
  document.head.append(el("style", { id: "ppinfra-style" }, CSS));
}

// ------------------------------------------------------------------ modal

/** Show `content` in a modal under the scoped class; returns a function that closes it. */
export function openModal(title, content, { onClose } = {}) {
  ensureStyle();
  let back;
  const close = () => {
    back.remove();
    document.removeEventListener("keydown", onKey, true);
    onClose?.();
  };
  const onKey = (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      close();
    }
  };
  const closeButton = el("button", { class: "close", title: t("common.close"), onclick: close }, "✕");
  back = el("div", { class: `${ROOT_CLASS} modal-back`, onmousedown: (e) => e.target === back && close() },
    el("div", { class: "modal", role: "dialog", "aria-label": title },
      el("div", { class: "modal-head" }, el("h3", {}, title), closeButton),
      content));
  document.addEventListener("keydown", onKey, true);
  document.body.append(back);
  return close;
}

// ------------------------------------------------------------------ the pack's nodes

export const MODEL_TYPES = ["checkpoint", "lora", "vae", "controlnet", "textualinversion"];
const ROUTE_TYPE = /\/ppinfra\/models\/(checkpoint|lora|vae|controlnet|textualinversion)(?:[/?]|$)/;

export function isPackNode(nodeData) {
  return typeof nodeData?.name === "string" && nodeData.name.startsWith("PPInfra");
}

/**
 * `{inputName: modelType}` for the model inputs of one of the pack's node
 * definitions, read from their remote-combo route (the server's one source of
 * truth), so a renamed or added model input needs no change here.
 */
export function modelInputsOf(nodeData) {
  const out = {};
  if (!isPackNode(nodeData)) return out;
  for (const group of ["required", "optional"]) {
    for (const [name, spec] of Object.entries(nodeData.input?.[group] ?? {})) {
      const route = Array.isArray(spec) ? spec[1]?.remote?.route : undefined;
      const match = typeof route === "string" ? ROUTE_TYPE.exec(route) : null;
      if (match) out[name] = match[1];
    }
  }
  return out;
}

/** Whether a model input's list offers "None" (an empty LoRA slot, the server's own VAE). */
export function allowsNone(nodeData, inputName) {
  for (const group of ["required", "optional"]) {
    const spec = nodeData.input?.[group]?.[inputName];
    if (Array.isArray(spec)) return /[?&]with_none=1/.test(spec[1]?.remote?.route ?? "");
  }
  return false;
}

/** Remove a widget (older frontends have no `removeWidget`). */
export function removeWidget(node, widget) {
  if (node.removeWidget) node.removeWidget(widget);
  else node.widgets?.splice(node.widgets.indexOf(widget), 1);
}
