"""ppinfra/account.py: the key file, the key check and the balance (reused by the routes and the CLI),
and the balance line a node shows after a run. Key checks go to the sandbox's GET /v3/user."""

from __future__ import annotations

import importlib
import json
import os
import stat
import sys
import threading

import pytest

from helpers import PACK_NAME, SANDBOX_KEY, load_pack

from ppinfra.account import HOSTS, Account, Balance, KeyStore, check_key, clean_key, host_name
from ppinfra.errors import AuthenticationError, ConfigError


def test_store_writes_atomically_with_mode_0600(tmp_path):
    path = tmp_path / "deep" / "config.json"
    store = KeyStore(str(path))
    store.update(api_key="sk-abcdefgh-1234", base_url="https://api.novita.ai")
    assert json.loads(path.read_text()) == {
        "api_key": "sk-abcdefgh-1234",
        "base_url": "https://api.novita.ai",
    }
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    store.update(base_url=None)  # None removes an entry, the rest stays
    assert json.loads(path.read_text()) == {"api_key": "sk-abcdefgh-1234"}
    # No temporary file left behind; the lock file beside it is hidden and holds nothing.
    assert sorted(os.listdir(path.parent)) == [".config.json.lock", "config.json"]
    assert (path.parent / ".config.json.lock").read_bytes() == b""


def test_a_world_readable_file_becomes_private_on_the_next_write(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"base_url": "https://api.ppio.com", "other": 1}')
    os.chmod(path, 0o644)
    KeyStore(str(path)).update(api_key="sk-abcdefgh-1234")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text())["other"] == 1  # entries the pack does not manage are kept


def test_legacy_file_is_read_until_a_key_is_saved_and_then_stripped(tmp_path):
    legacy, new = tmp_path / "old.json", tmp_path / "new" / "config.json"
    legacy.write_text('{"api_key": "sk-legacy-key-0000", "base_url": "https://api.novita.ai"}')
    store = KeyStore(str(new), [str(legacy)])
    assert store.read_path() == str(legacy) and store.read()["api_key"] == "sk-legacy-key-0000"
    store.update(api_key="sk-fresh-key-1111")
    assert json.loads(new.read_text()) == {
        "api_key": "sk-fresh-key-1111",
        "base_url": "https://api.novita.ai",
    }
    assert json.loads(legacy.read_text()) == {"base_url": "https://api.novita.ai"}
    store.remove_key()
    assert "api_key" not in json.loads(new.read_text())


@pytest.mark.parametrize(
    "raw, expected", [(' "sk-abcdefgh-1234"\n', "sk-abcdefgh-1234"), ("'sk-abcdefgh'", "sk-abcdefgh")]
)
def test_pasted_keys_are_trimmed(raw, expected):
    assert clean_key(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "sk-a b-cdefgh", "sk-abc", "sk-" + "x" * 300, "sk-ключ-12345678", None]
)
def test_malformed_keys_are_refused_without_quoting_them(raw):
    with pytest.raises(ConfigError) as info:
        clean_key(raw)
    if raw and raw.strip():
        assert raw.strip() not in str(info.value)
    assert "api_key" in str(info.value)


def test_host_names():
    assert (
        host_name("https://api.ppinfra.com/") == "ppinfra" and host_name("https://api.novita.ai") == "novita"
    )
    assert host_name("https://api.ppio.com") == "ppio" and host_name("http://127.0.0.1:9") == "custom"


def test_check_key_reads_the_balance(sandbox):
    balance = check_key(SANDBOX_KEY, sandbox.base_url)
    assert isinstance(balance, Balance) and balance.credit_balance > 0
    assert balance.to_json() == {
        "credit_balance": balance.credit_balance,
        "usd": balance.credit_balance / 10000,
    }
    with pytest.raises(AuthenticationError):
        check_key("sk-not-a-real-key-000000", sandbox.base_url)


def test_balance_reports_the_sandbox_figure_in_dollars(api_key):
    from ppinfra.sandbox import SandboxServer

    with SandboxServer(api_keys=[api_key], credit_balance=123_4500) as srv:
        balance = check_key(api_key, srv.base_url)
    assert balance.credit_balance == 1234500 and balance.usd == 123.45 and balance.short() == "$123.45"


