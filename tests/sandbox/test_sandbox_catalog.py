"""The sandbox's model list looks like the docs' sample, filters like the real one and scales to its size."""

from __future__ import annotations

import math
import re
import time

import pytest
import requests

from helpers import SANDBOX_KEY
from ppinfra.sandbox import SandboxServer
from ppinfra.sandbox.catalog import SDXL_FAMILY, WELL_KNOWN, Catalog, send_name
from helpers import documented

MODELS, SUBMIT = "/v3/model", "/v3/async/img2img"
AUTH = {"Authorization": f"Bearer {SANDBOX_KEY}"}
DOCUMENTED = {
    "checkpoint": [
        "dreamshaper_8_93211.safetensors",
        "realisticVisionV51_v51VAE_94301.safetensors",
        "epicrealism_naturalSin_121250.safetensors",
        "darkSushiMixMix_225D_64380.safetensors",
        "sd_xl_base_1.0.safetensors",
    ],
    "lora": ["add_detail_44319"],
    "controlnet": [
        "controlnet-canny-sdxl-1.0",
        "controlnet-depth-sdxl-1.0",
        "controlnet-openpose-sdxl-1.0",
        "controlnet-softedge-sdxl-1.0",
    ],
}


def models(srv, **params):
    return requests.get(srv.base_url + MODELS, params=params, headers=AUTH, timeout=10)


def every(srv, model_type, **params):
    out, cursor = [], ""
    while True:
        data = requests.get(
            srv.base_url + MODELS,
            headers=AUTH,
            timeout=10,
            params={
                "filter.types": model_type,
                "pagination.limit": 100,
                "pagination.cursor": cursor,
                **params,
            },
        ).json()
        out += data["models"]
        cursor = data["pagination"]["next_cursor"]
        if not cursor:
            return out


def test_entries_look_like_the_docs_sample(sandbox):
    checkpoints = every(sandbox, "checkpoint")
    loras = every(sandbox, "lora")
    for m in checkpoints + loras:
        assert re.fullmatch(r"[0-9A-F]{10}", m["hash_sha256"]), m
        assert m["base_model_type"] in ("Standard", "Inpainting") and m["categories"] == []
        assert "download_url_ttl" in m and m["status"] in (0, 1)
        assert not m["name"].endswith((".safetensors", ".pt"))  # a civitai version name, not the file
    by_name = {send_name(m): m for m in checkpoints}
    assert by_name["dreamshaper_8_93211.safetensors"]["name"] == "8"
    assert any(m["base_model_type"] == "Inpainting" for m in checkpoints)
    for model_type, names in DOCUMENTED.items():
        listed = {send_name(m): m for m in every(sandbox, model_type)}
        assert set(names) <= set(listed) and all(listed[n]["status"] == 1 for n in names)


def test_the_traps_a_client_must_handle_are_there(sandbox):
    checkpoints, loras = every(sandbox, "checkpoint"), every(sandbox, "lora")
    embeddings = every(sandbox, "textualinversion")
    bases = {m["base_model"] for m in checkpoints}
    assert {
        "SD 1.5",
        "SDXL 1.0",
        "Pony",
        "Illustrious",
        "NoobAI",
        "SDXL Turbo",
        "SDXL Lightning",
        "SD 2.1",
        "Flux.1 D",
    } <= bases
    assert any(m["type"]["name"] == "locon" for m in loras)
    assert any(m["status"] == 0 for m in checkpoints) and any(m["status"] == 0 for m in loras)
    assert any(m.get("sd_name", "").endswith(".zip") for m in loras)
    assert any(send_name(m).endswith(".pt") for m in embeddings)
    assert any("is_sdxl" not in m and "sd_name" in m for m in checkpoints)
    # As Novita (the default) no entry comes in PPInfra's shape: the provider's SDK cannot parse one.
    assert all(
        "sd_name" in m and "sd_name_in_api" in m and "model_name" not in m for m in checkpoints + loras
    )


@pytest.mark.parametrize("provider", ["ppinfra", "ppio"])
def test_as_ppinfra_every_entry_has_ppinfras_shape_and_the_same_traps(make_sandbox, provider):
    srv = make_sandbox(provider=provider)
    checkpoints, loras = every(srv, "checkpoint"), every(srv, "lora")
    novita = {m["id"]: m for m in every(make_sandbox(), "checkpoint") + every(make_sandbox(), "lora")}
    assert [m["id"] for m in checkpoints + loras] == list(novita)
    for m in checkpoints + loras:
        assert "sd_name" not in m and "sd_name_in_api" not in m and "is_sdxl" not in m, m
        assert m["model_name"] == send_name(novita[m["id"]])
        assert {k: v for k, v in m.items() if k != "model_name"} == {
            k: v for k, v in novita[m["id"]].items() if k not in ("sd_name", "sd_name_in_api", "is_sdxl")
        }
    assert any(m["status"] == 0 for m in checkpoints) and any(m["type"]["name"] == "locon" for m in loras)
    assert any(m["model_name"].endswith(".zip") for m in loras)


