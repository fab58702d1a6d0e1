"""Where the client's settings come from: argument, then environment, then config file.

The API key is wrapped so that no repr, log line or exception can show it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

from .errors import ConfigError
from .secrets import remember_secret

# The hosts that serve this API (docs/api.md, "Hosts"): a short name may stand for the URL.
KNOWN_HOSTS = {"ppinfra": "https://api.ppinfra.com", "ppio": "https://api.ppio.com",
               "novita": "https://api.novita.ai"}
DEFAULT_BASE_URL = KNOWN_HOSTS["ppinfra"]
ENV_KEY = "PPINFRA_API_KEY"
ENV_BASE_URL = "PPINFRA_BASE_URL"
ENV_CONFIG = "PPINFRA_CONFIG"
ENV_CACHE_DIR = "PPINFRA_CACHE_DIR"
ENV_DEADLINE = "PPINFRA_DEADLINE"
ENV_IMAGES_PER_MINUTE = "PPINFRA_IMAGES_PER_MINUTE"
ENV_RATE_WINDOW = "PPINFRA_RATE_WINDOW"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Secret(str):
    """A string whose repr and str-formatting in containers never show the value."""

    def __repr__(self) -> str:  # dataclass reprs, tracebacks with locals, debuggers
        return "Secret('***')"


@dataclass(frozen=True)
class Settings:
    """Every client setting. Each can be given as an argument; key and host also by env or file."""

    api_key: Secret = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    # Poll reads are tiny; a short read timeout keeps a cancel from waiting on a stuck socket.
    poll_read_timeout: float = 10.0
    deadline: float = 600.0
    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    # 429: retries and backoff of their own (5, 10, 20, 30, 30 ... s: past a per-minute window).
    rate_limit_retries: int = 7
    rate_limit_backoff: float = 5.0
    rate_limit_backoff_max: float = 30.0
    max_download_bytes: int = 64 * 1024 * 1024
    download_workers: int = 8
    # Pacing (ppinfra/pacing.py): img2img images per window on your plan; None = the plan
    # default (10, base plan) for the provider's hosts, unpaced for a plain-http sandbox; 0 = off.
    images_per_minute: Optional[int] = None
    # The provider's window is a minute; shorter only for tests and benchmarks.
    rate_window: float = 60.0
    # Result cache (ppinfra/result_cache.py): None = env PPINFRA_RESULT_CACHE (on unless 0) and
    # PPINFRA_RESULT_CACHE_MAX_BYTES (default 2 GiB); False switches it off for this client.
    result_cache: Optional[bool] = None
    result_cache_max_bytes: Optional[int] = None


def default_config_path() -> str:
    return os.environ.get(ENV_CONFIG) or os.path.join(os.path.expanduser("~"), ".config", "ppinfra", "config.json")


def default_cache_dir() -> str:
    return os.environ.get(ENV_CACHE_DIR) or os.path.join(os.path.expanduser("~"), ".cache", "ppinfra")


def read_config_file(path: str) -> Dict[str, Any]:
    """The JSON config file as a dict; ``{}`` when it does not exist."""
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read the PPInfra config file {path}: {exc.__class__.__name__}. "
                          'It must be JSON like {"api_key": "sk-...", "base_url": "https://api.ppinfra.com"}.') from None
    if not isinstance(data, dict):
        raise ConfigError(f"The PPInfra config file {path} must hold a JSON object with an \"api_key\" entry.")
    return data


def load_settings(api_key: Optional[str] = None, base_url: Optional[str] = None,
                  config_path: Optional[str] = None, **overrides: Any) -> Settings:
    """Resolve the settings: explicit argument, else environment, else the config file.

    Raises :class:`ConfigError` that says where to put a key when none is found.
    """
    path = config_path or default_config_path()
    file_data: Optional[Dict[str, Any]] = None

    def from_file(name: str) -> Optional[str]:
        nonlocal file_data
        if file_data is None:
            file_data = read_config_file(path)
        value = file_data.get(name)
        return str(value).strip() if value else None

    key = api_key or os.environ.get(ENV_KEY) or from_file("api_key")
    key = (key or "").strip().strip('"').strip("'")
    remember_secret(key)
    if not key:
        raise ConfigError(
            "No PPInfra API key found. In ComfyUI, paste it in Settings > PPInfra (no restart needed); "
            "or set the environment variable PPINFRA_API_KEY (then restart ComfyUI), "
            f'or write {{"api_key": "sk-..."}} to {path}. '
            "Get a key at https://ppinfra.com/settings/key-management. Never put the key in a node widget: "
            "workflows and PNG metadata are shared.")
    url = (base_url or os.environ.get(ENV_BASE_URL) or from_file("base_url") or DEFAULT_BASE_URL).strip().rstrip("/")
    url = KNOWN_HOSTS.get(url.lower(), url)
    parts = urlsplit(url)
    # The key travels in a header: plain http only to this machine (the sandbox).
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)) or not parts.netloc:
        raise ConfigError(f"base_url must be an https:// URL (http:// only for a sandbox on this machine), "
                          f"got {url!r}.")
    if "deadline" not in overrides and os.environ.get(ENV_DEADLINE):
        raw = os.environ[ENV_DEADLINE].strip()
        try:
            overrides["deadline"] = float(raw)
        except ValueError:
            raise ConfigError(f"{ENV_DEADLINE} must be a number of seconds, got {raw!r}.") from None
        if not overrides["deadline"] > 0:
            raise ConfigError(f"{ENV_DEADLINE} must be above 0 seconds, got {raw!r}.")
    # Pacing: the plan's limit may also sit in the config file, next to the key.
    pacing = ((ENV_IMAGES_PER_MINUTE, "images_per_minute", int, "a whole number, 0 or more (0 = no pacing)"),
              (ENV_RATE_WINDOW, "rate_window", float, "a number of seconds above 0"))
    for env, name, kind, rule in pacing:
        raw = os.environ.get(env, "").strip() or (from_file(name) if kind is int else None)
        if name in overrides or not raw:
            continue
        try:
            overrides[name] = kind(raw)
        except ValueError:
            overrides[name] = -1
        if overrides[name] < 0 or (kind is float and overrides[name] == 0):
            raise ConfigError(f"{env} must be {rule}, got {raw!r}.")
    return Settings(api_key=Secret(key), base_url=url, **overrides)
