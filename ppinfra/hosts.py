"""Which key and which API host: the one resolver every part of the pack asks.

The order is always the same: an explicit argument, then the environment
(``PPINFRA_API_KEY`` / ``PPINFRA_BASE_URL``), then the JSON config file, then
the default host. Config, the account panel, the model lists, pacing, the
progress estimate and the result cache all key on :func:`normalise_base_url`
and :func:`host_label` from here, so two spellings of one host
(``ppio``, ``HTTPS://API.PPIO.COM/``) never split a budget, a cache or a history.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional
from urllib.parse import urlsplit

from .errors import ConfigError

# The hosts that serve this API (docs/api.md, "Hosts"): a short name may stand for the URL.
KNOWN_HOSTS: Dict[str, str] = {
    "ppinfra": "https://api.ppinfra.com",
    "ppio": "https://api.ppio.com",
    "novita": "https://api.novita.ai",
}
DEFAULT_BASE_URL = KNOWN_HOSTS["ppinfra"]
ENV_KEY = "PPINFRA_API_KEY"
ENV_BASE_URL = "PPINFRA_BASE_URL"
ENV_CONFIG = "PPINFRA_CONFIG"
CUSTOM = "custom"
SANDBOX = "sandbox"
LOOPBACK_NAMES = ("localhost",)


def default_config_path() -> str:
    return os.environ.get(ENV_CONFIG) or os.path.join(
        os.path.expanduser("~"), ".config", "ppinfra", "config.json"
    )


def strip_quotes(value: Any) -> str:
    """A pasted value without surrounding blanks or quotes (``"sk-..."`` pasted with its quotes)."""
    return str(value or "").strip().strip('"').strip("'").strip()


def normalise_base_url(url: Any) -> str:
    """A base URL as every part of the pack compares it.

    Blanks, quotes and a trailing slash go; a short name (``ppio``) becomes its
    URL; scheme and host are lower-cased. Nothing is validated here (see
    :func:`check_base_url`).
    """
    url = strip_quotes(url).rstrip("/")
    url = KNOWN_HOSTS.get(url.lower(), url)
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"


def is_loopback(hostname: Optional[str]) -> bool:
    """True for this machine: ``localhost`` or a loopback IP literal."""
    if not hostname:
        return False
    if hostname.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """``url`` normalised, or :class:`ConfigError`: https, or plain http only to this machine
    (the sandbox)."""
    url = normalise_base_url(url)
    parts = urlsplit(url)
    # The key travels in a header: plain http only to this machine.
    if (
        not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)))
        or not parts.netloc
    ):
        raise ConfigError(
            f"base_url must be an https:// URL (http:// only for a sandbox on this machine), got {url!r}."
        )
    return url


def host_name(base_url: str) -> str:
    """``"ppinfra"``, ``"ppio"``, ``"novita"`` or ``"custom"`` for a base URL."""
    url = normalise_base_url(base_url)
    return next((name for name, known in KNOWN_HOSTS.items() if known == url), CUSTOM)


def host_label(base_url: str) -> str:
    """A short, stable label for a host: a known host's name, ``sandbox`` for this machine, else the hostname.

    Every local sandbox (any port) shares one label: its histories must never
    shape the estimate for the real service.
    """
    url = normalise_base_url(base_url)
    name = host_name(url)
    if name != CUSTOM:
        return name
    hostname = urlsplit(url).hostname
    if is_loopback(hostname):
        return SANDBOX
    return (hostname or "").lower()


def read_config_file(path: str) -> Dict[str, Any]:
    """The JSON config file as a dict; ``{}`` when it does not exist."""
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"Cannot read the PPInfra config file {path}: {exc.__class__.__name__}. "
            'It must be JSON like {"api_key": "sk-...", "base_url": "https://api.ppinfra.com"}.'
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"The PPInfra config file {path} must hold a JSON object with an \"api_key\" entry."
        )
    return data


@dataclass(frozen=True)
class Resolved:
    """The key (``""`` when none) and base URL, and where each came from (argument, env, file, default)."""

    api_key: str
    key_source: Optional[str]
    base_url: str
    host_source: str

    @property
    def label(self) -> str:
        return host_label(self.base_url)


def resolve(
    api_key: Optional[str] = None,
    base_url: Optional[str] = None,
    *,
    config_path: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    file_data: Optional[Mapping[str, Any]] = None,
    lenient_file: bool = False,
) -> Resolved:
    """Key and host in the pack's one order: argument, environment, config file, default.

    The file is read only when the argument and the environment leave a
    question open. ``file_data`` passes an already-read file. With
    ``lenient_file`` a broken file counts as empty (a dropdown picking a cache
    file must not fail; the run itself reports the file).
    """
    env = os.environ if environ is None else environ
    path = config_path or default_config_path()
    loaded: Optional[Mapping[str, Any]] = file_data

    def from_file(name: str) -> str:
        nonlocal loaded
        if loaded is None:
            try:
                loaded = read_config_file(path)
            except ConfigError:
                if not lenient_file:
                    raise
                loaded = {}
        value = loaded.get(name)
        return strip_quotes(value) if isinstance(value, str) else ""

    key, key_source = strip_quotes(api_key), "argument"
    if not key:
        key, key_source = strip_quotes(env.get(ENV_KEY)), "env"
    if not key:
        key, key_source = from_file("api_key"), "file"
    url, host_source = strip_quotes(base_url), "argument"
    if not url:
        url, host_source = strip_quotes(env.get(ENV_BASE_URL)), "env"
    if not url:
        url, host_source = from_file("base_url"), "file"
    if not url:
        url, host_source = DEFAULT_BASE_URL, "default"
    return Resolved(
        api_key=key,
        key_source=key_source if key else None,
        base_url=normalise_base_url(url),
        host_source=host_source,
    )
