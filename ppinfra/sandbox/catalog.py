"""The sandbox's model catalog: deterministic, large enough that paging matters.

It mixes SD 1.5 and SDXL models of every type ``/v3/model`` lists, always
including the well-known names in :data:`WELL_KNOWN` so examples and tests can
rely on them. Two traps of the real list are reproduced on purpose: ``is_sdxl``
is missing on some models (derive it from ``base_model``), and LoRAs and
embeddings are sent by ``sd_name_in_api``, which differs from their ``sd_name``.
"""
from __future__ import annotations

import hashlib
import random
from typing import Any, Dict, Iterable, List, Optional

from ..limits import MODEL_TYPES
from ..models import FALLBACK_MODELS

SD15 = "SD 1.5"
SDXL = "SDXL 1.0"

# Stable names, by type, that examples and tests may use. The second element
# says whether the model is SDXL.
# The client's bundled fallback list is the one place these names live: the
# sandbox serves them so that list, the examples and the tests stay true.
_WELL_KNOWN_SDXL: Dict[str, List[tuple]] = {t: list(items) for t, items in FALLBACK_MODELS.items()}

WELL_KNOWN: Dict[str, List[str]] = {t: [n for n, _ in items] for t, items in _WELL_KNOWN_SDXL.items()}
"""Type -> names to send (``sd_name`` for checkpoints, ``sd_name_in_api`` otherwise) that always exist."""

DEFAULT_COUNTS = {"checkpoint": 260, "lora": 150, "textualinversion": 40, "controlnet": 30,
                  "vae": 10, "upscaler": 6}

_DISPLAY = {"checkpoint": "Checkpoint", "lora": "LoRA", "vae": "VAE", "controlnet": "ControlNet",
            "textualinversion": "Textual Inversion", "upscaler": "Upscaler"}

_EXTRA_CONTROLNETS = [
    ("control_v11p_sd15_lineart", False), ("control_v11p_sd15_mlsd", False),
    ("control_v11p_sd15_normalbae", False), ("control_v11p_sd15_scribble", False),
    ("control_v11p_sd15_seg", False), ("control_v11p_sd15_softedge", False),
    ("control_v11p_sd15_inpaint", False), ("control_v11e_sd15_shuffle", False),
    ("control_v11f1e_sd15_tile", False), ("control_v11e_sd15_ip2p", False),
    ("control_v11p_sd15s2_lineart_anime", False), ("control_sd15_qrcode_monster", False),
    ("t2iadapter_color_sd14v1", False), ("t2iadapter_sketch_sd15v2", False),
    ("diffusers_xl_canny_mid", True), ("diffusers_xl_depth_mid", True),
    ("diffusers_xl_canny_small", True), ("diffusers_xl_depth_small", True),
    ("thibaud_xl_openpose", True), ("t2i-adapter_xl_canny", True), ("t2i-adapter_xl_openpose", True),
    ("t2i-adapter_xl_sketch", True), ("kohya_controllllite_xl_canny", True),
    ("sai_xl_canny_128lora", True), ("sai_xl_depth_128lora", True), ("sai_xl_recolor_128lora", True),
    ("sai_xl_sketch_128lora", True), ("controlnet-union-sdxl-1.0", True),
]
_EXTRA_VAES = [
    ("kl-f8-anime2.ckpt", False), ("orangemix.vae.pt", False), ("clearvae_v23.safetensors", False),
    ("vae-ft-ema-560000-ema-pruned.ckpt", False), ("blessed2.vae.pt", False), ("animevae.pt", False),
    ("sdxl_vae_fp16_fix.safetensors", True), ("ClearVAE_SDXL.safetensors", True),
]
_UPSCALERS = ["RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B", "4x-UltraSharp", "R-ESRGAN 4x+",
              "ESRGAN_4x", "SwinIR_4x"]

_WORDS_A = ["dream", "real", "epic", "majic", "anything", "counterfeit", "rev", "abyss", "deliberate",
            "cyber", "toon", "photon", "absolute", "neverending", "meina", "ghost", "chillout",
            "lyriel", "aurora", "velvet", "crystal", "noble", "mystic", "urban", "retro", "pastel"]
_WORDS_B = ["Mix", "Realism", "Vision", "Photo", "Anime", "Dream", "Art", "Style", "Diffusion",
            "Fusion", "Reality", "Portrait", "Canvas", "Ink", "Painting"]
_LORA_WORDS = ["detail", "light", "film_grain", "pixel_art", "watercolor", "cyberpunk", "clay",
               "lineart", "eyes", "hands", "armor", "sketch", "neon", "ghibli", "vintage", "bokeh"]
_EMB_WORDS = ["negative", "badhand", "bad_prompt", "ng_deepnegative", "verybadimagenegative",
              "fastnegative", "unaestheticXL", "realisticvision_neg", "bad_pictures", "easy_photo"]
_TAGS = ["photorealistic", "anime", "portrait", "landscape", "style", "character", "concept", "base model"]


