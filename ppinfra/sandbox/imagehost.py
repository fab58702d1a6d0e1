"""The image host: pre-signed ``GET /results/<file>`` links, answering like an object store.

It refuses any request that carries an ``Authorization`` header (as S3 does
when a pre-signed URL also gets a header): that is how tests prove the API key
never travels to the image host.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

from .errors import SandboxHTTPError
from .faults import Fault
from .httpbase import BaseHandler
from .imaging import CONTENT_TYPES
from .urls import BAD_SIGNATURE, EXPIRED

PREFIX = "/results/"
# S3 error codes for status faults on the image host.
_S3_CODES = {
    400: "InvalidRequest",
    403: "AccessDenied",
    404: "NoSuchKey",
    429: "SlowDown",
    500: "InternalError",
    503: "SlowDown",
    504: "RequestTimeout",
}
_GARBLE = bytes(b ^ 0x5A for b in range(256))  # a byte map that leaves no image decodable


class ImageHandler(BaseHandler):
    """Serves rendered results by signed URL; no API key involved."""

    label = "images"

    def error_for(self, exc: SandboxHTTPError) -> SandboxHTTPError:
        if exc.xml:
            return exc
        return SandboxHTTPError(
            exc.status,
            _S3_CODES.get(exc.status, "InvalidRequest"),
            exc.message,
            retry_after=exc.retry_after,
            xml=True,
        )

    def route(self, method: str, path: str, query: Dict[str, str], body: bytes) -> None:
        _refuse_auth_and_method(self, method)
        fault = self.sandbox.faults.take("image")
        if fault is not None and self._act_out_early(fault):
            return
        data, content_type = lookup(self.sandbox, path, query)
        if fault is not None and fault.kind == "truncate":
            self._send_partial(data, content_type)
            return
        if fault is not None and fault.kind == "corrupt":
            # Same length, right Content-Length, right magic number, and a body that does not decode.
            data = data[:8] + data[8:].translate(_GARBLE)
        self.answer(200, data, content_type)

    def _act_out_early(self, fault: Fault) -> bool:
        p = fault.params
        if fault.kind == "slow":
            time.sleep(p["delay"])
            return False
        if fault.kind == "status":
            status = p["status"]
            raise SandboxHTTPError(
                status,
                p.get("reason", _S3_CODES.get(status, "InternalError")),
                p.get("message", f"injected fault: HTTP {status}"),
                retry_after=p.get("retry_after"),
                xml=True,
            )
        if fault.kind == "drop":
            self.drop()
            return True
        if fault.kind == "malformed":
            text = p.get("body", "this is not an image")
            self.answer(200, text.encode() if isinstance(text, str) else text, "image/png")
            return True
        if fault.kind == "oversize":
            self._send_junk(int(p["size"]))
            return True
        if fault.kind == "redirect":
            self.answer(
                p["status"], b"", "application/xml", {"Location": self.sandbox.other_base_url + self.path}
            )
            return True
        return False  # truncate and corrupt need the real bytes

    def _send_partial(self, data: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

    def _send_junk(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = b"\x89PNG\r\n\x1a\n" + bytes(64 * 1024 - 8)
        sent = 0
        try:
            while sent < size:
                n = min(len(chunk), size - sent)
                self.wfile.write(chunk[:n])
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading at its size cap, as it should
        self.close_connection = True


def serve_image(handler: BaseHandler, method: str, path: str, query: Dict[str, str]) -> None:
    """Answer a result-file request on ``handler`` with no faults (the redirect target's image route)."""
    _refuse_auth_and_method(handler, method)
    data, content_type = lookup(handler.sandbox, path, query)
    handler.answer(200, data, content_type)


def _refuse_auth_and_method(handler: BaseHandler, method: str) -> None:
    if "Authorization" in handler.headers:
        raise SandboxHTTPError(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
            "string parameter or the Authorization header should be specified",
            xml=True,
        )
    if method != "GET":
        raise SandboxHTTPError(
            405, "MethodNotAllowed", f"{method} is not allowed against this resource", xml=True
        )


def lookup(sandbox: Any, path: str, query: Dict[str, str]) -> Tuple[bytes, str]:
    """(bytes, content type) of a signed result link, or the object store's XML error."""
    if not path.startswith(PREFIX):
        raise SandboxHTTPError(404, "NoSuchKey", "The specified key does not exist.", xml=True)
    file_name = path[len(PREFIX) :]
    if "expires" not in query or "signature" not in query:
        raise SandboxHTTPError(
            403,
            "AccessDenied",
            "Query-string authentication requires the expires and signature parameters",
            xml=True,
        )
    verdict = sandbox.signer.check(file_name, query["expires"], query["signature"])
    if verdict == BAD_SIGNATURE:
        raise SandboxHTTPError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            xml=True,
        )
    if verdict == EXPIRED:
        raise SandboxHTTPError(403, "AccessDenied", "Request has expired", xml=True)
    data = _image_bytes(sandbox, file_name)
    if data is None:
        raise SandboxHTTPError(404, "NoSuchKey", "The specified key does not exist.", xml=True)
    return data, CONTENT_TYPES[file_name.rsplit(".", 1)[1]]


def _image_bytes(sandbox: Any, file_name: str) -> Optional[bytes]:
    # File names are "<task_id>-<index>.<type>", as SandboxServer.image_url issues them.
    stem, _, ext = file_name.rpartition(".")
    task_id, _, index = stem.rpartition("-")
    task = sandbox._store.get(task_id)
    if task is None or task.images is None or ext != task.image_type or not index.isdigit():
        return None
    i = int(index)
    return task.images[i] if i < len(task.images) else None
