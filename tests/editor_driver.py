"""Drives ComfyUI's real editor in headless Chromium for tests/test_real_editor.py (and by hand).

Everything the user would do is done through the page: typing into the
settings panel, clicking the node's buttons on the canvas (at the widget's
screen position), clicking a card in the model browser, pressing Run. JavaScript
is only used to *read* the editor's state (node widgets, the serialized
workflow, storage) and to load a workflow file as the editor's open dialog would.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

CHROMIUM = os.environ.get("CHROMIUM_BINARY") or shutil.which("chromium") or shutil.which("chromium-browser") or ""
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or ""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,900", "--force-device-scale-factor=1"]


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
        return self.driver.execute_async_script("const done = arguments[arguments.length - 1];" + script, *args)

    def open(self) -> None:
        self.driver.get(self.url + "/")
        self.wait_ready()

    def reload(self) -> None:
        self.driver.refresh()
        self.wait_ready()

    def wait_ready(self) -> None:
        wait_for("the editor to start", lambda: self.js(
            "return !!(window.app && app.graph && app.extensionManager && app.canvas"
            " && app.extensions.some(e => e.name === 'ppinfra.settings'))"), timeout=90)
        time.sleep(1.0)
        self.dismiss_dialogs()

    def dismiss_dialogs(self) -> None:
        """Close the editor's own start-up dialogs (templates, release notes)."""
        from selenium.webdriver.common.by import By
        for _ in range(3):
            buttons = [b for b in self.driver.find_elements(By.CSS_SELECTOR, ".p-dialog-close-button, .p-dialog-header-close")
                       if b.is_displayed()]
            if not buttons:
                return
            buttons[0].click()
            time.sleep(0.5)

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
    def set_locale(self, lang: str) -> None:
        self.js_async("app.extensionManager.setting.set('Comfy.Locale', arguments[0]).then(() => done(true))", lang)

    def open_settings_section(self) -> Any:
        """Open ComfyUI's settings dialog on the PPInfra category; returns the panel element."""
        from selenium.webdriver.common.by import By
        self.js("app.extensionManager.command.execute('Comfy.ShowSettingsDialog')")
        option = wait_for("the PPInfra settings category", lambda: next(
            (o for o in self.driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text.strip() == "PPInfra"),
            None))
        option.click()
        return wait_for("the PPInfra account panel", lambda: next(
            (p for p in self.driver.find_elements(By.CSS_SELECTOR, ".ppinfra-ui.account") if p.is_displayed()), None))

    def close_settings(self) -> None:
        from selenium.webdriver.common.keys import Keys
        self.driver.find_element("tag name", "body").send_keys(Keys.ESCAPE)
        time.sleep(0.5)

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
        return self.js("const n = app.graph.getNodeById(arguments[0]);"
                       "return n?.widgets?.find(w => w.name === arguments[1])?.value ?? null", node_id, name)

    def widget_options(self, node_id: int, name: str) -> List[str]:
        return self.js("const n = app.graph.getNodeById(arguments[0]);"
                       "const v = n?.widgets?.find(w => w.name === arguments[1])?.options?.values;"
                       "return Array.isArray(v) ? v.slice() : []", node_id, name)

    def widget_names(self, node_id: int) -> List[str]:
        return self.js("return app.graph.getNodeById(arguments[0]).widgets.map(w => w.name)", node_id)

    def click_widget(self, node_id: int, name: str) -> None:
        """Click a node's widget where it is drawn on the canvas, as a user would."""
        from selenium.webdriver.common.action_chains import ActionChains
        self.js("const n = app.graph.getNodeById(arguments[0]); app.canvas.centerOnNode?.(n);"
                "app.canvas.ds.scale = 1; app.canvas.centerOnNode?.(n); app.canvas.setDirty(true, true); app.canvas.draw(true, true)",
                node_id)
        time.sleep(0.3)
        point = self.js(
            "const n = app.graph.getNodeById(arguments[0]); const w = n.widgets.find(w => w.name === arguments[1]);"
            "const y = w.last_y ?? w.y; const h = w.computedHeight ?? 20;"
            "const [cx, cy] = app.canvas.ds.convertOffsetToCanvas([n.pos[0] + n.size[0] / 2, n.pos[1] + y + h / 2]);"
            "const r = app.canvas.canvas.getBoundingClientRect(); return [r.left + cx, r.top + cy]",
            node_id, name)
        canvas = self.driver.find_element("css selector", "#graph-canvas")
        rect = canvas.rect
        ActionChains(self.driver).move_to_element_with_offset(
            canvas, int(point[0] - rect["x"] - rect["width"] / 2), int(point[1] - rect["y"] - rect["height"] / 2)
        ).click().perform()

    def context_menu_entry(self, node_id: int, text: str) -> Any:
        """Right-click the node's title, as a user would; returns the menu entry showing ``text``."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        self.js("app.canvas.centerOnNode?.(app.graph.getNodeById(arguments[0])); app.canvas.draw(true, true)", node_id)
        point = self.js(
            "const n = app.graph.getNodeById(arguments[0]);"
            "const [cx, cy] = app.canvas.ds.convertOffsetToCanvas([n.pos[0] + n.size[0] / 2, n.pos[1] - 15]);"
            "const r = app.canvas.canvas.getBoundingClientRect(); return [r.left + cx, r.top + cy]", node_id)
        canvas = self.driver.find_element("css selector", "#graph-canvas")
        rect = canvas.rect
        ActionChains(self.driver).move_to_element_with_offset(
            canvas, int(point[0] - rect["x"] - rect["width"] / 2), int(point[1] - rect["y"] - rect["height"] / 2)
        ).context_click().perform()
        return wait_for(f"the context menu entry {text!r}", lambda: next(
            (e for e in self.driver.find_elements(By.CSS_SELECTOR, ".litecontextmenu .litemenu-entry")
             if e.is_displayed() and e.text.strip() == text), None), timeout=10)

    def storage_dump(self) -> str:
        """What the page keeps in the browser, as the page and the driver see it: localStorage, sessionStorage, cookies."""
        data = self.js(
            "const dump = s => Object.fromEntries(Array.from({length: s.length}, (_, i) => [s.key(i), s.getItem(s.key(i))]));"
            "return {local: dump(localStorage), session: dump(sessionStorage), cookie: document.cookie}")
        data["cookies"] = self.driver.get_cookies()
        return json.dumps(data)

    def profile_bytes(self) -> str:
        """Every file of the browser profile (storage, cookies, saved passwords, autofill, cache) as one text."""
        chunks = []
        for folder, _, files in os.walk(self.profile):
            for name in files:
                try:
                    with open(os.path.join(folder, name), "rb") as fh:
                        chunks.append(fh.read().decode("latin-1"))
                except OSError:
                    pass  # a lock file or a socket
        return "\n".join(chunks)

    def run(self) -> None:
        """Press the editor's Run button."""
        from selenium.webdriver.common.by import By
        button = wait_for("the Run button", lambda: next(
            (b for b in self.driver.find_elements(By.CSS_SELECTOR, "button") if b.is_displayed()
             and b.text.strip() in ("Run", "运行", "Queue", "Queue Prompt")), None))
        button.click()

    def panel(self, selector: str) -> Optional[Any]:
        from selenium.webdriver.common.by import By
        found = [e for e in self.driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]
        return found[0] if found else None
