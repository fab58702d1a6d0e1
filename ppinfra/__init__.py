"""PPInfra / Novita AI async image API client.

Pure Python (requests, Pillow, numpy; torch only for tensors): it imports
nothing from ComfyUI, so it runs from a shell, the CLI and the tests.
"""
from . import logs as _logs

# Before any module of the package can log: every record then leaves through the redacting handler.
_logs.install(__name__)
