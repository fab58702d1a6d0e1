"""Deadlines, cancel-aware sleeps and the adaptive poll schedule.

Every wait in the client goes through :func:`sleep`, which wakes at least every
50 ms to look at the cancel check and never sleeps past the deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from .errors import CancelledError, TaskTimeoutError

CancelCheck = Optional[Callable[[], bool]]
_SLICE = 0.05


class Deadline:
    """An absolute point in monotonic time; ``None`` seconds means no deadline."""

    def __init__(self, seconds: Optional[float]) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        self.at = None if seconds is None else self.start + seconds

    def remaining(self) -> float:
        return float("inf") if self.at is None else self.at - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self, what: str, task_id: Optional[str] = None) -> None:
        if self.expired():
            raise TaskTimeoutError(
                f"Gave up {what} after {self.seconds:.0f} s (the overall deadline, queue time included). "
                "The service may be busy: try again later or raise the deadline.",
                task_id=task_id,
            )


@dataclass(frozen=True)
class Call:
    """One call's context, passed as one object: its deadline, its cancel check, who hears about waits,
    the task.

    ``on_wait`` receives a :class:`ppinfra.retry.Wait` (or a pacing
    ``BudgetWait``) before every wait the engine makes, and one with
    ``delay`` 0 when a budget wait ends.
    """

    deadline: Deadline
    should_cancel: CancelCheck = None
    on_wait: Optional[Callable[[Any], None]] = None
    task_id: Optional[str] = None

    @classmethod
    def within(
        cls,
        seconds: Optional[float],
        should_cancel: CancelCheck = None,
        on_wait: Optional[Callable[[Any], None]] = None,
    ) -> "Call":
        return cls(Deadline(seconds), should_cancel, on_wait)

    def for_task(self, task_id: Optional[str]) -> "Call":
        return replace(self, task_id=task_id)

    def check(self, what: str) -> None:
        """Cancel first, then the deadline: either ends the call with its own error."""
        check_cancel(self.should_cancel, self.task_id)
        self.deadline.check(what, self.task_id)

    def cancelled(self) -> bool:
        return self.should_cancel is not None and bool(self.should_cancel())

    def sleep(self, seconds: float) -> None:
        sleep(seconds, self.should_cancel, self.deadline, self.task_id)


def check_cancel(should_cancel: CancelCheck, task_id: Optional[str] = None) -> None:
    if should_cancel is not None and should_cancel():
        raise CancelledError(
            "Cancelled while waiting for PPInfra. A task already submitted may still run "
            "and be billed on the server.",
            task_id=task_id,
        )


def sleep(
    seconds: float,
    should_cancel: CancelCheck = None,
    deadline: Optional[Deadline] = None,
    task_id: Optional[str] = None,
) -> None:
    """Sleep up to ``seconds``, waking every 50 ms to honour cancel; stop early at the deadline."""
    end = time.monotonic() + max(0.0, seconds)
    if deadline is not None and deadline.at is not None:
        end = min(end, deadline.at)
    while True:
        check_cancel(should_cancel, task_id)
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(_SLICE, left))


@dataclass
class PollSchedule:
    """Adaptive polling: sleep a fraction of the server's ``eta``, poll fast near the end.

    While the eta is unknown or already spent, the delay grows from
    ``min_interval`` by ``growth`` up to ``idle_max``, so a server whose eta is
    wrong is not hammered.
    """

    min_interval: float = 0.1
    max_interval: float = 3.0
    idle_max: float = 1.0
    eta_fraction: float = 0.5
    growth: float = 1.35
    # How long to keep polling at min_interval once the eta says "under a second"
    # before backing off: one second of eta rounding plus slack.
    fast_window: float = 1.5

    def __post_init__(self) -> None:
        self._idle = self.min_interval
        self._fast_since: Optional[float] = None

    def next_delay(self, eta: Optional[float], now: Optional[float] = None) -> float:
        now = time.monotonic() if now is None else now
        # The service reports eta in whole seconds, rounded up: the true remaining
        # time lies in (eta - 1, eta]. From eta 1 on, poll fast for the finish.
        if eta is not None and eta >= 2:
            self._idle = self.min_interval
            self._fast_since = None
            return min(self.max_interval, max(self.min_interval, (eta - 1) * self.eta_fraction))
        if eta is not None and eta > 0:
            if self._fast_since is None:
                self._fast_since = now
            if now - self._fast_since < self.fast_window:
                return self.min_interval
        # No eta, or an eta already spent: back off so a wrong eta is not hammered.
        delay = self._idle
        self._idle = min(self.idle_max, self._idle * self.growth)
        return delay
