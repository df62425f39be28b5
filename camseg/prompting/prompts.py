"""Point-prompt strategies: from a CAM heatmap to foreground/background points.

Every strategy maps a :class:`PromptContext` (the images, their CAMs, the
explained classes, and optionally the classifier and a segmenter) to
:class:`Prompts`: point coordinates (B, N, 2) in **(x, y)** pixel order
(x = column, y = row) and labels (B, N), 1 = foreground, 0 = background,
-1 = padding (ignored, as in SAM).

Baselines people use:

* :class:`CenterPoint`: the image centre, ignoring the CAM.
* :class:`CamArgmax`: the pixel where the CAM peaks.
* :class:`CamCentroid`: the CAM-weighted centroid of the pixels above a threshold.

camseg's strategies:

* :class:`CamInterior`: the point deepest inside (largest distance to the
  border of) the strongest connected region of the thresholded CAM.
* :class:`~camseg.prompting.regions.MaskScoring` (in :mod:`camseg.prompting.regions`): candidate
  points where the CAM is high are each segmented; the
  distinct regions are scored (CAM support, what the classifier sees in each
  region alone, ...) and the best region's deepest point is the foreground
  prompt. Background points go on a rejected distractor region and where the
  CAM is low, far from the winner (:func:`background_points`, shared).

One tested helper, :func:`rowcol_to_xy`, converts (row, col) to (x, y).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from scipy import ndimage
from torch import nn

__all__ = [
    "CamArgmax", "CamCentroid", "CamInterior", "CenterPoint", "PromptContext", "PromptStrategy",
    "Prompts", "background_points", "deepest_point", "oracle_points", "rowcol_to_xy", "stack_prompts",
    "strongest_region",
]


def rowcol_to_xy(rowcol: np.ndarray) -> np.ndarray:
    """Convert points from (row, col) to (x, y) = (col, row); any shape (..., 2).

    >>> rowcol_to_xy(np.array([[3, 7]])).tolist()
    [[7, 3]]
    """
    rowcol = np.asarray(rowcol)
    if rowcol.shape[-1:] != (2,):
        raise ValueError(f"points must have a last axis of 2, got shape {rowcol.shape}")
    return rowcol[..., ::-1].copy()


@dataclass(frozen=True)
class Prompts:
    """Point prompts for a batch.

    Attributes:
        point_coords: float32 (B, N, 2), (x, y) pixel coordinates.
        point_labels: int64 (B, N): 1 foreground, 0 background, -1 padding.
        strategy: name of the strategy that made them.
    """

    point_coords: np.ndarray
    point_labels: np.ndarray
    strategy: str = ""

    def __post_init__(self) -> None:
        c, lab = np.asarray(self.point_coords), np.asarray(self.point_labels)
        if c.ndim != 3 or c.shape[2] != 2:
            raise ValueError(f"point_coords must be (B, N, 2) in (x, y) order, got {c.shape}")
        if lab.shape != c.shape[:2]:
            raise ValueError(f"point_labels must be (B, N) = {c.shape[:2]}, got {lab.shape}")

    def for_image(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Points (n, 2) (x, y) and labels (n,) of image ``i``, padding removed."""
        keep = self.point_labels[i] >= 0
        return self.point_coords[i][keep], self.point_labels[i][keep]

    def foreground(self) -> Prompts:
        """The same prompts with background points turned into padding."""
        labels = np.where(self.point_labels == 1, 1, -1).astype(np.int64)
        return Prompts(self.point_coords, labels, self.strategy)


def stack_prompts(points: Sequence[np.ndarray], labels: Sequence[np.ndarray], strategy: str = "") -> Prompts:
    """Pad per-image points (n_i, 2) and labels (n_i,) to one :class:`Prompts` (padding label -1)."""
    n = max((len(p) for p in points), default=0)
    coords = np.zeros((len(points), max(n, 1), 2), np.float32)
    labs = np.full((len(points), max(n, 1)), -1, np.int64)
    for i, (p, lab) in enumerate(zip(points, labels, strict=True)):
        coords[i, : len(p)] = p
        labs[i, : len(lab)] = lab
    return Prompts(coords, labs, strategy)


