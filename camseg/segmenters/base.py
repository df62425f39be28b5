"""The promptable-segmenter interface shared by every backend.

Modelled on ``segment_anything.SamPredictor``: :meth:`~PromptableSegmenter.set_image` does the
expensive per-image work once (SAM: the image embedding), then
:meth:`~PromptableSegmenter.predict` answers any number of point prompts cheaply from that state.

Conventions (the same everywhere in camseg):

* images at this boundary are uint8 (H, W, 3) **RGB** numpy arrays;
* points are **(x, y)** pixel coordinates (x = column, y = row), float
  arrays (N, 2); labels int64 (N,), 1 = foreground, 0 = background;
  a point lies in the image when ``0 <= x <= W - 1`` and ``0 <= y <= H - 1``
  (pixel centres sit at integer coordinates; the pixel of a point is
  ``(row, col) = (round(y), round(x))``, see :func:`point_pixels`);
* masks are bool (H, W).

Every backend validates its inputs with the same two helpers,
:func:`validate_image` and :func:`validate_prompt`, usually through
:class:`BaseSegmenter`, which owns the ``set_image``/``predict`` protocol
(validation, "no image set" error) and leaves the work to two hooks.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "BaseSegmenter",
    "PromptableSegmenter",
    "SegmentResult",
    "image_key",
    "point_pixels",
    "validate_image",
    "validate_prompt",
]


class SegmentResult:
    """One answer of a segmenter.

    Attributes:
        mask: bool (H, W), True on the segmented object.
        score: the backend's confidence in the mask (SAM: predicted IoU);
            comparable only within one backend. A backend may pass a
            zero-argument function instead of a float: it is called the first
            time ``score`` is read (callers that only want masks, like
            :class:`~camseg.prompting.regions.MaskScoring`'s candidates, skip the work).
        backend: name of the backend that made the mask (e.g. ``"sam-vit_b"``).
    """

    __slots__ = ("_score", "backend", "mask")

    def __init__(self, mask: np.ndarray, score: float | Callable[[], float], backend: str) -> None:
        self.mask = mask
        self._score = score
        self.backend = backend

    @property
    def score(self) -> float:
        if callable(self._score):
            self._score = float(self._score())
        return float(self._score)

    def __repr__(self) -> str:
        return f"SegmentResult(mask=<{self.mask.shape} bool, {int(self.mask.sum())} px>, score={self.score:.3f}, " \
               f"backend={self.backend!r})"


@runtime_checkable
class PromptableSegmenter(Protocol):
    """What a pipeline needs from a segmenter."""

    name: str
    """Backend name recorded with every result."""

    def set_image(self, image: np.ndarray) -> None:
        """Prepare ``image``, uint8 (H, W, 3) RGB, for prompting (cached by content)."""

    def predict(self, point_coords: np.ndarray, point_labels: np.ndarray) -> SegmentResult:
        """Segment the current image from points (N, 2) in (x, y) order and labels (N,) (1 fg, 0 bg).

        Raises:
            RuntimeError: no image was set.
            ValueError: malformed points (wrong shape, outside the image, no
                foreground point, labels other than 0/1).
        """

    def predict_batch(self, point_coords: np.ndarray, point_labels: np.ndarray) -> list[SegmentResult]:
        """Segment the current image from K prompts at once: points (K, n, 2) in (x, y) order and
        labels (K, n) int64; the k-th result equals ``predict(point_coords[k], point_labels[k])``.
        Whether the K prompts are decoded in one pass is the backend's choice."""


# --------------------------------------------------------------------------
# Validation shared by all backends


def validate_image(image: np.ndarray) -> np.ndarray:
    """Check that ``image`` is a uint8 (H, W, 3) RGB array.

    Args:
        image: the image to check.

    Returns:
        The image as a C-contiguous uint8 array (H, W, 3), the same object
        when it already is one (never modified).

    Raises:
        TypeError: ``image`` is not a numpy array.
        ValueError: wrong dtype, wrong number of dimensions or channels, or
            an empty image.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, uint8 (H, W, 3) RGB, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(
            f"image must be uint8 (H, W, 3) RGB with values 0..255, got dtype {image.dtype}"
            + (" (convert a float image in [0, 1] with (image * 255).round().astype(np.uint8))"
               if image.dtype.kind == "f" else "")
        )
    if image.ndim != 3 or image.shape[2] != 3:
        hint = " (channels first? use image.transpose(1, 2, 0))" if image.ndim == 3 and image.shape[0] == 3 else ""
        raise ValueError(f"image must have shape (H, W, 3) (RGB), got {image.shape}{hint}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image is empty: shape {image.shape}")
    return np.ascontiguousarray(image)


def validate_prompt(
    point_coords: np.ndarray, point_labels: np.ndarray, image_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Check a point prompt against an image of shape ``image_shape``.

    Args:
        point_coords: (N, 2) pixel coordinates in **(x, y)** order
            (x = column, y = row), N >= 1, any real dtype.
        point_labels: (N,) integer (or bool) labels, 1 = foreground,
            0 = background; at least one foreground point.
        image_shape: (H, W) or (H, W, C) of the current image.

    Returns:
        ``(coords, labels)``: float64 (N, 2) in (x, y) order and int64 (N,),
        fresh copies.

    Raises:
        ValueError: wrong shapes, non-finite coordinates, a point outside
            ``0 <= x <= W - 1``, ``0 <= y <= H - 1``, labels other than 0/1,
            an empty prompt, or no foreground point.
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    try:
        coords = np.array(point_coords, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"point_coords must be a numeric array (N, 2) in (x, y) order: {exc}") from None
    labels = np.array(point_labels)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"point_coords must have shape (N, 2) in (x, y) order, got {coords.shape}")
    n = coords.shape[0]
    if n == 0:
        raise ValueError("the prompt is empty: give at least one foreground point (point_coords (N, 2), N >= 1)")
    if labels.shape != (n,):
        raise ValueError(f"point_labels must have shape (N,) = ({n},) to match point_coords, got {labels.shape}")
    if labels.dtype.kind not in "iub":
        raise ValueError(f"point_labels must be integers (1 = foreground, 0 = background), got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    bad = (labels != 0) & (labels != 1)  # np.isin's result, without its overhead (it is called per prompt)
    if bad.any():
        raise ValueError(
            f"point_labels must be 1 (foreground) or 0 (background), got {sorted(set(labels[bad].tolist()))}"
        )
    if not (labels == 1).any():
        raise ValueError("the prompt has no foreground point: at least one label must be 1")
    if not np.isfinite(coords).all():
        raise ValueError("point_coords contains NaN or infinite values")
    outside = (coords[:, 0] < 0) | (coords[:, 0] > w - 1) | (coords[:, 1] < 0) | (coords[:, 1] > h - 1)
    if outside.any():
        i = int(np.argmax(outside))
        x, y = coords[i]
        swapped = 0 <= y <= w - 1 and 0 <= x <= h - 1
        raise ValueError(
            f"point {i} (x={x:g}, y={y:g}) is outside the image: points are (x, y) with "
            f"0 <= x <= {w - 1} (W - 1) and 0 <= y <= {h - 1} (H - 1) for an image of H x W = {h} x {w}"
            + ("; were (row, col) given instead of (x, y)?" if swapped else "")
        )
    return coords, labels


def point_pixels(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixel of each (x, y) point.

    Args:
        coords: float (N, 2) validated points in (x, y) order.

    Returns:
        ``(rows, cols)``: int64 (N,) each, ``rows = round(y)``,
        ``cols = round(x)`` (pixel centres at integer coordinates).
    """
    coords = np.asarray(coords, dtype=np.float64)
    return np.rint(coords[:, 1]).astype(np.int64), np.rint(coords[:, 0]).astype(np.int64)


def image_key(image: np.ndarray) -> str:
    """A content key for a validated image: shape plus a BLAKE2b digest of its bytes.

    Two arrays with the same shape, dtype and pixel values get the same key,
    whatever their memory layout.
    """
    data = np.ascontiguousarray(image)
    digest = hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()
    return f"{'x'.join(str(s) for s in data.shape)}-{data.dtype.str.lstrip('<>|=')}-{digest}"


# --------------------------------------------------------------------------
# Base class


class BaseSegmenter(ABC):
    """The ``set_image`` / ``predict`` protocol, with the shared validation.

    Subclasses set :attr:`name` and implement :meth:`_set_image` (per-image
    work, given a validated image) and :meth:`_predict` (per-prompt work,
    given validated points).
    """

    name: str = "segmenter"

    def __init__(self) -> None:
        self._image_shape: tuple[int, int] | None = None

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) of the current image, None before :meth:`set_image`."""
        return self._image_shape

    def set_image(self, image: np.ndarray) -> None:
        """Prepare ``image`` for prompting.

        Args:
            image: uint8 (H, W, 3) **RGB** (not BGR; not normalised).

        Raises:
            TypeError, ValueError: see :func:`validate_image`.
        """
        image = validate_image(image)
        self._image_shape = None  # a failing _set_image leaves no half-set image
        self._set_image(image)
        self._image_shape = (int(image.shape[0]), int(image.shape[1]))

    def predict(self, point_coords: np.ndarray, point_labels: np.ndarray) -> SegmentResult:
        """Segment the current image from a point prompt.

        Args:
            point_coords: float (N, 2), pixel coordinates in **(x, y)** order
                (x = column, y = row), inside the image.
            point_labels: int64 (N,), 1 = foreground, 0 = background; at
                least one foreground point.

        Returns:
            :class:`SegmentResult` with a bool (H, W) mask of the current image.

        Raises:
            RuntimeError: :meth:`set_image` was not called.
            ValueError: see :func:`validate_prompt`.
        """
        if self._image_shape is None:
            raise RuntimeError(f"{type(self).__name__}: call set_image(image) before predict(...)")
        coords, labels = validate_prompt(point_coords, point_labels, self._image_shape)
        mask, score = self._predict(coords, labels)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self._image_shape:  # a backend bug, not a user error
            raise RuntimeError(f"{self.name}: mask shape {mask.shape} != image shape {self._image_shape}")
        return SegmentResult(mask=mask, score=score if callable(score) else float(score), backend=self.name)

    def predict_batch(self, point_coords: np.ndarray, point_labels: np.ndarray) -> list[SegmentResult]:
        """Segment the current image from K prompts, each like one :meth:`predict` call.

        Args:
            point_coords: float (K, n, 2), K prompts of n points in **(x, y)** order.
            point_labels: int64 (K, n), 1 = foreground, 0 = background; each
                prompt needs a foreground point.

        Returns:
            K :class:`SegmentResult`, the k-th equal to ``predict(point_coords[k],
            point_labels[k])``. This default loops over :meth:`predict`; a backend
            that can decode many prompts in one pass (SAM on a GPU) overrides
            :meth:`_predict_batch`.

        Raises:
            RuntimeError: :meth:`set_image` was not called.
            ValueError: shapes other than (K, n, 2) and (K, n), or a malformed
                prompt (the message names its index k).
        """
        if self._image_shape is None:
            raise RuntimeError(f"{type(self).__name__}: call set_image(image) before predict_batch(...)")
        coords = np.asarray(point_coords)
        labels = np.asarray(point_labels)
        if coords.ndim != 3 or coords.shape[-1] != 2:
            raise ValueError(f"point_coords must have shape (K, n, 2) in (x, y) order, got {coords.shape}")
        if labels.shape != coords.shape[:2]:
            raise ValueError(f"point_labels must have shape (K, n) = {coords.shape[:2]} to match point_coords, "
                             f"got {labels.shape}")
        checked = []
        for k in range(len(coords)):
            try:
                checked.append(validate_prompt(coords[k], labels[k], self._image_shape))
            except ValueError as exc:
                raise ValueError(f"prompt {k}: {exc}") from None
        if not checked:
            return []
        out = self._predict_batch(np.stack([c for c, _ in checked]), np.stack([lab for _, lab in checked]))
        results = []
        for mask, score in out:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != self._image_shape:  # a backend bug, not a user error
                raise RuntimeError(f"{self.name}: mask shape {mask.shape} != image shape {self._image_shape}")
            results.append(SegmentResult(mask=mask, score=score if callable(score) else float(score),
                                         backend=self.name))
        return results

    def _predict_batch(self, coords: np.ndarray, labels: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """K validated prompts, float64 (K, n, 2) and int64 (K, n) -> K (mask, score); default: a loop."""
        return [self._predict(c, lab) for c, lab in zip(coords, labels, strict=True)]

    @abstractmethod
    def _set_image(self, image: np.ndarray) -> None:
        """Per-image work on a validated uint8 (H, W, 3) RGB image."""

    @abstractmethod
    def _predict(self, coords: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
        """Per-prompt work: validated float64 (N, 2) (x, y) points and int64 (N,) labels
        -> (bool (H, W) mask, score or a function computing it on demand)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
