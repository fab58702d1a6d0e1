"""PPInfra / Novita AI async image API client.

Pure Python (requests, Pillow, numpy; torch only for tensors): it imports
nothing from ComfyUI, so it runs from a shell, the CLI and the tests.

The public face::

    from ppinfra import PPInfraClient, Txt2ImgRequest

    with PPInfraClient() as client:          # key and host: argument, env, config file
        out = client.run(Txt2ImgRequest(model_name="dreamshaper_8_93211.safetensors",
                                        prompt="a lighthouse", width=512, height=512))

Every endpoint is described once in :mod:`ppinfra.endpoints`; its request type
is listed below. Everything else in the package is internal. Names load on
first use, so ``import ppinfra`` stays cheap for ComfyUI's start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import logs as _logs

# Before any module of the package can log: every record then leaves through the redacting handler.
_logs.install(__name__)

_PUBLIC = {
    "PPInfraClient": ".client",
    "TaskOutcome": ".client",
    "TaskResult": ".client",
    "PollUpdate": ".client",
    "Settings": ".config",
    "load_settings": ".config",
    "ENDPOINTS": ".endpoints",
    "Endpoint": ".endpoints",
    "TaskRequest": ".request",
    "Lora": ".request",
    "Embedding": ".request",
    "Img2ImgRequest": ".img2img_request",
    "ControlNetUnit": ".img2img_request",
    "IPAdapter": ".img2img_request",
    "Txt2ImgRequest": ".txt2img_request",
    "HiresFix": ".txt2img_request",
    "Refiner": ".txt2img_request",
    "InpaintingRequest": ".inpainting_request",
    "UpscaleRequest": ".upscale_request",
    "Binder": ".binding",
    "bind_batch": ".binding",
    "Call": ".waiting",
    "Deadline": ".waiting",
}
_ERRORS = (
    "PPInfraError",
    "ConfigError",
    "ValidationError",
    "ImageInputError",
    "APIError",
    "AuthenticationError",
    "PermissionDeniedError",
    "InsufficientBalanceError",
    "RateLimitError",
    "BadRequestError",
    "NotFoundError",
    "ServerError",
    "EndpointNotOfferedError",
    "AnswerTooLargeError",
    "ResponseFormatError",
    "TaskFailedError",
    "TaskTimeoutError",
    "NetworkError",
    "DownloadError",
    "CorruptResultError",
    "CancelledError",
)
_PUBLIC.update({name: ".errors" for name in _ERRORS})

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
