// The PPInfra section of ComfyUI's settings dialog: paste a key, test it, save
// it, remove it, pick the host, see the balance and whether the environment
// variable wins.
//
// The key only ever travels in the body of POST /ppinfra/settings/{key,test};
// the server checks and stores it where /userdata cannot serve it. It is not a
// ComfyUI setting value (those land in comfy.settings.json): the entry below
// only *renders* this panel and never calls the setter. The input is cleared
// as soon as the request is sent.
import { app } from "../../scripts/app.js";
import {
  ROOT_CLASS, account, el, ensureStyle, fetchAccount, formatBalance, loadStrings, openModal, request, setAccount, t,
} from "./common.js";

// The same pages as the server's messages (ppinfra/account.py KEY_PAGES,
// ppinfra/api_errors.py TOP_UP_URL); tests/test_web_assets.py keeps them equal.
const HOST_LABELS = { ppinfra: "PPInfra", ppio: "PPIO", novita: "Novita AI", custom: "custom" };
const TOP_UP = { ppinfra: "https://ppinfra.com/billing", ppio: "https://ppio.com/billing", novita: "https://novita.ai/billing" };
const KEY_PAGE = {
  ppinfra: "https://ppinfra.com/settings/key-management",
  ppio: "https://ppio.com/settings/key-management",
  novita: "https://novita.ai/settings/key-management",
};

/**
 * The account panel (in the settings dialog and in the dialog the nodes open).
 * Returned at once (the settings dialog wants an element synchronously) and
 * filled once the strings of the editor's current language are loaded.
 */
export function renderAccountPanel() {
  ensureStyle();
  const holder = el("div", { class: `${ROOT_CLASS} account-holder` });
  loadStrings().then(() => holder.replaceChildren(buildPanel()));
  return holder;
}

