"""The registry of secrets to scrub: every key the client loads is remembered here.

It imports nothing from the package, so the error hierarchy, the config and the
log handler (``logs.py``) can all use it: a key echoed back by a hostile or
broken server is removed from every exception message and log line.
"""

from __future__ import annotations

import sys
import threading
import types

_REGISTRY_MODULE = "_ppinfra_secret_registry"


def _shared_registry() -> types.ModuleType:
    # One registry per process, not per import of this file: ComfyUI imports the pack under
    # its folder's name while the CLI and tests import ``ppinfra``, and the log handler that
    # one copy installed must also scrub the keys the other copy loaded.
    holder = sys.modules.get(_REGISTRY_MODULE)
    if holder is None:
        holder = types.ModuleType(_REGISTRY_MODULE, "Secrets remembered by every copy of ppinfra.redaction.")
        holder.secrets = set()
        holder.lock = threading.Lock()
        holder = sys.modules.setdefault(_REGISTRY_MODULE, holder)
    return holder


_registry = _shared_registry()


def remember_secret(value: str) -> None:
    """Register a secret so :func:`redact` removes it everywhere from now on."""
    if value and len(value) >= 6:
        with _registry.lock:
            _registry.secrets.add(str(value))


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ``***``."""
    with _registry.lock:
        # Longest first: a key that contains another must not be left half-scrubbed.
        secrets = sorted(_registry.secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, "***")
    return text
