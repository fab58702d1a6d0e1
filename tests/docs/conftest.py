"""Fixtures of the docs checks."""

from __future__ import annotations

import pytest

from helpers import load_pack


@pytest.fixture(scope="module")
def pack():
    return load_pack()
