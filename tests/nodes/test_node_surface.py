"""The public surface that saved workflows depend on, frozen as a literal snapshot.

Node IDs, display names, input names in order with their types, output types
and names. ComfyUI's editor applies saved widget values by position, so a
reordered or renamed input silently breaks every saved workflow: change this
snapshot only together with a migration note in the CHANGELOG.

(The pack's import itself, light, offline and relative: test_pack_imports.py.)
"""

from __future__ import annotations

import inspect

import pytest

from helpers import load_pack

# (section, name, type); COMBO stands for a dropdown.
SNAPSHOT = {
    "PPInfraImg2Img": {
        "display": "PPInfra Img2Img",
        "inputs": [
            ("required", "image", "IMAGE"),
            ("required", "model_name", "COMBO"),
            ("required", "prompt", "STRING"),
            ("required", "negative_prompt", "STRING"),
            ("required", "width", "INT"),
            ("required", "height", "INT"),
            ("required", "image_num", "INT"),
            ("required", "steps", "INT"),
            ("required", "guidance_scale", "FLOAT"),
            ("required", "sampler_name", "COMBO"),
            ("required", "seed", "INT"),
            ("required", "strength", "FLOAT"),
            ("required", "clip_skip", "INT"),
            ("required", "sd_vae", "COMBO"),
            ("required", "response_image_type", "COMBO"),
            ("optional", "controlnet", "PPINFRA_CONTROLNET"),
            ("optional", "loras", "PPINFRA_LORAS"),
            ("optional", "embeddings", "PPINFRA_EMBEDDINGS"),
            ("optional", "ip_adapter", "PPINFRA_IP_ADAPTER"),
        ],
        "outputs": [("IMAGE", "images"), ("INT", "seed"), ("STRING", "info")],
    },
    "PPInfraControlNetUnit": {
        "display": "PPInfra ControlNet Unit",
        "inputs": [
            ("required", "image", "IMAGE"),
            ("required", "model_name", "COMBO"),
            ("required", "strength", "FLOAT"),
            ("required", "preprocessor", "COMBO"),
            ("required", "guidance_start", "FLOAT"),
            ("required", "guidance_end", "FLOAT"),
            ("optional", "controlnet", "PPINFRA_CONTROLNET"),
        ],
        "outputs": [("PPINFRA_CONTROLNET", "controlnet")],
    },
    "PPInfraLoraStack": {
        "display": "PPInfra LoRA Stack",
        "inputs": [
            ("required", "lora_1", "COMBO"),
            ("required", "strength_1", "FLOAT"),
            ("required", "lora_2", "COMBO"),
            ("required", "strength_2", "FLOAT"),
            ("required", "lora_3", "COMBO"),
            ("required", "strength_3", "FLOAT"),
            ("required", "lora_4", "COMBO"),
            ("required", "strength_4", "FLOAT"),
            ("required", "lora_5", "COMBO"),
            ("required", "strength_5", "FLOAT"),
            ("optional", "loras", "PPINFRA_LORAS"),
        ],
        "outputs": [("PPINFRA_LORAS", "loras")],
    },
    "PPInfraEmbedding": {
        "display": "PPInfra Embedding",
        "inputs": [
            ("required", "model_name", "COMBO"),
            ("optional", "embeddings", "PPINFRA_EMBEDDINGS"),
        ],
        "outputs": [("PPINFRA_EMBEDDINGS", "embeddings")],
    },
    "PPInfraIPAdapter": {
        "display": "PPInfra IP-Adapter",
        "inputs": [
            ("required", "image", "IMAGE"),
            ("required", "model_name", "COMBO"),
            ("required", "strength", "FLOAT"),
        ],
        "outputs": [("PPINFRA_IP_ADAPTER", "ip_adapter")],
    },
    "PPInfraTxt2Img": {
        "display": "PPInfra Txt2Img",
        "inputs": [
            ("required", "model_name", "COMBO"),
            ("required", "prompt", "STRING"),
            ("required", "negative_prompt", "STRING"),
            ("required", "width", "INT"),
            ("required", "height", "INT"),
            ("required", "image_num", "INT"),
            ("required", "steps", "INT"),
            ("required", "guidance_scale", "FLOAT"),
            ("required", "sampler_name", "COMBO"),
            ("required", "seed", "INT"),
            ("required", "clip_skip", "INT"),
            ("required", "sd_vae", "COMBO"),
            ("required", "response_image_type", "COMBO"),
            ("required", "hires_fix", "BOOLEAN"),
            ("required", "hires_target_width", "INT"),
            ("required", "hires_target_height", "INT"),
            ("required", "hires_strength", "FLOAT"),
            ("required", "hires_upscaler", "COMBO"),
            ("required", "refiner_switch_at", "FLOAT"),
            ("required", "restore_faces", "BOOLEAN"),
            ("required", "enable_transparent_background", "BOOLEAN"),
            ("optional", "loras", "PPINFRA_LORAS"),
            ("optional", "embeddings", "PPINFRA_EMBEDDINGS"),
        ],
        "outputs": [("IMAGE", "images"), ("INT", "seed"), ("STRING", "info")],
    },
    "PPInfraInpaint": {
        "display": "PPInfra Inpaint",
        "inputs": [
            ("required", "image", "IMAGE"),
            ("required", "mask", "MASK"),
            ("required", "model_name", "COMBO"),
            ("required", "prompt", "STRING"),
            ("required", "negative_prompt", "STRING"),
            ("required", "image_num", "INT"),
            ("required", "steps", "INT"),
            ("required", "guidance_scale", "FLOAT"),
            ("required", "sampler_name", "COMBO"),
            ("required", "seed", "INT"),
            ("required", "strength", "FLOAT"),
            ("required", "mask_blur", "INT"),
            ("required", "inpainting_full_res", "BOOLEAN"),
            ("required", "inpainting_full_res_padding", "INT"),
            ("required", "inpainting_mask_invert", "BOOLEAN"),
            ("required", "initial_noise_multiplier", "FLOAT"),
            ("required", "clip_skip", "INT"),
            ("required", "sd_vae", "COMBO"),
            ("required", "response_image_type", "COMBO"),
            ("optional", "loras", "PPINFRA_LORAS"),
            ("optional", "embeddings", "PPINFRA_EMBEDDINGS"),
        ],
        "outputs": [("IMAGE", "images"), ("INT", "seed"), ("STRING", "info")],
    },
    "PPInfraUpscale": {
        "display": "PPInfra Upscale",
        "inputs": [
            ("required", "image", "IMAGE"),
            ("required", "model_name", "COMBO"),
            ("required", "scale_factor", "FLOAT"),
            ("required", "response_image_type", "COMBO"),
        ],
        "outputs": [("IMAGE", "images"), ("STRING", "info")],
    },
}

