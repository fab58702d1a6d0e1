"""HTTP for the client: one session per client, timeouts on every call, retries by policy.

Two sessions: ``api`` carries the key and talks only to the API host;
``files`` never carries any auth header and fetches the pre-signed result URLs
on the object store.
"""
from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .config import Settings
from .errors import (APIError, AuthenticationError, BadRequestError, DownloadError, InsufficientBalanceError,
                     NetworkError, NotFoundError, PermissionDeniedError, RateLimitError, ResponseFormatError,
                     ServerError)
from .waiting import CancelCheck, Deadline, check_cancel, sleep

log = logging.getLogger("ppinfra")

USER_AGENT = "ComfyUI-PPInfra/0.1 (+https://github.com/ppinfra/ComfyUI-PPInfra)"

# Submitting is not idempotent: only these answers prove the task was not created.
SUBMIT_RETRY_STATUSES = frozenset({429, 503})
IDEMPOTENT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ExpiredURL(Exception):
    """A pre-signed result URL was refused as expired (internal: the client re-polls)."""


class Transport:
    """The HTTP machinery every call shares: submit, poll, model list and downloads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.api = self._session()
        self.files = self._session()
        # Requests run here while the calling thread waits in 50 ms slices: a
        # cancel ends the wait at once even while a server is slow to answer.
        self._io = ThreadPoolExecutor(max_workers=32, thread_name_prefix="ppinfra-http")

    @staticmethod
    def _session() -> requests.Session:
        s = requests.Session()
        s.headers.update({"User-Agent": USER_AGENT})
        # Connection pool sized for a batch of tasks and their concurrent downloads.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        return s

    def close(self) -> None:
        self._io.shutdown(wait=False, cancel_futures=True)
        self.api.close()
        self.files.close()

    def _send(self, session: requests.Session, should_cancel: CancelCheck, task_id: Optional[str],
              method: str, url: str, **kwargs: Any) -> requests.Response:
        """``session.request`` that gives up waiting (and closes the late answer) as soon as cancel is set."""
        if should_cancel is None:
            return session.request(method, url, **kwargs)
        future = self._io.submit(session.request, method, url, **kwargs)
        while True:
            try:
                return future.result(timeout=0.05)
            except FutureTimeout:
                if should_cancel():
                    future.add_done_callback(_close_late_response)
                    check_cancel(should_cancel, task_id)

    # ------------------------------------------------------------------ API calls

    def call(self, method: str, path: str, *, endpoint: str, params: Optional[Dict[str, Any]] = None,
             body: Optional[bytes] = None, idempotent: bool = True, deadline: Optional[Deadline] = None,
             should_cancel: CancelCheck = None, task_id: Optional[str] = None,
             read_timeout: Optional[float] = None) -> Any:
        """One API call with retries; returns the parsed JSON.

        ``idempotent=False`` (a submit) retries only when the server certainly
        did not start the work: 429, 503, or a connection that never opened.
        """
        st = self.settings
        url = st.base_url + path
        headers = {"Authorization": f"Bearer {st.api_key}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        deadline = deadline or Deadline(st.deadline)
        attempt = 0
        while True:
            check_cancel(should_cancel, task_id)
            deadline.check(f"calling {endpoint}", task_id)
            timeout = (st.connect_timeout, max(0.5, min(read_timeout or st.read_timeout, deadline.remaining())))
            retry_after: Optional[float] = None
            try:
                resp = self._send(self.api, should_cancel, task_id, method, url, params=params, data=body,
                                  headers=headers, timeout=timeout, allow_redirects=False)
            except (requests.ConnectionError, requests.Timeout) as exc:
                unsent = _never_connected(exc)
                problem = _describe_network_error(exc)
                if (idempotent or unsent) and attempt < st.max_retries:
                    attempt += 1
                    log.info("%s: %s; retry %d/%d", endpoint, problem, attempt, st.max_retries)
                    self._backoff(attempt, None, deadline, should_cancel, task_id)
                    continue
                if not idempotent and not unsent:
                    raise NetworkError(
                        f"{endpoint}: {problem} after the request was sent, so the task may have started and "
                        "may be billed; it was not resubmitted. Check your PPInfra task list before queueing again.",
                        task_id=task_id, endpoint=endpoint) from None
                raise NetworkError(f"{endpoint}: {problem} (after {attempt + 1} attempts). Check your network, "
                                   "proxy (HTTPS_PROXY) and PPINFRA_BASE_URL.", task_id=task_id,
                                   endpoint=endpoint) from None

            if resp.status_code >= 300:
                retryable = resp.status_code in (IDEMPOTENT_RETRY_STATUSES if idempotent else SUBMIT_RETRY_STATUSES)
                limited = resp.status_code == 429
                # Limits are counted in images per minute and no Retry-After is documented:
                # a 429 gets its own, longer budget so a wait can outlast the window.
                budget = st.rate_limit_retries if limited else st.max_retries
                if retryable and attempt < budget:
                    attempt += 1
                    retry_after = _retry_after(resp)
                    if limited and retry_after is None:
                        retry_after = min(st.rate_limit_backoff_max, st.rate_limit_backoff * (2 ** (attempt - 1)))
                    log.info("%s: HTTP %d; retry %d/%d", endpoint, resp.status_code, attempt, budget)
                    resp.close()
                    if retry_after is not None and retry_after > deadline.remaining():
                        raise error_from_response(resp, endpoint, task_id)
                    self._backoff(attempt, retry_after, deadline, should_cancel, task_id)
                    continue
                raise error_from_response(resp, endpoint, task_id)

            try:
                return resp.json()
            except ValueError:
                snippet = resp.text[:80]
                if idempotent and attempt < st.max_retries:
                    attempt += 1
                    log.info("%s: answer is not JSON (%r); retry %d/%d", endpoint, snippet, attempt, st.max_retries)
                    self._backoff(attempt, None, deadline, should_cancel, task_id)
                    continue
                extra = "" if idempotent else " The task may have been created: check your task list before retrying."
                raise ResponseFormatError(f"{endpoint} answered HTTP {resp.status_code} with a body that is not "
                                          f"JSON: {snippet!r}.{extra}", task_id=task_id, endpoint=endpoint) from None

    def _backoff(self, attempt: int, retry_after: Optional[float], deadline: Deadline,
                 should_cancel: CancelCheck, task_id: Optional[str]) -> None:
        st = self.settings
        delay = min(st.backoff_max, st.backoff_base * (2 ** (attempt - 1)))
        delay *= 0.75 + random.random() * 0.5
        if retry_after is not None:
            delay = max(delay, retry_after)
        sleep(delay, should_cancel, deadline, task_id)

    # ------------------------------------------------------------------ downloads

    def download(self, url: str, *, deadline: Deadline, should_cancel: CancelCheck = None,
                 task_id: Optional[str] = None) -> bytes:
        """Fetch one pre-signed result URL with no auth header, a size cap and retries.

        Returns the file as a ``bytearray`` (bytes-like; not copied once more into ``bytes``).

        Raises :class:`ExpiredURL` when the object store refuses the link as expired.
        """
        st = self.settings
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DownloadError(f"Refused to download a result image from {parts.scheme or '?'}:// "
                                "(only http and https URLs are accepted).", task_id=task_id, endpoint="download")
        attempt = 0
        while True:
            check_cancel(should_cancel, task_id)
            deadline.check("downloading the result images", task_id)
            try:
                return self._download_once(url, deadline, should_cancel, task_id)
            except ExpiredURL:
                raise
            except _Retryable as exc:
                if attempt >= st.max_retries:
                    raise DownloadError(f"Could not download a result image: {exc} (after {attempt + 1} attempts).",
                                        task_id=task_id, endpoint="download") from None
                attempt += 1
                log.info("download: %s; retry %d/%d", exc, attempt, st.max_retries)
                self._backoff(attempt, exc.retry_after, deadline, should_cancel, task_id)

    def _download_once(self, url: str, deadline: Deadline, should_cancel: CancelCheck,
                       task_id: Optional[str]) -> bytes:
        st = self.settings
        cap = st.max_download_bytes
        timeout = (st.connect_timeout, max(0.5, min(st.read_timeout, deadline.remaining())))
        try:
            # `files` carries no auth: object stores refuse a second auth mechanism,
            # and the key must never reach another host.
            with self._send(self.files, should_cancel, task_id, "GET", url, stream=True, timeout=timeout,
                            allow_redirects=True) as resp:
                if resp.status_code in (401, 403) and _looks_expired(resp):
                    raise ExpiredURL(url)
                if resp.status_code in (429, 500, 502, 503, 504):
                    raise _Retryable(f"HTTP {resp.status_code} from the image host", _retry_after(resp))
                if resp.status_code != 200:
                    raise DownloadError(f"The image host refused a result image with HTTP {resp.status_code}.",
                                        task_id=task_id, endpoint="download")
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > cap:
                    raise DownloadError(f"A result image is {int(declared)} bytes, over the {cap}-byte cap: "
                                        "refused.", task_id=task_id, endpoint="download")
                # One buffer grown in place: no list of chunks joined into a second copy at the end.
                data = bytearray()
                # read1 returns whatever has arrived, so the deadline and cancel are
                # looked at even while a server drips bytes (read() would wait for a full chunk).
                read = getattr(resp.raw, "read1", None) or resp.raw.read
                while True:
                    # decode_content: a store may gzip the body; the cap counts decoded bytes.
                    chunk = read(1024 * 1024, decode_content=True)
                    if not chunk:
                        break
                    if len(data) + len(chunk) > cap:
                        raise DownloadError(f"A result image grew past the {cap}-byte cap: download stopped.",
                                            task_id=task_id, endpoint="download")
                    data += chunk
                    del chunk
                    check_cancel(should_cancel, task_id)
                    # The read timeout bounds each read, not a server that drips bytes forever.
                    deadline.check("downloading the result images", task_id)
                # Content-Length counts the bytes on the wire, before any Content-Encoding.
                wire = resp.raw.tell() if resp.headers.get("Content-Encoding") else len(data)
                if declared and declared.isdigit() and wire != int(declared):
                    raise _Retryable(f"truncated image ({wire} of {declared} bytes)")
                return data
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retryable(_describe_network_error(exc)) from None
        except (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError, OSError) as exc:
            # Raw reads raise urllib3's own errors: a connection cut mid-body, a read timeout.
            raise _Retryable(f"truncated image: the connection broke off mid-download ({exc.__class__.__name__})") from None


def _close_late_response(future: Any) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


class _Retryable(Exception):
    def __init__(self, text: str, retry_after: Optional[float] = None) -> None:
        super().__init__(text)
        self.retry_after = retry_after


def _looks_expired(resp: requests.Response) -> bool:
    try:
        text = resp.text[:2000].lower()
    except Exception:
        return False
    return "expired" in text or "accessdenied" in text or "signature" in text


def _retry_after(resp: requests.Response) -> Optional[float]:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _never_connected(exc: BaseException) -> bool:
    """True when the connection never opened, so the request cannot have reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen = set()
    cur: Optional[BaseException] = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        name = type(cur).__name__
        if name in ("NewConnectionError", "ConnectTimeoutError", "NameResolutionError", "ConnectionRefusedError"):
            return True
        for arg in getattr(cur, "args", ()):
            if isinstance(arg, BaseException) and id(arg) not in seen:
                if _never_connected(arg):
                    return True
        cur = getattr(cur, "reason", None) or cur.__cause__ or cur.__context__
    return False


