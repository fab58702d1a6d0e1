"""The ComfyUI nodes of this pack: thin classes that declare inputs, build a request and call the client.

Import cost matters (ComfyUI imports every pack at start): the client, the image
codec and ``requests`` are imported only when a node runs.
"""

from .img2img import PPInfraImg2Img
from .inpaint import PPInfraInpaint
from .txt2img import PPInfraTxt2Img
from .units import PPInfraControlNetUnit, PPInfraEmbedding, PPInfraIPAdapter, PPInfraLoraStack
from .upscale import PPInfraUpscale

NODE_CLASS_MAPPINGS = {
    "PPInfraImg2Img": PPInfraImg2Img,
    "PPInfraControlNetUnit": PPInfraControlNetUnit,
    "PPInfraLoraStack": PPInfraLoraStack,
    "PPInfraEmbedding": PPInfraEmbedding,
    "PPInfraIPAdapter": PPInfraIPAdapter,
    "PPInfraTxt2Img": PPInfraTxt2Img,
    "PPInfraInpaint": PPInfraInpaint,
    "PPInfraUpscale": PPInfraUpscale,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "PPInfraImg2Img": "PPInfra Img2Img",
    "PPInfraControlNetUnit": "PPInfra ControlNet Unit",
    "PPInfraLoraStack": "PPInfra LoRA Stack",
    "PPInfraEmbedding": "PPInfra Embedding",
    "PPInfraIPAdapter": "PPInfra IP-Adapter",
    "PPInfraTxt2Img": "PPInfra Txt2Img",
    "PPInfraInpaint": "PPInfra Inpaint",
    "PPInfraUpscale": "PPInfra Upscale",
}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
