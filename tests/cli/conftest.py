"""Fixtures of the command-line tests (helpers that tests import live in tests/helpers.py)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def cli_env(isolated_env, api_key, monkeypatch):
    """The CLI pointed at a test's sandbox through the environment, as a user would."""
    for name in ("PPINFRA_IMAGES_PER_MINUTE", "PPINFRA_RATE_WINDOW"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PPINFRA_API_KEY", api_key)

    def point_at(sandbox, **extra):
        monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
        for k, v in extra.items():
            monkeypatch.setenv(k, str(v))
        return dict(os.environ)

    return point_at