def _describe_network_error(exc: BaseException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connecting timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "the server did not answer in time (read timeout)"
    if _never_connected(exc):
        return "could not connect (connection refused or host not found)"
    return "the connection broke (" + exc.__class__.__name__ + ")"


_REASON_CLASSES = {
    "INVALID_API_KEY": AuthenticationError,
    "MISSING_API_KEY": AuthenticationError,
    "BILLING_BALANCE_NOT_ENOUGH": InsufficientBalanceError,
    "NEED_REAL_NAME_VERIFY": PermissionDeniedError,
    "API_NOT_ALLOWED": PermissionDeniedError,
    "FEATURE_NOT_ALLOWED": PermissionDeniedError,
    "RATE_LIMIT_EXCEEDED": RateLimitError,
    "TASK_NOT_FOUND": NotFoundError,
}

_ADVICE = {
    AuthenticationError: "Check PPINFRA_API_KEY (or the config file): the key is wrong, revoked or missing.",
    InsufficientBalanceError: "Top up your PPInfra balance, then queue again.",
    PermissionDeniedError: "Your account may not use this API yet (NEED_REAL_NAME_VERIFY: finish the identity "
                           "verification in the PPInfra console).",
    RateLimitError: "You hit the images-per-minute limit: wait a minute, lower image_num or the batch size.",
    NotFoundError: "The task id is unknown to the server (expired or from another account).",
    BadRequestError: "The server refused the request: fix the field it names.",
    ServerError: "The service had an internal error or is overloaded: try again in a minute.",
}


def error_from_response(resp: requests.Response, endpoint: str, task_id: Optional[str] = None) -> APIError:
    """Map an error answer to the hierarchy, keeping the provider's reason and message."""
    reason, message = "", ""
    try:
        data = resp.json()
        if isinstance(data, dict):
            reason = str(data.get("reason") or "")
            message = str(data.get("message") or data.get("msg") or "")
    except ValueError:
        message = resp.text[:200]
    status = resp.status_code
    cls = _REASON_CLASSES.get(reason)
    if cls is None:
        if status in (401,):
            cls = AuthenticationError
        elif status == 403:
            cls = PermissionDeniedError if reason else AuthenticationError
        elif status == 404:
            cls = NotFoundError
        elif status == 429:
            cls = RateLimitError
        elif status >= 500:
            cls = ServerError
        elif status >= 400:
            cls = BadRequestError
        else:
            cls = APIError
    text = f"{endpoint} failed with HTTP {status}"
    if reason:
        text += f" {reason}"
    if message:
        text += f": {message}"
    advice = _ADVICE.get(cls, "")
    if advice:
        text += f". {advice}"
    return cls(text, task_id=task_id, reason=reason, provider_message=message, status_code=status,
               endpoint=endpoint)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
