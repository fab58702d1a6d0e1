"""``GET /v3/model``: filters and cursor paging over the catalog.

The page size defaults to 20 when ``pagination.limit`` is absent (the provider
documents only the range 1..100, see CONTRACT.md). Cursors are opaque strings
this server issued, bound to the filters they were issued for; a cursor used
with other filters, or made up by a client, is refused with 400.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, Dict, List, Optional

from ..limits import MODEL_TYPES, MODEL_PAGE_MAX, MODEL_PAGE_MIN
from .catalog import Catalog
from .errors import bad_request

PAGE_DEFAULT = 20
PAGE_MIN, PAGE_MAX = MODEL_PAGE_MIN, MODEL_PAGE_MAX
VISIBILITIES = ("public", "private")


def list_models(catalog: Catalog, query: Dict[str, str]) -> Dict[str, Any]:
    """The response body for one page of ``GET /v3/model`` with ``query`` (flat ``filter.x`` keys)."""
    types = _types(query.get("filter.types", ""))
    is_sdxl = _bool(query, "filter.is_sdxl")
    is_inpainting = _bool(query, "filter.is_inpainting")
    visibility = query.get("filter.visibility") or None
    if visibility is not None and visibility not in VISIBILITIES:
        raise bad_request(f"filter.visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}")
    text = query.get("filter.query", "")
    limit = _limit(query.get("pagination.limit"))
    key = _filter_key(types, is_sdxl, is_inpainting, visibility, text)
    offset = _decode_cursor(query.get("pagination.cursor", ""), key)

    matches = catalog.query(types, is_sdxl, visibility, is_inpainting, text)
    page: List[Dict[str, Any]] = matches[offset:offset + limit]
    end = offset + len(page)
    next_cursor = _encode_cursor(end, key) if end < len(matches) else ""
    return {"models": page, "pagination": {"next_cursor": next_cursor}}


def _types(raw: str) -> List[str]:
    types = [t.strip() for t in raw.split(",") if t.strip()]
    for t in types:
        if t not in MODEL_TYPES:
            raise bad_request(f"filter.types must be one of {', '.join(MODEL_TYPES)}, got {t!r}")
    return types


def _bool(query: Dict[str, str], name: str) -> Optional[bool]:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if raw not in ("true", "false"):
        raise bad_request(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def _limit(raw: Optional[str]) -> int:
    if raw is None or raw == "":
        return PAGE_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"pagination.limit must be an integer in [{PAGE_MIN}, {PAGE_MAX}], got {raw!r}") from None
    if not PAGE_MIN <= value <= PAGE_MAX:
        raise bad_request(f"pagination.limit must be in [{PAGE_MIN}, {PAGE_MAX}], got {value}")
    return value


def _filter_key(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def _encode_cursor(offset: int, key: str) -> str:
    return base64.urlsafe_b64encode(f"c1:{offset}:{key}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, key: str) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, offset, cursor_key = text.split(":")
        if tag != "c1" or cursor_key != key:
            raise ValueError
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request(f"pagination.cursor must be a next_cursor this server issued for the same filters, "
                          f"got {cursor[:40]!r}") from None
