"""Key redaction fails closed (issue 11): every record of the pack's loggers and their
children, and everything the pack writes to stderr, leaves with known keys scrubbed;
a record that cannot be formatted is withheld, not printed raw.

The console here is a plain StreamHandler on the root logger, as ComfyUI installs
one; caplog's handler sits on the root logger too. Both must see the record
(so the test proves something) and neither may see the key.
"""

from __future__ import annotations

import ast
import io
import logging
import os
import sys
import types

import pytest

from helpers import REDACTION_KEY as KEY, ROOT, load_pack


def seen(caplog, console) -> str:
    return "\n".join([console.getvalue(), caplog.text] + [r.getMessage() for r in caplog.records])


# Loggers the pack's code may use: the literal name, a child of it (getLogger(__name__) when the
# package is imported as ``ppinfra``), and children of the name ComfyUI imports the pack under.
CHILD_LOGGERS = (
    "ppinfra",
    "ppinfra.client",
    "ppinfra.sandbox.server",
    "{pack}.ppinfra.transport",
    "{pack}.nodes.runner",
)


@pytest.mark.parametrize("name", CHILD_LOGGERS)
def test_key_in_args_or_message_is_scrubbed_on_the_console_and_in_caplog(pack_logs, console, caplog, name):
    log = logging.getLogger(name.format(pack=load_pack().__name__))
    log.warning("the key is %s", KEY)
    log.info(f"an f-string with the key {KEY} inside")
    log.debug("a dict arg %(k)s", {"k": KEY})
    text = seen(caplog, console)
    assert KEY not in text
    assert text.count("the key is ***") == 3 and text.count("an f-string with the key *** inside") == 3
    assert text.count("a dict arg ***") == 3


@pytest.mark.parametrize(
    "bad", [("%d", (KEY,)), ("%s and %s", (KEY,)), ("no placeholder", (KEY,)), ("%(missing)s", ({"k": KEY},))]
)
def test_a_record_that_cannot_be_formatted_is_withheld(pack_logs, console, caplog, capfd, bad):
    msg, args = bad
    logging.getLogger("ppinfra.models").error(msg, *args)
    out, err = capfd.readouterr()  # logging's own error report ("--- Logging error ---") goes to stderr
    text = seen(caplog, console) + out + err
    assert KEY not in text
    assert "--- Logging error ---" not in err
    assert (
        text.count("a log record from ppinfra.models") == 3 and "could not be formatted" in console.getvalue()
    )


def test_a_traceback_and_a_stack_in_a_record_are_scrubbed(pack_logs, console, caplog):
    log = logging.getLogger("ppinfra.transport")
    try:
        raise RuntimeError(f"server echoed {KEY}")
    except RuntimeError:
        log.exception("request failed")
    log.warning("where %s", KEY, stack_info=True)
    text = seen(caplog, console)
    assert KEY not in text
    assert "RuntimeError: server echoed ***" in console.getvalue() and "Stack (most recent call last)" in text


def test_with_no_handler_configured_the_last_resort_gets_the_scrubbed_copy(pack_logs, capfd, caplog):
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()  # a plain `python -c`: nobody called basicConfig, logging falls back to stderr
    try:
        logging.getLogger("ppinfra.client").warning("last resort %s", KEY)
        logging.getLogger("ppinfra.client").warning("%d", KEY)
    finally:
        root.handlers[:] = saved
    err = capfd.readouterr().err
    assert "last resort ***" in err and "could not be formatted" in err and KEY not in err


def test_a_failure_inside_the_handler_reports_without_the_record(
    pack_logs, console, caplog, capfd, monkeypatch
):
    log = logging.getLogger("ppinfra.client")
    (handler,) = [h for h in logging.getLogger("ppinfra").handlers if getattr(h, "ppinfra_redacting", False)]

    def broken(record):
        raise RuntimeError("the scrubber itself failed")

    monkeypatch.setattr(sys.modules[type(handler).__module__], "redacted_copy", broken)
    log.warning("the key is %s", KEY)
    monkeypatch.undo()
    err = capfd.readouterr().err
    assert "a log record from ppinfra.client could not be written" in err
    assert KEY not in err + seen(caplog, console)


