"""``SandboxServer``: the API host, the image host and a third host,
their shared state and the test-facing controls."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, Iterable, List, Mapping, Optional, Union

from ..endpoints import ENDPOINTS
from ..hosts import KNOWN_HOSTS
from .api import ApiHandler, OtherHostHandler
from .catalog import Catalog
from .errors import SandboxHTTPError
from .faults import Fault, FaultBook
from .httpbase import RecordedRequest, SandboxHTTPServer
from .imagehost import PREFIX, ImageHandler
from .imaging import plan_results
from .tasks import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_TASKS, PROGRESS_MODES, Task, TaskStore
from .urls import UrlSigner
from .validation import ValidSubmit

_SETTINGS = (
    "queue_seconds",
    "task_seconds",
    "url_ttl",
    "images_per_minute",
    "rate_window",
    "fail_reason",
    "stuck",
    "progress",
    "strict",
    "credit_balance",
    "provider",
)
PROVIDERS = tuple(KNOWN_HOSTS)  # novita, ppinfra, ppio: whose answers the sandbox gives
DEFAULT_PROVIDER = "novita"
PLAN = "plan"  # images_per_minute="plan": each endpoint's base-plan limit on the provider (ppinfra.endpoints)
DEFAULT_RATE_WINDOW = 60.0  # the provider counts images per minute
# GET /v3/user: credit_balance is USD x 10,000 (docs/api.md, "Account"). No endpoint gives a price,
# so the sandbox picks one: 20 units = USD 0.002 per image, in the range of the provider's price list.
IMAGE_PRICE = 20
DEFAULT_CREDIT_BALANCE = 10_000_000  # USD 1,000: reported when no balance is configured, never enforced
ALLOW_FEATURES = ["txt2img", "img2img", "inpainting", "upscale", "remove-background"]  # (values inferred)
DEFAULT_MAX_REQUESTS = 10_000
DEFAULT_MAX_REQUEST_BYTES = 256 * 1024 * 1024


class SandboxServer:
    """A local stand-in for the PPInfra API plus its result-image host. Results are synthetic, not diffusion.

    The API and the image host bind separate loopback ports and are addressed
    by different host names, like the API and a pre-signed object-store link;
    a third host (:attr:`other_base_url`) is where ``redirect`` faults send
    clients.

    Behaviour:
      * ``strict`` (default False): False behaves like the real service, which
        ignores unknown JSON fields, reads ``null`` as "not set", takes numbers
        sent as strings, ``c_<offset>`` cursors, ``True``/``1`` booleans and a
        bare ``Authorization: <key>``. True refuses each of those with a 400
        naming the field: use it to prove a client sends only documented
        fields. Both refuse what the provider's page forbids.
      * ``progress``: ``"reported"`` (eta and progress_percent move) or
        ``"silent"`` (both stay 0, SUCCEED included, as many provider APIs do).
      * ``queue_seconds``/``task_seconds`` time each task's QUEUED and PROCESSING phases.
      * ``provider``: ``"novita"`` (default), ``"ppinfra"`` or ``"ppio"``: whose
        answers it gives. As Novita the model list has Novita's shape (``sd_name``,
        ``sd_name_in_api``, ``is_sdxl`` where the real list has it), which the
        provider's Python SDK parses; as PPInfra/PPIO it has PPInfra's sample
        shape (``model_name``, none of those three), and ``POST /v3/async/upscale``
        answers 404 ``API_NOT_FOUND`` (no PPInfra/PPIO page lists it).
      * ``images_per_minute`` (None = unlimited) refuses submits with 429 once
        that many images were accepted within the last ``rate_window`` seconds
        (default 60; shorten it to run a benchmark on a faster clock). Counted
        per endpoint, as the provider does: an int is each endpoint's limit, a
        mapping endpoint -> limit sets them apart (an endpoint not named is
        unlimited), and ``"plan"`` takes the provider's base-plan limits from
        :data:`ppinfra.endpoints.ENDPOINTS`.
      * ``credit_balance`` (USD x 10,000; None = not enforced): each accepted
        image costs :data:`IMAGE_PRICE`; a submit that would go below 0 gets 400
        ``BILLING_BALANCE_NOT_ENOUGH``. ``GET /v3/user`` reports the balance.
      * ``catalog_size``: None, the number of checkpoints, or a mapping
        type -> count (``catalog_sizes`` is the same, by another name).
      * Bounded memory as a long-running server: the last ``max_requests``
        requests are recorded, with bodies kept up to ``max_request_bytes`` in
        total (older bodies dropped first); the last ``max_tasks`` tasks are
        kept, with result images up to ``max_image_bytes`` and their bodies'
        input images up to ``max_request_bytes`` (older ones replaced by a
        placeholder first).

    :meth:`configure` changes most of these while running (for later tasks);
    :meth:`inject` queues faults.
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("sk-sandbox",),
        host: str = "127.0.0.1",
        port: int = 0,
        image_port: int = 0,
        other_port: int = 0,
        queue_seconds: float = 0.2,
        task_seconds: float = 1.0,
        url_ttl: float = 3600,
        images_per_minute: Union[None, int, str, Mapping[str, int]] = None,
        rate_window: float = DEFAULT_RATE_WINDOW,
        catalog_size: Union[None, int, Mapping[str, int]] = None,
        catalog_sizes: Optional[Mapping[str, int]] = None,
        strict: bool = False,
        progress: str = "reported",
        credit_balance: Optional[int] = None,
        provider: str = DEFAULT_PROVIDER,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_tasks: int = DEFAULT_MAX_TASKS,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    ) -> None:
        self.api_keys = tuple(api_keys)
        self.host = host
        self._ports = (port, image_port, other_port)
        self.catalog = Catalog(catalog_sizes if catalog_sizes is not None else catalog_size)
        self.faults = FaultBook()
        self.signer = UrlSigner()
        self._store = TaskStore(
            max_tasks=max_tasks, max_image_bytes=max_image_bytes, max_body_bytes=max_request_bytes
        )
        self._lock = threading.Lock()
        if max_requests < 1 or max_request_bytes < 0:
            raise ValueError(
                f"max_requests must be >= 1 and max_request_bytes >= 0, got "
                f"{max_requests}, {max_request_bytes}"
            )
        self._requests: Deque[RecordedRequest] = deque(maxlen=max_requests)
        self._bodies: Deque[RecordedRequest] = deque()  # records still holding a body, oldest first
        self._body_bytes = 0
        self._max_request_bytes = max_request_bytes
        self._windows: Dict[str, deque] = {}  # endpoint -> (monotonic time, images) of accepted submits
        self._settings: Dict[str, Any] = {
            "queue_seconds": queue_seconds,
            "task_seconds": task_seconds,
            "url_ttl": url_ttl,
            "images_per_minute": images_per_minute,
            "rate_window": rate_window,
            "fail_reason": None,
            "stuck": False,
            "progress": progress,
            "strict": bool(strict),
            "credit_balance": credit_balance,
            "provider": provider,
        }
        self._check_settings(self._settings)
        self._balance = DEFAULT_CREDIT_BALANCE if credit_balance is None else int(credit_balance)
        self._servers: List[SandboxHTTPServer] = []
        self._bound: Optional[tuple] = None  # the ports actually bound; kept after stop()
        self._threads: List[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "SandboxServer":
        """Bind the three servers and serve them in daemon threads."""
        if self._servers:
            return self
        handlers = (ApiHandler, ImageHandler, OtherHostHandler)
        self._servers = [
            SandboxHTTPServer((self.host, port), handler, self)
            for port, handler in zip(self._ports, handlers)
        ]
        self._bound = tuple(srv.server_address[1] for srv in self._servers)
        for srv, name in zip(self._servers, ("api", "images", "other")):
            thread = threading.Thread(
                target=srv.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"ppinfra-sandbox-{name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Shut the servers down and join their threads. Safe to call twice."""
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
        return f"http://{self._other_name()}:{self._port(1)}"

    @property
    def other_base_url(self) -> str:
        """The third host, where ``redirect`` faults point: another host name and port than the API."""
        return f"http://{self._other_name()}:{self._port(2)}"

    def image_url(self, task: Task, index: int) -> str:
        """A freshly signed URL for result ``index`` of ``task``."""
        file_name = f"{task.task_id}-{index}.{task.image_type}"
        query = self.signer.query(file_name, self._settings["url_ttl"])
        return f"{self.image_base_url}{PREFIX}{file_name}?{query}"

    def _url_host(self) -> str:
        return "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host

    def _other_name(self) -> str:
        return "127.0.0.1" if self._url_host() == "localhost" else "localhost"

    def _port(self, which: int) -> int:
        if self._bound is None:
            raise RuntimeError("the sandbox is not started: call start() first")
        return self._bound[which]

    # ------------------------------------------------------------------ observation
    @property
    def strict(self) -> bool:
        """True when the sandbox refuses every shape outside the provider's page (see the class docstring)."""
        return self._settings["strict"]

    @property
    def provider(self) -> str:
        """Whose answers the sandbox gives: ``novita``, ``ppinfra`` or ``ppio`` (see the class docstring)."""
        return self._settings["provider"]

    @property
    def requests(self) -> List[RecordedRequest]:
        """The recorded requests of all three servers, oldest first (a copy; at most ``max_requests``)."""
        with self._lock:
            return list(self._requests)

    @property
    def submits(self) -> List[Any]:
        """The parsed JSON bodies of the recorded ``POST /v3/async/img2img``
        (accepted or not) whose body is kept."""
        return self.submitted("img2img")

    def submitted(self, endpoint: str) -> List[Any]:
        """The parsed JSON bodies of the recorded submits to ``endpoint``
        (e.g. ``"txt2img"``) whose body is kept."""
        path = ENDPOINTS[endpoint].path
        out = []
        for r in self.requests:
            if r.server == "api" and r.method == "POST" and r.path == path:
                try:
                    out.append(json.loads(r.body))
                except ValueError:
                    pass  # not JSON (refused), or its body was dropped to bound memory
        return out

    @property
    def tasks(self) -> Dict[str, Task]:
        """task_id -> :class:`Task` for the kept accepted submits (a copy of the mapping;
        the tasks are live)."""
        return self._store.snapshot()

    @property
    def balance(self) -> int:
        """The credit balance now, USD x 10,000 (what ``GET /v3/user`` reports)."""
        with self._lock:
            return self._balance

    def account(self) -> Dict[str, Any]:
        """The body of ``GET /v3/user``."""
        return {
            "credit_balance": self.balance,
            "allow_features": list(ALLOW_FEATURES),
            "free_trial": {"credit_balance": 0, "expire_time": "0"},
        }

    def clear_requests(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._requests.clear()
            self._bodies.clear()
            self._body_bytes = 0

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)  # the deque's maxlen drops the oldest record
            if request.body:
                self._bodies.append(request)
                self._body_bytes += len(request.body)
            while self._body_bytes > self._max_request_bytes and self._bodies:
                old = self._bodies.popleft()
                self._body_bytes -= len(old.body)
                old.body = b""

    # ------------------------------------------------------------------ control
    def inject(self, endpoint: str, kind: str, count: int = 1, **params: Any) -> Fault:
        """Make the next ``count`` requests to ``endpoint`` (submit|poll|models|user|image) misbehave.

        Kinds: ``status`` (status=, retry_after=, reason=, message=), ``drop``
        (after_create= for submit), ``slow`` (delay=), ``malformed`` (body=,
        wrong_shape=), ``redirect`` (status= 301|302|303|307|308, default 307;
        to="other"): the same path and query on :attr:`other_base_url`, which
        records whether an ``Authorization`` header arrived; ``truncate``,
        ``corrupt`` (same length, correct Content-Length, does not decode) and
        ``oversize`` (size=) on image; ``scheme`` (scheme=) on poll: the next
        SUCCEED lists file:// / ftp:// URLs; ``task_failed`` (message=,
        task_id=) on poll: that task answers HTTP 500 ``TASK_FAILED`` on this
        poll and on every later one.
        """
        return self.faults.inject(endpoint, kind, count, **params)

    def configure(self, **settings: Any) -> None:
        """Change settings for later requests and tasks: queue_seconds, task_seconds, url_ttl,
        images_per_minute, rate_window, fail_reason, stuck, progress, strict, credit_balance, provider.

        ``credit_balance`` sets the balance now (None: back to the unenforced default).
        """
        unknown = set(settings) - set(_SETTINGS)
        if unknown:
            raise TypeError(
                f"configure() takes no setting {sorted(unknown)[0]!r} (settings: {', '.join(_SETTINGS)})"
            )
        self._check_settings(settings)
        with self._lock:
            self._settings.update(settings)
            if "credit_balance" in settings:
                value = settings["credit_balance"]
                self._balance = DEFAULT_CREDIT_BALANCE if value is None else int(value)

    @staticmethod
    def _check_settings(settings: Dict[str, Any]) -> None:
        if "progress" in settings and settings["progress"] not in PROGRESS_MODES:
            raise ValueError(
                f"progress must be one of {', '.join(PROGRESS_MODES)}, got {settings['progress']!r}"
            )
        if "rate_window" in settings and not settings["rate_window"] > 0:
            raise ValueError(f"rate_window must be > 0 seconds, got {settings['rate_window']!r}")
        if "provider" in settings and settings["provider"] not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}, got {settings['provider']!r}")
        ipm = settings.get("images_per_minute")
        if isinstance(ipm, Mapping) and set(ipm) - set(ENDPOINTS):
            raise ValueError(
                f"images_per_minute names endpoints of {', '.join(ENDPOINTS)}, "
                f"got {sorted(set(ipm) - set(ENDPOINTS))[0]!r}"
            )
        if isinstance(ipm, str) and ipm != PLAN:
            raise ValueError(f"images_per_minute is None, an int, a mapping or {PLAN!r}, got {ipm!r}")

    def rate_limit(self, endpoint: str) -> Optional[int]:
        """Images per ``rate_window`` allowed on ``endpoint`` now; None = unlimited."""
        ipm = self._settings["images_per_minute"]
        if ipm == PLAN:
            return ENDPOINTS[endpoint].plan_limit(self.provider) or None
        if isinstance(ipm, Mapping):
            return ipm.get(endpoint)
        return ipm

    def expire_urls(self) -> None:
        """Every image URL issued so far is refused as expired (403); a fresh poll issues fresh ones."""
        self.signer.revoke_all()

    def _accept(self, body: Dict[str, Any], valid: ValidSubmit) -> Task:
        """Rate-limit, bill and create the task for a validated submit."""
        n = valid.image_num
        with self._lock:
            s = dict(self._settings)
            limit = self.rate_limit(valid.endpoint)
            window = self._windows.setdefault(valid.endpoint, deque())
            now = time.monotonic()
            if limit is not None:
                while window and now - window[0][0] >= s["rate_window"]:
                    window.popleft()
                used = sum(k for _, k in window)
                if used + n > limit:
                    raise SandboxHTTPError(
                        429,
                        "RATE_LIMIT_EXCEEDED",
                        f"rate limit of {limit} images per {s['rate_window']:g} s on "
                        f"{valid.endpoint} reached ({used} in the window, this request "
                        f"asks for {n})",
                    )
            cost = n * IMAGE_PRICE
            if s["credit_balance"] is not None and self._balance - cost < 0:
                raise SandboxHTTPError(
                    400,
                    "BILLING_BALANCE_NOT_ENOUGH",
                    f"balance not enough: {self._balance} credits left, this request costs {cost} "
                    f"({n} images x {IMAGE_PRICE})",
                )
            self._balance -= cost
            if limit is not None:
                window.append((now, n))
        width, height, count, job = plan_results(
            valid.endpoint, valid.request, valid.images, valid.image_type
        )
        return self._store.create(
            body=body,
            request=valid.request,
            extra=valid.extra,
            job=job,
            width=width,
            height=height,
            image_num=count,
            seed=valid.seed,
            image_type=valid.image_type,
            queue_seconds=s["queue_seconds"],
            task_seconds=s["task_seconds"],
            fail_reason=s["fail_reason"],
            stuck=s["stuck"],
            progress=s["progress"],
            endpoint=valid.endpoint,
            reports_progress=ENDPOINTS[valid.endpoint].reports_progress,
        )
