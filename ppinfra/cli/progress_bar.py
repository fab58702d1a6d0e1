"""One status line for a folder run on stderr: a bar, counts, the budget wait and an ETA.

On a terminal the line is redrawn in place; piped to a file or another
program, a line is written only when the counts change or every few seconds.
"""

from __future__ import annotations

import math
import sys
import time
from typing import List, Optional

from ..logs import eprint

WIDTH = 24
# Seconds between lines when stderr is not a terminal and nothing else changed.
LOG_EVERY = 10.0


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressBar:
    """Renders the run's counts; :meth:`update` decides whether the line is shown now."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self._last_counts: Optional[tuple] = None
        self._last_at = 0.0

    def render(
        self,
        *,
        done: int,
        failed: int,
        running: int,
        sending: int,
        budget_waits: List[float],
        eta: Optional[float],
        elapsed: float,
    ) -> str:
        filled = int(WIDTH * (done + failed) / max(1, self.total))
        parts = [f"[{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{self.total} done"]
        if failed:
            parts.append(f"{failed} failed")
        if running:
            parts.append(f"{running} running")
        if budget_waits:
            parts.append(
                f"{len(budget_waits)} waiting for the images-per-minute budget "
                f"(next in {math.ceil(budget_waits[0])}s)"
            )
        if sending > len(budget_waits):
            parts.append(f"{sending - len(budget_waits)} sending")
        parts.append(f"{_clock(elapsed)} elapsed")
        if eta is not None:
            parts.append(f"eta {_clock(eta)}")
        return ", ".join(parts)

    def update(self, *, final: bool = False, **counts: object) -> None:
        line = self.render(**counts)  # type: ignore[arg-type]
        now = time.monotonic()
        if self.tty:
            eprint("\r\x1b[K" + line, end="\n" if final else "")
            return
        key = tuple(counts[k] for k in ("done", "failed", "running", "sending"))
        if final or key != self._last_counts or now - self._last_at >= LOG_EVERY:
            self._last_counts, self._last_at = key, now
            eprint(line)
