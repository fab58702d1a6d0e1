"""Fan-out of one node run: B input images -> B concurrent tasks of any endpoint,
awaited without blocking ComfyUI.

The client is blocking, so every job runs in a worker thread of an executor
owned by this run (not ``asyncio.to_thread``: ComfyUI waits for those when a
prompt ends, which would hold a cancel until a read timeout). The coroutine
only polls: every ``TICK`` seconds it looks at ComfyUI's interrupt flag,
forwards the aggregated progress to the progress bar and the status text, and
checks the futures. On cancel it tells the workers to stop (they look at the
same flag and at an event every 50 ms) and raises ComfyUI's interrupt
exception at once, without joining them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Callable, List, Mapping, Optional, Sequence

from ..ppinfra.errors import CancelledError, PPInfraError, ValidationError
from ..ppinfra.limits import STATUS_PROCESSING as PROCESSING
from ..ppinfra.limits import STATUS_QUEUED as QUEUED
from ..ppinfra.limits import STATUS_SUCCEED as SUCCEED
from ..ppinfra.request import TaskRequest

from . import comfy_bridge

log = logging.getLogger("ppinfra")

# Concurrent tasks per node run: enough to overlap queue time, few enough to
# stay inside the provider's images-per-minute limits (429s are retried by the client).
MAX_CONCURRENCY = 4
# How often the coroutine looks at the interrupt flag and the futures.
TICK = 0.05
# The status line under the node changes at most this often.
STATUS_EVERY = 0.5


@dataclass(frozen=True, eq=False)
class Job:
    """Everything one node run sends: a template (fields set, uploads not) and each upload's images.

    ``images`` maps an upload's field path to an ``IMAGE`` tensor (or a list of
    PIL images, e.g. masks already sized): the first entry is the input batch,
    any other holds 1 image (used for every item) or one per item. A job with
    no images (txt2img) runs ``repeat`` tasks.
    """

    template: TaskRequest
    images: Mapping[str, Any] = field(default_factory=dict)
    repeat: int = 1
    # Uploads as lossless PNG while they fit the body cap (inpainting: the server keeps the unmasked pixels
    # of the upload, so JPEG's small errors would come back in them); None: the encoder's own policy.
    lossless: Optional[bool] = None

    @property
    def size(self) -> int:
        return batch_size(next(iter(self.images.values()))) if self.images else self.repeat


@dataclass(frozen=True)
class RunResult:
    """The outcome: decoded images ``[sum(results), H, W, 3]`` float32, per-item results and requests,
    in input order."""

    images: Any
    results: List[Any]
    requests: List[TaskRequest]
    elapsed: float


# --------------------------------------------------------------------------- batches


def batch_size(image: Any) -> int:
    if isinstance(image, (list, tuple)):
        return len(image)
    shape = getattr(image, "shape", None)
    if shape is None:
        raise ValidationError("image", "an IMAGE tensor", type(image).__name__)
    return int(shape[0]) if len(shape) == 4 else 1


def check_pairing(b: int, sides: Mapping[str, Any]) -> None:
    """A side image batch must hold 1 image (used for all) or ``b`` (paired item by item)."""
    for path, image in sides.items():
        n = batch_size(image)
        if n not in (1, b):
            field = path[: -len("_base64")] if path.endswith("_base64") else path
            raise ValidationError(
                field,
                f"a batch of 1 image (used for every input) or {b} (one per input image)",
                f"a batch of {n}",
                "make the control/reference batch match the input batch, or use one image",
            )


def prepare_requests(job: Job, should_stop: Callable[[], bool]) -> List[TaskRequest]:
    """Every item's checked request: the template's fields checked once, each image encoded once."""
    from ..ppinfra.binding import bind_batch
    from ..ppinfra.images import tensor_to_pils

    inputs = {
        path: (list(img) if isinstance(img, (list, tuple)) else tensor_to_pils(img, field=_field(path)))
        for path, img in job.images.items()
    }
    if should_stop():
        raise CancelledError("Cancelled before sending.")
    requests = bind_batch(job.template, inputs, should_stop=should_stop, lossless=job.lossless)
    return requests * job.repeat if not job.images else requests


def _field(path: str) -> str:
    return (
        "image"
        if path == "request.image_base64"
        else path[: -len("_base64")]
        if path.endswith("_base64")
        else path
    )


# --------------------------------------------------------------------------- progress


class _Tracker:
    """Per-item phase and percent, written by worker threads, read by the coroutine."""

    def __init__(self, n: int) -> None:
        self._lock = threading.Lock()
        self.phase = ["waiting"] * n
        self.percent = [0.0] * n
        self.eta: List[Optional[float]] = [None] * n
        self.task_ids: List[Optional[str]] = [None] * n
        # One TaskProgress per submitted item: the server's figure,
        # else an estimate that moves with the clock.
        self.views: List[Any] = [None] * n
        self.waits: List[Optional[tuple]] = [None] * n  # (wait, when told): budget or retry waits

    def set(self, i: int, phase: str, percent: Optional[float] = None) -> None:
        with self._lock:
            self.phase[i] = phase
            if percent is not None:
                self.percent[i] = percent

    def callback(self, i: int, view: Any = None) -> Callable[[Any], None]:
        def on_progress(p: Any) -> None:
            if view is not None:
                view.update(p)
            with self._lock:
                self.views[i] = view
                self.task_ids[i] = p.task_id
                self.phase[i] = "downloading" if p.status == SUCCEED else (p.status or "waiting")
                self.percent[i] = max(self.percent[i], float(p.percent or 0.0))
                self.eta[i] = p.eta

        return on_progress

    def on_wait(self, i: int) -> Callable[[Any], None]:
        """The client's ``on_wait`` for item ``i``: a wait (``delay`` s,
        ``describe()``) shows in the status."""

        def told(wait: Any) -> None:
            with self._lock:
                self.waits[i] = (wait, time.monotonic()) if wait.delay > 0 else None

        return told

    def overall(self) -> float:
        """Mean percent across items, 0..100."""
        with self._lock:
            for i, view in enumerate(self.views):
                if view is not None:  # per item never backwards, even when the server's first figure is low
                    self.percent[i] = max(self.percent[i], view.percent())
            return sum(self.percent) / max(1, len(self.percent))

    def status(self, elapsed: float) -> str:
        with self._lock:
            phases, etas, pct = list(self.phase), list(self.eta), list(self.percent)
            guessed = {i for i, v in enumerate(self.views) if v is not None and v.estimated}
            now = time.monotonic()
            waits = {
                i: replace(w, delay=w.delay - (now - at))
                for i, (w, at) in ((i, e) for i, e in enumerate(self.waits) if e is not None)
                if w.delay - (now - at) > 0
            }
        n = len(phases)
        for i in waits:
            phases[i] = "told"  # shown with what it waits for, not as "submitting"
        parts = []
        done = phases.count("done")
        queued = phases.count(QUEUED)
        running = [i for i, p in enumerate(phases) if p == PROCESSING]
        waiting = [i for i, p in enumerate(phases) if p == QUEUED]
        if queued:
            estimate = [pct[i] for i in waiting if i in guessed]
            parts.append(
                f"{queued} queued"
                + (f" ~{sum(estimate) / len(estimate):.0f}% (estimated)" if estimate else "")
            )
        if running:
            mean = sum(pct[i] for i in running) / len(running)
            guess = any(i in guessed for i in running)
            text = (
                f"{len(running)} processing {'~' if guess else ''}{mean:.0f}%"
                f"{' (estimated)' if guess else ''}"
            )
            known = [etas[i] for i in running if etas[i]]  # eta 0 means "not reported"
            if known:
                text += f", eta {max(known):.0f} s"
            parts.append(text)
        for phase, label in (
            ("encoding", "preparing"),
            ("waiting", "waiting for a slot"),
            ("submitting", "submitting"),
        ):
            if phase in phases:
                parts.append(f"{phases.count(phase)} {label}")
        if "downloading" in phases:
            parts.append(f"{phases.count('downloading')} downloading")
        for kind in sorted({w.kind for w in waits.values()}):
            group = [w for w in waits.values() if w.kind == kind]  # e.g. "2 waiting for the ... budget: 12 s"
            parts.append(f"{len(group)} {min(group, key=lambda w: w.delay).describe()}")
        parts.append(f"{done}/{n} done")
        return "PPInfra: " + ", ".join(parts) + f" · {elapsed:.0f} s elapsed"


# --------------------------------------------------------------------------- the run


class BatchRun:
    """One node execution: owns the executor and the client, and closes both however the run ends."""

    def __init__(
        self,
        client: Any,
        node_id: Optional[str],
        n: int,
        max_concurrency: int = MAX_CONCURRENCY,
        notes: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.notes = tuple(notes)
        self.node_id = node_id
        self.n = n
        self.cancel = threading.Event()
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, min(n, max_concurrency)), thread_name_prefix="ppinfra-node"
        )
        self.tracker = _Tracker(n)
        self.bar = comfy_bridge.NodeProgressBar(100, node_id)
        self.started = time.monotonic()
        self._futures: List[Future] = []
        self._last_status = ""
        self._last_status_at = 0.0
        self._last_percent = -1.0

    def should_cancel(self) -> bool:
        return self.cancel.is_set() or comfy_bridge.processing_interrupted()

    # -- waiting -------------------------------------------------------------
    async def wait_all(self, futures: List[Future]) -> List[Any]:
        """Await ``futures`` (in input order), reporting progress;
        cancel or the first failure ends the wait."""
        self._futures.extend(futures)
        while True:
            if comfy_bridge.processing_interrupted() or self.cancel.is_set():
                raise self._interrupted()
            for fut in futures:
                if fut.done() and not fut.cancelled() and fut.exception() is not None:
                    exc = fut.exception()
                    if isinstance(exc, CancelledError):
                        raise self._interrupted()
                    self.cancel.set()  # the others stop: their results could not be returned anyway
                    raise as_ppinfra_error(exc)
            if all(f.done() for f in futures):
                self.report(force=True)
                return [f.result() for f in futures]
            self.report()
            await asyncio.sleep(TICK)

    def _interrupted(self) -> BaseException:
        self.cancel.set()
        log.info(
            "PPInfra node %s: cancelled; tasks already submitted may still run and be billed",
            self.node_id or "",
        )
        self.send("PPInfra: cancelled")
        return comfy_bridge.interrupt_exception()

    def report(self, force: bool = False) -> None:
        percent = round(self.tracker.overall(), 1)
        if percent != self._last_percent:
            self._last_percent = percent
            self.bar.update(percent)
        now = time.monotonic()
        if force or now - self._last_status_at >= STATUS_EVERY:
            text = self.tracker.status(now - self.started)
            if text != self._last_status:
                self._last_status, self._last_status_at = text, now
                self.send(text)

    def send(self, text: str) -> None:
        """The status line under the node; warnings stay below it (each message replaces the last)."""
        comfy_bridge.send_status("\n".join((text, *(f"warning: {n}" for n in self.notes))), self.node_id)

    # -- phases ----------------------------------------------------------------
    async def run(self, job: Job) -> RunResult:
        try:
            for i in range(self.n):
                self.tracker.set(i, "encoding")
            # Every request is encoded and validated before the first one is sent.
            (requests,) = await self.wait_all([self.pool.submit(prepare_requests, job, self.should_cancel)])
            for i in range(self.n):
                self.tracker.set(i, "waiting")  # for a free worker: at most max_concurrency run at once
            decoder = result_decoder(requests)
            offsets = [sum(r.images_expected for r in requests[:i]) for i in range(len(requests))]
            runs = [
                self.pool.submit(self._one, i, req, decoder, offsets[i]) for i, req in enumerate(requests)
            ]
            results = await self.wait_all(runs)
            total = sum(len(r.images) for r in results)
            done = f"PPInfra: {total} image(s) in {time.monotonic() - self.started:.1f} s"
            cached = sum(1 for r in results if getattr(r, "from_cache", False))  # result cache
            if cached:
                how_many = "all" if cached == len(results) else f"{cached} of {len(results)}"
                done += f" ({how_many} from cache, no charge)"
            self.send(done)
            from .account_panel import (
                show_balance_after_run,
            )  # the balance follows in the background, never fails a run

            show_balance_after_run(getattr(self.client, "settings", None), done, self.send)
            return RunResult(
                images=decoder.array,
                results=results,
                requests=requests,
                elapsed=time.monotonic() - self.started,
            )
        finally:
            self.close()

    def _one(self, i: int, req: TaskRequest, decoder: Any, offset: int) -> Any:
        self.tracker.set(i, "submitting")

        def decode(task_id: str, index: int, data: bytes) -> None:
            # In the download worker, as each file arrives: decoding overlaps the other downloads.
            decoder.put(offset + index, data, task_id=task_id, index=index)

        from ..ppinfra.progress_view import TaskProgress
        from .widgets import family_of

        family = None if req.endpoint == "upscale" else family_of("checkpoint", req.model_name)
        view = TaskProgress.for_request(
            req, family=family, base_url=getattr(getattr(self.client, "settings", None), "base_url", "")
        )
        result = self.client.run(
            req,
            on_progress=self.tracker.callback(i, view),
            should_cancel=self.should_cancel,
            on_image=decode,
            on_wait=self.tracker.on_wait(i),
        )
        self.tracker.set(i, "done", 100.0)
        return result

    def close(self) -> None:
        """Release the executor and the client without waiting here: threads end on their own
        (cancel is set)."""
        pending = [f for f in self._futures if not f.done()]
        if pending:
            self.cancel.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
        if not pending:
            self.client.close()
            return

        def close_later() -> None:
            wait(pending, timeout=60)
            self.client.close()

        threading.Thread(target=close_later, name="ppinfra-close", daemon=True).start()


def result_decoder(requests: List[TaskRequest]) -> Any:
    """One preallocated ``[sum(images), H, W, 3]`` array for the whole batch, filled as files arrive.

    Every item of an IMAGE batch has the same size, so every request asks for
    the same output size; a result of another size is resized (and logged).
    """
    from ..ppinfra.images import ResultDecoder

    return ResultDecoder(sum(r.images_expected for r in requests), *requests[0].output_size())


def as_ppinfra_error(exc: BaseException) -> BaseException:
    """Errors reach ComfyUI as PPInfraError; anything else is a bug, wrapped with its type for the report."""
    if isinstance(exc, PPInfraError) or comfy_bridge.is_interrupt(exc):
        return exc
    wrapped = PPInfraError(
        f"Unexpected {exc.__class__.__name__} in the PPInfra node: {exc}. "
        "Please report it with the console log."
    )
    wrapped.__cause__ = exc
    return wrapped


async def run_job(
    job: Job,
    client: Any,
    node_id: Optional[str] = None,
    max_concurrency: int = MAX_CONCURRENCY,
    notes: Sequence[str] = (),
) -> RunResult:
    """Run ``job`` for every item of its input batch; the client is closed afterwards.

    ``notes`` (e.g. family warnings) stay visible under every status line.
    """
    n = job.size
    try:
        if job.images:
            check_pairing(n, dict(list(job.images.items())[1:]))
    except BaseException:
        client.close()
        raise
    return await BatchRun(client, node_id, n, max_concurrency, notes).run(job)
