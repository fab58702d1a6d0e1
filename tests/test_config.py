"""Settings: the provider's hosts by short name."""
from __future__ import annotations

import pytest

from ppinfra.config import KNOWN_HOSTS, load_settings
from ppinfra.errors import ConfigError


@pytest.mark.parametrize("name,url", [("ppinfra", "https://api.ppinfra.com"), ("ppio", "https://api.ppio.com"),
                                      ("novita", "https://api.novita.ai"), (" Novita ", "https://api.novita.ai")])
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
