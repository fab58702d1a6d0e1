"""One images-per-minute budget per endpoint, shared by all PPInfra work in this process.

The provider counts images per minute per plan (img2img: 10 on the base plan)
over a sliding window and refuses what does not fit with 429. Every node, every
queued prompt and the CLI submit through the same :class:`Pacer`, which lets a
submit go only when its images fit the window, so a large batch waits its turn
instead of collecting 429s. Waiters are served first come, first served.

A slot is taken before the submit is sent and dated again when the answer
arrives: the server counted the request somewhere in between, so dating it by
the answer frees it no earlier than the server frees it. A submit that
certainly created no task (the server refused it) gives its slot back.
When a 429 arrives anyway (another machine on the same key, a smaller plan),
the budget halves, then grows back by a tenth of the limit per quiet window.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from .errors import APIError, RateLimitError
from .waiting import Call

log = logging.getLogger("ppinfra")

# Cancel and the deadline are looked at at least this often while waiting.
_SLICE = 0.05
# Several workers that hit the same 429 burst lower the budget once, not once each.
_DECREASE_GAP = 1.0 / 12  # of the window


@dataclass(frozen=True)
class BudgetWait:
    """What ``on_wait`` receives while a submit waits for the budget (shaped like ``retry.Wait``).

    ``delay`` is the seconds still to wait, 0 once the wait is over.
    """

    what: str
    images: int
    limit: int
    window: float
    delay: float
    kind: str = "budget"

    def describe(self) -> str:
        """A status line, e.g. ``waiting for the images-per-minute budget (10 per 60 s): 12 s``."""
        per = "minute" if self.window == 60 else f"{self.window:g} s"
        return f"waiting for the images-per-minute budget ({self.limit} per {per}): {math.ceil(self.delay)} s"


WaitCallback = Optional[Callable[[Any], None]]


def plan_limit(images_per_minute: Optional[int], base_url: str, endpoint: str) -> int:
    """The limit to pace at: the setting, else the endpoint's plan default on this host; 0 = no pacing.

    The defaults are the endpoint table's (:mod:`ppinfra.endpoints`). Unset, a
    plain-http loopback host (the bundled sandbox) is not paced: it has no
    plan, and limits only when told to (its own ``images_per_minute``).
    """
    from .endpoints import ENDPOINTS
    from .hosts import host_name

    if images_per_minute is not None:
        return max(0, int(images_per_minute))
    if urlsplit(base_url).scheme == "http" or endpoint not in ENDPOINTS:
        return 0
    ep = ENDPOINTS[endpoint]
    host = host_name(base_url)
    # A custom https host (a proxy in front of the provider): the strictest default of the known hosts.
    return (
        ep.plan_limit(host) if host in ep.images_per_minute else min(ep.images_per_minute.values(), default=0)
    )


class Slot:
    """Room for some images in the budget, taken by :meth:`Pacer.acquire`.

    As a context manager around the submit: a normal exit dates the slot by
    the answer (:meth:`settle`); an error that proves no task was created
    gives it back (:meth:`refund`); any other error keeps it (the server may
    have counted the images).
    """

    def __init__(self, pacer: Optional["Pacer"], images: int, entry: Optional[List[Any]]) -> None:
        self.pacer = pacer
        self.images = images
        self._entry = entry

    def settle(self) -> None:
        if self.pacer is not None and self._entry is not None:
            self.pacer._settle(self._entry)

    def refund(self) -> None:
        """Give the images back: the submit certainly did not create a task. Safe to call twice."""
        if self.pacer is not None and self._entry is not None:
            self.pacer._refund(self._entry)
            self._entry = None

    def __enter__(self) -> "Slot":
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        if exc is not None and certainly_unsent(exc):
            self.refund()
            if getattr(exc, "status_code", None) == 429 and self.pacer is not None:
                self.pacer.on_rate_limited()  # refused with no retry left (a burst counts once)
        else:
            self.settle()


def certainly_unsent(exc: BaseException) -> bool:
    """True when an error proves the server created no task, so its images were not counted.

    An error answer in 4xx or 503 is a refusal (docs/api.md: a submit is retried
    only after 429, 503 or a connection that never opened). An error may also say so
    itself with a ``sent = False`` attribute. Anything else (a timeout after
    sending, a 500) may have created a task and keeps its slot.
    """
    if getattr(exc, "sent", None) is False:
        return True
    code = getattr(exc, "status_code", None)
    return isinstance(exc, APIError) and code is not None and (400 <= code < 500 or code == 503)


class Pacer:
    """A sliding-window budget of ``limit`` images per ``window`` seconds. Thread-safe.

    ``limit`` 0 switches pacing off: :meth:`acquire` returns at once.
    """

    def __init__(self, limit: int, window: float = 60.0, name: str = "") -> None:
        self.name = name
        self._lock = threading.Lock()
        # [time, images, settled]; an unsettled entry (answer not back yet) never expires.
        self._entries: List[List[Any]] = []
        self._queue: List[Tuple[object, int]] = []  # waiters in arrival order
        self._last_decrease: Optional[float] = None
        self._last_change = 0.0
        self.limit = 0
        self.window = 60.0
        self.effective = 0
        self.configure(limit, window)

    def configure(self, limit: int, window: float) -> None:
        """Change the plan's limit or the window; a new limit resets any lowering after 429s."""
        if window <= 0:
            raise ValueError(f"rate window must be above 0 seconds, got {window!r}")
        with self._lock:
            if limit != self.limit:
                self.effective = limit
                self._last_decrease = None
            self.limit, self.window = int(limit), float(window)

    # ------------------------------------------------------------------ the wait

    def acquire(self, images: int, call: Optional[Call] = None) -> Slot:
        """Block until ``images`` fit the window (first come, first served), record them, return the slot.

        Wakes at least every 50 ms to honour ``should_cancel`` (raises
        ``CancelledError``) and the deadline: when the budget has no room
        before the deadline, raises ``RateLimitError`` at once, with nothing
        sent. ``on_wait`` gets a :class:`BudgetWait` on every wake while
        waiting, and one with ``delay`` 0 when the wait ends.
        """
        call = call or Call.within(None)
        deadline, on_wait = call.deadline, call.on_wait
        if self.limit <= 0:
            return Slot(None, images, None)
        ticket = object()
        with self._lock:
            self._queue.append((ticket, images))
        waited = False
        try:
            while True:
                with self._lock:
                    now = time.monotonic()
                    left = self._projected_wait(ticket, now)
                    if left <= 0:
                        entry = [now, images, False]
                        self._entries.append(entry)
                        self._queue = [(t, n) for t, n in self._queue if t is not ticket]
                        return Slot(self, images, entry)
                    limit, effective = self.limit, self.effective
                if left > deadline.remaining():
                    lowered = f", lowered to {effective} after a 429" if effective < limit else ""
                    raise RateLimitError(
                        f"The images-per-minute budget ({limit} per {self.window:g} s{lowered}) has room for "
                        f"{images} more image(s) only in {left:.0f} s, after the deadline "
                        f"({max(0.0, deadline.remaining()):.0f} s left). "
                        "Nothing was sent: raise the deadline, "
                        "send fewer images at once, or set PPINFRA_IMAGES_PER_MINUTE to your plan's limit.",
                        endpoint=self.name,
                    )
                if on_wait is not None:
                    on_wait(BudgetWait(self.name, images, effective, self.window, left))
                    waited = True
                call.sleep(min(left, _SLICE))
        finally:
            with self._lock:
                self._queue = [(t, n) for t, n in self._queue if t is not ticket]
            if waited and on_wait is not None:
                on_wait(BudgetWait(self.name, images, self.effective, self.window, 0.0))

    def projected_wait(self, images: int) -> float:
        """Seconds until ``images`` more would fit, behind everyone already waiting (for ETAs)."""
        if self.limit <= 0:
            return 0.0
        ticket = object()
        with self._lock:
            self._queue.append((ticket, images))
            try:
                return max(0.0, self._projected_wait(ticket, time.monotonic()))
            finally:
                self._queue.pop()

    def _projected_wait(self, ticket: object, now: float) -> float:
        """Place every waiter ahead of ``ticket`` at its earliest time, then ``ticket``: its delay."""
        self._recover(now)
        window = self.window
        self._entries = [e for e in self._entries if not e[2] or now - e[0] < window]
        # When each image counted now leaves the window; an unsettled one no earlier than a window from now.
        frees = sorted((e[0] + window if e[2] else now + window, e[1]) for e in self._entries)
        start = now
        for t, n in self._queue:
            start = _earliest(frees, n, self.effective, start)
            if t is ticket:
                return start - now
            frees.append((start + window, n))
            frees.sort()
        return 0.0

    # ------------------------------------------------------------------ adapting

    def on_rate_limited(self) -> int:
        """A 429 arrived although the budget had room: halve the budget (floor 1); returns the new one.

        Bursts count once: calls within a twelfth of the window of the last
        lowering change nothing. The budget grows back by :meth:`_recover`.
        """
        with self._lock:
            now = time.monotonic()
            if self.limit <= 0:
                return 0
            if self._last_decrease is not None and now - self._last_decrease < self.window * _DECREASE_GAP:
                return self.effective
            self.effective = max(1, self.effective // 2)
            self._last_decrease = self._last_change = now
            log.info(
                "PPInfra %s: 429 although the budget had room; pacing at %d images per %g s for now",
                self.name,
                self.effective,
                self.window,
            )
            return self.effective

    def _recover(self, now: float) -> None:
        """Additive increase: a tenth of the limit (at least 1) back per quiet window since the last
        change."""
        if self.effective >= self.limit:
            return
        steps = int((now - self._last_change) / self.window)
        if steps > 0:
            self.effective = min(self.limit, self.effective + steps * max(1, round(self.limit / 10)))
            self._last_change += steps * self.window

    def current_limit(self) -> int:
        """The budget now: the plan's limit, or less for a while after a 429."""
        with self._lock:
            self._recover(time.monotonic())
            return self.effective

    # ------------------------------------------------------------------ slots

    def _settle(self, entry: List[Any]) -> None:
        with self._lock:
            entry[0], entry[2] = time.monotonic(), True

    def _refund(self, entry: List[Any]) -> None:
        with self._lock:
            self._entries = [e for e in self._entries if e is not entry]

    def used(self) -> int:
        """Images counted in the current window (tests, status)."""
        with self._lock:
            now = time.monotonic()
            return sum(e[1] for e in self._entries if not e[2] or now - e[0] < self.window)


def _earliest(frees: List[Tuple[float, int]], images: int, limit: int, start: float) -> float:
    """The first time >= ``start`` at which ``images`` fit under ``limit`` (alone,
    when more than the limit)."""
    counted = sum(n for t, n in frees if t > start)
    need = min(images, limit)  # a request above the limit goes alone, into an empty window
    if counted + need <= limit:
        return start
    for t, n in frees:
        if t <= start:
            continue
        counted -= n
        if counted + need <= limit:
            return t
    return start


# --------------------------------------------------------------------------- the process-wide registry

_registry: Dict[Tuple[str, str], Pacer] = {}
_registry_lock = threading.Lock()


def budget_for(
    base_url: str, endpoint: str, *, images_per_minute: Optional[int] = None, window: float = 60.0
) -> Pacer:
    """The process's one budget for ``endpoint`` at ``base_url``, created on first use.

    ``images_per_minute`` as in :func:`plan_limit`. The latest caller's
    settings apply (every client in a process normally reads the same ones).
    """
    from .hosts import normalise_base_url

    key = (normalise_base_url(base_url), endpoint)
    limit = plan_limit(images_per_minute, key[0], endpoint)
    with _registry_lock:
        pacer = _registry.get(key)
        if pacer is None:
            pacer = _registry[key] = Pacer(limit, window, name=f"{endpoint} at {key[0]}")
            return pacer
    if (pacer.limit, pacer.window) != (limit, window):
        pacer.configure(limit, window)
    return pacer


def budget_for_settings(settings: Any, endpoint: str) -> Pacer:
    """:func:`budget_for` with a client's :class:`~ppinfra.config.Settings`."""
    return budget_for(
        settings.base_url, endpoint, images_per_minute=settings.images_per_minute, window=settings.rate_window
    )


def minimum_seconds(images: int, limit: int, window: float) -> float:
    """The least wall time in which ``images`` single-image submits can pass ``limit`` per sliding ``window``.

    The first ``limit`` go at once, each later group of ``limit`` one window
    after the one before: ceil(images / limit - 1) windows.
    """
    return max(0, math.ceil(images / limit - 1)) * window