# Widget ranges, defaults and fixed options (model lists vary and are not frozen).
WIDGETS = {
    ("PPInfraImg2Img", "width"): {"min": 0, "max": 2048, "default": 0},
    ("PPInfraImg2Img", "height"): {"min": 0, "max": 2048, "default": 0},
    ("PPInfraImg2Img", "image_num"): {"min": 1, "max": 8, "default": 1},
    ("PPInfraImg2Img", "steps"): {"min": 1, "max": 100, "default": 20},
    ("PPInfraImg2Img", "guidance_scale"): {"min": 1.0, "max": 30.0, "default": 7.5},
    ("PPInfraImg2Img", "seed"): {"min": -1, "max": 2**32 - 1, "default": -1, "control_after_generate": True},
    ("PPInfraImg2Img", "strength"): {"min": 0.01, "max": 1.0, "default": 0.75},
    ("PPInfraImg2Img", "clip_skip"): {"min": 0, "max": 12, "default": 0},
    ("PPInfraControlNetUnit", "strength"): {"min": 0.01, "max": 1.0, "default": 1.0},
    ("PPInfraControlNetUnit", "guidance_start"): {"min": 0.0, "max": 1.0, "default": 0.0},
    ("PPInfraControlNetUnit", "guidance_end"): {"min": 0.0, "max": 1.0, "default": 1.0},
    ("PPInfraIPAdapter", "strength"): {"min": 0.0, "max": 1.0, "default": 0.5},
    **{("PPInfraLoraStack", f"strength_{i}"): {"min": 0.0, "max": 1.0, "default": 0.8} for i in range(1, 6)},
    ("PPInfraTxt2Img", "width"): {"min": 128, "max": 2048, "default": 512},
    ("PPInfraTxt2Img", "height"): {"min": 128, "max": 2048, "default": 512},
    ("PPInfraTxt2Img", "image_num"): {"min": 1, "max": 8, "default": 1},
    ("PPInfraTxt2Img", "steps"): {"min": 1, "max": 100, "default": 20},
    ("PPInfraTxt2Img", "guidance_scale"): {"min": 1.0, "max": 30.0, "default": 7.5},
    ("PPInfraTxt2Img", "seed"): {"min": -1, "max": 2**32 - 1, "default": -1, "control_after_generate": True},
    ("PPInfraTxt2Img", "clip_skip"): {"min": 0, "max": 12, "default": 0},
    ("PPInfraTxt2Img", "hires_fix"): {"default": False},
    ("PPInfraTxt2Img", "hires_target_width"): {"min": 128, "max": 4096, "default": 1024},
    ("PPInfraTxt2Img", "hires_target_height"): {"min": 128, "max": 4096, "default": 1024},
    ("PPInfraTxt2Img", "hires_strength"): {"min": 0.0, "max": 1.0, "default": 0.5},
    ("PPInfraTxt2Img", "refiner_switch_at"): {"min": 0.0, "max": 1.0, "default": 0.0},
    ("PPInfraTxt2Img", "restore_faces"): {"default": False},
    ("PPInfraTxt2Img", "enable_transparent_background"): {"default": False},
    ("PPInfraInpaint", "image_num"): {"min": 1, "max": 8, "default": 1},
    ("PPInfraInpaint", "steps"): {"min": 1, "max": 100, "default": 20},
    ("PPInfraInpaint", "guidance_scale"): {"min": 1.0, "max": 30.0, "default": 7.5},
    ("PPInfraInpaint", "seed"): {"min": -1, "max": 2**32 - 1, "default": -1, "control_after_generate": True},
    ("PPInfraInpaint", "strength"): {"min": 0.0, "max": 1.0, "default": 1.0},
    ("PPInfraInpaint", "mask_blur"): {"min": 0, "max": 64, "default": 0},
    ("PPInfraInpaint", "inpainting_full_res"): {"default": False},
    ("PPInfraInpaint", "inpainting_full_res_padding"): {"min": 0, "max": 256, "default": 8},
    ("PPInfraInpaint", "inpainting_mask_invert"): {"default": False},
    ("PPInfraInpaint", "initial_noise_multiplier"): {"min": 0.0, "max": 1.5, "default": 0.5},
    ("PPInfraInpaint", "clip_skip"): {"min": 0, "max": 12, "default": 0},
    ("PPInfraUpscale", "scale_factor"): {"min": 1.01, "max": 4.0, "default": 2.0},
}

