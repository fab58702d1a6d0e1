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
  array of names (the remote-combo format), from memory. ``checkpoint?inpainting=1``:
  the inpainting checkpoints (``filter.is_inpainting=true``).
* ``GET /ppinfra/price?node=&width=&height=&steps=&image_num=&scale_factor=&hires_fix=..``: the
  estimated USD per run or per input image (``ppinfra.price.estimate_price``), never a provider's figure.
* ``GET /ppinfra/models/search?type=&q=&family=&limit=&offset=``:
  ``{total, items: [{name, display_name, sd_name, tags, base_model, family, cover_url, type}], partial}``.

Errors are JSON too (``{ok: false, error}``): 400 bad input, 403 refused origin or
host, 415 not JSON, 500 the key file cannot be written (the path and what to do),
503 too many slow calls in flight, 504 the route's budget ran out.

The logic lives in :mod:`ppinfra.account` and :mod:`.catalog`, which the CLI
can reuse. Handlers only parse, check the request and run the blocking work on
the pack's own small thread pool (``ROUTE_WORKERS``), never on the event loop's
default executor: that one is ComfyUI's too (``/view``, uploads), and a few slow
PPInfra answers must not starve it. Each route's blocking work has
``ROUTE_BUDGET`` seconds, queueing included; then it answers 504 with a JSON
error. With ``ROUTE_WORKERS + ROUTE_QUEUE`` calls already in flight it answers
503 at once instead of queueing more.

ComfyUI's routes have no authentication and it checks the Origin header for
loopback hosts only: every route here refuses a cross-origin request itself,
and the state-changing ones also require ``Content-Type: application/json``
(a web page cannot send that cross-origin without a CORS preflight). Against
DNS rebinding (a page on ``evil.example`` that resolves to this machine is
same-origin with itself), the ``Host`` header must be an IP address,
``localhost``, a name ComfyUI was told to ``--listen`` on, or a name listed in
``PPINFRA_ALLOWED_HOSTS`` (comma-separated, e.g. ``comfy.mylan,my-box``).
The key is never part of any answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Set, Tuple
from urllib.parse import urlsplit

from ..ppinfra.account import CHECK_TIMEOUT, KeyFileError
from ..ppinfra.errors import PPInfraError

from . import catalog, comfy_bridge
from .account_panel import account

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

ENV_ALLOWED_HOSTS = "PPINFRA_ALLOWED_HOSTS"
# The pack's blocking work (key file, key checks, model lists) runs here, not on the loop's default
# executor, which ComfyUI shares (about 6 threads on a small machine). Threads are started on demand.
ROUTE_WORKERS = 4
ROUTE_QUEUE = 8  # calls that may wait for a free worker; past that a route answers 503 at once
# Everything a route waits for, a queue slot included: a key check (CHECK_TIMEOUT) and a little more.
ROUTE_BUDGET = CHECK_TIMEOUT + 1.5
_pool = ThreadPoolExecutor(max_workers=ROUTE_WORKERS, thread_name_prefix="ppinfra-route")
_in_flight = 0
_in_flight_lock = threading.Lock()

Handler = Callable[[Any], Awaitable[Any]]


class _BadRequest(Exception):
    pass


class _Busy(Exception):
    """Answered with 503: too many slow calls are in flight already."""


class _TooSlow(Exception):
    """Answered with 504: the route's budget ran out before its blocking work ended."""


# --------------------------------------------------------------------------- blocking work


def in_flight() -> int:
    """Blocking route calls running or queued on the pack's pool now."""
    return _in_flight


def _release(_: Future) -> None:
    global _in_flight
    with _in_flight_lock:
        _in_flight -= 1


async def blocking(fn: Callable[..., Any], *args: Any, budget: Optional[float] = None) -> Any:
    """``fn(*args)`` on the pack's pool, within ``budget`` s (``ROUTE_BUDGET``) from now, queueing included.

    Raises :class:`_Busy` when the pool and its queue are full, :class:`_TooSlow`
    when the budget runs out (a call still queued is dropped; one already running
    ends on its own deadline, still counted as in flight until it does).
    """
    global _in_flight
    with _in_flight_lock:
        if _in_flight >= ROUTE_WORKERS + ROUTE_QUEUE:
            raise _Busy(_in_flight)
        _in_flight += 1
    try:
        job = _pool.submit(fn, *args)
    except BaseException:
        _release(None)  # type: ignore[arg-type]
        raise
    job.add_done_callback(_release)  # when it ends, or is cancelled while still queued
    try:
        return await asyncio.wait_for(asyncio.wrap_future(job), ROUTE_BUDGET if budget is None else budget)
    except asyncio.TimeoutError:
        raise _TooSlow() from None


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


