"""The account as this ComfyUI sees it: the key file in ComfyUI's protected place, and the balance
shown under a node after a run.

The logic (storage, key check, balance) is :mod:`ppinfra.account`'s; this module
only decides where the key file lives (:func:`comfy_bridge.key_store_paths`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, Optional, Tuple

from ..ppinfra.account import Account, KeyStore
from ..ppinfra.config import default_config_path

from . import comfy_bridge

log = logging.getLogger("ppinfra")

# A run's status line waits this long at most for the balance (it is fetched after the run,
# in the background).
BALANCE_AFTER_RUN_TIMEOUT = 5.0

_accounts: Dict[Tuple[str, Tuple[str, ...]], Account] = {}
_lock = threading.Lock()


def account() -> Account:
    """The :class:`Account` of the current key file (one per location, so its balance cache holds).

    The first time a location is used, a key file that cannot be read is
    reported in the log (once): the panel can still replace it.
    """
    path, legacy = comfy_bridge.key_store_paths()
    slot = (path or default_config_path(), tuple(legacy))
    with _lock:
        found = _accounts.get(slot)
        fresh = found is None
        if fresh:
            found = _accounts[slot] = Account(KeyStore(*slot))
    if fresh:
        problem = found.store.problem()
        if problem:
            log.warning("PPInfra: %s", problem)
    return found


def show_balance_after_run(
    settings: Any, text: str, send: Callable[[str], None]
) -> Optional[threading.Thread]:
    """After a successful run: fetch the balance in the background and ``send(text + balance)``.

    Never fails the node and never delays it: the fetch has a short deadline,
    and any error leaves the status line as it was. Outside ComfyUI (no status
    line to show it on) nothing is fetched.
    """
    if settings is None or not comfy_bridge.has_status_line():
        return None

    def run() -> None:
        try:
            from ..ppinfra.account import check_key

            balance = check_key(str(settings.api_key), settings.base_url, BALANCE_AFTER_RUN_TIMEOUT)
            account().remember_balance(str(settings.api_key), settings.base_url, balance)
            send(f"{text} · balance {balance.short()}")
        except Exception as exc:  # the images are there; a missing balance is no error
            log.debug("balance after the run not shown: %s", exc.__class__.__name__)

    thread = threading.Thread(target=run, name="ppinfra-balance", daemon=True)
    thread.start()
    return thread