SAMPLERS = [
    "Euler a",
    "Euler",
    "LMS",
    "Heun",
    "DPM2",
    "DPM2 a",
    "DPM++ 2S a",
    "DPM++ 2M",
    "DPM++ SDE",
    "DPM fast",
    "DPM adaptive",
    "LMS Karras",
    "DPM2 Karras",
    "DPM2 a Karras",
    "DPM++ 2S a Karras",
    "DPM++ 2M Karras",
    "DPM++ SDE Karras",
    "DDIM",
    "PLMS",
    "UniPC",
]
PREPROCESSORS = [
    "scribble_hed",
    "softedge_hed",
    "scribble_hedsafe",
    "softedge_hedsafe",
    "depth_midas",
    "mlsd",
    "openpose",
    "openpose_face",
    "openpose_faceonly",
    "openpose_full",
    "openpose_hand",
    "dwpose",
    "scribble_pidinet",
    "softedge_pidinet",
    "scribble_pidsafe",
    "softedge_pidsafe",
    "normal_bae",
    "lineart_coarse",
    "lineart_realistic",
    "lineart_anime",
    "lineart",
    "depth_zoe",
    "shuffle",
    "mediapipe_face",
    "canny",
    "depth",
    "depth_leres",
    "depth_leres++",
]
FIXED_OPTIONS = {
    ("PPInfraImg2Img", "sampler_name"): (SAMPLERS, "Euler a"),
    ("PPInfraImg2Img", "response_image_type"): (["png", "webp", "jpeg"], "png"),
    ("PPInfraControlNetUnit", "preprocessor"): (["none", *PREPROCESSORS], "none"),
    ("PPInfraIPAdapter", "model_name"): (
        ["ip-adapter_sd15.bin", "ip-adapter_sdxl.bin"],
        "ip-adapter_sd15.bin",
    ),
    ("PPInfraTxt2Img", "sampler_name"): (SAMPLERS, "Euler a"),
    ("PPInfraTxt2Img", "response_image_type"): (["png", "webp", "jpeg"], "png"),
    ("PPInfraTxt2Img", "hires_upscaler"): (
        ["Latent", "RealESRGAN_x4plus_anime_6B", "RealESRNet_x4plus"],
        "Latent",
    ),
    ("PPInfraInpaint", "sampler_name"): (SAMPLERS, "Euler a"),
    ("PPInfraInpaint", "response_image_type"): (["png", "webp", "jpeg"], "png"),
    ("PPInfraUpscale", "model_name"): (
        ["RealESRGAN_x4plus_anime_6B", "RealESRNet_x4plus", "4x-UltraSharp"],
        "RealESRGAN_x4plus_anime_6B",
    ),
    ("PPInfraUpscale", "response_image_type"): (["png", "webp", "jpeg"], "png"),
}
# Dropdowns whose options come from the model list, and the entry they must start with (if any).
MODEL_DROPDOWNS = {
    ("PPInfraImg2Img", "model_name"): None,
    ("PPInfraImg2Img", "sd_vae"): "None",
    ("PPInfraControlNetUnit", "model_name"): None,
    ("PPInfraEmbedding", "model_name"): None,
    **{("PPInfraLoraStack", f"lora_{i}"): "None" for i in range(1, 6)},
    ("PPInfraTxt2Img", "model_name"): None,
    ("PPInfraTxt2Img", "sd_vae"): "None",
    ("PPInfraInpaint", "model_name"): None,
    ("PPInfraInpaint", "sd_vae"): "None",
}
# Remote-combo routes of the model inputs: the editor fetches the lists there, the model browser keys on them.
MODEL_ROUTES = {
    ("PPInfraImg2Img", "model_name"): "/ppinfra/models/checkpoint",
    ("PPInfraTxt2Img", "model_name"): "/ppinfra/models/checkpoint",
    ("PPInfraInpaint", "model_name"): "/ppinfra/models/checkpoint?inpainting=1",
    ("PPInfraInpaint", "sd_vae"): "/ppinfra/models/vae?with_none=1",
}


