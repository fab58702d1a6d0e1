"""Fault injection: a queue of faults per endpoint, each used up after ``count`` requests.

The handlers ask :meth:`FaultBook.take` for the next fault of their endpoint
and act it out; this module only checks that a fault makes sense and counts
it down.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

from ..endpoints import ENDPOINTS as _SUBMIT_ENDPOINTS

ENDPOINTS = ("submit", "poll", "models", "user", "image")
SUBMIT_APIS = tuple(_SUBMIT_ENDPOINTS)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)

# kind -> (endpoints it applies to, parameters it accepts). ``api`` (on the request kinds) narrows a
# "submit" fault to one submit endpoint of ppinfra.endpoints (e.g. api="txt2img"); without it, any submit.
KINDS: Dict[str, tuple] = {
    "status": (ENDPOINTS, {"status", "retry_after", "reason", "message", "api"}),
    "drop": (ENDPOINTS, {"after_create", "api"}),
    "slow": (ENDPOINTS, {"delay", "api"}),
    "malformed": (ENDPOINTS, {"body", "wrong_shape", "api"}),
    "truncate": (("image",), set()),
    "oversize": (("image",), {"size"}),
    "corrupt": (("image",), set()),
    "scheme": (("poll",), {"scheme"}),
    "task_failed": (("poll",), {"message", "task_id"}),
    "redirect": (ENDPOINTS, {"to", "status", "api"}),
}


@dataclass
class Fault:
    """One injected fault; ``remaining`` counts the requests it still applies to."""

    endpoint: str
    kind: str
    remaining: int
    params: Dict[str, Any] = field(default_factory=dict)


class FaultBook:
    """The pending faults of one sandbox, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: List[Fault] = []

    def inject(self, endpoint: str, kind: str, count: int = 1, **params: Any) -> Fault:
        """Queue a fault for the next ``count`` requests to ``endpoint``; see the package docstring."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        endpoints, allowed = KINDS[kind]
        if endpoint not in endpoints:
            raise ValueError(f"fault {kind!r} applies only to {', '.join(endpoints)}, not {endpoint!r}")
        unknown = set(params) - allowed
        if unknown:
            raise TypeError(
                f"fault {kind!r} takes no parameter {sorted(unknown)[0]!r} "
                f"(accepted: {', '.join(sorted(allowed)) or 'none'})"
            )
        if kind == "status" and not isinstance(params.get("status"), int):
            raise TypeError("a 'status' fault needs status=<int>, e.g. status=503")
        if kind == "slow" and "delay" not in params:
            raise TypeError("a 'slow' fault needs delay=<seconds>")
        if kind == "oversize" and "size" not in params:
            raise TypeError("an 'oversize' fault needs size=<bytes>")
        if kind == "redirect":
            if params.setdefault("to", "other") != "other":
                raise ValueError(
                    f"a 'redirect' fault goes to='other' (the sandbox's third host), got {params['to']!r}"
                )
            if params.setdefault("status", 307) not in REDIRECT_STATUSES:
                raise ValueError(
                    f"a 'redirect' status must be one of {REDIRECT_STATUSES}, got {params['status']!r}"
                )
        if "api" in params and (endpoint != "submit" or params["api"] not in SUBMIT_APIS):
            raise ValueError(
                f"api= narrows a 'submit' fault to one of {', '.join(SUBMIT_APIS)}, "
                f"got {params['api']!r} on {endpoint!r}"
            )
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        fault = Fault(endpoint, kind, count, dict(params))
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(
        self,
        endpoint: str,
        kinds: Optional[Iterable[str]] = None,
        task_id: Optional[str] = None,
        api: Optional[str] = None,
    ) -> Optional[Fault]:
        """Use one request's worth of the oldest pending fault of ``endpoint`` (restricted to ``kinds``).

        A fault with a ``task_id`` parameter is only taken by a request about that task, one with
        ``api`` only by a submit to that endpoint.
        """
        wanted = None if kinds is None else set(kinds)
        with self._lock:
            for fault in self._faults:
                target = fault.params.get("task_id")
                if target is not None and target != task_id:
                    continue
                if fault.params.get("api", api) != api:
                    continue
                if fault.endpoint == endpoint and (wanted is None or fault.kind in wanted):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> List[Fault]:
        """Faults not used up yet (a test can assert they all fired)."""
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
