"""How well a heatmap points at the object, and a CAM-only segmentation baseline.

Pure functions on numpy arrays used by the book and the report:

* :func:`cam_mass_inside`: the fraction of a CAM's total mass that lies inside
  the ground-truth mask (1 = all attention on the object);
* :func:`pointing_game`: whether the CAM's maximum falls inside the mask
  (Zhang et al., 2016);
* :func:`threshold_masks`: the weakly supervised baseline the book sets beside SAM,
  a mask made from the CAM alone by a threshold, without any segmenter;
* :func:`worst_images`: the indices of the lowest per-image scores.

Conventions: CAMs are float (B, H, W) in [0, 1], masks bool (B, H, W).
"""

from __future__ import annotations

import numpy as np

__all__ = ["cam_mass_inside", "pointing_game", "slic_masks", "slic_superpixels", "threshold_masks", "worst_images"]


def _check(cams: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cams = np.asarray(cams, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if cams.ndim != 3 or cams.shape != masks.shape:
        raise ValueError(f"cams and masks must both be (B, H, W), got {cams.shape} and {masks.shape}")
    return cams, masks


def cam_mass_inside(cams: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per image, the fraction of the CAM's mass inside the mask: float64 (B,).

    An all-zero CAM has no mass and scores 0.0.

    >>> cam = np.zeros((1, 2, 2)); cam[0, 0, 0] = 3.0; cam[0, 1, 1] = 1.0
    >>> m = np.zeros((1, 2, 2), bool); m[0, 0, 0] = True
    >>> cam_mass_inside(cam, m).tolist()
    [0.75]
    """
    cams, masks = _check(cams, masks)
    total = cams.sum((1, 2))
    inside = np.where(masks, cams, 0.0).sum((1, 2))
    return np.where(total > 0, inside / np.where(total > 0, total, 1.0), 0.0)


def pointing_game(cams: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per image, whether the CAM's (first) maximum lies inside the mask: bool (B,).

    >>> cam = np.zeros((2, 2, 3)); cam[0, 1, 2] = 1.0; cam[1, 0, 0] = 1.0
    >>> m = np.zeros((2, 2, 3), bool); m[:, 1, 2] = True
    >>> pointing_game(cam, m).tolist()
    [True, False]
    """
    cams, masks = _check(cams, masks)
    flat = cams.reshape(len(cams), -1).argmax(1)
    return masks.reshape(len(masks), -1)[np.arange(len(masks)), flat]


def threshold_masks(cams: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The CAM-only baseline: pixels whose CAM is at least ``threshold``, bool (B, H, W).

    >>> threshold_masks(np.array([[[0.2, 0.5, 0.9]]]), 0.5).tolist()
    [[[False, True, True]]]
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    cams = np.asarray(cams)
    if cams.ndim != 3:
        raise ValueError(f"cams must be (B, H, W), got {cams.shape}")
    return cams >= threshold


def slic_superpixels(images: np.ndarray, n_segments: int = 80, compactness: float = 10.0) -> np.ndarray:
    """SLIC superpixel labels of each image (uint8 (B, H, W, 3) RGB), int (B, H, W) from 0.

    Computed once per image and shared by every threshold of :func:`slic_masks`.
    """
    from skimage.segmentation import slic

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (B, H, W, 3), got {images.dtype} {images.shape}")
    return np.stack([slic(image, n_segments=n_segments, compactness=compactness, start_label=0)
                     for image in images]) if len(images) else np.zeros(images.shape[:3], int)


def slic_masks(images: np.ndarray | None, cams: np.ndarray, threshold: float = 0.5, n_segments: int = 80,
               compactness: float = 10.0, superpixels: np.ndarray | None = None) -> np.ndarray:
    """The CAM-only baseline refined with SLIC superpixels, bool (B, H, W).

    Each image (uint8 (B, H, W, 3) RGB) is cut into SLIC superpixels
    (:func:`slic_superpixels`, about ``n_segments`` of them; pass
    ``superpixels`` to reuse them across thresholds); a superpixel belongs to
    the mask when its mean CAM (``cams`` (B, H, W) in [0, 1]) is at least
    ``threshold``. Edges then follow the image instead of the coarse CAM,
    still without any segmenter.

    >>> img = np.zeros((1, 16, 16, 3), np.uint8); img[0, :, :8] = 255   # white left half
    >>> cam = np.zeros((1, 16, 16)); cam[0, :, :6] = 1.0                # CAM on most of it
    >>> slic_masks(img, cam, 0.5, n_segments=4)[0].sum(axis=0).tolist()   # the whole left half
    [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0]
    """
    from scipy import ndimage

    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    labels = slic_superpixels(images, n_segments, compactness) if superpixels is None else np.asarray(superpixels)
    cams = np.asarray(cams)
    if cams.shape != labels.shape:
        raise ValueError(f"cams must be (B, H, W) = {labels.shape}, got {cams.shape}")
    out = np.zeros(cams.shape, bool)
    for i, (lab, cam) in enumerate(zip(labels, cams)):
        means = np.asarray(ndimage.mean(cam, lab, np.arange(lab.max() + 1)))
        out[i] = means[lab] >= threshold
    return out


def worst_images(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` lowest scores, lowest first (ties: lower index first).

    >>> worst_images(np.array([0.9, 0.1, 0.5, 0.1]), 2).tolist()
    [1, 3]
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return np.argsort(scores, kind="stable")[:k]
