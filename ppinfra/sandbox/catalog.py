"""The sandbox's model catalog: deterministic, shaped like the docs' sample, as large as the real one.

Every entry looks like the provider's sample (docs/api.md, "Model list"):
``hash_sha256`` is a 10-character uppercase prefix, ``base_model_type`` is
``Standard`` or ``Inpainting``, ``categories`` is ``[]``, ``download_url_ttl``
is present, and ``name`` is the civitai *version* name (``v5.1``, ``beta2``)
while ``sd_name``/``sd_name_in_api`` are the file names a person recognises.

The traps a client must handle are there on purpose, after the first few
generated entries of each type (so a test picking "the first unlisted LoRA"
gets a usable one): ``is_sdxl`` missing on some entries; base models beyond
SD 1.5 and SDXL 1.0 (Pony, Illustrious, NoobAI, SDXL Turbo, SDXL Lightning,
SD 2.1, Flux.1 D); ``status: 0`` (unavailable) entries; LoRAs of
``type.name`` ``locon``; LoRA archives ending in ``.zip``; embeddings that
keep their ``.pt``.

Entries are stored in Novita's shape (``sd_name``, ``sd_name_in_api``,
``is_sdxl`` where the real list has it). A sandbox speaking as PPInfra or PPIO
lists them in PPInfra's own sample shape instead (:func:`ppinfra_entry`:
``model_name``, no ``sd_name``/``sd_name_in_api``/``is_sdxl``); the provider's
Python SDK cannot parse that shape, so it is never mixed into Novita's list.

What a submit may name (see :meth:`Catalog.usable`): any listed entry with
``status`` 1 that is not a ``.zip`` archive. ``locon`` entries are LoRAs and
are accepted in ``loras[]``; ``status: 0`` and ``.zip`` entries are refused.

Lookups are indexed per type, and filtered lists are cached (a bounded LRU),
so paging through tens of thousands of entries does not re-scan per page.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from ..limits import MODEL_TYPES
from ..models import FALLBACK_MODELS

SD15 = "SD 1.5"
SDXL = "SDXL 1.0"
SDXL_FAMILY = (SDXL, "Pony", "Illustrious", "NoobAI", "SDXL Turbo", "SDXL Lightning")
SOURCES = ("civitai", "training", "uploading")

# The names in the provider's docs and samples (docs/api.md, "Model list"), the client's
# bundled fallback list, and every name the tests and example workflows use.
# The second element says whether the model is SDXL. They always exist, with
# status 1, in the usual shape.
_DOCUMENTED: Dict[str, List[Tuple[str, bool]]] = {
    "checkpoint": [
        ("dreamshaper_8_93211.safetensors", False),
        ("realisticVisionV51_v51VAE_94301.safetensors", False),
        ("epicrealism_naturalSin_121250.safetensors", False),
        ("darkSushiMixMix_225D_64380.safetensors", False),
        ("sd_xl_base_1.0.safetensors", True),
    ],
    "lora": [("add_detail_44319", False)],
    "controlnet": [
        ("controlnet-canny-sdxl-1.0", True),
        ("controlnet-depth-sdxl-1.0", True),
        ("controlnet-openpose-sdxl-1.0", True),
        ("controlnet-softedge-sdxl-1.0", True),
    ],
    "textualinversion": [],
    "vae": [],
    "upscaler": [],
}
# Names the tests and example workflows have used (some undocumented); they keep working here.
# sd-v1-5-inpainting.ckpt is the widely distributed name of the official SD 1.5 inpainting
# checkpoint; no provider page confirms it, but example_workflows/inpainting_mask.json needs an
# inpainting checkpoint to run as shipped, so the sandbox always lists it (add_known marks it
# Inpainting, SD 1.5, from its name). It is not in the client's documented/fallback lists.
INPAINTING_CHECKPOINT = "sd-v1-5-inpainting.ckpt"
_IN_USE: Dict[str, List[Tuple[str, bool]]] = {
    "checkpoint": [
        ("juggernautXL_v9Rdphoto2Lightning_285361.safetensors", True),
        (INPAINTING_CHECKPOINT, False),
    ],
    "vae": [("vae-ft-mse-840000-ema-pruned.ckpt", False), ("sdxl_vae.safetensors", True)],
    "lora": [("more_details_59655", False), ("sdxl_lightning_4step_lora", True)],
    "controlnet": [
        ("control_v11p_sd15_canny", False),
        ("control_v11f1p_sd15_depth", False),
        ("control_v11p_sd15_openpose", False),
        ("diffusers_xl_canny_full", True),
        ("diffusers_xl_depth_full", True),
    ],
    "textualinversion": [("EasyNegative", False), ("badhandv4_16755", False), ("negativeXL_D", True)],
}
_EXTRA_CONTROLNETS = [
    ("control_v11p_sd15_lineart", False),
    ("control_v11p_sd15_mlsd", False),
    ("control_v11p_sd15_normalbae", False),
    ("control_v11p_sd15_scribble", False),
    ("control_v11p_sd15_seg", False),
    ("control_v11p_sd15_softedge", False),
    ("control_v11p_sd15_inpaint", False),
    ("control_v11e_sd15_shuffle", False),
    ("control_v11f1e_sd15_tile", False),
    ("control_v11e_sd15_ip2p", False),
    ("control_v11p_sd15s2_lineart_anime", False),
    ("control_sd15_qrcode_monster", False),
    ("t2iadapter_color_sd14v1", False),
    ("t2iadapter_sketch_sd15v2", False),
    ("diffusers_xl_canny_mid", True),
    ("diffusers_xl_depth_mid", True),
    ("diffusers_xl_canny_small", True),
    ("diffusers_xl_depth_small", True),
    ("thibaud_xl_openpose", True),
    ("t2i-adapter_xl_canny", True),
    ("t2i-adapter_xl_openpose", True),
    ("t2i-adapter_xl_sketch", True),
    ("kohya_controllllite_xl_canny", True),
    ("sai_xl_canny_128lora", True),
    ("sai_xl_depth_128lora", True),
    ("sai_xl_recolor_128lora", True),
    ("sai_xl_sketch_128lora", True),
    ("controlnet-union-sdxl-1.0", True),
]
_EXTRA_VAES = [
    ("kl-f8-anime2.ckpt", False),
    ("orangemix.vae.pt", False),
    ("clearvae_v23.safetensors", False),
    ("vae-ft-ema-560000-ema-pruned.ckpt", False),
    ("blessed2.vae.pt", False),
    ("animevae.pt", False),
    ("sdxl_vae_fp16_fix.safetensors", True),
    ("ClearVAE_SDXL.safetensors", True),
]
_UPSCALERS = [
    "RealESRGAN_x4plus",
    "RealESRGAN_x4plus_anime_6B",
    "4x-UltraSharp",
    "R-ESRGAN 4x+",
    "ESRGAN_4x",
    "SwinIR_4x",
]


def _well_known() -> Dict[str, List[Tuple[str, bool]]]:
    out: Dict[str, List[Tuple[str, bool]]] = {t: [] for t in MODEL_TYPES}
    for source in (_DOCUMENTED, _IN_USE, FALLBACK_MODELS):
        for model_type, items in source.items():
            for name, sdxl in items:
                if name not in {n for n, _ in out[model_type]}:
                    out[model_type].append((name, sdxl))
    return out


_WELL_KNOWN_SDXL: Dict[str, List[Tuple[str, bool]]] = _well_known()
"""Type -> (name to send, is SDXL) of every name that always exists (documented, fallback, fixed lists)."""

WELL_KNOWN: Dict[str, List[str]] = {t: [n for n, _ in items] for t, items in _WELL_KNOWN_SDXL.items()}
"""Type -> names to send (``sd_name`` for checkpoints, ``sd_name_in_api`` otherwise) that always exist."""

DEFAULT_COUNTS = {
    "checkpoint": 260,
    "lora": 150,
    "textualinversion": 40,
    "controlnet": 40,
    "vae": 10,
    "upscaler": 6,
}

_DISPLAY = {
    "checkpoint": "Checkpoint",
    "lora": "LoRA",
    "vae": "VAE",
    "controlnet": "ControlNet",
    "textualinversion": "Textual Inversion",
    "upscaler": "Upscaler",
    "locon": "LoCon",
}
_VERSIONS = [
    "v1.0",
    "v2.0",
    "v3",
    "v5.1",
    "V6 (B1)",
    "beta2",
    "alpha",
    "fp16",
    "pruned",
    "v8",
    "1.0",
    "final",
    "v2.5 VAE",
    "v1.5-lite",
    "v4 inpainting",
    "XL v2.0",
    "v10",
    "rc1",
]
_KNOWN_VERSIONS = {
    "dreamshaper_8_93211.safetensors": "8",
    "realisticVisionV51_v51VAE_94301.safetensors": "V5.1 (VAE)",
    "epicrealism_naturalSin_121250.safetensors": "Natural Sin RC1 VAE",
    "darkSushiMixMix_225D_64380.safetensors": "2.25D",
    "sd_xl_base_1.0.safetensors": "1.0",
}
_WORDS_A = [
    "dream",
    "real",
    "epic",
    "majic",
    "anything",
    "counterfeit",
    "rev",
    "abyss",
    "deliberate",
    "cyber",
    "toon",
    "photon",
    "absolute",
    "neverending",
    "meina",
    "ghost",
    "chillout",
    "lyriel",
    "aurora",
    "velvet",
    "crystal",
    "noble",
    "mystic",
    "urban",
    "retro",
    "pastel",
]
_WORDS_B = [
    "Mix",
    "Realism",
    "Vision",
    "Photo",
    "Anime",
    "Dream",
    "Art",
    "Style",
    "Diffusion",
    "Fusion",
    "Reality",
    "Portrait",
    "Canvas",
    "Ink",
    "Painting",
]
_LORA_WORDS = [
    "detail",
    "light",
    "film_grain",
    "pixel_art",
    "watercolor",
    "cyberpunk",
    "clay",
    "lineart",
    "eyes",
    "hands",
    "armor",
    "sketch",
    "neon",
    "ghibli",
    "vintage",
    "bokeh",
]
_EMB_WORDS = [
    "negative",
    "badhand",
    "bad_prompt",
    "ng_deepnegative",
    "verybadimagenegative",
    "fastnegative",
    "unaestheticXL",
    "realisticvision_neg",
    "bad_pictures",
    "easy_photo",
]
_TAGS = [
    "photorealistic",
    "anime",
    "portrait",
    "landscape",
    "style",
    "character",
    "concept",
    "base model",
    "clothing",
    "background",
    "detail",
    "cartoon",
]
# Base models of generated entries, with weights: mostly SD 1.5 and SDXL, then the civitai names.
_BASES = [
    (SD15, 45),
    (SDXL, 20),
    ("Pony", 10),
    ("Illustrious", 7),
    ("NoobAI", 3),
    ("SDXL Turbo", 3),
    ("SDXL Lightning", 3),
    ("SD 2.1", 4),
    ("Flux.1 D", 5),
]
_BASE_TABLE = [b for b, w in _BASES for _ in range(w)]
assert len(_BASE_TABLE) == 100
_FIRST_TRAP = 8  # generated entries before this index are always plain, usable models
_CACHE_SIZE = 64

CatalogSize = Union[None, int, Mapping[str, int]]


class Catalog:
    """The models the sandbox knows, per type in a fixed order, with lookups by the name to send.

    ``size``: None (the defaults in :data:`DEFAULT_COUNTS`), an int (the
    number of checkpoints; other types keep their defaults) or a mapping
    type -> count, e.g. ``{"checkpoint": 30000, "lora": 20000}``. A count
    never goes below the number of well-known names of that type.
    """

    def __init__(self, size: CatalogSize = None) -> None:
        counts = dict(DEFAULT_COUNTS)
        if isinstance(size, Mapping):
            unknown = set(size) - set(MODEL_TYPES)
            if unknown:
                raise ValueError(
                    f"catalog sizes take the types {', '.join(MODEL_TYPES)}, got {sorted(unknown)[0]!r}"
                )
            counts.update({t: int(n) for t, n in size.items()})
        elif size is not None:
            counts["checkpoint"] = int(size)
        self._by_type: Dict[str, List[Dict[str, Any]]] = {}
        self._meta: Dict[str, List[tuple]] = {}  # parallel to _by_type: (sdxl, inpainting, text, source, vis)
        self._by_send_name: Dict[Tuple[str, str], Dict[str, Any]] = {}
        _Builder(self, counts).build()
        self._cache: "OrderedDict[tuple, List[Dict[str, Any]]]" = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def models(self) -> List[Dict[str, Any]]:
        """Every model, type by type (a new list)."""
        return [m for t in MODEL_TYPES for m in self._by_type.get(t, [])]

    def count(self, model_type: str) -> int:
        """How many entries ``filter.types=<model_type>`` lists."""
        return len(self._by_type.get(model_type, []))

    def get(self, model_type: str, name: str) -> Optional[Dict[str, Any]]:
        """The listed entry of ``model_type`` whose name-to-send is ``name``, or None (usable or not)."""
        return self._by_send_name.get((model_type, name))

    def usable(self, model_type: str, name: str) -> Tuple[Optional[Dict[str, Any]], str]:
        """(entry, "") if a submit may name it; (entry or None, why not) otherwise."""
        model = self.get(model_type, name)
        if model is None:
            return None, "not listed"
        if model["status"] != 1:
            return model, f"unavailable (status {model['status']})"
        if name.lower().endswith(".zip"):
            return model, "an archive (.zip), not a loadable model"
        return model, ""

    def query(
        self,
        types: Iterable[str] = (),
        is_sdxl: Optional[bool] = None,
        visibility: Optional[str] = None,
        is_inpainting: Optional[bool] = None,
        text: str = "",
        source: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """The models matching every given filter, type by type in catalog order (a cached list:
        do not modify).

        ``is_sdxl`` matches the SDXL family (SDXL 1.0, Pony, Illustrious, NoobAI,
        SDXL Turbo/Lightning); ``text`` is a case-insensitive substring of
        ``sd_name``, ``name`` or a tag.
        """
        wanted = [t for t in MODEL_TYPES if t in set(types)] if types else list(MODEL_TYPES)
        key = (tuple(wanted), is_sdxl, visibility, is_inpainting, text.lower(), source)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        needle = text.lower()
        out: List[Dict[str, Any]] = []
        for t in wanted:
            for model, (sdxl, inpainting, blob, src, vis) in zip(self._by_type[t], self._meta[t]):
                if (
                    (is_sdxl is None or sdxl == is_sdxl)
                    and (visibility is None or vis == visibility)
                    and (is_inpainting is None or inpainting == is_inpainting)
                    and (source is None or src == source)
                    and (not needle or needle in blob)
                ):
                    out.append(model)
        with self._cache_lock:
            self._cache[key] = out
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return out

    def _add(self, listing_type: str, model: Dict[str, Any], sdxl: bool) -> None:
        blob = "\n".join([model["sd_name"], model["name"], *model["tags"]])
        self._by_type.setdefault(listing_type, []).append(model)
        self._meta.setdefault(listing_type, []).append(
            (
                sdxl,
                model["base_model_type"] == "Inpainting",
                blob.lower(),
                model["source"],
                model["visibility"],
            )
        )
        self._by_send_name[(listing_type, send_name(model))] = model


def is_sdxl(model: Dict[str, Any]) -> bool:
    """True for the SDXL family, read from ``base_model`` (``is_sdxl`` is missing on some entries)."""
    return model.get("base_model") in SDXL_FAMILY


def is_inpainting(model: Dict[str, Any]) -> bool:
    """True for an inpainting checkpoint (what ``filter.is_inpainting=true`` lists)."""
    return model.get("base_model_type") == "Inpainting"


_NOVITA_ONLY = ("sd_name", "sd_name_in_api", "is_sdxl")


def ppinfra_entry(model: Dict[str, Any]) -> Dict[str, Any]:
    """``model`` as PPInfra's docs sample shows it: ``model_name`` (the name to send) first, no
    ``sd_name``, ``sd_name_in_api`` or ``is_sdxl``; every other field as stored."""
    out: Dict[str, Any] = {"id": model["id"], "name": model["name"], "model_name": send_name(model)}
    out.update((k, v) for k, v in model.items() if k not in _NOVITA_ONLY and k not in out)
    return out


def send_name(model: Dict[str, Any]) -> str:
    """The name a request uses: ``sd_name`` for checkpoints, ``sd_name_in_api`` otherwise,
    else ``model_name``."""
    key = "sd_name" if model["type"]["name"] == "checkpoint" else "sd_name_in_api"
    return model.get(key) or model.get("model_name") or model.get("sd_name", "")


class _Builder:
    """Fills a :class:`Catalog`; one pass, no rejection loops,
    so 50,000 entries take a fraction of a second."""

    def __init__(self, catalog: Catalog, counts: Dict[str, int]) -> None:
        self.catalog = catalog
        self.counts = counts
        self.rng = random.Random(20240521)  # fixed: the catalog must be the same on every run
        total = sum(max(n, len(_WELL_KNOWN_SDXL[t])) for t, n in counts.items()) + 64
        # Unique ids without a rejection loop: a shuffled stride through a large range.
        span = max(400000, total * 4)
        step = span // total
        ids = [10000 + k * step + self.rng.getrandbits(16) % step for k in range(total)]
        self.rng.shuffle(ids)
        self.ids = iter(ids)
        self.index = 0

    def build(self) -> None:
        for model_type in MODEL_TYPES:
            fixed = list(_WELL_KNOWN_SDXL[model_type])
            if model_type == "controlnet":
                fixed += [x for x in _EXTRA_CONTROLNETS if x not in fixed]
            elif model_type == "vae":
                fixed += [x for x in _EXTRA_VAES if x not in fixed]
            elif model_type == "upscaler":
                fixed += [(n, False) for n in _UPSCALERS]
            want = self.counts[model_type]
            if model_type in ("controlnet", "vae", "upscaler"):
                # Fixed lists, cut to the count but never below the well-known names.
                fixed = fixed[: max(want, len(_WELL_KNOWN_SDXL[model_type]))]
            for name, sdxl in fixed:
                self.add_known(model_type, name, sdxl)
            for i in range(max(0, want - len(fixed))):
                self.add_generated(model_type, i)

    def add_known(self, model_type: str, name: str, sdxl: bool) -> None:
        if model_type in ("lora", "textualinversion"):
            file_name = name + (".safetensors" if model_type == "lora" else ".pt")
        else:
            file_name = name
        base = "" if model_type == "upscaler" else (SDXL if sdxl else SD15)
        model = self.model(
            model_type,
            model_type,
            file_name,
            name,
            base,
            version=_KNOWN_VERSIONS.get(name, "v1.0"),
            inpainting="inpaint" in name,
        )
        self.catalog._add(model_type, model, sdxl)

    def add_generated(self, model_type: str, i: int) -> None:
        # One 64-bit draw per entry, sliced into the choices: random.choices() per field
        # made 50,000 entries take seconds.
        r = self.rng.getrandbits(64)
        trap = i >= _FIRST_TRAP
        base = _BASE_TABLE[r % 100]
        sdxl = base in SDXL_FAMILY
        model_id = next(self.ids)
        inpainting = False
        type_name = model_type
        if model_type == "checkpoint":
            inpainting = (r >> 8) % 25 == 0
            stem = (
                f"{_WORDS_A[(r >> 13) % len(_WORDS_A)]}{_WORDS_B[(r >> 18) % len(_WORDS_B)]}"
                f"{'XL' if sdxl else ''}_v{1 + (r >> 23) % 12}"
                f"{'-inpainting' if inpainting else ''}_{model_id}"
            )
            file_name = send = stem + ".safetensors"
        elif model_type in ("lora", "textualinversion"):
            words = _LORA_WORDS if model_type == "lora" else _EMB_WORDS
            stem = f"{words[(r >> 13) % len(words)]}{'_xl' if sdxl else ''}_{model_id}"
            file_name, send = stem + (".safetensors" if model_type == "lora" else ".pt"), stem
            if model_type == "textualinversion" and trap and i % 7 == 2:
                send = file_name  # embedding names may keep their extension
            if model_type == "lora" and trap and i % 13 == 6:
                type_name = "locon"
            if model_type == "lora" and trap and i % 29 == 17:
                file_name = send = stem + ".zip"  # an archive: listed, not loadable
        else:
            # Generated controlnets, VAEs and upscalers only appear when a test asks for more than the fixed
            # lists.
            stem = f"{model_type}_{_WORDS_A[(r >> 13) % len(_WORDS_A)]}_{model_id}"
            file_name = send = stem + (".safetensors" if model_type == "vae" else "")
            if model_type == "upscaler":
                base = ""
        source = "civitai"
        if trap and (r >> 28) % 20 == 0:
            source = SOURCES[1 + (r >> 33) % 2]
        n_tags = 1 + i % 3
        first = (r >> 35) % len(_TAGS)
        tags = [_TAGS[(first + k * 5) % len(_TAGS)] for k in range(n_tags)]
        model = self.model(
            model_type,
            type_name,
            file_name,
            send,
            base,
            model_id=model_id,
            version=_VERSIONS[(r >> 40) % len(_VERSIONS)],
            inpainting=inpainting,
            status=0 if trap and i % 23 == 11 else 1,
            source=source,
            tags=tags,
        )
        self.catalog._add(model_type, model, sdxl)

    def model(
        self,
        model_type: str,
        type_name: str,
        file_name: str,
        send: str,
        base: str,
        *,
        model_id: Optional[int] = None,
        version: str = "v1.0",
        inpainting: bool = False,
        status: int = 1,
        source: str = "civitai",
        tags: Optional[List[str]] = None,
    ) -> Dict[str, Any]:
        rng = self.rng
        index = self.index
        self.index += 1
        model_id = next(self.ids) if model_id is None else model_id
        if tags is None:
            tags = [_TAGS[index % len(_TAGS)]]
        model: Dict[str, Any] = {
            "id": model_id,
            "name": version,
            "sd_name": file_name,
            "sd_name_in_api": send,
        }
        model.update(
            {
                "type": {"name": type_name, "display_name": _DISPLAY[type_name]},
                "status": status,
                "hash_sha256": f"{rng.getrandbits(40):010X}",
                "categories": [],
                "download_url": "",
                "download_url_ttl": 0,
                "base_model": base,
                "base_model_type": "Inpainting" if inpainting else "Standard",
                "tags": tags,
                # .invalid never resolves: a client must not depend on fetching covers.
                "cover_url": f"https://covers.sandbox.invalid/{model_id}.jpeg",
                "source": source,
                "visibility": "public" if source == "civitai" else "private",
                "is_nsfw": index % 17 == 5,
            }
        )
        if base and index % 5 != 3:
            # The real list omits is_sdxl on some models; clients must fall back to base_model.
            model["is_sdxl"] = base in SDXL_FAMILY
        return model


assert set(DEFAULT_COUNTS) == set(MODEL_TYPES)
