"""The key file as the settings panel meets it (nodes/routes.py, nodes/account_panel.py): a folder it cannot
write and a corrupt file each give the panel a JSON error that says what to do, and a corrupt file is
reported once in the log and can be replaced from the panel."""

from __future__ import annotations

import importlib
import json
import logging
import os


from helpers import PACK_NAME, SANDBOX_KEY


def pack(name: str):
    return importlib.import_module(f"{PACK_NAME}.{name}")


def test_a_folder_the_panel_cannot_write_is_a_json_error_naming_it(
    server, keyless_env, monkeypatch, tmp_path
):
    # Tests run as root, where chmod 0500 stops nothing: a path under a regular file fails for everyone.
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    path = blocker / "config.json"
    monkeypatch.setenv("PPINFRA_CONFIG", str(path))
    advice = f"Cannot write {path} (part of the path is a file, not a folder): make its folder writable"
    for route, body in (
        ("/ppinfra/settings/host", {"host": "novita"}),
        ("/ppinfra/settings/key", {"api_key": SANDBOX_KEY}),
    ):
        resp = server.post(route, body)
        assert resp.status_code == 500 and resp.headers["Content-Type"].startswith("application/json"), (
            resp.text
        )
        data = resp.json()
        assert data["ok"] is False and data["error"].startswith(advice), data
        assert "PPINFRA_API_KEY" in data["error"] and "Traceback" not in resp.text
    settings = server.get("/ppinfra/settings")
    assert settings.status_code == 200 and settings.json()["configured"] is False


def test_a_corrupt_key_file_is_logged_once_and_the_panel_replaces_it(server, keyless_env, caplog):
    path = os.environ["PPINFRA_CONFIG"]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"api_key": "sk-half-written')
    account = pack("nodes.account_panel")
    with caplog.at_level(logging.WARNING):
        account.account()
        account.account()
        server.get("/ppinfra/settings")
    warned = [r for r in caplog.records if path in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING, [r.getMessage() for r in caplog.records]
    assert "Settings > PPInfra" in warned[0].getMessage()

    shown = server.get("/ppinfra/settings")
    assert (
        shown.status_code == 400
        and "Saving a key or host in Settings > PPInfra replaces it" in shown.json()["error"]
    )
    saved = server.post("/ppinfra/settings/key", {"api_key": SANDBOX_KEY})
    assert saved.status_code == 200, saved.text
    assert saved.json()["configured"] is True and saved.json()["source"] == "file"
    with open(path, encoding="utf-8") as fh:
        assert json.load(fh) == {"api_key": SANDBOX_KEY}
    folder = os.path.dirname(path)
    [backup] = [n for n in os.listdir(folder) if n.startswith("config.json.corrupt-")]
    with open(os.path.join(folder, backup), encoding="utf-8") as fh:
        assert fh.read() == '{"api_key": "sk-half-written'
    assert server.get("/ppinfra/settings").status_code == 200


def test_a_corrupt_key_file_lets_the_host_be_picked(server, isolated_env, monkeypatch):
    monkeypatch.delenv("PPINFRA_BASE_URL", raising=False)
    path = os.environ["PPINFRA_CONFIG"]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("[1, 2")
    resp = server.post("/ppinfra/settings/host", {"host": "ppio"})
    assert resp.status_code == 200 and resp.json()["host"] == "ppio", resp.text
    with open(path, encoding="utf-8") as fh:
        assert json.load(fh) == {"base_url": "https://api.ppio.com"}
