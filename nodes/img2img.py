"""PPInfra Img2Img: the node that turns its inputs into img2img requests and returns the result images."""

from __future__ import annotations

from dataclasses import replace

from ..ppinfra.errors import ValidationError
from ..ppinfra.img2img_request import ControlNetUnit, Img2ImgRequest, IPAdapter

from . import generation as gen
from . import widgets as options
from .generation import family_warnings
from .links import CONTROLNET, IP_ADAPTER, MATCH_INPUT, ControlNetSpec, IPAdapterSpec, as_chain

ENDPOINT = "img2img"


class PPInfraImg2Img(gen.GenerationNode):
    ENDPOINT = ENDPOINT  # the endpoint it calls (ppinfra/endpoints.py): routes and price read it
    DESCRIPTION = (
        "Image-to-image on PPInfra: sends each image of the input batch, with the prompt and the "
        "optional ControlNet units, LoRAs, embeddings and IP-Adapter, to the PPInfra img2img API, "
        "and returns image_num results per input image in input order. The API key is pasted in the "
        "editor's settings (Settings > PPInfra) or comes from the PPINFRA_API_KEY environment "
        "variable; never from a widget."
    )
    OUTPUT_TOOLTIPS = (
        "The results: image_num per input image, in input order.",
        gen.SEED_OUTPUT_TOOLTIP,
        "JSON with task ids, seeds, timings and the request sent (images and key left out).",
    )

    @classmethod
    def required_inputs(cls) -> dict:
        size = "{} in pixels; 0 = the input image's size (scaled to fit 2048, snapped to 8, at least 128)."
        return {
            "image": gen.image_batch_input(),
            **gen.prompt_inputs(ENDPOINT, negative_note="May be empty."),
            "width": options.int_input(
                "request.width", size.format("Result width"), min=MATCH_INPUT, default=MATCH_INPUT
            ),
            "height": options.int_input(
                "request.height", size.format("Result height"), min=MATCH_INPUT, default=MATCH_INPUT
            ),
            **gen.sampling_inputs(ENDPOINT),
            "strength": options.float_input("request.strength"),
            **gen.model_tail_inputs(ENDPOINT),
        }

    @classmethod
    def optional_inputs(cls) -> dict:
        return {
            "controlnet": (CONTROLNET, {"tooltip": "ControlNet units from PPInfra ControlNet Unit nodes."}),
            **gen.chain_inputs(),
            "ip_adapter": (IP_ADAPTER, {"tooltip": "The IP-Adapter from a PPInfra IP-Adapter node."}),
        }

    def prepare(self, image, controlnet=None, ip_adapter=None, **widgets):
        from . import runner

        template = build_template(**widgets)
        units = as_chain(controlnet, ControlNetSpec, "controlnet")
        if ip_adapter is not None and not isinstance(ip_adapter, IPAdapterSpec):
            raise ValidationError(
                "ip_adapter", "the output of a PPInfra IP-Adapter node", type(ip_adapter).__name__
            )
        if image is None:
            raise ValidationError("image", "an IMAGE", None)
        template = replace(
            template,
            controlnet_units=tuple(
                ControlNetUnit(
                    model_name=u.model_name,
                    image_base64=None,
                    strength=u.strength,
                    preprocessor=u.preprocessor,
                    guidance_start=u.guidance_start,
                    guidance_end=u.guidance_end,
                )
                for u in units
            ),
            ip_adapters=()
            if ip_adapter is None
            else (
                IPAdapter(model_name=ip_adapter.model_name, image_base64=None, strength=ip_adapter.strength),
            ),
        )
        images = {"request.image_base64": image}
        images.update({f"request.controlnet.units[{k}].image_base64": u.image for k, u in enumerate(units)})
        if ip_adapter is not None:
            images["request.ip_adapters[0].image_base64"] = ip_adapter.image
        job = runner.Job(template=template, images=images)
        runner.check_pairing(runner.batch_size(image), dict(list(images.items())[1:]))
        warnings = family_warnings(
            template.model_name, template.loras, template.embeddings, units, ip_adapter
        )
        return job, warnings


# --------------------------------------------------------------------------- helpers


def build_template(*, negative_prompt, width, height, strength, **widgets) -> Img2ImgRequest:
    """The request without images, every widget checked against its limit (nothing is sent yet).

    ``VALIDATE_INPUTS`` names model inputs (so ComfyUI skips its own checks for
    them) and linked values skip validation altogether: everything is checked
    by the binder, once, as a template (width/height 0 mean the input's size).
    The other widgets are :func:`generation.shared_fields`'.
    """
    template = Img2ImgRequest(
        **gen.shared_fields(**widgets),
        image_base64=None,
        width=width,
        height=height,
        negative_prompt=negative_prompt,
        strength=strength,
    )
    return template  # checked once, with its side units, by the binder (ppinfra/binding.py)