def test_account_status_never_holds_the_key(sandbox, tmp_path):
    env = {"PPINFRA_BASE_URL": sandbox.base_url}
    account = Account(KeyStore(str(tmp_path / "c.json")), environ=env)
    status = account.set_key(SANDBOX_KEY)
    assert status["configured"] and status["source"] == "file" and status["last4"] == SANDBOX_KEY[-4:]
    assert SANDBOX_KEY not in json.dumps(status) and SANDBOX_KEY[:-4] not in json.dumps(status)
    assert status["balance"]["credit_balance"] > 0
    env["PPINFRA_API_KEY"] = "sk-env-key-00009999"
    assert account.status(with_balance=False)["source"] == "env"
    assert account.key() == ("sk-env-key-00009999", "env")


def test_a_refused_key_is_not_written(sandbox, tmp_path):
    path = tmp_path / "c.json"
    account = Account(KeyStore(str(path)), environ={"PPINFRA_BASE_URL": sandbox.base_url})
    with pytest.raises(ConfigError) as info:
        account.set_key("sk-not-a-real-key-000000")
    assert "not saved" in str(info.value) and "sk-not-a-real-key" not in str(info.value)
    assert not path.exists()


def test_an_unreachable_host_is_said_plainly(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    account = Account(
        KeyStore(str(tmp_path / "c.json")),
        environ={"PPINFRA_BASE_URL": f"http://127.0.0.1:{port}"},
        check_timeout=3,
    )
    result = account.test(SANDBOX_KEY)
    assert result["ok"] is False and "Could not reach 127.0.0.1" in result["error"]


# --------------------------------------------------------------------------- after a run


def test_status_line_shows_the_balance_after_a_run(sandbox, isolated_env, status_line):
    load_pack()
    node_account = importlib.import_module(f"{PACK_NAME}.nodes.account_panel")
    from ppinfra.config import load_settings

    settings = load_settings(api_key=SANDBOX_KEY, base_url=sandbox.base_url)
    sent = []
    node_account.show_balance_after_run(settings, "PPInfra: 1 image(s) in 2.0 s", sent.append).join(10)
    assert sent == ["PPInfra: 1 image(s) in 2.0 s · balance $1,000.00"]
    # A failing fetch leaves the line alone and raises nothing.
    bad = load_settings(api_key="sk-not-a-real-key-000000", base_url=sandbox.base_url)
    node_account.show_balance_after_run(bad, "done", sent.append).join(10)
    assert len(sent) == 1


def test_no_balance_fetch_without_a_status_line(sandbox, isolated_env, monkeypatch):
    load_pack()
    node_account = importlib.import_module(f"{PACK_NAME}.nodes.account_panel")
    from ppinfra.config import load_settings

    monkeypatch.setitem(sys.modules, "server", None)  # not inside ComfyUI
    settings = load_settings(api_key=SANDBOX_KEY, base_url=sandbox.base_url)
    assert node_account.show_balance_after_run(settings, "done", lambda t: None) is None
    assert [r for r in sandbox.requests if r.path == "/v3/user"] == []


@pytest.mark.parametrize("host", ["custom", "", None])
def test_a_key_saved_without_a_named_host_keeps_the_stored_host(sandbox, tmp_path, host):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"base_url": sandbox.base_url}))  # a custom host, written by hand
    account = Account(KeyStore(str(path)), environ={})
    status = account.set_key(SANDBOX_KEY, host)
    assert status["host"] == "custom" and status["base_url"] == sandbox.base_url
    assert json.loads(path.read_text()) == {"base_url": sandbox.base_url, "api_key": SANDBOX_KEY}


def test_node_run_ends_with_the_balance_on_its_status_line(sandbox, isolated_env, status_line, monkeypatch):
    import asyncio
    import time

    import torch

    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("PPINFRA_API_KEY", SANDBOX_KEY)
    cls = load_pack().NODE_CLASS_MAPPINGS["PPInfraImg2Img"]
    inputs = {}
    for name, spec in cls.INPUT_TYPES()["required"].items():
        if len(spec) > 1 and "default" in spec[1]:
            inputs[name] = spec[1]["default"]
    inputs.update(image=torch.rand(1, 64, 64, 3), prompt="a lighthouse", seed=3, unique_id="9")
    asyncio.run(cls().generate(**inputs))
    deadline = time.monotonic() + 10
    while not any("balance $" in text for _, text in status_line) and time.monotonic() < deadline:
        time.sleep(0.05)
    last = [text for node_id, text in status_line if node_id == "9"][-1]
    assert last.startswith("PPInfra: 1 image(s) in ") and last.endswith("balance $1,000.00"), last
    assert [r for r in sandbox.requests if r.path == "/v3/user"]


# --------------------------------------------------------------------------- one resolver (issue 14)