def _hostname(value: Optional[str]) -> str:
    """The name in a ``Host``-style value (``name:port``, ``[::1]:8188``), lower-case;
    ``""`` if unparsable."""
    try:
        return (urlsplit("//" + (value or "").strip()).hostname or "").rstrip(".")
    except ValueError:  # a bad port or bracket
        return ""


def _listen_names() -> Set[str]:
    # ComfyUI's own --listen names are the user's choice of address, as PPINFRA_ALLOWED_HOSTS is.
    return {_hostname(n) for n in comfy_bridge.listen_addresses()}


def allowed_hosts(environ: Optional[Mapping[str, str]] = None) -> Set[str]:
    """Names (not IP addresses) the routes answer to besides ``localhost``: PPINFRA_ALLOWED_HOSTS,
    --listen."""
    env = os.environ if environ is None else environ
    named = {_hostname(n) for n in (env.get(ENV_ALLOWED_HOSTS) or "").split(",")}
    return {n for n in named | _listen_names() if n}


def host_allowed(value: Optional[str], environ: Optional[Mapping[str, str]] = None) -> bool:
    """Whether a ``Host`` header names this server in a way no other site's page can (see the module doc)."""
    name = _hostname(value)
    if not name:
        return False
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True  # an address is not a name anyone else can point at us
    except ValueError:
        return name in allowed_hosts(environ)


def refused_host(headers: Any) -> Optional[str]:
    """The ``Host`` (or ``X-Forwarded-Host``) value that is not allowed, or ``None``.

    A request without ``Host`` (HTTP/1.0, a hand-written script) is no browser's.
    Behind a proxy the forwarded name must be allowed too: it is what ``Origin`` is compared with.
    """
    for name in ("Host", "X-Forwarded-Host"):
        value = headers.get(name)
        if value is not None and not host_allowed(value):
            return value
    return None


def _json(data: Any, status: int = 200) -> Any:
    from aiohttp import web

    return web.json_response(data, status=status)


def guarded(handler: Handler, *, changes_state: bool = False) -> Handler:
    """Wrap a handler with the origin check (and the JSON content type for state changes)."""

    async def run(request: Any) -> Any:
        host = refused_host(request.headers)
        if host is not None:
            return _json(
                {
                    "ok": False,
                    "error": (
                        f"Request for host {host[:100]!r} refused: the PPInfra routes answer only "
                        f"to an IP address, localhost, or a name listed in the {ENV_ALLOWED_HOSTS} "
                        "environment variable (comma-separated, "
                        f"e.g. {ENV_ALLOWED_HOSTS}=comfy.mylan,my-box). "
                        "Open the editor by address, or add this name there and restart ComfyUI. "
                        "This keeps other web sites (DNS rebinding) away from your key."
                    ),
                },
                403,
            )
        if not same_origin(request.headers):
            return _json({"error": "Cross-origin request refused: open the ComfyUI editor itself."}, 403)
        if changes_state and request.content_type != "application/json":
            return _json(
                {"ok": False, "error": "Send the request body as JSON (Content-Type: application/json)."}, 415
            )
        try:
            return await handler(request)
        except _BadRequest as exc:
            return _json({"ok": False, "error": str(exc)}, 400)
        except KeyFileError as exc:  # the key file cannot be written: the message names it and the way out
            return _json({"ok": False, "error": str(exc)}, 500)
        except PPInfraError as exc:  # bad input the client layer refused (key format, host name)
            return _json({"ok": False, "error": str(exc)}, 400)
        except _Busy as exc:
            return _json(
                {
                    "ok": False,
                    "error": f"PPInfra is busy with {exc.args[0]} slow calls; try again in a few seconds.",
                },
                503,
            )
        except _TooSlow:
            return _json(
                {
                    "ok": False,
                    "error": f"PPInfra did not answer within {ROUTE_BUDGET:g} s; try again, "
                    "or check your network and the host in Settings > PPInfra.",
                },
                504,
            )
        except Exception as exc:  # an answer the panel can show, not a bare 500 with a traceback
            log.exception("PPInfra route %s failed", request.path)
            return _json(
                {
                    "ok": False,
                    "error": f"PPInfra: {request.path} failed ({exc.__class__.__name__}: "
                    f"{exc}); see the ComfyUI log.",
                },
                500,
            )

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
    # A refresh is served by any balance answer newer than this request: ten at once cost one provider call.
    asked_at = time.monotonic()
    return _json(await blocking(lambda: account().status(refresh=refresh, asked_at=asked_at)))


