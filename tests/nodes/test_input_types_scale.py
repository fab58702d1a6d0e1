"""Model inputs at the real catalog's size: INPUT_TYPES reads in-memory lists, /object_info stays small.

ComfyUI calls every node's INPUT_TYPES on each /object_info and for each
queued prompt. The mechanism tested here: the cache file is parsed once per
version, however often INPUT_TYPES runs; a model input carries at most
INLINE_LIMIT names plus the route that serves the rest; validation accepts
names the inline list leaves out. (The timing is measured by bench/editor_bench.py.)
"""

from __future__ import annotations

import importlib
import json
import os
import threading
import time


from helpers import PACK_NAME, load_pack
from tools.node_driver import pack_module

pack = load_pack()
NODES = pack.NODE_CLASS_MAPPINGS
catalog = importlib.import_module(f"{PACK_NAME}.nodes.catalog")
options = importlib.import_module(f"{PACK_NAME}.nodes.widgets")

PREFERRED = "dreamshaper_8_93211.safetensors"
MODEL_INPUTS = [
    ("PPInfraImg2Img", "model_name", "checkpoint", False),
    ("PPInfraImg2Img", "sd_vae", "vae", True),
    ("PPInfraControlNetUnit", "model_name", "controlnet", False),
    ("PPInfraEmbedding", "model_name", "textualinversion", False),
    *((("PPInfraLoraStack", f"lora_{i}", "lora", True)) for i in range(1, 6)),
]


def write_cache(counts, extra=()):
    """A model cache as a refresh writes it: ``counts`` generated models per type,
    plus ``extra`` checkpoints."""
    data = {}
    entry = lambda name, model_type, sdxl: {
        "name": name,
        "model_type": model_type,
        "is_sdxl": sdxl,
        "base_model": "SDXL 1.0" if sdxl else "SD 1.5",
    }
    for model_type, n in counts.items():
        models = [entry(f"{model_type}_{i:05d}.safetensors", model_type, i % 3 == 0) for i in range(n)]
        if model_type == "checkpoint":
            models += [entry(name, model_type, False) for name in (PREFERRED, *extra)]
        data[model_type] = {"fetched_at": time.time(), "models": models}
    path = catalog.catalog().cache_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)  # as the catalog writes it: a new file (new inode), never a half-written one


def all_specs():
    return {node_id: cls.INPUT_TYPES() for node_id, cls in NODES.items()}


def test_cache_is_parsed_once_however_often_input_types_runs(counted_reads):
    write_cache({"checkpoint": 30000, "lora": 20000, "textualinversion": 3000, "vae": 40, "controlnet": 40})
    for _ in range(20):  # 20 page loads / queued prompts
        all_specs()
    assert len(counted_reads) == 1
    assert len(catalog.names("checkpoint")) == 30001 and len(catalog.names("lora")) == 20000


def test_a_rewritten_cache_is_seen_at_once_and_parsed_once_more(counted_reads):
    write_cache({"checkpoint": 50000})
    all_specs()
    assert "brand_new_model.safetensors" not in catalog.names("checkpoint")
    write_cache({"checkpoint": 50000}, extra=["brand_new_model.safetensors"])
    for _ in range(5):
        all_specs()
    assert "brand_new_model.safetensors" in catalog.names("checkpoint")
    assert len(counted_reads) == 2


def test_big_lists_stay_out_of_object_info(counted_reads):
    write_cache({"checkpoint": 50000, "lora": 20000, "textualinversion": 3000, "vae": 40, "controlnet": 40})
    specs = all_specs()
    size = len(json.dumps(specs, default=str))
    assert size < 100_000, size  # the full lists were about 5 MB
    for node_id, name, model_type, with_none in MODEL_INPUTS:
        section = "required"
        names, extra = specs[node_id][section][name]
        assert isinstance(names, list) and len(names) <= options.INLINE_LIMIT + with_none
        assert extra["default"] in names
        assert extra["remote"] == {
            "route": f"/ppinfra/models/{model_type}" + ("?with_none=1" if with_none else ""),
            "refresh_button": True,
        }
        assert (names[0] == "None") == with_none
    checkpoint_names, extra = specs["PPInfraImg2Img"]["required"]["model_name"]
    assert extra["default"] == PREFERRED  # the preferred default is kept however long the list
    assert len(specs["PPInfraImg2Img"]["required"]["sd_vae"][0]) == 41  # small lists stay complete


