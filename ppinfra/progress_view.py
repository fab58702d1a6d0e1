"""One task's progress as a person sees it: the server's own figure when it gives one, else an estimate.

Feed it the client's :class:`~ppinfra.client.PollUpdate` callbacks (it is one:
``client.img2img(req, on_progress=view)``) and read :meth:`TaskProgress.percent`
and :meth:`TaskProgress.text` whenever the display refreshes, also between
polls: an estimate moves with the clock, not with the polls.

- The server reports something (``progress_percent`` > 0 or ``eta`` > 0): that
  wins, always.
- It reports nothing (many of the provider's APIs stay at 0 until SUCCEED): the
  elapsed time against the expected duration of this kind of task
  (:mod:`ppinfra.estimate`), shown as ``~40% (estimated)`` and never 100.
- SUCCEED: 100, and the task's duration joins the history.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, Tuple

from .estimate import Estimator, TaskKind, default_seconds, estimated_percent, estimator_for
from .limits import STATUS_SUCCEED


LOOK_UP = object()  # for_request: find the checkpoint's family in the model list


class TaskProgress:
    """Display percent and text for one task, from its PollUpdate callbacks. Thread-safe."""

    def __init__(
        self,
        kind: TaskKind,
        estimator: Optional[Estimator] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.estimator = estimator
        self.expected = estimator.expected(kind) if estimator is not None else default_seconds(kind)
        self._clock = clock
        self._lock = threading.Lock()
        self._origin: Optional[float] = None  # the clock reading at which the task's elapsed time was 0
        self._server: Optional[Tuple[float, float, float]] = None  # (percent, eta, elapsed) last reported
        self._done = False

    @classmethod
    def for_request(
        cls, request: Any, cache_dir: Optional[str] = None, family: Any = LOOK_UP, base_url: str = ""
    ) -> "TaskProgress":
        """A view for an img2img request sent to ``base_url``, learning in ``cache_dir`` (default:
        the model cache's).

        ``family`` of the checkpoint (``"sd15"``, ``"sdxl"``, ``None`` = unsure);
        by default it is looked up in that host's cached model list.
        """
        from .config import default_cache_dir

        cache_dir = cache_dir or default_cache_dir()
        if family is LOOK_UP:
            from .models import ModelCatalog

            try:
                family = ModelCatalog(None, cache_dir=cache_dir, base_url=base_url).family(
                    "checkpoint", request.model_name
                )
            except Exception:  # a progress figure must never fail a task
                family = None
        return cls(TaskKind.of(request, family, base_url), estimator_for(cache_dir))

    def update(self, p: Any) -> None:
        """Take one PollUpdate (``task_id, status, percent, eta, elapsed``)."""
        now = self._clock()
        record = None
        with self._lock:
            origin = now - float(p.elapsed or 0.0)
            self._origin = origin if self._origin is None else min(self._origin, origin)
            percent, eta = float(p.percent or 0.0), float(p.eta or 0.0)
            if p.status == STATUS_SUCCEED:
                if not self._done:
                    record = float(p.elapsed or 0.0)
                self._done = True
            elif percent > 0 or eta > 0:
                self._server = (percent, eta, float(p.elapsed or 0.0))
        if record is not None and self.estimator is not None:
            self.estimator.record(self.kind, record)

    __call__ = update

    def elapsed(self) -> float:
        with self._lock:
            return 0.0 if self._origin is None else max(0.0, self._clock() - self._origin)

    @property
    def estimated(self) -> bool:
        """True while the figure is our estimate (the server has reported nothing yet)."""
        with self._lock:
            return not self._done and self._server is None

    def percent(self) -> float:
        """0..100 for a progress bar; below 100 until SUCCEED."""
        elapsed = self.elapsed()
        with self._lock:
            done, server = self._done, self._server
        if done:
            return 100.0
        if server is not None:
            percent, eta, at = server
            if percent > 0:
                return percent
            # Only an eta: the server's own expected duration, followed between polls.
            return estimated_percent(elapsed, at + eta)
        return estimated_percent(elapsed, self.expected)

    def text(self) -> str:
        """``"40%"``, ``"40%, eta 3 s"`` from the server, or ``"~40% (estimated)"``."""
        percent = self.percent()
        with self._lock:
            server = self._server
        if self.estimated:
            return f"~{percent:.0f}% (estimated)"
        if server is not None and server[1] > 0 and percent < 100:
            return f"{percent:.0f}%, eta {server[1]:.0f} s"
        return f"{percent:.0f}%"
