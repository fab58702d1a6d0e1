"""What the result-cache tests share: where the entries live, and an image as upload base64."""

from __future__ import annotations

import base64
import io
import os

import numpy as np
from PIL import Image

from ppinfra import result_cache

OTHER_CHECKPOINT = "realisticVisionV51_v51VAE_94301.safetensors"


def results_dir(isolated_env) -> str:
    return str(isolated_env / "cache" / result_cache.SUBDIR)


def entries(isolated_env):
    d = results_dir(isolated_env)
    return sorted(f for f in os.listdir(d) if f.endswith(result_cache.SUFFIX)) if os.path.isdir(d) else []


def png_of(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
