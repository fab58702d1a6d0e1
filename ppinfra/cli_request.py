"""The CLI's img2img options as requests: checked once, side images encoded once, one request per input.

Every option error names the option, the key and the value, before any
request is built or sent (``--lora strength must be a number, got 'abc'``).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
from dataclasses import replace
from typing import Any, Callable, Dict, List, Tuple

from .errors import ValidationError
from .limits import REQUEST_BODY_MAX_BYTES
from .request import ControlNetUnit, Embedding, Img2ImgRequest, IPAdapter, Lora

# The keys each side-image option takes after MODEL=IMAGE, with their type and default.
SIDE_KEYS: Dict[str, Dict[str, Tuple[Callable[[str], Any], Any]]] = {
    "--controlnet": {"strength": (float, 1.0), "preprocessor": (str, None),
                     "guidance_start": (float, 0.0), "guidance_end": (float, 1.0)},
    "--ip-adapter": {"strength": (float, 0.5)},
}
LORA_STRENGTH = 0.8


def _number(option: str, key: str, value: str, spec: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValidationError(f"{option} {key}", "a number", value, f"in {option} {spec}") from None


def parse_side(spec: str, option: str) -> Tuple[str, str, Dict[str, Any]]:
    """``MODEL=IMAGE[,key=value...]`` -> (model, image path, every key with its value or default)."""
    allowed = SIDE_KEYS[option]
    head, *rest = spec.split(",")
    model, sep, image = head.partition("=")
    if not sep or not model.strip() or not image.strip():
        raise ValidationError(option, f"MODEL=IMAGE_FILE[,key=value...] (keys: {', '.join(allowed)})", spec)
    opts = {k: default for k, (_, default) in allowed.items()}
    for item in rest:
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep:
            raise ValidationError(option, "key=value pairs after the first comma", item, f"in {option} {spec}")
        if key not in allowed:
            raise ValidationError(f"{option} key", f"one of {', '.join(allowed)}", key, f"in {option} {spec}")
        kind = allowed[key][0]
        opts[key] = _number(option, key, value, spec) if kind is float else value
    return model.strip(), image.strip(), opts


def parse_lora(spec: str) -> Lora:
    """``NAME[=STRENGTH]`` -> a :class:`Lora` (strength 0.8 when left out)."""
    name, sep, strength = (s.strip() for s in spec.partition("="))
    if not name:
        raise ValidationError("--lora", "NAME[=STRENGTH]", spec)
    return Lora(model_name=name, strength=_number("--lora", "strength", strength, spec) if sep else LORA_STRENGTH)


def _read_image(path: str, field: str):
    from .images import decode_file_to_pil

    try:
        with open(path, "rb") as fh:
            return decode_file_to_pil(fh.read(), field)
    except OSError as exc:
        raise ValidationError(field, "a readable image file", path, exc.strerror or "") from None


def _probe_b64() -> str:
    """A tiny valid PNG, to check the options once before any input image is read."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class RequestFactory:
    """Options -> a checked template (side images encoded once); :meth:`build` adds one input image."""

    def __init__(self, args: argparse.Namespace) -> None:
        from .images import BODY_OVERHEAD, encode_uploads

        units = [parse_side(s, "--controlnet") for s in args.controlnet]
        adapters = [parse_side(s, "--ip-adapter") for s in args.ip_adapter]
        loras = tuple(parse_lora(s) for s in args.lora)
        sides: List[Tuple[str, Any]] = (
            [(f"request.controlnet.units[{i}].image_base64", _read_image(path, f"--controlnet[{i}] image"))
             for i, (_, path, _) in enumerate(units)]
            + [(f"request.ip_adapters[{i}].image_base64", _read_image(path, f"--ip-adapter[{i}] image"))
               for i, (_, path, _) in enumerate(adapters)])
        # Each image gets the same share of the body cap, as inside one request of the node.
        self._share = (REQUEST_BODY_MAX_BYTES - BODY_OVERHEAD) // (1 + len(sides))
        encoded = encode_uploads(sides, body_limit=self._share * len(sides) + BODY_OVERHEAD) if sides else []
        cn = tuple(ControlNetUnit(model_name=m, image_base64=b64, strength=o["strength"],
                                  preprocessor=None if o["preprocessor"] in (None, "", "none") else o["preprocessor"],
                                  guidance_start=o["guidance_start"], guidance_end=o["guidance_end"])
                   for (m, _, o), b64 in zip(units, encoded))
        ips = tuple(IPAdapter(model_name=m, image_base64=b64, strength=o["strength"])
                    for (m, _, o), b64 in zip(adapters, encoded[len(units):]))
        self.template = Img2ImgRequest(
            model_name=args.model_name, image_base64="", prompt=args.prompt, width=args.width, height=args.height,
            image_num=args.image_num, steps=args.steps, guidance_scale=args.guidance_scale,
            sampler_name=args.sampler_name, negative_prompt=args.negative_prompt, sd_vae=args.sd_vae,
            controlnet_units=cn, seed=args.seed, loras=loras,
            embeddings=tuple(Embedding(e) for e in args.embedding), clip_skip=args.clip_skip,
            strength=args.strength, ip_adapters=ips, response_image_type=args.response_image_type)
        # Every option error before the first input is read: width/height 0 mean "the input's size".
        replace(self.template, image_base64=_probe_b64(), width=args.width or 512,
                height=args.height or 512).validate()

    def job_key(self, base_url: str) -> str:
        """Everything but the input image, and the host: the journal's notion of "the same run"."""
        h = hashlib.sha256(self.template.to_json_bytes())
        h.update(base_url.encode("utf-8"))
        return h.hexdigest()[:16]

    def build(self, path: str) -> Img2ImgRequest:
        """The checked request for the input image at ``path``."""
        from .images import BODY_OVERHEAD, encode_uploads, match_input_size

        image = _read_image(path, "request.image_base64")
        (b64,) = encode_uploads([("request.image_base64", image)], body_limit=self._share + BODY_OVERHEAD)
        t = self.template
        width, height = t.width, t.height
        if width == 0 or height == 0:
            mw, mh = match_input_size(*image.size)
            width, height = width or mw, height or mh
        request = replace(t, image_base64=b64, width=width, height=height)
        request.validate()
        return request
