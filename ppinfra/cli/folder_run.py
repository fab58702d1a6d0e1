"""Folder runs for the CLI: many inputs, a few in flight, under the shared budget, resumable.

Each input becomes one task of any endpoint. Results are written as
``<stem>_<k>.<ext>`` in the output folder; txt2img's tasks have no input and
are items numbered by :func:`counted_items`. A journal (JSON lines, :data:`JOURNAL_NAME` in the output
folder) records each task id the moment the server accepts it and each item
once its files are written, so a run started again after an interruption
submits nothing twice: a finished item is skipped, an accepted one is polled
and downloaded under its task id (submitting is not idempotent and bills).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from ..errors import (
    AuthenticationError,
    CancelledError,
    ConfigError,
    EndpointNotOfferedError,
    InsufficientBalanceError,
    NotFoundError,
    PermissionDeniedError,
    PPInfraError,
    TaskFailedError,
    ValidationError,
)
from ..logs import eprint
from ..result_cache import lookup_for
from ..waiting import Call, Deadline
from .journal import Journal
from .progress_bar import ProgressBar

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
JOURNAL_NAME = ".ppinfra-journal.jsonl"
EXTENSIONS = {"png": "png", "jpeg": "jpg", "jpg": "jpg", "webp": "webp"}
# Errors about the account, the setup or the host (no upscale there): every other item would fail the
# same way, so the run stops.
FATAL = (
    AuthenticationError,
    PermissionDeniedError,
    InsufficientBalanceError,
    ConfigError,
    EndpointNotOfferedError,
)


def collect_inputs(paths: Sequence[str]) -> List[str]:
    """Files as given, folders as their image files (sorted, not recursive); an error names a bad path."""
    found: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(
                n
                for n in os.listdir(path)
                if n.lower().endswith(IMAGE_SUFFIXES)
                and not n.startswith(".")
                and os.path.isfile(os.path.join(path, n))
            )
            if not names:
                raise ValidationError("--image", f"a folder holding {'/'.join(IMAGE_SUFFIXES)} files", path)
            found.extend(os.path.join(path, n) for n in names)
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise ValidationError("--image", "an existing image file or folder", path)
    seen = set()
    unique = []
    for p in found:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def output_stems(inputs: Sequence[str]) -> Dict[str, str]:
    """input path -> the stem its results are named after; clashing stems get a short path hash."""
    stems = {p: os.path.splitext(os.path.basename(p))[0] for p in inputs}
    counts: Dict[str, int] = {}
    for s in stems.values():
        counts[s] = counts.get(s, 0) + 1
    return {
        p: s if counts[s] == 1 else f"{s}-{hashlib.sha256(os.path.realpath(p).encode()).hexdigest()[:6]}"
        for p, s in stems.items()
    }


@dataclass
class Item:
    path: str  # the input file, or a label for an item without one
    stem: str
    key: str  # stem + file content hash: an edited file is a new item
    source: Any = None  # what make_request takes (default: path)
    number_from: int = 0  # the first k of its result files


def counted_items(name: str, count: int, image_num: int) -> List[Item]:
    """``count`` tasks without an input (txt2img), keyed by index; their results run on as
    ``<name>_0`` .. ``<name>_<count x image_num - 1>``."""
    return [
        Item(f"{name} task {i + 1} of {count}", name, f"{name}:{i}", source=i, number_from=i * image_num)
        for i in range(count)
    ]


@dataclass
class Summary:
    done: int
    skipped: int
    failed: Dict[str, str]
    files: List[str]
    cancelled: bool = False
    resent: List[str] = field(default_factory=list)


class FolderRun:
    """Runs ``inputs`` through ``client``: submit (paced), record, poll, download, write, record.

    ``inputs`` are file paths or :class:`Item` s; ``make_request(path or item.source)`` builds and
    validates one item's request (of ``endpoint``, whose budget paces the run);
    ``progress_for(request)`` (optional) gives the ``on_progress`` of its task.
    ``job_key`` identifies everything but the input image, so a journal
    written for another prompt or model is not taken for this run's.
    """

    def __init__(
        self,
        client: Any,
        inputs: Sequence[Union[str, Item]],
        out_dir: str,
        make_request: Callable[[Any], Any],
        *,
        job_key: str,
        concurrency: int = 4,
        deadline: Optional[float] = None,
        fresh: bool = False,
        progress: Optional[ProgressBar] = None,
        progress_for: Optional[Callable[[Any], Callable[[Any], None]]] = None,
        endpoint: str = "img2img",
    ) -> None:
        self.client = client
        self.out_dir = out_dir
        self.make_request = make_request
        self.concurrency = max(1, concurrency)
        self.deadline = deadline
        self.cancel = threading.Event()
        self.progress_for = progress_for  # request -> the client's on_progress for that task
        self.endpoint = endpoint
        paths = [p for p in inputs if isinstance(p, str)]
        stems = output_stems(paths)
        self.items = [
            p if isinstance(p, Item) else Item(p, stems[p], f"{stems[p]}:{_file_hash(p)}") for p in inputs
        ]
        os.makedirs(out_dir, exist_ok=True)
        self.journal = Journal(os.path.join(out_dir, JOURNAL_NAME), job_key, fresh=fresh)
        self.progress = progress
        self._lock = threading.Lock()
        self._state: Dict[str, str] = {}  # item key -> queued|sending|running|done|failed
        self._budget_wait: Dict[str, float] = {}
        self._started = time.monotonic()
        self._durations: List[float] = []
        self._failed: Dict[str, str] = {}
        self._resent: List[str] = []  # inputs whose last submit was cut off before its answer
        self._files: Dict[str, List[str]] = {}  # item key -> files written, for output in input order

    def should_cancel(self) -> bool:
        return self.cancel.is_set()

    # ------------------------------------------------------------------ the run

    def run(self) -> Summary:
        """Every item to the end; Ctrl-C sets cancel and the workers stop within ~50 ms (journal kept)."""
        before = self.journal.load()
        todo = [it for it in self.items if before.get(it.key, {}).get("state") != "done"]
        skipped = len(self.items) - len(todo)
        for it in self.items:
            self._state[it.key] = "done" if it not in todo else "queued"
        pool = ThreadPoolExecutor(
            max_workers=min(self.concurrency, max(1, len(todo))), thread_name_prefix="ppinfra-folder"
        )
        futures: List[Future] = [pool.submit(self._one, it, before.get(it.key)) for it in todo]
        try:
            while not all(f.done() for f in futures):
                self._show()
                time.sleep(0.1)
        except KeyboardInterrupt:
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self._show(final=True)
            return self._summary(skipped, cancelled=True)
        pool.shutdown(wait=True)
        for f in futures:
            f.result()  # a fatal error ends the run with its own message
        self._show(final=True)
        return self._summary(skipped)

    def _summary(self, skipped: int, cancelled: bool = False) -> Summary:
        done = sum(1 for s in self._state.values() if s == "done") - skipped
        files = [f for it in self.items for f in self._files.get(it.key, [])]
        return Summary(
            done=done,
            skipped=skipped,
            failed=dict(self._failed),
            files=files,
            cancelled=cancelled,
            resent=list(self._resent),
        )

    def _one(self, item: Item, before: Optional[Dict[str, Any]]) -> None:
        if self.cancel.is_set():
            return
        # A task's time runs from acceptance (for the ETA; the budget wait is estimated apart).
        t0 = time.monotonic()
        dl = Deadline(self.deadline if self.deadline is not None else self.client.settings.deadline)
        task_id = (before or {}).get("task_id") if (before or {}).get("state") == "accepted" else None
        on_progress = None
        cache = None  # result cache
        try:
            if task_id:
                image_num = int(before.get("image_num") or 1)  # type: ignore[union-attr]
            else:
                request = self.make_request(item.path if item.source is None else item.source)
                image_num = request.images_expected
                # result cache: a fixed-seed request answered before (by any run) is no new task, no charge
                cache = lookup_for(self.client.settings, request)
                hit = cache.load() if cache is not None else None
                if hit is not None:
                    self._finish(item, hit.task_id, hit.images, hit.image_type, hit.seed, None)
                    return
                on_progress = self.progress_for(request) if self.progress_for is not None else None
                self._set(item, "sending")
                if (before or {}).get("state") == "sending":
                    # No task id came back last time: the API has no way to look the task up, so send
                    # again, and say it may be the second charge.
                    with self._lock:
                        self._resent.append(item.path)
                self.journal.sending(item.key)
                task_id = self.client.submit(
                    request, Call(dl, self.should_cancel, lambda w, it=item: self._on_wait(it, w))
                )
                # Recorded before anything else can fail: a rerun polls this task instead of paying again.
                self.journal.accepted(item.key, task_id, image_num)
                t0 = time.monotonic()
            self._set(item, "running")
            result = self.client.wait_for_task(
                task_id, deadline=dl, should_cancel=self.should_cancel, on_progress=on_progress
            )
            blobs = self.client.download_images(
                result, expected=image_num, deadline=dl, should_cancel=self.should_cancel
            )
            kind = result.images[0].image_type if result.images else ""
            if cache is not None:  # result cache
                cache.store_images(task_id, blobs, result.seed, kind)
            self._finish(item, task_id, blobs, kind, result.seed, t0)
        except CancelledError:
            self._set(item, "queued")
        except FATAL:
            self.cancel.set()
            raise
        except PPInfraError as exc:
            # The task is over (failed, or unknown to the host) or was never sent: a rerun tries it
            # afresh. Anything else (timeout, network) leaves it accepted, and a rerun polls it again.
            if task_id is None or isinstance(exc, (TaskFailedError, NotFoundError)):
                self.journal.failed(item.key, task_id, str(exc))
            self._fail(item, str(exc))
        except OSError as exc:  # the result could not be written: the task stays accepted, a rerun fetches it
            self._fail(item, f"could not write the result into {self.out_dir}: {exc.strerror or exc}")

    def _fail(self, item: Item, text: str) -> None:
        with self._lock:
            self._failed[item.path] = text
        self._set(item, "failed")

    def _finish(
        self,
        item: Item,
        task_id: str,
        blobs: List[bytes],
        kind: str,
        seed: Optional[int],
        t0: Optional[float],
    ) -> None:
        """Write the files and journal the item done; ``t0`` None (a cache hit) keeps it out of the ETA."""
        ext = EXTENSIONS.get(kind or "png", "png")
        files = [
            self._write(f"{item.stem}_{item.number_from + k}.{ext}", blob) for k, blob in enumerate(blobs)
        ]
        self.journal.done(item.key, task_id, files, seed)
        with self._lock:
            self._files[item.key] = files
            if t0 is not None:
                self._durations.append(time.monotonic() - t0)
        self._set(item, "done")

    def _write(self, name: str, blob: bytes) -> str:
        path = os.path.join(self.out_dir, name)
        tmp = path + ".part"
        with open(tmp, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)  # a file under the final name is always whole
        return path

    # ------------------------------------------------------------------ progress

    def _set(self, item: Item, state: str) -> None:
        with self._lock:
            self._state[item.key] = state
            if state != "sending":
                self._budget_wait.pop(item.key, None)

    def _on_wait(self, item: Item, wait: Any) -> None:
        """Budget waits feed the bar; a retry wait (429, 5xx, network: ``retry.Wait``) is one line."""
        name = os.path.basename(item.path)
        if getattr(wait, "kind", None) != "budget":
            eprint(f"{name}: {wait.describe()}")
            return
        with self._lock:
            first = item.key not in self._budget_wait
            if wait.delay > 0:
                self._budget_wait[item.key] = float(wait.delay)
            else:
                self._budget_wait.pop(item.key, None)
        if self.progress is None and first and wait.delay > 0:
            eprint(f"{name}: {wait.describe()}")  # no bar: say it once per wait

    def counts(self) -> Dict[str, int]:
        with self._lock:
            states = list(self._state.values())
        return {s: states.count(s) for s in ("queued", "sending", "running", "done", "failed")}

    def eta(self) -> Optional[float]:
        """Seconds to the end: the budget's minimum for what is not sent yet plus one task, or the
        workers' pace (items left per worker times a task's time from acceptance), whichever is longer."""
        from ..pacing import budget_for_settings, minimum_seconds

        c = self.counts()
        left = c["queued"] + c["sending"] + c["running"]
        if left == 0:
            return 0.0
        with self._lock:
            per_item = sum(self._durations) / len(self._durations) if self._durations else None
        if per_item is None:
            return None
        unsent = c["queued"] + c["sending"]
        pacer = budget_for_settings(self.client.settings, self.endpoint)
        budget = 0.0
        if unsent and pacer.limit > 0:
            budget = pacer.projected_wait(1) + minimum_seconds(unsent, max(1, pacer.effective), pacer.window)
        slots = -(-left // self.concurrency)
        return max(budget + per_item, slots * per_item)

    def _show(self, final: bool = False) -> None:
        if self.progress is None:
            return
        c = self.counts()
        with self._lock:
            waits = sorted(self._budget_wait.values())
        self.progress.update(
            done=c["done"],
            failed=c["failed"],
            running=c["running"],
            sending=c["sending"],
            budget_waits=waits,
            eta=None if final else self.eta(),
            elapsed=time.monotonic() - self._started,
            final=final,
        )


def _file_hash(path: str) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise ValidationError("--image", "a readable image file", path, exc.strerror or "") from None
    return h.hexdigest()[:16]
