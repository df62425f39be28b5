"""Pluggable promptable segmenters: SAM and offline backends behind one interface.

Every backend follows :class:`~camseg.segmenters.base.PromptableSegmenter`:
``set_image(image)`` with a uint8 (H, W, 3) RGB image, then
``predict(point_coords, point_labels)`` with points (N, 2) in **(x, y)** pixel
order and labels (N,) int64 (1 = foreground, 0 = background), returning a
:class:`~camseg.segmenters.base.SegmentResult` (bool (H, W) mask, score,
backend name).

Registry (:data:`~camseg.segmenters.registry.SEGMENTERS`,
:func:`~camseg.segmenters.choice.get_segmenter`):

==================  ========================================================
name                backend
==================  ========================================================
``"auto"``          SAM ``vit_b`` when its checkpoint is on this machine
                    (argument, ``$CAMSEG_SAM_CHECKPOINT`` or the cache) or
                    can be downloaded (a HEAD request bounded to 3 s, see
                    :func:`~camseg.segmenters.choice.choose_backend`), else
                    the default offline backend, with a warning that says why
``"sam"``           :class:`~camseg.segmenters.sam.SamSegmenter` ``vit_b``
                    (downloads if needed)
``"sam-vit_b"``,    :class:`~camseg.segmenters.sam.SamSegmenter` with that model type
``"sam-vit_l"``,
``"sam-vit_h"``
``"offline"``       the default offline backend, ``"regiongrow"``
``"regiongrow"``    :class:`~camseg.segmenters.offline.RegionGrowSegmenter`
``"floodfill"``     :class:`~camseg.segmenters.offline.FloodFillSegmenter`
``"grabcut"``       :class:`~camseg.segmenters.offline.GrabCutSegmenter`
``"randomwalker"``  :class:`~camseg.segmenters.offline.RandomWalkerSegmenter`
==================  ========================================================

``segment_anything`` is imported only when a SAM backend is made.

Example:
    >>> import numpy as np
    >>> image = np.zeros((48, 64, 3), np.uint8); image[10:30, 20:40] = (200, 30, 30)
    >>> seg = get_segmenter("offline")
    >>> seg.set_image(image)
    >>> res = seg.predict(np.array([[30.0, 20.0]]), np.array([1]))  # (x, y)
    >>> int(res.mask.sum()), res.backend
    (400, 'regiongrow')
"""

from __future__ import annotations

from camseg.segmenters.base import (
    BaseSegmenter,
    PromptableSegmenter,
    SegmentResult,
    validate_image,
    validate_prompt,
)
from camseg.segmenters.checkpoints import CheckpointError
from camseg.segmenters.choice import DEFAULT_OFFLINE, BackendChoice, choose_backend, get_segmenter
from camseg.segmenters.offline import (
    FloodFillSegmenter,
    GrabCutSegmenter,
    RandomWalkerSegmenter,
    RegionGrowSegmenter,
)
from camseg.segmenters.registry import SEGMENTERS
from camseg.segmenters.sam import SamSegmenter

__all__ = [
    "DEFAULT_OFFLINE",
    "SEGMENTERS",
    "BackendChoice",
    "BaseSegmenter",
    "CheckpointError",
    "FloodFillSegmenter",
    "GrabCutSegmenter",
    "PromptableSegmenter",
    "RandomWalkerSegmenter",
    "RegionGrowSegmenter",
    "SamSegmenter",
    "SegmentResult",
    "choose_backend",
    "get_segmenter",
    "validate_image",
    "validate_prompt",
]
