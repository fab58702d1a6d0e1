"""Input specs read from the limits table: dropdown options for model inputs, numeric widgets,
and the validation that lets a saved model name through.

Lists come from :class:`ppinfra.models.ModelCatalog`: its disk cache, else a
small bundled fallback; never the network while ComfyUI builds its node list.
A stale cache is refreshed in a background thread, so a model added on PPInfra
shows up after the next refresh of ComfyUI's node definitions.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from ..ppinfra.config import ENV_BASE_URL, ENV_KEY, default_cache_dir, default_config_path
from ..ppinfra.limits import LIMITS
from ..ppinfra.models import ModelCatalog

from . import comfy_bridge

log = logging.getLogger("ppinfra")

NONE = "None"
# The types listed in dropdowns (upscaler is not an img2img input).
DROPDOWN_TYPES: Tuple[str, ...] = ("checkpoint", "vae", "lora", "controlnet", "textualinversion")
# How old a cached list may get before a dropdown build triggers a background
# refresh. Short, because a refresh is the only way a new model shows up.
REFRESH_AFTER_SECONDS = 600.0
CHECK_EVERY_SECONDS = 5.0
_last_check = float("-inf")

_catalogs: Dict[Tuple[str, str], ModelCatalog] = {}
_catalogs_lock = threading.Lock()


def _client_factory() -> Any:
    from ..ppinfra.client import PPInfraClient  # deferred: requests is not needed to build dropdowns
    from ..ppinfra.config import load_settings

    return PPInfraClient(settings=load_settings(config_path=comfy_bridge.user_config_path()))


def catalog() -> ModelCatalog:
    """The catalog for the current cache dir and host (one per pair, so its refresh guard holds)."""
    key = (default_cache_dir(), os.environ.get(ENV_BASE_URL, ""))
    with _catalogs_lock:
        cat = _catalogs.get(key)
        if cat is None:
            cat = ModelCatalog(client_factory=_client_factory, cache_dir=key[0], ttl=REFRESH_AFTER_SECONDS)
            _catalogs[key] = cat
        return cat


def _key_configured() -> bool:
    """Whether a key could be found, without reading it: the variable is set or the config file exists."""
    if os.environ.get(ENV_KEY):
        return True
    path = comfy_bridge.user_config_path() or default_config_path()
    return os.path.isfile(path)


def refresh_soon() -> None:
    """Refresh stale lists in the background; never raises, never blocks.

    Every node class calls this from ``INPUT_TYPES``, i.e. several times per
    refresh of ComfyUI's node list: a check is made at most every
    ``CHECK_EVERY_SECONDS``, and not at all without a key (no thread, no log line).
    """
    global _last_check
    now = time.monotonic()
    with _catalogs_lock:
        if now - _last_check < CHECK_EVERY_SECONDS:
            return
        _last_check = now
    try:
        if _key_configured():
            catalog().refresh_in_background(DROPDOWN_TYPES)
    except Exception as exc:
        log.debug("model list refresh not started: %s", exc)


def model_names(model_type: str, with_none: bool = False) -> List[str]:
    """Names for a dropdown of ``model_type`` from the cache or the bundled fallback (no network)."""
    try:
        names = catalog().cached_names(model_type)
    except Exception as exc:  # a broken cache must not hide the node
        log.warning("could not read the PPInfra model list cache: %s", exc)
        names = []
    names = [n for n in names if n != NONE]
    return [NONE, *names] if with_none else names


def check_model_name(field: str, value: Any) -> Any:
    """``True`` or a message for ``VALIDATE_INPUTS``.

    ``None`` means the input is fed by a link (ComfyUI passes ``None`` then):
    it is checked when the node runs. A name missing from today's list is
    accepted on purpose: the server decides whether it exists.
    """
    if value is None:
        return True
    if not isinstance(value, str) or not value.strip():
        return f"{field} must be a model name, got {value!r}"
    return True


def family_of(model_type: str, name: Optional[str]) -> Optional[str]:
    """``"sdxl"``, ``"sd15"`` or ``None`` for a model name, from the cache or the bundled list."""
    if not name:
        return None
    try:
        return catalog().family(model_type, name)
    except Exception:
        return None


# --------------------------------------------------------------------------- widgets

def _tip(field: str, tooltip: str) -> str:
    return tooltip or LIMITS[field].doc


def int_input(field: str, tooltip: str = "", *, min: Optional[int] = None, default: Any = None,
              **extra: Any) -> Tuple[str, Dict[str, Any]]:
    """An INT widget whose range and default come from the limit of ``field`` (``min``/``default`` override)."""
    lim = LIMITS[field]
    spec: Dict[str, Any] = {"default": lim.default if default is None else default,
                            "min": int(lim.widget_min()) if min is None else min,
                            "max": int(lim.widget_max()), "step": 1, "tooltip": _tip(field, tooltip)}
    spec.update(extra)
    return ("INT", spec)


def float_input(field: str, tooltip: str = "", *, step: float = 0.01, **extra: Any) -> Tuple[str, Dict[str, Any]]:
    """A FLOAT widget whose range and default come from the limit of ``field``."""
    lim = LIMITS[field]
    spec: Dict[str, Any] = {"default": float(lim.default), "min": float(lim.widget_min()),
                            "max": float(lim.widget_max()), "step": step, "round": 0.01,
                            "tooltip": _tip(field, tooltip)}
    spec.update(extra)
    return ("FLOAT", spec)


def enum_input(field: str, tooltip: str = "", *, first: Tuple[str, ...] = (), default: Any = None
               ) -> Tuple[List[str], Dict[str, Any]]:
    """A dropdown of the documented values of ``field`` (``first`` entries prepended, e.g. ``none``)."""
    lim = LIMITS[field]
    options = [*first, *lim.options]
    return (options, {"default": default if default is not None else (lim.default or options[0]),
                      "tooltip": _tip(field, tooltip)})


def model_input(model_type: str, tooltip: str, *, with_none: bool = False,
                preferred: Tuple[str, ...] = ()) -> Tuple[List[str], Dict[str, Any]]:
    """A model dropdown from the cached list; its default is the first of ``preferred`` that is listed."""
    names = model_names(model_type, with_none=with_none)
    if not names:
        names = [NONE] if with_none else [""]
    default = next((p for p in preferred if p in names), names[0])
    return (names, {"default": default, "tooltip": tooltip})
