"""Fixtures of the sandbox layer (ppinfra/sandbox/*)."""

from __future__ import annotations

import pytest


@pytest.fixture
def novita_client():
    return pytest.importorskip("novita_client")
