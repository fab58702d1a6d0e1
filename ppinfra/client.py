"""The PPInfra client: submit, poll with progress, download. Blocking and thread-safe.

ComfyUI nodes run it in worker threads; the CLI and tests call it directly.
"""

from __future__ import annotations

import io
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from .config import Settings, load_settings
from .endpoints import ENDPOINTS
from .errors import CorruptResultError, DownloadError, ResponseFormatError, TaskFailedError
from .limits import MODEL_PAGE_MAX, STATUS_FAILED, STATUS_SUCCEED
from .pacing import budget_for_settings
from .request import TaskRequest
from .img2img_request import Img2ImgRequest
from .retry import CORRUPT, MALFORMED, Retrier, RetryPolicy, WaitCallback
from .transport import MAX_MODEL_PAGE_BYTES, ExpiredURL, Transport
from .waiting import Call, CancelCheck, Deadline, PollSchedule

log = logging.getLogger("ppinfra")


# Expired URLs are refreshed by polling the task again, at most this many times.
MAX_URL_REFRESHES = 2


@dataclass(frozen=True)
class PollUpdate:
    """What a progress callback receives on every poll
    (``TaskProgress`` in :mod:`.progress_view` shows it)."""

    task_id: str
    status: str
    percent: float
    eta: Optional[float]
    elapsed: float


@dataclass(frozen=True)
class ResultImage:
    url: str
    ttl: Optional[float]
    image_type: str
    nsfw: Any = None


@dataclass(frozen=True)
class TaskResult:
    """One ``task-result`` answer, parsed defensively (numbers may arrive as strings)."""

    task_id: str
    status: str
    reason: str
    eta: Optional[float]
    progress_percent: float
    images: List[ResultImage]
    seed: Optional[int]
    debug_info: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Any, task_id: str) -> "TaskResult":
        if not isinstance(data, dict) or not isinstance(data.get("task"), dict):
            raise ResponseFormatError(
                "task-result answered JSON without the documented \"task\" object "
                f"(got {type(data).__name__}).",
                task_id=task_id,
                endpoint="task-result",
            )
        task = data["task"]
        extra = data.get("extra") if isinstance(data.get("extra"), dict) else {}
        images = []
        for item in data.get("images") or []:
            if isinstance(item, dict) and item.get("image_url"):
                images.append(
                    ResultImage(
                        url=str(item["image_url"]),
                        ttl=_number(item.get("image_url_ttl")),
                        image_type=str(item.get("image_type") or ""),
                        nsfw=item.get("nsfw_detection_result"),
                    )
                )
        seed = _number(extra.get("seed"))
        if seed is not None and not math.isfinite(seed):
            seed = None  # "nan"/"inf" parse as floats but are no seed
        return cls(
            task_id=str(task.get("task_id") or task_id),
            status=str(task.get("status") or ""),
            reason=str(task.get("reason") or ""),
            eta=_number(task.get("eta")),
            progress_percent=max(0.0, min(100.0, _number(task.get("progress_percent")) or 0.0)),
            images=images,
            seed=None if seed is None else int(seed),
            debug_info=extra.get("debug_info") if isinstance(extra.get("debug_info"), dict) else {},
        )


@dataclass(frozen=True)
class ModelPage:
    """One page of the model list: raw model dicts and the cursor of the next page (``""``: the last)."""

    models: List[Dict[str, Any]]
    next_cursor: str


@dataclass(frozen=True)
class TaskOutcome:
    """A finished job of any endpoint: the encoded result files in order,
    the seed used and timings in seconds."""

    task_id: str
    images: List[bytes]
    seed: Optional[int]
    timings: Dict[str, float]
    image_type: str = ""
    # True when the images came from the result cache: no task ran, nothing was billed.
    from_cache: bool = False


def undecodable(data: bytes) -> Optional[str]:
    """Why ``data`` is not a readable image file, or ``None`` when it is (header and checksums,
    no full decode)."""
    from PIL import Image  # deferred: the CLI's model listing needs no Pillow

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    except Exception as exc:
        return f"{len(data)} bytes that do not decode ({exc.__class__.__name__})"
    return None


