"""One retry engine for every HTTP call the client makes: API calls, polls, downloads, URL refreshes.

Each kind of failure has its own allowance of attempts (a 429 does not use up the attempts
meant for a network blip, and the other way round), every wait is jittered
exponential backoff capped per kind, a ``Retry-After`` is honoured, and no
wait outlives the deadline or ignores cancel. What may be *re-sent* is not
decided here: the caller knows whether its request is idempotent and whether
it reached the server (see :func:`reached_server`); this module only decides
how long to wait and whether the allowance permits another try. (The word
"budget" belongs to pacing: images per minute.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional

import requests
import urllib3

from .waiting import Call, Deadline

# Kinds of failure, each with a backoff of its own.
RATE_LIMITED = "rate_limited"  # HTTP 429
SERVER = "server"  # 5xx: overloaded or an internal error worth another try
NETWORK = "network"  # no connection, a broken one, or no answer in time
MALFORMED = "malformed"  # an answer that is not the documented JSON
CORRUPT = "corrupt"  # a result file that is short or does not decode
KINDS = (RATE_LIMITED, SERVER, NETWORK, MALFORMED, CORRUPT)

_LABELS = {
    RATE_LIMITED: "rate-limited",
    SERVER: "server busy",
    NETWORK: "network problem",
    MALFORMED: "unreadable answer",
    CORRUPT: "corrupt result file",
}


@dataclass(frozen=True)
class Backoff:
    """How often one kind of failure is retried (``None``: until the deadline) and how long each wait is."""

    attempts: Optional[int]
    base: float
    cap: float

    def delay(self, attempt: int, rng: Callable[[], float]) -> float:
        """Jittered exponential backoff for retry number ``attempt`` (1-based).

        "Equal jitter": between half and all of the exponential step, so the
        items of a batch that failed together do not come back in lockstep.
        """
        step = min(self.cap, self.base * (2 ** (attempt - 1)))
        return step * (0.5 + 0.5 * rng())


@dataclass(frozen=True)
class RetryPolicy:
    """A backoff per kind of failure; a kind without one is never retried."""

    backoffs: Mapping[str, Backoff] = field(default_factory=dict)

    def backoff(self, kind: str) -> Optional[Backoff]:
        return self.backoffs.get(kind)

    @classmethod
    def from_settings(cls, st: object, *, until_deadline: bool = False, kinds=KINDS) -> "RetryPolicy":
        """The policy for one call. ``until_deadline``: network, server and format failures are retried
        for as long as the deadline allows (polls and downloads of a task that was paid for)."""
        count = None if until_deadline else getattr(st, "max_retries")
        base, cap = getattr(st, "backoff_base"), getattr(st, "backoff_max")
        table = {
            # Limits are counted in images per minute and no Retry-After is documented:
            # a 429 gets more attempts and longer waits so a retry can outlast the window.
            RATE_LIMITED: Backoff(
                None if until_deadline else getattr(st, "rate_limit_retries"),
                getattr(st, "rate_limit_backoff"),
                getattr(st, "rate_limit_backoff_max"),
            ),
            SERVER: Backoff(count, base, cap),
            NETWORK: Backoff(count, base, cap),
            MALFORMED: Backoff(count, base, cap),
            # A result file that does not decode is fetched again twice (the last of the
            # three downloads from a freshly signed URL) before the job fails naming the task and image.
            CORRUPT: Backoff(getattr(st, "corrupt_retries", 2), base, cap),
        }
        return cls({k: v for k, v in table.items() if k in kinds})


@dataclass(frozen=True)
class Wait:
    """What the engine is about to wait for: told to ``on_wait`` before every sleep."""

    what: str
    kind: str
    attempt: int
    budget: Optional[int]
    delay: float
    problem: str
    retry_after: Optional[float] = None

    def describe(self) -> str:
        """A status line, e.g. ``rate-limited (HTTP 429): retrying in 12 s``."""
        shown = f"{self.delay:.0f} s" if self.delay >= 1 else f"{self.delay:.1f} s"
        return f"{_LABELS.get(self.kind, self.kind)} ({self.problem}): retrying in {shown}"


WaitCallback = Optional[Callable[[Wait], None]]
Sleeper = Callable[[Call, float], None]


def _call_sleep(call: Call, seconds: float) -> None:
    call.sleep(seconds)


class Retrier:
    """The retry state of one operation (one call, one poll, one image): attempts counted per kind.

    ``on_rate_limited`` is told of every 429 before its wait (pacing lowers its
    budget there), so no caller has to watch the waits for it.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        call: Call,
        *,
        what: str,
        on_rate_limited: Optional[Callable[[], object]] = None,
        sleep: Sleeper = _call_sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if isinstance(call, Deadline):  # a bare deadline: no cancel, nobody told
            call = Call(call)
        self.policy = policy
        self.call = call
        self.what = what
        self.on_rate_limited = on_rate_limited
        self._sleep = sleep
        self._rng = rng
        self.attempts: Dict[str, int] = {}
        self.last_problem = ""

    @property
    def deadline(self) -> Deadline:
        return self.call.deadline

    def tries(self, kind: Optional[str] = None) -> int:
        """Attempts made so far (of ``kind``, or in all): the first try counts."""
        if kind is not None:
            return self.attempts.get(kind, 0) + 1
        return sum(self.attempts.values()) + 1

    def retry(self, kind: str, problem: str, retry_after: Optional[float] = None) -> bool:
        """Wait before the next try and return ``True``; ``False`` when the caller should give up.

        Gives up when ``kind`` has no backoff or has used its attempts, and when a
        rate-limit wait (or a server's ``Retry-After``) cannot end before the
        deadline: waiting would only turn a clear "rate limited" into a timeout.
        Other waits are cut at the deadline, and the caller's deadline check
        reports the timeout.
        """
        self.last_problem = problem
        if kind == RATE_LIMITED and self.on_rate_limited is not None:
            self.on_rate_limited()  # whether or not we try again: pacing let one through too many
        backoff = self.policy.backoff(kind)
        if backoff is None:
            return False
        n = self.attempts.get(kind, 0) + 1
        if backoff.attempts is not None and n > backoff.attempts:
            return False
        delay = backoff.delay(n, self._rng)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if (kind == RATE_LIMITED or retry_after is not None) and delay > self.deadline.remaining():
            return False
        self.attempts[kind] = n
        if self.call.on_wait is not None:
            self.call.on_wait(Wait(self.what, kind, n, backoff.attempts, delay, problem, retry_after))
        self._sleep(self.call, delay)
        return True


# --------------------------------------------------------------------------- did it reach the server?

# Raised by urllib3 while opening a connection (NewConnectionError and
# NameResolutionError derive from ConnectTimeoutError): nothing was sent yet.
_BEFORE_SEND = (urllib3.exceptions.ConnectTimeoutError, ConnectionRefusedError)


def reached_server(exc: BaseException) -> bool:
    """``False`` only when the connection provably never opened, so the request cannot have been received.

    Decided from the exception types along the cause chain (requests wraps
    urllib3, which wraps the socket error), not from class names. Anything
    else (a read timeout, a reset after the body went out, a broken answer)
    counts as reached: a submit that may have started a task is not re-sent.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return False
    seen = set()
    todo = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, _BEFORE_SEND):
            return False
        todo.extend(a for a in getattr(cur, "args", ()) if isinstance(a, BaseException))
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo.extend((cur.__cause__, cur.__context__))
    return True
