"""The result cache: finished img2img results on disk, reused across restarts so a re-run is not billed again.

ComfyUI's own cache dies with the process. A request whose outcome is fixed
(seed >= 0) and whose exact bytes were answered before on the same host is
served from here instead of becoming a new, paid task. The key is the SHA-256
of the body exactly as sent (the encoded images included), the base URL and
the endpoint; the API key is never part of it, and an entry holds only the
result files, the seed and a little metadata.

One file per entry, ``<key>.ppr`` in ``<cache dir>/results``: a magic line,
an 8-byte header length, a JSON header (sizes and SHA-256 of every image) and
the image files. Written to a temp file and renamed (atomic, so concurrent
writers and readers in other processes only ever see whole entries); the
modification time is the least-recently-used clock (touched on every hit).
Anything unreadable is a miss and is deleted, never an error.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import struct
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from .config import default_cache_dir
from .errors import ConfigError, ValidationError

log = logging.getLogger("ppinfra")

ENV_ENABLED = "PPINFRA_RESULT_CACHE"
ENV_MAX_BYTES = "PPINFRA_RESULT_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 2 * 1024**3
SUBDIR = "results"
SUFFIX = ".ppr"
MAGIC = b"PPINFRA-RESULT-1\n"
_KEY_SALT = b"ppinfra-result-cache-v1"
_HEADER_MAX = 1 << 20
# A temp file this old belongs to a writer that died: removed on the next eviction pass.
_STALE_TEMP_SECONDS = 3600.0
_OFF = ("0", "false", "no", "off")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class CachedResult:
    """What a hit returns: the result files in order, and what the original task said."""

    task_id: str
    images: List[bytes]
    seed: Optional[int]
    image_type: str
    created: float


def cache_key(body: bytes, base_url: str, endpoint: str) -> str:
    """SHA-256 hex over the host, the endpoint and the exact body bytes (never the API key)."""
    from .hosts import normalise_base_url

    h = hashlib.sha256(_KEY_SALT)
    for part in (normalise_base_url(base_url).encode("utf-8"), endpoint.encode("utf-8")):
        h.update(struct.pack(">Q", len(part)))
        h.update(part)
    h.update(body)
    return h.hexdigest()


def is_cacheable(request: Any) -> bool:
    """Only a fixed seed makes the answer repeatable: seed -1 (or unset) lets the server pick.

    An endpoint without a seed (upscale) is repeatable as it is.
    """
    if not hasattr(request, "seed"):
        return True
    seed = getattr(request, "seed", None)
    return isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0


def parse_bytes(raw: str, name: str = ENV_MAX_BYTES) -> int:
    """``"2147483648"``, ``"500M"``, ``"2G"`` (binary units) -> bytes; a clear ConfigError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", str(raw).upper())
    if m is None:
        raise ConfigError(f"{name} must be a size in bytes such as 2147483648, 500M or 2G; got {raw!r}.")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def enabled(setting: Optional[bool] = None) -> bool:
    """The setting when given, else ``PPINFRA_RESULT_CACHE`` (``0``/``false``/``off`` switch it off),
    else on."""
    if setting is not None:
        return bool(setting)
    return os.environ.get(ENV_ENABLED, "").strip().lower() not in _OFF


def max_bytes(setting: Optional[int] = None) -> int:
    """The size cap: the setting when given, else ``PPINFRA_RESULT_CACHE_MAX_BYTES``, else 2 GiB."""
    if setting is not None:
        return int(setting)
    raw = os.environ.get(ENV_MAX_BYTES, "").strip()
    return parse_bytes(raw) if raw else DEFAULT_MAX_BYTES


