"""ComfyUI-PPInfra: ComfyUI nodes for the PPInfra (Novita AI) img2img API.

ComfyUI imports this folder as a package. Everything inside is imported
relatively (``from .nodes import ...``): absolute ``nodes``/``server``/``utils``
would hit ComfyUI's own modules. No network and no heavy work happen here.
"""

if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, comfy_bridge

    # The settings panel's and model browser's routes, when a ComfyUI server is running
    # (not under pytest or a plain import: then not even the route module is loaded).
    if comfy_bridge.server_routes() is not None:
        from .nodes.routes import register_with_comfy

        register_with_comfy()
else:
    # Imported as a plain module, not as ComfyUI's package: pytest (9.2+) does
    # this with the repo root while collecting tests/. There is nothing to register.
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

# The editor extensions (settings section, model browser): ComfyUI serves web/**/*.js.
WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
