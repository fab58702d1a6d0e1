"""How long a task of a given kind takes on this install, learned from earlier tasks and kept on disk.

Many of the provider's APIs report neither ``eta`` nor ``progress_percent``
until a task ends (docs/api.md, "Task result"). So that a person still sees
the wait move, the expected duration of a task is estimated: the median of the
last runs of the same kind (checkpoint family, output pixels, steps,
image_num), else a formula scaled by how this install's tasks compared with
it so far, else the bare formula. The history is a small JSON file next to the
model cache, written atomically; a broken file counts as no history.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

log = logging.getLogger("ppinfra")

HISTORY_FILE = "task-durations.json"
SAMPLES_PER_KIND = 20  # the median of the last 20 runs follows a change of speed within a day
MAX_KINDS = 200  # least recently updated kinds are forgotten past this
MAX_RATIOS = 50
MAX_HOSTS = 10
# Bucket upper bounds: tasks in one bucket take about as long as each other.
PIXEL_BUCKETS = (300_000, 600_000, 1_100_000, 2_200_000, 4_200_000)  # ~512², ~768², ~1024², ~1448², 2048²
STEP_BUCKETS = (10, 20, 30, 50, 100)
# The formula used before there is any history: a fixed part (queue, upload,
# model load) plus work proportional to megapixels x steps x images. Chosen to
# err long: an estimate that runs out early stalls near 99 %, one that is too
# long only jumps at the end.
BASE_SECONDS = 5.0
SECONDS_PER_MEGAPIXEL_STEP = 0.3
FAMILY_FACTOR = {"sd15": 1.0, "sdxl": 1.5, None: 1.3}
# Where the linear part of the curve ends; past it, the figure creeps toward the cap.
LINEAR_UNTIL = 90.0
CAP = 99.0
TAIL_SLOPE = 30.0


@dataclass(frozen=True)
class TaskKind:
    """What decides how long a task takes: endpoint, checkpoint family, output size, steps, images, and where.

    ``host`` keeps histories apart: a sandbox's one-second tasks must never
    shorten the estimate for the real service; ``endpoint`` keeps an upscale's
    seconds out of txt2img's history.
    """

    family: Optional[str]
    width: int
    height: int
    steps: int
    image_num: int
    host: str = ""
    endpoint: str = "img2img"

    @classmethod
    def of(cls, request: Any, family: Optional[str] = None, base_url: str = "") -> "TaskKind":
        """The kind of a bound request (any endpoint's; output size known)."""
        from .hosts import host_label

        width, height = request.output_size()
        return cls(
            family,
            int(width or 0),
            int(height or 0),
            int(getattr(request, "steps", 1) or 1),
            int(request.images_expected),
            host_label(base_url),
            request.endpoint,
        )

    def key(self) -> str:
        """The history bucket: tasks with the same key are expected to take about as long."""
        host = self.host or "default"
        if self.endpoint != "img2img":  # img2img keeps the keys of the histories recorded before endpoints
            host = f"{host}/{self.endpoint}"
        return "|".join(
            (
                host,
                self.family or "unsure",
                f"px{_bucket(self.width * self.height, PIXEL_BUCKETS)}",
                f"st{_bucket(self.steps, STEP_BUCKETS)}",
                f"n{self.image_num}",
            )
        )


def _bucket(value: int, bounds: tuple) -> int:
    for i, bound in enumerate(bounds):
        if value <= bound:
            return i
    return len(bounds)


def default_seconds(kind: TaskKind) -> float:
    """The expected duration before any history: base plus megapixels x steps x images x a family factor."""
    megapixels = max(kind.width * kind.height, 128 * 128) / 1e6
    work = megapixels * max(kind.steps, 1) * max(kind.image_num, 1)
    return BASE_SECONDS + SECONDS_PER_MEGAPIXEL_STEP * work * FAMILY_FACTOR.get(
        kind.family, FAMILY_FACTOR[None]
    )


def estimated_percent(elapsed: float, expected: float) -> float:
    """Elapsed against expected as a percent that never reaches 100.

    Linear up to 90 % at 90 % of the expected time; after that it creeps toward
    99 % (a task running late still looks alive) and stops there.
    """
    if not (expected > 0) or not (elapsed > 0):
        return 0.0
    linear = 100.0 * elapsed / expected
    if linear <= LINEAR_UNTIL:
        return linear
    room = CAP - LINEAR_UNTIL
    late = (linear - LINEAR_UNTIL) / 100.0  # in expected durations
    # Starts at TAIL_SLOPE % per expected duration, so there is no kink to see at the join.
    return min(CAP, CAP - room * math.exp(-late * TAIL_SLOPE / room))


class Estimator:
    """Expected task durations, learned from this install's finished tasks.

    Thread-safe; several processes may share the file (each write merges into
    what is on disk). Nothing here ever raises on a bad or unwritable file: the
    estimate only makes a progress figure, never a decision.
    """

    def __init__(self, cache_dir: str) -> None:
        self.path = os.path.join(cache_dir, HISTORY_FILE)
        self._lock = threading.Lock()

    # -------------------------------------------------------------- file
    def _load(self) -> Dict[str, Any]:
        try:
            with open(self.path, "r", encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return _empty()
        except (OSError, ValueError) as exc:
            log.debug("task duration history %s unreadable (%s): starting afresh", self.path, exc)
            return _empty()
        return _clean(data)

    def _save(self, data: Dict[str, Any]) -> None:
        tmp = f"{self.path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, separators=(",", ":"))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.debug("task duration history not saved: %s", exc)
        finally:
            if os.path.exists(tmp):
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    # -------------------------------------------------------------- API
    def expected(self, kind: TaskKind) -> float:
        """Seconds a task of ``kind`` is expected to take from submit to SUCCEED."""
        with self._lock:
            data = self._load()
        entry = data["kinds"].get(kind.key())
        if entry and entry["samples"]:
            return max(0.5, statistics.median(entry["samples"]))
        ratios = data["ratios"].get(kind.host or "default", {}).get("values")
        scale = statistics.median(ratios) if ratios else 1.0
        return default_seconds(kind) * min(5.0, max(0.2, scale))

    def record(self, kind: TaskKind, seconds: float) -> None:
        """Remember that a task of ``kind`` took ``seconds`` (submit to SUCCEED)."""
        if not (isinstance(seconds, (int, float)) and 0 < seconds < 86400):
            return
        with self._lock:
            data = self._load()
            entry = data["kinds"].setdefault(kind.key(), {"samples": [], "updated": 0.0})
            entry["samples"] = (entry["samples"] + [round(float(seconds), 3)])[-SAMPLES_PER_KIND:]
            entry["updated"] = time.time()
            mine = data["ratios"].setdefault(kind.host or "default", {"values": [], "updated": 0.0})
            mine["values"] = (mine["values"] + [round(seconds / default_seconds(kind), 4)])[-MAX_RATIOS:]
            mine["updated"] = time.time()
            data["ratios"] = _newest(data["ratios"], MAX_HOSTS)
            data["kinds"] = _newest(data["kinds"], MAX_KINDS)
            self._save(data)


def _empty() -> Dict[str, Any]:
    return {"version": 1, "kinds": {}, "ratios": {}}


def _newest(entries: Dict[str, Dict[str, Any]], limit: int) -> Dict[str, Dict[str, Any]]:
    """The ``limit`` most recently updated entries (the file stays small however many kinds are run)."""
    if len(entries) <= limit:
        return entries
    return dict(sorted(entries.items(), key=lambda kv: kv[1]["updated"])[-limit:])


def _numbers(value: Any, limit: int) -> List[float]:
    if not isinstance(value, list):
        return []
    return [
        float(v) for v in value if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 86400
    ][-limit:]


def _clean(data: Any) -> Dict[str, Any]:
    """Only what a valid history holds: anything else in a hand-edited or truncated file is dropped."""
    out = _empty()
    if not isinstance(data, dict):
        return out
    for section, field, limit in (("kinds", "samples", SAMPLES_PER_KIND), ("ratios", "values", MAX_RATIOS)):
        entries = data.get(section) if isinstance(data.get(section), dict) else {}
        for key, entry in entries.items():
            if isinstance(key, str) and isinstance(entry, dict):
                values = _numbers(entry.get(field), limit)
                updated = entry.get("updated")
                if values:
                    out[section][key] = {
                        field: values,
                        "updated": float(updated)
                        if isinstance(updated, (int, float)) and not isinstance(updated, bool)
                        else 0.0,
                    }
    return out


_shared: Dict[str, Estimator] = {}
_shared_lock = threading.Lock()


def estimator_for(cache_dir: str) -> Estimator:
    """One :class:`Estimator` per directory, so concurrent tasks of a batch share its lock."""
    with _shared_lock:
        est = _shared.get(cache_dir)
        if est is None:
            est = _shared[cache_dir] = Estimator(cache_dir)
        return est
