"""The registry of secrets to scrub: every key the client loads is remembered here.

It imports nothing from the package, so the error hierarchy, the config and the
logging filter can all use it: a key echoed back by a hostile or broken server
is removed from every exception message and log line.
"""
from __future__ import annotations

import threading

_secrets: set = set()
_lock = threading.Lock()


def remember_secret(value: str) -> None:
    """Register a secret so :func:`redact` removes it everywhere from now on."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(str(value))


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ``***``."""
    with _lock:
        secrets = list(_secrets)
    for s in secrets:
        if s in text:
            text = text.replace(s, "***")
    return text
