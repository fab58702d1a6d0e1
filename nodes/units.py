"""The side nodes: ControlNet Unit, LoRA Stack, Embedding, IP-Adapter.

Each builds one value for the Img2Img node (the types are in ``links.py``).
Totals (at most 5 LoRAs, 5 embeddings) are checked when a node runs, because
ComfyUI's validation sees linked chains only as ``None``.
"""

from __future__ import annotations

from ..ppinfra.errors import ValidationError
from ..ppinfra.limits import LIMITS
from ..ppinfra.request import Embedding, Lora, check_value

from . import widgets as options
from .links import (
    CATEGORY,
    CONTROLNET,
    EMBEDDINGS,
    IP_ADAPTER,
    LORAS,
    ControlNetChain,
    ControlNetSpec,
    EmbeddingChain,
    IPAdapterSpec,
    LoraChain,
    as_chain,
    check_total,
)

PREPROCESSOR_NONE = "none"
LORA_SLOTS = 5


class _SideNode:
    """What every side node shares: it builds one value for the generation nodes, synchronously."""

    CATEGORY = CATEGORY
    FUNCTION = "build"


def _check(at: str, row: str, **values) -> None:
    """Each value against its limit: ``at`` + name is the field as reported, ``row`` + name its limits row."""
    for name, value in values.items():
        check_value(at + name, value, LIMITS[row + name])


# --------------------------------------------------------------------------- ControlNet