@dataclass
class PromptContext:
    """What a strategy may look at, for a batch of B images of (H, W) pixels.

    Attributes:
        images: uint8 (B, H, W, 3) RGB.
        normalized: float32 (B, 3, H, W), the classifier's input.
        cams: float32 (B, H, W) in [0, 1].
        targets: int64 (B,), the class each CAM explains.
        classifier: the classifier (for strategies that score regions), or None.
        segmenter: a :class:`camseg.segmenters.PromptableSegmenter <camseg.segmenters.base.PromptableSegmenter>`,
            or None.
    """

    images: np.ndarray
    normalized: torch.Tensor
    cams: np.ndarray
    targets: np.ndarray
    classifier: nn.Module | None = None
    segmenter: object | None = None
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        cams = np.asarray(self.cams)
        if cams.ndim != 3:
            raise ValueError(f"cams must be (B, H, W), got shape {cams.shape}")
        if cams.dtype.kind != "f":
            raise ValueError(f"cams must be float maps in [0, 1], got dtype {cams.dtype}")
        if not np.isfinite(cams).all():
            raise ValueError("cams contain NaN or infinite values")
        if cams.size and (cams.min() < 0 or cams.max() > 1 + 1e-6):
            raise ValueError(f"cams must lie in [0, 1] (as camseg.models.cam makes them), "
                             f"got {cams.min():g}..{cams.max():g}")
        images = np.asarray(self.images)
        if images.shape != (*cams.shape, 3):
            raise ValueError(f"images must be uint8 (B, H, W, 3) = {(*cams.shape, 3)} to match cams, "
                             f"got {images.dtype} {images.shape}")
        if len(np.asarray(self.targets).reshape(-1)) != len(cams):
            raise ValueError(f"targets must give one class per image ({len(cams)}), got {np.shape(self.targets)}")

    @property
    def batch(self) -> int:
        return len(self.cams)


class PromptStrategy(Protocol):
    """Maps a :class:`PromptContext` to :class:`Prompts`."""

    name: str

    def __call__(self, ctx: PromptContext) -> Prompts: ...


# --------------------------------------------------------------------------
# Geometry helpers


