"""Metrics: point hit rate, point distance, IoU (definitions: book, Reference › Metrics).

Pure functions on numpy arrays. Conventions:

* masks are bool arrays (H, W), or (B, H, W) for batches;
* points are **(x, y)** pixel coordinates (x = column, y = row), float or int
  arrays (N, 2), or (B, N, 2) for batches; a point (x, y) falls in pixel
  ``(row, col) = (round(y), round(x))``;
* point labels are int arrays (N,) or (B, N): 1 = foreground, 0 =
  background, -1 = padding (ignored), as in SAM.

Empty cases, defined once:

* IoU of two empty masks (empty union) is **1.0**: the prediction agrees
  perfectly with an empty ground truth. An empty ground truth with a non-empty
  prediction scores 0.0.
* The centre of mass of an empty mask does not exist: :func:`centre_of_mass`
  and the distances raise ``ValueError``. Hit rates need no centre and treat
  an empty mask as one that no point hits.
* A hit rate or distance over zero points is ``None`` (e.g. the background
  rate of a pipeline that makes no background points).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "PointMetrics", "centre_of_mass", "iou", "iou_per_image", "mean_iou", "point_distances", "point_hits",
    "point_metrics",
]


def _as_mask(mask: np.ndarray, name: str, ndim: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != ndim:
        shape = "(H, W)" if ndim == 2 else "(B, H, W)"
        raise ValueError(f"{name} must be a mask {shape}, got shape {mask.shape}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1), got values other than 0 and 1 ({mask.dtype})")
        mask = mask.astype(bool)
    return mask


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two masks (H, W).

    ``|pred & gt| / |pred | gt|``; two empty masks score 1.0.

    >>> import numpy as np
    >>> a = np.zeros((4, 4), bool); a[:2, :2] = True     # 4 pixels
    >>> b = np.zeros((4, 4), bool); b[:2, :] = True      # 8 pixels, 4 shared
    >>> iou(a, b)
    0.5
    >>> iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool))
    1.0
    """
    pred, gt = _as_mask(pred, "pred", 2), _as_mask(gt, "gt", 2)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must have the same (H, W)")
    union = int(np.logical_or(pred, gt).sum())
    return 1.0 if union == 0 else int(np.logical_and(pred, gt).sum()) / union


def iou_per_image(preds: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """IoU of each image of a batch: masks (B, H, W) -> float64 (B,).

    >>> import numpy as np
    >>> p = np.zeros((2, 2, 2), bool); p[0, 0, 0] = True
    >>> g = np.zeros((2, 2, 2), bool); g[0, 0] = True
    >>> iou_per_image(p, g).tolist()   # image 0: 1/2; image 1: both empty
    [0.5, 1.0]
    """
    preds, gts = _as_mask(preds, "preds", 3), _as_mask(gts, "gts", 3)
    if preds.shape != gts.shape:
        raise ValueError(f"preds {preds.shape} and gts {gts.shape} must have the same (B, H, W)")
    inter = np.logical_and(preds, gts).sum((1, 2))
    union = np.logical_or(preds, gts).sum((1, 2))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def mean_iou(preds: np.ndarray, gts: np.ndarray) -> float:
    """Mean over images (not over batches or pixels) of :func:`iou_per_image`."""
    values = iou_per_image(preds, gts)
    if len(values) == 0:
        raise ValueError("mean_iou of an empty batch is undefined")
    return float(values.mean())


def centre_of_mass(mask: np.ndarray) -> np.ndarray:
    """Mean (x, y) of the True pixels of a mask (H, W), float64 (2,).

    >>> import numpy as np
    >>> m = np.zeros((3, 5), bool); m[1, 2:5] = True
    >>> centre_of_mass(m).tolist()
    [3.0, 1.0]
    """
    mask = _as_mask(mask, "mask", 2)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("the centre of mass of an empty mask is undefined (the ground truth has no True pixel)")
    return np.array([xs.mean(), ys.mean()])


def _as_points(points: np.ndarray, shape: tuple[int, int], name: str = "points") -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2) in (x, y) order, got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    h, w = shape
    x, y = np.round(points[:, 0]), np.round(points[:, 1])
    outside = (x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)
    if outside.any():
        raise ValueError(
            f"{name} {points[outside].tolist()} lie outside the image (x in 0..{w - 1}, y in 0..{h - 1}); "
            "points are (x, y), not (row, col)"
        )
    return points


