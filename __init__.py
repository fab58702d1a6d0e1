"""ComfyUI-PPInfra: ComfyUI nodes for the PPInfra (Novita AI) img2img API.

ComfyUI imports this folder as a package. Everything inside is imported
relatively (``from .nodes import ...``): absolute ``nodes``/``server``/``utils``
would hit ComfyUI's own modules. No network and no heavy work happen here.
"""
if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:
    # Imported as a plain module, not as ComfyUI's package: pytest (9.2+) does
    # this with the repo root while collecting tests/. There is nothing to register.
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
