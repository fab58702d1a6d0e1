"""Where the client's settings come from: argument, then environment, then config file.

The API key is wrapped so that no repr, log line or exception can show it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .errors import ConfigError
from .hosts import (
    DEFAULT_BASE_URL,
    ENV_BASE_URL,  # noqa: F401 - re-exported
    ENV_CONFIG,  # noqa: F401 - re-exported
    ENV_KEY,  # noqa: F401 - re-exported
    KNOWN_HOSTS,  # noqa: F401 - re-exported
    check_base_url,
    default_config_path,
    read_config_file,
    resolve,
)
from .redaction import remember_secret

ENV_CACHE_DIR = "PPINFRA_CACHE_DIR"
ENV_DEADLINE = "PPINFRA_DEADLINE"
ENV_IMAGES_PER_MINUTE = "PPINFRA_IMAGES_PER_MINUTE"
ENV_RATE_WINDOW = "PPINFRA_RATE_WINDOW"


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


def default_cache_dir() -> str:
    return os.environ.get(ENV_CACHE_DIR) or os.path.join(os.path.expanduser("~"), ".cache", "ppinfra")


def load_settings(
    api_key: Optional[str] = None,
    base_url: Optional[str] = None,
    config_path: Optional[str] = None,
    **overrides: Any,
) -> Settings:
    """Resolve the settings: explicit argument, else environment, else the config file.

    Raises :class:`ConfigError` that says where to put a key when none is found.
    """
    path = config_path or default_config_path()
    resolved = resolve(api_key, base_url, config_path=path)
    key = resolved.api_key
    remember_secret(key)
    if not key:
        raise ConfigError(
            "No PPInfra API key found. In ComfyUI, paste it in Settings > PPInfra (no restart needed); "
            "or set the environment variable PPINFRA_API_KEY (then restart ComfyUI), "
            f'or write {{"api_key": "sk-..."}} to {path}. '
            "Get a key at https://ppinfra.com/settings/key-management. Never put the key in a node widget: "
            "workflows and PNG metadata are shared."
        )
    url = check_base_url(resolved.base_url)
    file_data: Optional[Dict[str, Any]] = None

    def from_file(name: str) -> Optional[str]:
        nonlocal file_data
        if file_data is None:
            file_data = read_config_file(path)
        value = file_data.get(name)
        return str(value).strip() if value else None

    if "deadline" not in overrides and os.environ.get(ENV_DEADLINE):
        raw = os.environ[ENV_DEADLINE].strip()
        try:
            overrides["deadline"] = float(raw)
        except ValueError:
            raise ConfigError(f"{ENV_DEADLINE} must be a number of seconds, got {raw!r}.") from None
        if not overrides["deadline"] > 0:
            raise ConfigError(f"{ENV_DEADLINE} must be above 0 seconds, got {raw!r}.")
    # Pacing: the plan's limit may also sit in the config file, next to the key.
    pacing = (
        (ENV_IMAGES_PER_MINUTE, "images_per_minute", int, "a whole number, 0 or more (0 = no pacing)"),
        (ENV_RATE_WINDOW, "rate_window", float, "a number of seconds above 0"),
    )
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
