"""``SandboxServer``: the API host and the image host, their shared state and the test-facing controls."""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any, Dict, Iterable, List, Optional

from .api import ApiHandler
from .catalog import Catalog
from .errors import SandboxHTTPError
from .faults import Fault, FaultBook
from .httpbase import RecordedRequest, SandboxHTTPServer
from .imagehost import PREFIX, ImageHandler
from .tasks import Task, TaskStore
from .urls import UrlSigner
from .validation import ValidSubmit

_SETTINGS = ("queue_seconds", "task_seconds", "url_ttl", "images_per_minute", "fail_reason", "stuck")
_RATE_WINDOW = 60.0  # the provider counts images per minute


class SandboxServer:
    """A local, strict stand-in for the PPInfra API plus its result-image host.

    Results are synthetic (the input image graded per seed), not diffusion.
    The two servers bind separate loopback ports and are addressed by
    different host names, like the API and a pre-signed object-store link.
    ``queue_seconds``/``task_seconds`` time each task's QUEUED and PROCESSING
    phases; ``images_per_minute`` (None = unlimited) refuses submits over a
    sliding 60 s window with 429; ``catalog_size`` is the number of
    checkpoints in the model list (None = 260).
    """

    def __init__(self, *, api_keys: Iterable[str] = ("sk-sandbox",), host: str = "127.0.0.1", port: int = 0,
                 image_port: int = 0, queue_seconds: float = 0.2, task_seconds: float = 1.0,
                 url_ttl: float = 3600, images_per_minute: Optional[int] = None,
                 catalog_size: Optional[int] = None) -> None:
        self.api_keys = tuple(api_keys)
        self.host = host
        self._ports = (port, image_port)
        self.catalog = Catalog(catalog_size)
        self.faults = FaultBook()
        self.signer = UrlSigner()
        self._store = TaskStore()
        self._lock = threading.Lock()
        self._requests: List[RecordedRequest] = []
        self._window: deque = deque()  # (monotonic time, image_num) of accepted submits
        self._settings: Dict[str, Any] = {
            "queue_seconds": queue_seconds, "task_seconds": task_seconds, "url_ttl": url_ttl,
            "images_per_minute": images_per_minute, "fail_reason": None, "stuck": False}
        self._servers: List[SandboxHTTPServer] = []
        self._bound: Optional[tuple] = None  # the ports actually bound; kept after stop()
        self._threads: List[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "SandboxServer":
        """Bind both servers and serve them in daemon threads."""
        if self._servers:
            return self
        self._servers = [SandboxHTTPServer((self.host, self._ports[0]), ApiHandler, self),
                         SandboxHTTPServer((self.host, self._ports[1]), ImageHandler, self)]
        self._bound = tuple(srv.server_address[1] for srv in self._servers)
        for srv, name in zip(self._servers, ("api", "images")):
            thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"ppinfra-sandbox-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Shut both servers down and join their threads. Safe to call twice."""
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._store.cancel_timers()
        self._servers, self._threads = [], []

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        """The API host, e.g. ``http://127.0.0.1:8930``."""
        return f"http://{self._url_host()}:{self._port(0)}"

    @property
    def image_base_url(self) -> str:
        """The image host: another host name *and* port than :attr:`base_url`."""
        other = "127.0.0.1" if self._url_host() == "localhost" else "localhost"
        return f"http://{other}:{self._port(1)}"

    def image_url(self, task: Task, index: int) -> str:
        """A freshly signed URL for result ``index`` of ``task``."""
        file_name = f"{task.task_id}-{index}.{task.image_type}"
        return f"{self.image_base_url}{PREFIX}{file_name}?{self.signer.query(file_name, self._settings['url_ttl'])}"

    def _url_host(self) -> str:
        return "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host

    def _port(self, which: int) -> int:
        if self._bound is None:
            raise RuntimeError("the sandbox is not started: call start() first")
        return self._bound[which]

    # ------------------------------------------------------------------ observation
    @property
    def requests(self) -> List[RecordedRequest]:
        """Every request both servers received, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def submits(self) -> List[Any]:
        """The parsed JSON bodies of every ``POST /v3/async/img2img`` (accepted or not), in order."""
        out = []
        for r in self.requests:
            if r.server == "api" and r.method == "POST" and r.path == "/v3/async/img2img":
                try:
                    out.append(json.loads(r.body))
                except ValueError:
                    pass  # not JSON: it was refused, and there is nothing to parse
        return out

    @property
    def tasks(self) -> Dict[str, Task]:
        """task_id -> :class:`Task` for every accepted submit (a copy of the mapping; the tasks are live)."""
        return self._store.snapshot()

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # ------------------------------------------------------------------ control
    def inject(self, endpoint: str, kind: str, count: int = 1, **params: Any) -> Fault:
        """Make the next ``count`` requests to ``endpoint`` (submit|poll|models|image) misbehave.

        Kinds: ``status`` (status=, retry_after=, reason=, message=), ``drop``
        (after_create= for submit), ``slow`` (delay=), ``malformed`` (body=,
        wrong_shape=), ``truncate`` and ``oversize`` (size=) on image,
        ``scheme`` (scheme=) on poll: the next SUCCEED lists file:// / ftp:// URLs.
        """
        return self.faults.inject(endpoint, kind, count, **params)

    def configure(self, **settings: Any) -> None:
        """Change queue_seconds, task_seconds, url_ttl, images_per_minute, fail_reason, stuck for later tasks."""
        unknown = set(settings) - set(_SETTINGS)
        if unknown:
            raise TypeError(f"configure() takes no setting {sorted(unknown)[0]!r} (settings: {', '.join(_SETTINGS)})")
        with self._lock:
            self._settings.update(settings)

    def expire_urls(self) -> None:
        """Every image URL issued so far is refused as expired (403); a fresh poll issues fresh ones."""
        self.signer.revoke_all()

    def _accept(self, body: Dict[str, Any], valid: ValidSubmit) -> Task:
        """Rate-limit and create the task for a validated submit."""
        n = valid.request["image_num"]
        with self._lock:
            s = dict(self._settings)
            limit = s["images_per_minute"]
            if limit is not None:
                now = time.monotonic()
                while self._window and now - self._window[0][0] >= _RATE_WINDOW:
                    self._window.popleft()
                used = sum(k for _, k in self._window)
                if used + n > limit:
                    raise SandboxHTTPError(429, "RATE_LIMIT_EXCEEDED",
                                           f"rate limit of {limit} images per minute reached "
                                           f"({used} in the last minute, this request asks for {n})")
                self._window.append((now, n))
        return self._store.create(body=body, request=valid.request, extra=valid.extra, source=valid.image,
                                  seed=valid.seed, image_type=valid.image_type,
                                  queue_seconds=s["queue_seconds"], task_seconds=s["task_seconds"],
                                  fail_reason=s["fail_reason"], stuck=s["stuck"])
