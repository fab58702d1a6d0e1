"""Task lifecycle: QUEUED -> PROCESSING -> SUCCEED | FAILED, computed from timestamps.

A task's state is a pure function of the clock, its timings (captured at
submit, so ``configure`` only affects later tasks) and whether its images are
rendered. Rendering starts in a background thread when processing starts, and
SUCCEED is only reported once both the time has elapsed and the images exist,
so a download right after SUCCEED only has to serve bytes.

A long-running sandbox keeps bounded memory: the store holds at most
``max_tasks`` tasks (the oldest are forgotten, and a poll for one answers
``TASK_NOT_FOUND``) and at most ``max_image_bytes`` of rendered results (the
oldest tasks' images are dropped first; their links then answer
``NoSuchKey``, as an object store does once it has deleted a file). The
base64 input images in the kept bodies count against ``max_body_bytes``:
past it, the oldest tasks' ``body`` and ``request`` keep every field but
their ``image_base64`` strings, which become a short placeholder.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional

from ..limits import SEED_MAX
from ..limits import STATUS_FAILED as FAILED
from ..limits import STATUS_PROCESSING as PROCESSING
from ..limits import STATUS_QUEUED as QUEUED
from ..limits import STATUS_SUCCEED as SUCCEED
from .imaging import Job

PROGRESS_MODES = ("reported", "silent")
# task.task_type per endpoint. No inpainting value is documented (SIBLINGS.md): clients must not branch on it.
TASK_TYPES = {
    "img2img": "IMG_TO_IMG",
    "txt2img": "TXT_TO_IMG",
    "inpainting": "INPAINTING",
    "upscale": "UPSCALE",
}
DEFAULT_MAX_TASKS = 10_000
DEFAULT_MAX_IMAGE_BYTES = 1024 * 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024


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
    ``progress`` is ``"reported"`` (eta and progress_percent filled in) or
    ``"silent"`` (both stay 0 throughout, SUCCEED included, as the provider's
    documented samples show). ``http_failure`` is set by a ``task_failed``
    fault: every poll of the task then answers HTTP 500 ``TASK_FAILED`` with it.
    ``endpoint`` is the submit's endpoint name; where it does not report
    progress (inpainting, upscale), ``progress_percent`` stays 0 until SUCCEED.
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
    progress: str = "reported"
    http_failure: Optional[str] = None
    endpoint: str = "img2img"
    reports_progress: bool = True
    images: Optional[List[bytes]] = None
    done_at: Optional[float] = None
    created_mono: float = 0.0
    _body_size: int = field(default=0, repr=False)
    _done_mono: Optional[float] = field(default=None, repr=False)
    _job: Optional[Job] = field(default=None, repr=False)

    @property
    def task_type(self) -> str:
        return TASK_TYPES[self.endpoint]

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
        state = self._state(now_mono)
        if self.http_failure is not None:
            return TaskState(FAILED, 0, 0, self.http_failure)
        if self.progress == "silent":
            state.eta = state.progress_percent = 0
        elif not self.reports_progress and state.status != SUCCEED:
            state.progress_percent = 0
        return state

    def _state(self, now_mono: Optional[float]) -> TaskState:
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
    """The recent tasks of one sandbox (at most ``max_tasks``, images up to ``max_image_bytes``),
    and their timers."""

    def __init__(
        self,
        max_tasks: int = DEFAULT_MAX_TASKS,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if max_tasks < 1 or max_image_bytes < 0 or max_body_bytes < 0:
            raise ValueError(
                f"max_tasks must be >= 1, max_image_bytes and max_body_bytes >= 0, got "
                f"{max_tasks}, {max_image_bytes}, {max_body_bytes}"
            )
        self.max_tasks = max_tasks
        self.max_image_bytes = max_image_bytes
        self.max_body_bytes = max_body_bytes
        self._with_body: Deque[Task] = deque()  # tasks whose body still holds its images, oldest first
        self._body_bytes = 0
        self._lock = threading.Lock()
        self._tasks: "OrderedDict[str, Task]" = OrderedDict()
        self._rendered: Deque[Task] = deque()  # tasks holding images, oldest first
        self._image_bytes = 0
        self._timers: List[threading.Timer] = []

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)

    @property
    def image_bytes(self) -> int:
        """Bytes of rendered results held now."""
        with self._lock:
            return self._image_bytes

    def snapshot(self) -> Dict[str, Task]:
        with self._lock:
            return dict(self._tasks)

    def get(self, task_id: str) -> Optional[Task]:
        with self._lock:
            return self._tasks.get(task_id)

    def create(
        self,
        *,
        body: Dict[str, Any],
        request: Dict[str, Any],
        extra: Dict[str, Any],
        job: Job,
        width: int,
        height: int,
        image_num: int,
        seed: int,
        image_type: str,
        queue_seconds: float,
        task_seconds: float,
        fail_reason: Optional[str],
        stuck: bool,
        progress: str = "reported",
        endpoint: str = "img2img",
        reports_progress: bool = True,
    ) -> Task:
        """Accept a validated submit and schedule its rendering (``job(seed)`` renders the results)."""
        if seed == -1:
            # The server picks; image i uses seed + i, so leave room for the batch.
            seed = random.randint(0, SEED_MAX - image_num)
        now_mono = time.monotonic()
        task = Task(
            task_id=str(uuid.uuid4()),
            body=body,
            request=request,
            extra=extra,
            seed=seed,
            image_type=image_type,
            image_num=image_num,
            width=width,
            height=height,
            created=time.time(),
            created_mono=now_mono,
            queue_seconds=queue_seconds,
            task_seconds=task_seconds,
            fail_reason=fail_reason,
            stuck=stuck,
            progress=progress,
            endpoint=endpoint,
            reports_progress=reports_progress,
            _job=job,
        )
        with self._lock:
            self._tasks[task.task_id] = task
            while len(self._tasks) > self.max_tasks:
                _, old = self._tasks.popitem(last=False)
                old._job = None  # a forgotten task still rendering lets go of its input
            while self._rendered and self._rendered[0].task_id not in self._tasks:
                self._drop_images(self._rendered.popleft())
            while self._with_body and self._with_body[0].task_id not in self._tasks:
                self._body_bytes -= self._with_body.popleft()._body_size
            task._body_size = _image_chars(body)
            self._with_body.append(task)
            self._body_bytes += task._body_size
            while self._body_bytes > self.max_body_bytes and len(self._with_body) > 1:
                old = self._with_body.popleft()
                self._body_bytes -= old._body_size
                old.body, old.request = _without_images(old.body), _without_images(old.request)
        if stuck:
            task._job = None
        elif fail_reason is not None:
            self._finish(task, now_mono + queue_seconds + task_seconds)
            task._job = None
        else:
            timer = threading.Timer(queue_seconds, self._render, args=(task,))
            timer.daemon = True
            with self._lock:
                self._timers = [t for t in self._timers if t.is_alive()] + [timer]
            timer.start()
        return task

    def _render(self, task: Task) -> None:
        job, task._job = task._job, None
        try:
            if job is None:
                raise RuntimeError("the task was forgotten before it rendered")
            task.images = job(task.seed)
        except Exception as exc:  # a sandbox bug must surface as a failed task, not a hung one
            task.fail_reason = f"sandbox render failed: {exc}"
        self._hold(task)
        self._finish(task, max(time.monotonic(), task.created_mono + task.queue_seconds + task.task_seconds))

    def _hold(self, task: Task) -> None:
        """Count the task's images against ``max_image_bytes``, dropping the oldest tasks' images past it."""
        if not task.images:
            return
        with self._lock:
            self._rendered.append(task)
            self._image_bytes += sum(len(b) for b in task.images)
            while self._image_bytes > self.max_image_bytes and len(self._rendered) > 1:
                self._drop_images(self._rendered.popleft())

    def _drop_images(self, task: Task) -> None:
        # Called with the lock held.
        self._image_bytes -= sum(len(b) for b in task.images or [])
        task.images = []

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


def _image_chars(value: Any) -> int:
    """Characters of the ``image_base64`` strings in a parsed body: what keeping it costs."""
    if isinstance(value, dict):
        return sum(
            len(v) if k.endswith("image_base64") and isinstance(v, str) else _image_chars(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return sum(_image_chars(v) for v in value)
    return 0


def _without_images(value: Any) -> Any:
    """A copy of a parsed body with every ``image_base64`` string replaced by a placeholder."""
    if isinstance(value, dict):
        return {
            k: (
                f"<{len(v)} characters dropped to bound memory>"
                if k.endswith("image_base64") and isinstance(v, str)
                else _without_images(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_without_images(v) for v in value]
    return value
