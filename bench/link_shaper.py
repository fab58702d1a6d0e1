"""A shaped network link on loopback: TCP forwarding with a bandwidth per direction and a round-trip delay.

The benchmark puts it between the pack and a sandbox bound to 127.0.0.2, so
uploads, polls and downloads all cross a link like a home connection
(default 20 Mbit/s up, 100 Mbit/s down, 40 ms round trip). Each direction is
one shared link for every connection through the shaper, as a real uplink
is: bytes leave in order at the link's rate and arrive one half round trip
later. A new connection also costs one round trip (the TCP handshake).
Not modelled: TCP slow start, loss, and socket buffers filling up.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from typing import List, Optional, Tuple

CHUNK = 64 * 1024


class Direction:
    """One direction of the link: a rate in bytes per second and a one-way delay, shared by all
    connections."""

    def __init__(self, mbit_per_s: float, one_way_s: float) -> None:
        self.rate = mbit_per_s * 1e6 / 8
        self.one_way = one_way_s
        self._free_at = 0.0
        self._lock = threading.Lock()
        self.bytes = 0

    def schedule(self, n: int) -> float:
        """When ``n`` bytes read now arrive at the other end (monotonic time)."""
        with self._lock:
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + n / self.rate
            self.bytes += n
            return self._free_at + self.one_way


class ShapedLink:
    """Forwarders that all share one up and one down :class:`Direction`. Loopback only."""

    def __init__(self, up_mbit: float = 20.0, down_mbit: float = 100.0, rtt_ms: float = 40.0) -> None:
        self.up = Direction(up_mbit, rtt_ms / 2000.0)
        self.down = Direction(down_mbit, rtt_ms / 2000.0)
        self.rtt = rtt_ms / 1000.0
        self._listeners: List[socket.socket] = []
        self._closed = threading.Event()

    def forward(self, listen: Tuple[str, int], target: Tuple[str, int]) -> int:
        """Accept on ``listen`` (port 0 = any) and forward to ``target``; returns the bound port."""
        for host in (listen[0], target[0]):
            if not host.startswith("127."):
                raise ValueError(f"the link shaper forwards on loopback only, not {host}")
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(listen)
        srv.listen(64)
        srv.settimeout(0.2)
        self._listeners.append(srv)
        threading.Thread(target=self._accept, args=(srv, target), daemon=True, name="shaper-accept").start()
        return srv.getsockname()[1]

    def close(self) -> None:
        self._closed.set()
        for srv in self._listeners:
            srv.close()

    def _accept(self, srv: socket.socket, target: Tuple[str, int]) -> None:
        while not self._closed.is_set():
            try:
                client, _ = srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(
                target=self._connect, args=(client, target), daemon=True, name="shaper-conn"
            ).start()

    def _connect(self, client: socket.socket, target: Tuple[str, int]) -> None:
        time.sleep(self.rtt)  # the handshake's round trip
        try:
            server = socket.create_connection(target, timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        client.settimeout(None)
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _Pump(client, server, self.up).start()
        _Pump(server, client, self.down).start()


class _Pump:
    """src -> dst through one direction: a reader that timestamps chunks, a writer that releases
    them on time."""

    def __init__(self, src: socket.socket, dst: socket.socket, direction: Direction) -> None:
        self.src, self.dst, self.direction = src, dst, direction
        self.q: "queue.Queue[Tuple[float, Optional[bytes]]]" = queue.Queue()

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True, name="shaper-read").start()
        threading.Thread(target=self._write, daemon=True, name="shaper-write").start()

    def _read(self) -> None:
        while True:
            try:
                data = self.src.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                self.q.put((time.monotonic() + self.direction.one_way, None))
                return
            self.q.put((self.direction.schedule(len(data)), data))

    def _write(self) -> None:
        while True:
            due, data = self.q.get()
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                if data is None:
                    self.dst.shutdown(socket.SHUT_WR)
                    return
                self.dst.sendall(data)
            except OSError:
                for sock in (self.src, self.dst):
                    try:
                        sock.close()
                    except OSError:
                        pass
                return


def measure(link: ShapedLink, nbytes: int = 4_000_000) -> Tuple[float, float]:
    """Send ``nbytes`` up and the same down through a throwaway echo-less sink; returns (up, down) Mbit/s."""
    sink = socket.socket()
    sink.bind(("127.0.0.2", 0))
    sink.listen(2)
    port = link.forward(("127.0.0.1", 0), ("127.0.0.2", sink.getsockname()[1]))
    results = []

    def serve() -> None:
        conn, _ = sink.accept()
        got = 0
        while got < nbytes:
            got += len(conn.recv(CHUNK))
        t0 = time.monotonic()
        conn.sendall(b"\0" * nbytes)  # the client times this download
        conn.close()
        results.append(t0)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    c = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    c.sendall(b"\1" * nbytes)
    first = c.recv(1)  # the first byte back: the upload has fully arrived (plus one way)
    t_up = time.monotonic() - t0
    got = len(first)
    t1 = time.monotonic()
    while got < nbytes:
        chunk = c.recv(CHUNK)
        if not chunk:
            break
        got += len(chunk)
    t_down = time.monotonic() - t1
    c.close()
    sink.close()
    return nbytes * 8 / t_up / 1e6, nbytes * 8 / t_down / 1e6