@pytest.mark.parametrize("provider", ["novita", "ppinfra"])
def test_submit_refuses_unavailable_and_archive_entries_but_takes_locon(make_sandbox, provider):
    srv = make_sandbox(provider=provider)
    checkpoints, loras = every(srv, "checkpoint"), every(srv, "lora")
    unavailable = next(send_name(m) for m in checkpoints if m["status"] == 0)
    archive = next(send_name(m) for m in loras if send_name(m).endswith(".zip"))
    locon = next(send_name(m) for m in loras if m["type"]["name"] == "locon" and m["status"] == 1)
    usable = next(send_name(m) for m in checkpoints[20:] if m["status"] == 1)
    for body, text in (
        (documented(model_name=unavailable), "unavailable (status 0)"),
        (documented(loras=[{"model_name": archive, "strength": 0.5}]), "an archive (.zip)"),
    ):
        r = requests.post(srv.base_url + SUBMIT, json=body, headers=AUTH, timeout=10)
        assert r.status_code == 400 and text in r.json()["message"]
    for body in (documented(loras=[{"model_name": locon, "strength": 0.5}]), documented(model_name=usable)):
        assert requests.post(srv.base_url + SUBMIT, json=body, headers=AUTH, timeout=10).status_code == 200


def test_query_searches_sd_name_name_and_tags(sandbox):
    def names(text, model_type="checkpoint"):
        return {m["id"] for m in every(sandbox, model_type, **{"filter.query": text})}

    everything = every(sandbox, "checkpoint")
    assert (
        names("DREAMSHAPER_8")
        == {m["id"] for m in everything if "dreamshaper_8" in send_name(m).lower()}
        != set()
    )
    assert names("natural sin rc1") == {
        m["id"] for m in everything if m["sd_name"].startswith("epicrealism_") and "Natural Sin" in m["name"]
    }
    tagged = names("landscape")
    assert tagged == {m["id"] for m in everything if "landscape" in m["tags"]} and tagged
    assert names("no-such-thing-anywhere") == set()


@pytest.mark.parametrize(
    "key,value,check",
    [
        ("filter.source", "civitai", lambda m: m["source"] == "civitai"),
        ("filter.source", "training", lambda m: m["source"] == "training"),
        ("filter.source", "uploading", lambda m: m["source"] == "uploading"),
        ("filter.visibility", "private", lambda m: m["visibility"] == "private"),
        ("filter.is_inpainting", "true", lambda m: m["base_model_type"] == "Inpainting"),
        ("filter.is_sdxl", "true", lambda m: m["base_model"] in SDXL_FAMILY),
    ],
)
def test_filters(make_sandbox, key, value, check):
    srv = make_sandbox(catalog_size=2000)
    everything = every(srv, "checkpoint")
    picked = every(srv, "checkpoint", **{key: value})
    assert picked and [m["id"] for m in picked] == [m["id"] for m in everything if check(m)]


@pytest.mark.parametrize(
    "params",
    [
        {"filter.source": "github"},
        {"pagination.limit": "0"},
        {"pagination.limit": "101"},
        {"filter.visibility": "everyone"},
    ],
)
def test_filter_values_outside_the_page_are_refused_in_both_modes(make_sandbox, params):
    for strict in (False, True):
        r = requests.get(
            make_sandbox(strict=strict).base_url + MODELS, params=params, headers=AUTH, timeout=5
        )
        assert r.status_code == 400 and r.json()["reason"] == "INVALID_REQUEST_BODY"


def test_a_catalog_as_large_as_the_real_one_builds_and_pages_fast():
    # CPU time of this thread: other processes on a shared machine cannot make it flaky.
    t0 = time.thread_time()
    big = Catalog({"checkpoint": 30000, "lora": 20000, "textualinversion": 3000})
    built = time.thread_time() - t0
    assert (
        big.count("checkpoint") == 30000
        and big.count("lora") == 20000
        and big.count("textualinversion") == 3000
    )
    assert len({m["id"] for m in big.models}) == len(big.models)
    assert built < 2.0, f"building 53,000 entries took {built:.2f} s"
    # The mechanism that keeps paging fast: one filtered list per filter set, reused for every page.
    first = big.query(["lora"], is_sdxl=True)
    assert big.query(["lora"], is_sdxl=True) is first


