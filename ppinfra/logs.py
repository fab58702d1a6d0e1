"""The pack's one exit for log records and stderr text, where known secrets are scrubbed.

Every record of the ``ppinfra`` logger and of its children (``getLogger(__name__)``
anywhere in the package, under whatever name the pack was imported) reaches the
handler installed here first: those loggers do not propagate, and the handler
scrubs the record in place, then forwards it to the root logger's handlers
(ComfyUI's console, pytest's caplog). A logger *filter* alone would not do:
logging runs a logger's filters only for records logged on that very logger,
not for those propagated up from its children (the filter here covers records
logged on the pack's logger itself, before any other handler on it).

It fails closed: a record whose message cannot be formatted (``log.info("%d",
key)``, a wrong argument count) is replaced by a fixed message naming its
logger, because logging's own fallback prints the raw arguments.
"""

from __future__ import annotations

import io
import logging
import sys
import traceback
from typing import Any

from .redaction import redact

LOGGER_NAME = "ppinfra"


def _unformattable(record: logging.LogRecord, exc: BaseException) -> str:
    return (
        f"[a log record from {record.name} at {record.pathname}:{record.lineno} could not be formatted "
        f"({exc.__class__.__name__}); its text is withheld because it may hold a secret]"
    )


def redacted_copy(record: logging.LogRecord) -> logging.LogRecord:
    """Scrub ``record`` in place and return it: message, traceback and stack formatted and redacted.

    In place, because another handler may sit on the same logger (pytest 9.2
    attaches its capture handler to every non-propagating logger; a user's
    logging config may too) and must only ever see the scrubbed record. ``args``
    become ``None`` and ``exc_info`` is dropped in favour of a scrubbed
    ``exc_text``, so no formatter downstream can format the raw values again.
    """
    try:
        message = redact(record.getMessage())
    except Exception as exc:  # noqa: BLE001 - any failure to format withholds the text
        message = _unformattable(record, exc)
    exc_text = record.exc_text
    if record.exc_info and record.exc_info[0] is not None and not exc_text:
        try:
            exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        except Exception as exc:  # noqa: BLE001 - same rule for a traceback that cannot be rendered
            exc_text = f"[the traceback could not be formatted ({exc.__class__.__name__}); withheld]"
    record.msg, record.args = message, None
    record.exc_info, record.exc_text = None, redact(exc_text) if exc_text else None
    record.stack_info = redact(record.stack_info) if record.stack_info else None
    return record


class _ScrubFilter(logging.Filter):
    """Scrubs records logged on the pack's logger itself before any of its handlers runs."""

    ppinfra_redacting = True

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            redacted_copy(record)
        except Exception:  # noqa: BLE001 - fail closed: a record that cannot be scrubbed is dropped
            return False
        return True


class RedactingHandler(logging.Handler):
    """The first handler of the pack's logger: scrubs each record (also those of child loggers), then
    hands it to the root logger's handlers, as propagation would, except those that sit on this logger
    too (they get it from logging itself, already scrubbed)."""

    #: Found by this marker rather than by class: the pack may be imported twice under two
    #: names (ComfyUI's module name and plain ``ppinfra``), which makes two classes.
    ppinfra_redacting = True

    def __init__(self, owner: logging.Logger) -> None:
        super().__init__()
        self.owner = owner

    def emit(self, record: logging.LogRecord) -> None:
        try:
            clean = redacted_copy(record)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - whatever went wrong, the raw record must not be shown
            record.msg, record.args, record.exc_info, record.exc_text, record.stack_info = (
                f"[a log record from {record.name} could not be scrubbed; withheld]",
                None,
                None,
                None,
                None,
            )
            self.handleError(record)
            return
        root = logging.getLogger()
        here = set(self.owner.handlers)
        handlers = [h for h in root.handlers if clean.levelno >= h.level and h not in here]
        if not root.handlers and logging.lastResort is not None and clean.levelno >= logging.lastResort.level:
            handlers = [logging.lastResort]  # what logging does when nobody configured a handler
        for handler in handlers:
            handler.handle(clean)

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's own report prints the record's message and raw arguments to stderr.
        if logging.raiseExceptions and sys.stderr:
            sys.stderr.write(f"[ppinfra: a log record from {record.name} could not be written; withheld]\n")


def install(package: str = LOGGER_NAME) -> None:
    """Route every record of the pack's loggers through one :class:`RedactingHandler`. Safe to call again.

    ``package`` is this package's import name. The modules log on ``ppinfra``;
    when ComfyUI imports the pack under its folder's name (``ComfyUI-PPInfra.ppinfra``),
    ``getLogger(__name__)`` gives loggers under that folder's name, so its logger
    is routed too. The handler is kept first, so a handler added to the same
    logger earlier still receives scrubbed records only.
    """
    names = {LOGGER_NAME, package.rpartition(".")[0] or package}
    for name in names:
        log = logging.getLogger(name)
        mine = [h for h in log.handlers if getattr(h, "ppinfra_redacting", False)]
        handler = mine[0] if mine else RedactingHandler(log)
        log.handlers = [handler] + [h for h in log.handlers if h is not handler]
        if not any(getattr(f, "ppinfra_redacting", False) for f in log.filters):
            log.addFilter(_ScrubFilter())
        log.propagate = False


def eprint(*parts: Any, sep: str = " ", end: str = "\n", flush: bool = True) -> None:
    """``print(..., file=sys.stderr)`` with known secrets scrubbed; the pack writes to stderr only here.

    A part whose ``str()`` raises is withheld, like an unformattable log record.
    """
    out = io.StringIO()
    for i, part in enumerate(parts):
        if i:
            out.write(sep)
        try:
            out.write(str(part))
        except Exception as exc:  # noqa: BLE001
            out.write(f"[text withheld: it could not be formatted ({exc.__class__.__name__})]")
    out.write(end)
    sys.stderr.write(redact(out.getvalue()))
    if flush:
        sys.stderr.flush()
