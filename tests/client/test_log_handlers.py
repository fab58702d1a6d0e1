"""Redaction holds when someone else attaches a handler to the pack's logger itself.

pytest 9.2 does this with every non-propagating logger, and so may a user's
logging config: such a handler must only ever see scrubbed records, for records
of the pack's logger and of its children alike, and nothing is written twice.
"""

from __future__ import annotations

import logging

import pytest

from ppinfra import logs
from ppinfra.redaction import remember_secret

KEY = "sk-attached-handler-key-31415926"


class Keep(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.mark.parametrize("name", ["ppinfra", "ppinfra.client", "ppinfra.sandbox.server"])
def test_a_handler_on_the_pack_logger_sees_only_scrubbed_records(name):
    remember_secret(KEY)
    pack = logging.getLogger("ppinfra")
    early, late, root_keep, both = Keep(), Keep(), Keep(), Keep()
    pack.addHandler(early)  # before the pack re-installs its handler, as at ComfyUI start
    logs.install("ppinfra")
    pack.addHandler(late)
    logging.getLogger().addHandler(root_keep)
    pack.addHandler(both)  # as pytest 9.2's capture handler: on the root and on the pack's logger
    logging.getLogger().addHandler(both)
    try:
        log = logging.getLogger(name)
        log.warning("the key is %s", KEY)
        log.warning("a bad format %d", KEY)
        try:
            raise RuntimeError(f"boom {KEY}")
        except RuntimeError:
            log.exception("failed with %s", KEY)
    finally:
        for h in (early, late, both):
            pack.removeHandler(h)
        for h in (root_keep, both):
            logging.getLogger().removeHandler(h)
    for keep in (early, late, root_keep, both):
        text = "\n".join(keep.lines)
        assert len(keep.lines) == 3, keep.lines
        assert KEY not in text and "***" in text and "could not be formatted" in text
    assert pack.handlers[0].__class__.__name__ == "RedactingHandler"
