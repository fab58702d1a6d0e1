"""The editor's routes (nodes/routes.py) in a real aiohttp server on a loopback port, against the sandbox.

No ComfyUI is needed: ``make_app()`` serves the same handlers ComfyUI gets
through ``register(PromptServer.instance.routes)``. Requests go over real
sockets with ``requests``; the key checks reach the sandbox's ``GET /v3/user``.
"""

from __future__ import annotations

import importlib
import json
import os
import stat
import sys
import time
import types

import pytest
import requests

from helpers import PACK_NAME, SANDBOX_KEY, load_pack

pytest.importorskip("aiohttp", reason="ComfyUI provides aiohttp; pip install -r requirements-dev.txt")
from aiohttp import web  # noqa: E402  (route tables for the registration tests)

load_pack()
routes = importlib.import_module(f"{PACK_NAME}.nodes.routes")
catalog = importlib.import_module(f"{PACK_NAME}.nodes.catalog")
bridge = importlib.import_module(f"{PACK_NAME}.nodes.comfy_bridge")
pack_config = importlib.import_module(f"{PACK_NAME}.ppinfra.config")
pack_errors = importlib.import_module(f"{PACK_NAME}.ppinfra.errors")

SETTINGS_FIELDS = {
    "configured",
    "source",
    "host",
    "base_url",
    "base_url_source",
    "hosts",
    "last4",
    "env_overrides",
    "storage",
    "balance",
    "balance_error",
}


def config_file() -> str:
    return os.environ["PPINFRA_CONFIG"]


def user_calls(sandbox):
    return [r for r in sandbox.requests if r.path == "/v3/user"]


# --------------------------------------------------------------------------- key and settings


def test_settings_without_a_key(server, keyless_env):
    data = server.get("/ppinfra/settings").json()
    assert set(data) == SETTINGS_FIELDS
    assert data["configured"] is False and data["source"] is None and data["last4"] is None
    assert data["balance"] is None and data["env_overrides"] is False
    assert (
        data["base_url"] == keyless_env.base_url
        and data["host"] == "custom"
        and data["base_url_source"] == "env"
    )
    assert user_calls(keyless_env) == []  # nothing to check without a key


def test_good_key_is_checked_then_saved_privately(server, keyless_env):
    resp = server.post("/ppinfra/settings/key", {"api_key": f"  {SANDBOX_KEY}\n"})
    assert resp.status_code == 200, resp.text
    assert SANDBOX_KEY not in resp.text
    data = resp.json()
    assert data["ok"] is True and data["configured"] is True and data["source"] == "file"
    assert data["last4"] == SANDBOX_KEY[-4:]
    assert (
        data["balance"]["credit_balance"] > 0
        and data["balance"]["usd"] == data["balance"]["credit_balance"] / 1e4
    )
    [check] = user_calls(keyless_env)
    assert check.headers.get("Authorization") == f"Bearer {SANDBOX_KEY}"
    with open(config_file(), encoding="utf-8") as fh:
        assert json.load(fh)["api_key"] == SANDBOX_KEY  # stripped of the pasted blanks
    assert stat.S_IMODE(os.stat(config_file()).st_mode) == 0o600
    # The nodes' client reads the same file.
    settings = pack_config.load_settings(config_path=bridge.user_config_path())
    assert str(settings.api_key) == SANDBOX_KEY and settings.base_url == keyless_env.base_url


def test_bad_key_is_refused_with_a_clear_message_and_not_saved(server, keyless_env):
    wrong = "sk-wrong-key-0123456789abcdef"
    resp = server.post("/ppinfra/settings/key", {"api_key": wrong})
    assert resp.status_code == 400
    data = resp.json()
    assert data["ok"] is False and "INVALID_API_KEY" in data["error"] and "not saved" in data["error"]
    assert wrong not in resp.text
    assert not os.path.exists(config_file())
    assert len(user_calls(keyless_env)) == 1  # it was really asked


@pytest.mark.parametrize(
    "body, words",
    [
        ({"api_key": ""}, "empty"),
        ({"api_key": "sk-has a space-0123456789"}, "space"),
        ({"api_key": 12345678}, "string"),
        ({"api_key": "sk-too-short"[:6]}, "8 to 256"),
    ],
)
def test_malformed_key_is_refused_before_any_request(server, keyless_env, body, words):
    resp = server.post("/ppinfra/settings/key", body)
    assert resp.status_code == 400 and words in resp.json()["error"]
    assert str(body["api_key"]) not in resp.json()["error"] or body["api_key"] == ""
    assert user_calls(keyless_env) == [] and not os.path.exists(config_file())


