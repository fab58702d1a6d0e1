"""The API host: auth, the submit endpoints, ``GET /v3/async/task-result``, ``GET /v3/model``,
``GET /v3/user``.

The submit endpoints are those of :data:`ppinfra.endpoints.ENDPOINTS` (img2img,
txt2img, inpainting, upscale), at their declared paths. One the sandbox's
provider does not offer (upscale as PPInfra or PPIO) answers like an unknown
path: 404 ``API_NOT_FOUND``.

Errors use the real codes and reasons (docs/api.md, "Errors"): a missing key is 400
``MISSING_API_KEY``, a wrong one 403 ``INVALID_API_KEY`` ("invalid api-key"),
an unknown path 404 ``API_NOT_FOUND``. ``Authorization`` works with or
without ``Bearer `` (the provider's JS SDK sends the bare key) unless the
sandbox is strict, where the bare form is a 400.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict

from ..endpoints import ENDPOINTS
from .errors import DEFAULT_REASONS, SandboxHTTPError
from .faults import Fault
from .httpbase import BaseHandler
from .imagehost import PREFIX, serve_image
from .models import list_models
from .tasks import FAILED, QUEUED, SUCCEED, Task
from .validation import validate_submit

_SUBMITS = {e.path: e for e in ENDPOINTS.values()}
_ROUTES = {
    ("GET", "/v3/async/task-result"): "poll",
    ("GET", "/v3/model"): "models",
    ("GET", "/v3/user"): "user",
    **{("POST", path): "submit" for path in _SUBMITS},
}
_PATHS = {path for _, path in _ROUTES}
_QUERY_KEYS = {"submit": (), "poll": ("task_id",), "user": ()}  # strict mode refuses other query keys
_500_REASONS = {
    "submit": "CREATE_TASK_FAILED",
    "poll": "GET_RESULT_FAILED",
    "models": "INTERNAL_SERVER_ERROR",
    "user": "INTERNAL_SERVER_ERROR",
}
_JSON = "application/json"


class ApiHandler(BaseHandler):
    """Routes API requests; acts out injected faults before auth, as a gateway would."""

    label = "api"
    takes_faults = True

    def route(self, method: str, path: str, query: Dict[str, str], body: bytes) -> None:
        if method == "GET" and path in ("", "/"):
            self.answer(200, _about(self.sandbox.provider), "text/plain; charset=utf-8")
            return
        api = _SUBMITS.get(path)
        if api is not None and not api.offered_on(self.sandbox.provider):
            # Not offered by this provider: the same answer as a path that never existed.
            raise SandboxHTTPError(404, "API_NOT_FOUND", f"api not found: {method} {path}")
        endpoint = _ROUTES.get((method, path))
        if endpoint is None:
            if path in _PATHS:
                raise SandboxHTTPError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on {path}")
            raise SandboxHTTPError(404, "API_NOT_FOUND", f"api not found: {method} {path}")
        if self.takes_faults:
            fault = self.sandbox.faults.take(
                endpoint,
                kinds=("status", "drop", "slow", "malformed", "redirect"),
                api=api.name if api else None,
            )
            if fault is not None and self._act_out(fault, endpoint, body, api):
                return
        self._authenticate()
        strict = self.sandbox.strict
        if strict and endpoint in _QUERY_KEYS:
            unknown = sorted(set(query) - set(_QUERY_KEYS[endpoint]))
            if unknown:
                raise SandboxHTTPError(
                    400,
                    "INVALID_REQUEST_BODY",
                    f"{unknown[0]} is not a documented query parameter of {method} {path}",
                )
        if endpoint == "submit":
            data = self._submit(body, api.name)
        elif endpoint == "poll":
            data = self._poll(query)
        elif endpoint == "user":
            data = self.sandbox.account()
        else:
            data = list_models(
                self.sandbox.catalog, query, strict=strict, novita_shape=self.sandbox.provider == "novita"
            )
        self.answer(200, json.dumps(data).encode(), _JSON)

    def _act_out(self, fault: Fault, endpoint: str, body: bytes, api: Any = None) -> bool:
        """Perform ``fault``; True if the request is fully answered (or dropped)."""
        p = fault.params
        if fault.kind == "slow":
            time.sleep(p["delay"])
            return False
        if fault.kind == "status":
            status = p["status"]
            default = (
                _500_REASONS[endpoint]
                if status == 500
                else DEFAULT_REASONS.get(status, "INTERNAL_SERVER_ERROR")
            )
            raise SandboxHTTPError(
                status,
                p.get("reason", default),
                p.get("message", f"injected fault: HTTP {status}"),
                retry_after=p.get("retry_after"),
            )
        if fault.kind == "redirect":
            # The same path and query on another host; the client must not carry the key along.
            self.answer(p["status"], b"", _JSON, {"Location": self.sandbox.other_base_url + self.path})
            return True
        if fault.kind == "malformed":
            text = "[]" if p.get("wrong_shape") else p.get("body", '{"task_id": ')
            self.answer(200, text.encode() if isinstance(text, str) else text, _JSON)
            return True
        # drop: for a submit with after_create the task exists, but the client never hears of it.
        if endpoint == "submit" and p.get("after_create"):
            try:
                self._authenticate()
                self._submit(body, api.name)
            except SandboxHTTPError:
                pass  # an invalid submit creates nothing; the connection still drops
        self.drop()
        return True

    def _authenticate(self) -> None:
        header = (self.headers.get("Authorization") or "").strip()
        if header in ("", "Bearer"):
            # docs/api.md ("Errors") lists MISSING_API_KEY among the 400s.
            raise SandboxHTTPError(
                400, "MISSING_API_KEY", "the Authorization header is missing: send 'Bearer <API key>'"
            )
        scheme, _, rest = header.partition(" ")
        if scheme == "Bearer":
            key = rest.strip()
        elif self.sandbox.strict:
            raise SandboxHTTPError(
                400,
                "MISSING_API_KEY",
                "strict sandbox: the Authorization header must be 'Bearer <API key>', "
                "got a value without the 'Bearer ' prefix",
            )
        else:
            key = header  # the provider's JS SDK sends the bare key, and the real service takes it
        if key not in self.sandbox.api_keys:
            # The live service's answer, word for word (docs/api.md, "Errors").
            raise SandboxHTTPError(403, "INVALID_API_KEY", "invalid api-key")

    def _submit(self, body: bytes, api: str) -> Dict[str, Any]:
        ctype = self.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            raise SandboxHTTPError(
                400, "INVALID_REQUEST_BODY", f"Content-Type must be application/json, got {ctype or 'none'!r}"
            )
        try:
            parsed = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise SandboxHTTPError(
                400, "INVALID_REQUEST_BODY", f"the body is not valid JSON: {exc}"
            ) from None
        valid = validate_submit(parsed, self.sandbox.catalog, strict=self.sandbox.strict, endpoint=api)
        task = self.sandbox._accept(parsed, valid)
        return {"task_id": task.task_id}

    def _poll(self, query: Dict[str, str]) -> Dict[str, Any]:
        task_id = query.get("task_id", "")
        if not task_id:
            raise SandboxHTTPError(
                400, "INVALID_REQUEST_BODY", "task_id is required: GET /v3/async/task-result?task_id=<id>"
            )
        task = self.sandbox._store.get(task_id)
        if task is None:
            raise SandboxHTTPError(404, "TASK_NOT_FOUND", f"no task with task_id {task_id!r}")
        failed = self.sandbox.faults.take("poll", kinds=("task_failed",), task_id=task_id)
        if failed is not None:
            task.http_failure = failed.params.get("message") or "task failed"
        if task.http_failure is not None:
            # Listed among the 500s: the task is over, and every later poll says so again.
            raise SandboxHTTPError(500, "TASK_FAILED", task.http_failure)
        state = task.state()
        images = []
        if state.status == SUCCEED:
            scheme = self.sandbox.faults.take("poll", kinds=("scheme",))
            images = [self._image_entry(task, i, scheme) for i in range(task.image_num)]
        extra: Dict[str, Any] = {"seed": str(task.seed)} if task.endpoint != "upscale" else {}
        extra["debug_info"] = _debug_info(task, state.status)  # upscale has no seed: extra holds none
        return {
            "extra": extra,
            "task": {
                "task_id": task.task_id,
                "task_type": task.task_type,
                "status": state.status,
                "reason": state.reason,
                "eta": state.eta,
                "progress_percent": state.progress_percent,
            },
            "images": images,
            "videos": [],
            "audios": [],
        }

    def _image_entry(self, task: Task, index: int, scheme_fault: Any) -> Dict[str, Any]:
        ttl = self.sandbox._settings["url_ttl"]
        url = self.sandbox.image_url(task, index)
        if scheme_fault is not None:
            scheme = scheme_fault.params.get("scheme") or ("file", "ftp")[index % 2]
            url = scheme + url[url.index("://") :]
        return {
            "image_url": url,
            "image_url_ttl": str(int(ttl)),
            "image_type": task.image_type,
            "nsfw_detection_result": None,
        }


class OtherHostHandler(ApiHandler):
    """The third host a ``redirect`` fault sends clients to: the same API and result files, no faults.

    Its requests are recorded with ``server == "other"``, so a test can see
    whether the ``Authorization`` header followed the redirect.
    """

    label = "other"
    takes_faults = False

    def route(self, method: str, path: str, query: Dict[str, str], body: bytes) -> None:
        if path.startswith(PREFIX):
            serve_image(self, method, path, query)
        else:
            super().route(method, path, query, body)


def _about(provider: str) -> bytes:
    submits = ", ".join(f"POST {e.path}" for e in ENDPOINTS.values() if e.offered_on(provider))
    return (
        f"PPInfra sandbox, speaking as {provider}: "
        "a local stand-in for the PPInfra / PPIO / Novita AI image API.\n"
        "Results are SYNTHETIC images (inputs resized, masked and colour-graded per seed), not diffusion.\n"
        f"Endpoints: {submits}, GET /v3/async/task-result?task_id=..., GET /v3/model, GET /v3/user\n"
    ).encode()


def _debug_info(task: Task, status: str) -> Dict[str, str]:
    started = task.started_at if status != QUEUED else None
    done = task.done_at if status in (SUCCEED, FAILED) else None
    return {
        "request_info": "",
        "submit_time_ms": _ms(task.created),
        "execute_time_ms": _ms(started),
        "complete_time_ms": _ms(done),
    }


def _ms(t: Any) -> str:
    return "0" if t is None else str(int(t * 1000))
