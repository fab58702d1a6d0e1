"""Pre-signed result URLs, like an object store's: ``/results/<file>?expires=<unix>&signature=<hmac>``.

The signature covers the file, the expiry and a *generation*; ``revoke_all``
moves to the next generation, so every URL issued before it is refused as
expired even if its ``expires`` lies in the future.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from typing import Optional
from urllib.parse import urlencode

VALID, EXPIRED, BAD_SIGNATURE = "valid", "expired", "bad_signature"


class UrlSigner:
    """Issues and checks signed result URLs for one image host."""

    def __init__(self) -> None:
        self._secret = os.urandom(32)
        self._generation = 0
        self._lock = threading.Lock()

    def query(self, file_name: str, ttl: float, now: Optional[float] = None) -> str:
        """The query string of a fresh URL for ``file_name``, valid for ``ttl`` seconds."""
        expires = int((time.time() if now is None else now) + ttl)
        with self._lock:
            generation = self._generation
        return urlencode({"expires": expires, "signature": self._sign(file_name, expires, generation)})

    def check(self, file_name: str, expires: str, signature: str) -> str:
        """VALID, EXPIRED (past ``expires`` or revoked) or BAD_SIGNATURE."""
        try:
            expiry = int(expires)
        except (TypeError, ValueError):
            return BAD_SIGNATURE
        with self._lock:
            generation = self._generation
        for gen in range(generation, -1, -1):
            if hmac.compare_digest(self._sign(file_name, expiry, gen), signature or ""):
                if gen != generation or expiry < time.time():
                    return EXPIRED
                return VALID
        return BAD_SIGNATURE

    def revoke_all(self) -> None:
        """Every URL issued so far becomes expired."""
        with self._lock:
            self._generation += 1

    def _sign(self, file_name: str, expires: int, generation: int) -> str:
        msg = f"{file_name}\n{expires}\n{generation}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()
