"""HTTP for the client: one session per client, timeouts on every call, retries by :mod:`ppinfra.retry`.

Two sessions: ``api`` carries the key and talks only to the API host;
``files`` never carries any auth header and fetches the pre-signed result URLs
on the object store.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, Dict, Optional
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .api_errors import error_from_response
from .config import Settings
from .errors import (
    AnswerTooLargeError,
    APIError,
    DownloadError,
    EndpointNotOfferedError,
    NetworkError,
    NotFoundError,
    ResponseFormatError,
)
from .hosts import is_loopback
from .retry import MALFORMED, NETWORK, RATE_LIMITED, SERVER, Retrier, RetryPolicy, reached_server
from .waiting import Call, CancelCheck

log = logging.getLogger("ppinfra")

USER_AGENT = "ComfyUI-PPInfra/0.1 (+https://github.com/ppinfra/ComfyUI-PPInfra)"

# Submitting is not idempotent: only these answers prove the task was not created.
SUBMIT_RETRY_STATUSES = frozenset({429, 503})
IDEMPOTENT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Same-host redirects an idempotent call follows before giving up.
MAX_REDIRECTS = 3
_BODY_BLOCK = 64 * 1024
_READ_BLOCK = 1024 * 1024
_SLICE = 0.05
# The most an API answer may hold: a submit, a poll or the account fit in a few KB; a model
# page of 100 entries in well under a MB. Anything larger is refused before it fills memory.
MAX_ANSWER_BYTES = 2 * 1024 * 1024
MAX_MODEL_PAGE_BYTES = 16 * 1024 * 1024


class ExpiredURL(Exception):
    """A pre-signed result URL was refused as expired (internal: the client re-polls)."""


class UploadCancelled(Exception):
    """Raised inside the sending thread to stop a body upload half way (internal)."""


class _CancellableBody:
    """A request body read in blocks that looks at cancel before each one.

    requests sends a file-like body block by block (with the Content-Length
    known from ``len``), so a cancel stops the upload between two blocks and
    the half-sent request is closed: the server never receives a whole body.
    """

    def __init__(self, data: bytes, should_cancel: CancelCheck) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._should_cancel = should_cancel

    def __len__(self) -> int:
        return len(self._data)

    def read(self, size: int = -1) -> bytes:
        if self._should_cancel is not None and self._should_cancel():
            raise UploadCancelled("cancelled while uploading the request body")
        if size is None or size < 0:
            size = len(self._data) - self._pos
        size = min(size, _BODY_BLOCK)
        chunk = self._data[self._pos : self._pos + size]
        self._pos += len(chunk)
        return bytes(chunk)

    def __iter__(self):
        while True:
            block = self.read(_BODY_BLOCK)
            if not block:
                return
            yield block


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
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        return s

    def close(self) -> None:
        self._io.shutdown(wait=False, cancel_futures=True)
        self.api.close()
        self.files.close()

    def policy(self, *, idempotent: bool, until_deadline: bool = False) -> RetryPolicy:
        kinds = (RATE_LIMITED, SERVER, NETWORK, MALFORMED) if idempotent else (RATE_LIMITED, SERVER, NETWORK)
        return RetryPolicy.from_settings(self.settings, until_deadline=until_deadline, kinds=kinds)

    def _send(
        self, session: requests.Session, call: Call, method: str, url: str, **kwargs: Any
    ) -> requests.Response:
        """``session.request`` that gives up waiting (and closes the late answer) at cancel or the deadline.

        The request runs in this transport's own pool while the caller waits in
        50 ms slices, so neither a cancel nor the deadline waits on a slow socket.
        """
        future = self._io.submit(session.request, method, url, **kwargs)
        while True:
            try:
                return future.result(timeout=_SLICE)
            except FutureTimeout:
                if call.cancelled() or call.deadline.expired():
                    future.add_done_callback(close_late_response)
                    call.check(f"waiting for {urlsplit(url).path or url}")
            except UploadCancelled:
                call.check("uploading the request")
                raise

    def _read_capped(
        self, resp: requests.Response, call: Call, cap: int, what: str, endpoint: str, doing: str = ""
    ) -> bytearray:
        """The whole body, read as it arrives, within ``cap`` bytes, the deadline and cancel.

        ``read1`` returns whatever has arrived, so a server that drips one byte
        at a time is still stopped by the deadline (a per-read timeout never
        fires while bytes keep coming). Memory stays at ``cap`` at most.
        """
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise AnswerTooLargeError(
                f"{what} is {int(declared)} bytes, over the {cap}-byte cap for {endpoint}: refused unread.",
                task_id=call.task_id,
                endpoint=endpoint,
                status_code=resp.status_code,
            )
        data = bytearray()
        read = getattr(resp.raw, "read1", None) or resp.raw.read
        while True:
            # decode_content: a server may gzip the body; the cap counts decoded bytes.
            chunk = read(min(_READ_BLOCK, cap + 1 - len(data)), decode_content=True)
            if not chunk:
                return data
            data += chunk
            del chunk
            if len(data) > cap:
                raise AnswerTooLargeError(
                    f"{what} grew past the {cap}-byte cap for {endpoint}: reading stopped.",
                    task_id=call.task_id,
                    endpoint=endpoint,
                    status_code=resp.status_code,
                )
            call.check(doing or f"reading {what}")

    # ------------------------------------------------------------------ API calls

    def call(
        self,
        method: str,
        path: str,
        call: Call,
        *,
        endpoint: str,
        params: Optional[Dict[str, Any]] = None,
        body: Optional[bytes] = None,
        idempotent: bool = True,
        read_timeout: Optional[float] = None,
        retrier: Optional[Retrier] = None,
        max_bytes: int = MAX_ANSWER_BYTES,
        on_rate_limited: Optional[Callable[[], object]] = None,
    ) -> Any:
        """One API call with retries; returns the parsed JSON.

        ``idempotent=False`` (a submit) is re-sent only when the server
        certainly did not start the work: 429, 503, or a connection that never
        opened. ``retrier`` lets a caller share one retry state across steps
        (a poll retries a wrong-shaped answer in the same budget). The whole
        call, reading included, ends at ``call``'s deadline; an answer over
        ``max_bytes`` is an :class:`AnswerTooLargeError`.
        """
        st = self.settings
        retrier = retrier or Retrier(
            self.policy(idempotent=idempotent), call, what=endpoint, on_rate_limited=on_rate_limited
        )
        url = st.base_url + path
        headers = {"Authorization": f"Bearer {st.api_key}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        redirects = 0
        while True:
            call.check(
                f"calling {endpoint}"
                + (f" (last problem: {retrier.last_problem})" if retrier.last_problem else "")
            )
            timeout = (
                st.connect_timeout,
                max(0.5, min(read_timeout or st.read_timeout, call.deadline.remaining())),
            )
            data = None if body is None else _CancellableBody(body, call.should_cancel)
            try:
                resp = self._send(
                    self.api,
                    call,
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                )
                with resp:
                    status = resp.status_code
                    if 300 <= status < 400:
                        url = self._redirect_target(resp, url, endpoint, idempotent, redirects, call.task_id)
                        redirects += 1
                        params = None  # the Location carries the query
                        continue
                    raw = self._read_capped(resp, call, max_bytes, f"the {endpoint} answer", endpoint)
            except (requests.ConnectionError, requests.Timeout, urllib3.exceptions.HTTPError) as exc:
                problem = describe_network_error(exc)
                sent = reached_server(exc)
                if (idempotent or not sent) and retrier.retry(NETWORK, problem):
                    continue
                if not idempotent and sent:
                    raise NetworkError(
                        f"{endpoint}: {problem} after the request was sent, so the task may have started and "
                        "may be billed; it was not resubmitted. "
                        "Check your PPInfra task list before queueing again.",
                        task_id=call.task_id,
                        endpoint=endpoint,
                        sent=True,
                    ) from None
                raise NetworkError(
                    f"{endpoint}: {problem} (after {retrier.tries(NETWORK)} attempts). Check your "
                    "network, proxy (HTTPS_PROXY) and the base URL.",
                    task_id=call.task_id,
                    endpoint=endpoint,
                    sent=sent,
                ) from None

            if status >= 400:
                err = error_from_response(resp, endpoint, call.task_id, body=bytes(raw))
                if status == 404 and isinstance(err, NotFoundError) and err.reason != "TASK_NOT_FOUND":
                    err = self._not_offered(err, endpoint) or err
                retryable = status in (IDEMPOTENT_RETRY_STATUSES if idempotent else SUBMIT_RETRY_STATUSES)
                if retryable and isinstance(err, APIError):
                    kind = RATE_LIMITED if status == 429 else SERVER
                    if retrier.retry(kind, f"HTTP {status}", retry_after_seconds(resp)):
                        continue
                raise err

            try:
                return json.loads(bytes(raw))
            except ValueError:
                snippet = bytes(raw[:80]).decode("utf-8", "replace")
                if idempotent and retrier.retry(MALFORMED, f"not JSON: {snippet!r}"):
                    continue
                extra = (
                    ""
                    if idempotent
                    else " The task may have been created: check your task list before retrying."
                )
                raise ResponseFormatError(
                    f"{endpoint} answered HTTP {status} with a body that is not JSON: {snippet!r}.{extra}",
                    task_id=call.task_id,
                    endpoint=endpoint,
                ) from None

    def _not_offered(self, err: APIError, endpoint: str) -> Optional[APIError]:
        """A 404 on a submit of an endpoint this host is not known to serve: say so, and name who does."""
        from .endpoints import ENDPOINTS
        from .hosts import KNOWN_HOSTS, host_name

        name = endpoint.split(" ")[0]
        ep = ENDPOINTS.get(name)
        host = host_name(self.settings.base_url)
        if ep is None or not ep.offered_by or host in ep.offered_by:
            return None
        where = ", ".join(f"{h} ({KNOWN_HOSTS[h]})" for h in ep.offered_by)
        return EndpointNotOfferedError(
            f"{self.settings.base_url} does not offer {ep.label} (HTTP 404 {err.reason or 'API_NOT_FOUND'}). "
            f"It is served by {where}: use a key of that host and set it as the host.",
            status_code=404,
            reason=err.reason,
            provider_message=err.provider_message,
            endpoint=endpoint,
        )

    def _redirect_target(
        self,
        resp: requests.Response,
        url: str,
        endpoint: str,
        idempotent: bool,
        redirects: int,
        task_id: Optional[str],
    ) -> str:
        """Where to go next, only on the same scheme, host and port; anything else is an error.

        The key travels in a header: following a redirect to another host (or
        from https to http) would hand it over unasked, so such a redirect is refused.
        """
        location = resp.headers.get("Location", "")
        target = urljoin(url, location)
        here, there = urlsplit(url), urlsplit(target)
        same = (here.scheme, here.hostname, here.port) == (there.scheme, there.hostname, there.port)
        if not same:
            raise APIError(
                f"{endpoint}: the API answered HTTP {resp.status_code} redirecting to another host "
                f"({there.scheme}://{there.netloc}). The key was not sent there. If that host is the "
                "provider's new address, set it as the base URL yourself.",
                task_id=task_id,
                status_code=resp.status_code,
                endpoint=endpoint,
            )
        if not idempotent or redirects >= MAX_REDIRECTS:
            raise APIError(
                f"{endpoint}: the API answered HTTP {resp.status_code} (a redirect to {there.path}); "
                "not followed for this request. Check the base URL.",
                task_id=task_id,
                status_code=resp.status_code,
                endpoint=endpoint,
            )
        return target

    # ------------------------------------------------------------------ downloads

    def download(self, url: str, call: Call, *, retrier: Optional[Retrier] = None) -> bytearray:
        """Fetch one pre-signed result URL with no auth header, a size cap and retries.

        Network and server failures are retried within ``retrier`` (by default
        until the deadline: the image was paid for). Raises :class:`ExpiredURL`
        when the object store refuses the link as expired. A redirect loop, or
        a link to this machine or a private network (unless the API itself is
        there: the sandbox), is refused at once.
        """
        self._check_result_url(url, call)
        retrier = retrier or Retrier(self.policy(idempotent=True, until_deadline=True), call, what="download")
        while True:
            # The deadline may end this wait or a read inside it: either message names the last problem.
            doing = "downloading the result images" + (
                f" (last problem: {retrier.last_problem})" if retrier.last_problem else ""
            )
            call.check(doing)
            try:
                return self._download_once(url, call, doing)
            except _Retryable as exc:
                if not retrier.retry(exc.kind, str(exc), exc.retry_after):
                    raise DownloadError(
                        f"Could not download a result image: {exc} (after "
                        f"{retrier.tries(exc.kind)} attempts).",
                        task_id=call.task_id,
                        endpoint="download",
                    ) from None

    def _check_result_url(self, url: str, call: Call) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DownloadError(
                f"Refused to download a result image from {parts.scheme or '?'}:// "
                "(only http and https URLs are accepted).",
                task_id=call.task_id,
                endpoint="download",
            )
        if internal_address(parts.hostname) and not internal_address(
            urlsplit(self.settings.base_url).hostname
        ):
            raise DownloadError(
                f"Refused to download a result image from {parts.hostname}, an address on this "
                "machine or a private network: the provider's results live on public object "
                "storage.",
                task_id=call.task_id,
                endpoint="download",
            )

    def _download_once(self, url: str, call: Call, doing: str = "") -> bytearray:
        st = self.settings
        cap = st.max_download_bytes
        seen = {url}
        for _ in range(MAX_REDIRECTS + 1):
            timeout = (st.connect_timeout, max(0.5, min(st.read_timeout, call.deadline.remaining())))
            try:
                # `files` carries no auth: object stores refuse a second auth mechanism,
                # and the key must never reach another host.
                with self._send(
                    self.files, call, "GET", url, stream=True, timeout=timeout, allow_redirects=False
                ) as resp:
                    if resp.is_redirect:
                        nxt = urljoin(url, resp.headers.get("Location", ""))
                        if nxt in seen:
                            raise DownloadError(
                                f"The image host redirects in a loop ({url} -> {nxt}): "
                                "the link cannot be fetched.",
                                task_id=call.task_id,
                                endpoint="download",
                            )
                        seen.add(nxt)
                        self._check_result_url(nxt, call)
                        url = nxt
                        continue
                    return self._download_body(resp, call, cap, doing)
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise _Retryable(NETWORK, describe_network_error(exc)) from None
            except (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError, OSError) as exc:
                # Raw reads raise urllib3's own errors: a connection cut mid-body, a read timeout.
                raise _Retryable(
                    NETWORK,
                    f"truncated image: the connection broke off mid-download ({exc.__class__.__name__})",
                ) from None
        raise DownloadError(
            f"The image host redirected more than {MAX_REDIRECTS} times: refused.",
            task_id=call.task_id,
            endpoint="download",
        )

    def _download_body(self, resp: requests.Response, call: Call, cap: int, doing: str = "") -> bytearray:
        if resp.status_code in (401, 403) and _looks_expired(resp):
            raise ExpiredURL(resp.url)
        if resp.status_code in (429, 500, 502, 503, 504):
            kind = RATE_LIMITED if resp.status_code == 429 else SERVER
            raise _Retryable(kind, f"HTTP {resp.status_code} from the image host", retry_after_seconds(resp))
        if resp.status_code != 200:
            raise DownloadError(
                f"The image host refused a result image with HTTP {resp.status_code}.",
                task_id=call.task_id,
                endpoint="download",
            )
        try:
            data = self._read_capped(resp, call, cap, "a result image", "download", doing)
        except AnswerTooLargeError as exc:
            raise DownloadError(
                str(exc).replace(f" (task_id {call.task_id})", ""), task_id=call.task_id, endpoint="download"
            ) from None
        declared = resp.headers.get("Content-Length")
        # Content-Length counts the bytes on the wire, before any Content-Encoding.
        wire = resp.raw.tell() if resp.headers.get("Content-Encoding") else len(data)
        if declared and declared.isdigit() and wire != int(declared):
            raise _Retryable(NETWORK, f"truncated image ({wire} of {declared} bytes)")
        return data


def internal_address(hostname: Optional[str]) -> bool:
    """True for this machine, a link-local or a private address (an IP literal or a name resolving to one)."""
    if not hostname:
        return False
    if is_loopback(hostname):
        return True
    try:
        ips = [ipaddress.ip_address(hostname.strip("[]"))]
    except ValueError:
        try:
            ips = [
                ipaddress.ip_address(info[4][0].split("%")[0]) for info in socket.getaddrinfo(hostname, None)
            ]
        except (OSError, ValueError):
            return False  # unresolvable: the download itself reports it
    return any(ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified for ip in ips)


def close_late_response(future: Any) -> None:
    """Close an answer that arrived after its caller stopped waiting (cancel), so its socket is freed."""
    if not future.cancelled() and future.exception() is None:
        future.result().close()


class _Retryable(Exception):
    def __init__(self, kind: str, text: str, retry_after: Optional[float] = None) -> None:
        super().__init__(text)
        self.kind = kind
        self.retry_after = retry_after


def _looks_expired(resp: requests.Response) -> bool:
    try:
        text = resp.text[:2000].lower()
    except Exception:
        return False
    return "expired" in text or "accessdenied" in text or "signature" in text


def retry_after_seconds(resp: requests.Response) -> Optional[float]:
    """A ``Retry-After`` header in seconds (either form), or ``None``."""
    value = (resp.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def describe_network_error(exc: BaseException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connecting timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "the server did not answer in time (read timeout)"
    if not reached_server(exc):
        return "could not connect (connection refused or host not found)"
    return "the connection broke (" + exc.__class__.__name__ + ")"