function buildPanel() {
  const status = el("dl", { class: "status" });
  const message = el("div", { class: "msg", role: "status", "aria-live": "polite" });
  const keyInput = el("input", {
    type: "password", class: "key", autocomplete: "off", spellcheck: "false",
    placeholder: t("settings.keyPlaceholder"), "aria-label": t("settings.keyLabel"),
    // Password managers and autofill would keep a copy in the browser profile.
    "data-lpignore": "true", "data-1p-ignore": "true", "data-form-type": "other",
  });
  const hostSelect = el("select", { class: "host", "aria-label": t("settings.host") });
  const buttons = {
    test: el("button", { class: "test" }, t("settings.test")),
    save: el("button", { class: "save primary" }, t("settings.save")),
    remove: el("button", { class: "remove danger" }, t("settings.remove")),
    refresh: el("button", { class: "refresh", title: t("settings.refreshTitle") }, t("settings.refresh")),
  };
  const links = el("div", { class: "row muted links" });
  const panel = el("div", { class: `${ROOT_CLASS} account` },
    status,
    el("div", { class: "row" }, el("label", {}, t("settings.host")), hostSelect, buttons.refresh),
    el("div", { class: "row" }, keyInput, buttons.test, buttons.save),
    el("div", { class: "row" }, buttons.remove),
    message,
    links);

  const say = (text, kind = "") => {
    message.className = `msg ${kind}`;
    message.textContent = text;
  };
  const busy = (on) => Object.values(buttons).forEach((b) => (b.disabled = on));

  function render(s) {
    status.replaceChildren();
    const row = (label, ...value) => status.append(el("dt", {}, label), el("dd", {}, ...value));
    if (!s) {
      row(t("settings.status"), el("span", { class: "err" }, t("settings.unavailable")));
      return;
    }
    if (s.configured) {
      const where = s.source === "env" ? t("settings.sourceEnv") : t("settings.sourceFile");
      row(t("settings.status"), el("span", { class: "ok" }, t("settings.configured", { last4: s.last4 ?? "????" })),
        " ", el("span", { class: "muted" }, `(${where})`));
    } else {
      row(t("settings.status"), el("span", { class: "warn" }, t("settings.notConfigured")));
    }
    if (s.configured) {
      const balance = s.balance
        ? el("span", { class: "balance" }, formatBalance(s.balance))
        : el("span", { class: "err" }, s.balance_error || t("settings.balanceUnknown"));
      row(t("settings.balance"), balance);
    }
    row(t("settings.hostNow"), `${HOST_LABELS[s.host] ?? s.host} · ${s.base_url ?? ""}`);
    if (s.env_overrides) {
      row("", el("span", { class: "warn env" }, t("settings.envOverrides")));
    } else if (s.base_url_source === "env") {
      row("", el("span", { class: "warn env" }, t("settings.hostFromEnv")));
    }
    if (s.storage) row(t("settings.storage"), el("code", { class: "muted" }, s.storage));

    const hosts = s.hosts ?? {};
    hostSelect.replaceChildren(...Object.keys(hosts).map((h) =>
      el("option", { value: h, selected: h === s.host }, `${HOST_LABELS[h] ?? h} (${hosts[h]})`)));
    if (!(s.host in hosts)) hostSelect.prepend(el("option", { value: "", selected: true }, HOST_LABELS.custom));
    buttons.remove.disabled = !(s.configured && s.source === "file");
    const host = hosts[s.host] ? s.host : "ppinfra";
    links.replaceChildren(
      el("a", { href: KEY_PAGE[host], target: "_blank", rel: "noopener noreferrer" }, t("settings.getKey")),
      el("span", {}, "·"),
      el("a", { href: TOP_UP[host], target: "_blank", rel: "noopener noreferrer" }, t("settings.topUp")));
  }

  // Reads the input and clears it at once: the key stays in the DOM no longer than the request.
  const takeKey = () => {
    const key = keyInput.value.trim();
    keyInput.value = "";
    return key;
  };

  async function refresh(force = false) {
    busy(true);
    const res = await fetchAccount(force);
    busy(false);
    render(res.ok ? res.data : null);
    if (!res.ok) say(res.data.error || t("settings.unavailable"), "err");
    else buttons.remove.disabled = !(res.data.configured && res.data.source === "file");
  }

  buttons.refresh.onclick = () => { say(""); refresh(true); };

  buttons.test.onclick = async () => {
    const key = takeKey();
    const body = { host: hostSelect.value || undefined };
    if (key) body.api_key = key;
    say(t("settings.testing"));
    busy(true);
    const res = await request("/ppinfra/settings/test", { method: "POST", body });
    busy(false);
    if (res.ok) {
      const bal = res.data.balance ? formatBalance(res.data.balance) : "";
      say(t("settings.testOk", { balance: bal }), "ok");
    } else {
      say(t("settings.testFailed", { error: res.data.error || `HTTP ${res.status}` }), "err");
    }
    buttons.remove.disabled = !(account.summary?.configured && account.summary?.source === "file");
  };

  buttons.save.onclick = async () => {
    const key = takeKey();
    if (!key) {
      say(t("settings.pasteFirst"), "warn");
      keyInput.focus();
      return;
    }
    say(t("settings.checking"));
    busy(true);
    const res = await request("/ppinfra/settings/key", { method: "POST", body: { api_key: key, host: hostSelect.value || undefined } });
    busy(false);
    if (res.ok) {
      setAccount(res.data);
      render(res.data);
      say(res.data.env_overrides ? t("settings.savedButEnv") : t("settings.saved"), res.data.env_overrides ? "warn" : "ok");
    } else {
      render(account.summary);
      say(t("settings.saveFailed", { error: res.data.error || `HTTP ${res.status}` }), "err");
    }
  };

  buttons.remove.onclick = async () => {
    if (!confirm(t("settings.removeConfirm"))) return;
    busy(true);
    const res = await request("/ppinfra/settings/remove", { method: "POST", body: {} });
    busy(false);
    if (res.ok) {
      setAccount(res.data);
      render(res.data);
      say(t("settings.removed"), "ok");
    } else {
      render(account.summary);
      say(res.data.error || `HTTP ${res.status}`, "err");
    }
  };

  hostSelect.onchange = async () => {
    const picked = hostSelect.value;
    if (!picked) return;
    busy(true);
    const res = await request("/ppinfra/settings/host", { method: "POST", body: { host: picked } });
    busy(false);
    if (res.ok) {
      setAccount(res.data);
      render(res.data);
      // Saved either way; while PPINFRA_BASE_URL is set it is not the host in use (the status says so).
      const overridden = res.data.base_url_source === "env" || res.data.host !== picked;
      say(t("settings.hostSaved", { host: HOST_LABELS[picked] ?? picked }), overridden ? "warn" : "ok");
    } else {
      render(account.summary);
      say(res.data.error || `HTTP ${res.status}`, "err");
    }
  };

  keyInput.addEventListener("keydown", (e) => {
    e.stopPropagation(); // the editor's shortcuts must not see what is typed here
    if (e.key === "Enter") buttons.save.click();
  });

  render(account.summary);
  if (!account.summary) status.replaceChildren(el("dd", { class: "muted" }, t("settings.loading")));
  refresh(false);
  return panel;
}

/** The same panel in a dialog of its own (from a node's menu or its key hint). */
export async function openAccountDialog() {
  await loadStrings();
  openModal(t("settings.dialogTitle"), buildPanel());
}

app.registerExtension({
  name: "ppinfra.settings",
  async init() {
    await loadStrings();
  },
  settings: [
    {
      id: "PPInfra.Account",
      category: ["PPInfra", "Account", "Key"],
      name: "API key and balance",
      tooltip: "The key is checked with PPInfra and stored on the ComfyUI server, never in this browser or in comfy.settings.json.",
      defaultValue: "",
      // A function type renders our own element; its setter is never called,
      // so no value (and certainly no key) is written to comfy.settings.json.
      type: () => renderAccountPanel(),
    },
  ],
  async setup() {
    await loadStrings();
    await fetchAccount(false);
  },
});
