"""Input specs read from the limits table: numeric widgets, fixed dropdowns, model dropdowns,
and the validation that lets a saved model name through.

Model lists come from :mod:`.catalog` (its in-memory lists, never the network).
ComfyUI calls ``INPUT_TYPES`` on every ``/object_info`` and again for every
queued prompt, so a model input carries at most ``INLINE_LIMIT`` names and
names the pack's route as a remote combo: the editor fetches the full list from
there (see :func:`model_input`).
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Tuple

from ..ppinfra.limits import ENDPOINT_LIMITS, LIMITS

from . import catalog
from .catalog import NONE, family_of, refresh_soon  # noqa: F401  (the nodes call these through options)

# Past this many names a model input carries only part of its list in /object_info:
# with 50,000 checkpoints the full lists made every /object_info 5 MB and 3 s. The
# editor fetches the full list from the route; the inline part only serves frontends
# without remote combos (before 2025), and is paid for on every page load and every
# queued prompt (five LoRA inputs, each with its own copy): kept short on purpose.
INLINE_LIMIT = 50
ROUTE = "/ppinfra/models/"
_inline_memo: Dict[Tuple[int, str, bool, Tuple[str, ...]], Tuple[List[str], List[str], str]] = {}
_memo_lock = threading.Lock()


def check_model_name(field: str, value: Any) -> Any:
    """``True`` or a message for ``VALIDATE_INPUTS``.

    ``None`` means the input is fed by a link (ComfyUI passes ``None`` then):
    it is checked when the node runs. A name missing from today's list is
    accepted on purpose: the server decides whether it exists. That is also
    why validation never needs the full list ``object_info`` no longer carries.
    """
    if value is None:
        return True
    if not isinstance(value, str) or not value.strip():
        return f"{field} must be a model name, got {value!r}"
    return True


# --------------------------------------------------------------------------- widgets


def _limit(field: str, endpoint: str) -> Any:
    """The limit of ``field`` in ``endpoint``'s table (img2img's, ``LIMITS``, by default)."""
    return (LIMITS if endpoint == "img2img" else ENDPOINT_LIMITS[endpoint])[field]


def _tip(field: str, tooltip: str, endpoint: str = "img2img") -> str:
    return tooltip or _limit(field, endpoint).doc


def int_input(
    field: str,
    tooltip: str = "",
    *,
    min: Optional[int] = None,
    default: Any = None,
    endpoint: str = "img2img",
    **extra: Any,
) -> Tuple[str, Dict[str, Any]]:
    """An INT widget whose range and default come from the limit of ``field``
    (``min``/``default`` override)."""
    lim = _limit(field, endpoint)
    spec: Dict[str, Any] = {
        "default": lim.default if default is None else default,
        "min": int(lim.widget_min()) if min is None else min,
        "max": int(lim.widget_max()),
        "step": 1,
        "tooltip": _tip(field, tooltip, endpoint),
    }
    spec.update(extra)
    return ("INT", spec)


def float_input(
    field: str, tooltip: str = "", *, step: float = 0.01, endpoint: str = "img2img", **extra: Any
) -> Tuple[str, Dict[str, Any]]:
    """A FLOAT widget whose range and default come from the limit of ``field``."""
    lim = _limit(field, endpoint)
    spec: Dict[str, Any] = {
        "default": float(lim.default),
        "min": float(lim.widget_min()),
        "max": float(lim.widget_max()),
        "step": step,
        "round": 0.01,
        "tooltip": _tip(field, tooltip, endpoint),
    }
    spec.update(extra)
    return ("FLOAT", spec)


def enum_input(
    field: str,
    tooltip: str = "",
    *,
    first: Tuple[str, ...] = (),
    default: Any = None,
    endpoint: str = "img2img",
) -> Tuple[List[str], Dict[str, Any]]:
    """A dropdown of the documented values of ``field`` (``first`` entries prepended, e.g. ``none``)."""
    lim = _limit(field, endpoint)
    options = [*first, *lim.options]
    return (
        options,
        {
            "default": default if default is not None else (lim.default or options[0]),
            "tooltip": _tip(field, tooltip, endpoint),
        },
    )


def bool_input(field: str, tooltip: str = "", *, endpoint: str) -> Tuple[str, Dict[str, Any]]:
    """A BOOLEAN toggle whose default comes from the limit of ``field``."""
    lim = _limit(field, endpoint)
    return ("BOOLEAN", {"default": bool(lim.default), "tooltip": _tip(field, tooltip, endpoint)})


def model_input(
    model_type: str,
    tooltip: str,
    *,
    with_none: bool = False,
    preferred: Tuple[str, ...] = (),
    inpainting: bool = False,
) -> Tuple[List[str], Dict[str, Any]]:
    """A model dropdown: a list (old frontends show it as is) plus the route the editor fetches
    the full list from.

    Up to ``INLINE_LIMIT`` names the list is complete. Past it, it holds
    ``preferred`` and the documented names that are listed, then the first names
    in order, ``INLINE_LIMIT`` in all: ``/object_info`` stays small and as fast
    with 50,000 models as with 50, and an old frontend still offers a useful
    choice. Any other name still validates and runs (``check_model_name``).
    The default is the first of ``preferred`` that is listed. ``inpainting``
    (checkpoints only): the inpainting checkpoints (:func:`catalog.inpainting_names`),
    fetched from ``/ppinfra/models/checkpoint?inpainting=1``.
    """
    listed = catalog.inpainting_names() if inpainting else catalog.names(model_type)
    # catalog.names hands out the same list object until the cache file changes (one per host)
    slot = (id(listed), model_type + ("/inpainting" if inpainting else ""), with_none, tuple(preferred))
    with _memo_lock:
        hit = _inline_memo.get(slot)
    if hit is None or hit[0] is not listed:
        inline, default = _inline(model_type, listed, with_none, preferred)
        hit = (listed, inline, default)
        with _memo_lock:
            if len(_inline_memo) > 256:  # old versions of the lists
                _inline_memo.clear()
            _inline_memo[slot] = hit
    query = "&".join(q for q, on in (("inpainting=1", inpainting), ("with_none=1", with_none)) if on)
    route = ROUTE + model_type + ("?" + query if query else "")
    return (
        list(hit[1]),
        {"default": hit[2], "tooltip": tooltip, "remote": {"route": route, "refresh_button": True}},
    )


def _inline(
    model_type: str, listed: List[str], with_none: bool, preferred: Tuple[str, ...]
) -> Tuple[List[str], str]:
    names = [n for n in listed if n != NONE]
    if len(names) > INLINE_LIMIT:
        from ..ppinfra.models import FALLBACK_MODELS

        known = set(names)
        first = [n for n in (*preferred, *(n for n, _ in FALLBACK_MODELS.get(model_type, []))) if n in known]
        keep = dict.fromkeys(first)
        for n in names:
            if len(keep) >= INLINE_LIMIT:
                break
            keep.setdefault(n)
        names = sorted(keep, key=str.lower)
    if with_none:
        names = [NONE, *names]
    if not names:
        names = [""]
    present = set(names)
    default = next((p for p in preferred if p in present), names[0])
    return names, default
