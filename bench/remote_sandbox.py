"""The sandbox in its own process, so the benchmark does not charge the server's work to the client.

In-process, the sandbox's request parsing, base64 and PNG validation,
rendering and serving hold the same GIL as the client under test. A real
PPInfra server does that work on its own machines; here it at least runs in
another interpreter (the cores are still shared: see the machine note).
The parent sees the few things the benchmark reads (base URLs, task timings,
request log without bodies) through a pipe.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from types import SimpleNamespace
from typing import Any, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RemoteSandbox:
    """``SandboxServer(**kwargs)`` started in a child process, with a read-mostly proxy of its state."""

    def __init__(self, **kwargs: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child, kwargs), name="ppinfra-bench-sandbox", daemon=True
        )
        self._proc.start()
        if not self._conn.poll(60):
            self._proc.kill()
            raise RuntimeError("the sandbox process did not start within 60 s")
        self.base_url, self.image_base_url = self._conn.recv()

    def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        self._conn.send((op, args, kwargs))
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"sandbox {op} failed: {value}")
        return value

    @property
    def tasks(self) -> Dict[str, Any]:
        """task_id -> namespace(task_id, created, done_at) (wall clock, comparable across processes)."""
        return {tid: SimpleNamespace(**d) for tid, d in self._call("tasks").items()}

    @property
    def requests(self) -> List[Any]:
        """namespace(server, method, path, query, time, body_len) per request received."""
        return [SimpleNamespace(**d) for d in self._call("requests")]

    def task_images(self, task_id: str) -> List[bytes]:
        return self._call("task_images", task_id)

    def configure(self, **settings: Any) -> None:
        self._call("configure", **settings)

    def clear_requests(self) -> None:
        self._call("clear_requests")

    def stop(self) -> None:
        if self._proc.is_alive():
            try:
                self._call("stop")
            except (EOFError, OSError):
                pass
            self._proc.join(timeout=10)


def _serve(conn: Any, kwargs: Dict[str, Any]) -> None:
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from ppinfra.sandbox import SandboxServer

    srv = SandboxServer(**kwargs).start()
    conn.send((srv.base_url, srv.image_base_url))
    while True:
        try:
            op, args, kw = conn.recv()
        except EOFError:
            srv.stop()
            return
        try:
            if op == "tasks":
                value = {
                    tid: {"task_id": tid, "created": t.created, "done_at": t.done_at}
                    for tid, t in srv.tasks.items()
                }
            elif op == "requests":
                value = [
                    {
                        "server": r.server,
                        "method": r.method,
                        "path": r.path,
                        "query": r.query,
                        "time": r.time,
                        "body_len": len(r.body),
                        "image_formats": _formats(r.body),
                    }
                    for r in srv.requests
                ]
            elif op == "task_images":
                value = list(srv.tasks[args[0]].images or [])
            elif op == "configure":
                value = srv.configure(**kw)
            elif op == "clear_requests":
                value = srv.clear_requests()
            elif op == "stop":
                srv.stop()
                conn.send((True, None))
                return
            else:
                raise ValueError(op)
            conn.send((True, value))
        except Exception as exc:  # report to the parent instead of dying silently
            conn.send((False, repr(exc)))


def _formats(body: bytes) -> List[str]:
    """The file format of each base64 image in a submit body, from its first bytes (PNG or JPEG or other)."""
    out = []
    marker = b'"image_base64":"'
    at = body.find(marker)
    while at >= 0:
        head = body[at + len(marker) : at + len(marker) + 4]
        out.append({b"iVBO": "PNG", b"/9j/": "JPEG", b"UklG": "WebP"}.get(head, "other"))
        at = body.find(marker, at + 1)
    return out
