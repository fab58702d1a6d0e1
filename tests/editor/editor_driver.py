"""Drives ComfyUI's real editor in headless Chromium for tests/editor/test_real_editor*.py (and by hand).

It acts through the editor's stable, public surfaces, so one driver serves the
frontend a ComfyUI release pins (1.27.x) and the newest one (1.58.x), with
Nodes 2.0 (``Comfy.VueNodes.Enabled``) off or on:

* settings and commands: ``app.extensionManager.setting.get/set`` and
  ``app.extensionManager.command.execute(id)`` (``Comfy.ShowSettingsDialog``,
  ``Comfy.QueuePrompt``);
* the graph: ``app.graph``, ``app.loadGraphData``, ``app.graph.getNodeById(id).widgets``;
* the pack's own dialogs (``.ppinfra-ui``, built by web/common.js), clicked and
  typed into like a user would.

Where a user action has no public handle it is done the way each frontend
shows it: a node's button widget is pressed through its ``callback`` on the
canvas (classic nodes are pixels) and clicked as a DOM button under Nodes 2.0;
a node's context menu is opened with a right-click on its title (the canvas
position from ``app.canvas.ds``) or on the Vue node's header; the settings
dialog's category is the entry labelled "PPInfra" in its side list.
JavaScript otherwise only *reads* the editor's state.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

CHROMIUM = (
    os.environ.get("CHROMIUM_BINARY") or shutil.which("chromium") or shutil.which("chromium-browser") or ""
)
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or ""
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
    "--force-device-scale-factor=1",
]


def available() -> str:
    """Empty when Chromium, chromedriver and selenium are all there, else what is missing."""
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    return ", ".join(missing)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except AssertionError:
            raise
        except Exception as exc:  # the page may be between states
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        time.sleep(every)


class Editor:
    """One headless Chromium with a fresh profile on one ComfyUI."""

    def __init__(self, url: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.url = url
        self.profile = tempfile.mkdtemp(prefix="ppinfra-chromium-")
        opts = webdriver.ChromeOptions()
        for flag in FLAGS + [f"--user-data-dir={self.profile}"]:
            opts.add_argument(flag)
        opts.binary_location = CHROMIUM
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_script_timeout(60)
        self.console: List[Dict[str, Any]] = []

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # ------------------------------------------------------------------ page
    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def js_async(self, script: str, *args: Any) -> Any:
        """Run ``script`` with ``done`` = the callback (selenium's async script)."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];" + script, *args
        )

    def open(self) -> None:
        self.driver.get(self.url + "/")
        self.wait_ready()

    def reload(self) -> None:
        self.driver.refresh()
        self.wait_ready()

    def wait_ready(self) -> None:
        wait_for(
            "the editor to start",
            lambda: self.js(
                "return !!(window.app && app.graph && app.extensionManager?.setting"
                " && app.extensionManager?.command"
                " && app.canvas && app.extensions.some(e => e.name === 'ppinfra.settings'))"
            ),
            timeout=90,
        )
        time.sleep(1.0)
        self.dismiss_dialogs()

    def frontend_version(self) -> str:
        """The version of the frontend actually served (``--front-end-root`` or the pinned package)."""
        return self.js("return window.__COMFYUI_FRONTEND_VERSION__ ?? ''") or ""

    def frontend_at_least(self, *version: int) -> bool:
        parts = tuple(int(p) for p in self.frontend_version().split(".")[:3] if p.isdigit())
        return parts >= version

    def frontend_dialogs(self) -> List[Any]:
        """The editor's own dialogs on screen (PrimeVue in 1.27, Reka in 1.58), not the pack's."""
        from selenium.webdriver.common.by import By

        found = self.driver.find_elements(By.CSS_SELECTOR, ".p-dialog, [role=dialog][data-state=open]")
        return [
            d
            for d in found
            if d.is_displayed()
            and not d.find_elements(By.XPATH, "ancestor::*[contains(@class, 'ppinfra-ui')]")
        ]

    def dismiss_dialogs(self) -> None:
        """Close the editor's start-up dialogs (templates, release notes), as a user would: their ✕
        or Escape."""
        from selenium.webdriver.common.by import By

        for _ in range(4):
            dialogs = self.frontend_dialogs()
            if not dialogs:
                return
            close = [
                b
                for b in self.driver.find_elements(
                    By.CSS_SELECTOR, ".p-dialog-close-button, .p-dialog-header-close"
                )
                if b.is_displayed()
            ]
            if close:
                close[0].click()
            else:
                self.press_escape()
            time.sleep(0.5)

    def press_escape(self) -> None:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        ActionChains(self.driver).send_keys(Keys.ESCAPE).perform()

    def logs(self) -> List[Dict[str, Any]]:
        self.console.extend(self.driver.get_log("browser"))
        return self.console

    def screenshot(self, path: str, element: Any = None) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if element is not None:
            element.screenshot(path)
        else:
            self.driver.save_screenshot(path)

    # ------------------------------------------------------------------ settings
    def setting(self, setting_id: str) -> Any:
        return self.js("return app.extensionManager.setting.get(arguments[0])", setting_id)

    def set_setting(self, setting_id: str, value: Any) -> None:
        self.js_async(
            "Promise.resolve(app.extensionManager.setting.set(arguments[0], arguments[1]))"
            ".then(() => done(true), (e) => done(String(e)))",
            setting_id,
            value,
        )

    def set_locale(self, lang: str) -> None:
        self.set_setting("Comfy.Locale", lang)

    def command(self, command_id: str) -> None:
        """Run one of the editor's commands, as its menu, keybinding or button would."""
        self.js_async(
            "Promise.resolve(app.extensionManager.command.execute(arguments[0]))"
            ".then(() => done(true), (e) => done(String(e)))",
            command_id,
        )

    def open_settings_section(self) -> Any:
        """Open ComfyUI's settings dialog on the PPInfra category; returns the pack's account panel."""
        from selenium.webdriver.common.by import By

        self.command("Comfy.ShowSettingsDialog")
        # 1.27: a PrimeVue listbox ([role=option]) of categories; 1.58: a nav of
        # [data-nav-id] entries ([role=button]), packs' categories under "Other".
        entries = "[role=option], [role=button], [data-nav-id], [role=tab]"
        option = wait_for(
            "the PPInfra settings category",
            lambda: next(
                (
                    o
                    for o in self.driver.find_elements(By.CSS_SELECTOR, entries)
                    if o.is_displayed() and o.text.strip() == "PPInfra"
                ),
                None,
            ),
        )
        option.click()
        return wait_for(
            "the PPInfra account panel",
            lambda: next(
                (
                    p
                    for p in self.driver.find_elements(By.CSS_SELECTOR, ".ppinfra-ui.account")
                    if p.is_displayed()
                ),
                None,
            ),
        )

    def close_settings(self) -> None:
        self.press_escape()
        wait_for(
            "the settings dialog to close",
            lambda: (
                not any(
                    p.is_displayed() for p in self.driver.find_elements("css selector", ".ppinfra-ui.account")
                )
            ),
            timeout=10,
        )
        time.sleep(0.3)

    # ------------------------------------------------------------------ Nodes 2.0
    def vue_nodes(self) -> bool:
        """Whether nodes are Vue components (Nodes 2.0) rather than pixels on the canvas."""
        return bool(
            self.js(
                "try { return !!app.extensionManager.setting.get('Comfy.VueNodes.Enabled') }"
                " catch { return false }"
            )
        )

    def set_vue_nodes(self, on: bool) -> None:
        self.set_setting("Comfy.VueNodes.Enabled", bool(on))
        time.sleep(0.5)

    def node_element(self, node_id: int) -> Optional[Any]:
        """The Vue node's DOM element (Nodes 2.0 only)."""
        found = self.driver.find_elements("css selector", f'[data-node-id="{node_id}"]')
        return found[0] if found else None

    def widget_button(self, node_id: int, name: str) -> Optional[Any]:
        """The DOM button that renders a node's button widget under Nodes 2.0 (None when not rendered)."""
        from selenium.webdriver.common.by import By

        node = self.node_element(node_id)
        if node is None:
            return None
        found = node.find_elements(By.CSS_SELECTOR, f'[data-widget-name="{name}"] button')
        if not found:  # no data-widget-name: match the widget's label
            label = self.js(
                "const w = app.graph.getNodeById(arguments[0])?.widgets?.find(w => w.name === arguments[1]);"
                "return w ? String(w.label ?? w.name) : null",
                node_id,
                name,
            )
            found = [
                b for b in node.find_elements(By.CSS_SELECTOR, "button") if label and b.text.strip() == label
            ]
        return found[0] if found else None

    # ------------------------------------------------------------------ graph
    def load_workflow(self, workflow: Dict[str, Any]) -> None:
        """Load a UI-format workflow as the editor's Open dialog does (``app.loadGraphData``)."""
        self.js_async("app.loadGraphData(arguments[0]).then(() => done(true))", workflow)
        time.sleep(0.5)

    def serialized_workflow(self) -> Dict[str, Any]:
        return self.js("return JSON.parse(JSON.stringify(app.graph.serialize()))")

    def node_id(self, node_type: str) -> int:
        return self.js("return app.graph._nodes.find(n => n.type === arguments[0])?.id ?? null", node_type)

    def widget_value(self, node_id: int, name: str) -> Any:
        return self.js(
            "const n = app.graph.getNodeById(arguments[0]);"
            "return n?.widgets?.find(w => w.name === arguments[1])?.value ?? null",
            node_id,
            name,
        )

    def widget_options(self, node_id: int, name: str) -> List[str]:
        return self.js(
            "const n = app.graph.getNodeById(arguments[0]);"
            "const v = n?.widgets?.find(w => w.name === arguments[1])?.options?.values;"
            "return Array.isArray(v) ? v.slice() : []",
            node_id,
            name,
        )

    def widget_names(self, node_id: int) -> List[str]:
        return self.js("return app.graph.getNodeById(arguments[0]).widgets.map(w => w.name)", node_id)

    def show_node(self, node_id: int, focus_y: Optional[float] = None) -> None:
        """Bring a node into the view at 100 % (the canvas's own transform, ``app.canvas.ds``).

        By default the node is centred (its top when it is taller than the view);
        ``focus_y`` (node coordinates: negative is the title bar) puts that line
        of the node in the middle instead, clear of the editor's bars and overlays.
        """
        self.js(
            "const n = app.graph.getNodeById(arguments[0]); const c = app.canvas; "
            "const r = c.canvas.getBoundingClientRect();"
            "const fy = arguments[1] ?? Math.min(n.size[1], r.height - 80) / 2;"
            "c.ds.scale = 1; c.ds.offset[0] = r.width / 2 - (n.pos[0] + n.size[0] / 2);"
            "c.ds.offset[1] = r.height / 2 - (n.pos[1] + fy);"
            "c.setDirty(true, true); c.draw?.(true, true)",
            node_id,
            focus_y,
        )
        time.sleep(0.4)

    def show_widget(self, node_id: int, name: str) -> None:
        """Bring one of a node's widgets to the middle of the view (a tall node's last widgets are off-screen,
        and the editor hides the DOM widgets it does not show)."""
        if self.vue_nodes():
            self.show_node(node_id)
            self.js(
                "const w = app.graph.getNodeById(arguments[0])?.widgets?.find(w => w.name === arguments[1]);"
                "w?.element?.scrollIntoView?.({block: 'center'})",
                node_id,
                name,
            )
            time.sleep(0.4)
            return
        y = self.js(
            "const w = app.graph.getNodeById(arguments[0])?.widgets?.find(w => w.name === arguments[1]);"
            "return w ? (w.y ?? w.last_y ?? 0) : null",
            node_id,
            name,
        )
        self.show_node(node_id, (y or 0) + 10)

    def widget_text(self, node_id: int, name: str) -> Optional[str]:
        """The text a DOM widget shows (None: no such widget, or not on screen).

        Selenium's ``.text`` is the *rendered* text: empty for an element that is
        hidden or clipped away, so this reads what a user sees, on the canvas
        overlay (classic nodes) and inside the Vue node (Nodes 2.0) alike.
        """
        element = self.js(
            "return app.graph.getNodeById(arguments[0])?.widgets?.find(w => w.name === arguments[1])"
            "?.element ?? null",
            node_id,
            name,
        )
        if element is None or not element.is_displayed():
            return None
        return element.text.strip()

    def set_widget(self, node_id: int, name: str, value: Any) -> None:
        """Change a widget as an edit on the node does: the new value, then the widget's ``callback``."""
        self.js(
            "const n = app.graph.getNodeById(arguments[0]); "
            "const w = n.widgets.find(w => w.name === arguments[1]);"
            "w.value = arguments[2]; w.callback?.(w.value, app.canvas, n); "
            "n.onWidgetChanged?.(w.name, w.value, null, w);"
            "app.canvas.setDirty(true, true)",
            node_id,
            name,
            value,
        )

    def click_widget(self, node_id: int, name: str) -> None:
        """Press one of a node's button widgets.

        Under Nodes 2.0 the button is a DOM element and is clicked like one (so
        this also proves it is rendered). Classic nodes are pixels on the
        canvas; there the widget's ``callback`` is what the canvas calls on a
        click, with the same arguments.
        """
        kind = self.js(
            "return app.graph.getNodeById(arguments[0])?.widgets"
            "?.find(w => w.name === arguments[1])?.type ?? null",
            node_id,
            name,
        )
        assert kind == "button", f"{name} on node {node_id} is a {kind!r} widget, not a button"
        if self.vue_nodes():
            self.show_node(node_id)
            button = wait_for(
                f"the rendered {name} button", lambda: self.widget_button(node_id, name), timeout=10
            )
            self.driver.execute_script(
                "arguments[0].scrollIntoView({block: 'center', inline: 'center'})", button
            )
            button.click()
            return
        self.js(
            "const n = app.graph.getNodeById(arguments[0]); "
            "const w = n.widgets.find(w => w.name === arguments[1]);"
            "w.callback?.(w.value, app.canvas, n, [n.size[0] / 2, (w.y ?? 0) + 10], new MouseEvent('click'))",
            node_id,
            name,
        )

    def context_menu_entry(self, node_id: int, text: str) -> Any:
        """Right-click the node as a user would; returns the menu entry showing ``text``.

        Classic nodes: LiteGraph's menu (``.litemenu-entry``) from a right-click on
        the title bar. Nodes 2.0 (1.58): the Vue node menu ([role=menuitem]) from a
        right-click on the node's header; it lists the same extension entries.
        """
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        self.press_escape()  # no menu left open from before
        # The title bar in the middle of the view: at a tall node's centre it would sit under the
        # editor's top bars.
        self.show_node(node_id, -self.js("return LiteGraph.NODE_TITLE_HEIGHT ?? 30") / 2)
        if self.vue_nodes():
            node = wait_for("the Vue node", lambda: self.node_element(node_id), timeout=10)
            headers = node.find_elements(
                By.CSS_SELECTOR, ".lg-node-header, [data-testid^=node-header], header"
            )
            ActionChains(self.driver).context_click(headers[0] if headers else node).perform()
        else:
            point = self.js(
                "const n = app.graph.getNodeById(arguments[0]); const h = LiteGraph.NODE_TITLE_HEIGHT ?? 30;"
                "const [cx, cy] = app.canvas.ds.convertOffsetToCanvas("
                "[n.pos[0] + n.size[0] / 2, n.pos[1] - h / 2]);"
                "const r = app.canvas.canvas.getBoundingClientRect(); return [r.left + cx, r.top + cy]",
                node_id,
            )
            canvas = self.driver.find_element(By.CSS_SELECTOR, "#graph-canvas")
            rect = canvas.rect
            ActionChains(self.driver).move_to_element_with_offset(
                canvas,
                int(point[0] - rect["x"] - rect["width"] / 2),
                int(point[1] - rect["y"] - rect["height"] / 2),
            ).context_click().perform()
        return wait_for(
            f"the context menu entry {text!r}",
            lambda: next(
                (
                    e
                    for e in self.driver.find_elements(
                        By.CSS_SELECTOR, ".litecontextmenu .litemenu-entry, [role=menuitem]"
                    )
                    if e.is_displayed() and e.text.strip() == text
                ),
                None,
            ),
            timeout=10,
        )

    def storage_dump(self) -> str:
        """What the page keeps in the browser, as the page and the driver see it: localStorage,
        sessionStorage, cookies."""
        data = self.js(
            "const dump = s => Object.fromEntries("
            "Array.from({length: s.length}, (_, i) => [s.key(i), s.getItem(s.key(i))]));"
            "return {local: dump(localStorage), session: dump(sessionStorage), cookie: document.cookie}"
        )
        data["cookies"] = self.driver.get_cookies()
        return json.dumps(data)

    def profile_bytes(self) -> str:
        """Every file of the browser profile (storage, cookies, saved passwords, autofill, cache) as
        one text."""
        chunks = []
        for folder, _, files in os.walk(self.profile):
            for name in files:
                try:
                    with open(os.path.join(folder, name), "rb") as fh:
                        chunks.append(fh.read().decode("latin-1"))
                except OSError:
                    pass  # a lock file or a socket
        return "\n".join(chunks)

    def watch_progress_texts(self) -> None:
        """Keep every ``progress_text`` message the editor receives (``api``'s public event), per node.

        Frontend 1.27 leaves a node's last progress text on the node after the
        run; 1.58 clears it when the job ends, so a test reads what was shown
        from here rather than from the node afterwards.
        """
        self.js_async(
            "import(new URL('scripts/api.js', location.href).href).then(({api}) => {"
            "  if (!window.__ppinfraTexts) { window.__ppinfraTexts = [];"
            "    api.addEventListener('progress_text', (e) => window.__ppinfraTexts.push(e.detail)); }"
            "  done(true); }, (e) => done(String(e)))"
        )

    def progress_texts(self, node_id: int) -> List[str]:
        return self.js(
            "return (window.__ppinfraTexts ?? []).filter(d => String(d.nodeId) === String(arguments[0]))"
            ".map(d => d.text)",
            node_id,
        )

    def run(self) -> None:
        """Queue the open workflow, as the Run button does (the ``Comfy.QueuePrompt`` command)."""
        self.command("Comfy.QueuePrompt")

    def panel(self, selector: str) -> Optional[Any]:
        from selenium.webdriver.common.by import By

        found = [e for e in self.driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]
        return found[0] if found else None
