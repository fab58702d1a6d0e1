"""What both sandbox servers share: request recording, body reading, raw answers, dropped connections."""

from __future__ import annotations

import socketserver
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional
from urllib.parse import parse_qsl, urlsplit

from ..limits import IMAGE_MAX_FILE_BYTES
from .errors import SandboxHTTPError

# Three documented images (input, one ControlNet unit, one IP-Adapter) at the
# largest file size, base64-inflated, plus room for the rest of the JSON.
MAX_BODY_BYTES = 3 * (IMAGE_MAX_FILE_BYTES * 4 // 3 + 4) + 1024 * 1024


@dataclass
class RecordedRequest:
    """One request as a server received it. ``server`` is ``"api"``, ``"images"`` or ``"other"``.

    A long-running sandbox drops the bodies of old requests first (``body``
    becomes ``b""``; ``body_size`` keeps the size received), then the oldest
    records themselves: see ``SandboxServer(max_requests=, max_request_bytes=)``.
    """

    server: str
    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    body: bytes = field(repr=False)
    time: float
    body_size: int = 0


class SandboxHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its sandbox and never resolves host names."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, sandbox: Any) -> None:
        self.sandbox = sandbox
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can
        # hang for seconds on a machine without network.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class BaseHandler(BaseHTTPRequestHandler):
    """Reads and records every request, then calls :meth:`route`; error exceptions become answers."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a requests.Session expects
    server_version = "PPInfraSandbox/1.0"
    label = "api"
    timeout = 60  # an idle keep-alive connection must not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # tests run thousands of requests; the recorder is the log

    @property
    def sandbox(self) -> Any:
        return self.server.sandbox

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def route(self, method: str, path: str, query: Dict[str, str], body: bytes) -> None:
        raise NotImplementedError

    def error_for(self, exc: SandboxHTTPError) -> SandboxHTTPError:
        """Hook: the image host turns errors into XML."""
        return exc

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            body = self._read_body()
        except SandboxHTTPError as exc:
            self._record(method, parts.path, query, b"")
            self.close_connection = True  # the unread body is still on the socket
            self.answer_error(exc)
            return
        self._record(method, parts.path, query, body)
        try:
            self.route(method, parts.path, query, body)
        except SandboxHTTPError as exc:
            self.answer_error(exc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up; nothing to answer
        except Exception as exc:  # a sandbox bug: say so plainly instead of looking like a dropped connection
            traceback.print_exc()
            self.close_connection = True
            self.answer_error(SandboxHTTPError(500, "SANDBOX_BUG", f"the sandbox itself failed: {exc!r}"))

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise SandboxHTTPError(
                400, "INVALID_REQUEST_BODY", f"Content-Length must be an integer, got {length!r}"
            )
        if n > MAX_BODY_BYTES:
            raise SandboxHTTPError(
                400, "INVALID_REQUEST_BODY", f"request body must be at most {MAX_BODY_BYTES} bytes, got {n}"
            )
        return self.rfile.read(n)

    def _record(self, method: str, path: str, query: Dict[str, str], body: bytes) -> None:
        self.sandbox._record(
            RecordedRequest(
                self.label, method, path, query, dict(self.headers.items()), body, time.time(), len(body)
            )
        )

    def answer_error(self, exc: SandboxHTTPError) -> None:
        exc = self.error_for(exc)
        self.answer(exc.status, exc.body(), exc.content_type, exc.headers())

    def answer(
        self, status: int, body: bytes, content_type: str, headers: Optional[Dict[str, str]] = None
    ) -> None:
        """Send a complete response with Content-Type and Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def drop(self) -> None:
        """Close the connection without sending a single byte."""
        self.close_connection = True
