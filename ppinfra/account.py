"""The account as a settings panel or the CLI sees it: where the key is kept, checking it, the balance.

Nothing here returns the key itself: :meth:`Account.status` says whether one is
configured, where it came from and its last four characters. The key file is
written atomically with mode 0600; the ``PPINFRA_API_KEY`` variable still wins
over it, exactly as :func:`ppinfra.config.load_settings` resolves it at run time.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from .config import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_KEY, KNOWN_HOSTS, read_config_file
from .errors import AuthenticationError, ConfigError, NetworkError, PPInfraError, ValidationError
from .redaction import remember_secret

# The hosts that serve the same API (a Novita key works only on Novita, and so on).
HOSTS: Dict[str, str] = KNOWN_HOSTS
KEY_PAGES: Dict[str, str] = {"ppinfra": "https://ppinfra.com/settings/key-management",
                             "ppio": "https://ppio.com/settings/key-management",
                             "novita": "https://novita.ai/settings/key-management"}
CUSTOM = "custom"
CHECK_TIMEOUT = 8.0   # seconds a key check or balance read may take: a settings panel is waiting
BALANCE_TTL = 30.0    # the balance changes only when a task runs: no need to ask on every panel open
_KEY_MIN, _KEY_MAX = 8, 256


@dataclass(frozen=True)
class Balance:
    """``credit_balance`` is the provider's unit: USD x 10,000."""

    credit_balance: int

    @property
    def usd(self) -> float:
        return self.credit_balance / 10000.0

    def to_json(self) -> Dict[str, Any]:
        return {"credit_balance": self.credit_balance, "usd": round(self.usd, 4)}

    def short(self) -> str:
        return f"${self.usd:,.2f}"


def resolve_url(base_url: str) -> str:
    """A base URL as the client uses it: no trailing slash, a short host name (``ppio``) as its URL."""
    url = (base_url or "").strip().rstrip("/")
    return HOSTS.get(url.lower(), url)


def host_name(base_url: str) -> str:
    """``"ppinfra"``, ``"ppio"``, ``"novita"`` or ``"custom"`` for a base URL."""
    url = resolve_url(base_url)
    return next((name for name, known in HOSTS.items() if known == url), CUSTOM)


def host_url(host: Any) -> str:
    """The base URL of a host name; a clear error for anything else."""
    if not isinstance(host, str) or host not in HOSTS:
        raise ValidationError("host", f"one of {', '.join(HOSTS)}", host)
    return HOSTS[host]


def clean_key(api_key: Any) -> str:
    """The pasted key without surrounding blanks or quotes. Errors never quote the key itself."""
    if not isinstance(api_key, str):
        raise ConfigError(f"api_key must be a string, got {type(api_key).__name__}.")
    key = api_key.strip().strip('"').strip("'").strip()
    if not key:
        raise ConfigError("api_key is empty: paste the key from the PPInfra console.")
    if not _KEY_MIN <= len(key) <= _KEY_MAX:
        raise ConfigError(f"api_key must be {_KEY_MIN} to {_KEY_MAX} characters long, got {len(key)}: "
                          "paste the whole key, nothing else.")
    if any(c.isspace() or not c.isprintable() or ord(c) > 126 for c in key):
        raise ConfigError("api_key holds a space, line break or non-ASCII character: paste the key alone.")
    return key


def _no_choice(host: Any) -> bool:
    # A panel showing a host it cannot name (a custom base_url) sends it back as "custom" or nothing.
    return host in (None, "", CUSTOM)


# --------------------------------------------------------------------------- storage