class ResultCache:
    """The entries in ``directory``, kept under ``max_bytes`` in total by least-recently-used eviction."""

    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    @classmethod
    def for_cache_dir(cls, cache_dir: str = "", cap: Optional[int] = None) -> "ResultCache":
        return cls(os.path.join(cache_dir or default_cache_dir(), SUBDIR), max_bytes(cap))

    def path(self, key: str) -> str:
        return os.path.join(self.directory, key + SUFFIX)

    # ------------------------------------------------------------------ read
    def get(self, key: str, expected: Optional[int] = None) -> Optional[CachedResult]:
        """The entry for ``key``, or None (absent, corrupt or not ``expected`` images); a hit is touched."""
        path = self.path(key)
        try:
            with open(path, "rb") as fh:
                entry = _read_entry(fh)
        except OSError:
            return None
        if entry is None or (expected is not None and len(entry.images) != expected):
            log.warning("result cache: entry %s is unreadable or incomplete; treated as a miss", key[:12])
            _remove(path)
            return None
        try:
            os.utime(path)  # least-recently-used clock
        except OSError:
            pass
        return entry

    # ------------------------------------------------------------------ write
    def put(
        self, key: str, *, task_id: str, images: List[bytes], seed: Optional[int], image_type: str
    ) -> bool:
        """Store atomically, then evict down to the cap. False when the entry alone exceeds the cap."""
        header = json.dumps(
            {
                "task_id": task_id,
                "seed": seed,
                "image_type": image_type,
                "created": time.time(),
                "images": [{"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()} for b in images],
            },
            separators=(",", ":"),
        ).encode("utf-8")
        size = len(MAGIC) + 8 + len(header) + sum(len(b) for b in images)
        if size > self.max_bytes:
            log.info("result cache: a %d-byte result is over the %d-byte cap; not kept", size, self.max_bytes)
            return False
        os.makedirs(self.directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX + ".part", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(MAGIC)
                fh.write(struct.pack(">Q", len(header)))
                fh.write(header)
                for blob in images:
                    fh.write(blob)
            os.replace(tmp, self.path(key))
        except BaseException:
            _remove(tmp)
            raise
        self.evict(keep=key)
        return True

    def evict(self, keep: Optional[str] = None) -> int:
        """Remove the least recently used entries until the total is under the cap; returns how many."""
        entries, total = self._scan(clean_temps=True)
        removed = 0
        for mtime, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            if keep is not None and os.path.basename(path) == keep + SUFFIX:
                continue
            if _remove(path):
                removed += 1
            total -= size
        return removed

    # ------------------------------------------------------------------ command line
    def info(self) -> Dict[str, Any]:
        entries, total = self._scan()
        return {
            "directory": self.directory,
            "entries": len(entries),
            "bytes": total,
            "max_bytes": self.max_bytes,
        }

    def clear(self) -> Tuple[int, int]:
        """Delete every entry (and leftover temp file); returns (entries, bytes) removed."""
        entries, total = self._scan(clean_temps=True, all_temps=True)
        count = sum(1 for _, _, path in entries if _remove(path))
        return count, total

    def _scan(
        self, clean_temps: bool = False, all_temps: bool = False
    ) -> Tuple[List[Tuple[float, int, str]], int]:
        out: List[Tuple[float, int, str]] = []
        try:
            listing = list(os.scandir(self.directory))
        except OSError:
            return out, 0
        now = time.time()
        for item in listing:
            try:
                st = item.stat()
            except OSError:
                continue  # removed meanwhile by another process
            if item.name.endswith(SUFFIX):
                out.append((st.st_mtime, st.st_size, item.path))
            elif clean_temps and item.name.startswith(".tmp-"):
                if all_temps or now - st.st_mtime > _STALE_TEMP_SECONDS:
                    _remove(item.path)
        return out, sum(size for _, size, _ in out)


def _read_entry(fh: Any) -> Optional[CachedResult]:
    """An entry file -> CachedResult; None on any inconsistency (truncation, bad JSON, bad image).

    Read piece by piece, so a hit holds each result file once, not the whole entry twice.
    """
    try:
        lead = fh.read(len(MAGIC) + 8)
        if len(lead) != len(MAGIC) + 8 or not lead.startswith(MAGIC):
            return None
        (hlen,) = struct.unpack(">Q", lead[len(MAGIC) :])
        if hlen > _HEADER_MAX:
            return None
        head = json.loads(fh.read(hlen).decode("utf-8"))
        images = []
        for item in head["images"]:
            n = int(item["bytes"])
            blob = fh.read(n) if n >= 0 else b""
            if len(blob) != n or hashlib.sha256(blob).hexdigest() != item["sha256"]:
                return None
            images.append(blob)
        if fh.read(1) or not images or not all(_looks_like_image(b) for b in images):
            return None
        seed = head.get("seed")
        return CachedResult(
            task_id=str(head.get("task_id") or ""),
            images=images,
            seed=None if seed is None else int(seed),
            image_type=str(head.get("image_type") or ""),
            created=float(head.get("created") or 0.0),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _looks_like_image(blob: bytes) -> bool:
    from PIL import Image  # deferred: keeps `import ppinfra` light

    try:
        with Image.open(io.BytesIO(blob)) as im:
            return im.size[0] > 0 and im.size[1] > 0
    except Exception:
        return False


def _remove(path: str) -> bool:
    try:
        os.remove(path)
        return True
    except OSError:
        return False  # already gone (another process), or in use on Windows: the next pass retries


# --------------------------------------------------------------------------- the client's hook


class Lookup:
    """One cacheable request's place in the cache: :meth:`load` before the task, :meth:`store` after it."""

    def __init__(self, cache: ResultCache, key: str, expected: int) -> None:
        self.cache, self.key, self.expected = cache, key, expected

    def load(self, on_image: Optional[Callable[[str, int, bytes], None]] = None) -> Optional[CachedResult]:
        """A hit (each file also handed to ``on_image`` as a download would be), or None."""
        try:
            hit = self.cache.get(self.key, self.expected)
        except OSError as exc:
            log.warning("result cache unreadable (%s); running the task", exc.__class__.__name__)
            return None
        if hit is not None:
            log.info("result cache hit for task %s: no new task, no charge", hit.task_id)
            if on_image is not None:
                # As downloads would: each file to the callback (the node decodes there), side by side.
                with ThreadPoolExecutor(
                    max_workers=max(1, min(len(hit.images), os.cpu_count() or 2))
                ) as pool:
                    list(pool.map(lambda i: on_image(hit.task_id, i, hit.images[i]), range(len(hit.images))))
        return hit

    def store(self, result: Any) -> None:
        """Keep a finished result (an ``Img2ImgResult`` or alike); a full disk only costs the reuse."""
        self.store_images(result.task_id, result.images, result.seed, result.image_type)

    def store_images(self, task_id: str, images: List[bytes], seed: Optional[int], image_type: str) -> None:
        if len(images) != self.expected:
            return
        try:
            self.cache.put(self.key, task_id=task_id, images=list(images), seed=seed, image_type=image_type)
        except OSError as exc:
            log.warning("result cache: could not store task %s (%s)", task_id, exc.__class__.__name__)


def lookup_for(
    settings: Any, request: Any, endpoint: Optional[str] = None, body: Optional[bytes] = None
) -> Optional[Lookup]:
    """The cache slot for ``request`` under ``settings``, or None (cache off, or seed -1/unset).

    ``body`` is ``request.to_json_bytes()`` when the caller has it already (it is several MB).
    """
    if not enabled(getattr(settings, "result_cache", None)) or not is_cacheable(request):
        return None
    cache = ResultCache.for_cache_dir(
        getattr(settings, "cache_dir", ""), getattr(settings, "result_cache_max_bytes", None)
    )
    try:
        body = request.to_json_bytes() if body is None else body
    except ValidationError:
        return None  # the submit raises it, in its usual order among the other checks
    key = cache_key(body, settings.base_url, endpoint or request.endpoint)
    return Lookup(cache, key, int(request.images_expected))


def main(action: str) -> int:
    """``python -m ppinfra cache clear|info``: the default cache directory, no key needed."""
    cache = ResultCache.for_cache_dir()
    if action == "clear":
        count, size = cache.clear()
        print(f"removed {count} cached result(s), {size / 1e6:.1f} MB, from {cache.directory}")
    else:
        i = cache.info()
        state = "on" if enabled() else f"off ({ENV_ENABLED}=0)"
        print(
            f"{i['directory']}: {i['entries']} result(s), {i['bytes'] / 1e6:.1f} MB of "
            f"{i['max_bytes'] / 1e6:.0f} MB; cache {state}"
        )
    return 0
