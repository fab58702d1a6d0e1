"""Developer tools (not loaded by ComfyUI): the shared pack loader and the node reference generator."""