async def post_key(request: Any) -> Any:
    data = await _body(request)

    def run() -> Dict[str, Any]:
        status = account().set_key(data.get("api_key"), data.get("host"))
        _refresh_lists_later()
        return status

    try:
        status = await blocking(run)
    except KeyFileError:
        raise
    except PPInfraError as exc:
        return _json({"ok": False, "error": str(exc)}, 400)
    return _json({"ok": True, **status})


async def post_test(request: Any) -> Any:
    data = await _body(request)
    return _json(await blocking(account().test, data.get("api_key"), data.get("host")))


async def post_host(request: Any) -> Any:
    data = await _body(request)

    def run() -> Dict[str, Any]:
        status = account().set_host(data.get("host"))
        _refresh_lists_later()
        return status

    return _json(await blocking(run))


async def post_remove(request: Any) -> Any:
    await _body(request)
    return _json(await blocking(lambda: account().remove_key()))


async def get_models(request: Any) -> Any:
    from aiohttp import web

    model_type = _model_type(request.match_info.get("type", ""))
    with_none = _flag(request, "with_none")
    family = _family(request)
    refresh = _flag(request, "refresh")
    # ?inpainting=1 (checkpoints): the Inpaint node's list, fetched with filter.is_inpainting=true.
    inpainting = model_type == "checkpoint" and _flag(request, "inpainting")
    fetched = catalog.INPAINTING if inpainting else model_type

    def run() -> bytes:
        if refresh:
            catalog.refresh_now(fetched, ROUTE_BUDGET - 1.0)
        else:
            catalog.refresh_now(fetched, PLAIN_REFRESH_WAIT, max_age=catalog.ROUTE_RECHECK_SECONDS)
        if inpainting:
            return json.dumps(catalog.inpainting_names(), ensure_ascii=False).encode("utf-8")
        return _names_json(model_type, with_none, family or "")

    return web.Response(body=await blocking(run), content_type="application/json")


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
        if (
            not catalog.has_list(model_type)
            and catalog.key_configured()
            and not catalog.refresh_now(model_type, FIRST_SEARCH_WAIT)
        ):
            try:
                page = catalog.search_provider(model_type, query, family, limit) if offset == 0 else []
                return {"total": len(page), "items": [_item(m, model_type) for m in page], "partial": True}
            except PPInfraError as exc:
                log.info("model search on PPInfra failed: %s", exc)
        total, page = catalog.search(model_type, query, family=family, limit=limit, offset=offset)
        return {"total": total, "items": [_item(m, model_type) for m in page], "partial": False}

    return _json(await blocking(run))


def _item(info: Any, model_type: str) -> Dict[str, Any]:
    return {
        "name": info.name,
        "display_name": info.display_name or info.name,
        "sd_name": info.sd_name or info.name,
        "tags": list(info.tags),
        "base_model": info.base_model,
        "family": info.family,
        "cover_url": info.cover_url or None,
        "type": model_type,
    }


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


# The nodes that show a price estimate, and the endpoint each one calls.
def priced_nodes() -> Dict[str, str]:
    """Node id -> endpoint for every node that calls the API (each declares its ``ENDPOINT``)."""
    from . import NODE_CLASS_MAPPINGS

    return {name: cls.ENDPOINT for name, cls in NODE_CLASS_MAPPINGS.items() if getattr(cls, "ENDPOINT", None)}


PRICE_INPUTS = (
    "width",
    "height",
    "steps",
    "image_num",
    "scale_factor",
    "hires_fix",
    "hires_target_width",
    "hires_target_height",
)


async def get_price(request: Any) -> Any:
    """``GET /ppinfra/price?node=PPInfraTxt2Img&width=..`` -> an estimate (``ppinfra.price``),
    labelled as one."""
    from ..ppinfra.price import estimate_price

    node = request.query.get("node", "")
    priced = priced_nodes()
    endpoint = priced.get(node)
    if endpoint is None:
        raise _BadRequest(f"node must be one of {', '.join(priced)}, got {node[:60]!r}.")
    values = {k: request.query[k] for k in PRICE_INPUTS if k in request.query}
    return _json({"ok": True, "estimate": True, "node": node, **estimate_price(endpoint, values).to_dict()})


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
    ("GET", "/price", get_price, False),
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
    """Register on the running ComfyUI server; ``False`` (and nothing else) when there is none,
    e.g. under pytest."""
    from .comfy_bridge import server_routes

    routes = server_routes()
    if routes is None:
        return False
    try:
        register(routes)
    except Exception as exc:  # the nodes must load even if the editor's routes cannot be added
        log.warning("PPInfra: the editor's settings and model routes could not be registered: %s", exc)
        return False
    try:
        # At start-up: a key file that cannot be read is reported in the log now, not at the first run.
        account()
    except Exception as exc:
        log.debug("PPInfra: key file not looked at yet: %s", exc)
    return True
