"""The model list: fetched by type from ``GET /v3/model``, cached on disk per host, indexed in memory.

The cache lets ComfyUI build its dropdowns without any network call; a small
bundled list stands in when there is neither a key nor a cache. The real list
holds tens of thousands of names, so the cache file is parsed once per change
(its identity and size are checked on each call) and every lookup after that
reads an in-memory index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from .config import default_cache_dir
from .errors import ConfigError
from .limits import INPAINTING_LIST
from .hosts import default_config_path, normalise_base_url, read_config_file, resolve  # noqa: F401 - re-exported
from .model_info import (
    DOCUMENTED_MODELS,  # noqa: F401 - re-exported
    DOCUMENTED_NAMES,  # noqa: F401 - re-exported
    FALLBACK_MODELS,
    SD15,
    SDXL,
    ModelInfo,  # noqa: F401
    fallback_infos,
    family_of_base,  # noqa: F401 - re-exported
    is_sdxl_of,  # noqa: F401 - re-exported
    name_to_send,  # noqa: F401 - re-exported
    to_model_info,
)

log = logging.getLogger("ppinfra")

# Pseudo types cached beside the real ones: (the real type, the filter asked for). The Inpaint node's list
# is the checkpoints with filter.is_inpainting=true (SIBLINGS.md, "Inpainting").
FILTERED_TYPES: Dict[str, Tuple[str, Dict[str, Any]]] = {
    INPAINTING_LIST: ("checkpoint", {"is_inpainting": True}),
}


class _Index:
    """One type's list, ready for lookups: by name, sorted names, lower-case search text."""

    def __init__(self, models: List[ModelInfo], fetched_at: float) -> None:
        self.fetched_at = fetched_at
        self.models = models  # as fetched (the provider's order)
        self.by_name: Dict[str, ModelInfo] = {}
        for m in models:
            self.by_name.setdefault(m.name, m)
        self.sorted = sorted(self.by_name.values(), key=lambda m: (m.name.lower(), m.name))
        self.names = [m.name for m in self.sorted]
        self.text = ["\n".join((m.name, m.sd_name, m.display_name, *m.tags)).lower() for m in self.sorted]
        self._by_family: Dict[Optional[str], List[str]] = {}

    def names_of(self, family: Optional[str]) -> List[str]:
        if family is None:
            return self.names
        if family not in self._by_family:
            self._by_family[family] = [m.name for m in self.sorted if m.family in (None, family)]
        return self._by_family[family]


_FALLBACK: Dict[str, _Index] = {}


def _fallback_index(model_type: str) -> _Index:
    if model_type not in _FALLBACK:
        _FALLBACK[model_type] = _Index(fallback_infos(model_type), 0.0)
    return _FALLBACK[model_type]


