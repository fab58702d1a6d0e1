"""Fixtures of the registry checks."""

from __future__ import annotations

import os
import tomllib

import pytest

from helpers import ROOT


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        return tomllib.load(fh)
