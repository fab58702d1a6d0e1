"""The ComfyUI nodes of this pack: thin classes that declare inputs, build a request and call the client.

Import cost matters (ComfyUI imports every pack at start): the client, the image
codec and ``requests`` are imported only when a node runs.
"""
from .img2img import PPInfraImg2Img
from .units import PPInfraControlNetUnit, PPInfraEmbedding, PPInfraIPAdapter, PPInfraLoraStack

NODE_CLASS_MAPPINGS = {
    "PPInfraImg2Img": PPInfraImg2Img,
    "PPInfraControlNetUnit": PPInfraControlNetUnit,
    "PPInfraLoraStack": PPInfraLoraStack,
    "PPInfraEmbedding": PPInfraEmbedding,
    "PPInfraIPAdapter": PPInfraIPAdapter,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "PPInfraImg2Img": "PPInfra Img2Img",
    "PPInfraControlNetUnit": "PPInfra ControlNet Unit",
    "PPInfraLoraStack": "PPInfra LoRA Stack",
    "PPInfraEmbedding": "PPInfra Embedding",
    "PPInfraIPAdapter": "PPInfra IP-Adapter",
}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
