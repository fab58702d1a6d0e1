"""The one request path of the node and the CLI: a template checked once, then bound to each input's images.

A template is a request whose fields are set and whose uploads are not
(``None``). :class:`Binder` checks its fields once, encodes the images shared
by every item once, and :meth:`Binder.bind` adds one item's own images: each
upload is encoded once, its size comes from the encoder, and only the image
checks run per item. There is no stand-in image anywhere.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from .errors import CancelledError, ValidationError
from .limits import REQUEST_BODY_MAX_BYTES
from .request import TaskRequest

StopCheck = Optional[Callable[[], bool]]


def _label(path: str) -> str:
    """``request.controlnet.units[0].image_base64`` -> ``request.controlnet.units[0].image``
    (what a user wired)."""
    return path[: -len("_base64")] if path.endswith("_base64") else path


class Binder:
    """``template`` with its fields checked and its ``shared`` images (field path -> PIL image) encoded."""

    def __init__(
        self,
        template: TaskRequest,
        shared: Optional[Mapping[str, Any]] = None,
        *,
        lossless: Optional[bool] = None,
    ) -> None:
        from .images import BODY_OVERHEAD

        template.validate_fields(template=True)
        self.template = template
        self.paths = [p for p, _ in template.image_slots()]
        self.lossless = lossless
        shared = dict(shared or {})
        self._check_known(shared)
        # Every upload of one request gets the same share of the body cap, so each request fits it.
        self.share = (REQUEST_BODY_MAX_BYTES - BODY_OVERHEAD) // max(1, len(self.paths))
        self.shared = self.encode(shared)

    def _check_known(self, images: Mapping[str, Any]) -> None:
        for path in images:
            if path not in self.paths:
                where = ", ".join(self.paths) or "none"
                raise ValidationError(_label(path), f"an image this endpoint takes ({where})", "an image")

    def encode(self, images: Mapping[str, Any]) -> Dict[str, str]:
        """Encode ``images`` (label -> PIL image; the label starts with the field path) within their
        shares."""
        from .images import BODY_OVERHEAD, encode_uploads

        if not images:
            return {}
        encoded = encode_uploads(
            list(images.items()), body_limit=self.share * len(images) + BODY_OVERHEAD, lossless=self.lossless
        )
        return dict(zip(images, encoded))

    def assemble(self, own: Mapping[str, str]) -> TaskRequest:
        """The checked request from already-encoded item images (field path -> base64)."""
        images = {**self.shared, **own}
        missing = [p for p in self.paths if p not in images]
        if missing:
            raise ValidationError(_label(missing[0]), "an image", None, "connect an image to this input")
        request = self.template.with_images(images)
        request.validate_images()
        request.mark_checked()
        return request

    def bind(self, own: Mapping[str, Any]) -> TaskRequest:
        """One item's request: ``own`` (field path -> PIL image) encoded once and bound to the template."""
        self._check_known(own)
        return self.assemble(self.encode(own))


def bind_batch(
    template: TaskRequest,
    inputs: Mapping[str, Sequence[Any]],
    *,
    should_stop: StopCheck = None,
    lossless: Optional[bool] = None,
) -> List[TaskRequest]:
    """One checked request per item of a batch.

    ``inputs`` maps each upload's field path to its images: the first path's
    count is the batch size B; any other path holds 1 image (used for every
    item, encoded once) or B (paired item by item). An endpoint without uploads
    gives one request.
    """

    def stop_check() -> None:
        if should_stop is not None and should_stop():
            raise CancelledError("Cancelled before sending.")

    paths = [p for p, _ in template.image_slots()]
    if not paths:
        Binder(template)  # the fields, checked once
        template.mark_checked()
        return [template]
    main = paths[0]
    b = len(inputs.get(main) or ())
    if b < 1:
        raise ValidationError(_label(main), "an image", None, "connect an image to this input")
    for path, images in inputs.items():
        if len(images) not in (1, b):
            raise ValidationError(
                _label(path),
                f"a batch of 1 image (used for every input) or {b} (one per input image)",
                f"a batch of {len(images)}",
                "make the side batch match the input batch, or use one image",
            )
    shared = {p: imgs[0] for p, imgs in inputs.items() if len(imgs) == 1 and (b == 1 or p != main)}
    stop_check()
    binder = Binder(template, shared, lossless=lossless)
    own_paths = [p for p in inputs if p not in shared]
    labelled = {(f"{p} (input {i})" if b > 1 else p): inputs[p][i] for i in range(b) for p in own_paths}
    stop_check()
    encoded = binder.encode(labelled)
    out = []
    for i in range(b):
        stop_check()
        own = {p: encoded[f"{p} (input {i})" if b > 1 else p] for p in own_paths}
        out.append(binder.assemble(own))
    return out
