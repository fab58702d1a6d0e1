"""txt2img, inpaint and upscale options as requests, through the same binder as img2img.

- txt2img has no upload: the template is checked once and each of ``--count``
  tasks is that template (with ``--seed S``, task k uses seed S + k, so the
  tasks differ and a rerun asks for the same images again).
- inpaint binds one ``--mask`` for every input: encoded once, and once more
  per other input size it is resized to (NEAREST keeps it black and white);
  uploads are lossless while the body cap allows.
- upscale refuses an input over the documented side limit instead of
  shrinking it (the upscaled result would silently lose what was asked for).
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import replace
from typing import Any, Dict, Sequence, Tuple

from ..errors import ValidationError
from ..inpainting_request import IMAGE, MASK, InpaintingRequest
from ..limits import ENDPOINT_LIMITS, IMAGE_MAX_SIDE, SEED_MAX
from ..logs import eprint
from ..txt2img_request import HiresFix, Refiner, Txt2ImgRequest
from ..upscale_request import UpscaleRequest
from .options import INPAINT_FIELDS, flag, generation_fields, value
from .requests_from_args import TaskFactory, options_named, read_image

HIRES_TARGETS = ("request.hires_fix.target_width", "request.hires_fix.target_height")
HIRES_OPTIONAL = ("request.hires_fix.strength", "request.hires_fix.upscaler")


def _hires_fix(args: argparse.Namespace) -> Any:
    """``--hires-*`` as a :class:`HiresFix`: both targets turn it on; the rest alone is an error."""
    limits = ENDPOINT_LIMITS["txt2img"]
    targets = [value(args, p) for p in HIRES_TARGETS]
    if all(t is None for t in targets):
        for p in HIRES_OPTIONAL:
            if value(args, p) is not None:
                raise ValidationError(
                    flag(p),
                    "given with --hires-target-width and --hires-target-height",
                    value(args, p),
                    "the hires fix is on only with its target size",
                )
        return None
    for path, target in zip(HIRES_TARGETS, targets):
        if target is None:
            other = flag(HIRES_TARGETS[1 - HIRES_TARGETS.index(path)])
            raise ValidationError(flag(path), f"given with {other} (the hires fix needs both sides)", None)
    opt = {
        p.rsplit(".", 1)[1]: (value(args, p) if value(args, p) is not None else limits[p].default)
        for p in HIRES_OPTIONAL
    }
    return HiresFix(target_width=targets[0], target_height=targets[1], **opt)


class Txt2ImgFactory(TaskFactory):
    """``--count`` tasks of one checked template; :meth:`build` takes the task's index."""

    endpoint = "txt2img"

    def __init__(self, args: argparse.Namespace) -> None:
        self.count = args.count
        if self.count < 1:
            raise ValidationError("--count", "1 or more (tasks to run)", self.count)
        with options_named():
            refiner = None if args.refiner_switch_at is None else Refiner(args.refiner_switch_at)
            template = Txt2ImgRequest(
                width=args.width,
                height=args.height,
                hires_fix=_hires_fix(args),
                refiner=refiner,
                restore_faces=args.restore_faces,
                enable_transparent_background=args.enable_transparent_background,
                **generation_fields(args),
            )
        seed = template.seed
        if self.count > 1 and isinstance(seed, int) and seed >= 0 and seed + self.count - 1 > SEED_MAX:
            raise ValidationError(
                "--seed (request.seed)",
                f"at most {SEED_MAX - self.count + 1} with --count "
                f"{self.count} (task k uses seed + k, at most {SEED_MAX})",
                seed,
            )
        self.bind(template)

    def build(self, index: int) -> Txt2ImgRequest:
        request = self.binder.bind({})
        seed = request.seed
        if index and isinstance(seed, int) and seed >= 0:
            request = replace(request, seed=seed + index)  # in range: checked with --count above
            request.mark_checked()
        return request


class InpaintFactory(TaskFactory):
    """One mask for every input image; :meth:`build` takes an input's path."""

    endpoint = "inpainting"

    def __init__(self, args: argparse.Namespace) -> None:
        fields = {p.split(".", 1)[1]: value(args, p) for p in INPAINT_FIELDS}
        template = InpaintingRequest(
            image_base64=None, mask_image_base64=None, **generation_fields(args), **fields
        )
        with options_named():
            template.validate_fields(template=True)  # every option before the mask is read
        self.mask_path = args.mask
        mask = read_image(args.mask, "--mask")
        self.mask_size = mask.size
        # Lossless while the body cap allows, as the node sends it: the server returns the unmasked
        # pixels of the upload, so a JPEG upload would come back with its artefacts outside the mask.
        self.bind(template, {MASK: mask}, lossless=True)
        self._mask = mask
        self._resized: Dict[Tuple[int, int], str] = {mask.size: self.binder.shared[MASK]}
        self._lock = threading.Lock()

    def _mask_for(self, size: Tuple[int, int], path: str) -> str:
        """The mask encoded at ``size``: resized once per size, with a note per input."""
        eprint(
            f"note: the mask {self.mask_path} is {self.mask_size[0]}x{self.mask_size[1]} and {path} is "
            f"{size[0]}x{size[1]}: the mask is resized to it (nearest neighbour) for that input"
        )
        with self._lock:
            if size not in self._resized:
                from PIL import Image

                resized = self._mask.resize(size, Image.NEAREST)
                self._resized[size] = self.binder.encode({MASK: resized})[MASK]
            return self._resized[size]

    def build(self, path: str) -> InpaintingRequest:
        image = read_image(path, IMAGE)
        with options_named():
            if image.size == self.mask_size:
                return self.binder.bind({IMAGE: image})
            mask = self._mask_for(image.size, path)
            return self.binder.assemble({IMAGE: self.binder.encode({IMAGE: image})[IMAGE], MASK: mask})


def refuse_oversize(path: str, size: Tuple[int, int]) -> None:
    w, h = size
    if w > IMAGE_MAX_SIDE or h > IMAGE_MAX_SIDE:
        raise ValidationError(
            f"--image {path}",
            f"an image with each side <= {IMAGE_MAX_SIDE} px "
            "(upscale's documented input limit; not downscaled for you)",
            f"{w}x{h}",
        )


class UpscaleFactory(TaskFactory):
    """One input image per task, each side at most the documented limit; :meth:`build` takes a path."""

    endpoint = "upscale"

    def __init__(self, args: argparse.Namespace) -> None:
        self.bind(
            UpscaleRequest(
                model_name=args.model_name,
                image_base64=None,
                scale_factor=args.scale_factor,
                response_image_type=args.response_image_type,
            )
        )

    @staticmethod
    def check_sizes(inputs: Sequence[str]) -> None:
        """Every input within the side limit, before anything is sent (the encoder would shrink it)."""
        from PIL import Image

        for path in inputs:
            try:
                with Image.open(path) as im:  # the header only
                    size = im.size
            except Exception:
                continue  # not an image: that input fails alone, in the decoder's words
            refuse_oversize(path, size)

    def build(self, path: str) -> UpscaleRequest:
        image = read_image(path, IMAGE)
        refuse_oversize(path, image.size)
        with options_named():
            return self.binder.bind({IMAGE: image})
