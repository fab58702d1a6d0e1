"""Task lifecycle: QUEUED -> PROCESSING -> SUCCEED | FAILED, computed from timestamps.

A task's state is a pure function of the clock, its timings (captured at
submit, so ``configure`` only affects later tasks) and whether its images are
rendered. Rendering starts in a background thread when processing starts, and
SUCCEED is only reported once both the time has elapsed and the images exist,
so a download right after SUCCEED only has to serve bytes.
"""
from __future__ import annotations

import math
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from PIL import Image

from ..limits import SEED_MAX
from .imaging import render_results

QUEUED = "TASK_STATUS_QUEUED"
PROCESSING = "TASK_STATUS_PROCESSING"
SUCCEED = "TASK_STATUS_SUCCEED"
FAILED = "TASK_STATUS_FAILED"


@dataclass
class TaskState:
    """What a poll at one instant reports."""

    status: str
    progress_percent: int
    eta: int
    reason: str = ""


@dataclass
class Task:
    """One accepted submit. ``images`` holds the encoded results once rendered.

    ``created`` and ``done_at`` are wall-clock (``time.time()``); ``done_at`` is
    the instant the task became terminal (SUCCEED or FAILED), None before.
    """

    task_id: str
    body: Dict[str, Any]
    request: Dict[str, Any]
    extra: Dict[str, Any]
    seed: int
    image_type: str
    image_num: int
    width: int
    height: int
    created: float
    queue_seconds: float
    task_seconds: float
    fail_reason: Optional[str] = None
    stuck: bool = False
    images: Optional[List[bytes]] = None
    done_at: Optional[float] = None
    created_mono: float = 0.0
    _done_mono: Optional[float] = field(default=None, repr=False)
    _source: Optional[Image.Image] = field(default=None, repr=False)

    @property
    def status(self) -> str:
        """The status a poll would report now."""
        return self.state().status

    @property
    def started_at(self) -> float:
        """Wall time processing starts (or started)."""
        return self.created + self.queue_seconds

    def state(self, now_mono: Optional[float] = None) -> TaskState:
        """The task as seen at ``now_mono`` (``time.monotonic()``, default now)."""
        now = time.monotonic() if now_mono is None else now_mono
        elapsed = now - self.created_mono
        total = self.queue_seconds + self.task_seconds
        if self.stuck:
            return TaskState(QUEUED, 0, max(1, math.ceil(total)))
        if elapsed < self.queue_seconds:
            return TaskState(QUEUED, 0, math.ceil(total - elapsed))
        done = self._done_mono
        if done is not None and now >= done:
            if self.fail_reason is not None:
                return TaskState(FAILED, 0, 0, self.fail_reason)
            return TaskState(SUCCEED, 100, 0)
        frac = (elapsed - self.queue_seconds) / self.task_seconds if self.task_seconds > 0 else 1.0
        return TaskState(PROCESSING, max(0, min(99, int(frac * 100))), max(0, math.ceil(total - elapsed)))


class TaskStore:
    """All tasks of one sandbox, and the timers that render them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: Dict[str, Task] = {}
        self._timers: List[threading.Timer] = []

    def snapshot(self) -> Dict[str, Task]:
        with self._lock:
            return dict(self._tasks)

    def get(self, task_id: str) -> Optional[Task]:
        with self._lock:
            return self._tasks.get(task_id)

    def create(self, *, body: Dict[str, Any], request: Dict[str, Any], extra: Dict[str, Any],
               source: Image.Image, seed: int, image_type: str, queue_seconds: float,
               task_seconds: float, fail_reason: Optional[str], stuck: bool) -> Task:
        """Accept a validated submit and schedule its rendering."""
        image_num = request["image_num"]
        if seed == -1:
            # The server picks; image i uses seed + i, so leave room for the batch.
            seed = random.randint(0, SEED_MAX - image_num)
        now_mono = time.monotonic()
        task = Task(task_id=str(uuid.uuid4()), body=body, request=request, extra=extra, seed=seed,
                    image_type=image_type, image_num=image_num, width=request["width"],
                    height=request["height"], created=time.time(), created_mono=now_mono,
                    queue_seconds=queue_seconds, task_seconds=task_seconds, fail_reason=fail_reason,
                    stuck=stuck, _source=source)
        with self._lock:
            self._tasks[task.task_id] = task
        if stuck:
            task._source = None
        elif fail_reason is not None:
            self._finish(task, now_mono + queue_seconds + task_seconds)
            task._source = None
        else:
            timer = threading.Timer(queue_seconds, self._render, args=(task,))
            timer.daemon = True
            with self._lock:
                self._timers = [t for t in self._timers if t.is_alive()] + [timer]
            timer.start()
        return task

    def _render(self, task: Task) -> None:
        try:
            task.images = render_results(task._source, task.width, task.height, task.seed,
                                         task.image_num, task.image_type)
        except Exception as exc:  # a sandbox bug must surface as a failed task, not a hung one
            task.fail_reason = f"sandbox render failed: {exc}"
        task._source = None
        self._finish(task, max(time.monotonic(), task.created_mono + task.queue_seconds + task.task_seconds))

    @staticmethod
    def _finish(task: Task, done_mono: float) -> None:
        task.done_at = task.created + (done_mono - task.created_mono)
        task._done_mono = done_mono

    def cancel_timers(self) -> None:
        """Stop renders not yet started (on shutdown)."""
        with self._lock:
            timers, self._timers = self._timers, []
        for t in timers:
            t.cancel()
