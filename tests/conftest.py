"""Shared fixtures: the repo root on sys.path, the pack loaded the way ComfyUI loads it,
a fresh in-process sandbox per test, and the nodes run against it (``env``, ``comfy``).

Fixtures live here and in ``tests/<layer>/conftest.py`` only; plain helpers are in
``tests/helpers.py`` and the node driver in ``tools/node_driver.py``.
"""

from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))
for _p in (ROOT, TESTS):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from helpers import NODE_DEADLINE, SANDBOX_KEY, load_pack  # noqa: E402 - after the path is set


@pytest.fixture
def api_key():
    return SANDBOX_KEY


SANDBOX_DEFAULTS = {"api_keys": [SANDBOX_KEY], "queue_seconds": 0.05, "task_seconds": 0.3, "strict": True}


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "sandbox(**kwargs): SandboxServer arguments for the `sandbox` fixture, "
        "e.g. @pytest.mark.sandbox(strict=False)",
    )


@pytest.fixture
def make_sandbox():
    """A factory: ``make_sandbox(**kwargs)`` starts a sandbox (fixture defaults, strict,
    updated by kwargs)."""
    from ppinfra.sandbox import SandboxServer

    started = []

    def make(**kwargs):
        srv = SandboxServer(**{**SANDBOX_DEFAULTS, **kwargs}).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def sandbox(request, make_sandbox):
    """A started sandbox (API and image host on separate loopback ports), stopped after the test.

    Strict by default: our client must send only documented fields, exactly as set.
    ``@pytest.mark.sandbox(strict=False, ...)`` passes other SandboxServer arguments.
    """
    marker = request.node.get_closest_marker("sandbox")
    return make_sandbox(**(marker.kwargs if marker else {}))


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """No key or base URL leaks in from the developer's environment; caches go to tmp."""
    for name in ("PPINFRA_API_KEY", "PPINFRA_BASE_URL", "PPINFRA_CONFIG", "PPINFRA_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PPINFRA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PPINFRA_CONFIG", str(tmp_path / "config.json"))
    return tmp_path


# --------------------------------------------------------------------------- the nodes against the sandbox


@pytest.fixture
def env(sandbox, api_key, isolated_env, monkeypatch):
    """The key and host as a user sets them (environment), a fresh model cache, the pack loaded."""
    from tools.node_driver import write_fresh_model_cache

    monkeypatch.setenv("PPINFRA_API_KEY", api_key)
    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    write_fresh_model_cache(str(isolated_env / "cache"), sandbox.base_url)
    load_pack()
    return sandbox


@pytest.fixture
def node_client(env, monkeypatch):
    """Give the node's client short backoffs and a short deadline (the node reads no such setting).

    Returns a function to change them per test.
    """
    from tools.node_driver import pack_module

    generation_mod = pack_module("nodes.generation")
    client_mod = pack_module("ppinfra.client")
    config_mod = pack_module("ppinfra.config")
    bridge = pack_module("nodes.comfy_bridge")

    def use(**overrides):
        settings = dict(
            deadline=NODE_DEADLINE,
            backoff_base=0.05,
            backoff_max=0.2,
            max_retries=3,
            rate_limit_retries=3,
            rate_limit_backoff=0.05,
            rate_limit_backoff_max=0.2,
        )
        settings.update(overrides)

        def make_client():
            return client_mod.PPInfraClient(
                settings=config_mod.load_settings(config_path=bridge.user_config_path(), **settings)
            )

        monkeypatch.setattr(generation_mod, "make_client", make_client)

    use()
    return use


@pytest.fixture
def errors(env):
    """The pack's error module as the nodes raise from it (not the plain ``ppinfra.errors``)."""
    from tools.node_driver import pack_module

    return pack_module("ppinfra.errors")


@pytest.fixture
def no_background_refresh(monkeypatch):
    """Dropdown builds would start model-list refreshes against the sandbox; only the refresh tests want one.

    A file opts in with ``pytestmark = pytest.mark.usefixtures("no_background_refresh")``.
    """
    from tools.node_driver import pack_module

    monkeypatch.setattr(pack_module("nodes.widgets"), "refresh_soon", lambda: None)


@pytest.fixture
def comfy(monkeypatch, tmp_path):
    """ComfyUI's interrupt flag, progress bar, status text and user folder as stand-ins (``FakeComfy``)."""
    from tools.node_driver import FakeComfy

    fake = FakeComfy(str(tmp_path / "user"))
    for name, module in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return fake


@pytest.fixture
def client(sandbox, api_key, isolated_env):
    """A client on the sandbox with short backoffs and a 20 s deadline, closed after the test."""
    from ppinfra.client import PPInfraClient

    c = PPInfraClient(
        api_key=api_key,
        base_url=sandbox.base_url,
        deadline=20.0,
        backoff_base=0.05,
        backoff_max=0.2,
        max_retries=3,
        rate_limit_retries=3,
        rate_limit_backoff=0.05,
        rate_limit_backoff_max=0.2,
    )
    yield c
    c.close()