def test_settings_reveal_only_what_the_panel_shows(server, keyless_env):
    assert server.post("/ppinfra/settings/key", {"api_key": SANDBOX_KEY}).status_code == 200
    for path in ("/ppinfra/settings", "/ppinfra/settings?refresh=1"):
        resp = server.get(path)
        assert set(resp.json()) == SETTINGS_FIELDS
        assert SANDBOX_KEY not in resp.text and SANDBOX_KEY[:-4] not in resp.text
    test = server.post("/ppinfra/settings/test", {})
    assert test.json()["ok"] is True and SANDBOX_KEY not in test.text
    bad = server.post("/ppinfra/settings/test", {"api_key": "sk-another-wrong-key-000000"})
    assert bad.json()["ok"] is False and "refused" in bad.json()["error"]
    assert json.load(open(config_file(), encoding="utf-8"))["api_key"] == SANDBOX_KEY  # a test never saves


def test_balance_is_cached_and_refreshed_on_demand(server, keyless_env):
    server.post("/ppinfra/settings/key", {"api_key": SANDBOX_KEY})
    n = len(user_calls(keyless_env))
    server.get("/ppinfra/settings")
    server.get("/ppinfra/settings")
    assert len(user_calls(keyless_env)) == n  # the save's own check is reused
    server.get("/ppinfra/settings?refresh=1")
    assert len(user_calls(keyless_env)) == n + 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:1"},  # another port of this machine is another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another port or subdomain of this site is not the editor
    ],
)
def test_cross_origin_requests_are_refused(server, keyless_env, headers):
    for method, path, body in (
        ("post", "/ppinfra/settings/key", {"api_key": SANDBOX_KEY}),
        ("post", "/ppinfra/settings/remove", {}),
        ("post", "/ppinfra/settings/host", {"host": "novita"}),
        ("get", "/ppinfra/settings", None),
        ("get", "/ppinfra/models/lora", None),
    ):
        if method == "post":
            resp = requests.post(server.origin + path, json=body, headers=headers, timeout=10)
        else:
            resp = requests.get(server.origin + path, headers=headers, timeout=10)
        assert resp.status_code == 403, (path, resp.status_code)
        assert "error" in resp.json()
    assert user_calls(keyless_env) == [] and not os.path.exists(config_file())


