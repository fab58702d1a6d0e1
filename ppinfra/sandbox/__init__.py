"""A local stand-in for the PPInfra (Novita AI) img2img API, for tests, benchmarks and offline trials.

Honest about what it is: the results are SYNTHETIC images (the input image
resized to the requested size and colour-graded with a seed-dependent tint and
stripe pattern), not diffusion. Everything else follows the provider's
contract (``docs/api.md``, our summary of the provider's pages): the same endpoints,
field checks read from :mod:`ppinfra.limits`, error bodies and reasons, task
lifecycle with realistic ``eta``, cursor-paged model list shaped like the
docs' sample, an account endpoint, and result images on a second host behind
pre-signed, expiring URLs.

Two modes. By default it is lenient like the real service (unknown fields
ignored, ``null`` = not set, numbers as strings, ``c_<offset>`` cursors,
``True``/``1`` booleans, ``Authorization`` without ``Bearer``), so a client
written by someone else runs unchanged. ``strict=True`` refuses all of that
with a 400 naming the field, so tests prove our client sends only documented
fields. Both refuse what the provider's page forbids.

    from ppinfra.sandbox import SandboxServer
    with SandboxServer(api_keys=["sk-sandbox"], task_seconds=0.5, strict=True) as srv:
        ...  # talk to srv.base_url; srv.inject(...) / srv.configure(...) to misbehave

From a shell: ``python -m ppinfra.sandbox --port 8930 --api-key sk-sandbox [--strict]``.

Files: ``server.py`` (the class), ``api.py`` and ``imagehost.py`` (the
handlers), ``validation.py`` and ``leniency.py`` (submit checks), ``tasks.py``,
``imaging.py``, ``catalog.py`` and ``models.py`` (model list), ``faults.py``,
``urls.py`` (signed links).
"""
from .httpbase import RecordedRequest
from .server import SandboxServer
from .tasks import Task

__all__ = ["SandboxServer", "RecordedRequest", "Task"]
