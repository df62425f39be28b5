"""Why a segmentation failed: one cause per failed image, counted.

An image *fails* when its IoU is below a threshold (default 0.5). Each failed
image gets the first cause that applies, in the order of the pipeline's
stages, so that a cause upstream is never blamed on a stage downstream:

1. ``"wrong class"``: the classifier's top class is not the true class, so
   Grad-CAM explained the wrong object;
2. ``"CAM off the object"``: the class is right but the CAM's maximum lies
   outside the shape, and the foreground point is off the shape too;
3. ``"right CAM, wrong region"``: the CAM's maximum is on the shape, yet the
   region chosen from it (and its foreground point) is not;
4. ``"small shape"``: the foreground point is on the shape, and the shape
   covers fewer than ``small_area`` pixels (the segmenter's edge errors weigh
   most there);
5. ``"segmentation leak"``: the foreground point is on the shape and the mask
   spills over (more extra pixels than missed ones);
6. ``"segmentation misses part"``: the foreground point is on the shape and
   the mask misses more of it than it adds.

Conventions: masks and CAMs (N, H, W); points (N, K, 2) in **(x, y)** order
with labels (N, K) (1 = foreground, 0 = background, -1 = padding); the pixel
of a point is ``(row, col) = (round(y), round(x))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FAILURE_KINDS", "Failures", "classify_failures"]

FAILURE_KINDS: tuple[str, ...] = (
    "wrong class", "CAM off the object", "right CAM, wrong region", "small shape", "segmentation leak",
    "segmentation misses part",
)
"""Causes in the order they are tested."""


@dataclass(frozen=True)
class Failures:
    """The cause of each failed image.

    Attributes:
        kinds: str (N,): the cause of each image, ``""`` for an image that did not fail.
        iou_threshold: an image fails below this IoU.
        small_area: shapes with fewer pixels count as small.
    """

    kinds: np.ndarray
    iou_threshold: float
    small_area: int

    @property
    def n_images(self) -> int:
        return int(len(self.kinds))

    @property
    def n_failures(self) -> int:
        return int((self.kinds != "").sum())

    @property
    def counts(self) -> dict[str, int]:
        """``{cause: number of failed images}`` for every cause of :data:`FAILURE_KINDS`, in order."""
        return {k: int((self.kinds == k).sum()) for k in FAILURE_KINDS}

    def examples(self, kind: str, k: int = 1) -> np.ndarray:
        """Indices of the first ``k`` images that failed for ``kind``."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {FAILURE_KINDS}")
        return np.flatnonzero(self.kinds == kind)[:k]


def _first_foreground(coords: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, 2) (x, y) of each image's first foreground point; NaN where there is none."""
    out = np.full((len(coords), 2), np.nan)
    for i, (c, lab) in enumerate(zip(coords, labels)):
        fg = np.flatnonzero(lab == 1)
        if len(fg):
            out[i] = c[fg[0]]
    return out


def _inside(masks: np.ndarray, xy: np.ndarray) -> np.ndarray:
    n, h, w = masks.shape
    ok = ~np.isnan(xy).any(1)
    rows = np.clip(np.round(np.nan_to_num(xy[:, 1])).astype(int), 0, h - 1)
    cols = np.clip(np.round(np.nan_to_num(xy[:, 0])).astype(int), 0, w - 1)
    return ok & masks[np.arange(n), rows, cols]


def classify_failures(ious: np.ndarray, labels: np.ndarray, predicted: np.ndarray, cams: np.ndarray,
                      truths: np.ndarray, predictions: np.ndarray, point_coords: np.ndarray,
                      point_labels: np.ndarray, iou_threshold: float = 0.5, small_area: int = 150) -> Failures:
    """One cause per image whose IoU is below ``iou_threshold`` (see the module docstring).

    Args:
        ious: float (N,) per-image IoU of the pipeline.
        labels: int (N,) true classes; predicted: int (N,) the classifier's top classes.
        cams: float (N, H, W) the CAMs the prompts were made from.
        truths: bool (N, H, W) ground truth; predictions: bool (N, H, W) the pipeline's masks.
        point_coords: (N, K, 2) (x, y); point_labels: (N, K).
        iou_threshold: failure below this IoU, in (0, 1].
        small_area: pixel count under which a shape is small.

    >>> t = np.zeros((2, 4, 4), bool); t[:, 1:3, 1:3] = True
    >>> cams = t.astype(float); pred = t.copy(); pred[1] = True        # image 1 leaks everywhere
    >>> pts = np.array([[[1.5, 1.5]], [[1.0, 1.0]]]); lab = np.ones((2, 1), int)
    >>> f = classify_failures(np.array([1.0, 0.25]), np.zeros(2, int), np.zeros(2, int), cams, t, pred,
    ...                       pts, lab, small_area=2)
    >>> f.kinds.tolist(), f.counts["segmentation leak"]
    (['', 'segmentation leak'], 1)
    """
    ious = np.asarray(ious, dtype=float)
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    cams, truths, predictions = np.asarray(cams, float), np.asarray(truths, bool), np.asarray(predictions, bool)
    coords, plabels = np.asarray(point_coords, float), np.asarray(point_labels)
    n = len(ious)
    if ious.ndim != 1:
        raise ValueError(f"ious must be 1-D (N,), got shape {ious.shape}")
    if labels.shape != (n,) or predicted.shape != (n,):
        raise ValueError(f"labels {labels.shape} and predicted {predicted.shape} must both be ({n},)")
    if truths.ndim != 3 or len(truths) != n or cams.shape != truths.shape or predictions.shape != truths.shape:
        raise ValueError(f"cams {cams.shape}, truths {truths.shape} and predictions {predictions.shape} must all be "
                         f"(N, H, W) with N = {n}")
    if coords.ndim != 3 or coords.shape[0] != n or coords.shape[2] != 2 or plabels.shape != coords.shape[:2]:
        raise ValueError(f"point_coords must be ({n}, K, 2) in (x, y) order and point_labels ({n}, K), got "
                         f"{coords.shape} and {plabels.shape}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold}")
    if small_area < 0:
        raise ValueError(f"small_area must be >= 0, got {small_area}")

    flat = cams.reshape(n, -1).argmax(1)
    cam_on = truths.reshape(n, -1)[np.arange(n), flat]
    fg_on = _inside(truths, _first_foreground(coords, plabels))
    area = truths.sum((1, 2))
    extra = (predictions & ~truths).sum((1, 2))
    missed = (~predictions & truths).sum((1, 2))
    kinds = np.full(n, "", dtype=object)
    failed = ious < iou_threshold
    rules = (
        predicted != labels,
        ~fg_on & ~cam_on,
        ~fg_on & cam_on,
        area < small_area,
        extra > missed,
        np.ones(n, bool),
    )
    undecided = failed.copy()
    for kind, rule in zip(FAILURE_KINDS, rules, strict=True):
        hit = undecided & rule
        kinds[hit] = kind
        undecided &= ~hit
    return Failures(kinds=kinds.astype(str), iou_threshold=iou_threshold, small_area=int(small_area))
