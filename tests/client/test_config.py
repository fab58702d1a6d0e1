"""Settings: the provider's hosts by short name, which source wins, a broken config file, the deadline.

The README promises among them (moved from tests/test_readme_promises.py) name their sentence and break."""

from __future__ import annotations

import json

import pytest

from ppinfra.config import KNOWN_HOSTS, load_settings
from ppinfra.errors import ConfigError
from tools.node_driver import pack_module


@pytest.mark.parametrize(
    "name,url",
    [
        ("ppinfra", "https://api.ppinfra.com"),
        ("ppio", "https://api.ppio.com"),
        ("novita", "https://api.novita.ai"),
        (" Novita ", "https://api.novita.ai"),
    ],
)
def test_a_known_host_may_be_given_by_its_short_name(isolated_env, monkeypatch, name, url):
    assert KNOWN_HOSTS[name.strip().lower()] == url
    assert load_settings(api_key="sk-test-123456", base_url=name).base_url == url
    monkeypatch.setenv("PPINFRA_BASE_URL", name)
    assert load_settings(api_key="sk-test-123456").base_url == url


def test_the_config_file_may_name_the_host_too(isolated_env):
    (isolated_env / "config.json").write_text('{"api_key": "sk-test-123456", "base_url": "ppio"}')
    assert load_settings().base_url == "https://api.ppio.com"


def test_an_unknown_short_name_is_refused_as_a_url(isolated_env):
    with pytest.raises(ConfigError, match="https://.*'novitaa'"):
        load_settings(api_key="sk-test-123456", base_url="novitaa")


# --------------------------------------------------------------------------- README promises: settings


def test_the_base_url_variable_wins_over_the_config_file(isolated_env, monkeypatch):
    """docs/settings.md, "The API key": "The environment variable wins over the file."
    (the host as well as the key).

    Break: load_settings reads the file's base_url before PPINFRA_BASE_URL.
    """
    from ppinfra.config import load_settings

    (isolated_env / "config.json").write_text(
        json.dumps({"api_key": "sk-from-file-123", "base_url": "https://api.novita.ai"})
    )
    assert load_settings().base_url == "https://api.novita.ai"
    monkeypatch.setenv("PPINFRA_BASE_URL", "ppio")
    assert load_settings().base_url == "https://api.ppio.com"
    # An argument (the CLI's --base-url, the node's host setting) still wins over both.
    assert load_settings(base_url="https://api.ppinfra.com").base_url == "https://api.ppinfra.com"


@pytest.mark.parametrize("content", ['{"api_key": "sk-abc123456",}', "api_key = sk-abc123456", "\x00\x01"])
def test_a_config_file_that_is_not_json_is_a_config_error_naming_the_file(isolated_env, content):
    """docs/troubleshooting.md, errors table: "ConfigError: ... the config file is not valid JSON".

    Break: read_config_file lets ValueError (json.JSONDecodeError) escape raw.
    """
    from ppinfra.config import load_settings
    from ppinfra.errors import ConfigError

    path = isolated_env / "config.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(path) in str(info.value) and "JSON" in str(info.value)
    assert "sk-abc123456" not in str(info.value)  # the file's text is not quoted back


def test_the_deadline_is_600_seconds_unless_ppinfra_deadline_says_otherwise(env, monkeypatch):
    """docs/troubleshooting.md, errors table: "TaskTimeoutError: ...
    (600 s by default, ...) Set PPINFRA_DEADLINE (seconds)".

    Checked on the client the Img2Img node builds for itself, not only on load_settings.
    Break: Settings.deadline defaults to 300.
    """
    make_client = pack_module("nodes.generation").make_client
    monkeypatch.delenv("PPINFRA_DEADLINE", raising=False)
    client = make_client()
    try:
        assert client.settings.deadline == 600.0
    finally:
        client.close()
    monkeypatch.setenv("PPINFRA_DEADLINE", "1234.5")
    client = make_client()
    try:
        assert client.settings.deadline == 1234.5
    finally:
        client.close()
