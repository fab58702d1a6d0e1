"""What the editor's routes refuse (nodes/routes.py): DNS rebinding, same-site pages, bodies that are not
JSON, and a key checked anywhere but where it will be used. Real sockets, the sandbox as the provider."""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import pytest
import requests

from helpers import PACK_NAME, SANDBOX_KEY

ROUTES = [  # every route, as the editor calls it
    ("get", "/ppinfra/settings", None),
    ("post", "/ppinfra/settings/key", {"api_key": SANDBOX_KEY}),
    ("post", "/ppinfra/settings/test", {"api_key": SANDBOX_KEY}),
    ("post", "/ppinfra/settings/host", {"host": "novita"}),
    ("post", "/ppinfra/settings/remove", {}),
    ("get", "/ppinfra/models/lora", None),
    ("get", "/ppinfra/models/search?type=lora&q=detail", None),
]
ROUTE_IDS = [f"{m.upper()} {p.split('?')[0]}" for m, p, _ in ROUTES]


def pack(name: str) -> Any:
    return importlib.import_module(f"{PACK_NAME}.{name}")


def config_file() -> str:
    return os.environ["PPINFRA_CONFIG"]


def send(server, method: str, path: str, body: Any, host: str, **headers: str) -> requests.Response:
    """A request as a page on ``host`` sends it: that name in Host and, for a POST, in Origin."""
    port = server.port
    hdrs = {"Host": f"{host}:{port}", **headers}
    if method == "post":
        hdrs.setdefault("Origin", f"http://{host}:{port}")
        return requests.post(server.origin + path, json=body, headers=hdrs, timeout=30)
    return requests.get(server.origin + path, headers=hdrs, timeout=30)


# --------------------------------------------------------------------------- DNS rebinding


@pytest.mark.parametrize("method, path, body", ROUTES, ids=ROUTE_IDS)
def test_a_rebinding_page_is_refused_on_every_route(server, keyless_env, method, path, body):
    """evil.example resolves to 127.0.0.1: Origin and Host agree, so only the Host name gives it away."""
    KeyStore = pack("ppinfra.account").KeyStore
    KeyStore(config_file()).update(api_key=SANDBOX_KEY)
    before = open(config_file(), encoding="utf-8").read()
    resp = send(
        server,
        method,
        path,
        body,
        "evil.example",
        **{"Sec-Fetch-Site": "same-origin"} if method == "get" else {},
    )
    assert resp.status_code == 403, (resp.status_code, resp.text)
    error = resp.json()["error"]
    assert "'evil.example:" in error and "PPINFRA_ALLOWED_HOSTS" in error
    assert SANDBOX_KEY[-4:] not in resp.text  # not even the last 4 characters
    assert keyless_env.requests == []  # no key check, no model list, no search
    assert open(config_file(), encoding="utf-8").read() == before


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "192.168.1.20", "LOCALHOST"])
def test_addresses_and_localhost_are_served(server, keyless_env, host):
    resp = send(server, "get", "/ppinfra/settings", None, host)
    assert resp.status_code == 200, resp.text
    resp = send(server, "post", "/ppinfra/settings/host", {"host": "ppio"}, host)
    assert resp.status_code == 200 and resp.json()["host"] == "custom"  # PPINFRA_BASE_URL still wins
    assert json.load(open(config_file(), encoding="utf-8")) == {"base_url": "https://api.ppio.com"}


def test_a_name_the_user_allowed_is_served(server, keyless_env, monkeypatch):
    monkeypatch.setenv("PPINFRA_ALLOWED_HOSTS", " comfy.mylan , My-Box:8188,")
    for host in ("comfy.mylan", "my-box", "COMFY.MYLAN."):
        assert send(server, "get", "/ppinfra/settings", None, host).status_code == 200, host
        assert send(server, "post", "/ppinfra/settings/host", {"host": "novita"}, host).status_code == 200, (
            host
        )
    assert send(server, "get", "/ppinfra/settings", None, "evil.mylan").status_code == 403
    assert send(server, "get", "/ppinfra/settings", None, "comfy.mylan.evil.example").status_code == 403


def test_comfyui_listen_name_is_served(server, keyless_env, monkeypatch):
    import sys
    import types

    cli_args = types.ModuleType("comfy.cli_args")
    cli_args.args = types.SimpleNamespace(listen="127.0.0.1,studio.local")
    monkeypatch.setitem(sys.modules, "comfy.cli_args", cli_args)
    assert send(server, "get", "/ppinfra/settings", None, "studio.local").status_code == 200
    assert send(server, "get", "/ppinfra/settings", None, "evil.example").status_code == 403