class KeyStore:
    """The JSON file holding ``api_key`` and ``base_url``.

    ``legacy_paths`` are read when ``path`` does not exist yet (a key written by
    hand before the pack had a protected place for it); saving moves the key
    to ``path`` and strips it from them, so one file is ever in charge.
    """

    def __init__(self, path: str, legacy_paths: Sequence[str] = ()) -> None:
        self.path = path
        self.legacy_paths = tuple(p for p in legacy_paths if p and p != path)

    def read_path(self) -> str:
        """The file the settings are read from: ``path``, else the first legacy file that exists."""
        if os.path.isfile(self.path):
            return self.path
        return next((p for p in self.legacy_paths if os.path.isfile(p)), self.path)

    def read(self) -> Dict[str, Any]:
        return read_config_file(self.read_path())

    def update(self, **changes: Optional[str]) -> None:
        """Merge ``changes`` into the file (``None`` deletes an entry); atomic, mode 0600."""
        data = dict(self.read())
        for name, value in changes.items():
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
        _write_private(self.path, data)
        if "api_key" in changes:
            for legacy in self.legacy_paths:
                self._strip_key(legacy)

    def remove_key(self) -> None:
        """Remove the stored key from every file this store reads; the host choice stays."""
        for p in (self.path, *self.legacy_paths):
            self._strip_key(p)

    @staticmethod
    def _strip_key(path: str) -> None:
        if not os.path.isfile(path):
            return
        data = read_config_file(path)
        if "api_key" in data:
            data.pop("api_key")
            _write_private(path, data)


def _write_private(path: str, data: Dict[str, Any]) -> None:
    """Write ``data`` as JSON so that no reader ever sees a half-written file or a world-readable key."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=folder)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------- the provider

def fetch_balance(client: Any, timeout: float = CHECK_TIMEOUT) -> Balance:
    """``GET /v3/user`` with ``client``: the balance, or the client's error (bad key, network, ...)."""
    from .errors import ResponseFormatError
    from .waiting import Deadline

    data = client.transport.call("GET", "/v3/user", endpoint="user", deadline=Deadline(timeout),
                                 read_timeout=timeout)
    raw = data.get("credit_balance") if isinstance(data, dict) else None
    try:
        value = int(str(raw).strip()) if raw is not None and not isinstance(raw, bool) else None
    except ValueError:
        value = None
    if value is None:
        raise ResponseFormatError("user answered without a numeric credit_balance.", endpoint="user")
    return Balance(value)


def check_key(api_key: str, base_url: str, timeout: float = CHECK_TIMEOUT) -> Balance:
    """Ask ``base_url`` whether ``api_key`` works (one quick call, few retries): its balance, or an error."""
    from .client import PPInfraClient

    # A panel is waiting: one retry at most, and the whole check within `timeout`.
    client = PPInfraClient(api_key=api_key, base_url=base_url, max_retries=1, rate_limit_retries=0,
                           deadline=timeout, read_timeout=timeout)
    try:
        return fetch_balance(client, timeout)
    finally:
        client.close()


def explain(exc: PPInfraError, base_url: str) -> str:
    """A failed check as advice for the settings panel (never quotes the key)."""
    where = base_url.split("://", 1)[-1]
    page = KEY_PAGES.get(host_name(base_url), KEY_PAGES["ppinfra"])
    if isinstance(exc, AuthenticationError):
        return (f"{where} refused this key ({exc.reason or 'INVALID_API_KEY'}): check that you copied the whole "
                f"key from {page} and that it belongs to this host.")
    if isinstance(exc, NetworkError):
        return f"Could not reach {where} to check the key: {exc}"
    return f"Checking the key with {where} failed: {exc}"


# --------------------------------------------------------------------------- the account