def test_account_reads_key_and_host_exactly_as_the_client_does(tmp_path, monkeypatch):
    """Quotes around a pasted key and an upper-case host mean the same to the panel as to a run."""
    from ppinfra.config import load_settings

    path = tmp_path / "c.json"
    path.write_text(
        json.dumps({"api_key": ' "sk-quoted-in-file-1234" ', "base_url": "HTTPS://API.PPIO.COM/"})
    )
    account = Account(KeyStore(str(path)), environ={})
    assert account.key() == ("sk-quoted-in-file-1234", "file")
    assert account.base_url() == ("https://api.ppio.com", "file")
    status = account.status(with_balance=False)
    assert status["host"] == "ppio" and status["last4"] == "1234"
    for name in ("PPINFRA_API_KEY", "PPINFRA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(config_path=str(path))
    assert (str(settings.api_key), settings.base_url) == ("sk-quoted-in-file-1234", "https://api.ppio.com")
    env = {"PPINFRA_API_KEY": "'sk-quoted-in-env-5678'", "PPINFRA_BASE_URL": "Novita"}
    account = Account(KeyStore(str(path)), environ=env)
    assert account.key() == ("sk-quoted-in-env-5678", "env")
    assert account.base_url() == ("https://api.novita.ai", "env")


# --------------------------------------------------------------------------- concurrency and bad disks


def test_a_key_save_racing_a_host_change_keeps_both(tmp_path):
    """Two panels (two stores on one file) saving at the same moment: neither change is lost."""
    path = tmp_path / "c.json"
    hosts = list(HOSTS.values())
    for i in range(40):
        path.write_text(json.dumps({"other": i}))
        key, host = f"sk-round-{i:04d}-abcdef", hosts[i % len(hosts)]
        start = threading.Barrier(2)
        jobs = [
            lambda: KeyStore(str(path)).update(api_key=key),
            lambda: KeyStore(str(path)).update(base_url=host),
        ]
        threads = [threading.Thread(target=lambda job=job: (start.wait(5), job())) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert json.loads(path.read_text()) == {"other": i, "api_key": key, "base_url": host}, f"round {i}"


def test_another_process_writing_the_same_file_loses_nothing(tmp_path):
    """flock on the sidecar lock file: the CLI (another process) and the panel change the file together."""
    import subprocess

    from helpers import ROOT

    path, go = tmp_path / "c.json", tmp_path / "go"
    script = (
        "import os, sys, time\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from ppinfra.account import KeyStore\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.005)\n"
        f"store = KeyStore({str(path)!r})\n"
        "for i in range(60): store.update(**{f'b{i}': 'x'})\n"
    )
    other = subprocess.Popen([sys.executable, "-c", script])
    try:
        store = KeyStore(str(path))
        go.write_text("")
        for i in range(60):
            store.update(**{f"a{i}": "x"})
        assert other.wait(60) == 0
    finally:
        other.kill()
    data = json.loads(path.read_text())
    assert sorted(data) == sorted([f"a{i}" for i in range(60)] + [f"b{i}" for i in range(60)])


def test_an_unwritable_key_file_is_an_error_that_says_what_to_do(tmp_path):
    """Root can write a chmod 0500 folder: a path under a regular file fails for everyone."""
    from ppinfra.account import KeyFileError

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    path = blocker / "config.json"
    store = KeyStore(str(path))
    assert store.read() == {}  # nothing stored there, nothing to read
    with pytest.raises(KeyFileError) as info:
        store.update(base_url="https://api.novita.ai")
    message = str(info.value)
    assert message.startswith(f"Cannot write {path} (part of the path is a file, not a folder): ")
    assert "PPINFRA_API_KEY" in message and "writable" in message
    folder = tmp_path / "config.json"  # the file's name taken by a folder
    folder.mkdir()
    with pytest.raises(KeyFileError, match=r"^Cannot write .*config\.json \(the path is a folder\)"):
        KeyStore(str(folder)).update(api_key="sk-abcdefgh-1234")


def test_a_corrupt_key_file_is_kept_aside_and_replaced(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"api_key": "sk-half-written-')
    store = KeyStore(str(path))
    with pytest.raises(ConfigError, match="Saving a key or host in Settings > PPInfra replaces it"):
        store.read()
    assert "config.json" in store.problem()
    store.update(base_url="https://api.novita.ai")
    assert json.loads(path.read_text()) == {"base_url": "https://api.novita.ai"}
    [backup] = [p for p in tmp_path.iterdir() if p.name.startswith("config.json.corrupt-")]
    assert backup.read_text() == '{"api_key": "sk-half-written-'  # may hold a key: kept, privately
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert store.problem() is None
