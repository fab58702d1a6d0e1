"""Error answers of the API mapped onto the exception hierarchy, with advice a user can act on."""

from __future__ import annotations

import json
from typing import Optional

import requests

from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    InsufficientBalanceError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TaskFailedError,
)

TOP_UP_URL = "https://ppinfra.com/billing"

_REASON_CLASSES = {
    "INVALID_API_KEY": AuthenticationError,
    "MISSING_API_KEY": AuthenticationError,
    "BILLING_AUTH_FAILED": AuthenticationError,
    "BILLING_BALANCE_NOT_ENOUGH": InsufficientBalanceError,
    "NEED_REAL_NAME_VERIFY": PermissionDeniedError,
    "API_NOT_ALLOWED": PermissionDeniedError,
    "FEATURE_NOT_ALLOWED": PermissionDeniedError,
    "RATE_LIMIT_EXCEEDED": RateLimitError,
    "TASK_NOT_FOUND": NotFoundError,
    "API_NOT_FOUND": NotFoundError,
}

_ADVICE = {
    AuthenticationError: (
        "Check the API key (PPINFRA_API_KEY, the PPInfra settings in the editor, or the config "
        "file): it is wrong, revoked or missing."
    ),
    InsufficientBalanceError: (
        f"Top up your balance at {TOP_UP_URL} (PPIO: ppio.com billing; Novita: "
        "novita.ai billing), then queue again."
    ),
    PermissionDeniedError: (
        "Your account may not use this API yet (NEED_REAL_NAME_VERIFY: finish the identity "
        "verification in the PPInfra console)."
    ),
    RateLimitError: (
        "You hit the images-per-minute limit of your plan: lower image_num or the batch size, or "
        "wait a minute."
    ),
    NotFoundError: (
        "The server does not know this task or path (an expired task, another account's task, or a "
        "base URL that is not the PPInfra API)."
    ),
    BadRequestError: "The server refused the request: fix the field it names.",
    ServerError: "The service had an internal error or is overloaded: try again in a few minutes.",
}


def error_from_response(
    resp: requests.Response, endpoint: str, task_id: Optional[str] = None, body: Optional[bytes] = None
) -> Exception:
    """Map an error answer to the hierarchy, keeping the provider's reason and message.

    ``TASK_FAILED`` (documented as an HTTP 500 on a poll) is the end of the
    task, not a server hiccup: it becomes :class:`TaskFailedError`.
    """
    reason, message = "", ""
    try:
        data = json.loads(body) if body is not None else resp.json()
        if isinstance(data, dict):
            reason = str(data.get("reason") or "")
            message = str(data.get("message") or data.get("msg") or "")
    except ValueError:
        message = body[:200].decode("utf-8", "replace") if body is not None else resp.text[:200]
    status = resp.status_code
    if reason == "TASK_FAILED":
        why = message or "no reason given"
        return TaskFailedError(
            f"The PPInfra task failed: {why}. Nothing was returned; change the inputs it "
            "names before queueing again.",
            task_id=task_id,
            reason=reason,
            provider_message=message,
        )
    cls = _REASON_CLASSES.get(reason)
    if cls is None:
        if status == 401:
            cls = AuthenticationError
        elif status == 403:
            cls = PermissionDeniedError if reason else AuthenticationError
        elif status == 404:
            cls = NotFoundError
        elif status == 429:
            cls = RateLimitError
        elif status >= 500:
            cls = ServerError
        elif status >= 400:
            cls = BadRequestError
        else:
            cls = APIError
    text = f"{endpoint} failed with HTTP {status}"
    if reason:
        text += f" {reason}"
    if message:
        text += f": {message}"
    advice = _ADVICE.get(cls, "")
    if advice:
        text += f". {advice}"
    return cls(
        text, task_id=task_id, reason=reason, provider_message=message, status_code=status, endpoint=endpoint
    )
