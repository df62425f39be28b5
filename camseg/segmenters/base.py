"""The promptable-segmenter interface shared by every backend.

Modelled on ``segment_anything.SamPredictor``: :meth:`set_image` does the
expensive per-image work once (SAM: the image embedding), then
:meth:`predict` answers any number of point prompts cheaply from that state.

Conventions (the same everywhere in camseg):

* images at this boundary are uint8 (H, W, 3) **RGB** numpy arrays;
* points are **(x, y)** pixel coordinates (x = column, y = row), float
  arrays (N, 2); labels int64 (N,), 1 = foreground, 0 = background;
* masks are bool (H, W).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class SegmentResult:
    """One answer of a segmenter.

    Attributes:
        mask: bool (H, W), True on the segmented object.
        score: the backend's confidence in the mask (SAM: predicted IoU);
            comparable only within one backend.
        backend: name of the backend that made the mask (e.g. ``"sam-vit_b"``).
    """

    mask: np.ndarray
    score: float
    backend: str


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
