// Keeps a loaded model selection when a remote combo loads its options.
//
// Some frontend versions (1.27.x among them: useRemoteWidget's onFirstLoad)
// set a remote combo's value to the first item of the list the first time the
// list arrives, for every widget, including one whose value was just loaded
// from a saved workflow. A workflow saved with "add_detail" would then run with
// whatever sorts first. The guard below wraps the widget's value: after the
// node is created or configured it is *armed* with the value it holds; the
// first write that replaces it with the remote list's first item is refused.
// Any other write (a user's choice, the model browser) disarms it and goes
// through, so the guard can swallow at most that one automatic write.
import { app } from "../../scripts/app.js";
import { modelInputsOf } from "./common.js";

const ARMED_FOR_MS = 5 * 60 * 1000;

function accessorOf(widget) {
  const own = Object.getOwnPropertyDescriptor(widget, "value");
  if (own && !own.get && !own.set) {
    // A plain widget object (older frontends): keep the value in a closure.
    let current = own.value;
    return { get: () => current, set: (v) => { current = v; } };
  }
  let proto = own ? null : Object.getPrototypeOf(widget);
  let desc = own;
  while (!desc && proto) {
    desc = Object.getOwnPropertyDescriptor(proto, "value");
    proto = Object.getPrototypeOf(proto);
  }
  if (!desc?.get || !desc?.set) return null;
  return { get: () => desc.get.call(widget), set: (v) => desc.set.call(widget, v) };
}

function firstOption(widget) {
  try {
    const values = widget.options?.values;
    const list = typeof values === "function" ? values(widget) : values;
    return Array.isArray(list) && list.length ? list[0] : undefined;
  } catch {
    return undefined;
  }
}

/** Wrap `widget.value` once; returns the guard (or null when the value cannot be wrapped). */
export function installGuard(widget) {
  if (widget.__ppinfraGuard) return widget.__ppinfraGuard;
  const inner = accessorOf(widget);
  if (!inner) return null;
  const guard = { saved: undefined, armedUntil: 0, refused: 0 };
  Object.defineProperty(widget, "value", {
    configurable: true,
    enumerable: true,
    get: inner.get,
    set(v) {
      if (guard.armedUntil && v !== guard.saved) {
        const armed = Date.now() < guard.armedUntil;
        guard.armedUntil = 0;
        if (armed && guard.saved !== undefined && v === firstOption(widget)) {
          guard.refused += 1;
          console.info(`PPInfra: kept ${widget.name} = ${guard.saved} (the editor replaced it with the list's first item)`);
          return;
        }
      }
      inner.set(v);
    },
  });
  widget.__ppinfraGuard = guard;
  return guard;
}

/** Arm the guard with the widget's current value. */
export function arm(widget) {
  const guard = installGuard(widget);
  if (!guard) return;
  guard.saved = widget.value;
  guard.armedUntil = Date.now() + ARMED_FOR_MS;
}

export function disarm(widget) {
  if (widget.__ppinfraGuard) widget.__ppinfraGuard.armedUntil = 0;
}

/** Set a value on purpose (the model browser): never refused, and the change reaches the editor. */
export function setValue(node, widget, value) {
  disarm(widget);
  widget.value = value;
  widget.callback?.(value, app.canvas, node);
  node.setDirtyCanvas?.(true, true);
  node.graph?.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "ppinfra.savedSelection",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const models = modelInputsOf(nodeData);
    if (!Object.keys(models).length) return;
    const each = (node, fn) => (node.widgets ?? []).filter((w) => w.name in models).forEach(fn);

    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = created?.apply(this, arguments);
      each(this, arm); // a new node keeps its default too
      return r;
    };
    // Disarmed while a workflow's values are written, armed with them afterwards.
    const configure = nodeType.prototype.configure;
    nodeType.prototype.configure = function () {
      each(this, disarm);
      const r = configure.apply(this, arguments);
      each(this, arm);
      return r;
    };
  },
});
