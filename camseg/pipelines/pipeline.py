"""Pipelines: image in, mask out, with no user input (book: Reference › API contracts).

A pipeline holds a classifier, a CAM method over its target layers, a prompt
strategy (:mod:`camseg.prompting.prompts`) and a promptable segmenter
(:mod:`camseg.segmenters`, passed in: SAM or an offline backend)::

    images (B, 3, H, W) normalised
      -> classifier + Grad-CAM  -> heatmaps (B, H, W), explained classes
      -> prompt strategy        -> points (B, N, 2) in (x, y), labels (B, N)
      -> segmenter              -> masks (B, H, W) bool

* :class:`BasicSamPipeline`: one foreground point at the image centre (the
  baseline of published solutions; it ignores the CAM).
* :class:`ForegroundPointsPipeline`: one foreground point from
  :class:`~camseg.prompting.regions.MaskScoring` (the CAM's candidate regions, each
  segmented and scored by the classifier seeing that region alone).
* :class:`ForegroundBackgroundPipeline`: the same foreground point plus
  background points on a rejected distractor region and on low-CAM pixels
  far from the object.

All have ``__call__(images) -> masks`` and ``segment(images, point_coords,
point_labels) -> masks``; :meth:`BasicSamPipeline.run` also returns the
points used. ``targets`` may name classes (``"star"``): a class-name prompt
that picks what Grad-CAM explains instead of the top class.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from camseg.data.dataset import check_normalized, denormalize
from camseg.data.shapes import CLASSES
from camseg.models.cam import BaseCAM, GradCAM, eval_mode
from camseg.prompting.prompts import CenterPoint, PromptContext, Prompts, PromptStrategy
from camseg.prompting.regions import MaskScoring
from camseg.utils.devices import model_device

__all__ = [
    "BasicSamPipeline", "ForegroundBackgroundPipeline", "ForegroundPointsPipeline", "PipelineOutput",
    "resolve_targets",
]


@dataclass(frozen=True)
class PipelineOutput:
    """What a pipeline did for a batch.

    Attributes:
        masks: bool tensor (B, H, W).
        prompts: the points used: (B, N, 2) (x, y) and labels (B, N).
        targets: int64 (B,), the classes explained.
        backend: the segmenter's name.
    """

    masks: torch.Tensor
    prompts: Prompts
    targets: np.ndarray
    backend: str


def _one_target(v: object) -> object:
    """A 0-d/1-element tensor or array as a Python scalar; anything else unchanged."""
    if isinstance(v, (torch.Tensor, np.ndarray)) and v.ndim == 0:
        return v.item()
    return v


def resolve_targets(targets: Iterable[int | str] | int | str | None, batch: int,
                    classes: Sequence[str] = CLASSES) -> np.ndarray | None:
    """Class indices (B,) from indices or class names; one value is used for the whole batch.

    One class may be given as an int, a class name, a whole float (``3.0``) or
    a 0-d tensor/array; several as a sequence, a 1-d tensor or array of them.

    >>> resolve_targets("star", 2).tolist()
    [3, 3]
    >>> resolve_targets([0, "diamond"], 2).tolist()
    [0, 4]
    >>> resolve_targets(torch.tensor(3), 2).tolist()
    [3, 3]

    Raises:
        ValueError: an unknown name, an index out of range, a fractional
            number, or a count other than ``batch``.
    """
    if targets is None:
        return None
    targets = _one_target(targets)
    if isinstance(targets, (int, str, float, np.integer, np.floating)):
        values = [targets] * batch
    elif isinstance(targets, (torch.Tensor, np.ndarray)):
        if targets.ndim != 1:
            raise ValueError(f"targets must be one class or a 1-d sequence of classes, got shape "
                             f"{tuple(targets.shape)}")
        values = targets.tolist()
    else:
        try:
            values = [_one_target(v) for v in targets]
        except TypeError:
            raise ValueError(f"targets must be class indices or names, got {targets!r}") from None
    if len(values) != batch:
        raise ValueError(f"targets must give one class per image: expected {batch}, got {len(values)}")
    out = []
    for v in values:
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)
        if isinstance(v, str):
            if v not in classes:
                raise ValueError(f"unknown class name {v!r}; expected one of {', '.join(classes)}")
            out.append(classes.index(v))
        elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            if not 0 <= int(v) < len(classes):
                raise ValueError(f"target {v} out of range 0..{len(classes) - 1}")
            out.append(int(v))
        else:
            raise ValueError(f"targets must be class indices or names, got {v!r}")
    return np.asarray(out, dtype=np.int64)


class BasicSamPipeline:
    """Segment with one foreground point at the image centre.

    Args:
        classifier: model mapping a normalised batch (B, 3, H, W) to logits (B, C).
        segmenter: a promptable segmenter (``camseg.segmenters.get_segmenter(...)``).
        target_layers: Grad-CAM target layers of ``classifier``.
        cam: CAM class (:class:`~camseg.models.cam.GradCAM` by default) or a ready
            :class:`~camseg.models.cam.BaseCAM`.
        strategy: the prompt strategy (each class has its default).

    Example:
        >>> pipe = BasicSamPipeline(model, get_segmenter("offline"), target_layers)  # doctest: +SKIP
        >>> masks = pipe(images)           # (B, H, W) bool  # doctest: +SKIP
    """

    default_strategy: type = CenterPoint

    def __init__(self, classifier: nn.Module, segmenter: object, target_layers: Iterable[nn.Module] | None = None,
                 cam: type[BaseCAM] | BaseCAM = GradCAM, strategy: PromptStrategy | None = None) -> None:
        if not hasattr(segmenter, "set_image") or not hasattr(segmenter, "predict"):
            raise TypeError(f"segmenter must have set_image() and predict(), got {type(segmenter).__name__}")
        self.classifier = classifier
        self.segmenter = segmenter
        if isinstance(cam, BaseCAM):
            self.cam = cam
        else:
            if target_layers is None:
                raise ValueError("target_layers is required unless a ready CAM object is passed as cam=")
            self.cam = cam(classifier, target_layers)
        self.strategy = strategy if strategy is not None else self.default_strategy()

    @property
    def name(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ stages

    def context(self, images: torch.Tensor, targets: Iterable[int | str] | int | str | None = None) -> PromptContext:
        """Run the classifier and Grad-CAM on ``images`` (B, 3, H, W) normalised.

        ``targets``: None (top class), class indices or names (B,), or one name
        for the whole batch.
        """
        check_normalized(images)
        with eval_mode(self.classifier):  # each module's own mode comes back afterwards
            out = self.cam.compute(images, resolve_targets(targets, len(images)))
        # The classifier's input stays on the classifier's device, so prompt strategies that run it
        # again (mask scoring) build their batches there.
        # In the classifier's dtype too (float64 input is accepted, the model is float32).
        param = next((p for p in self.classifier.parameters() if p.is_floating_point()), None)
        normalized = images.detach().to(device=model_device(self.classifier),
                                        dtype=param.dtype if param is not None else images.dtype)
        extras = {"logits": out.logits}
        if out.probs is not None and out.features is not None and self.cam.model is self.classifier:
            # what the classifier said about the images in the CAM's forward pass: region scoring
            # reuses it instead of running the batch again
            extras["classifier_outputs"] = (out.probs, out.features)
        return PromptContext(images=denormalize(images), normalized=normalized, cams=out.maps,
                             targets=out.targets, classifier=self.classifier, segmenter=self.segmenter,
                             extras=extras)

    def prompts(self, images: torch.Tensor, targets: Iterable[int | str] | int | str | None = None,
                context: PromptContext | None = None) -> Prompts:
        """The points this pipeline would use: (B, N, 2) in (x, y) order, labels (B, N)."""
        ctx = context if context is not None else self.context(images, targets)
        return self.strategy(ctx)

    def segment(self, images: torch.Tensor, point_coords: np.ndarray, point_labels: np.ndarray) -> torch.Tensor:
        """Segment each image from given points.

        Args:
            images: normalised float (B, 3, H, W).
            point_coords: (B, N, 2) pixel coordinates in **(x, y)** order
                (x = column, y = row), not (row, col).
            point_labels: int (B, N): 1 foreground, 0 background, -1 padding.

        Returns:
            bool tensor (B, H, W).
        """
        check_normalized(images)
        prompts = Prompts(np.asarray(point_coords, np.float32), np.asarray(point_labels).astype(np.int64))
        if len(prompts.point_coords) != len(images):
            raise ValueError(f"{len(prompts.point_coords)} point sets for {len(images)} images")
        uint8 = denormalize(images)
        if hasattr(self.segmenter, "prepare"):
            self.segmenter.prepare(list(uint8))
        masks = []
        for i, image in enumerate(uint8):
            coords, labels = prompts.for_image(i)
            if len(coords) == 0:
                raise ValueError(f"image {i} has no prompt point (all labels are -1 padding)")
            self.segmenter.set_image(image)
            masks.append(np.asarray(self.segmenter.predict(coords, labels).mask, bool))
        return torch.from_numpy(np.stack(masks))

    def run(self, images: torch.Tensor, targets: Iterable[int | str] | int | str | None = None,
            context: PromptContext | None = None) -> PipelineOutput:
        """Masks and the points used, for normalised ``images`` (B, 3, H, W)."""
        ctx = context if context is not None else self.context(images, targets)
        prompts = self.prompts(images, context=ctx)
        masks = self.segment(images, prompts.point_coords, prompts.point_labels)
        return PipelineOutput(masks, prompts, ctx.targets, getattr(self.segmenter, "name", "unknown"))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Masks (B, H, W) bool for a normalised batch (B, 3, H, W), prompted at the image centre."""
        return self.run(images).masks


class ForegroundPointsPipeline(BasicSamPipeline):
    """Segment from one foreground point chosen by :class:`~camseg.prompting.regions.MaskScoring`."""

    @staticmethod
    def default_strategy() -> PromptStrategy:
        return MaskScoring(n_background=0, name="foreground")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Masks (B, H, W) bool for a normalised batch (B, 3, H, W), from foreground points only."""
        return self.run(images).masks


class ForegroundBackgroundPipeline(BasicSamPipeline):
    """Segment from the foreground point of :class:`ForegroundPointsPipeline` plus two background points."""

    @staticmethod
    def default_strategy() -> PromptStrategy:
        return MaskScoring(n_background=2, name="foreground_background")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Masks (B, H, W) bool for a normalised batch (B, 3, H, W), from foreground and background points."""
        return self.run(images).masks
