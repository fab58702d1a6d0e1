"""A local stand-in for the PPInfra / PPIO / Novita AI async image API, for tests,
benchmarks and offline trials.

Honest about what it is: the results are SYNTHETIC images, not diffusion
(:mod:`.imaging`: img2img grades the resized input per seed, txt2img draws
a seed-determined gradient at the requested or hires-fix size, inpainting
changes only the masked pixels, upscale resizes the input). Everything else
follows the provider's contract (``docs/api.md`` and ``SIBLINGS.md``, our
summaries of the provider's pages): the submit endpoints of
:data:`ppinfra.endpoints.ENDPOINTS` (img2img, txt2img, inpainting, upscale)
at their paths, field checks read from ``ppinfra.limits.ENDPOINT_LIMITS``,
error bodies and reasons, task lifecycle with realistic ``eta`` and the
documented ``task_type``, cursor-paged model list shaped like the docs'
sample, an account endpoint, and result images on a second host behind
pre-signed, expiring URLs.

Two modes. By default it is lenient like the real service (unknown fields
ignored, ``null`` = not set, numbers as strings, ``c_<offset>`` cursors,
``True``/``1`` booleans, ``Authorization`` without ``Bearer``), so a client
written by someone else runs unchanged. ``strict=True`` refuses all of that
with a 400 naming the field, so tests prove our client sends only documented
fields. Both refuse what the provider's page forbids.

Three providers. ``provider="novita"`` (default) lists models in Novita's
shape, which the provider's Python SDK parses; ``"ppinfra"`` and ``"ppio"``
list them in PPInfra's sample shape (``model_name``, no ``sd_name``) and do
not offer upscale (404 ``API_NOT_FOUND``).

    from ppinfra.sandbox import SandboxServer
    with SandboxServer(api_keys=["sk-sandbox"], task_seconds=0.5, strict=True) as srv:
        ...  # talk to srv.base_url; srv.inject(...) / srv.configure(...) to misbehave

From a shell: ``python -m ppinfra.sandbox --port 8930 --api-key sk-sandbox [--strict] [--provider ppinfra]``.

Files: ``server.py`` (the class), ``api.py`` and ``imagehost.py`` (the
handlers), ``shapes.py`` (each endpoint's documented body), ``validation.py``,
``rules.py`` and ``leniency.py`` (submit checks), ``tasks.py``,
``imaging.py``, ``catalog.py`` and ``models.py`` (model list), ``faults.py``,
``urls.py`` (signed links).
"""

from .httpbase import RecordedRequest
from .server import SandboxServer
from .tasks import Task

__all__ = ["SandboxServer", "RecordedRequest", "Task"]
