"""Shared fixtures: the repo root on sys.path, the pack loaded the way ComfyUI loads it,
and a fresh in-process sandbox per test."""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))
for _p in (ROOT, TESTS):
    if _p not in sys.path:
        sys.path.insert(0, _p)

PACK_NAME = "ppinfra_pack"
SANDBOX_KEY = "sk-sandbox-test-key-0123456789"


def load_pack():
    """Import the repo root as a package, as ComfyUI does with a custom node folder."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, os.path.join(ROOT, "__init__.py"), submodule_search_locations=[ROOT])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def api_key():
    return SANDBOX_KEY


SANDBOX_DEFAULTS = {"api_keys": [SANDBOX_KEY], "queue_seconds": 0.05, "task_seconds": 0.3, "strict": True}


def pytest_configure(config):
    config.addinivalue_line("markers", "sandbox(**kwargs): SandboxServer arguments for the `sandbox` fixture, "
                                       "e.g. @pytest.mark.sandbox(strict=False)")


@pytest.fixture
def make_sandbox():
    """A factory: ``make_sandbox(**kwargs)`` starts a sandbox (fixture defaults, strict, updated by kwargs)."""
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