class PPInfraControlNetUnit(_SideNode):
    DESCRIPTION = (
        "One ControlNet unit for PPInfra Img2Img: a control image (a batch of 1 applies to every "
        "input image; a batch of the same size pairs item by item), the ControlNet model and how "
        "strongly and when it acts. Chain units through the 'controlnet' input."
    )
    RETURN_TYPES = (CONTROLNET,)
    RETURN_NAMES = ("controlnet",)
    OUTPUT_TOOLTIPS = ("The chain of ControlNet units, this one last.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        options.refresh_soon()
        P = "request.controlnet.units[]."
        return {
            "required": {
                "image": (
                    "IMAGE",
                    {
                        "tooltip": "Control image (edges, depth map, pose...), or a photo for the "
                        "preprocessor to turn into one."
                    },
                ),
                "model_name": options.model_input(
                    "controlnet",
                    "ControlNet model. Use one of the checkpoint's family (SD 1.5 or SDXL).",
                    preferred=("control_v11p_sd15_canny",),
                ),
                "strength": options.float_input(P + "strength"),
                "preprocessor": options.enum_input(
                    P + "preprocessor",
                    "Preprocessor the server applies to the control image; 'none' sends "
                    "the image as it is (use it for a ready-made edge or depth map).",
                    first=(PREPROCESSOR_NONE,),
                    default=PREPROCESSOR_NONE,
                ),
                "guidance_start": options.float_input(P + "guidance_start"),
                "guidance_end": options.float_input(P + "guidance_end"),
            },
            "optional": {
                "controlnet": (
                    CONTROLNET,
                    {"tooltip": "Units from other ControlNet Unit nodes to send together."},
                ),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model_name=None, guidance_start=None, guidance_end=None):
        # Naming guidance_start/end here turns off ComfyUI's own range check for
        # them (it cannot compare the two): both ranges are checked again at run time.
        ok = options.check_model_name("model_name", model_name)
        if ok is not True:
            return ok
        P = "request.controlnet.units[]."
        given = {"guidance_start": guidance_start, "guidance_end": guidance_end}
        try:
            _check("", P, **{name: value for name, value in given.items() if value is not None})
        except ValidationError as exc:
            return str(exc)
        if guidance_start is not None and guidance_end is not None and not guidance_start < guidance_end:
            return f"guidance_start ({guidance_start}) must be below guidance_end ({guidance_end})"
        return True

    def build(self, image, model_name, strength, preprocessor, guidance_start, guidance_end, controlnet=None):
        chain: ControlNetChain = as_chain(controlnet, ControlNetSpec, "controlnet")
        k = len(chain)
        P = f"request.controlnet.units[{k}]."
        pre = None if preprocessor in (None, PREPROCESSOR_NONE) else preprocessor
        _check(
            P,
            "request.controlnet.units[].",
            model_name=model_name,
            strength=strength,
            preprocessor=pre,
            guidance_start=guidance_start,
            guidance_end=guidance_end,
        )
        if not guidance_start < guidance_end:
            raise ValidationError(
                P + "guidance_start", f"below {P}guidance_end ({guidance_end})", guidance_start
            )
        if image is None:
            raise ValidationError(P + "image", "an IMAGE", None)
        unit = ControlNetSpec(
            model_name=model_name,
            image=image,
            strength=float(strength),
            preprocessor=pre,
            guidance_start=float(guidance_start),
            guidance_end=float(guidance_end),
        )
        return (chain + (unit,),)


# --------------------------------------------------------------------------- LoRA


class PPInfraLoraStack(_SideNode):
    DESCRIPTION = (
        f"Up to {LORA_SLOTS} LoRAs for PPInfra Img2Img, each with its strength; 'None' leaves a slot "
        "empty. Chain stacks through the 'loras' input; the API takes at most "
        f"{int(LIMITS['request.loras'].max)} in total."
    )
    RETURN_TYPES = (LORAS,)
    RETURN_NAMES = ("loras",)
    OUTPUT_TOOLTIPS = ("The chain of LoRAs, these last.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        options.refresh_soon()
        required = {}
        for i in range(1, LORA_SLOTS + 1):
            required[f"lora_{i}"] = options.model_input(
                "lora",
                f"LoRA {i}; 'None' leaves the slot empty. Use one of the checkpoint's family.",
                with_none=True,
                preferred=(options.NONE,),
            )
            required[f"strength_{i}"] = options.float_input(
                "request.loras[].strength", f"Weight of LoRA {i}."
            )
        return {
            "required": required,
            "optional": {"loras": (LORAS, {"tooltip": "LoRAs from another LoRA Stack node, sent first."})},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, lora_1=None, lora_2=None, lora_3=None, lora_4=None, lora_5=None):
        for i, value in enumerate((lora_1, lora_2, lora_3, lora_4, lora_5), start=1):
            ok = options.check_model_name(f"lora_{i}", value)
            if ok is not True:
                return ok
        return True

    def build(self, loras=None, **slots):
        chain: LoraChain = as_chain(loras, Lora, "loras")
        added = []
        for i in range(1, LORA_SLOTS + 1):
            name = slots.get(f"lora_{i}")
            if name in (None, "", options.NONE):
                continue
            k = len(chain) + len(added)
            strength = slots.get(f"strength_{i}")
            _check(f"request.loras[{k}].", "request.loras[].", model_name=name, strength=strength)
            added.append(Lora(model_name=name, strength=float(strength)))
        check_total("request.loras", len(chain) + len(added), "LoRA Stack")
        return (chain + tuple(added),)


# --------------------------------------------------------------------------- Embedding


class PPInfraEmbedding(_SideNode):
    DESCRIPTION = (
        "A textual-inversion embedding for PPInfra Img2Img (write its trigger word in the prompt or "
        "negative prompt). Chain through the 'embeddings' input; the API takes at most "
        f"{int(LIMITS['request.embeddings'].max)} in total."
    )
    RETURN_TYPES = (EMBEDDINGS,)
    RETURN_NAMES = ("embeddings",)
    OUTPUT_TOOLTIPS = ("The chain of embeddings, this one last.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        options.refresh_soon()
        return {
            "required": {
                "model_name": options.model_input(
                    "textualinversion",
                    "Textual-inversion embedding. Use one of the checkpoint's family.",
                    preferred=("EasyNegative",),
                )
            },
            "optional": {
                "embeddings": (EMBEDDINGS, {"tooltip": "Embeddings from other Embedding nodes, sent first."})
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model_name=None):
        return options.check_model_name("model_name", model_name)

    def build(self, model_name, embeddings=None):
        chain: EmbeddingChain = as_chain(embeddings, Embedding, "embeddings")
        k = len(chain)
        _check(f"request.embeddings[{k}].", "request.embeddings[].", model_name=model_name)
        check_total("request.embeddings", k + 1, "Embedding")
        return (chain + (Embedding(model_name=model_name),),)


# --------------------------------------------------------------------------- IP-Adapter


class PPInfraIPAdapter(_SideNode):
    DESCRIPTION = (
        "The IP-Adapter for PPInfra Img2Img: a reference image whose style or subject guides the "
        "result. ip-adapter_sd15.bin for SD 1.x checkpoints, ip-adapter_sdxl.bin for SDXL. "
        f"The API takes at most {int(LIMITS['request.ip_adapters'].max)}."
    )
    RETURN_TYPES = (IP_ADAPTER,)
    RETURN_NAMES = ("ip_adapter",)
    OUTPUT_TOOLTIPS = ("The IP-Adapter unit.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": (
                    "IMAGE",
                    {
                        "tooltip": "Reference image (a batch of 1 applies to every input image; a batch "
                        "of the same size pairs item by item)."
                    },
                ),
                "model_name": options.enum_input("request.ip_adapters[].model_name"),
                "strength": options.float_input("request.ip_adapters[].strength"),
            },
        }

    def build(self, image, model_name, strength):
        P = "request.ip_adapters[0]."
        _check(P, "request.ip_adapters[].", model_name=model_name, strength=strength)
        if image is None:
            raise ValidationError(P + "image", "an IMAGE", None)
        return (IPAdapterSpec(model_name=model_name, image=image, strength=float(strength)),)