def deepest_point(region: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """The pixel of ``region`` (bool (H, W)) farthest from its border, as (x, y) float32 (2,).

    Ties go to the larger ``weight`` (e.g. the CAM), then to the pixel nearest
    the region's centre of mass.

    >>> r = np.zeros((5, 7), bool); r[1:4, 1:6] = True
    >>> deepest_point(r).tolist()
    [3.0, 2.0]
    """
    region = np.asarray(region, bool)
    if not region.any():
        raise ValueError("region is empty: no pixel to choose")
    dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    ys, xs = np.nonzero(region)
    cy, cx = ys.mean(), xs.mean()
    d = dist[ys, xs]
    w = np.zeros_like(d) if weight is None else np.asarray(weight)[ys, xs]
    near = -np.hypot(ys - cy, xs - cx)
    order = np.lexsort((near, w, np.round(d, 6)))
    k = order[-1]
    return np.array([xs[k], ys[k]], np.float32)


def strongest_region(cam: np.ndarray, threshold: float) -> np.ndarray:
    """The connected region of ``cam >= threshold`` (bool (H, W)) holding the most CAM mass
    (the CAM's maximum alone when nothing reaches the threshold)."""
    binary = cam >= threshold
    if not binary.any():
        binary = cam >= cam.max()
    labels, n = ndimage.label(binary)
    if n <= 1:
        return labels > 0
    mass = ndimage.sum(cam, labels, index=np.arange(1, n + 1))
    return labels == (1 + int(np.argmax(mass)))


def background_points(cam: np.ndarray, avoid: np.ndarray, n: int, low: float = 0.2) -> list[np.ndarray]:
    """``n`` background points (x, y), float32 (2,) each: in turn, the pixel farthest from
    ``avoid`` (bool (H, W), e.g. the chosen object) and from the points already placed, among
    pixels whose CAM is below ``low``. Shared by every strategy that places background points.

    >>> cam = np.zeros((5, 9)); avoid = np.zeros((5, 9), bool); avoid[:, :2] = True
    >>> [p.tolist() for p in background_points(cam, avoid, 1)]
    [[8.0, 0.0]]
    """
    avoid = np.asarray(avoid, bool).copy()
    out = []
    for _ in range(max(0, n)):
        q = _far_background(cam, avoid, low)
        out.append(q)
        avoid[int(q[1]), int(q[0])] = True
    return out


def _far_background(cam: np.ndarray, avoid: np.ndarray, low: float) -> np.ndarray:
    """The point farthest from ``avoid`` (bool (H, W)) among pixels with CAM below ``low``, (x, y)."""
    dist = ndimage.distance_transform_edt(~avoid) if avoid.any() else np.ones_like(cam)
    allowed = (cam < low) & ~avoid
    if not allowed.any():
        allowed = ~avoid
    if not allowed.any():
        allowed = np.ones_like(avoid)
    score = np.where(allowed, dist - cam, -np.inf)
    y, x = np.unravel_index(int(np.argmax(score)), score.shape)
    return np.array([x, y], np.float32)


# --------------------------------------------------------------------------
# Baselines


@dataclass
class CenterPoint:
    """One foreground point at the image centre ((W - 1) / 2, (H - 1) / 2), rounded down."""

    name: str = "center"

    def __call__(self, ctx: PromptContext) -> Prompts:
        b, h, w = ctx.cams.shape
        coords = np.tile(np.array([(w - 1) // 2, (h - 1) // 2], np.float32), (b, 1, 1))
        return Prompts(coords, np.ones((b, 1), np.int64), self.name)


@dataclass
class CamArgmax:
    """One foreground point where the CAM is largest; optionally one background
    point where it is smallest, farthest from the peak."""

    with_background: bool = False
    name: str = "cam_argmax"

    def __call__(self, ctx: PromptContext) -> Prompts:
        pts, labs = [], []
        for cam in ctx.cams:
            y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
            p = [np.array([x, y], np.float32)]
            if self.with_background:
                peak = np.zeros_like(cam, bool)
                peak[y, x] = True
                p.append(_far_background(cam, peak, low=cam.min() + 1e-6 + 0.1))
            pts.append(np.stack(p))
            labs.append(np.array([1] + [0] * (len(p) - 1)))
        return stack_prompts(pts, labs, self.name)


@dataclass
class CamCentroid:
    """One foreground point at the CAM-weighted centroid of the pixels with CAM >= ``threshold``."""

    threshold: float = 0.6
    name: str = "cam_centroid"

    def __call__(self, ctx: PromptContext) -> Prompts:
        pts = []
        for cam in ctx.cams:
            w = np.where(cam >= min(self.threshold, cam.max()), cam, 0.0)
            if w.sum() <= 0:
                w = np.ones_like(cam)
            ys, xs = np.mgrid[: cam.shape[0], : cam.shape[1]]
            pts.append(np.array([[(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()]], np.float32))
        return stack_prompts(pts, [np.ones(1, np.int64)] * len(pts), self.name)


@dataclass
class CamInterior:
    """One foreground point deepest inside the thresholded CAM's strongest region.

    The CAM >= ``threshold`` is split into connected regions; the one with the
    most CAM mass is kept and the point farthest from its border (ties: higher
    CAM) is the prompt. With ``n_background`` > 0, background points go to
    low-CAM pixels (< ``low``) as far as possible from that region.
    """

    threshold: float = 0.5
    n_background: int = 0
    low: float = 0.2
    name: str = "cam_interior"

    def __call__(self, ctx: PromptContext) -> Prompts:
        pts, labs = [], []
        for cam in ctx.cams:
            region = strongest_region(cam, self.threshold)
            p = [deepest_point(region, cam), *background_points(cam, region, self.n_background, self.low)]
            pts.append(np.stack(p))
            labs.append(np.array([1] + [0] * self.n_background))
        return stack_prompts(pts, labs, self.name)


def oracle_points(gt_masks: np.ndarray) -> Prompts:
    """The upper-bound prompt: per image, the mask pixel nearest the mask's centre of mass, as (x, y).

    Args:
        gt_masks: bool (B, H, W) ground-truth masks, each non-empty.
    """
    gt_masks = np.asarray(gt_masks, bool)
    pts = []
    for i, m in enumerate(gt_masks):
        ys, xs = np.nonzero(m)
        if len(xs) == 0:
            raise ValueError(f"ground-truth mask {i} is empty: no oracle point")
        k = int(np.argmin(np.hypot(xs - xs.mean(), ys - ys.mean())))
        pts.append(np.array([[xs[k], ys[k]]], np.float32))
    return stack_prompts(pts, [np.ones(1, np.int64)] * len(pts), "oracle")
