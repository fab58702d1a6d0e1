"""One exception hierarchy for everything the client can raise.

Every message reads like advice: what failed, why, what to do, and the
``task_id`` when there is one. Nothing here ever holds the API key.

    PPInfraError
    ├── ConfigError
    ├── ValidationError (also a ValueError)
    │   └── ImageInputError
    ├── APIError: AuthenticationError, PermissionDeniedError, InsufficientBalanceError,
    │             RateLimitError, BadRequestError, NotFoundError, ServerError,
    │             EndpointNotOfferedError, AnswerTooLargeError
    ├── ResponseFormatError
    ├── TaskFailedError
    ├── TaskTimeoutError
    ├── NetworkError (``sent``: whether the request may have reached the server)
    ├── DownloadError
    │   └── CorruptResultError
    └── CancelledError

ComfyUI names an error in its dialog and ``/history`` by the class's module, which
for a custom node is the pack's folder path: every class here therefore reads as
``ppinfra.<Name>``.
"""

from __future__ import annotations

from typing import Any, Optional

from .redaction import redact


class PPInfraError(Exception):
    """Base of every error this pack raises."""

    def __init__(
        self,
        message: str,
        *,
        task_id: Optional[str] = None,
        reason: str = "",
        provider_message: str = "",
        status_code: Optional[int] = None,
        endpoint: str = "",
    ) -> None:
        # Messages may quote what a server sent back: a server that echoes the key must not leak it.
        message, reason, provider_message = redact(message), redact(reason), redact(provider_message)
        self.task_id = task_id
        self.reason = reason
        self.provider_message = provider_message
        self.status_code = status_code
        self.endpoint = endpoint
        if task_id and task_id not in message:
            message = f"{message} (task_id {task_id})"
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(PPInfraError):
    """The client is not configured: no API key, a bad base URL, an unreadable config file."""


class ValidationError(PPInfraError, ValueError):
    """A request value breaks a documented limit. Raised before anything is sent."""

    def __init__(self, field: str, limit: str, value: Any, hint: str = "") -> None:
        self.field = field
        self.limit = limit
        self.value = value
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        text = f"{field} must be {limit}, got {shown}"
        if hint:
            text += f": {hint}"
        super().__init__(text)


class ImageInputError(ValidationError):
    """An input image cannot be sent: wrong tensor shape, too large even after re-encoding."""


class APIError(PPInfraError):
    """The API answered with an error status. ``reason`` is the provider's UPPER_SNAKE code."""


class AuthenticationError(APIError):
    """401/403 INVALID_API_KEY or MISSING_API_KEY: the key is wrong, revoked or absent."""


class PermissionDeniedError(APIError):
    """403 API_NOT_ALLOWED, FEATURE_NOT_ALLOWED or NEED_REAL_NAME_VERIFY."""


class InsufficientBalanceError(APIError):
    """400 BILLING_BALANCE_NOT_ENOUGH: top up the account."""


class RateLimitError(APIError):
    """429 RATE_LIMIT_EXCEEDED, still refused after the retries."""


class BadRequestError(APIError):
    """400: the server refused the request body (the provider's reason says which part)."""


class NotFoundError(APIError):
    """404, e.g. TASK_NOT_FOUND."""


class ServerError(APIError):
    """5xx that outlasted the retries."""


class ResponseFormatError(PPInfraError):
    """An endpoint answered with something that is not the documented JSON."""


class TaskFailedError(PPInfraError):
    """The task ended as TASK_STATUS_FAILED; ``reason`` carries the server's text."""


class TaskTimeoutError(PPInfraError):
    """The overall deadline passed before the task finished (queued time counts)."""


class EndpointNotOfferedError(NotFoundError):
    """404 API_NOT_FOUND on an endpoint this host may not serve (upscale on PPInfra/PPIO)."""


class AnswerTooLargeError(APIError):
    """An answer grew past the size its endpoint can legitimately hold: reading stopped there."""


class NetworkError(PPInfraError):
    """The API could not be reached or the connection broke, after the retries.

    ``sent`` is False when the request provably never reached the server (so a
    submit created no task and its pacing slot can be given back), True when it
    may have, None when unknown.
    """

    def __init__(self, message: str, *, sent: Optional[bool] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.sent = sent


class DownloadError(PPInfraError):
    """A result image could not be fetched or decoded: refused URL, too large, truncated."""


class CorruptResultError(DownloadError):
    """A result file arrived but is short or does not decode: fetched again before it is an error."""


class CancelledError(PPInfraError):
    """The caller cancelled the wait. The task may still run (and be billed) on the server."""


# ComfyUI shows ``type(exc).__module__ + "." + name``: a short public name, not the pack's folder path.
for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, PPInfraError):
        _cls.__module__ = "ppinfra"
del _cls