def test_validation_accepts_names_the_inline_list_leaves_out(counted_reads):
    write_cache({"checkpoint": 50000})
    inline = set(NODES["PPInfraImg2Img"].INPUT_TYPES()["required"]["model_name"][0])
    left_out = next(n for n in catalog.names("checkpoint") if n not in inline)
    assert NODES["PPInfraImg2Img"].VALIDATE_INPUTS(model_name=left_out, sd_vae="None") is True
    assert NODES["PPInfraImg2Img"].VALIDATE_INPUTS(model_name="", sd_vae="None") != True  # noqa: E712


def test_family_lookups_use_the_same_memory(counted_reads):
    write_cache({"checkpoint": 50000, "lora": 20000})
    for _ in range(50):
        assert catalog.family_of("checkpoint", "checkpoint_00003.safetensors") == "sdxl"
        assert catalog.family_of("lora", "lora_00004.safetensors") == "sd15"
    assert len(counted_reads) == 1


def test_a_background_refresh_indexes_the_new_list_itself(counted_reads, sandbox, api_key, monkeypatch):
    """The dropdown build after a refresh finds the list indexed: the refresh thread parsed it,
    not INPUT_TYPES."""
    monkeypatch.setenv("PPINFRA_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("PPINFRA_API_KEY", api_key)
    all_specs()
    assert counted_reads == []  # no cache yet: the bundled list
    assert catalog.catalog().refresh_in_background(["lora"], force=True)
    deadline = time.monotonic() + 30
    while any(t.name == "ppinfra-model-refresh" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    all_specs()
    assert set(counted_reads) == {"ppinfra-model-refresh"}  # none by the dropdown build (MainThread)
    assert len(catalog.names("lora")) > 50


# ------------------------------------------------------ README promise: stale lists refresh in the background

_last_mtime = [0.0]


def _age_model_cache(path: str, seconds: float) -> None:
    """Make every cached list look fetched ``seconds`` ago (the file changes, so the catalog reloads it)."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    for entry in data.values():
        entry["fetched_at"] = time.time() - seconds
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    # The catalog notices a changed file by its stat: move the mtime past every earlier one by a
    # whole second, so two rewrites within one tick of a coarse file-system clock still differ.
    bumped = max(os.stat(path).st_mtime, _last_mtime[0]) + 1
    _last_mtime[0] = bumped
    os.utime(path, (bumped, bumped))


def test_lists_older_than_ten_minutes_are_refreshed_in_the_background(env, monkeypatch):
    """docs/troubleshooting.md, "Value not in list": "After a key is set, a refresh starts a background
    download of lists older than 10 minutes and shows the cached ones meanwhile".

    Tested by the mechanism: which lists count as stale at 9 and at 11 minutes, and that a
    dropdown build (``INPUT_TYPES``) then really asks the host for the stale ones while
    still answering from the cache.
    Break: nodes/catalog.py REFRESH_AFTER_SECONDS = 6 h (the catalog's own default).
    """
    catalog_mod = pack_module("nodes.catalog")
    img2img_cls = pack_module("nodes").NODE_CLASS_MAPPINGS["PPInfraImg2Img"]
    cat = catalog_mod.catalog()
    types = catalog_mod.DROPDOWN_TYPES

    _age_model_cache(cat.cache_path(), 9 * 60)
    assert all(cat.is_fresh(t) for t in types), "a list 9 minutes old counts as stale"
    _age_model_cache(cat.cache_path(), 11 * 60)
    assert not any(cat.is_fresh(t) for t in types), "a list 11 minutes old still counts as fresh"

    monkeypatch.setattr(catalog_mod, "_last_check", float("-inf"))  # no earlier check throttles this one
    shown = img2img_cls.INPUT_TYPES()["required"]["model_name"][0]
    assert "dreamshaper_8_93211.safetensors" in shown  # the cached list meanwhile
    deadline = time.monotonic() + 15
    while not all(cat.is_fresh(t) for t in types) and time.monotonic() < deadline:
        time.sleep(0.05)
    asked = {r.query.get("filter.types") for r in env.requests if r.path == "/v3/model"}
    assert set(types) <= asked, f"refreshed only {asked}"
    assert all(cat.is_fresh(t) for t in types)
