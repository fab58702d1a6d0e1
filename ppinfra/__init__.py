"""PPInfra / Novita AI async image API client.

Pure Python (requests, Pillow, numpy; torch only for tensors): it imports
nothing from ComfyUI, so it runs from a shell, the CLI and the tests.
"""