def _number(value: Any) -> Optional[float]:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


ProgressCallback = Optional[Callable[[PollUpdate], None]]
ImageCallback = Callable[[str, int, bytes], None]


Img2ImgResult = TaskOutcome  # the name earlier releases had


class PPInfraClient:
    """Client for the PPInfra / Novita async image API.

    Settings come from the arguments, else ``PPINFRA_API_KEY`` /
    ``PPINFRA_BASE_URL``, else the JSON config file (see :mod:`ppinfra.config`).
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        *,
        config_path: Optional[str] = None,
        settings: Optional[Settings] = None,
        poll_schedule: Optional[Callable[[], PollSchedule]] = None,
        **overrides: Any,
    ) -> None:
        self.settings = settings or load_settings(api_key, base_url, config_path, **overrides)
        self.transport = Transport(self.settings)
        self._poll_schedule = poll_schedule or PollSchedule
        self._pool = ThreadPoolExecutor(
            max_workers=self.settings.download_workers, thread_name_prefix="ppinfra-download"
        )
        st = self.settings
        # Polls and downloads of a task that was accepted (and will be billed) are retried
        # for as long as the deadline allows; a corrupt file only a few times.
        self.poll_policy = RetryPolicy.from_settings(st, until_deadline=True)

    def __repr__(self) -> str:
        return f"PPInfraClient(base_url={self.settings.base_url!r})"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.transport.close()

    def __enter__(self) -> "PPInfraClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ steps

    def _call(
        self,
        call: Optional[Call],
        deadline: Any = None,
        should_cancel: CancelCheck = None,
        on_wait: WaitCallback = None,
    ) -> Call:
        """The call context: the one given, else one made from the keyword arguments and the settings."""
        if call is not None:
            return call
        if not isinstance(deadline, Deadline):
            deadline = Deadline(self.settings.deadline if deadline is None else deadline)
        return Call(deadline, should_cancel, on_wait)

    def submit(
        self, request: TaskRequest, call: Optional[Call] = None, *, body: Optional[bytes] = None
    ) -> str:
        """Validate (unless a binder did) and submit ``request`` to its endpoint; return the ``task_id``.

        Re-sent only when the task surely did not start. Waits for room in the
        endpoint's images-per-minute budget first; a 429 lowers that budget.
        """
        call = self._call(call)
        request.validate()
        body = request.to_json_bytes() if body is None else body
        ep = ENDPOINTS[request.endpoint]
        what = f"{ep.name} submit"
        call.check(f"submitting {ep.label}")
        # pacing: the slot is dated by the answer, or given back if the server refused the submit
        pacer = budget_for_settings(self.settings, ep.name)
        with pacer.acquire(request.images_expected, call):
            data = self.transport.call(
                "POST",
                ep.path,
                call,
                endpoint=what,
                body=body,
                idempotent=False,
                on_rate_limited=pacer.on_rate_limited,
            )
        # One Novita example wraps the answer as {"code":0,"data":{"task_id":...}}.
        if isinstance(data, dict) and isinstance(data.get("data"), dict) and "task_id" not in data:
            data = data["data"]
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not task_id or not isinstance(task_id, str):
            raise ResponseFormatError(
                f"{what} answered without a task_id: the task may have been "
                "created; check your task list before retrying.",
                endpoint=what,
            )
        log.debug("submitted %s task %s", ep.name, task_id)
        return task_id

    def submit_img2img(
        self,
        request: Img2ImgRequest,
        *,
        deadline: Optional[Deadline] = None,
        should_cancel: CancelCheck = None,
        on_wait: WaitCallback = None,
    ) -> str:
        """:meth:`submit` for an img2img request (the name earlier releases had)."""
        return self.submit(request, self._call(None, deadline, should_cancel, on_wait))

    def get_task_result(
        self,
        task_id: str,
        call: Optional[Call] = None,
        *,
        deadline: Optional[Deadline] = None,
        should_cancel: CancelCheck = None,
        on_wait: WaitCallback = None,
    ) -> TaskResult:
        """One poll, retried until the deadline on 5xx, broken connections and malformed answers.

        The task was accepted and will be billed: no fixed retry count gives it
        up while the deadline allows. HTTP 500 ``TASK_FAILED`` ends it at once
        (:class:`TaskFailedError`).
        """
        call = self._call(call, deadline, should_cancel, on_wait).for_task(task_id)
        retrier = Retrier(self.poll_policy, call, what="task-result")
        while True:
            data = self.transport.call(
                "GET",
                "/v3/async/task-result",
                call,
                endpoint="task-result",
                params={"task_id": task_id},
                read_timeout=self.settings.poll_read_timeout,
                retrier=retrier,
            )
            try:
                return TaskResult.parse(data, task_id)
            except ResponseFormatError as exc:
                if not retrier.retry(MALFORMED, "an answer without the documented task object"):
                    raise exc from None
                call.check(f"polling task-result (last problem: {retrier.last_problem})")

    def wait_for_task(
        self,
        task_id: str,
        call: Optional[Call] = None,
        *,
        deadline: Optional[Deadline] = None,
        on_progress: ProgressCallback = None,
        should_cancel: CancelCheck = None,
        on_wait: WaitCallback = None,
    ) -> TaskResult:
        """Poll until SUCCEED (returned) or FAILED (raised), within the call's deadline."""
        call = self._call(call, deadline, should_cancel, on_wait).for_task(task_id)
        schedule = self._poll_schedule()
        while True:
            result = self.get_task_result(task_id, call)
            if on_progress is not None:
                percent = 100.0 if result.status == STATUS_SUCCEED else result.progress_percent
                on_progress(PollUpdate(task_id, result.status, percent, result.eta, call.deadline.elapsed()))
            if result.status == STATUS_SUCCEED:
                return result
            if result.status == STATUS_FAILED:
                why = result.reason or "no reason given"
                raise TaskFailedError(
                    f"The PPInfra task failed: {why}. Nothing was returned; change the inputs "
                    "it names before queueing again.",
                    task_id=task_id,
                    reason=why,
                )
            waiting = f"waiting for the task (last status {result.status or 'unknown'})"
            call.check(waiting)
            call.sleep(schedule.next_delay(result.eta))
            call.check(waiting)

    def download_images(
        self,
        result: TaskResult,
        call: Optional[Call] = None,
        *,
        expected: int,
        deadline: Optional[Deadline] = None,
        should_cancel: CancelCheck = None,
        on_image: Optional["ImageCallback"] = None,
        on_wait: WaitCallback = None,
    ) -> List[bytes]:
        """Download every result image concurrently; re-poll for fresh URLs when they expire or break.

        A file that is short or does not decode (``on_image`` raising
        :class:`CorruptResultError`, or checked here without one) is fetched again, up to
        three downloads in all, the last from a freshly signed URL. ``on_image(task_id, index,
        data)`` runs in the download worker as each good file arrives.
        """
        task_id = result.task_id
        call = self._call(call, deadline, should_cancel, on_wait).for_task(task_id)
        blobs: List[Optional[bytes]] = [None] * expected
        retriers = [Retrier(self.poll_policy, call, what=f"result image {i + 1}") for i in range(expected)]
        refreshes = 0
        while True:
            if len(result.images) < expected:
                raise TaskFailedError(
                    f"The task succeeded but returned {len(result.images)} of {expected} "
                    "images; nothing was kept. Queue again.",
                    task_id=task_id,
                )
            if len(result.images) > expected:
                # Never let extra files shift into another item's place: keep the ones asked for.
                log.warning(
                    "task %s returned %d images for image_num %d: keeping the first %d",
                    task_id,
                    len(result.images),
                    expected,
                    expected,
                )
            urls = [img.url for img in result.images[:expected]]
            todo = [i for i, b in enumerate(blobs) if b is None]
            futures = {i: self._pool.submit(self._fetch_one, urls[i], i, retriers[i], on_image) for i in todo}
            stale = False
            first_error: Optional[BaseException] = None
            for i, fut in futures.items():
                try:
                    blobs[i] = fut.result()
                except ExpiredURL:
                    stale = True
                except BaseException as exc:  # keep waiting for the others: no orphaned downloads
                    first_error = first_error or exc
            if first_error is not None:
                raise first_error
            if not stale:
                return [b for b in blobs if b is not None]
            if refreshes >= MAX_URL_REFRESHES:
                raise DownloadError(
                    "The result image links kept expiring or breaking before they could be "
                    f"downloaded (refreshed {MAX_URL_REFRESHES} times). Check the machine's clock "
                    "and network speed.",
                    task_id=task_id,
                    endpoint="download",
                )
            refreshes += 1
            log.info("result URLs of task %s expired or broke; polling again for fresh ones", task_id)
            result = self.get_task_result(task_id, call)

    def _fetch_one(self, url: str, i: int, retrier: Retrier, on_image: Optional["ImageCallback"]) -> bytes:
        """One result file, fetched again while it is corrupt;
        ``ExpiredURL`` asks the caller for a fresh link."""
        task_id = retrier.call.task_id or ""
        while True:
            data = self.transport.download(url, retrier.call, retrier=retrier)
            # With on_image (the nodes) the decoder is the check: verifying here as well would hold
            # a second copy of every file in memory while the batch downloads.
            problem = None if on_image is not None else undecodable(data)
            if problem is None:
                try:
                    if on_image is not None:
                        on_image(task_id, i, data)
                    return data
                except CorruptResultError as exc:
                    problem = str(exc).replace(f" (task_id {task_id})", "")  # named once, below
            if not retrier.retry(CORRUPT, problem):
                raise DownloadError(
                    f"Result image {i + 1} of task {task_id} is corrupt after "
                    f"{retrier.tries(CORRUPT)} downloads ({problem}). The task succeeded and was "
                    "billed; its images may still be fetched from your PPInfra task list.",
                    task_id=task_id,
                    endpoint="download",
                )
            log.info(
                "task %s: result image %d is corrupt (%s); downloading it again", task_id, i + 1, problem
            )
            if retrier.attempts.get(CORRUPT, 0) >= 2:
                raise ExpiredURL(url)  # the same link served it twice: ask for a freshly signed one

    # ------------------------------------------------------------------ whole job

    def run(
        self,
        request: TaskRequest,
        *,
        on_progress: ProgressCallback = None,
        should_cancel: CancelCheck = None,
        deadline: Optional[float] = None,
        on_image: Optional["ImageCallback"] = None,
        on_wait: WaitCallback = None,
    ) -> TaskOutcome:
        """Run one job of any endpoint end to end and return the encoded result images.

        Validates before sending (once: a request a binder checked is not
        checked again); polls adaptively within ``deadline`` seconds (default
        ``settings.deadline``, queue time included); calls ``on_progress`` on
        every poll; ``should_cancel`` is checked at least every 50 ms while
        waiting, reading included; ``on_image`` as in :meth:`download_images`;
        ``on_wait`` hears of every budget or retry wait.
        """
        call = self._call(None, deadline, should_cancel, on_wait)
        t0 = time.monotonic()
        request.validate()
        body = request.to_json_bytes()
        # result cache: a fixed-seed request answered before (even before a restart) runs no new task
        from .result_cache import lookup_for

        cache = lookup_for(self.settings, request, body=body)
        hit = cache.load(on_image) if cache is not None else None
        if hit is not None:
            return TaskOutcome(
                task_id=hit.task_id,
                images=hit.images,
                seed=hit.seed,
                image_type=hit.image_type,
                timings={"total": time.monotonic() - t0},
                from_cache=True,
            )
        task_id = self.submit(request, call, body=body)
        t_submit = time.monotonic()
        result = self.wait_for_task(task_id, call, on_progress=on_progress)
        t_done = time.monotonic()
        blobs = self.download_images(result, call, expected=request.images_expected, on_image=on_image)
        t_dl = time.monotonic()
        out = TaskOutcome(
            task_id=task_id,
            images=blobs,
            seed=result.seed,
            timings={
                "submit": t_submit - t0,
                "wait": t_done - t_submit,
                "download": t_dl - t_done,
                "total": t_dl - t0,
            },
            image_type=result.images[0].image_type if result.images else "",
        )
        if cache is not None:  # result cache
            cache.store(out)
        return out

    img2img = run
    txt2img = run
    inpainting = run
    upscale = run

    # ------------------------------------------------------------------ account and model list

    def balance(self, *, timeout: Optional[float] = None) -> int:
        """``GET /v3/user``: the ``credit_balance`` (USD x 10,000),
        the whole call within ``timeout`` seconds."""
        call = self._call(None, timeout)
        data = self.transport.call("GET", "/v3/user", call, endpoint="user", read_timeout=timeout)
        raw = data.get("credit_balance") if isinstance(data, dict) else None
        try:
            value = int(str(raw).strip()) if raw is not None and not isinstance(raw, bool) else None
        except ValueError:
            value = None
        if value is None:
            raise ResponseFormatError("user answered without a numeric credit_balance.", endpoint="user")
        return value

    def model_page(
        self,
        model_type: str,
        *,
        cursor: str = "",
        page_size: int = MODEL_PAGE_MAX,
        is_sdxl: Optional[bool] = None,
        visibility: Optional[str] = None,
        query: Optional[str] = None,
        is_inpainting: Optional[bool] = None,
        timeout: Optional[float] = None,
    ) -> ModelPage:
        """One page of ``GET /v3/model``: the raw model dicts and the next cursor (``""`` at the end)."""
        params: Dict[str, Any] = {
            "filter.types": model_type,
            "pagination.limit": page_size,
            "pagination.cursor": cursor,
        }
        for name, flag in (("filter.is_sdxl", is_sdxl), ("filter.is_inpainting", is_inpainting)):
            if flag is not None:
                params[name] = "true" if flag else "false"
        if visibility:
            params["filter.visibility"] = visibility
        if query:
            params["filter.query"] = query
        data = self.transport.call(
            "GET",
            "/v3/model",
            self._call(None, timeout),
            endpoint="model list",
            params=params,
            max_bytes=MAX_MODEL_PAGE_BYTES,
            read_timeout=timeout,
        )
        if not isinstance(data, dict) or not isinstance(data.get("models", []), list):
            raise ResponseFormatError(
                "model list answered JSON without a \"models\" list.", endpoint="model list"
            )
        pagination = data.get("pagination") if isinstance(data.get("pagination"), dict) else {}
        return ModelPage(
            [m for m in data.get("models") or [] if isinstance(m, dict)],
            str(pagination.get("next_cursor") or ""),
        )

    def search_models(
        self, model_type: str, query: str, *, limit: int = MODEL_PAGE_MAX, timeout: Optional[float] = None
    ) -> List[Dict[str, Any]]:
        """The provider's own search (``filter.query``): one page of raw model dicts."""
        return self.model_page(
            model_type, query=query, page_size=max(1, min(MODEL_PAGE_MAX, limit)), timeout=timeout
        ).models

    def list_models_raw(
        self,
        model_type: str,
        *,
        is_sdxl: Optional[bool] = None,
        visibility: Optional[str] = None,
        page_size: int = MODEL_PAGE_MAX,
        max_pages: int = 1000,
        is_inpainting: Optional[bool] = None,
    ) -> List[Dict[str, Any]]:
        """Every model of a type, following ``next_cursor`` to the end (raw dicts)."""
        models: List[Dict[str, Any]] = []
        cursor = ""
        seen = set()
        for _ in range(max_pages):
            page = self.model_page(
                model_type,
                cursor=cursor,
                page_size=page_size,
                is_sdxl=is_sdxl,
                visibility=visibility,
                is_inpainting=is_inpainting,
            )
            models.extend(page.models)
            cursor = page.next_cursor
            if not page.models or not cursor or cursor in seen:
                break
            seen.add(cursor)
        return models
