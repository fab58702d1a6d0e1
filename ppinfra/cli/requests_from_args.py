"""The CLI's options as requests: checked once, shared images encoded once, one request per input.

Every option error names the option, the limit and the value, before any
request is built or sent (``--lora strength must be a number, got 'abc'``,
``--steps (request.steps) must be in [1, 100], got 101``). :class:`TaskFactory`
is what every subcommand shares (the binder, the journal's job key);
:class:`RequestFactory` is img2img's, :mod:`.sibling_requests` the others'.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple

from ..errors import ValidationError
from ..limits import LIMITS
from ..request import Lora, TaskRequest
from ..img2img_request import ControlNetUnit, Img2ImgRequest, IPAdapter
from .options import generation_fields, named

# The keys each side-image option takes after MODEL=IMAGE, with their type and default.
SIDE_KEYS: Dict[str, Dict[str, Tuple[Callable[[str], Any], Any]]] = {
    "--controlnet": {
        "strength": (float, 1.0),
        "preprocessor": (str, None),
        "guidance_start": (float, 0.0),
        "guidance_end": (float, 1.0),
    },
    "--ip-adapter": {"strength": (float, 0.5)},
}
LORA_STRENGTH = LIMITS["request.loras[].strength"].default


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
            raise ValidationError(
                option, "key=value pairs after the first comma", item, f"in {option} {spec}"
            )
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
    return Lora(
        model_name=name, strength=_number("--lora", "strength", strength, spec) if sep else LORA_STRENGTH
    )


@contextmanager
def options_named() -> Iterator[None]:
    """A field's error as the option's: ``--steps (request.steps) must be ...``."""
    try:
        yield
    except ValidationError as exc:
        raise named(exc) from None


def job_key(endpoint: str, body: Mapping[str, Any], shared: Mapping[str, str], base_url: str) -> str:
    """The journal's notion of "the same run": the endpoint, every field but the input image, the shared
    images and the host (the same options against another host are another run, billed there)."""
    from ..hosts import normalise_base_url

    h = hashlib.sha256(endpoint.encode("utf-8") + b"\0")
    h.update(json.dumps(body, sort_keys=True, default=str).encode("utf-8"))
    for name in sorted(shared):
        h.update(hashlib.sha256(shared[name].encode("ascii")).digest())
    h.update(b"\0" + normalise_base_url(base_url).encode("utf-8"))
    return h.hexdigest()[:16]


def read_image(path: str, field: str):
    from ..images import decode_file_to_pil

    try:
        with open(path, "rb") as fh:
            return decode_file_to_pil(fh.read(), field)
    except OSError as exc:
        raise ValidationError(field, "a readable image file", path, exc.strerror or "") from None


class TaskFactory:
    """What every subcommand's factory shares: a :class:`~ppinfra.binding.Binder` over the checked template,
    and the journal's job key. A subclass sets ``endpoint``, builds ``self.binder`` and implements
    :meth:`build`."""

    endpoint = ""
    binder: Any

    def job_key(self, base_url: str) -> str:
        return job_key(self.endpoint, self.binder.template.to_body(), self.binder.shared, base_url)

    def bind(
        self,
        template: TaskRequest,
        shared: Optional[Mapping[str, Any]] = None,
        *,
        lossless: Optional[bool] = None,
    ) -> None:
        from ..binding import Binder

        with options_named():
            self.binder = Binder(template, shared, lossless=lossless)

    def build(self, source: Any) -> TaskRequest:  # pragma: no cover - interface
        raise NotImplementedError


class RequestFactory(TaskFactory):
    """img2img: options -> a template bound once to the side images; :meth:`build` adds one input image.
    The node takes the same path (``bind_batch``)."""

    endpoint = "img2img"

    def __init__(self, args: argparse.Namespace) -> None:
        units = [parse_side(s, "--controlnet") for s in args.controlnet]
        adapters = [parse_side(s, "--ip-adapter") for s in args.ip_adapter]
        cn = tuple(
            ControlNetUnit(
                model_name=m,
                image_base64=None,
                strength=o["strength"],
                preprocessor=None if o["preprocessor"] in (None, "", "none") else o["preprocessor"],
                guidance_start=o["guidance_start"],
                guidance_end=o["guidance_end"],
            )
            for m, _, o in units
        )
        ips = tuple(
            IPAdapter(model_name=m, image_base64=None, strength=o["strength"]) for m, _, o in adapters
        )
        self.template = Img2ImgRequest(
            **generation_fields(args),
            image_base64=None,
            width=args.width,
            height=args.height,
            controlnet_units=cn,
            strength=args.strength,
            ip_adapters=ips,
        )
        # Every option error before the side images are read: the fields, checked once.
        with options_named():
            self.template.validate_fields(template=True)
        shared = {
            f"request.controlnet.units[{i}].image_base64": read_image(path, f"--controlnet[{i}] image")
            for i, (_, path, _) in enumerate(units)
        }
        shared.update(
            {
                f"request.ip_adapters[{i}].image_base64": read_image(path, f"--ip-adapter[{i}] image")
                for i, (_, path, _) in enumerate(adapters)
            }
        )
        self.bind(self.template, shared)

    def build(self, path: str) -> Img2ImgRequest:
        """The checked request for the input image at ``path``."""
        with options_named():
            return self.binder.bind({"request.image_base64": read_image(path, "request.image_base64")})
