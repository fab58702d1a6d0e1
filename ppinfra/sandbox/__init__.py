"""A local, strict stand-in for the PPInfra (Novita AI) img2img API, for tests and offline trials.

Honest about what it is: the results are SYNTHETIC images (the input image
resized to the requested size and colour-graded with a seed-dependent tint and
stripe pattern), not diffusion. Everything else follows the provider's
contract (``shared/api/img2img.zh.md``, ``CONTRACT.md``) strictly: the same
endpoints, field checks read from :mod:`ppinfra.limits`, error bodies and
reasons, task lifecycle with realistic ``eta``, cursor-paged model list, and
result images on a second host behind pre-signed, expiring URLs.

    from ppinfra.sandbox import SandboxServer
    with SandboxServer(api_keys=["sk-sandbox"], task_seconds=0.5) as srv:
        ...  # talk to srv.base_url; srv.inject(...) / srv.configure(...) to misbehave

From a shell: ``python -m ppinfra.sandbox --port 8930 --api-key sk-sandbox``.

Files: ``server.py`` (the class), ``api.py`` and ``imagehost.py`` (the two
handlers), ``validation.py``, ``tasks.py``, ``imaging.py``, ``catalog.py`` and
``models.py`` (model list), ``faults.py``, ``urls.py`` (signed links).
"""
from .httpbase import RecordedRequest
from .server import SandboxServer
from .tasks import Task

__all__ = ["SandboxServer", "RecordedRequest", "Task"]
