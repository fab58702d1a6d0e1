"""Benchmarks set PPINFRA_* variables for the pack they drive; these put them back as they were."""

from __future__ import annotations

import os
from typing import Dict, Optional


def saved_env(*names: str) -> Dict[str, Optional[str]]:
    """The current values of ``names`` (``None`` for unset), for :func:`restore_env`."""
    return {k: os.environ.get(k) for k in names}


def restore_env(saved: Dict[str, Optional[str]]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
