"""Fixtures of the client layer (ppinfra/*)."""
from __future__ import annotations

import pytest


@pytest.fixture
def no_pacing_env(monkeypatch):
    """No images-per-minute setting leaks in from the developer's environment."""
    for name in ("PPINFRA_IMAGES_PER_MINUTE", "PPINFRA_RATE_WINDOW"):
        monkeypatch.delenv(name, raising=False)
