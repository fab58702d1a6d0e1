"""The async endpoints, each described once: the table every part of the pack reads.

An endpoint is data: its path, its request type (with its own field checks),
its limits (``ENDPOINT_LIMITS[name]`` in :mod:`ppinfra.limits`), its
images-per-minute defaults per host, the side inputs it accepts, whether the
server reports progress for it, and the price formula of the estimate. The
client submits any of them the same way; the nodes, the CLI, the sandbox, the
result cache, pacing and the progress estimate look the endpoint up here.

Adding an endpoint: one :class:`Endpoint` entry below, one request type
(a :class:`~ppinfra.request.TaskRequest`), one node file.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Tuple

from .limits import ENDPOINT_LIMITS, Limit

# Side inputs a graph may wire into an endpoint's node (the chain sockets of nodes/links.py).
CONTROLNET, LORAS, EMBEDDINGS, IP_ADAPTER = "controlnet", "loras", "embeddings", "ip_adapter"


def _per_image(rate: float, floor: float) -> Callable[[int, int, float], float]:
    """A price per image: max(pixels x work x rate, floor) in USD (SIBLINGS.md, "Prices", [3P])."""

    def price(width: int, height: int, work: float) -> float:
        return max(width * height * work * rate, floor)

    return price


@dataclass(frozen=True)
class Endpoint:
    """One async endpoint of the API.

    ``images_per_minute`` maps a host name (``novita``, ``ppinfra``, ``ppio``)
    to the base plan's limit; a host not listed is not paced unless the user
    sets a limit. ``offered_by`` lists the hosts known to serve the endpoint
    (empty: all of them); elsewhere a 404 reads as "this host does not offer
    it". ``price`` takes (width, height, work) where work is the steps, or the
    scale factor for upscale.
    """

    name: str
    path: str
    request_type_name: str
    label: str
    images_per_minute: Mapping[str, int]
    side_inputs: Tuple[str, ...] = ()
    reports_progress: bool = True
    offered_by: Tuple[str, ...] = ()
    price: Callable[[int, int, float], float] = field(default=_per_image(1.44e-10, 0.001), compare=False)

    @property
    def limits(self) -> Dict[str, Limit]:
        return ENDPOINT_LIMITS[self.name]

    @property
    def request_type(self) -> Any:
        """The request class (imported on first use: this table stays import-light)."""
        module, _, cls = self.request_type_name.rpartition(".")
        return getattr(importlib.import_module(module, __package__), cls)

    def plan_limit(self, host: str) -> int:
        """The base plan's images per minute on ``host`` (a host name), 0 when unknown."""
        return int(self.images_per_minute.get(host, 0))

    def offered_on(self, host: str) -> bool:
        return not self.offered_by or host in self.offered_by


ENDPOINTS: Dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint(
            "img2img",
            "/v3/async/img2img",
            ".img2img_request.Img2ImgRequest",
            "img2img",
            images_per_minute={"novita": 10, "ppinfra": 10, "ppio": 10},
            side_inputs=(CONTROLNET, LORAS, EMBEDDINGS, IP_ADAPTER),
        ),
        Endpoint(
            "txt2img",
            "/v3/async/txt2img",
            ".txt2img_request.Txt2ImgRequest",
            "txt2img",
            images_per_minute={"novita": 20, "ppinfra": 10, "ppio": 10},
            side_inputs=(LORAS, EMBEDDINGS),
        ),
        Endpoint(
            "inpainting",
            "/v3/async/inpainting",
            ".inpainting_request.InpaintingRequest",
            "inpainting",
            images_per_minute={"novita": 10, "ppinfra": 10, "ppio": 10},
            side_inputs=(LORAS, EMBEDDINGS),
            reports_progress=False,
            price=_per_image(4e-10, 0.0015),
        ),
        Endpoint(
            "upscale",
            "/v3/async/upscale",
            ".upscale_request.UpscaleRequest",
            "upscale",
            images_per_minute={"novita": 20},
            reports_progress=False,
            offered_by=("novita",),
            price=_per_image(4e-9, 0.0015),
        ),
    )
}


def endpoint(name: str) -> Endpoint:
    """The endpoint called ``name``; a clear error for anything else."""
    try:
        return ENDPOINTS[name]
    except KeyError:
        raise KeyError(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINTS)}") from None
