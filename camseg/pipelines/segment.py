"""One image of any size: classify and explain at the classifier's size, segment at the image's.

``camseg segment`` runs this. The classifier was trained at one input size
(the checkpoint's ``meta["input_size"]``, (W, H) = (64, 48) for the shapes
data), and a CNN shown a much larger image sees different things (a shape 10x
larger than any it was trained on) and costs memory with the square of the
size. So :func:`segment_image`:

1. resizes the image to the classifier's input size (W, H) (bilinear,
   antialiased; the aspect ratio is not kept: the image is stretched, and a
   note says so when its aspect differs by more than 10 %);
2. classifies it and explains the class with Grad-CAM there, and lets the
   pipeline's prompt strategy pick the points there (strategies that
   segment candidate regions do so at that size too);
3. carries the points back to the image's own pixel coordinates: a point
   (x, y) becomes ``((x + 0.5) * W_img / W_cls - 0.5, (y + 0.5) * H_img / H_cls - 0.5)``
   (pixel centres onto pixel centres);
4. segments the image at its own resolution from those points. SAM takes
   any size (it resizes to 1024 internally and returns a full-size mask); an
   offline backend works on the image scaled down to at most
   ``working_side`` pixels on its long side (default :data:`WORKING_SIDE`)
   and its mask is upsampled (bilinear, threshold 0.5), so memory and time
   stay bounded whatever the image size.

Images smaller than a quarter of the classifier's input size in either
direction (16 x 12 for 64 x 48) are refused: they would be upsampled more
than 4x, below the size of the smallest training shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn

from camseg.data.dataset import normalize
from camseg.data.shapes import CLASSES, IMAGE_SIZE
from camseg.models.cam import BaseCAM
from camseg.segmenters.base import validate_image
from camseg.segmenters.offline import OfflineSegmenter

__all__ = [
    "MAX_UPSCALE", "PIPELINES", "UNSURE_BELOW", "WORKING_SIDE", "SegmentImageResult", "min_image_size",
    "resize_rgb", "scale_points", "segment_image",
]

WORKING_SIDE = 1024
"""Long side (pixels) an offline backend segments at; larger images are scaled down for it."""

MAX_UPSCALE = 4
"""An image may be at most this many times smaller than the classifier's input, per direction."""

UNSURE_BELOW = 0.5
"""Below this top-class probability the classifier counts as unsure (a warning is printed)."""


def _pipelines() -> dict[str, type]:
    from camseg.pipelines.pipeline import BasicSamPipeline, ForegroundBackgroundPipeline, ForegroundPointsPipeline

    return {"center": BasicSamPipeline, "foreground": ForegroundPointsPipeline,
            "foreground_background": ForegroundBackgroundPipeline}


PIPELINES: tuple[str, ...] = ("center", "foreground", "foreground_background")
"""Pipeline names :func:`segment_image` accepts."""


@dataclass(frozen=True)
class SegmentImageResult:
    """What :func:`segment_image` did.

    Attributes:
        mask: bool (H, W) at the image's own size, True on the object.
        point_coords: float (N, 2), the prompt points in **(x, y)** pixels of the image.
        point_labels: int64 (N,), 1 foreground, 0 background.
        target: the class explained (index into ``classes``).
        probability: the classifier's softmax probability of ``target``.
        top_class: the classifier's most probable class.
        top_probability: its probability.
        runner_up: the second most probable class.
        runner_up_probability: its probability.
        classes: the class names.
        image_size: (W, H) of the image.
        classifier_size: (W, H) the image was resized to for the classifier and Grad-CAM.
        working_size: (W, H) the segmenter worked at (the image size, or smaller for an
            offline backend on a large image).
        backend: the segmenter's name.
        notes: what was converted or adjusted, one sentence each.
    """

    mask: np.ndarray
    point_coords: np.ndarray
    point_labels: np.ndarray
    target: int
    probability: float
    top_class: int
    top_probability: float
    runner_up: int
    runner_up_probability: float
    classes: tuple[str, ...]
    image_size: tuple[int, int]
    classifier_size: tuple[int, int]
    working_size: tuple[int, int]
    backend: str
    notes: tuple[str, ...] = ()

    @property
    def unsure(self) -> bool:
        """The top class has probability below :data:`UNSURE_BELOW`."""
        return self.top_probability < UNSURE_BELOW


def min_image_size(classifier_size: Sequence[int] = IMAGE_SIZE) -> tuple[int, int]:
    """Smallest (W, H) :func:`segment_image` accepts: the classifier's input / :data:`MAX_UPSCALE`."""
    return tuple(max(1, math.ceil(int(s) / MAX_UPSCALE)) for s in classifier_size)  # type: ignore[return-value]


