"""The model catalog as the nodes and the routes see it: one :class:`ModelCatalog` per cache dir and host,
and the scheduler that refreshes it from PPInfra without ever blocking ComfyUI.

Dropdowns and routes read the catalog's in-memory index, which follows the cache
file (a changed file is parsed once, by whoever asks first): nothing here
re-reads the cache per call, and the lists handed out are the same objects
until the file changes (ComfyUI asks for them on every call). A stale cache is
refreshed in a background thread; the routes can also refresh one type while a
user waits, with a deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..ppinfra.config import default_cache_dir
from ..ppinfra.limits import INPAINTING_LIST

if TYPE_CHECKING:  # imported on first use: ComfyUI imports every pack at start, and the catalog can wait
    from ..ppinfra.models import ModelCatalog

log = logging.getLogger("ppinfra")

NONE = "None"
# The types listed in dropdowns (upscaler is not an img2img input).
DROPDOWN_TYPES: Tuple[str, ...] = ("checkpoint", "vae", "lora", "controlnet", "textualinversion")
# How old a cached list may get before a dropdown build triggers a background
# refresh. Short, because a refresh is the only way a new model shows up.
REFRESH_AFTER_SECONDS = 600.0
CHECK_EVERY_SECONDS = 5.0
# A list route asks PPInfra again when its type was fetched longer ago than this:
# the editor's refresh button sends the same plain GET as the first load.
ROUTE_RECHECK_SECONDS = 60.0
ROUTE_REFRESH_TIMEOUT = 10.0
# PPInfra's own search answers a route that has ROUTE_BUDGET (6.5 s) in all: the call ends well before.
SEARCH_TIMEOUT = 4.0
# The Inpaint node's checkpoints (filter.is_inpainting=true), cached under a key of their own.
INPAINTING = INPAINTING_LIST
_last_check = float("-inf")

_catalogs: Dict[Tuple[str, str], ModelCatalog] = {}
_catalogs_lock = threading.Lock()
_refreshes: Dict[Tuple[int, str], threading.Thread] = {}


def _client_factory() -> Any:
    from ..ppinfra.client import PPInfraClient  # deferred: requests is not needed to build dropdowns
    from ..ppinfra.config import load_settings
    from . import comfy_bridge

    return PPInfraClient(settings=load_settings(config_path=comfy_bridge.user_config_path()))


def catalog() -> ModelCatalog:
    """The catalog for the current cache dir and key file (one per pair, so its refresh guard and index hold).

    The catalog itself resolves the host as the client does: ``PPINFRA_BASE_URL``,
    else the host picked in the settings panel (``base_url`` in the key file), else the default.
    """
    from . import comfy_bridge

    key = (default_cache_dir(), comfy_bridge.user_config_path() or "")
    with _catalogs_lock:
        cat = _catalogs.get(key)
        if cat is None:
            from ..ppinfra.models import ModelCatalog

            cat = ModelCatalog(
                client_factory=_client_factory,
                cache_dir=key[0],
                ttl=REFRESH_AFTER_SECONDS,
                config_path=key[1] or None,
            )
            _catalogs[key] = cat
        return cat


def key_configured() -> bool:
    """Whether a key could be found (variable or key file), without keeping it."""
    from .account_panel import (
        account,
    )  # deferred: ComfyUI imports every pack at start, nodes need it only later

    return account().key()[0] is not None


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
        if key_configured():
            catalog().refresh_in_background((*DROPDOWN_TYPES, INPAINTING))
    except Exception as exc:
        log.debug("model list refresh not started: %s", exc)


def refresh_now(
    model_type: str, timeout: float = ROUTE_REFRESH_TIMEOUT, *, max_age: Optional[float] = None
) -> bool:
    """Fetch ``model_type`` from PPInfra, waiting at most ``timeout`` s; ``True`` when the list is current.

    With ``max_age``, nothing is fetched when the cached list is younger than
    that. A refresh that outlasts the wait goes on in the background and lands
    in the cache (the next request sees it); one refresh per type runs at a
    time. Never raises: without a key, or on any failure, the cached list stays.
    """
    if max_age is not None and time.time() - (catalog().fetched_at(model_type) or 0.0) < max_age:
        return True
    if not key_configured():
        return False
    cat = catalog()
    slot = (id(cat), model_type)
    with _catalogs_lock:
        thread = _refreshes.get(slot)
        if thread is None or not thread.is_alive():

            def run() -> None:
                try:
                    cat.list(model_type, refresh=True)
                    names(model_type)  # build the index here, not in the next INPUT_TYPES
                except Exception as exc:  # no key, network: the cached list stays
                    log.info("model list refresh of %s failed: %s", model_type, exc)

            thread = threading.Thread(target=run, name=f"ppinfra-refresh-{model_type}", daemon=True)
            _refreshes[slot] = thread
            thread.start()
    thread.join(timeout)
    return not thread.is_alive()


def names(model_type: str, with_none: bool = False, family: Optional[str] = None) -> List[str]:
    """Sorted names of a type (cache, else the bundled list), optionally ``"None"`` first or one family.

    The same list object until the cache file changes (callers must not modify
    it): ComfyUI's ``INPUT_TYPES`` calls and the routes memoise on it. Never
    touches the network; a broken cache yields no names rather than hiding the node.
    """
    try:
        cat = catalog()
        slot = (id(cat), model_type, with_none, family)
        version = cat.version()
        with _catalogs_lock:
            hit = _names_memo.get(slot)
        if hit is not None and hit[0] == version and hit[1] is cat:
            return hit[2]
        listed = cat.names(model_type, family)
        if with_none:
            listed = [NONE, *(n for n in listed if n != NONE)]
        with _catalogs_lock:
            _names_memo[slot] = (version, cat, listed)
        return listed
    except Exception as exc:
        log.warning("could not read the PPInfra model list cache: %s", exc)
        return [NONE] if with_none else []


_names_memo: Dict[Tuple[int, str, bool, Optional[str]], Tuple[Any, ModelCatalog, List[str]]] = {}
_inpainting_memo: Dict[int, Tuple[List[str], List[str]]] = {}


def inpainting_names() -> List[str]:
    """Inpainting checkpoints: the provider's ``filter.is_inpainting`` list once fetched and not empty,
    else the cached checkpoints whose name says "inpaint" (the usual naming; the filter may be unavailable
    on a host).

    The same list object while its source list is unchanged (see :func:`names`).
    """
    if has_list(INPAINTING):
        filtered = names(INPAINTING)
        if filtered:  # an empty answer (a host without the filter) falls back to the names
            return filtered
    listed = names("checkpoint")
    hit = _inpainting_memo.get(id(listed))
    if hit is None or hit[0] is not listed:
        hit = (listed, [n for n in listed if "inpaint" in n.lower()])
        if len(_inpainting_memo) >= 8:  # old versions of the list (one per host and cache file)
            _inpainting_memo.clear()
        _inpainting_memo[id(listed)] = hit
    return hit[1]


def search(
    model_type: str, query: str = "", family: Optional[str] = None, limit: int = 50, offset: int = 0
) -> Tuple[int, List[Any]]:
    """``(total, page of ModelInfo)`` matching every word of ``query`` in name, ``sd_name``, display name,
    tags."""
    return catalog().search(model_type, query, family=family, limit=limit, offset=offset)


def has_list(model_type: str) -> bool:
    """Whether the cache holds a list of this type (else the bundled fallback is all there is)."""
    try:
        return catalog().fetched_at(model_type) is not None
    except Exception:
        return False


def search_provider(model_type: str, query: str, family: Optional[str] = None, limit: int = 50) -> List[Any]:
    """One page of PPInfra's own search (``filter.query``): for a type whose full list is not cached yet.

    The key stays on this server; the answer is not cached (the full list is
    being fetched meanwhile). Raises the client's errors (no key, network).
    """
    from ..ppinfra.model_info import to_model_info

    client = _client_factory()
    try:
        page = client.model_page(
            model_type,
            query=query,
            page_size=max(1, min(limit, 100)),
            is_sdxl=None if family is None else family == "sdxl",
            timeout=SEARCH_TIMEOUT,
        )
    finally:
        client.close()
    found = [to_model_info(m, model_type) for m in page.models]
    return [m for m in found if m is not None and (family is None or m.family in (None, family))]


def family_of(model_type: str, name: Optional[str]) -> Optional[str]:
    """``"sdxl"``, ``"sd15"`` or ``None`` for a model name, from the cache or the bundled list."""
    if not name:
        return None
    try:
        return catalog().family(model_type, name)
    except Exception:
        return None