def test_state_changes_need_a_json_body(server, keyless_env):
    resp = requests.post(
        server.origin + "/ppinfra/settings/key",
        data=f"api_key={SANDBOX_KEY}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert resp.status_code == 415 and not os.path.exists(config_file())
    resp = server.post(
        "/ppinfra/settings/key", headers={"Content-Type": "application/json"}, data=b"{not json"
    )
    assert resp.status_code == 400


def test_environment_variable_wins_and_the_panel_says_so(server, keyless_env, monkeypatch):
    env_key = "sk-from-the-environment-9876"
    monkeypatch.setenv("PPINFRA_API_KEY", env_key)
    data = server.get("/ppinfra/settings").json()
    assert data["source"] == "env" and data["env_overrides"] is True and data["last4"] == "9876"
    assert data["balance"] is None and "refused" in data["balance_error"]  # the sandbox does not know it
    assert server.post("/ppinfra/settings/key", {"api_key": SANDBOX_KEY}).status_code == 200
    data = server.get("/ppinfra/settings").json()
    assert data["source"] == "env" and data["env_overrides"] is True
    assert str(pack_config.load_settings(config_path=bridge.user_config_path()).api_key) == env_key


def test_removing_the_stored_key(server, keyless_env):
    server.post("/ppinfra/settings/key", {"api_key": SANDBOX_KEY})
    data = server.post("/ppinfra/settings/remove", {}).json()
    assert data["configured"] is False and data["source"] is None and data["balance"] is None
    with open(config_file(), encoding="utf-8") as fh:
        assert "api_key" not in json.load(fh)
    with pytest.raises(pack_errors.ConfigError):
        pack_config.load_settings(config_path=bridge.user_config_path())


def test_host_choice_is_stored_beside_the_key(server, isolated_env, monkeypatch):
    # No key and no PPINFRA_BASE_URL: nothing here may reach a real host.
    monkeypatch.delenv("PPINFRA_BASE_URL", raising=False)
    data = server.get("/ppinfra/settings").json()
    assert data["host"] == "ppinfra" and data["base_url_source"] == "default"
    assert data["hosts"] == {
        "ppinfra": "https://api.ppinfra.com",
        "ppio": "https://api.ppio.com",
        "novita": "https://api.novita.ai",
    }
    data = server.post("/ppinfra/settings/host", {"host": "novita"}).json()
    assert data["host"] == "novita" and data["base_url"] == "https://api.novita.ai"
    assert json.load(open(config_file(), encoding="utf-8")) == {"base_url": "https://api.novita.ai"}
    bad = server.post("/ppinfra/settings/host", {"host": "example.com"})
    assert bad.status_code == 400 and "host must be one of ppinfra, ppio, novita" in bad.json()["error"]


def test_key_file_goes_to_the_system_user_directory_when_comfyui_has_one(
    server, keyless_env, monkeypatch, tmp_path
):
    """ComfyUI 0.3.76+: ``user/__ppinfra`` (refused by /userdata);
    a key written by hand before moves there."""
    user = tmp_path / "user"
    fp = types.ModuleType("folder_paths")
    fp.get_user_directory = lambda: str(user)
    fp.get_system_user_directory = lambda name="system": str(user / f"__{name}")
    monkeypatch.setitem(sys.modules, "folder_paths", fp)
    monkeypatch.delenv("PPINFRA_CONFIG")
    legacy = user / "ppinfra" / "config.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"api_key": "sk-old-hand-written-key-1111"}))
    assert bridge.user_config_path() == str(legacy)  # still read until a key is saved from the panel
    resp = server.post("/ppinfra/settings/key", {"api_key": SANDBOX_KEY})
    assert resp.status_code == 200
    protected = user / "__ppinfra" / "config.json"
    assert resp.json()["storage"] == str(protected)
    assert json.loads(protected.read_text())["api_key"] == SANDBOX_KEY
    assert "api_key" not in json.loads(legacy.read_text())
    assert bridge.user_config_path() == str(protected)
    assert str(pack_config.load_settings(config_path=bridge.user_config_path()).api_key) == SANDBOX_KEY
    server.post("/ppinfra/settings/remove", {})
    assert "api_key" not in json.loads(protected.read_text())


# --------------------------------------------------------------------------- model lists and search


def test_model_list_route_serves_remote_combo_lists(server, keyless_env):
    names = server.get("/ppinfra/models/lora").json()
    assert isinstance(names, list) and all(isinstance(n, str) for n in names) and names
    assert user_calls(keyless_env) == [] and not [
        r for r in keyless_env.requests if r.path == "/v3/model"
    ]  # no key: cache only
    with_none = server.get("/ppinfra/models/lora?with_none=1").json()
    assert with_none[0] == "None" and with_none[1:] == names
    assert server.get("/ppinfra/models/upscaler").status_code == 400
    assert "family must be" in server.get("/ppinfra/models/lora?family=sd3").json()["error"]


def test_refresh_picks_up_a_model_added_on_the_provider(server, keyless_env):
    from ppinfra.model_info import to_model_info
    from ppinfra.sandbox.catalog import Catalog

    def listed(cat):  # what a node can use, by the name a request sends
        return {
            i.name for i in (to_model_info(m, "lora") for m in cat.query(types=["lora"])) if i is not None
        }

    server.post("/ppinfra/settings/key", {"api_key": SANDBOX_KEY})
    before = server.get("/ppinfra/models/lora?refresh=1").json()
    assert set(before) == listed(keyless_env.catalog)
    keyless_env.catalog = Catalog(
        {"lora": keyless_env.catalog.count("lora") + 25}
    )  # the provider lists new LoRAs
    added = listed(keyless_env.catalog) - set(before)
    assert added
    lora_pages = lambda: len(
        [r for r in keyless_env.requests if r.path == "/v3/model" and r.query.get("filter.types") == "lora"]
    )
    pages = lora_pages()
    plain = server.get("/ppinfra/models/lora").json()
    assert plain == before  # just fetched: a plain GET serves memory, no provider call
    assert lora_pages() == pages
    after = server.get("/ppinfra/models/lora?refresh=1").json()
    assert added <= set(after)


def test_plain_list_request_asks_the_provider_when_the_list_is_old(server, keyless_env, monkeypatch):
    server.post("/ppinfra/settings/key", {"api_key": SANDBOX_KEY})
    vae_pages = lambda: len(
        [r for r in keyless_env.requests if r.path == "/v3/model" and r.query.get("filter.types") == "vae"]
    )
    server.get("/ppinfra/models/vae?refresh=1")
    pages = vae_pages()
    monkeypatch.setattr(catalog, "ROUTE_RECHECK_SECONDS", 0.0)  # as if the list were a minute old
    server.get("/ppinfra/models/vae")
    assert vae_pages() > pages


def test_search_finds_the_detail_lora_among_20000(isolated_env, monkeypatch, server):
    from ppinfra.sandbox import SandboxServer

    with SandboxServer(api_keys=[SANDBOX_KEY], catalog_size={"lora": 20000}) as big:
        monkeypatch.setenv("PPINFRA_BASE_URL", big.base_url)
        monkeypatch.setenv("PPINFRA_API_KEY", SANDBOX_KEY)
        # Nothing cached yet: 200 pages to fetch. The first search asks the provider's own search meanwhile.
        data = server.get("/ppinfra/models/search?type=lora&q=add_detail").json()
        assert data["partial"] is True and data["items"][0]["name"] == "add_detail_44319"
        asked = [r for r in big.requests if r.query.get("filter.query") == "add_detail"]
        assert len(asked) == 1 and asked[0].headers["Authorization"] == f"Bearer {SANDBOX_KEY}"
        item = data["items"][0]
        assert set(item) == {
            "name",
            "display_name",
            "sd_name",
            "tags",
            "base_model",
            "family",
            "cover_url",
            "type",
        }
        assert item["type"] == "lora" and item["family"] in ("sd15", "sdxl", None)
        # The full list lands in the cache in the background; from then on every search is local.
        deadline = time.monotonic() + 120
        while len(server.get("/ppinfra/models/lora").json()) < 15000:  # less archives and unavailable entries
            assert time.monotonic() < deadline, "the background refresh never landed"
            time.sleep(0.5)
        requests_before = len(big.requests)
        for q in ("add_detail", "ADD detail", "add_detail_44319"):
            found = server.get(f"/ppinfra/models/search?type=lora&q={q}&limit=5").json()
            assert found["partial"] is False and found["items"][0]["name"] == "add_detail_44319", q
        first = server.get("/ppinfra/models/search?type=lora&q=detail&limit=10").json()
        assert first["total"] > 100  # every generated "detail_..." LoRA, not just the bundled one
        page2 = server.get("/ppinfra/models/search?type=lora&q=detail&limit=5&offset=5").json()
        assert [i["name"] for i in page2["items"]] == [i["name"] for i in first["items"]][5:]
        sdxl = server.get("/ppinfra/models/search?type=lora&q=detail&family=sdxl&limit=200").json()
        assert (
            all(i["family"] in ("sdxl", None) for i in sdxl["items"]) and 0 < sdxl["total"] < first["total"]
        )
        assert len(big.requests) == requests_before  # local searches never ask the provider
        bad = server.get("/ppinfra/models/search?type=lora&limit=0")
        assert bad.status_code == 400 and "limit must be from 1 to 200, got 0" in bad.json()["error"]


def test_routes_register_on_a_route_table_and_skip_without_comfyui():
    table = web.RouteTableDef()
    routes.register(table)
    paths = {(r.method, r.path) for r in table}
    assert ("POST", "/ppinfra/settings/key") in paths and ("GET", "/ppinfra/models/{type}") in paths
    assert routes.register_with_comfy() is False  # no PromptServer here: nothing registered, nothing raised


def test_the_pack_registers_its_routes_on_a_running_comfyui(monkeypatch):
    """Loading the pack inside ComfyUI (a server with a route table) adds every route, and serves web/."""
    from helpers import ROOT

    table = web.RouteTableDef()
    server_mod = types.ModuleType("server")
    server_mod.PromptServer = type("PromptServer", (), {"instance": types.SimpleNamespace(routes=table)})
    monkeypatch.setitem(sys.modules, "server", server_mod)
    name = "ppinfra_pack_registered"  # a second, fresh import: the shared pack registered nothing
    monkeypatch.setitem(sys.modules, name, None)
    del sys.modules[name]  # absent now, and removed again after the test
    module = load_pack(ROOT, name)
    assert module.WEB_DIRECTORY == "./web" and len(module.NODE_CLASS_MAPPINGS) == 8
    assert {(r.method, r.path) for r in table} == {(m, routes.PREFIX + p) for m, p, _, _ in routes.ROUTES}
