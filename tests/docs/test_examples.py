"""Every example workflow against the nodes' own definitions.

ComfyUI's editor applies ``widgets_values`` by position without a warning, so a
list shifted by one silently loads values into the wrong inputs; a dropdown
value that is not an option is kept as loaded and only fails at queue time.
These checks (tests/docs/example_checker.py) are the only thing that catches
either before a user does. The ``pack`` fixture (tests/docs/conftest.py) is the
pack loaded as ComfyUI loads it. tests/nodes/test_examples_run.py runs the
templates against the sandbox; tests/editor/test_real_comfyui_templates.py queues
them in a real ComfyUI.
"""

from __future__ import annotations

import copy
import os

import pytest

from docs.example_checker import (
    EXAMPLES,
    REQUIRED_EXAMPLES,
    api_problems,
    check_workflow,
    example_names,
    family_problems,
    read,
)


def test_required_examples_exist():
    assert REQUIRED_EXAMPLES <= set(example_names())


@pytest.mark.parametrize("name", example_names())
def test_example_matches_node_definitions(pack, name):
    problems = check_workflow(pack, read(os.path.join(EXAMPLES, name + ".json")))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", example_names())
def test_example_has_thumbnail(name):
    from PIL import Image

    path = os.path.join(EXAMPLES, name + ".jpg")
    assert os.path.isfile(path), f"ComfyUI's template browser asks for exactly {name}.jpg"
    with Image.open(path) as im:
        assert im.format == "JPEG"


@pytest.mark.parametrize("name", example_names())
def test_api_copy_matches(pack, name):
    api_path = os.path.join(EXAMPLES, "api", name + ".json")
    assert os.path.isfile(api_path), f"example_workflows/api/{name}.json is missing"
    problems = api_problems(pack, read(os.path.join(EXAMPLES, name + ".json")), read(api_path))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", example_names())
def test_example_keeps_one_model_family(name):
    problems = family_problems(read(os.path.join(EXAMPLES, name + ".json")))
    assert not problems, "\n".join(problems)


def test_sdxl_example_uses_sdxl_checkpoint():
    from ppinfra.sandbox import catalog

    wf = read(os.path.join(EXAMPLES, "sdxl.json"))
    sdxl = {n for n, x in getattr(catalog, "_WELL_KNOWN_SDXL", {}).get("checkpoint", []) if x}
    ckpts = [n["widgets_values"][0] for n in wf["nodes"] if n["type"] == "PPInfraImg2Img"]
    assert ckpts and all(c in sdxl for c in ckpts)


def test_batch_example_feeds_a_batch():
    wf = read(os.path.join(EXAMPLES, "batch.json"))
    assert {"ImageBatch", "RepeatImageBatch"} & {n["type"] for n in wf["nodes"]}


def test_api_format_is_queueable_shape():
    for name in example_names():
        api = read(os.path.join(EXAMPLES, "api", name + ".json"))
        for nid, entry in api.items():
            assert nid.isdigit() and set(entry) >= {"class_type", "inputs"}, (name, nid)


# The checker itself must be able to fail: each mutation below is a mistake a
# hand edit makes, and each must be reported.
def _mutations(wf):
    def shift(w):
        n = next(n for n in w["nodes"] if n["type"] == "PPInfraImg2Img")
        n["widgets_values"].insert(3, 512)

    def drop_control(w):
        n = next(n for n in w["nodes"] if n["type"] == "PPInfraImg2Img")
        n["widgets_values"].remove("fixed")

    def out_of_range(w):
        n = next(n for n in w["nodes"] if n["type"] == "PPInfraImg2Img")
        i = next(i for i, v in enumerate(n["widgets_values"]) if v == "fixed")
        n["widgets_values"][i + 1] = 5.0  # strength

    def bad_sampler(w):
        n = next(n for n in w["nodes"] if n["type"] == "PPInfraImg2Img")
        n["widgets_values"][n["widgets_values"].index("Euler a")] = "euler_ancestral"

    def bad_type(w):
        w["links"][0][5] = "LATENT"

    def dangling(w):
        w["links"].pop()

    def missing_key(w):
        del w["nodes"][0]["flags"]

    def unknown_node(w):
        w["nodes"][0]["type"] = "PPInfraImg2ImgOld"

    def null_id(w):
        w["id"] = None

    return [
        shift,
        drop_control,
        out_of_range,
        bad_sampler,
        bad_type,
        dangling,
        missing_key,
        unknown_node,
        null_id,
    ]


@pytest.mark.parametrize("index", range(9))
def test_checker_catches_mistakes(pack, index):
    wf = read(os.path.join(EXAMPLES, "img2img_basic.json"))
    assert not check_workflow(pack, wf)
    broken = copy.deepcopy(wf)
    _mutations(broken)[index](broken)
    assert check_workflow(pack, broken), _mutations(wf)[index].__name__


def test_inpainting_example_names_an_inpainting_checkpoint_the_sandbox_lists():
    """sd-v1-5-inpainting.ckpt is not a provider-documented name: the sandbox lists it as an
    inpainting checkpoint so the template runs as shipped; the client's documented and fallback
    lists keep provider-documented names only, and the note says the name is unconfirmed."""
    from ppinfra import model_info
    from ppinfra.sandbox.catalog import Catalog, ppinfra_entry

    wf = read(os.path.join(EXAMPLES, "inpainting_mask.json"))
    name = next(n["widgets_values"][0] for n in wf["nodes"] if n["type"] == "PPInfraInpaint")
    assert name == "sd-v1-5-inpainting.ckpt"
    assert "no provider page confirms it" in wf["extra"]["ppinfra_note"]
    model = Catalog().get("checkpoint", name)
    assert model and model["status"] == 1
    assert (model["base_model"], model["base_model_type"]) == ("SD 1.5", "Inpainting")
    assert ppinfra_entry(model)["model_name"] == name
    assert name not in model_info.DOCUMENTED_NAMES["checkpoint"]
    assert name not in {n for n, _ in model_info.DOCUMENTED_MODELS["checkpoint"]}
    assert name not in {n for n, _ in model_info.FALLBACK_MODELS["checkpoint"]}
