"""The one place that touches ComfyUI itself: interrupt flag, progress bar, status text, user directories.

Every ComfyUI module is imported lazily, inside the function that needs it,
and every function has a fallback for running outside ComfyUI (tests, a plain
Python shell). Nothing here is cached at import, so a ComfyUI that appears
later (or a test's stand-in) is picked up.

Two ComfyUI gotchas decide the shape of this module:

* ``throw_exception_if_processing_interrupted()`` *clears* the interrupt flag:
  with several concurrent waits all but one would miss a cancel. We only ever
  read the flag (``processing_interrupted()``) and raise ourselves.
* ``comfy.utils.ProgressBar.update_absolute`` runs ComfyUI's progress hook,
  which calls that clearing function. :class:`Progress` therefore looks at the
  flag itself first and skips the hook once a cancel is pending.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Tuple

from ..ppinfra.redaction import redact

log = logging.getLogger("ppinfra")

USER_SUBDIR = "ppinfra"
CONFIG_NAME = "config.json"


_cancel_warned = False


def _warn_cancel_broken(why: str) -> None:
    """Say once, loudly, that cancel cannot work: silently never cancelling would cost the user money."""
    global _cancel_warned
    if not _cancel_warned:
        _cancel_warned = True
        log.warning(
            "PPInfra cannot read ComfyUI's cancel flag (%s): the Cancel button will not stop a PPInfra "
            "wait until the deadline. Please report this with your ComfyUI version.",
            why,
        )


def _model_management() -> Any:
    try:
        import comfy.model_management as mm  # type: ignore[import-not-found]
    except ModuleNotFoundError as exc:
        if exc.name in ("comfy", "comfy.model_management"):
            return None  # not inside ComfyUI: nothing to cancel from
        _warn_cancel_broken(f"importing comfy.model_management failed: {exc}")
        return None
    except Exception as exc:
        _warn_cancel_broken(f"importing comfy.model_management failed: {exc.__class__.__name__}: {exc}")
        return None
    return mm


def processing_interrupted() -> bool:
    """True once ComfyUI's cancel (``/interrupt``) has been pressed. Thread-safe; never clears the flag."""
    mm = _model_management()
    if mm is None:
        return False
    try:
        return bool(mm.processing_interrupted())
    except Exception as exc:
        _warn_cancel_broken(f"processing_interrupted() raised {exc.__class__.__name__}: {exc}")
        return False


def interrupt_exception(message: str = "Interrupted while waiting for PPInfra.") -> BaseException:
    """The exception ComfyUI reports as ``execution_interrupted`` (a plain cancel error outside ComfyUI)."""
    mm = _model_management()
    exc_type = getattr(mm, "InterruptProcessingException", None) if mm is not None else None
    if exc_type is not None:
        return exc_type()
    from ..ppinfra.errors import CancelledError

    return CancelledError(message)


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is ComfyUI's interrupt exception."""
    mm = _model_management()
    exc_type = getattr(mm, "InterruptProcessingException", None) if mm is not None else None
    return exc_type is not None and isinstance(exc, exc_type)


class NodeProgressBar:
    """ComfyUI's progress bar for one node, or a no-op outside ComfyUI."""

    def __init__(self, total: float, node_id: Optional[str] = None) -> None:
        self.total = total
        self._bar = None
        try:
            import comfy.utils  # type: ignore[import-not-found]

            self._bar = comfy.utils.ProgressBar(total, node_id=node_id)
        except TypeError:  # older ComfyUI without node_id
            try:
                import comfy.utils  # type: ignore[import-not-found]

                self._bar = comfy.utils.ProgressBar(total)
            except Exception:
                self._bar = None
        except Exception:
            self._bar = None
        self.value: float = 0

    def update(self, value: float) -> None:
        """Report ``value`` of ``total``. Skipped when a cancel is pending (the hook would clear the flag)."""
        self.value = value
        if self._bar is None or processing_interrupted():
            return
        self._bar.update_absolute(value, self.total)


def send_status(text: str, node_id: Optional[str]) -> None:
    """Show ``text`` under the node in the editor (ComfyUI's progress text), if the server supports it."""
    if node_id is None:
        return
    try:
        from server import PromptServer  # type: ignore[import-not-found]
    except Exception:
        return
    instance = getattr(PromptServer, "instance", None)
    send = getattr(instance, "send_progress_text", None)
    if send is None:
        return
    try:
        send(redact(str(text)), node_id)  # the editor shows it and may keep it: no key, whatever the text
    except Exception as exc:  # a status line must never fail the node
        log.debug("could not send status text: %s", exc)


def has_status_line() -> bool:
    """Whether the running server can show text under a node (ComfyUI 0.3.34+)."""
    try:
        from server import PromptServer  # type: ignore[import-not-found]
    except Exception:
        return False
    return callable(getattr(getattr(PromptServer, "instance", None), "send_progress_text", None))


def server_routes() -> Any:
    """The running ComfyUI server's route table (``PromptServer.instance.routes``), or ``None``."""
    try:
        from server import PromptServer  # type: ignore[import-not-found]
    except Exception:
        return None
    return getattr(getattr(PromptServer, "instance", None), "routes", None)


def user_dir() -> Optional[str]:
    """ComfyUI's user directory, or ``None`` outside ComfyUI."""
    try:
        import folder_paths  # type: ignore[import-not-found]

        return folder_paths.get_user_directory()
    except Exception:
        return None


def system_user_dir(name: str = USER_SUBDIR) -> Optional[str]:
    """ComfyUI's system user directory for ``name`` (``user/__ppinfra``), or ``None`` before ComfyUI 0.3.76.

    ComfyUI's ``/userdata`` API refuses to serve these folders: the place for a key.
    """
    try:
        import folder_paths  # type: ignore[import-not-found]

        lookup = getattr(folder_paths, "get_system_user_directory", None)
        return lookup(name) if lookup is not None else None
    except Exception:
        return None


def key_store_paths() -> Tuple[Optional[str], Tuple[str, ...]]:
    """``(where the key file is written, older places still read)``.

    ``PPINFRA_CONFIG`` wins; else the system user directory when ComfyUI has one
    (``<user dir>/ppinfra/config.json`` stays readable for a key written there by
    hand before); else ``<user dir>/ppinfra/config.json``. ``(None, ())``
    outside ComfyUI without ``PPINFRA_CONFIG``: the client's own default applies.
    """
    explicit = os.environ.get("PPINFRA_CONFIG")
    if explicit:
        return explicit, ()
    base = user_dir()
    legacy = os.path.join(base, USER_SUBDIR, CONFIG_NAME) if base else None
    system = system_user_dir()
    if system:
        return os.path.join(system, CONFIG_NAME), (legacy,) if legacy else ()
    return legacy, ()


def user_config_path() -> Optional[str]:
    """The key file the nodes read: the one :func:`key_store_paths` writes, else an older one that exists."""
    path, legacy = key_store_paths()
    if path is None:
        return None
    from ..ppinfra.account import KeyStore

    return KeyStore(path, legacy).read_path()


def listen_addresses() -> Tuple[str, ...]:
    """The names and addresses ComfyUI was started with ``--listen`` on (empty outside ComfyUI).

    Read from ComfyUI's already-parsed arguments; never imported from here, so
    a plain import of the pack (tests, the CLI) parses no command line.
    """
    import sys

    args = getattr(sys.modules.get("comfy.cli_args"), "args", None)
    listen = getattr(args, "listen", None)
    return tuple(n.strip() for n in listen.split(",") if n.strip()) if isinstance(listen, str) else ()
