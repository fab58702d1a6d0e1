"""What the PPInfra nodes pass each other: the socket types, the values on them, and the
constants both the side nodes and the Img2Img node read.

Each side node outputs an immutable chain value (a tuple of frozen dataclasses)
and never changes what it received: chaining builds a new tuple. Images stay
tensors here; they are paired with the main batch and encoded by the runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from ..ppinfra.errors import ValidationError
from ..ppinfra.limits import LIMITS
from ..ppinfra.request import Embedding, Lora

# width/height 0 on Img2Img: the input image's size (ppinfra.images.match_input_size).
MATCH_INPUT = 0

CATEGORY = "PPInfra"

# Socket type names: saved workflows refer to them, so they never change.
CONTROLNET = "PPINFRA_CONTROLNET"
LORAS = "PPINFRA_LORAS"
EMBEDDINGS = "PPINFRA_EMBEDDINGS"
IP_ADAPTER = "PPINFRA_IP_ADAPTER"


@dataclass(frozen=True, eq=False)
class ControlNetSpec:
    """One ControlNet unit as chained between nodes. ``image`` is an IMAGE tensor (batch 1 or B)."""

    model_name: str
    image: Any
    strength: float
    preprocessor: Optional[str]
    guidance_start: float
    guidance_end: float


@dataclass(frozen=True, eq=False)
class IPAdapterSpec:
    """The IP-Adapter unit. ``image`` is an IMAGE tensor (batch 1 or B)."""

    model_name: str
    image: Any
    strength: float


ControlNetChain = Tuple[ControlNetSpec, ...]
LoraChain = Tuple[Lora, ...]
EmbeddingChain = Tuple[Embedding, ...]


def as_chain(value: Any, item_type: type, socket: str) -> tuple:
    """An incoming chain as a tuple, refusing anything that is not one of ours."""
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(v, item_type) for v in value):
        return value
    raise ValidationError(socket, f"the output of a PPInfra {item_type.__name__} node", type(value).__name__)


def check_total(field: str, n: int, socket: str) -> None:
    """A chain's length against the API's total (``LIMITS[field]``), checked when a node runs.

    ComfyUI's own validation sees linked chains only as ``None``.
    """
    lim = LIMITS[field]
    if n > lim.max:
        raise ValidationError(
            field,
            lim.describe(),
            f"{n} entries",
            f"remove some from the chained {socket} nodes (the API takes {int(lim.max)} in total)",
        )
