"""PPInfra Upscale: each image of the batch made ``scale_factor`` times larger by one upscale task
(Novita's host)."""

from __future__ import annotations

from ..ppinfra.errors import ValidationError
from ..ppinfra.limits import ENDPOINT_LIMITS, IMAGE_MAX_SIDE
from ..ppinfra.upscale_request import IMAGE, UpscaleRequest

from . import generation as gen
from . import widgets as options
from .links import CATEGORY

ENDPOINT = "upscale"
LIMITS = ENDPOINT_LIMITS[ENDPOINT]


class PPInfraUpscale:
    ENDPOINT = ENDPOINT  # the endpoint it calls (ppinfra/endpoints.py): routes and price read it
    DESCRIPTION = (
        "Upscale on PPInfra: sends each image of the input batch (each side at most 2048 px) to the "
        "upscale API and returns it scale_factor times larger, in input order. No prompt and no seed. "
        "Novita's host offers this endpoint; PPInfra's and PPIO's pages do not list it, and a 404 there "
        "says so. The API key comes from Settings > PPInfra or PPINFRA_API_KEY."
    )
    CATEGORY = CATEGORY
    FUNCTION = "upscale"
    # No seed output: the endpoint has no seed (a constant -1 would only look like one).
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("images", "info")
    OUTPUT_TOOLTIPS = (
        "The upscaled images, one per input image, in input order.",
        "JSON with task ids, timings and the request sent (images and key left out).",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        R, E = "request.", {"endpoint": ENDPOINT}
        return {
            "required": {
                "image": (
                    "IMAGE",
                    {
                        "tooltip": f"Input image(s), each side at most {IMAGE_MAX_SIDE} px. A batch of "
                        "B images runs B tasks."
                    },
                ),
                "model_name": options.enum_input(R + "model_name", **E),
                "scale_factor": options.float_input(R + "scale_factor", step=0.1, **E),
                "response_image_type": options.enum_input("extra.response_image_type", **E),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    async def upscale(self, image, model_name, scale_factor, response_image_type, unique_id=None):
        from . import runner

        node_id = None if unique_id is None else str(unique_id)
        template = UpscaleRequest(
            model_name=model_name,
            image_base64=None,
            scale_factor=scale_factor,
            response_image_type=response_image_type,
        )
        template.validate_fields(template=True)  # a linked scale_factor or model skipped ComfyUI's own checks
        check_input_size(image)
        job = runner.Job(template=template, images={IMAGE: image})
        result = await gen.run(job, node_id)
        from ..ppinfra.images import to_tensor

        return (to_tensor(result.images), gen.build_info(result, []))


def check_input_size(image) -> None:
    """Each side <= 2048 px, checked on the tensor: the encoder would otherwise downscale it without
    asking."""
    shape = getattr(image, "shape", None)
    if shape is None or len(shape) != 4:
        raise ValidationError("image", "an IMAGE tensor [B, H, W, C]", type(image).__name__)
    h, w = int(shape[1]), int(shape[2])
    if w > IMAGE_MAX_SIDE or h > IMAGE_MAX_SIDE:
        raise ValidationError(
            IMAGE,
            f"an image with each side <= {IMAGE_MAX_SIDE} px",
            f"{w}x{h}",
            "scale the image down first (e.g. ImageScale), or upscale a crop",
        )
