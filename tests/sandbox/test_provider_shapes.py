"""The sandbox speaks per provider: Novita's model-list shape by default, PPInfra's as ppinfra/ppio.

The provider's own Python SDK (novita-client, not a CI dependency: the SDK
tests skip without it) must list and filter models from the default sandbox,
as it does from api.novita.ai.
"""

from __future__ import annotations

import pytest
import requests

from helpers import SANDBOX_KEY
from ppinfra.sandbox.catalog import SDXL_FAMILY

AUTH = {"Authorization": f"Bearer {SANDBOX_KEY}"}
NOVITA_FIELDS = {
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


def page(srv, **params):
    r = requests.get(
        srv.base_url + "/v3/model", headers=AUTH, timeout=10, params={"pagination.limit": 100, **params}
    )
    assert r.status_code == 200, r.text
    return r.json()["models"]


def test_novita_shape_is_the_default(sandbox):
    assert sandbox.provider == "novita"
    models = page(sandbox, **{"filter.types": "checkpoint"}) + page(sandbox, **{"filter.types": "lora"})
    for m in models:
        assert NOVITA_FIELDS <= set(m) and "model_name" not in m, m
        if "is_sdxl" in m:  # missing on some entries, as on the real list: derive it from base_model
            assert m["is_sdxl"] == (m["base_model"] in SDXL_FAMILY)
    assert any("is_sdxl" in m for m in models) and any("is_sdxl" not in m for m in models)


@pytest.mark.parametrize("provider", ["ppinfra", "ppio"])
def test_ppinfra_shape_as_ppinfra_and_ppio(make_sandbox, provider):
    srv = make_sandbox(provider=provider)
    models = page(srv, **{"filter.types": "checkpoint"}) + page(srv, **{"filter.types": "lora"})
    for m in models:
        assert "model_name" in m and not {"sd_name", "sd_name_in_api", "is_sdxl"} & set(m), m
        assert NOVITA_FIELDS - {"sd_name", "sd_name_in_api"} <= set(m)
    assert "dreamshaper_8_93211.safetensors" in {m["model_name"] for m in models}
    assert "add_detail_44319" in {m["model_name"] for m in models}  # a LoRA's name to send, not its file


def test_provider_can_change_while_running_and_is_checked(make_sandbox):
    srv = make_sandbox()
    srv.configure(provider="ppio")
    assert "model_name" in page(srv, **{"filter.types": "vae"})[0]
    with pytest.raises(ValueError):
        srv.configure(provider="ppinfra.com")
    with pytest.raises(ValueError):
        make_sandbox(provider="openai")


# ---------------------------------------------------------------- the provider's own SDK


def test_provider_sdk_lists_and_filters_models(make_sandbox, novita_client):
    srv = make_sandbox(
        strict=False
    )  # the SDK builds c_<offset> cursors and sends True/False: lenient, as the service
    client = novita_client.NovitaClient(SANDBOX_KEY, base_url=srv.base_url)
    listed = client.models_v3()
    checkpoints, loras = listed.filter_by_type("checkpoint"), listed.filter_by_type("lora")
    assert len(listed) == len(srv.catalog.models)
    assert len(checkpoints) == srv.catalog.count("checkpoint") and len(loras) >= 100
    assert listed.get_by_sd_name("dreamshaper_8_93211.safetensors").type.name == "checkpoint"
    assert "add_detail_44319" in {m.sd_name_in_api for m in loras}
    available = listed.filter_by_available(True)
    assert 0 < len(available) < len(listed)  # status 0 entries are listed and filtered out
    sdxl = client.query_model_v3(is_sdxl=True, limit=100)
    assert sdxl.models and all(m.base_model in SDXL_FAMILY for m in sdxl.models)
    private = client.query_model_v3(visibility="private", limit=100)
    assert private.models and {m.visibility for m in private.models} == {"private"}


def test_provider_sdk_cannot_read_ppinfras_shape(make_sandbox, novita_client):
    """Why Novita's shape is never mixed with PPInfra's: the SDK's parser needs sd_name on every entry."""
    srv = make_sandbox(strict=False, provider="ppinfra")
    with pytest.raises(Exception, match="sd_name"):
        novita_client.NovitaClient(SANDBOX_KEY, base_url=srv.base_url).models_v3()
