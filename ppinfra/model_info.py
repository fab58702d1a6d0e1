"""One model of ``GET /v3/model`` as this pack uses it: which entries a node can use, the name to send,
and the family (SD 1.5, SDXL or unsure). Also the model names the provider documents.

The real list is looser than its docs (docs/api.md, "Model list"): PPInfra's own
sample has ``model_name`` instead of ``sd_name`` and no ``is_sdxl`` or
``sd_name_in_api``; ``base_model`` holds civitai names (``Pony``, ``Illustrious``,
``Flux.1 D``, ...); ``type.name`` can be ``locon``; ``status`` 0 and ``.zip``
archives cannot be used by a request at all.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, FrozenSet, List, Optional, Tuple
from urllib.parse import urlsplit

from .limits import MODEL_TYPES

SD15 = "sd15"
SDXL = "sdxl"

# The only model names the provider's docs and samples show (docs/api.md, "Model list"
# section). The bundled fallback list and every example workflow use these and
# nothing else, so nothing this pack ships names a model that may not exist.
# The bool says SDXL. No VAE and no embedding name is documented: both stay empty.
DOCUMENTED_MODELS: Dict[str, List[Tuple[str, bool]]] = {
    "checkpoint": [
        ("dreamshaper_8_93211.safetensors", False),
        ("realisticVisionV51_v51VAE_94301.safetensors", False),
        ("epicrealism_naturalSin_121250.safetensors", False),
        ("darkSushiMixMix_225D_64380.safetensors", False),
        ("sd_xl_base_1.0.safetensors", True),
    ],
    "vae": [],
    "lora": [("add_detail_44319", False)],
    "controlnet": [
        ("controlnet-canny-sdxl-1.0", True),
        ("controlnet-depth-sdxl-1.0", True),
        ("controlnet-openpose-sdxl-1.0", True),
        ("controlnet-softedge-sdxl-1.0", True),
    ],
    "textualinversion": [],
}
DOCUMENTED_NAMES: Dict[str, FrozenSet[str]] = {
    t: frozenset(n for n, _ in items) for t, items in DOCUMENTED_MODELS.items()
}

# Used only when there is neither a cache nor a key (dropdowns before the first refresh).
FALLBACK_MODELS: Dict[str, List[Tuple[str, bool]]] = {
    t: list(items) for t, items in DOCUMENTED_MODELS.items()
}

# type.name values that are another name for a listed type: a LoCon is a LoRA variant, sent as one.
_TYPE_ALIASES = {"locon": "lora", "lycoris": "lora"}
_AVAILABLE = (None, 1, "1", True, "MODEL_STATUS_AVAILABLE")
# civitai base models of the SDXL family (Pony, Illustrious and NoobAI are SDXL fine-tunes;
# "SDXL 1.0", "SDXL 0.9", "SDXL Turbo", "SDXL Lightning", "SDXL Hyper" all contain SDXL).
_SDXL_MARKS = ("SDXL", "PONY", "ILLUSTRIOUS", "NOOBAI", "NOOB AI")
_SD1 = re.compile(r"^SD ?1(\.\d+)?\b")
_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


def family_of_base(base_model: str) -> Optional[str]:
    """``"sdxl"``, ``"sd15"`` or ``None`` (SD 2.x, Flux, anything else: unsure) for a ``base_model``."""
    base = " ".join(str(base_model or "").upper().split())
    if any(mark in base for mark in _SDXL_MARKS):
        return SDXL
    if _SD1.match(base):
        return SD15
    return None


@dataclass(frozen=True)
class ModelInfo:
    """One model as this pack uses it.

    ``name`` is what a request sends; ``is_sdxl`` the provider's flag (or, when
    it is missing, what ``base_model`` says); ``family`` decides warnings and
    filters and is ``None`` whenever the model's family is not certain.
    """

    name: str
    model_type: str
    is_sdxl: Optional[bool]
    base_model: str = ""
    display_name: str = ""
    sd_name: str = ""
    tags: Tuple[str, ...] = ()
    cover_url: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.tags, tuple):  # from JSON: a list
            object.__setattr__(self, "tags", tuple(map(str, self.tags or ())))

    @property
    def family(self) -> Optional[str]:
        """``"sdxl"``, ``"sd15"`` or ``None``: ``base_model`` when given (SD 2.1 stays unsure),
        else the flag."""
        if self.base_model:
            return family_of_base(self.base_model)
        if self.is_sdxl is None:
            return None
        return SDXL if self.is_sdxl else SD15

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready, ``family`` included (what the editor's model browser shows)."""
        out = asdict(self)
        out["tags"] = list(self.tags)
        out["family"] = self.family
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Optional["ModelInfo"]:
        """From a cache entry; keys this version does not know are ignored, a broken entry is ``None``."""
        if not isinstance(data, dict):
            return None
        known = data if data.keys() <= _FIELDS else {k: v for k, v in data.items() if k in _FIELDS}
        try:
            info = cls(**known)
        except TypeError:
            return None
        return info if isinstance(info.name, str) and info.name else None