@pytest.fixture(scope="module")
def pack():
    return load_pack()


def surface(cls):
    types = cls.INPUT_TYPES()
    inputs = []
    for section in ("required", "optional"):
        for name, spec in (types.get(section) or {}).items():
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            inputs.append((section, name, kind))
    return inputs


def test_node_ids_and_display_names(pack):
    assert list(pack.NODE_CLASS_MAPPINGS) == list(SNAPSHOT)
    assert pack.NODE_DISPLAY_NAME_MAPPINGS == {k: v["display"] for k, v in SNAPSHOT.items()}


@pytest.mark.parametrize("node_id", list(SNAPSHOT))
def test_inputs_in_order(pack, node_id):
    assert surface(pack.NODE_CLASS_MAPPINGS[node_id]) == SNAPSHOT[node_id]["inputs"]


@pytest.mark.parametrize("node_id", list(SNAPSHOT))
def test_outputs(pack, node_id):
    cls = pack.NODE_CLASS_MAPPINGS[node_id]
    assert list(zip(cls.RETURN_TYPES, cls.RETURN_NAMES)) == SNAPSHOT[node_id]["outputs"]


@pytest.mark.parametrize("node_id", list(SNAPSHOT))
def test_category_description_tooltips_function(pack, node_id):
    cls = pack.NODE_CLASS_MAPPINGS[node_id]
    assert cls.CATEGORY == "PPInfra"
    assert isinstance(cls.DESCRIPTION, str) and len(cls.DESCRIPTION) > 40
    assert callable(getattr(cls(), cls.FUNCTION))
    types = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, spec in (types.get(section) or {}).items():
            assert len(spec) == 2 and spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
    if node_id in ("PPInfraImg2Img", "PPInfraTxt2Img", "PPInfraInpaint", "PPInfraUpscale"):
        assert inspect.iscoroutinefunction(getattr(cls, cls.FUNCTION)), "the main node must be async"
        assert types.get("hidden") == {"unique_id": "UNIQUE_ID"}


def test_widget_ranges_and_defaults(pack):
    for (node_id, name), want in WIDGETS.items():
        spec = pack.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()["required"][name][1]
        got = {k: spec.get(k) for k in want}
        assert got == want, f"{node_id}.{name}"


def test_fixed_dropdowns(pack):
    for (node_id, name), (opts, default) in FIXED_OPTIONS.items():
        spec = pack.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()["required"][name]
        assert spec[0] == opts and spec[1].get("default") == default, f"{node_id}.{name}"


def test_model_dropdowns_come_from_the_list(pack, isolated_env):
    for (node_id, name), first in MODEL_DROPDOWNS.items():
        spec = pack.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()["required"][name]
        opts = spec[0]
        # No VAE or embedding name is documented: those bundled lists are empty ("None" alone, or "").
        assert isinstance(opts, list) and len(opts) >= 1 and spec[1]["default"] in opts, f"{node_id}.{name}"
        if first is not None:
            assert opts[0] == first and opts.count(first) == 1
        else:
            assert "None" not in opts


def test_model_input_routes(pack):
    for (node_id, name), route in MODEL_ROUTES.items():
        spec = pack.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()["required"][name]
        assert spec[1]["remote"]["route"] == route, f"{node_id}.{name}"


def test_no_widget_can_hold_a_key(pack):
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        names = [n.lower() for s in ("required", "optional") for n in (cls.INPUT_TYPES().get(s) or {})]
        assert not any(word in n for n in names for word in ("key", "token", "secret", "auth")), node_id