def resize_rgb(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """uint8 (H, W, 3) RGB resized to ``size`` = (W, H), bilinear (antialiased when shrinking)."""
    w, h = int(size[0]), int(size[1])
    if image.shape[1] == w and image.shape[0] == h:
        return image
    return np.array(Image.fromarray(image).resize((w, h), Image.BILINEAR))


def scale_points(coords: np.ndarray, src: Sequence[int], dst: Sequence[int]) -> np.ndarray:
    """(x, y) points (N, 2) in an image of size ``src`` = (W, H) carried to one of size ``dst``.

    Pixel centres map onto pixel centres: ``x' = (x + 0.5) * W' / W - 0.5`` (the
    same for y), clipped to the image (``0 <= x' <= W' - 1``).

    >>> scale_points(np.array([[0.0, 0.0], [63.0, 47.0]]), (64, 48), (640, 480)).tolist()
    [[4.5, 4.5], [634.5, 474.5]]
    """
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    sx, sy = dst[0] / src[0], dst[1] / src[1]
    out = np.empty_like(coords)
    out[:, 0] = np.clip((coords[:, 0] + 0.5) * sx - 0.5, 0, dst[0] - 1)
    out[:, 1] = np.clip((coords[:, 1] + 0.5) * sy - 0.5, 0, dst[1] - 1)
    return out


def _working_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    w, h = size
    if max(w, h) <= side:
        return size
    scale = side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def segment_image(image: np.ndarray, model: nn.Module, target_layers: Sequence[nn.Module] | BaseCAM, segmenter: object,
                  pipeline: str = "foreground_background", target: int | str | None = None,
                  classifier_size: Sequence[int] = IMAGE_SIZE, classes: Sequence[str] = CLASSES,
                  working_side: int | None = None) -> SegmentImageResult:
    """Segment the object in one image of any size, with no user input.

    Args:
        image: uint8 (H, W, 3) RGB, any size from :func:`min_image_size` up.
        model: the classifier (normalised (B, 3, h, w) -> logits (B, C)).
        target_layers: its Grad-CAM target layers, or a ready CAM such as
            :func:`camseg.models.classifier.default_cam` (what ``camseg segment`` uses).
        segmenter: a promptable segmenter
            (:func:`camseg.segmenters.get_segmenter <camseg.segmenters.choice.get_segmenter>`).
        pipeline: ``"center"``, ``"foreground"`` or ``"foreground_background"``.
        target: the class to explain (index or name), or None for the top class.
        classifier_size: (W, H) the classifier expects (a checkpoint's ``meta["input_size"]``).
        classes: class names in index order.
        working_side: longest side an offline backend works at (default
            :data:`WORKING_SIDE`; SAM always gets the full image).

    Returns:
        A :class:`SegmentImageResult` with the mask at the image's size.

    Raises:
        ValueError: an image that is not uint8 RGB or too small, an unknown
            pipeline or class, or a bad ``classifier_size``.
    """
    image = validate_image(image)
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; expected one of {', '.join(PIPELINES)}")
    try:
        cw, ch = (int(s) for s in classifier_size)
    except (TypeError, ValueError):
        raise ValueError(f"classifier_size must be (W, H), got {classifier_size!r}") from None
    if cw < 1 or ch < 1:
        raise ValueError(f"classifier_size must be positive (W, H), got {classifier_size!r}")
    h, w = image.shape[:2]
    min_w, min_h = min_image_size((cw, ch))
    if w < min_w or h < min_h:
        raise ValueError(f"the image is {w} x {h} pixels (W x H), too small to explain: camseg needs at least "
                         f"{min_w} x {min_h} (a {MAX_UPSCALE}th of the classifier's {cw} x {ch} input)")
    side = WORKING_SIDE if working_side is None else int(working_side)
    if side < 1:
        raise ValueError(f"working_side must be >= 1, got {working_side}")
    notes = []
    if (w, h) != (cw, ch):
        notes.append(f"classified and explained at the classifier's input size {cw} x {ch} "
                     f"(resized from {w} x {h})")
        if abs(math.log((w / h) / (cw / ch))) > math.log(1.1):
            notes.append(f"its aspect ratio {w / h:.2f} differs from the classifier's {cw / ch:.2f}: "
                         "it was stretched for the classifier")
    small = resize_rgb(image, (cw, ch))
    if isinstance(target_layers, BaseCAM):
        pipe = _pipelines()[pipeline](model, segmenter, cam=target_layers)
    else:
        pipe = _pipelines()[pipeline](model, segmenter, list(target_layers))
    x = normalize(small[None])
    ctx = pipe.context(x, target)
    prompts = pipe.prompts(x, context=ctx)
    coords, labels = prompts.for_image(0)
    if len(coords) == 0:
        raise ValueError("the prompt strategy found no point in this image")
    probs = torch.softmax(torch.as_tensor(np.asarray(ctx.extras["logits"][0], dtype=np.float64)), 0).numpy()
    order = np.argsort(-probs, kind="stable")
    explained = int(ctx.targets[0])
    points = scale_points(coords, (cw, ch), (w, h))
    if isinstance(segmenter, OfflineSegmenter):
        work = _working_size((w, h), side)
    else:
        work = (w, h)
    if work != (w, h):
        notes.append(f"segmented at {work[0]} x {work[1]} by the offline backend, mask upsampled to {w} x {h}")
        segmenter.set_image(resize_rgb(image, work))
        small_mask = segmenter.predict(scale_points(points, (w, h), work), labels).mask
        up = cv2.resize(small_mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        mask = up >= 0.5
    else:
        segmenter.set_image(image)
        mask = np.asarray(segmenter.predict(points, labels).mask, bool)
    runner = int(order[1]) if len(order) > 1 else int(order[0])
    return SegmentImageResult(
        mask=mask, point_coords=points, point_labels=np.asarray(labels, np.int64), target=explained,
        probability=float(probs[explained]), top_class=int(order[0]), top_probability=float(probs[order[0]]),
        runner_up=runner, runner_up_probability=float(probs[runner]), classes=tuple(classes),
        image_size=(w, h), classifier_size=(cw, ch), working_size=work,
        backend=getattr(segmenter, "name", type(segmenter).__name__), notes=tuple(notes),
    )