def test_records_still_honour_each_root_handlers_level(pack_logs, console, caplog):
    quiet = io.StringIO()
    handler = logging.StreamHandler(quiet)
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        logging.getLogger("ppinfra.x").info("chatter")
        logging.getLogger("ppinfra.x").warning("worth saying")
    finally:
        logging.getLogger().removeHandler(handler)
    assert quiet.getvalue() == "worth saying\n" and "chatter" in console.getvalue()


def test_installing_twice_keeps_one_handler_and_no_propagation(pack_logs):
    import ppinfra.logs as plain_logs  # the second copy of the package in this process

    pack_logs.install(pack_logs.__name__.rpartition(".")[0])
    plain_logs.install("ppinfra")
    for name in ("ppinfra", load_pack().__name__):
        log = logging.getLogger(name)
        assert not log.propagate
        assert len([h for h in log.handlers if getattr(h, "ppinfra_redacting", False)]) == 1


def test_a_key_remembered_by_one_copy_of_the_package_is_scrubbed_by_the_other(pack_logs):
    import ppinfra.redaction as plain_secrets

    assert plain_secrets.redact(f"x {KEY} y") == "x *** y"


def test_a_longer_key_containing_a_shorter_one_is_scrubbed_whole(pack_logs):
    import ppinfra.redaction as plain_secrets

    plain_secrets.remember_secret(KEY + "-extended-tail")
    assert plain_secrets.redact(f"[{KEY}-extended-tail]") == "[***]"


def test_eprint_scrubs_the_key_and_withholds_what_cannot_be_formatted(pack_logs, capfd):
    class Unprintable:
        def __str__(self):
            raise ValueError(KEY)

    pack_logs.eprint("submitting with", KEY, Unprintable())
    err = capfd.readouterr().err
    assert err.startswith("submitting with *** [text withheld") and KEY not in err


# Asking about the stream is no write: a progress line may check whether stderr is a terminal.
STDERR_QUERIES = ("isatty", "encoding", "fileno")


def test_the_status_line_sent_to_the_editor_is_scrubbed(pack_logs, monkeypatch):
    sent = []
    instance = type("Instance", (), {"send_progress_text": lambda self, text, node_id: sent.append(text)})()
    server = types.ModuleType("server")
    server.PromptServer = type("PromptServer", (), {"instance": instance})
    monkeypatch.setitem(sys.modules, "server", server)
    bridge = __import__(f"{load_pack().__name__}.nodes.comfy_bridge", fromlist=["send_status"])
    bridge.send_status(f"retrying after {KEY} was echoed", "7")
    assert sent == ["retrying after *** was echoed"]


def _stderr_writes(path: str):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    queried = {
        id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in STDERR_QUERIES
    }
    queried |= {
        id(n.args[0])
        for n in ast.walk(tree)  # getattr(sys.stderr, "isatty", ...)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and n.func.id == "getattr"
        and len(n.args) > 1
        and isinstance(n.args[1], ast.Constant)
        and n.args[1].value in STDERR_QUERIES
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("stderr", "__stderr__")
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
            and id(node) not in queried
        ):
            yield node.lineno, "sys.stderr"
        if isinstance(node, ast.Attribute) and node.attr in ("print_exc", "print_exception", "print_stack"):
            yield node.lineno, f"traceback.{node.attr}"


def test_the_pack_writes_to_stderr_only_through_the_redacting_helper():
    # The sandbox is a development server with its own keys, not part of what runs in ComfyUI.
    found = []
    for top in ("ppinfra", "nodes"):
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d not in ("sandbox", "__pycache__")]
            for name in files:
                path = os.path.join(folder, name)
                if name.endswith(".py") and path != os.path.join(ROOT, "ppinfra", "logs.py"):
                    found += [
                        f"{os.path.relpath(path, ROOT)}:{line}: {what}" for line, what in _stderr_writes(path)
                    ]
    assert not found, "write to stderr through ppinfra.logs.eprint instead:\n" + "\n".join(found)
