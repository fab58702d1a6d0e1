"""The editor extensions under web/, read as text: strings, storage, server calls, styles, imports.

The behaviour itself is tested in the real editor (tests/test_real_editor.py,
optional); these checks run everywhere and catch the mistakes that are easy to
make in plain JavaScript without a build step.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from helpers import ROOT

WEB = os.path.join(ROOT, "web")
LOCALES = os.path.join(ROOT, "locales")
SCRIPTS = sorted(f for f in os.listdir(WEB) if f.endswith(".js"))
MODEL_TYPES = ("checkpoint", "lora", "vae", "controlnet", "textualinversion")


def source(name: str) -> str:
    with open(os.path.join(WEB, name), encoding="utf-8") as fh:
        return fh.read()


def strings(lang: str) -> dict:
    with open(os.path.join(LOCALES, lang, "main.json"), encoding="utf-8") as fh:
        return json.load(fh)["ppinfra"]


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def used_keys() -> set:
    keys = set()
    for name in SCRIPTS:
        keys.update(re.findall(r"\bt\(\s*\"([a-zA-Z0-9_.]+)\"", source(name)))
    keys.update(f"types.{t}" for t in MODEL_TYPES)  # t(`types.${type}`)
    return keys


def test_there_are_extensions_to_check():
    assert {"common.js", "settings.js", "model_browser.js", "saved_value.js", "key_hint.js"} <= set(SCRIPTS)
    assert len(used_keys()) > 40


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_string_the_extensions_use_is_translated(lang):
    table = flat(strings(lang))
    missing = sorted(k for k in used_keys() if not isinstance(table.get(k), str) or not table[k].strip())
    assert not missing, f"locales/{lang}/main.json lacks ppinfra.{missing}"


def test_english_and_chinese_have_the_same_strings_and_placeholders():
    en, zh = flat(strings("en")), flat(strings("zh"))
    assert set(en) == set(zh)
    for key in en:
        assert sorted(re.findall(r"\{(\w+)\}", en[key])) == sorted(re.findall(r"\{(\w+)\}", zh[key])), key
    unused = sorted(set(en) - used_keys())
    assert not unused, f"strings no extension uses: {unused}"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_settings_entry_and_its_category_are_translated(lang):
    with open(os.path.join(LOCALES, lang, "settings.json"), encoding="utf-8") as fh:
        entries = json.load(fh)
    ids = re.findall(r"id:\s*\"([\w.]+)\"", source("settings.js"))
    assert ids == ["PPInfra.Account"]
    for setting_id in ids:
        entry = entries[setting_id.replace(".", "_")]  # the editor's normalizeI18nKey
        assert entry["name"].strip() and entry["tooltip"].strip()
    with open(os.path.join(LOCALES, lang, "main.json"), encoding="utf-8") as fh:
        categories = json.load(fh)["settingsCategories"]
    assert {"PPInfra", "Account"} <= set(categories)


def test_nothing_is_kept_in_browser_storage_and_every_call_goes_through_fetch_api():
    for name in SCRIPTS:
        text = re.sub(r"//[^\n]*", "", source(name))  # comments may name what is avoided
        for banned in ("localStorage", "sessionStorage", "document.cookie", "indexedDB", "XMLHttpRequest"):
            assert banned not in text, f"{name} uses {banned}"
        assert not re.search(r"(?<![\w.])fetch\(", text), f"{name} calls fetch() instead of api.fetchApi"
        assert "innerHTML" not in text, f"{name} builds HTML from strings (catalog text is untrusted)"


def test_the_key_setting_stores_nothing():
    text = source("settings.js")
    # The settings entry renders the panel; a setter call would write comfy.settings.json.
    assert re.search(r"type:\s*\(\)\s*=>\s*renderAccountPanel\(\)", text)
    assert "setter" not in re.sub(r"//[^\n]*", "", text)
    assert "api_key" in text and text.count("takeKey()") >= 2  # the input is read once and cleared


def test_each_extension_has_a_ppinfra_name_and_imports_resolve():
    names = []
    for name in SCRIPTS:
        text = source(name)
        names += re.findall(r"registerExtension\(\{\s*name:\s*\"([^\"]+)\"", text)
        for target in re.findall(r"from\s+\"(\./[^\"]+)\"", text):
            assert os.path.isfile(os.path.join(WEB, target)), f"{name} imports missing {target}"
        for target in re.findall(r"from\s+\"(\.\./\.\./scripts/[^\"]+)\"", text):
            assert target in ("../../scripts/app.js", "../../scripts/api.js"), target
    assert sorted(names) == [
        "ppinfra.keyHint",
        "ppinfra.modelBrowser",
        "ppinfra.price",
        "ppinfra.savedSelection",
        "ppinfra.settings",
    ]


def test_every_style_rule_is_scoped_under_one_class():
    css = (
        re.search(r"const CSS = `(.*?)`;", source("common.js"), re.S)
        .group(1)
        .replace("${ROOT_CLASS}", "ROOT")
    )
    selectors = [s.strip() for block in re.findall(r"([^{}]+)\{", css) for s in block.split(",")]
    assert len(selectors) > 20
    unscoped = [s for s in selectors if not s.startswith(".ROOT")]
    assert not unscoped, unscoped


def test_the_pack_serves_web():
    with open(os.path.join(ROOT, "__init__.py"), encoding="utf-8") as fh:
        assert re.search(r"^WEB_DIRECTORY = \"\./web\"", fh.read(), re.M)


def test_the_panel_links_to_the_pages_the_server_names():
    from ppinfra.account import KEY_PAGES
    from ppinfra.api_errors import TOP_UP_URL

    text = source("settings.js")

    def table(name):
        body = re.search(name + r" = \{(.*?)\};", text, re.S).group(1)
        return dict(re.findall(r"(\w+):\s*\"([^\"]+)\"", body))

    assert table("KEY_PAGE") == KEY_PAGES
    assert table("TOP_UP")["ppinfra"] == TOP_UP_URL
