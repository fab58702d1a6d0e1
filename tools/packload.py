"""Import the repo root as a package, the way ComfyUI imports a custom node folder.

The pack's modules import each other relatively (``from ..ppinfra import ...``),
so the nodes only load as submodules of a package made from the repo root. The
tests, the benchmark and the doc generators all load it through this one function.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK_NAME = "ppinfra_pack"


def load_pack(root: str = ROOT, name: str = PACK_NAME) -> ModuleType:
    """The pack at ``root`` imported as package ``name``;
    the module already imported under that name if any."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(root, "__init__.py"), submodule_search_locations=[root]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)  # a failed import must not leave a half-made package behind
        raise
    return module
