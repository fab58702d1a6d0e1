"""The pack's HTTP routes for the editor (``web/*.js``): key and host, balance, model lists and search.

JSON in and out; ComfyUI also serves each route under ``/api``:

* ``GET /ppinfra/settings[?refresh=1]``: configured, source (env/file), host,
  base_url and its source, hosts, last4, env_overrides, storage, balance
  (``GET /v3/user``, cached 30 s), balance_error. Never the key.
* ``POST /ppinfra/settings/key {api_key, host?}``: checked with ``GET /v3/user``
  first; 200 ``{ok: true, ...settings}`` or 400 ``{ok: false, error}`` (not saved).
* ``POST /ppinfra/settings/test {api_key?, host?}``: ``{ok, balance, error}``, saves nothing.
* ``POST /ppinfra/settings/host {host}`` and ``POST /ppinfra/settings/remove {}``: the settings.
* ``GET /ppinfra/models/{type}[?with_none=1&family=sd15|sdxl&refresh=1]``: a JSON
  array of names (the remote-combo format), from memory.
* ``GET /ppinfra/models/search?type=&q=&family=&limit=&offset=``:
  ``{total, items: [{name, display_name, sd_name, tags, base_model, family, cover_url, type}], partial}``.

The logic lives in :mod:`ppinfra.account` and :mod:`.catalog`, which the CLI
can reuse. Handlers only parse, check the origin and run the blocking work on a
thread so ComfyUI's event loop never waits on PPInfra.

ComfyUI's routes have no authentication and it checks the Origin header for
loopback hosts only: every route here refuses a cross-origin request itself,
and the state-changing ones also require ``Content-Type: application/json``
(a web page cannot send that cross-origin without a CORS preflight).
The key is never part of any answer.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

from ..ppinfra.errors import PPInfraError

from . import catalog
from .account import account

log = logging.getLogger("ppinfra")

PREFIX = "/ppinfra"
FAMILIES = ("sd15", "sdxl")
SEARCH_LIMIT_MAX = 200
# A plain list request (the first load, or the editor's refresh button: both send the same GET)
# asks PPInfra again when the list is older than ROUTE_RECHECK_SECONDS, but waits only this long.
PLAIN_REFRESH_WAIT = 3.0
# A first search waits this long for the full list before it asks PPInfra's own search instead.
FIRST_SEARCH_WAIT = 2.0
_list_memo: Dict[Tuple[str, bool, str], Tuple[Any, bytes]] = {}
_memo_lock = threading.Lock()

Handler = Callable[[Any], Awaitable[Any]]


class _BadRequest(Exception):
    pass


# --------------------------------------------------------------------------- request checks

def same_origin(headers: Any) -> bool:
    """False for a request a browser sent on behalf of another site.

    ``Origin`` (sent by browsers on cross-origin and on POST requests) must name
    the host the request was sent to (``Host``, or ``X-Forwarded-Host`` behind a
    proxy that rewrites ``Host``); ``Sec-Fetch-Site`` must not say another site
    or port. A request without either header (curl, a script) is not a browser's.
    """
    site = (headers.get("Sec-Fetch-Site") or "").lower()
    if site in ("cross-site", "same-site"):
        return False
    origin = headers.get("Origin")
    if origin is None:
        return True
    netloc = urlsplit(origin).netloc.lower()
    hosts = {h.strip().lower() for h in (headers.get("Host"), headers.get("X-Forwarded-Host")) if h}
    return bool(netloc) and netloc in hosts


def _json(data: Any, status: int = 200) -> Any:
    from aiohttp import web

    return web.json_response(data, status=status)


def guarded(handler: Handler, *, changes_state: bool = False) -> Handler:
    """Wrap a handler with the origin check (and the JSON content type for state changes)."""

    async def run(request: Any) -> Any:
        if not same_origin(request.headers):
            return _json({"error": "Cross-origin request refused: open the ComfyUI editor itself."}, 403)
        if changes_state and request.content_type != "application/json":
            return _json({"ok": False, "error": "Send the request body as JSON (Content-Type: application/json)."},
                         415)
        try:
            return await handler(request)
        except _BadRequest as exc:
            return _json({"ok": False, "error": str(exc)}, 400)
        except PPInfraError as exc:  # bad input the client layer refused (key format, host name)
            return _json({"ok": False, "error": str(exc)}, 400)

    run.__name__ = handler.__name__
    return run


async def _body(request: Any) -> Dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise _BadRequest(f"The request body must be a JSON object, got {type(data).__name__}.")
    return data


def _flag(request: Any, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _int_param(request: Any, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be a whole number from {low} to {high}, got {raw!r}.") from None
    if not low <= value <= high:
        raise _BadRequest(f"{name} must be from {low} to {high}, got {value}.")
    return value


def _family(request: Any) -> Optional[str]:
    raw = request.query.get("family", "").strip().lower()
    if raw in ("", "any", "all"):
        return None
    if raw not in FAMILIES:
        raise _BadRequest(f"family must be one of {', '.join(FAMILIES)} (or empty), got {raw!r}.")
    return raw


def _model_type(raw: str) -> str:
    if raw not in catalog.DROPDOWN_TYPES:
        raise _BadRequest(f"type must be one of {', '.join(catalog.DROPDOWN_TYPES)}, got {raw!r}.")
    return raw


# --------------------------------------------------------------------------- handlers

async def get_settings(request: Any) -> Any:
    refresh = _flag(request, "refresh")
    return _json(await asyncio.to_thread(account().status, refresh=refresh))


async def post_key(request: Any) -> Any:
    data = await _body(request)
    host = data.get("host")
    try:
        status = await asyncio.to_thread(account().set_key, data.get("api_key"), host)
    except PPInfraError as exc:
        return _json({"ok": False, "error": str(exc)}, 400)
    _refresh_lists_later()
    return _json({"ok": True, **status})


async def post_test(request: Any) -> Any:
    data = await _body(request)
    return _json(await asyncio.to_thread(account().test, data.get("api_key"), data.get("host")))


async def post_host(request: Any) -> Any:
    data = await _body(request)
    status = await asyncio.to_thread(account().set_host, data.get("host"))
    _refresh_lists_later()
    return _json(status)


async def post_remove(request: Any) -> Any:
    await _body(request)
    return _json(await asyncio.to_thread(account().remove_key))


async def get_models(request: Any) -> Any:
    from aiohttp import web

    model_type = _model_type(request.match_info.get("type", ""))
    with_none = _flag(request, "with_none")
    family = _family(request)
    if _flag(request, "refresh"):
        await asyncio.to_thread(catalog.refresh_now, model_type)
    else:
        await asyncio.to_thread(catalog.refresh_now, model_type, PLAIN_REFRESH_WAIT,
                                max_age=catalog.ROUTE_RECHECK_SECONDS)
    body = await asyncio.to_thread(_names_json, model_type, with_none, family or "")
    return web.Response(body=body, content_type="application/json")


async def get_search(request: Any) -> Any:
    model_type = _model_type(request.query.get("type", "lora"))
    query = request.query.get("q", "")
    if len(query) > 200:
        raise _BadRequest(f"q must be at most 200 characters, got {len(query)}.")
    family = _family(request)
    limit = _int_param(request, "limit", 50, 1, SEARCH_LIMIT_MAX)
    offset = _int_param(request, "offset", 0, 0, 10_000_000)

    def run() -> Dict[str, Any]:
        # Nothing cached for this type yet: fetch the whole list in the background and,
        # unless that is quick, answer this search with PPInfra's own (server side: the key stays here).
        if not catalog.has_list(model_type) and catalog.key_configured() \
                and not catalog.refresh_now(model_type, FIRST_SEARCH_WAIT):
            try:
                page = catalog.search_provider(model_type, query, family, limit) if offset == 0 else []
                return {"total": len(page), "items": [_item(m, model_type) for m in page], "partial": True}
            except PPInfraError as exc:
                log.info("model search on PPInfra failed: %s", exc)
        total, page = catalog.search(model_type, query, family=family, limit=limit, offset=offset)
        return {"total": total, "items": [_item(m, model_type) for m in page], "partial": False}

    return _json(await asyncio.to_thread(run))


def _item(info: Any, model_type: str) -> Dict[str, Any]:
    return {"name": info.name, "display_name": info.display_name or info.name, "sd_name": info.sd_name or info.name,
            "tags": list(info.tags), "base_model": info.base_model, "family": info.family,
            "cover_url": info.cover_url or None, "type": model_type}


def _names_json(model_type: str, with_none: bool, family: str) -> bytes:
    """The list as JSON bytes, encoded once per version of the list (30,000 names are about 1 MB)."""
    listed = catalog.names(model_type)
    slot = (model_type, with_none, family)
    with _memo_lock:
        hit = _list_memo.get(slot)
    if hit is not None and hit[0] is listed:
        return hit[1]
    names = catalog.names(model_type, with_none=with_none, family=family or None)
    body = json.dumps(names, ensure_ascii=False).encode("utf-8")
    with _memo_lock:
        _list_memo[slot] = (listed, body)
    return body


def _refresh_lists_later() -> None:
    # A new key or host means another account's (or host's) catalog: fetch it now, in the background.
    for model_type in catalog.DROPDOWN_TYPES:
        catalog.refresh_now(model_type, 0.0)


# --------------------------------------------------------------------------- registration

ROUTES = (
    ("GET", "/settings", get_settings, False),
    ("POST", "/settings/key", post_key, True),
    ("POST", "/settings/test", post_test, True),
    ("POST", "/settings/host", post_host, True),
    ("POST", "/settings/remove", post_remove, True),
    # Before /models/{type}: "search" is not a type.
    ("GET", "/models/search", get_search, False),
    ("GET", "/models/{type}", get_models, False),
)


def register(routes: Any) -> None:
    """Add every route to an ``aiohttp.web.RouteTableDef`` (ComfyUI's ``PromptServer.instance.routes``)."""
    for method, path, handler, changes_state in ROUTES:
        routes.route(method, PREFIX + path)(guarded(handler, changes_state=changes_state))


def make_app() -> Any:
    """A bare aiohttp application with the routes (tests and tools; ComfyUI uses :func:`register`)."""
    from aiohttp import web

    table = web.RouteTableDef()
    register(table)
    app = web.Application()
    app.add_routes(table)
    return app


def register_with_comfy() -> bool:
    """Register on the running ComfyUI server; ``False`` (and nothing else) when there is none, e.g. under pytest."""
    from .comfy_bridge import server_routes

    routes = server_routes()
    if routes is None:
        return False
    try:
        register(routes)
    except Exception as exc:  # the nodes must load even if the editor's routes cannot be added
        log.warning("PPInfra: the editor's settings and model routes could not be registered: %s", exc)
        return False
    return True
