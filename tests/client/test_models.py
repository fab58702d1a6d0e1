"""The model list as a node uses it: what is dropped, which family a model is, which cache file
holds it, how lookups scale, and which names the pack itself ships.

Shapes come from the provider's docs' samples (docs/api.md, "Model list"); the
sandbox serves the same traps over real sockets.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from helpers import ROOT, load_pack
from ppinfra.client import PPInfraClient
from ppinfra.model_info import DOCUMENTED_NAMES, FALLBACK_MODELS, family_of_base, to_model_info
from ppinfra.models import ModelCatalog, ModelInfo

EXAMPLES_DIR = os.path.join(ROOT, "example_workflows")
SD15_LORA = {
    "id": 1,
    "name": "v1.0",
    "sd_name": "add_detail.safetensors",
    "sd_name_in_api": "add_detail_44319",
    "type": {"name": "lora", "display_name": "LoRA"},
    "status": 1,
    "base_model": "SD 1.5",
    "tags": ["detail"],
    "cover_url": "https://c/1.jpeg",
}


# ---------------------------------------------------------------- parsing one entry


@pytest.mark.parametrize(
    "base, family",
    [
        ("SD 1.5", "sd15"),
        ("SD 1.4", "sd15"),
        ("SDXL 1.0", "sdxl"),
        ("SDXL 0.9", "sdxl"),
        ("Pony", "sdxl"),
        ("Illustrious", "sdxl"),
        ("NoobAI", "sdxl"),
        ("SDXL Turbo", "sdxl"),
        ("SDXL Lightning", "sdxl"),
        ("SD 2.1", None),
        ("Flux.1 D", None),
        ("Other", None),
        ("", None),
    ],
)
def test_family_from_base_model(base, family):
    assert family_of_base(base) == family
    raw = {"model_name": "m.safetensors", "status": 1, "base_model": base}  # PPInfra's shape: no is_sdxl
    assert to_model_info(raw, "checkpoint").family == family


def test_an_sd21_model_flagged_not_sdxl_is_unsure_not_sd15():
    raw = {"sd_name": "v2.safetensors", "status": 1, "base_model": "SD 2.1", "is_sdxl": False}
    assert to_model_info(raw, "checkpoint").family is None


def test_ppinfra_shape_sends_model_name_never_the_version_name():
    raw = {
        "id": 7,
        "name": "beta2",
        "model_name": "foo_123.safetensors",
        "type": {"name": "checkpoint"},
        "status": 1,
        "base_model": "Pony",
        "tags": [{"name": "anime"}],
        "cover_url": None,
    }
    m = to_model_info(raw, "checkpoint")
    assert (m.name, m.sd_name, m.family, m.tags, m.cover_url) == (
        "foo_123.safetensors",
        "foo_123.safetensors",
        "sdxl",
        ("anime",),
        "",
    )
    assert "foo_123" in m.display_name and "beta2" in m.display_name
    assert to_model_info({"name": "beta2", "status": 1}, "checkpoint") is None  # nothing sendable


@pytest.mark.parametrize(
    "change",
    [
        {"status": 0},
        {"status": "0"},
        {"status": "MODEL_STATUS_UNAVAILABLE"},
        {"status": 2},
        {"sd_name_in_api": "pack_1.zip"},
        {"sd_name": "pack.ZIP"},
        {"download_url": "https://files.example/pack_1.zip?sig=1"},
        {"type": {"name": "checkpoint"}},
    ],
)
def test_entries_a_node_cannot_use_are_dropped(change):
    assert to_model_info(SD15_LORA, "lora") is not None
    assert to_model_info({**SD15_LORA, **change}, "lora") is None


def test_locon_is_a_lora():
    locon = {
        **SD15_LORA,
        "type": {"name": "locon", "display_name": "LoCon"},
        "status": "MODEL_STATUS_AVAILABLE",
    }
    assert to_model_info(locon, "lora").name == "add_detail_44319"
    assert to_model_info(locon, "checkpoint") is None


def test_cache_round_trip_keeps_every_field(tmp_path):
    cat = ModelCatalog(None, cache_dir=str(tmp_path), base_url="https://api.ppinfra.com")
    m = to_model_info(SD15_LORA, "lora")
    cat._write_cache("lora", [m])
    again = ModelCatalog(None, cache_dir=str(tmp_path), base_url="https://api.ppinfra.com")
    assert again.info("lora", m.name) == m
    assert again.info("lora", m.name).to_dict()["family"] == "sd15"
    assert ModelInfo.from_dict({**m.to_dict(), "added_later": 1}) == m
    assert ModelInfo.from_dict({"model_type": "lora"}) is None


# ---------------------------------------------------------------- against the sandbox


def test_sandbox_list_is_filtered_and_typed(sandbox, api_key, tmp_path):
    with PPInfraClient(api_key=api_key, base_url=sandbox.base_url) as client:
        raw = client.list_models_raw("lora")
    cat = ModelCatalog(
        lambda: PPInfraClient(api_key=api_key, base_url=sandbox.base_url),
        cache_dir=str(tmp_path),
        base_url=sandbox.base_url,
    )
    names = {m.name for m in cat.list("lora")}
    kinds = {"locon": 0, "zip": 0, "off": 0}
    for r in raw:
        send = r.get("sd_name_in_api") or r.get("model_name") or r.get("sd_name")
        is_zip = any(
            str(r.get(k) or "").lower().endswith(".zip") for k in ("sd_name", "sd_name_in_api", "model_name")
        )
        if r["status"] != 1 or is_zip:
            kinds["zip" if is_zip else "off"] += 1
            assert send not in names, r
        elif r["type"]["name"] == "locon":
            kinds["locon"] += 1
            assert send in names, r
    assert all(kinds.values()), f"the sandbox should serve each trap at least once: {kinds}"
    assert not any(n.lower().endswith(".zip") for n in names)
    with PPInfraClient(api_key=api_key, base_url=sandbox.base_url) as client:
        ckpts = client.list_models_raw("checkpoint")
    fams = {}
    for r in ckpts:
        m = to_model_info(r, "checkpoint")
        if m is not None:
            fams.setdefault(r["base_model"], set()).add(m.family)
    assert fams.get("Pony") == {"sdxl"} and fams.get("SD 1.5") == {"sd15"}
    assert fams.get("SD 2.1") == {None} and fams.get("Flux.1 D") == {None}


def test_sandbox_serves_every_documented_name(sandbox, api_key, tmp_path):
    cat = ModelCatalog(
        lambda: PPInfraClient(api_key=api_key, base_url=sandbox.base_url),
        cache_dir=str(tmp_path),
        base_url=sandbox.base_url,
    )
    for model_type, names in DOCUMENTED_NAMES.items():
        listed = {m.name for m in cat.list(model_type)}
        assert names <= listed, (model_type, sorted(names - listed))


def test_no_family_warning_when_unsure(isolated_env, monkeypatch):
    pack = load_pack()
    import sys

    img2img = sys.modules[pack.__name__ + ".nodes.img2img"]
    from ppinfra.request import Lora

    cat = ModelCatalog(None, cache_dir=str(isolated_env / "cache"))
    raw = [
        {"sd_name": n, "status": 1, "base_model": b}
        for n, b in (
            ("sd21.safetensors", "SD 2.1"),
            ("flux.safetensors", "Flux.1 D"),
            ("pony.safetensors", "Pony"),
            ("sd15.safetensors", "SD 1.5"),
        )
    ]
    cat._write_cache("checkpoint", [to_model_info(r, "checkpoint") for r in raw])
    loras = [
        {"sd_name_in_api": n, "status": 1, "base_model": b}
        for n, b in (("l15", "SD 1.5"), ("lxl", "Illustrious"), ("lun", "Other"))
    ]
    cat._write_cache("lora", [to_model_info(r, "lora") for r in loras])

    def warn(ckpt, lora):
        return img2img.family_warnings(ckpt, [Lora(lora, 0.5)], [], [], None)

    assert warn("pony.safetensors", "l15") and warn("sd15.safetensors", "lxl")  # the check still works
    for ckpt, lora in (
        ("sd21.safetensors", "l15"),
        ("flux.safetensors", "lxl"),
        ("pony.safetensors", "lun"),
        ("sd15.safetensors", "lun"),
        ("not-listed.safetensors", "l15"),
        ("pony.safetensors", "nope"),
    ):
        assert warn(ckpt, lora) == [], (ckpt, lora)
    assert warn("pony.safetensors", "lxl") == []


# ---------------------------------------------------------------- one cache file per host


def test_cache_file_is_per_host_and_follows_the_config_file(isolated_env, monkeypatch):
    cache = str(isolated_env / "cache")
    path = lambda **k: ModelCatalog(None, cache_dir=cache, **k).cache_path()
    default = path()
    assert path(base_url="https://api.ppinfra.com/") == default == path(base_url="HTTPS://API.PPINFRA.COM")
    assert path(base_url="https://api.novita.ai") != default
    assert path(base_url="ppio") == path(base_url="https://api.ppio.com") != default
    (isolated_env / "config.json").write_text(
        json.dumps({"api_key": "sk-x", "base_url": "https://api.novita.ai"})
    )
    assert path() == path(base_url="https://api.novita.ai")  # the config file's host, not the default
    other = isolated_env / "other.json"
    other.write_text(json.dumps({"base_url": "https://api.ppio.com"}))
    assert path(config_path=str(other)) == path(base_url="https://api.ppio.com")
    monkeypatch.setenv("PPINFRA_BASE_URL", "https://api.ppinfra.com")
    assert path() == default  # the variable wins over the file, as in the client's settings


def test_models_sandbox_leaves_no_cache_file(isolated_env, capsys):
    from ppinfra import cli

    cache = isolated_env / "cache"
    for _ in range(2):
        assert cli.main(["models", "--sandbox", "--type", "controlnet"]) == 0
    out = capsys.readouterr().out
    assert "controlnet-canny-sdxl-1.0\tsdxl" in out
    assert not cache.exists() or os.listdir(cache) == []


def test_a_memory_only_catalog_never_touches_the_disk(tmp_path):
    ModelCatalog(None, cache_dir=str(tmp_path), base_url="https://x.example")._write_cache(
        "lora", [ModelInfo("on-disk", "lora", False)]
    )
    before = sorted(os.listdir(tmp_path))
    mem = ModelCatalog(None, cache_dir=str(tmp_path), base_url="https://x.example", persist=False)
    assert mem.names("lora") == ["add_detail_44319"]  # the bundled list, not the file
    first = mem.version()
    mem._write_cache("lora", [ModelInfo("in-memory", "lora", False)])
    assert mem.names("lora") == ["in-memory"] and mem.version() != first
    assert sorted(os.listdir(tmp_path)) == before


# ---------------------------------------------------------------- scale


class CountingCatalog(ModelCatalog):
    reads = 0

    def _read_cache(self):
        CountingCatalog.reads += 1
        return super()._read_cache()


def _big(model_type: str, n: int, start: int = 0):
    bases = ["SD 1.5", "SDXL 1.0", "Pony", "SD 2.1"]
    return [
        ModelInfo(
            f"{model_type}_{i:05d}.safetensors",
            model_type,
            None,
            base_model=bases[i % 4],
            sd_name=f"{model_type}_{i:05d}.safetensors",
            tags=("Anime",) if i % 10 == 0 else ("photo",),
        )
        for i in range(start, start + n)
    ]


def test_lookups_scale_and_parse_the_cache_once_per_change(tmp_path):
    writer = ModelCatalog(None, cache_dir=str(tmp_path), base_url="https://api.ppinfra.com")
    writer._write_cache("checkpoint", _big("checkpoint", 30_000))
    writer._write_cache("lora", _big("lora", 20_000))
    writer._write_cache("textualinversion", _big("textualinversion", 3_000))
    cat = CountingCatalog(None, cache_dir=str(tmp_path), base_url="https://api.ppinfra.com")
    CountingCatalog.reads = 0
    for _ in range(50):
        names = cat.names("checkpoint")
        assert cat.info("lora", "lora_12346.safetensors").base_model == "Pony"
        cat.search("lora", "ANIME", limit=5)
    assert CountingCatalog.reads == 1
    assert len(names) == 30_000 and names == sorted(names, key=str.lower)
    assert (
        len(cat.names("checkpoint", family="sdxl")) == 30_000 // 2 + 30_000 // 4
    )  # SDXL, Pony, SD 2.1 (unsure)
    assert cat.info("lora", "missing") is None
    total, page = cat.search("lora", "anime", limit=10, offset=20)
    assert total == 2_000 and len(page) == 10 and page[0].name == "lora_00200.safetensors"
    total, _ = cat.search("lora", "anime", family="sd15")
    assert total == 1_000  # the anime entries (every tenth) are SD 1.5 or Pony: the SD 1.5 half
    assert cat.search("checkpoint", "checkpoint_29999")[1][0].name == "checkpoint_29999.safetensors"
    # Another process rewrites the file: the next call sees it, parsing once more.
    time.sleep(0.01)
    ModelCatalog(None, cache_dir=str(tmp_path), base_url="https://api.ppinfra.com")._write_cache(
        "checkpoint", _big("checkpoint", 10, start=90_000)
    )
    assert cat.names("checkpoint")[0] == "checkpoint_90000.safetensors"
    cat.names("checkpoint")
    assert CountingCatalog.reads == 2


# ---------------------------------------------------------------- names the pack ships


def _example_model_values():
    """(file, node type, input, type, value) of every model-name input of every example.

    Read from the API copies: tests/docs/test_examples.py proves each equals its UI workflow.
    """
    model_inputs = {
        ("PPInfraImg2Img", "model_name"): "checkpoint",
        ("PPInfraImg2Img", "sd_vae"): "vae",
        ("PPInfraControlNetUnit", "model_name"): "controlnet",
        ("PPInfraEmbedding", "model_name"): "textualinversion",
        **{("PPInfraLoraStack", f"lora_{i}"): "lora" for i in range(1, 6)},
    }
    api_dir = os.path.join(EXAMPLES_DIR, "api")
    out = []
    for name in sorted(os.listdir(api_dir)):
        with open(os.path.join(api_dir, name), encoding="utf-8") as fh:
            api = json.load(fh)
        for node in api.values():
            for field, value in node["inputs"].items():
                model_type = model_inputs.get((node["class_type"], field))
                if model_type:
                    out.append((name, node["class_type"], field, model_type, value))
    return out


def test_examples_and_fallback_name_only_documented_models():
    values = _example_model_values()
    assert {v[1] for v in values} >= {"PPInfraImg2Img", "PPInfraControlNetUnit", "PPInfraLoraStack"}
    for name, node, field, model_type, value in values:
        if field == "sd_vae":
            assert value == "None", (name, "sd_vae must stay unset: no VAE name is documented")
        elif node == "PPInfraLoraStack" and value == "None":
            continue
        else:
            assert value in DOCUMENTED_NAMES[model_type], (name, node, field, value)
    for model_type, items in FALLBACK_MODELS.items():
        assert {n for n, _ in items} <= DOCUMENTED_NAMES[model_type], model_type
    assert not DOCUMENTED_NAMES["vae"] and not FALLBACK_MODELS["vae"]