def point_hits(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Whether each point (N, 2) in (x, y) order falls inside ``mask`` (H, W): bool (N,).

    >>> import numpy as np
    >>> m = np.zeros((4, 6), bool); m[1, 4] = True       # row 1, column 4
    >>> point_hits(np.array([[4, 1], [1, 4]]), m).tolist()   # (x=4, y=1) hits; (x=1, y=4) is outside the image
    Traceback (most recent call last):
    ...
    ValueError: points [[1.0, 4.0]] lie outside the image (x in 0..5, y in 0..3); points are (x, y), not (row, col)
    >>> point_hits(np.array([[4, 1], [1, 1]]), m).tolist()
    [True, False]
    """
    mask = _as_mask(mask, "mask", 2)
    points = _as_points(points, mask.shape)
    cols = np.round(points[:, 0]).astype(int)
    rows = np.round(points[:, 1]).astype(int)
    return mask[rows, cols]


def point_distances(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Euclidean distance in pixels from each point (N, 2) (x, y) to the centre of mass of ``mask``: (N,).

    >>> import numpy as np
    >>> m = np.zeros((5, 5), bool); m[2, 2] = True
    >>> point_distances(np.array([[2, 2], [3, 4]]), m).tolist()
    [0.0, 2.23606797749979]
    """
    mask = _as_mask(mask, "mask", 2)
    points = _as_points(points, mask.shape)
    return np.hypot(*(points - centre_of_mass(mask)).T)


@dataclass(frozen=True)
class PointMetrics:
    """Point metrics pooled over all points of a batch (book: Reference › Metrics).

    Rates are fractions of points inside the ground truth; distances are mean
    pixel distances to its centre of mass; ``None`` where there are no points.
    """

    fg_hit_rate: float | None
    fg_distance: float | None
    bg_hit_rate: float | None
    bg_distance: float | None
    n_fg: int
    n_bg: int

    def as_dict(self) -> dict:
        return asdict(self)


def point_metrics(point_coords: np.ndarray, point_labels: np.ndarray, gt_masks: np.ndarray) -> PointMetrics:
    """Hit rates and distances of foreground and background points over a batch.

    Args:
        point_coords: (B, N, 2) in (x, y) order.
        point_labels: (B, N): 1 foreground, 0 background, -1 padding (ignored).
        gt_masks: bool (B, H, W).

    Raises:
        ValueError: shapes disagree, labels other than -1/0/1, points outside
            the image, or an empty ground-truth mask (distance undefined).

    >>> import numpy as np
    >>> gt = np.zeros((1, 4, 4), bool); gt[0, 1:3, 1:3] = True        # centre (1.5, 1.5)
    >>> pts = np.array([[[1, 1], [2, 2], [3, 3], [0, 0]]])
    >>> labels = np.array([[1, 1, 0, -1]])
    >>> m = point_metrics(pts, labels, gt)
    >>> m.fg_hit_rate, m.bg_hit_rate, m.n_fg, m.n_bg
    (1.0, 0.0, 2, 1)
    """
    gt_masks = _as_mask(gt_masks, "gt_masks", 3)
    coords = np.asarray(point_coords, dtype=np.float64)
    labels = np.asarray(point_labels)
    if coords.ndim != 3 or coords.shape[2] != 2:
        raise ValueError(f"point_coords must have shape (B, N, 2) in (x, y) order, got {coords.shape}")
    if labels.shape != coords.shape[:2]:
        raise ValueError(f"point_labels must have shape (B, N) = {coords.shape[:2]}, got {labels.shape}")
    if len(coords) != len(gt_masks):
        raise ValueError(f"{len(coords)} point sets for {len(gt_masks)} masks")
    if not np.isin(labels, (-1, 0, 1)).all():
        raise ValueError(f"point_labels must be 1 (fg), 0 (bg) or -1 (padding), got {np.unique(labels).tolist()}")
    empty = np.flatnonzero(~gt_masks.any(axis=(1, 2)))
    if len(empty):
        raise ValueError(f"gt_masks {empty.tolist()} have no True pixel: point distances to the object's centre are "
                         "undefined; drop those images (IoU alone is defined: an empty union counts 1.0)")
    hits = {0: [], 1: []}
    dists = {0: [], 1: []}
    for pts, lab, gt in zip(coords, labels, gt_masks, strict=True):
        for kind in (0, 1):
            sel = pts[lab == kind]
            if len(sel):
                hits[kind].append(point_hits(sel, gt))
                dists[kind].append(point_distances(sel, gt))

    def mean(parts: list) -> float | None:
        return float(np.concatenate(parts).mean()) if parts else None

    return PointMetrics(
        fg_hit_rate=mean(hits[1]), fg_distance=mean(dists[1]), bg_hit_rate=mean(hits[0]),
        bg_distance=mean(dists[0]), n_fg=int(sum(len(h) for h in hits[1])), n_bg=int(sum(len(h) for h in hits[0])),
    )