def test_paging_through_20000_loras_over_http(make_sandbox):
    srv = make_sandbox(catalog_sizes={"lora": 20000})
    t0 = time.perf_counter()
    loras = every(srv, "lora")
    took = time.perf_counter() - t0
    assert len(loras) == 20000 == len({m["id"] for m in loras})
    assert took < 30, f"200 pages took {took:.1f} s"


# ------------------------------------------------------- paging, filters, errors (moved from test_sandbox.py)


def test_paging_through_every_checkpoint(sandbox):
    seen, cursor, pages = [], "", 0
    while True:
        data = models(
            sandbox, **{"filter.types": "checkpoint", "pagination.limit": 50, "pagination.cursor": cursor}
        ).json()
        seen += data["models"]
        pages += 1
        cursor = data["pagination"]["next_cursor"]
        if not cursor:
            break
    assert pages == math.ceil(260 / 50) and len(seen) == 260 == len({m["id"] for m in seen})
    assert {m["type"]["name"] for m in seen} == {"checkpoint"}
    assert set(WELL_KNOWN["checkpoint"]) <= {send_name(m) for m in seen}
    assert len(models(sandbox, **{"filter.types": "checkpoint"}).json()["models"]) == 20  # default page


def test_model_filters_and_traps(sandbox):
    xl = models(
        sandbox, **{"filter.types": "checkpoint", "filter.is_sdxl": "true", "pagination.limit": 100}
    ).json()
    sd = models(
        sandbox, **{"filter.types": "checkpoint", "filter.is_sdxl": "false", "pagination.limit": 100}
    ).json()
    assert all(m["base_model"] in SDXL_FAMILY for m in xl["models"])
    assert not any(m["base_model"] in SDXL_FAMILY for m in sd["models"])
    assert {"SDXL 1.0", "Pony"} <= {m["base_model"] for m in xl["models"]}
    assert {"SD 1.5", "Flux.1 D"} <= {m["base_model"] for m in sd["models"]}
    assert any("is_sdxl" not in m for m in xl["models"] + sd["models"])  # clients must derive it
    assert "sd_xl_base_1.0.safetensors" in {send_name(m) for m in xl["models"]}
    lora = models(sandbox, **{"filter.types": "lora", "filter.query": "ADD_detail_44319"}).json()["models"]
    assert [(m["sd_name_in_api"], m["sd_name"]) for m in lora] == [
        ("add_detail_44319", "add_detail_44319.safetensors")
    ]
    fields = {
        "id",
        "name",
        "sd_name",
        "sd_name_in_api",
        "type",
        "status",
        "base_model",
        "base_model_type",
        "tags",
        "categories",
        "cover_url",
        "source",
        "visibility",
        "is_nsfw",
        "hash_sha256",
        "download_url",
        "download_url_ttl",
    }
    assert fields <= set(lora[0])


@pytest.mark.parametrize(
    "params",
    [
        {"pagination.limit": "0"},
        {"pagination.limit": "101"},
        {"filter.types": "model"},
        {"filter.is_sdxl": "yes"},
        {"pagination.cursor": "made-up"},
    ],
)
def test_model_query_errors(sandbox, params):
    r = models(sandbox, **params)
    assert r.status_code == 400 and r.json()["reason"] == "INVALID_REQUEST_BODY"


def test_cursor_is_bound_to_its_filters(sandbox):
    cursor = models(sandbox, **{"filter.types": "lora"}).json()["pagination"]["next_cursor"]
    assert models(sandbox, **{"filter.types": "lora", "pagination.cursor": cursor}).status_code == 200
    assert models(sandbox, **{"filter.types": "vae", "pagination.cursor": cursor}).status_code == 400


def test_context_manager_and_catalog_size():
    with SandboxServer(api_keys=["k"], catalog_size=30) as srv:
        r = requests.get(
            srv.base_url + MODELS,
            params={"filter.types": "checkpoint", "pagination.limit": 100},
            headers={"Authorization": "Bearer k"},
            timeout=5,
        )
        assert len(r.json()["models"]) == 30
    with pytest.raises(requests.ConnectionError):
        requests.get(srv.base_url + "/", timeout=2)  # stopped: the port is closed