_FIELDS = frozenset(f.name for f in fields(ModelInfo))


def name_to_send(raw: Dict[str, Any], model_type: str) -> str:
    """The name the img2img request expects (docs/api.md, "Model list"; partly inferred).

    Never ``name``: on the real list that is the civitai *version* name ("beta2").
    """
    if model_type == "checkpoint":
        order = ("sd_name", "sd_name_in_api", "model_name")
    else:
        order = ("sd_name_in_api", "model_name", "sd_name")
    for key in order:
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _flag(value: Any) -> Optional[bool]:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def is_sdxl_of(raw: Dict[str, Any]) -> Optional[bool]:
    """``is_sdxl`` when present, else what ``base_model`` says (``None`` when it says neither)."""
    flag = _flag(raw.get("is_sdxl"))
    if flag is not None:
        return flag
    fam = family_of_base(str(raw.get("base_model") or ""))
    return None if fam is None else fam == SDXL


def _type_name(raw: Dict[str, Any]) -> str:
    t = raw.get("type")
    if isinstance(t, dict):
        t = t.get("name")
    return str(t or "").strip().lower()


def _is_archive(raw: Dict[str, Any], name: str) -> bool:
    names = [name, *(raw.get(k) for k in ("sd_name", "sd_name_in_api", "model_name"))]
    url = raw.get("download_url")
    if isinstance(url, str) and url:
        names.append(urlsplit(url).path)
    return any(isinstance(n, str) and n.strip().lower().endswith(".zip") for n in names)


def usable(raw: Dict[str, Any], model_type: str) -> bool:
    """Whether a node can send this entry as a ``model_type``: available, not an archive, of that type."""
    rtype = _type_name(raw)
    rtype = _TYPE_ALIASES.get(rtype, rtype)
    if rtype in MODEL_TYPES and rtype != model_type:
        return False  # another type (a checkpoint in a LoRA list); an unknown label is kept
    status = raw.get("status")
    if isinstance(status, str):
        status = status.strip().upper()
    if status not in _AVAILABLE:
        return False
    return not _is_archive(raw, name_to_send(raw, model_type))


def _tags(value: Any) -> Tuple[str, ...]:
    out = []
    for t in value if isinstance(value, list) else ():
        t = t.get("name") if isinstance(t, dict) else t
        if isinstance(t, str) and t.strip():
            out.append(t.strip())
    return tuple(out)


def _display(send: str, sd_name: str, version: str) -> str:
    """What a person recognises: the file name without extension, with the version name when it adds to it."""
    stem = sd_name or send
    for ext in _EXTENSIONS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    squash = lambda s: re.sub(r"[\s_\-.]+", "", s.lower())
    if version and squash(version) not in squash(stem):
        return f"{stem} ({version})"
    return stem


def to_model_info(raw: Dict[str, Any], model_type: str) -> Optional[ModelInfo]:
    """A :class:`ModelInfo`, or ``None`` for an entry a node cannot use (see :func:`usable`)."""
    if not isinstance(raw, dict):
        return None
    name = name_to_send(raw, model_type)
    if not name or not usable(raw, model_type):
        return None
    sd_name = next(
        (
            str(raw[k]).strip()
            for k in ("sd_name", "model_name", "sd_name_in_api")
            if isinstance(raw.get(k), str) and raw[k].strip()
        ),
        name,
    )
    cover = raw.get("cover_url")
    return ModelInfo(
        name=name,
        model_type=model_type,
        is_sdxl=is_sdxl_of(raw),
        base_model=str(raw.get("base_model") or "").strip(),
        display_name=_display(name, sd_name, str(raw.get("name") or "").strip()),
        sd_name=sd_name,
        tags=_tags(raw.get("tags")),
        cover_url=cover.strip() if isinstance(cover, str) else "",
    )


def fallback_infos(model_type: str) -> List[ModelInfo]:
    """The bundled list of a type as :class:`ModelInfo` (with a base model, so the family is known)."""
    return [
        ModelInfo(n, model_type, x, base_model="SDXL 1.0" if x else "SD 1.5", display_name=n, sd_name=n)
        for n, x in FALLBACK_MODELS.get(model_type, [])
    ]