class ModelCatalog:
    """Model lists per type, from a JSON cache on disk (one file per API host), refreshed from the API.

    ``client_factory`` builds a :class:`~ppinfra.client.PPInfraClient` when a
    refresh is needed; it may raise :class:`~ppinfra.errors.ConfigError` when
    there is no key, in which case only the cache and the fallback are used.
    The host is ``base_url``, else ``PPINFRA_BASE_URL``, else the ``base_url``
    of the config file at ``config_path``, else the default host: the order the
    client itself resolves it in. ``persist=False`` keeps fetched lists in
    memory only (a throwaway sandbox must not leave a cache file per port).
    """

    def __init__(
        self,
        client_factory: Optional[Callable[[], Any]] = None,
        cache_dir: Optional[str] = None,
        ttl: float = 6 * 3600.0,
        base_url: str = "",
        config_path: Optional[str] = None,
        persist: bool = True,
    ) -> None:
        self.client_factory = client_factory
        self.cache_dir = cache_dir or default_cache_dir()
        self.ttl = ttl
        self.base_url = base_url
        self.config_path = config_path
        self.persist = persist
        self._lock = threading.RLock()
        self._refreshing = False
        self._config_memo: Tuple[Any, Dict[str, Any]] = (None, {})
        self._snap_key: Any = None
        self._raw: Dict[str, Any] = {}
        self._indexes: Dict[str, _Index] = {}
        self._writes = 0

    # -------------------------------------------------------------- which file

    def _config_data(self) -> Dict[str, Any]:
        """The config file's entries, read again only when the file changes (dropdowns ask often)."""
        path = self.config_path or default_config_path()
        try:
            st = os.stat(path)
        except OSError:
            return {}
        key = (path, st.st_mtime_ns, st.st_size)
        if self._config_memo[0] != key:
            try:
                data = read_config_file(path)
            except ConfigError:
                data = {}  # the client reports a broken config file; here it only picks a cache file
            self._config_memo = (key, data)
        return self._config_memo[1]

    def host(self) -> str:
        """The API host whose list this catalog reads and writes (resolved as the client resolves it)."""
        return resolve(
            base_url=self.base_url or None, config_path=self.config_path, file_data=self._config_data()
        ).base_url

    def cache_path(self) -> str:
        tag = hashlib.sha1(self.host().encode("utf-8")).hexdigest()[:10]
        return os.path.join(self.cache_dir, f"models-{tag}.json")

    # -------------------------------------------------------------- disk cache

    def _read_cache(self) -> Dict[str, Any]:
        try:
            with open(self.cache_path(), "r", encoding="utf-8") as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _file_key(self) -> Any:
        if not self.persist:
            return ("memory", self._writes)  # changes on every write, so version() does too
        path = self.cache_path()
        try:
            st = os.stat(path)
        except OSError:
            return (path, None)
        # os.replace gives every write a new inode: with size and mtime, a change is never missed.
        return (path, st.st_ino, st.st_mtime_ns, st.st_size)

    def _snapshot(self) -> Dict[str, Any]:
        """The cache's contents, re-read only when the file changed since the last read."""
        key = self._file_key()
        with self._lock:
            if key != self._snap_key:
                if self.persist:  # in memory only, _write_cache keeps _raw itself
                    self._raw = self._read_cache() if key[1] is not None else {}
                    self._indexes = {}
                self._snap_key = key
            return self._raw

    def _index(self, model_type: str) -> Optional[_Index]:
        raw = self._snapshot()
        with self._lock:
            index = self._indexes.get(model_type)
            if index is None:
                entry = raw.get(model_type)
                if not isinstance(entry, dict) or not isinstance(entry.get("models"), list):
                    return None
                models = [m for m in (ModelInfo.from_dict(d) for d in entry["models"]) if m is not None]
                try:
                    fetched_at = float(entry.get("fetched_at") or 0)
                except (TypeError, ValueError):
                    fetched_at = 0.0
                index = self._indexes[model_type] = _Index(models, fetched_at)
            return index

    def _write_cache(self, model_type: str, models: List[ModelInfo]) -> None:
        entry = {"fetched_at": time.time(), "models": [asdict(m) for m in models]}
        with self._lock:
            if not self.persist:
                self._raw = {**self._raw, model_type: entry}
                self._indexes.pop(model_type, None)
                self._writes += 1
                self._snap_key = ("memory", self._writes)
                return
            data = self._read_cache()  # another process may have written other types meanwhile
            data[model_type] = entry
            os.makedirs(self.cache_dir, exist_ok=True)
            path = self.cache_path()
            tmp = path + f".{os.getpid()}.{threading.get_ident()}.tmp"
            try:
                with open(tmp, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, separators=(",", ":"))
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            self._snap_key, self._raw, self._indexes = None, {}, {}

    def cached(self, model_type: str) -> Optional[List[ModelInfo]]:
        """The cached list for a type (however old), or ``None``. Never touches the network."""
        index = self._index(model_type)
        return None if index is None else list(index.models)

    def is_fresh(self, model_type: str) -> bool:
        index = self._index(model_type)
        return index is not None and time.time() - index.fetched_at < self.ttl

    # -------------------------------------------------------------- lookups (no network)

    def _index_or_fallback(self, model_type: str) -> _Index:
        return self._index(model_type) or _fallback_index(model_type)

    def names(self, model_type: str, family: Optional[str] = None) -> List[str]:
        """Sorted names for a dropdown: the cache (however old), else the bundled fallback.

        ``family`` (``"sd15"``/``"sdxl"``) drops the models certainly of the other family;
        models of unsure family (SD 2.1, Flux, unknown) stay, as they get no family warning either.
        """
        return list(self._index_or_fallback(model_type).names_of(family))

    def info(self, model_type: str, name: str) -> Optional[ModelInfo]:
        """The model of that type sent as ``name``: from the cache, else the bundled list;
        ``None`` if unknown."""
        index = self._index(model_type)
        found = index.by_name.get(name) if index is not None else None
        return found or _fallback_index(model_type).by_name.get(name)

    def search(
        self, model_type: str, query: str = "", family: Optional[str] = None, limit: int = 50, offset: int = 0
    ) -> Tuple[int, List[ModelInfo]]:
        """``(total, page)`` of the models whose name, ``sd_name``,
        display name or tags hold every word of ``query``.

        Case-insensitive. The exact name comes first, then names starting with the
        query, then names containing it, then matches on other fields; each group
        sorted by name. ``family`` filters as in :meth:`names`.
        """
        index = self._index_or_fallback(model_type)
        words = query.lower().split()
        whole = " ".join(words)
        hits: List[Tuple[int, int]] = []
        for i, text in enumerate(index.text):
            if words and not all(w in text for w in words):
                continue
            m = index.sorted[i]
            if family is not None and m.family not in (None, family):
                continue
            low = m.name.lower()
            rank = (
                (0 if low == whole else 1 if low.startswith(whole) else 2 if whole in low else 3)
                if whole
                else 0
            )
            hits.append((rank, i))
        hits.sort()
        offset, limit = max(0, int(offset)), max(0, int(limit))
        return len(hits), [index.sorted[i] for _, i in hits[offset : offset + limit]]

    def cached_names(self, model_type: str, is_sdxl: Optional[bool] = None) -> List[str]:
        """Names for a dropdown (cache, else fallback); with ``is_sdxl``, models of unsure family stay in."""
        index = self._index_or_fallback(model_type)
        if is_sdxl is None:
            return list(index.names)
        return list(index.names_of(SDXL if is_sdxl else SD15))

    def family(self, model_type: str, name: str) -> Optional[str]:
        """``"sdxl"``, ``"sd15"`` or ``None`` (unknown or unsure) for a model name, from cache or fallback."""
        found = self.info(model_type, name)
        return None if found is None else found.family

    def version(self) -> Any:
        """A value that changes whenever the cache file does: for callers that memoise what they derive.

        One ``stat``; nothing is read. (The editor's routes and dropdowns keep their
        JSON and short lists per version, as ComfyUI asks for them on every call.)
        """
        return self._file_key()

    def fetched_at(self, model_type: str) -> Optional[float]:
        """When the cached list of a type was fetched (epoch seconds), or ``None`` when the cache has none."""
        index = self._index(model_type)
        return None if index is None else index.fetched_at

    # -------------------------------------------------------------- fetching

    def list(self, model_type: str, is_sdxl: Optional[bool] = None, refresh: bool = False) -> List[ModelInfo]:
        """The full list of a type from the API (cached for ``ttl`` seconds), optionally one family."""
        models = None if refresh or not self.is_fresh(model_type) else self.cached(model_type)
        if models is None:
            if self.client_factory is None:
                raise RuntimeError("ModelCatalog has no client_factory to fetch with")
            client = self.client_factory()
            try:
                real, flags = FILTERED_TYPES.get(model_type, (model_type, {}))
                raw = client.list_models_raw(real, **flags)
            finally:
                close = getattr(client, "close", None)
                if close:
                    close()
            models = [m for m in (to_model_info(r, real) for r in raw) if m is not None]
            self._write_cache(model_type, models)
        if is_sdxl is None:
            return models
        want = SDXL if is_sdxl else SD15
        return [m for m in models if m.family == want]

    def refresh_in_background(
        self, types: Iterable[str] = tuple(FALLBACK_MODELS), force: bool = False
    ) -> bool:
        """Refresh stale types in a daemon thread; returns False when one is already running."""
        with self._lock:
            if self._refreshing:
                return False
            self._refreshing = True
        todo = [t for t in types if force or not self.is_fresh(t)]

        def run() -> None:
            try:
                for t in todo:
                    self.list(t, refresh=True)
                    self.names(
                        t
                    )  # index the new list here, not in the next dropdown build (seconds at 50,000)
            except Exception as exc:  # a missing key or network problem must not break ComfyUI
                log.info("model list refresh skipped: %s", exc)
            finally:
                with self._lock:
                    self._refreshing = False

        if not todo:
            with self._lock:
                self._refreshing = False
            return True
        threading.Thread(target=run, name="ppinfra-model-refresh", daemon=True).start()
        return True
