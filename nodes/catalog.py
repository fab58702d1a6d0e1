"""The model catalog as the nodes and the routes see it: one :class:`ModelCatalog` per cache dir and host,
and the scheduler that refreshes it from PPInfra without ever blocking ComfyUI.

Dropdowns and routes read the catalog's in-memory lists, which follow the cache
file (a changed file is parsed once, by whoever asks first): nothing here
re-reads the cache per call. A stale cache is refreshed in a background thread;
the routes can also refresh one type while a user waits, with a deadline.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from ..ppinfra.config import default_cache_dir
from ..ppinfra.models import ModelCatalog

from . import account

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
    """The catalog for the current cache dir and host (one per pair, so its refresh guard and lists hold).

    A host picked in the settings panel (``base_url`` in the key file) has a cache
    of its own; ``PPINFRA_BASE_URL`` or the default host are resolved by the catalog.
    """
    url, source = account.account().base_url()
    key = (default_cache_dir(), url if source == "file" else "")
    with _catalogs_lock:
        cat = _catalogs.get(key)
        if cat is None:
            cat = ModelCatalog(client_factory=_client_factory, cache_dir=key[0], ttl=REFRESH_AFTER_SECONDS,
                               base_url=key[1])
            _catalogs[key] = cat
        return cat


def key_configured() -> bool:
    """Whether a key could be found (variable or key file), without keeping it."""
    return account.account().key()[0] is not None


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
            catalog().refresh_in_background(DROPDOWN_TYPES)
    except Exception as exc:
        log.debug("model list refresh not started: %s", exc)


def refresh_now(model_type: str, timeout: float = ROUTE_REFRESH_TIMEOUT, *,
                max_age: Optional[float] = None) -> bool:
    """Fetch ``model_type`` from PPInfra, waiting at most ``timeout`` s; ``True`` when the list is current.

    With ``max_age``, nothing is fetched when the cached list is younger than
    that. A refresh that outlasts the wait goes on in the background and lands
    in the cache (the next request sees it); one refresh per type runs at a
    time. Never raises: without a key, or on any failure, the cached list stays.
    """
    if max_age is not None and time.time() - view().fetched_at(model_type) < max_age:
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
                except Exception as exc:  # no key, network: the cached list stays
                    log.info("model list refresh of %s failed: %s", model_type, exc)

            thread = threading.Thread(target=run, name=f"ppinfra-refresh-{model_type}", daemon=True)
            _refreshes[slot] = thread
            thread.start()
    thread.join(timeout)
    return not thread.is_alive()


def names(model_type: str, with_none: bool = False, family: Optional[str] = None) -> List[str]:
    """Names of a type (cache, else the bundled list), sorted; the same list object until the cache changes.

    Never touches the network. A broken cache must not hide the node: it yields no names.
    """
    try:
        lists = view()
        listed = lists.names(model_type) if family is None else [
            m.name for m in lists.infos(model_type) if _family(m) in (None, family)]
    except Exception as exc:
        log.warning("could not read the PPInfra model list cache: %s", exc)
        listed = []
    if not with_none:
        return listed
    return [NONE, *(n for n in listed if n != NONE)]


def search(model_type: str, query: str = "", family: Optional[str] = None, limit: int = 50,
           offset: int = 0) -> Tuple[int, List[Any]]:
    """``(total, page of ModelInfo)`` matching every word of ``query`` in name, ``sd_name``, display name, tags."""
    return view().search(model_type, query, family=family, limit=limit, offset=offset)


def search_provider(model_type: str, query: str, family: Optional[str] = None,
                    limit: int = 50) -> List[Any]:
    """One page of PPInfra's own search (``filter.query``): for a type whose full list is not cached yet.

    The key stays on this server; the answer is not cached (the full list is
    being fetched meanwhile). Raises the client's errors (no key, network).
    """
    from ..ppinfra.model_info import to_model_info
    from ..ppinfra.waiting import Deadline

    params: Dict[str, Any] = {"filter.types": model_type, "filter.query": query,
                              "pagination.limit": max(1, min(limit, 100)), "pagination.cursor": ""}
    if family is not None:
        params["filter.is_sdxl"] = "true" if family == "sdxl" else "false"
    client = _client_factory()
    try:
        data = client.transport.call("GET", "/v3/model", endpoint="model search", params=params,
                                     deadline=Deadline(ROUTE_REFRESH_TIMEOUT))
    finally:
        client.close()
    raw = data.get("models") if isinstance(data, dict) else None
    found = [to_model_info(m, model_type) for m in raw or [] if isinstance(m, dict)]
    return [m for m in found if m is not None and (family is None or _family(m) in (None, family))]


def family_of(model_type: str, name: Optional[str]) -> Optional[str]:
    """``"sdxl"``, ``"sd15"`` or ``None`` for a model name, from the cache or the bundled list."""
    if not name:
        return None
    try:
        return view().family(model_type, name)
    except Exception:
        return None


def has_list(model_type: str) -> bool:
    """Whether the cache holds a list of this type (else the bundled fallback is all there is)."""
    try:
        return view().has(model_type)
    except Exception:
        return False


def _family(info: Any) -> Optional[str]:
    fam = getattr(info, "family", None)
    if fam is not None or hasattr(type(info), "family"):
        return fam
    flag = getattr(info, "is_sdxl", None)
    return None if flag is None else ("sdxl" if flag else "sd15")


# --------------------------------------------------------------------------- in-memory lists

def view() -> "_Lists":
    """The in-memory lists of the current catalog."""
    cat = catalog()
    with _catalogs_lock:
        lists = _views.get(id(cat))
        if lists is None or lists.cat is not cat:
            lists = _views[id(cat)] = _Lists(cat)
        return lists


_views: Dict[int, "_Lists"] = {}


class _Lists:
    """A catalog's lists in memory, parsed once per version of its cache file.

    The file's identity (mtime, size, inode: one ``stat``, a few microseconds) is
    compared on every call, so a refresh written by any thread or process is
    seen at once, and ``INPUT_TYPES`` never parses the file again in between.
    """

    def __init__(self, cat: ModelCatalog) -> None:
        self.cat = cat
        self._lock = threading.Lock()
        self._sig: Any = ()
        self._raw: Dict[str, Any] = {}
        self._infos: Dict[str, List[Any]] = {}
        self._names: Dict[str, List[str]] = {}
        self._haystacks: Dict[str, List[str]] = {}
        self._families: Dict[str, Dict[str, Optional[str]]] = {}

    def _current(self) -> None:
        try:
            st = os.stat(self.cat.cache_path())
            sig: Any = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            sig = None
        if sig == self._sig:
            return
        raw = self.cat._read_cache() if sig is not None else {}
        self._sig, self._raw = sig, raw
        self._infos, self._names, self._haystacks, self._families = {}, {}, {}, {}

    def fetched_at(self, model_type: str) -> float:
        """When the cached list of a type was fetched (epoch seconds; 0 when never)."""
        with self._lock:
            self._current()
            entry = self._raw.get(model_type)
            try:
                return float(entry.get("fetched_at") or 0) if isinstance(entry, dict) else 0.0
            except (TypeError, ValueError):
                return 0.0

    def has(self, model_type: str) -> bool:
        with self._lock:
            self._current()
            entry = self._raw.get(model_type)
            return isinstance(entry, dict) and isinstance(entry.get("models"), list)

    def infos(self, model_type: str) -> List[Any]:
        with self._lock:
            self._current()
            out = self._infos.get(model_type)
            if out is None:
                entry = self._raw.get(model_type)
                if isinstance(entry, dict) and isinstance(entry.get("models"), list):
                    out = [m for m in (_to_info(d) for d in entry["models"]) if m is not None]
                else:
                    out = _fallback(model_type)
                out = sorted({m.name: m for m in out}.values(), key=lambda m: m.name.lower())
                self._infos[model_type] = out
            return out

    def names(self, model_type: str) -> List[str]:
        # Straight from the parsed JSON: building 50,000 ModelInfo objects would cost
        # the first /object_info after a refresh seconds (search and family build them lazily).
        with self._lock:
            self._current()
            out = self._names.get(model_type)
            if out is None:
                entry = self._raw.get(model_type)
                if isinstance(entry, dict) and isinstance(entry.get("models"), list):
                    found = (d.get("name") for d in entry["models"] if isinstance(d, dict))
                    out = sorted({n for n in found if isinstance(n, str) and n}, key=str.lower)
                else:
                    out = [m.name for m in sorted(_fallback(model_type), key=lambda m: m.name.lower())]
                self._names[model_type] = out
            return out

    def family(self, model_type: str, name: str) -> Optional[str]:
        infos = self.infos(model_type)
        with self._lock:
            fams = self._families.get(model_type)
            if fams is None:
                fams = {m.name: _family(m) for m in _fallback(model_type)}
                fams.update((m.name, _family(m)) for m in infos)
                self._families[model_type] = fams
            return fams.get(name)

    def search(self, model_type: str, query: str = "", family: Optional[str] = None, limit: int = 50,
               offset: int = 0) -> Tuple[int, List[Any]]:
        infos = self.infos(model_type)
        with self._lock:
            hay = self._haystacks.get(model_type)
            if hay is None:
                hay = self._haystacks[model_type] = [" ".join(
                    (m.name, getattr(m, "sd_name", ""), getattr(m, "display_name", ""),
                     *getattr(m, "tags", ()))).lower() for m in infos]
        words = query.lower().split()
        exact, starts, rest = [], [], []
        q = query.strip().lower()
        for m, h in zip(infos, hay):
            if family is not None and _family(m) not in (None, family):
                continue
            if not all(w in h for w in words):
                continue
            low = m.name.lower()
            (exact if low == q else starts if q and low.startswith(q) else rest).append(m)
        found = exact + starts + rest
        return len(found), found[offset:offset + limit]


def _to_info(data: Any) -> Any:
    from ..ppinfra import models

    make = getattr(models.ModelInfo, "from_dict", None)
    if make is not None:
        return make(data)
    try:
        return models.ModelInfo(**data)
    except TypeError:
        return None


def _fallback(model_type: str) -> List[Any]:
    from ..ppinfra import models

    make = getattr(models, "fallback_infos", None)
    if make is not None:
        return make(model_type)
    return [models.ModelInfo(n, model_type, x) for n, x in models.FALLBACK_MODELS.get(model_type, [])]
