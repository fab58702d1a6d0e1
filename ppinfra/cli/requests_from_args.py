"""The CLI's img2img options as requests: checked once, side images encoded once, one request per input.

Every option error names the option, the key and the value, before any
request is built or sent (``--lora strength must be a number, got 'abc'``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
from typing import Any, Callable, Dict, Tuple

from ..errors import ValidationError
from ..request import ControlNetUnit, Embedding, Img2ImgRequest, IPAdapter, Lora

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
    from ..images import decode_file_to_pil

    try:
        with open(path, "rb") as fh:
            return decode_file_to_pil(fh.read(), field)
    except OSError as exc:
        raise ValidationError(field, "a readable image file", path, exc.strerror or "") from None


class RequestFactory:
    """Options -> a template bound once to the side images (:class:`~ppinfra.binding.Binder`); :meth:`build`
    adds one input image. The node takes the same path (``bind_batch``)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from ..binding import Binder

        units = [parse_side(s, "--controlnet") for s in args.controlnet]
        adapters = [parse_side(s, "--ip-adapter") for s in args.ip_adapter]
        loras = tuple(parse_lora(s) for s in args.lora)
        cn = tuple(ControlNetUnit(model_name=m, image_base64=None, strength=o["strength"],
                                  preprocessor=None if o["preprocessor"] in (None, "", "none") else o["preprocessor"],
                                  guidance_start=o["guidance_start"], guidance_end=o["guidance_end"])
                   for m, _, o in units)
        ips = tuple(IPAdapter(model_name=m, image_base64=None, strength=o["strength"]) for m, _, o in adapters)
        self.template = Img2ImgRequest(
            model_name=args.model_name, image_base64=None, prompt=args.prompt, width=args.width,
            height=args.height, image_num=args.image_num, steps=args.steps, guidance_scale=args.guidance_scale,
            sampler_name=args.sampler_name, negative_prompt=args.negative_prompt, sd_vae=args.sd_vae,
            controlnet_units=cn, seed=args.seed, loras=loras,
            embeddings=tuple(Embedding(e) for e in args.embedding), clip_skip=args.clip_skip,
            strength=args.strength, ip_adapters=ips, response_image_type=args.response_image_type)
        # Every option error before the side images are read: the fields, checked once.
        self.template.validate_fields(template=True)
        shared = {f"request.controlnet.units[{i}].image_base64": _read_image(path, f"--controlnet[{i}] image")
                  for i, (_, path, _) in enumerate(units)}
        shared.update({f"request.ip_adapters[{i}].image_base64": _read_image(path, f"--ip-adapter[{i}] image")
                       for i, (_, path, _) in enumerate(adapters)})
        self.binder = Binder(self.template, shared)

    def job_key(self, base_url: str) -> str:
        """Everything but the input image, and the host: the journal's notion of "the same run"."""
        from ..hosts import normalise_base_url

        h = hashlib.sha256(json.dumps(self.template.to_body(), sort_keys=True, default=str).encode("utf-8"))
        for name in sorted(self.binder.shared):
            h.update(hashlib.sha256(self.binder.shared[name].encode("ascii")).digest())
        h.update(normalise_base_url(base_url).encode("utf-8"))
        return h.hexdigest()[:16]

    def build(self, path: str) -> Img2ImgRequest:
        """The checked request for the input image at ``path``."""
        return self.binder.bind({"request.image_base64": _read_image(path, "request.image_base64")})
