"""The baseline the benchmark compares against: what common remote-API node packs do.

Written with plain ``requests`` against the same sandbox, on purpose without
any of the pack's code:

- each input tensor goes to PIL and is saved as PNG with PIL's default
  settings (compress_level 6), one image after another;
- the job is submitted, then polled at a fixed 5 s interval;
- the result URLs are downloaded one after another, and each file is decoded
  to a float tensor one after another, then the tensors are concatenated.

This mirrors, e.g., ComfyUI's older ``comfy_api_nodes`` helpers
(``tensor_to_base64_string`` with a default PNG save, ``poll_interval=5``,
sequential ``download_url_to_bytesio``) and many community packs.
"""

from __future__ import annotations

import base64
import io
import time
from typing import Any, Dict, List, Optional

import numpy as np
import requests
from PIL import Image

POLL_INTERVAL = 5.0


def tensor_to_base64_png(image: Any) -> str:
    """One ``[H, W, C]`` tensor as base64 PNG, default PIL settings (as common packs write it)."""
    arr = np.clip(255.0 * image.cpu().numpy(), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("utf-8")


def bytes_to_tensor(data: bytes) -> Any:
    import torch

    img = Image.open(io.BytesIO(data)).convert("RGB")
    arr = np.array(img).astype(np.float32) / 255.0
    return torch.from_numpy(arr)[None, ...]


def run_job(
    base_url: str,
    api_key: str,
    image: Any,
    request: Dict[str, Any],
    controlnet: Optional[List[Dict[str, Any]]] = None,
    ip_adapter: Optional[Dict[str, Any]] = None,
    timeout: float = 600.0,
) -> Dict[str, Any]:
    """Run one img2img job the common way; returns ``{"images": tensor, "task_id": ...}``.

    ``controlnet`` items and ``ip_adapter`` hold an ``image`` tensor ``[1,H,W,C]``
    plus their API fields; ``request`` holds the other request fields.
    """
    body_request = dict(request)
    body_request["image_base64"] = tensor_to_base64_png(image[0])
    if controlnet:
        units = []
        for unit in controlnet:
            fields = {k: v for k, v in unit.items() if k != "image"}
            fields["image_base64"] = tensor_to_base64_png(unit["image"][0])
            units.append(fields)
        body_request["controlnet"] = {"units": units}
    if ip_adapter:
        fields = {k: v for k, v in ip_adapter.items() if k != "image"}
        fields["image_base64"] = tensor_to_base64_png(ip_adapter["image"][0])
        body_request["ip_adapters"] = [fields]
    return submit_poll_download(base_url, api_key, "/v3/async/img2img", body_request, timeout)


def run_txt2img(
    base_url: str, api_key: str, request: Dict[str, Any], timeout: float = 600.0
) -> Dict[str, Any]:
    """Run one txt2img job the common way (no uploads: submit, poll every 5 s, download one by one)."""
    return submit_poll_download(base_url, api_key, "/v3/async/txt2img", dict(request), timeout)


def run_inpainting(
    base_url: str, api_key: str, image: Any, mask: Any, request: Dict[str, Any], timeout: float = 600.0
) -> Dict[str, Any]:
    """Run one inpainting job the common way: image and ``[1,H,W]`` MASK each as a default PNG."""
    arr = np.clip(255.0 * mask[0].cpu().numpy(), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L").save(buf, format="PNG")
    body_request = dict(request)
    body_request["image_base64"] = tensor_to_base64_png(image[0])
    body_request["mask_image_base64"] = base64.b64encode(buf.getvalue()).decode("utf-8")
    return submit_poll_download(base_url, api_key, "/v3/async/inpainting", body_request, timeout)


def submit_poll_download(
    base_url: str, api_key: str, path: str, body_request: Dict[str, Any], timeout: float = 600.0
) -> Dict[str, Any]:
    """Submit ``{"extra": {}, "request": body_request}`` to ``path``, poll at a fixed 5 s,
    download in turn."""
    import torch

    session = requests.Session()
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    resp = session.post(
        f"{base_url}{path}", json={"extra": {}, "request": body_request}, headers=headers, timeout=60
    )
    resp.raise_for_status()
    task_id = resp.json()["task_id"]

    start = time.monotonic()
    while True:
        data = session.get(
            f"{base_url}/v3/async/task-result", params={"task_id": task_id}, headers=headers, timeout=60
        ).json()
        status = data["task"]["status"]
        if status == "TASK_STATUS_SUCCEED":
            break
        if status == "TASK_STATUS_FAILED":
            raise RuntimeError(f"task {task_id} failed: {data['task'].get('reason')}")
        if time.monotonic() - start > timeout:
            raise TimeoutError(task_id)
        time.sleep(POLL_INTERVAL)

    tensors = []
    for item in data["images"]:
        blob = requests.get(item["image_url"], timeout=60).content
        tensors.append(bytes_to_tensor(blob))
    return {"images": torch.cat(tensors, dim=0), "task_id": task_id}