class Catalog:
    """The models the sandbox knows, in a fixed order, with lookups by the name to send."""

    def __init__(self, size: Optional[int] = None) -> None:
        counts = dict(DEFAULT_COUNTS)
        if size is not None:
            # `size` is the number of checkpoints; the other types keep their defaults.
            counts["checkpoint"] = max(int(size), len(WELL_KNOWN["checkpoint"]))
        self.models: List[Dict[str, Any]] = _build(counts)
        self._by_send_name = {(m["type"]["name"], send_name(m)): m for m in self.models}

    def get(self, model_type: str, name: str) -> Optional[Dict[str, Any]]:
        """The model of ``model_type`` whose name-to-send is ``name``, or None."""
        return self._by_send_name.get((model_type, name))

    def query(self, types: Iterable[str] = (), is_sdxl: Optional[bool] = None,
              visibility: Optional[str] = None, is_inpainting: Optional[bool] = None,
              text: str = "") -> List[Dict[str, Any]]:
        """The models matching every given filter, in catalog order."""
        wanted = set(types)
        out = []
        for m in self.models:
            if wanted and m["type"]["name"] not in wanted:
                continue
            if is_sdxl is not None and (m["base_model"] == SDXL) != is_sdxl:
                continue
            if visibility is not None and m["visibility"] != visibility:
                continue
            if is_inpainting is not None and ("inpainting" in m["sd_name"]) != is_inpainting:
                continue
            if text and text.lower() not in m["name"].lower():
                continue
            out.append(m)
        return out


def send_name(model: Dict[str, Any]) -> str:
    """The name a request uses: ``sd_name`` for checkpoints, ``sd_name_in_api`` for everything else."""
    return model["sd_name"] if model["type"]["name"] == "checkpoint" else model["sd_name_in_api"]


def _build(counts: Dict[str, int]) -> List[Dict[str, Any]]:
    rng = random.Random(20240521)  # fixed: the catalog must be the same on every run
    used_ids: set = set()
    models: List[Dict[str, Any]] = []

    def add(model_type: str, stem: str, file_name: str, sdxl: bool, **extra: Any) -> None:
        model_id = rng.randrange(10000, 400000)
        while model_id in used_ids:
            model_id = rng.randrange(10000, 400000)
        used_ids.add(model_id)
        models.append(_model(len(models), model_id, model_type, stem, file_name, sdxl, **extra))

    # Checkpoints: the well-known ones first, then generated names "<words>_v<n>_<id>.safetensors".
    names = {n for n, _ in _WELL_KNOWN_SDXL["checkpoint"]}
    for name, sdxl in _WELL_KNOWN_SDXL["checkpoint"]:
        add("checkpoint", name.rsplit(".", 1)[0], name, sdxl)
    while sum(1 for m in models if m["type"]["name"] == "checkpoint") < counts["checkpoint"]:
        sdxl = rng.random() < 0.4
        stem = f"{rng.choice(_WORDS_A)}{rng.choice(_WORDS_B)}{'XL' if sdxl else ''}_v{rng.randint(1, 12)}"
        if rng.random() < 0.04:
            stem += "-inpainting"
        stem += f"_{rng.randrange(10000, 400000)}"
        name = stem + ".safetensors"
        if name not in names:
            names.add(name)
            add("checkpoint", stem, name, sdxl, private=rng.random() < 0.03)

    # LoRAs and embeddings: sent by sd_name_in_api (the stem), listed with a file sd_name.
    for model_type, words, suffix in (("lora", _LORA_WORDS, ".safetensors"),
                                      ("textualinversion", _EMB_WORDS, ".pt")):
        stems = set()
        for stem, sdxl in _WELL_KNOWN_SDXL[model_type]:
            stems.add(stem)
            add(model_type, stem, stem + suffix, sdxl)
        while len(stems) < counts[model_type]:
            sdxl = rng.random() < 0.35
            stem = f"{rng.choice(words)}{'_xl' if sdxl else ''}_{rng.randrange(10000, 400000)}"
            if stem not in stems:
                stems.add(stem)
                add(model_type, stem, stem + suffix, sdxl, private=rng.random() < 0.03)

    # Fixed lists, cut to the requested counts (well-known names first).
    for model_type, extra_items in (("controlnet", _EXTRA_CONTROLNETS), ("vae", _EXTRA_VAES)):
        items = _WELL_KNOWN_SDXL[model_type] + extra_items
        for name, sdxl in items[:max(counts[model_type], len(_WELL_KNOWN_SDXL[model_type]))]:
            add(model_type, name, name, sdxl)
    for name in _UPSCALERS[:counts["upscaler"]]:
        add("upscaler", name, name, False)
    return models


def _model(index: int, model_id: int, model_type: str, stem: str, file_name: str, sdxl: bool,
           private: bool = False) -> Dict[str, Any]:
    digest = hashlib.sha256(file_name.encode()).hexdigest()
    base = SDXL if sdxl else SD15
    model: Dict[str, Any] = {
        "id": model_id,
        "name": stem.replace("_", " "),
        "sd_name": file_name,
        "sd_name_in_api": stem if model_type in ("lora", "textualinversion") else file_name,
        "type": {"name": model_type, "display_name": _DISPLAY[model_type]},
        "status": 1,
        "base_model": base if model_type != "upscaler" else "",
        "base_model_type": ("sdxl" if sdxl else "sd1") if model_type != "upscaler" else "",
        "is_sdxl": sdxl,
        "tags": [_TAGS[int(digest[0], 16) % len(_TAGS)]],
        "categories": [model_type],
        # .invalid never resolves: a client must not depend on fetching covers.
        "cover_url": f"https://covers.sandbox.invalid/{model_id}.jpeg",
        "source": "civitai" if model_type in ("checkpoint", "lora", "textualinversion") else "official",
        "visibility": "private" if private else "public",
        "is_nsfw": int(digest[1], 16) == 0,
        "hash_sha256": digest,
        "download_url": "",
    }
    if index % 5 == 3:
        # The real list omits is_sdxl on some models; clients must fall back to base_model.
        del model["is_sdxl"]
    return model


assert set(DEFAULT_COUNTS) == set(MODEL_TYPES)
