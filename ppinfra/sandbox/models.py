"""``GET /v3/model``: filters and cursor paging over the catalog, lenient or strict.

The page size defaults to 20 when ``pagination.limit`` is absent (the provider
documents only the range (0, 100], see docs/api.md). The cursors this server
issues look like the real ones, ``c_`` + base64 of a JSON key
(``c_WzIwLCI5ZjE..."]``), and are bound to the filters they were issued for.

Lenient (default, like the real go-kratos backend): booleans parse as Go's
``strconv.ParseBool`` does (``true/True/TRUE/t/1``, ``false/.../0``); the
provider SDK's own ``c_<offset>`` cursors (``c_0``, ``c_100``) work; unknown
query keys (the SDK's ``filter.type``) are ignored. Strict: only ``true`` and
``false``, only cursors this server issued, and an unknown key is a 400.
Both refuse unknown types, visibilities and sources, and a limit outside
(0, 100].
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any, Dict, List, Optional

from ..limits import MODEL_PAGE_MAX, MODEL_PAGE_MIN, MODEL_TYPES
from .catalog import SOURCES, Catalog, ppinfra_entry
from .errors import bad_request

PAGE_DEFAULT = 20
PAGE_MIN, PAGE_MAX = MODEL_PAGE_MIN, MODEL_PAGE_MAX
VISIBILITIES = ("public", "private")
QUERY_KEYS = (
    "filter.types",
    "filter.is_sdxl",
    "filter.visibility",
    "filter.is_inpainting",
    "filter.source",
    "filter.query",
    "pagination.limit",
    "pagination.cursor",
)
# Go's strconv.ParseBool, which the real backend's form decoding uses.
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def list_models(
    catalog: Catalog, query: Dict[str, str], strict: bool = False, novita_shape: bool = True
) -> Dict[str, Any]:
    """The response body for one page of ``GET /v3/model`` with ``query`` (flat ``filter.x`` keys).

    ``novita_shape=False`` lists the entries in PPInfra's sample shape (``model_name``, see
    :func:`~.catalog.ppinfra_entry`), as a sandbox speaking as PPInfra or PPIO does.
    """
    if strict:
        unknown = sorted(set(query) - set(QUERY_KEYS))
        if unknown:
            raise bad_request(
                f"{unknown[0]} is not a documented query parameter of GET /v3/model "
                f"(documented: {', '.join(QUERY_KEYS)})"
            )
    types = _types(query.get("filter.types", ""))
    is_sdxl = _bool(query, "filter.is_sdxl", strict)
    is_inpainting = _bool(query, "filter.is_inpainting", strict)
    visibility = _enum(query, "filter.visibility", VISIBILITIES)
    source = _enum(query, "filter.source", SOURCES)
    text = query.get("filter.query", "")
    limit = _limit(query.get("pagination.limit"))
    key = _filter_key(types, is_sdxl, is_inpainting, visibility, source, text)
    offset = _decode_cursor(query.get("pagination.cursor", ""), key, strict)

    matches = catalog.query(types, is_sdxl, visibility, is_inpainting, text, source)
    page: List[Dict[str, Any]] = matches[offset : offset + limit]
    end = offset + len(page)
    next_cursor = encode_cursor(end, key) if end < len(matches) else ""
    if not novita_shape:
        page = [ppinfra_entry(m) for m in page]
    return {"models": page, "pagination": {"next_cursor": next_cursor}}


def _types(raw: str) -> List[str]:
    types = [t.strip() for t in raw.split(",") if t.strip()]
    for t in types:
        if t not in MODEL_TYPES:
            raise bad_request(f"filter.types must be one of {', '.join(MODEL_TYPES)}, got {t!r}")
    return types


def _bool(query: Dict[str, str], name: str, strict: bool) -> Optional[bool]:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if strict:
        if raw not in ("true", "false"):
            raise bad_request(f"{name} must be true or false, got {raw!r}")
        return raw == "true"
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise bad_request(f"{name} must be a boolean (true, false, 1, 0), got {raw!r}")


def _enum(query: Dict[str, str], name: str, options: tuple) -> Optional[str]:
    value = query.get(name) or None
    if value is not None and value not in options:
        raise bad_request(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value


def _limit(raw: Optional[str]) -> int:
    if raw is None or raw == "":
        return PAGE_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(
            f"pagination.limit must be an integer in [{PAGE_MIN}, {PAGE_MAX}], got {raw!r}"
        ) from None
    if not PAGE_MIN <= value <= PAGE_MAX:
        raise bad_request(f"pagination.limit must be in [{PAGE_MIN}, {PAGE_MAX}], got {value}")
    return value


def _filter_key(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:8]


def encode_cursor(offset: int, key: str) -> str:
    """A cursor in the real service's look: ``c_`` + base64 of the JSON ``[offset, "<filter key>"]``."""
    return "c_" + base64.b64encode(json.dumps([offset, key], separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str, key: str, strict: bool) -> int:
    if not cursor:
        return 0
    if cursor.startswith("c_") and cursor[2:].isdigit() and not strict:
        return int(cursor[2:])  # the provider SDK builds these itself: c_0, c_100, ...
    try:
        if not cursor.startswith("c_"):
            raise ValueError
        offset, cursor_key = json.loads(base64.b64decode(cursor[2:], validate=True).decode())
        if cursor_key != key or not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        allowed = "a next_cursor this server issued for the same filters"
        if not strict:
            allowed += " or c_<offset>"
        raise bad_request(f"pagination.cursor must be {allowed}, got {cursor[:40]!r}") from None