def test_a_forwarded_host_must_be_allowed_too(server, keyless_env, monkeypatch):
    """Behind a proxy Host is the proxy's upstream address; the name the browser used is X-Forwarded-Host."""
    proxied = {
        "X-Forwarded-Host": f"evil.example:{server.port}",
        "Origin": f"http://evil.example:{server.port}",
    }
    resp = requests.post(
        server.origin + "/ppinfra/settings/host", json={"host": "novita"}, headers=proxied, timeout=30
    )
    assert resp.status_code == 403 and not os.path.exists(config_file())
    monkeypatch.setenv("PPINFRA_ALLOWED_HOSTS", "comfy.mylan")
    proxied = {"X-Forwarded-Host": "comfy.mylan", "Origin": "https://comfy.mylan"}
    resp = requests.post(
        server.origin + "/ppinfra/settings/host", json={"host": "novita"}, headers=proxied, timeout=30
    )
    assert resp.status_code == 200, resp.text


def test_host_check_unit():
    routes = pack("nodes.routes")
    environ = {"PPINFRA_ALLOWED_HOSTS": "comfy.mylan"}
    for ok in ("127.0.0.1:8188", "localhost", "[::1]:8188", "10.0.0.5", "comfy.mylan:8188", "[fe80::1]"):
        assert routes.host_allowed(ok, environ), ok
    for bad in (
        "evil.example:8188",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "",
        "comfy.mylan.example",
        "[::1",
        "a:b:c",
    ):
        assert not routes.host_allowed(bad, environ), bad


# --------------------------------------------------------------------------- promises of the other checks


def test_a_same_site_page_is_refused(server, keyless_env):
    """A page on another port or subdomain of this site (Sec-Fetch-Site: same-site) is not the editor."""
    for method, path, body in ROUTES:
        resp = send(server, method, path, body, "127.0.0.1", **{"Sec-Fetch-Site": "same-site"})
        assert resp.status_code == 403, (path, resp.status_code)
    assert keyless_env.requests == [] and not os.path.exists(config_file())


def test_remove_refuses_a_body_that_is_not_json(server, keyless_env):
    assert server.post("/ppinfra/settings/key", {"api_key": SANDBOX_KEY}).status_code == 200
    form = requests.post(
        server.origin + "/ppinfra/settings/remove",
        data="confirm=1",
        timeout=30,
        headers={"Origin": server.origin, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415 and "Content-Type: application/json" in form.json()["error"]
    plain = requests.post(
        server.origin + "/ppinfra/settings/remove",
        data="{}",
        timeout=30,
        headers={"Origin": server.origin, "Content-Type": "text/plain"},
    )
    assert plain.status_code == 415  # a form or fetch() without preflight can send text/plain cross-origin
    broken = requests.post(
        server.origin + "/ppinfra/settings/remove",
        data=b"{not json",
        timeout=30,
        headers={"Origin": server.origin, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400 and broken.json()["error"] == "The request body is not valid JSON."
    listed = requests.post(
        server.origin + "/ppinfra/settings/remove",
        data=b"[]",
        timeout=30,
        headers={"Origin": server.origin, "Content-Type": "application/json"},
    )
    assert listed.status_code == 400 and "JSON object" in listed.json()["error"]
    assert json.load(open(config_file(), encoding="utf-8"))["api_key"] == SANDBOX_KEY  # still there


def test_a_key_saved_while_the_base_url_variable_is_set_is_checked_on_that_host(
    server, keyless_env, monkeypatch
):
    """The panel picks Novita, but PPINFRA_BASE_URL (the sandbox) is what the nodes will use:
    check it there."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing may reach the real Novita
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    resp = server.post("/ppinfra/settings/key", {"api_key": SANDBOX_KEY, "host": "novita"})
    assert resp.status_code == 200, resp.text
    [check] = [r for r in keyless_env.requests if r.path == "/v3/user"]
    assert check.headers.get("Authorization") == f"Bearer {SANDBOX_KEY}"
    data = resp.json()
    assert data["base_url"] == keyless_env.base_url and data["base_url_source"] == "env"
    # A key the sandbox refuses is refused, whatever the panel picked: the check went to the variable's host.
    wrong = server.post(
        "/ppinfra/settings/key", {"api_key": "sk-valid-on-novita-maybe-0000", "host": "novita"}
    )
    assert wrong.status_code == 400 and keyless_env.base_url.split("://")[1] in wrong.json()["error"]
    assert len([r for r in keyless_env.requests if r.path == "/v3/user"]) == 2
