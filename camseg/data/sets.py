"""Training and validation sets drawn from a shape distribution on CIFAR-10 photos.

:class:`FreshShapes` draws new training images every epoch; :func:`validation_set` a fixed
validation set on the published val split's backgrounds; :func:`wide_training` both, for a
dataset folder (the ``recipe="wide"`` training of :func:`camseg.models.classifier.train_classifier`).
"""

from __future__ import annotations

import numpy as np

from camseg.data.profiles import WIDE, ShapeDistribution, sample_images
from camseg.data.shapes import CLASSES

__all__ = ["FreshShapes", "dataset_validation_set", "training_backgrounds", "validation_set", "wide_training"]


class FreshShapes:
    """Training images drawn anew every epoch: ``shapes(epoch) -> (images, labels)``.

    Each epoch renders ``n`` shapes of ``dist`` (classes balanced, shuffled)
    on backgrounds drawn from ``backgrounds`` (CIFAR-10 *train* photos, uint8
    (M, 32, 32, 3)). Seeded by ``(seed, epoch)``, so a run is reproducible and
    every epoch sees new shapes.

    Args:
        backgrounds: uint8 (M, 32, 32, 3) RGB.
        dist: the distribution (default :data:`~camseg.data.profiles.WIDE`).
        n: images per epoch.
        seed: random seed.
    """

    def __init__(self, backgrounds: np.ndarray, dist: ShapeDistribution = WIDE, n: int = 3500, seed: int = 0) -> None:
        backgrounds = np.asarray(backgrounds)
        if backgrounds.dtype != np.uint8 or backgrounds.ndim != 4 or backgrounds.shape[-1] != 3 or not len(backgrounds):
            raise ValueError(f"backgrounds must be uint8 (M, h, w, 3) with M >= 1, got {backgrounds.dtype} "
                             f"{backgrounds.shape}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.backgrounds, self.dist, self.n, self.seed = backgrounds, dist, int(n), int(seed)

    def __call__(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (n, H, W, 3) images and int64 (n,) labels of epoch ``epoch``."""
        rng = np.random.default_rng([self.seed, 7919, epoch])
        labels = np.arange(self.n) % len(CLASSES)
        rng.shuffle(labels)
        picks = rng.choice(len(self.backgrounds), self.n, replace=self.n > len(self.backgrounds))
        images, _ = sample_images(rng, self.backgrounds[picks], labels, self.dist)
        return images, labels.astype(np.int64)


def training_backgrounds(source, seed: int = 0, n: int = 12000, sizes=None) -> np.ndarray:
    """CIFAR-10 *train* photos for fresh training shapes: the published train
    split's backgrounds plus ``n - sizes["train"]`` unused ones, never the
    val split's (they hold the validation set). uint8 (n, 32, 32, 3)."""
    from camseg.data.dataset import SPLITS, background_indices

    sizes = dict(SPLITS if sizes is None else sizes)
    train, _ = background_indices(source, "train", min(n, sizes["train"]), seed, sizes)
    rest, _ = background_indices(source, "rest", max(0, n - len(train)), seed, sizes)
    return source.load(True, np.concatenate([train, rest]))


def validation_set(source, dist: ShapeDistribution = WIDE, seed: int = 0, sizes=None) -> tuple[np.ndarray, ...]:
    """A fixed validation set of ``dist`` on the published val split's backgrounds
    (CIFAR-10 train photos that training never sees).

    Returns:
        ``(images, labels, masks)``: uint8 (N, H, W, 3), int64 (N,), bool (N, H, W).
    """
    from camseg.data.dataset import SPLITS, background_indices

    sizes = dict(SPLITS if sizes is None else sizes)
    idx, _ = background_indices(source, "val", sizes["val"], seed, sizes)
    rng = np.random.default_rng([seed, 104729])
    labels = np.arange(len(idx)) % len(CLASSES)
    rng.shuffle(labels)
    images, masks = sample_images(rng, source.load(True, idx), labels, dist)
    return images, labels.astype(np.int64), masks


def wide_training(data, seed: int = 0, n: int | None = None, cifar10=None,
                  dist: ShapeDistribution = WIDE) -> tuple[FreshShapes, tuple[np.ndarray, ...]]:
    """The inputs of a ``recipe="wide"`` training on the dataset at ``data``:
    fresh ``dist`` shapes every epoch on CIFAR-10 train photos (not the val
    split's) and a fixed ``dist`` validation set on the val split's photos.

    Args:
        data: a dataset folder built by :func:`camseg.data.dataset.build_dataset`
            (its manifest gives the seed and sizes behind the backgrounds).
        seed: seed of the fresh shapes.
        n: images per epoch (default: the dataset's train split size).
        cifar10: CIFAR-10 source or path (default: autodetect).

    Returns:
        ``(fresh, val)`` for :func:`camseg.models.classifier.train_classifier`.
    """
    source, data_seed, sizes = _backgrounds_of(data, cifar10)
    n = int(sizes.get("train", 0)) if n is None else int(n)
    spare = source.count(True) - sizes.get("train", 0) - sizes.get("val", 0)
    pool = sizes.get("train", 0) + max(0, min(8000 - sizes.get("train", 0), spare))
    backgrounds = training_backgrounds(source, data_seed, pool, sizes)
    return FreshShapes(backgrounds, dist, n, seed), validation_set(source, dist, data_seed, sizes)


def dataset_validation_set(data, dist: ShapeDistribution = WIDE, cifar10=None) -> tuple[np.ndarray, ...]:
    """:func:`validation_set` of ``dist`` on the val-split photos of the dataset at ``data`` (its
    manifest gives the seed and sizes behind the backgrounds), as :func:`wide_training` draws it.

    Returns:
        ``(images, labels, masks)``: uint8 (N, H, W, 3), int64 (N,), bool (N, H, W).
    """
    source, data_seed, sizes = _backgrounds_of(data, cifar10)
    return validation_set(source, dist, data_seed, sizes)


def _backgrounds_of(data, cifar10=None) -> tuple[object, int, dict]:
    """``(source, seed, sizes)`` behind the dataset at ``data``: its CIFAR-10 source (``cifar10``, a
    source or path, default autodetect), and the seed and split sizes of its manifest."""
    import os

    from camseg.data.cifar import resolve_cifar10
    from camseg.data.dataset import SPLITS, read_manifest

    manifest = read_manifest(data) or {}
    sizes = dict(manifest.get("sizes", SPLITS))
    if not sizes.get("val"):
        raise ValueError(f"{data} has no val split: the wide validation set uses its backgrounds")
    source = cifar10 if (cifar10 is not None and not isinstance(cifar10, str | os.PathLike)) \
        else resolve_cifar10(cifar10)
    return source, int(manifest.get("seed", 0)), sizes
