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
* :class:`MaskScoring`: candidate points where the CAM is high are each
  segmented; each distinct region is shown to the classifier *alone* (the
  rest of the image set to the dataset mean), and the region the classifier is
  most confident is the explained class wins; the foreground point is the
  point deepest inside it. Background points go where the CAM is low and far
  from the winning region, and on the strongest rejected region (a
  distractor). This is the mask-scoring idea of text-prompted segmentation
  systems, with the CAM's class as the "text".

One tested helper, :func:`rowcol_to_xy`, converts (row, col) to (x, y).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
import torch
from scipy import ndimage
from torch import nn

__all__ = [
    "CamArgmax", "CamCentroid", "CamInterior", "CenterPoint", "MaskScoring", "PromptContext", "PromptStrategy",
    "Prompts", "deepest_point", "oracle_points", "rowcol_to_xy", "stack_prompts",
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

    def foreground(self) -> "Prompts":
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
        segmenter: a :class:`camseg.segmenters.PromptableSegmenter`, or None.
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
            raise ValueError(f"cams must lie in [0, 1] (as camseg.cam makes them), got {cams.min():g}..{cams.max():g}")
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


def _component_with_most_mass(cam: np.ndarray, threshold: float) -> np.ndarray:
    binary = cam >= threshold
    if not binary.any():
        binary = cam >= cam.max()
    labels, n = ndimage.label(binary)
    if n <= 1:
        return labels > 0
    mass = ndimage.sum(cam, labels, index=np.arange(1, n + 1))
    return labels == (1 + int(np.argmax(mass)))


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
            region = _component_with_most_mass(cam, self.threshold)
            p = [deepest_point(region, cam)]
            avoid = region.copy()
            for _ in range(self.n_background):
                q = _far_background(cam, avoid, self.low)
                p.append(q)
                avoid[int(q[1]), int(q[0])] = True
            pts.append(np.stack(p))
            labs.append(np.array([1] + [0] * self.n_background))
        return stack_prompts(pts, labs, self.name)


# --------------------------------------------------------------------------
# Mask scoring


@dataclass
class MaskScoring:
    """Segment candidate points where the CAM is high; keep the region the classifier recognises alone.

    For each image: candidates are the pixels on a ``stride``-pixel grid where
    the CAM >= ``threshold`` (at most ``max_candidates``, highest CAM first;
    if none, the whole grid). Each candidate is segmented with one foreground
    point (one image embedding, many cheap prompts); regions larger than
    ``max_area`` of the image or smaller than ``min_area`` pixels are dropped,
    duplicates merged. Each distinct region is shown to the classifier alone
    (pixels outside it set to 0 in the normalised input, i.e. the dataset
    mean colour), and scored (:meth:`score_regions`, by default the similarity
    of the classifier's features to the whole image's, times the CAM support);
    the score is multiplied by ``1 - exp(-n / seed_scale)`` where ``n`` is the
    number of candidate points that led to the region (agreement: on noisy
    JPEGs a fragment reached from one point is less trustworthy than a region
    many points lead to). The best region's deepest interior point is the
    foreground prompt.

    Background points (``n_background``): the rejected region with the highest
    CAM that does not overlap the winner (a distractor, used only if its score
    is below ``distractor_max_score`` and below ``distractor_ratio`` times the
    winner's), then low-CAM pixels far from the winner.

    Needs ``ctx.classifier`` and ``ctx.segmenter``.
    """

    threshold: float = 0.2
    stride: int = 3
    max_candidates: int = 96
    max_area: float = 0.5
    min_area: int = 6
    n_background: int = 0
    low: float = 0.2
    distractor_max_score: float = 0.2
    score: str = "similarity_cam"
    cam_weight: float = 0.5
    cam_dilation: int = 2
    seed_scale: float = 4.0
    distractor_ratio: float = 0.25
    batch_size: int = 128
    name: str = "mask_scoring"

    def candidates(self, cam: np.ndarray) -> np.ndarray:
        """Candidate points (K, 2) in (x, y) order, highest CAM first."""
        h, w = cam.shape
        off = self.stride // 2
        ys, xs = np.mgrid[off:h:self.stride, off:w:self.stride]
        ys, xs = ys.ravel(), xs.ravel()
        vals = cam[ys, xs]
        keep = vals >= self.threshold
        if not keep.any():
            keep = np.ones_like(keep)
        order = np.argsort(-vals[keep], kind="stable")[: self.max_candidates]
        return np.stack([xs[keep][order], ys[keep][order]], 1).astype(np.float32)

    def regions(self, ctx: PromptContext, i: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Distinct candidate regions of image ``i`` and the candidate points that made each."""
        seg = ctx.segmenter
        seg.set_image(ctx.images[i])
        h, w = ctx.cams[i].shape
        seen: dict[bytes, int] = {}
        masks: list[np.ndarray] = []
        seeds: list[list[np.ndarray]] = []
        for pt in self.candidates(ctx.cams[i]):
            mask = np.asarray(seg.predict(pt[None], np.ones(1, np.int64)).mask, bool)
            area = int(mask.sum())
            if area < self.min_area or area > self.max_area * h * w:
                continue
            key = np.packbits(mask).tobytes()
            if key in seen:
                seeds[seen[key]].append(pt)
                continue
            seen[key] = len(masks)
            masks.append(mask)
            seeds.append([pt])
        return masks, [np.stack(s) for s in seeds]

    def cam_support(self, cam: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
        """Mean CAM over each region grown by ``cam_dilation`` pixels, (K,).

        Grad-CAM often peaks on an object's edges and corners, just outside it,
        hence the margin. A background region that merely borders or
        surrounds the object is large and mostly far from the peak: low support.
        """
        size = 2 * self.cam_dilation + 1
        kernel = np.ones((size, size), np.uint8)
        return np.array([float(cam[cv2.dilate(m.astype(np.uint8), kernel) > 0].mean()) for m in masks])

    def _check_score(self, cam: np.ndarray | None) -> None:
        if self.score not in ("keep", "similarity", "both", "similarity_cam"):
            raise ValueError(f"score must be 'keep', 'similarity', 'both' or 'similarity_cam', got {self.score!r}")
        if self.score == "similarity_cam" and cam is None:
            raise ValueError("score='similarity_cam' needs the CAM (H, W)")

    @torch.no_grad()
    def _features(self, classifier: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax probabilities (N, C) and penultimate features (N, D) of normalised ``x`` (N, 3, H, W)."""
        head = _last_linear(classifier)
        probs, feats = [], []
        handle = head.register_forward_hook(lambda mod, inp, out: feats.append(inp[0].flatten(1)))
        try:
            for k in range(0, len(x), self.batch_size):
                probs.append(torch.softmax(classifier(x[k:k + self.batch_size]), 1))
        finally:
            handle.remove()
        return torch.cat(probs), torch.cat(feats)

    def _base_scores(self, classifier: nn.Module, normalized: torch.Tensor, masks: list[np.ndarray],
                     target: int, whole: torch.Tensor) -> np.ndarray:
        """``keep``, ``similarity`` or their product for each region, in [0, 1] (no CAM factor).

        ``whole``: the penultimate features (D,) of the whole image.
        """
        m = torch.from_numpy(np.stack(masks)).to(normalized.device)[:, None]
        probs, feats = self._features(classifier, torch.where(m, normalized[None], torch.zeros(())))
        keep = probs[:, target].clamp(0, 1).float().cpu().numpy()
        sim = torch.nn.functional.cosine_similarity(feats, whole[None]).clamp(0, 1).float().cpu().numpy()
        if self.score == "keep":
            return keep
        if self.score == "both":
            return keep * sim
        return sim

    def _cam_factor(self, cam: np.ndarray | None, masks: list[np.ndarray]) -> np.ndarray:
        if self.score == "similarity_cam":
            return self.cam_support(cam, masks) ** self.cam_weight
        return np.ones(len(masks))

    @torch.no_grad()
    def score_regions(self, classifier: nn.Module, image: np.ndarray, normalized: torch.Tensor,
                      masks: list[np.ndarray], target: int, cam: np.ndarray | None = None) -> np.ndarray:
        """Score each region (bool (H, W)) of one image for class ``target``, in [0, 1].

        The classifier sees each region alone (``normalized`` (3, H, W) with every
        other pixel set to 0, the dataset mean). ``keep`` is the softmax
        probability of ``target`` then; ``similarity`` is the cosine similarity
        of the classifier's penultimate features (the input of its last linear
        layer) with those of the whole image, clipped at 0: a region that
        *is* what the classifier saw in the whole image looks the same to it.
        ``score`` picks ``"keep"``, ``"similarity"``, their product ``"both"``,
        or (default) ``"similarity_cam"``: similarity times the CAM support of
        the region (:meth:`cam_support`) to the power ``cam_weight``.

        This scores every region; :meth:`__call__` scores only those that can
        still win (same choice, far fewer classifier runs).
        """
        if not masks:
            return np.zeros(0)
        self._check_score(cam)
        _, whole = self._features(classifier, normalized[None])
        return self._base_scores(classifier, normalized, masks, target, whole[0]) * self._cam_factor(cam, masks)

    def _image_features(self, ctx: PromptContext) -> torch.Tensor:
        """Penultimate features (B, D) of every whole image of the context, computed once."""
        key = ("mask_scoring_features", id(ctx.classifier))
        if key not in ctx.extras:
            ctx.extras[key] = self._features(ctx.classifier, ctx.normalized)[1]
        return ctx.extras[key]

    def _candidate_regions(self, ctx: PromptContext, i: int) -> dict:
        """Regions of image ``i`` with their score bounds, cached in ``ctx.extras`` so that
        strategies differing only in their background points share the work.

        ``score`` = base score (``keep``/``similarity``, in [0, 1]) x ``factor``
        (CAM support and agreement), so ``factor`` bounds it from above;
        ``scores`` holds NaN until a region is scored (:meth:`_score`).
        """
        key = ("mask_scoring", self.threshold, self.stride, self.max_candidates, self.max_area, self.min_area,
               self.score, self.cam_weight, self.cam_dilation, self.seed_scale,
               getattr(ctx.segmenter, "name", id(ctx.segmenter)))
        cache = ctx.extras.setdefault(key, {})
        if i not in cache:
            masks, seeds = self.regions(ctx, i)
            self._check_score(ctx.cams[i])
            factor = self._cam_factor(ctx.cams[i], masks)
            if self.seed_scale > 0 and masks:
                factor = factor * (1.0 - np.exp(-np.array([len(s) for s in seeds]) / self.seed_scale))
            cache[i] = {"masks": masks, "factor": np.asarray(factor, np.float64),
                        "scores": np.full(len(masks), np.nan)}
        return cache[i]

    def _score(self, ctx: PromptContext, i: int, entry: dict, which: np.ndarray) -> None:
        """Fill ``entry["scores"]`` for the region indices ``which`` not scored yet."""
        todo = [int(k) for k in which if np.isnan(entry["scores"][k])]
        if not todo:
            return
        whole = self._image_features(ctx)[i]
        base = self._base_scores(ctx.classifier, ctx.normalized[i], [entry["masks"][k] for k in todo],
                                 int(ctx.targets[i]), whole)
        entry["scores"][todo] = base * entry["factor"][todo]

    def _best(self, ctx: PromptContext, i: int, entry: dict, cam_mean: np.ndarray) -> int:
        """Index of the winning region: highest score, ties to the higher mean CAM.

        Branch and bound: regions are scored in order of their upper bound
        (``factor``), a few at a time, until no unscored region's bound reaches
        the best score found. The choice is the one scoring every region
        would make.
        """
        bound = entry["factor"]
        order = np.argsort(-bound, kind="stable")
        k, chunk = 0, 4
        while k < len(order):
            best = np.nanmax(entry["scores"]) if not np.isnan(entry["scores"]).all() else -np.inf
            if bound[order[k]] < best:
                break
            self._score(ctx, i, entry, order[k:k + chunk])
            k, chunk = k + chunk, chunk * 2
        scores = np.where(np.isnan(entry["scores"]), -np.inf, entry["scores"])
        return int(np.lexsort((cam_mean, scores))[-1])

    def __call__(self, ctx: PromptContext) -> Prompts:
        if ctx.classifier is None or ctx.segmenter is None:
            raise ValueError("MaskScoring needs a classifier and a segmenter in the PromptContext")
        was_training = ctx.classifier.training
        ctx.classifier.eval()
        pts, labs, chosen = [], [], []
        try:
            for i in range(ctx.batch):
                cam = ctx.cams[i]
                entry = self._candidate_regions(ctx, i)
                masks = entry["masks"]
                if len(masks) == 0:  # nothing segmentable: fall back to the CAM's interior
                    region = _component_with_most_mass(cam, 0.5)
                    best = -1
                else:
                    cam_mean = np.array([cam[m].mean() for m in masks])
                    best = self._best(ctx, i, entry, cam_mean)
                    region = masks[best]
                p, lab = [deepest_point(region, cam)], [1]
                avoid = region.copy()
                if self.n_background and best >= 0:
                    rival = self._distractor(ctx, i, entry, cam_mean, best)
                    if rival is not None:
                        p.append(deepest_point(masks[rival], cam))
                        lab.append(0)
                        avoid |= masks[rival]
                while len(lab) < 1 + self.n_background:
                    q = _far_background(cam, avoid, self.low)
                    p.append(q)
                    lab.append(0)
                    avoid[int(q[1]), int(q[0])] = True
                pts.append(np.stack(p))
                labs.append(np.array(lab, np.int64))
                chosen.append(region)
        finally:
            ctx.classifier.train(was_training)
        ctx.extras[self.name + "_regions"] = np.stack(chosen)
        return stack_prompts(pts, labs, self.name)

    def _distractor(self, ctx: PromptContext, i: int, entry: dict, cam_mean: np.ndarray, best: int) -> int | None:
        """The rejected region with the highest mean CAM that does not overlap the winner
        and scores at most ``min(distractor_max_score, distractor_ratio * winner's score)``,
        or None. A region whose bound is already below that limit needs no scoring."""
        masks, bound = entry["masks"], entry["factor"]
        limit = min(self.distractor_max_score, self.distractor_ratio * entry["scores"][best])
        for k in np.argsort(-cam_mean):
            if k == best or (masks[k] & masks[best]).any():
                continue
            if bound[k] <= limit:
                return int(k)
            self._score(ctx, i, entry, np.array([k]))
            if entry["scores"][k] <= limit:
                return int(k)
        return None


def _last_linear(model: nn.Module) -> nn.Linear:
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    if last is None:
        raise ValueError("MaskScoring needs a classifier whose last layer is an nn.Linear (its input = features)")
    return last


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
