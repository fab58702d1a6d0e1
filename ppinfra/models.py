"""The model list: fetched by type from ``GET /v3/model``, cached on disk with an expiry.

The cache lets ComfyUI build its dropdowns without any network call; a small
bundled list stands in when there is neither a key nor a cache.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional

from .config import Settings, default_cache_dir

log = logging.getLogger("ppinfra")

# Used only when there is neither a cache nor a key: well-known public models.
FALLBACK_MODELS: Dict[str, List[tuple]] = {
    "checkpoint": [("dreamshaper_8_93211.safetensors", False),
                   ("realisticVisionV51_v51VAE_94301.safetensors", False),
                   ("sd_xl_base_1.0.safetensors", True),
                   ("juggernautXL_v9Rdphoto2Lightning_285361.safetensors", True)],
    "vae": [("vae-ft-mse-840000-ema-pruned.ckpt", False), ("sdxl_vae.safetensors", True)],
    "lora": [("add_detail_44319", False), ("more_details_59655", False), ("sdxl_lightning_4step_lora", True)],
    "controlnet": [("control_v11p_sd15_canny", False), ("control_v11f1p_sd15_depth", False),
                   ("control_v11p_sd15_openpose", False), ("diffusers_xl_canny_full", True),
                   ("diffusers_xl_depth_full", True)],
    "textualinversion": [("EasyNegative", False), ("badhandv4_16755", False), ("negativeXL_D", True)],
}


@dataclass(frozen=True)
class ModelInfo:
    """One model as this pack uses it: the name to send, its type and family."""

    name: str
    model_type: str
    is_sdxl: Optional[bool]
    base_model: str = ""
    display_name: str = ""


def name_to_send(raw: Dict[str, Any], model_type: str) -> str:
    """The name the img2img request expects for this model (CONTRACT.md, partly inferred)."""
    if model_type == "checkpoint":
        order = ("sd_name", "sd_name_in_api", "model_name", "name")
    else:
        order = ("sd_name_in_api", "model_name", "sd_name", "name")
    for key in order:
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def is_sdxl_of(raw: Dict[str, Any]) -> Optional[bool]:
    """``is_sdxl`` when present, else derived from ``base_model`` ("SDXL 1.0", "SD 1.5")."""
    flag = raw.get("is_sdxl")
    if isinstance(flag, bool):
        return flag
    if isinstance(flag, str) and flag.lower() in ("true", "false"):
        return flag.lower() == "true"
    base = str(raw.get("base_model") or raw.get("base_model_type") or "").upper()
    if "XL" in base or "PONY" in base:
        return True
    if base.startswith("SD 1") or base.startswith("SD1") or "1.5" in base:
        return False
    return None


def to_model_info(raw: Dict[str, Any], model_type: str) -> Optional[ModelInfo]:
    name = name_to_send(raw, model_type)
    if not name:
        return None
    status = raw.get("status")
    if status not in (None, 1, "1", "MODEL_STATUS_AVAILABLE"):
        return None
    t = raw.get("type")
    display = t.get("display_name") if isinstance(t, dict) else ""
    return ModelInfo(name=name, model_type=model_type, is_sdxl=is_sdxl_of(raw),
                     base_model=str(raw.get("base_model") or ""), display_name=str(raw.get("name") or display or ""))


class ModelCatalog:
    """Model lists per type, from a JSON cache on disk, refreshed from the API.

    ``client_factory`` builds a :class:`~ppinfra.client.PPInfraClient` when a
    refresh is needed; it may raise :class:`~ppinfra.errors.ConfigError` when
    there is no key, in which case only the cache and the fallback are used.
    """

    def __init__(self, client_factory: Optional[Callable[[], Any]] = None, cache_dir: Optional[str] = None,
                 ttl: float = 6 * 3600.0, base_url: str = "") -> None:
        self.client_factory = client_factory
        self.cache_dir = cache_dir or default_cache_dir()
        self.ttl = ttl
        self.base_url = base_url
        self._lock = threading.Lock()
        self._refreshing = False

    # -------------------------------------------------------------- disk cache

    def cache_path(self) -> str:
        host = self.base_url or os.environ.get("PPINFRA_BASE_URL", "") or "default"
        tag = hashlib.sha1(host.encode("utf-8")).hexdigest()[:10]
        return os.path.join(self.cache_dir, f"models-{tag}.json")

    def _read_cache(self) -> Dict[str, Any]:
        try:
            with open(self.cache_path(), "r", encoding="utf-8") as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_cache(self, model_type: str, models: List[ModelInfo]) -> None:
        with self._lock:
            data = self._read_cache()
            data[model_type] = {"fetched_at": time.time(), "models": [asdict(m) for m in models]}
            os.makedirs(self.cache_dir, exist_ok=True)
            tmp = self.cache_path() + f".{os.getpid()}.{threading.get_ident()}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, self.cache_path())

    def cached(self, model_type: str) -> Optional[List[ModelInfo]]:
        """The cached list for a type (however old), or ``None``. Never touches the network."""
        entry = self._read_cache().get(model_type)
        if not isinstance(entry, dict) or not isinstance(entry.get("models"), list):
            return None
        out = []
        for m in entry["models"]:
            try:
                out.append(ModelInfo(**m))
            except TypeError:
                continue
        return out

    def is_fresh(self, model_type: str) -> bool:
        entry = self._read_cache().get(model_type)
        return isinstance(entry, dict) and time.time() - float(entry.get("fetched_at") or 0) < self.ttl

    # -------------------------------------------------------------- queries

    def cached_names(self, model_type: str, is_sdxl: Optional[bool] = None) -> List[str]:
        """Names for a dropdown: the cache (however old), else the bundled fallback. No network."""
        models = self.cached(model_type)
        if models is None:
            models = [ModelInfo(n, model_type, x) for n, x in FALLBACK_MODELS.get(model_type, [])]
        names = [m.name for m in models if is_sdxl is None or m.is_sdxl is None or m.is_sdxl == is_sdxl]
        return sorted(dict.fromkeys(names), key=str.lower)

    def list(self, model_type: str, is_sdxl: Optional[bool] = None, refresh: bool = False) -> List[ModelInfo]:
        """The full list of a type from the API (cached for ``ttl`` seconds), optionally one family."""
        models = None if refresh or not self.is_fresh(model_type) else self.cached(model_type)
        if models is None:
            if self.client_factory is None:
                raise RuntimeError("ModelCatalog has no client_factory to fetch with")
            client = self.client_factory()
            try:
                raw = client.list_models_raw(model_type)
            finally:
                close = getattr(client, "close", None)
                if close:
                    close()
            models = [m for m in (to_model_info(r, model_type) for r in raw) if m is not None]
            self._write_cache(model_type, models)
        return [m for m in models if is_sdxl is None or m.is_sdxl == is_sdxl]

    def family(self, model_type: str, name: str) -> Optional[str]:
        """``"sdxl"``, ``"sd15"`` or ``None`` (unknown) for a model name, from cache or fallback."""
        models = self.cached(model_type) or []
        known = {m.name: m.is_sdxl for m in models}
        for n, x in FALLBACK_MODELS.get(model_type, []):
            known.setdefault(n, x)
        flag = known.get(name)
        if flag is None:
            return None
        return "sdxl" if flag else "sd15"

    def refresh_in_background(self, types: Iterable[str] = tuple(FALLBACK_MODELS), force: bool = False) -> bool:
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