class Account:
    """Key, host and balance for one key file. Blocking; thread-safe; never returns the key."""

    def __init__(self, store: KeyStore, *, environ: Optional[Mapping[str, str]] = None,
                 check_timeout: float = CHECK_TIMEOUT, balance_ttl: float = BALANCE_TTL) -> None:
        self.store = store
        self._environ = environ
        self.check_timeout = check_timeout
        self.balance_ttl = balance_ttl
        self._lock = threading.Lock()
        self._balances: Dict[Tuple[str, str], Tuple[float, Optional[Balance], Optional[str]]] = {}

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def key(self) -> Tuple[Optional[str], Optional[str]]:
        """``(key, "env"|"file")`` as the nodes resolve it, or ``(None, None)``."""
        env = (self.environ.get(ENV_KEY) or "").strip()
        if env:
            return env, "env"
        stored = str(self.store.read().get("api_key") or "").strip()
        return (stored, "file") if stored else (None, None)

    def base_url(self) -> Tuple[str, str]:
        """``(url, "env"|"file"|"default")``: the variable wins, as in :func:`load_settings`."""
        env = (self.environ.get(ENV_BASE_URL) or "").strip()
        if env:
            return resolve_url(env), "env"
        stored = str(self.store.read().get("base_url") or "").strip()
        return (resolve_url(stored), "file") if stored else (DEFAULT_BASE_URL, "default")

    def _check_url(self, host: Optional[str]) -> str:
        # PPINFRA_BASE_URL wins at run time, so a key is checked where it will be used.
        url, source = self.base_url()
        return url if source == "env" or _no_choice(host) else host_url(host)

    # -- balance -------------------------------------------------------------
    def balance(self, refresh: bool = False) -> Tuple[Optional[Balance], Optional[str]]:
        """The configured key's balance (cached ``balance_ttl`` s) and an error text, never raises."""
        key, _ = self.key()
        if not key:
            return None, None
        url, _ = self.base_url()
        slot = (hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], url)
        with self._lock:
            hit = self._balances.get(slot)
        if hit is not None and not refresh and time.monotonic() - hit[0] < self.balance_ttl:
            return hit[1], hit[2]
        try:
            found, error = check_key(key, url, self.check_timeout), None
        except PPInfraError as exc:
            found, error = None, explain(exc, url)
        self.remember_balance(key, url, found, error)
        return found, error

    def remember_balance(self, key: str, url: str, found: Optional[Balance], error: Optional[str] = None) -> None:
        slot = (hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], url)
        with self._lock:
            self._balances[slot] = (time.monotonic(), found, error)

    # -- what a panel shows and does -------------------------------------------
    def status(self, *, with_balance: bool = True, refresh: bool = False) -> Dict[str, Any]:
        """What a settings panel may show: never the key, only its source and last 4 characters."""
        key, source = self.key()
        url, url_source = self.base_url()
        found, error = self.balance(refresh) if with_balance else (None, None)
        return {"configured": bool(key), "source": source, "host": host_name(url), "base_url": url,
                "base_url_source": url_source, "hosts": dict(HOSTS),
                "last4": key[-4:] if key and len(key) >= _KEY_MIN else None,
                "env_overrides": bool((self.environ.get(ENV_KEY) or "").strip()),
                "storage": self.store.path, "balance": found.to_json() if found else None,
                "balance_error": error}

    def test(self, api_key: Optional[str] = None, host: Optional[str] = None) -> Dict[str, Any]:
        """Check a key (default: the configured one) without saving anything."""
        url = self._check_url(host)
        try:
            key = clean_key(api_key) if api_key is not None else self.key()[0]
            if not key:
                raise ConfigError("No key is set: paste one first.")
            remember_secret(key)
            found = check_key(key, url, self.check_timeout)
        except ConfigError as exc:
            return {"ok": False, "balance": None, "error": str(exc)}
        except PPInfraError as exc:
            return {"ok": False, "balance": None, "error": explain(exc, url)}
        self.remember_balance(key, url, found)
        return {"ok": True, "balance": found.to_json(), "error": None}

    def set_key(self, api_key: Any, host: Optional[str] = None) -> Dict[str, Any]:
        """Check ``api_key`` on the host it will be used with, then store it (and the host).

        Raises :class:`ConfigError` (bad input) or :class:`AccountCheckError`
        (refused, unreachable); a key that fails is never written.
        """
        key = clean_key(api_key)
        remember_secret(key)
        url = self._check_url(host)
        try:
            found = check_key(key, url, self.check_timeout)
        except PPInfraError as exc:
            raise AccountCheckError(explain(exc, url) + " The key was not saved.") from None
        changes: Dict[str, Optional[str]] = {"api_key": key}
        if not _no_choice(host):
            changes["base_url"] = host_url(host)
        self.store.update(**changes)
        self.remember_balance(key, url, found)
        return self.status()

    def set_host(self, host: Any) -> Dict[str, Any]:
        self.store.update(base_url=host_url(host))
        return self.status()

    def remove_key(self) -> Dict[str, Any]:
        self.store.remove_key()
        return self.status()


class AccountCheckError(ConfigError):
    """The provider refused a key, or could not be asked: the message says which and what to do."""
