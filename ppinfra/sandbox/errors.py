"""The sandbox's error answers: the provider's JSON error body, and S3-like XML for the image host."""

from __future__ import annotations

import json
import math
from typing import Dict, Optional

# The reason a status fault answers with when the test does not name one. The
# provider documents one reason per status (docs/api.md, "Errors"); 500 differs
# by endpoint, so the submit and poll handlers pass their own.
DEFAULT_REASONS: Dict[int, str] = {
    400: "INVALID_REQUEST_BODY",
    401: "INVALID_API_KEY",
    403: "API_NOT_ALLOWED",
    404: "TASK_NOT_FOUND",
    429: "RATE_LIMIT_EXCEEDED",
    500: "GET_RESULT_FAILED",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


class SandboxHTTPError(Exception):
    """Raised inside a handler to answer with the provider's error body.

    ``retry_after`` (seconds, rounded up to whole seconds) adds a ``Retry-After`` header; ``xml`` switches
    to the image host's S3-style body, where ``reason`` is the S3 ``Code``.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        retry_after: Optional[float] = None,
        xml: bool = False,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.xml = xml

    def body(self) -> bytes:
        """The serialised body, JSON or XML as the server it comes from would send."""
        if self.xml:
            return s3_error_xml(self.reason, self.message)
        return error_body(self.status, self.reason, self.message)

    @property
    def content_type(self) -> str:
        return "application/xml" if self.xml else "application/json"

    def headers(self) -> Dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": _seconds(self.retry_after)}


def error_body(status: int, reason: str, message: str) -> bytes:
    """``{"code", "reason", "message", "metadata"}``, the documented error envelope."""
    return json.dumps({"code": status, "reason": reason, "message": message, "metadata": {}}).encode()


def s3_error_xml(code: str, message: str) -> bytes:
    """An object-store error document, as a pre-signed URL host answers."""
    text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{text}</Message></Error>'
    ).encode()


def bad_request(message: str, reason: str = "INVALID_REQUEST_BODY") -> SandboxHTTPError:
    """A 400 with the provider's body; ``message`` names the field path, the limit and the value."""
    return SandboxHTTPError(400, reason, message)


def _seconds(value: float) -> str:
    # HTTP allows only whole seconds (or a date); urllib3 rejects "0.5" outright.
    return str(max(0, math.ceil(value)))
