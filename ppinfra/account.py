"""The account as a settings panel or the CLI sees it: where the key is kept, checking it, the balance.

Nothing here returns the key itself: :meth:`Account.status` says whether one is
configured, where it came from and its last four characters. Which key and
which host count is :func:`ppinfra.hosts.resolve`'s answer, the same the client
gets at run time (``PPINFRA_API_KEY`` / ``PPINFRA_BASE_URL`` win over the file).

The key file is changed under one lock (a lock per path in this process, and
``flock`` on a hidden sidecar file against another process such as the CLI),
written atomically with mode 0600. A file that is not valid JSON is kept as
``<name>.corrupt-<time>`` when the panel writes a new one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Tuple

from .errors import AuthenticationError, ConfigError, NetworkError, PPInfraError, ValidationError
from .hosts import (
    CUSTOM,
    ENV_BASE_URL,
    ENV_KEY,
    KNOWN_HOSTS,
    Resolved,
    host_name,  # noqa: F401 - re-exported
    read_config_file,
    resolve,
    strip_quotes,
)
from .redaction import remember_secret

try:  # POSIX: a lock other processes (the CLI, a second ComfyUI) respect too
    import fcntl
except ImportError:  # Windows: the in-process lock only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("ppinfra")

# The hosts that serve the same API (a Novita key works only on Novita, and so on).
HOSTS: Dict[str, str] = KNOWN_HOSTS
KEY_PAGES: Dict[str, str] = {
    "ppinfra": "https://ppinfra.com/settings/key-management",
    "ppio": "https://ppio.com/settings/key-management",
    "novita": "https://novita.ai/settings/key-management",
}
# Seconds a key check or balance read may take, all of it (a slowly dripping answer too):
# a settings panel is waiting, and the editor's route gives up soon after (nodes/routes.py ROUTE_BUDGET).
CHECK_TIMEOUT = 5.0
BALANCE_TTL = 30.0  # the balance changes only when a task runs: no need to ask on every panel open
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


def host_url(host: Any) -> str:
    """The base URL of a host name; a clear error for anything else."""
    if not isinstance(host, str) or host not in HOSTS:
        raise ValidationError("host", f"one of {', '.join(HOSTS)}", host)
    return HOSTS[host]


def clean_key(api_key: Any) -> str:
    """The pasted key without surrounding blanks or quotes. Errors never quote the key itself."""
    if not isinstance(api_key, str):
        raise ConfigError(f"api_key must be a string, got {type(api_key).__name__}.")
    key = strip_quotes(api_key)
    if not key:
        raise ConfigError("api_key is empty: paste the key from the PPInfra console.")
    if not _KEY_MIN <= len(key) <= _KEY_MAX:
        raise ConfigError(
            f"api_key must be {_KEY_MIN} to {_KEY_MAX} characters long, got {len(key)}: "
            "paste the whole key, nothing else."
        )
    if any(c.isspace() or not c.isprintable() or ord(c) > 126 for c in key):
        raise ConfigError("api_key holds a space, line break or non-ASCII character: paste the key alone.")
    return key


def _no_choice(host: Any) -> bool:
    # A panel showing a host it cannot name (a custom base_url) sends it back as "custom" or nothing.
    return host in (None, "", CUSTOM)


# --------------------------------------------------------------------------- storage


class KeyFileError(ConfigError):
    """The key file could not be written (read-only folder, full disk, ...): the message says what to do."""


_path_locks: Dict[str, threading.Lock] = {}
_path_locks_guard = threading.Lock()

# Why a write failed, in the words a user acts on.
_WRITE_PROBLEMS = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOSPC: "disk full",
    getattr(errno, "EDQUOT", -1): "disk quota exceeded",
    errno.ENOTDIR: "part of the path is a file, not a folder",
    errno.EEXIST: "part of the path is a file, not a folder",
    errno.EISDIR: "the path is a folder",
}


def _cannot_write(path: str, exc: OSError) -> KeyFileError:
    why = _WRITE_PROBLEMS.get(exc.errno or 0) or exc.strerror or exc.__class__.__name__
    return KeyFileError(
        f"Cannot write {path} ({why}): make its folder writable (or free some space), "
        f"or set the {ENV_KEY} environment variable instead and restart ComfyUI."
    )


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """Hold ``path``'s lock: one per path in this process, plus ``flock`` on ``.<name>.lock`` beside it."""
    real = os.path.realpath(path)
    with _path_locks_guard:
        lock = _path_locks.setdefault(real, threading.Lock())
    with lock:
        fd = None
        if fcntl is not None:
            folder, name = os.path.split(real)
            os.makedirs(folder, mode=0o700, exist_ok=True)
            fd = os.open(os.path.join(folder, f".{name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


def _unparsable(path: str) -> bool:
    """True when ``path`` can be read but does not hold a JSON object (as opposed to unreadable)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return False
    try:
        return not isinstance(json.loads(raw.decode("utf-8")), dict)
    except ValueError:
        return True


class KeyStore:
    """The JSON file holding ``api_key`` and ``base_url``.

    ``legacy_paths`` are read when ``path`` does not exist yet (a key written by
    hand before the pack had a protected place for it); saving moves the key
    to ``path`` and strips it from them, so one file is ever in charge.
    Every change is a read-change-write under :func:`_locked`: a key saved while
    the host changes keeps both.
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
        """The settings in the file (``{}`` when there is none); :class:`ConfigError` for a broken one."""
        path = self.read_path()
        if not os.path.isfile(path):  # nothing there (or its folder is a file): nothing stored
            return {}
        try:
            return read_config_file(path)
        except ConfigError as exc:
            if not _unparsable(path):
                raise
            raise ConfigError(
                f"{exc} Saving a key or host in Settings > PPInfra replaces it "
                f"(the old file is kept beside it as {os.path.basename(path)}.corrupt-<time>)."
            ) from None

    def problem(self) -> Optional[str]:
        """Why the file cannot be read, or ``None``: for a warning at start-up."""
        try:
            self.read()
        except ConfigError as exc:
            return str(exc)
        return None

    def update(self, **changes: Optional[str]) -> None:
        """Merge ``changes`` into the file (``None`` deletes an entry); atomic, mode 0600.

        Raises :class:`KeyFileError` naming the path when it cannot be written.
        """
        try:
            with _locked(self.path):
                data = dict(self._read_for_change(self.read_path())[0])
                for name, value in changes.items():
                    if value is None:
                        data.pop(name, None)
                    else:
                        data[name] = value
                _write_private(self.path, data)
        except OSError as exc:
            raise _cannot_write(self.path, exc) from None
        if "api_key" in changes:
            for legacy in self.legacy_paths:
                self._strip_key(legacy)

    def remove_key(self) -> None:
        """Remove the stored key from every file this store reads; the host choice stays."""
        for p in (self.path, *self.legacy_paths):
            self._strip_key(p)

    @classmethod
    def _strip_key(cls, path: str) -> None:
        if not os.path.isfile(path):
            return
        try:
            with _locked(path):
                data, was_corrupt = cls._read_for_change(path)
                if "api_key" in data or was_corrupt:  # a corrupt file may hold the key too: it goes
                    data.pop("api_key", None)
                    _write_private(path, data)
        except OSError as exc:
            raise _cannot_write(path, exc) from None

    @staticmethod
    def _read_for_change(path: str) -> Tuple[Dict[str, Any], bool]:
        """The file's settings before a change, and whether it was corrupt (then kept aside,
        counting as empty)."""
        if not os.path.isfile(path):
            return {}, False
        try:
            return dict(read_config_file(path)), False
        except ConfigError:
            if not _unparsable(path):
                raise
        backup = f"{path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
        # It may still hold a key: the copy is as private as the file itself.
        fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            shutil.copyfileobj(src, out)
        log.warning("PPInfra: %s was not valid JSON; kept it as %s and wrote a new one.", path, backup)
        return {}, True


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
    """``GET /v3/user`` with ``client``, all of it within ``timeout`` s: the balance,
    or the client's error."""
    return Balance(client.balance(timeout=timeout))


def check_key(api_key: str, base_url: str, timeout: float = CHECK_TIMEOUT) -> Balance:
    """Ask ``base_url`` whether ``api_key`` works (one quick call, few retries): its balance, or an error."""
    from .client import PPInfraClient
    from .config import Secret, Settings
    from .hosts import check_base_url

    remember_secret(api_key)
    # A panel is waiting: one retry at most, and the whole check within `timeout`. Built from the
    # arguments alone: the key file may be the very thing being replaced (corrupt, unwritable).
    client = PPInfraClient(
        settings=Settings(
            api_key=Secret(api_key),
            base_url=check_base_url(base_url),
            max_retries=1,
            rate_limit_retries=0,
            deadline=timeout,
            read_timeout=timeout,
            result_cache=False,
        )
    )
    try:
        return fetch_balance(client, timeout)
    finally:
        client.close()


def explain(exc: PPInfraError, base_url: str) -> str:
    """A failed check as advice for the settings panel (never quotes the key)."""
    where = base_url.split("://", 1)[-1]
    page = KEY_PAGES.get(host_name(base_url), KEY_PAGES["ppinfra"])
    if isinstance(exc, AuthenticationError):
        return (
            f"{where} refused this key ({exc.reason or 'INVALID_API_KEY'}): check that you copied the whole "
            f"key from {page} and that it belongs to this host."
        )
    if isinstance(exc, NetworkError):
        return f"Could not reach {where} to check the key: {exc}"
    return f"Checking the key with {where} failed: {exc}"


# --------------------------------------------------------------------------- the account


def _slot(key: str, url: str) -> Tuple[str, str]:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], url


class Account:
    """Key, host and balance for one key file. Blocking; thread-safe; never returns the key."""

    def __init__(
        self,
        store: KeyStore,
        *,
        environ: Optional[Mapping[str, str]] = None,
        check_timeout: float = CHECK_TIMEOUT,
        balance_ttl: float = BALANCE_TTL,
    ) -> None:
        self.store = store
        self._environ = environ
        self.check_timeout = check_timeout
        self.balance_ttl = balance_ttl
        self._lock = threading.Lock()
        self._balances: Dict[Tuple[str, str], Tuple[float, Optional[Balance], Optional[str]]] = {}
        self._flights: Dict[Tuple[str, str], threading.Event] = {}

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _resolved(self, *, lenient: bool = False) -> Resolved:
        env = self.environ
        # Both set in the environment: the file is not read at all (as at run time),
        # so a broken one does not matter.
        if strip_quotes(env.get(ENV_KEY)) and strip_quotes(env.get(ENV_BASE_URL)):
            return resolve(environ=env, file_data={})
        try:
            data = self.store.read()
        except ConfigError:
            if not lenient:
                raise
            data = {}  # a corrupt file is about to be replaced (KeyStore.update keeps it aside)
        return resolve(environ=env, file_data=data)

    def key(self) -> Tuple[Optional[str], Optional[str]]:
        """``(key, "env"|"file")`` as the nodes resolve it (blanks and quotes stripped),
        or ``(None, None)``."""
        found = self._resolved()
        return (found.api_key, found.key_source) if found.api_key else (None, None)

    def base_url(self) -> Tuple[str, str]:
        """``(url, "env"|"file"|"default")``: the variable wins, as in :func:`load_settings`."""
        found = self._resolved()
        return found.base_url, found.host_source

    def _check_url(self, host: Optional[str]) -> str:
        # PPINFRA_BASE_URL wins at run time, so a key is checked where it will be used,
        # not where the panel points.
        chosen = None if _no_choice(host) else host_url(host)
        found = self._resolved(lenient=True)
        return found.base_url if found.host_source == "env" or chosen is None else chosen

    # -- balance -------------------------------------------------------------
    def balance(
        self, refresh: bool = False, *, asked_at: Optional[float] = None, resolved: Optional[Resolved] = None
    ) -> Tuple[Optional[Balance], Optional[str]]:
        """The configured key's balance (cached ``balance_ttl`` s) and an error text, never raises.

        ``refresh`` wants an answer newer than ``asked_at`` (``time.monotonic()``,
        default now: a route passes the moment its request arrived). Callers
        asking at the same time share one provider call: ten panels refreshing
        at once cost one ``GET /v3/user``, not ten.
        """
        found = resolved or self._resolved()
        key, url = found.api_key, found.base_url
        if not key:
            return None, None
        slot = _slot(key, url)
        asked = time.monotonic() if asked_at is None else asked_at
        with self._lock:
            hit = self._balances.get(slot)
            if hit is not None and (
                hit[0] >= asked if refresh else time.monotonic() - hit[0] < self.balance_ttl
            ):
                return hit[1], hit[2]
            flight = self._flights.get(slot)
            leader = flight is None
            if leader:
                flight = self._flights[slot] = threading.Event()
        if not leader:
            flight.wait(self.check_timeout + 1.0)  # the leader's own check ends a little past its timeout
            with self._lock:
                hit = self._balances.get(slot)
            if hit is not None and hit[0] >= asked:
                return hit[1], hit[2]
            return None, (
                f"{url.split('://', 1)[-1]} has not answered the balance check within "
                f"{self.check_timeout:g} s; try again in a moment."
            )
        try:
            try:
                balance, error = check_key(key, url, self.check_timeout), None
            except PPInfraError as exc:
                balance, error = None, explain(exc, url)
            self.remember_balance(key, url, balance, error)
        finally:
            with self._lock:
                self._flights.pop(slot, None)
            flight.set()
        return balance, error

    def remember_balance(
        self, key: str, url: str, found: Optional[Balance], error: Optional[str] = None
    ) -> None:
        with self._lock:
            self._balances[_slot(key, url)] = (time.monotonic(), found, error)

    # -- what a panel shows and does -------------------------------------------
    def status(
        self, *, with_balance: bool = True, refresh: bool = False, asked_at: Optional[float] = None
    ) -> Dict[str, Any]:
        """What a settings panel may show: never the key, only its source and last 4 characters."""
        resolved = self._resolved()
        key, url = resolved.api_key, resolved.base_url
        found, error = (
            self.balance(refresh, asked_at=asked_at, resolved=resolved) if with_balance else (None, None)
        )
        return {
            "configured": bool(key),
            "source": resolved.key_source,
            "host": host_name(url),
            "base_url": url,
            "base_url_source": resolved.host_source,
            "hosts": dict(HOSTS),
            "last4": key[-4:] if key and len(key) >= _KEY_MIN else None,
            "env_overrides": bool(strip_quotes(self.environ.get(ENV_KEY))),
            "storage": self.store.path,
            "balance": found.to_json() if found else None,
            "balance_error": error,
        }

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
