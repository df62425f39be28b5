"""Pluggable promptable segmenters: SAM and offline backends behind one interface.

Every backend follows :class:`PromptableSegmenter`: ``set_image(image)`` with
a uint8 (H, W, 3) RGB image, then ``predict(point_coords, point_labels)`` with
points (N, 2) in **(x, y)** pixel order and labels (N,) int64 (1 =
foreground, 0 = background), returning a :class:`SegmentResult` (bool (H, W)
mask, score, backend name).

Registry (:data:`SEGMENTERS`, :func:`get_segmenter`):

=================  ========================================================
name               backend
=================  ========================================================
``"auto"``         SAM ``vit_b`` when its checkpoint is on this machine
                   (argument, ``$CAMSEG_SAM_CHECKPOINT`` or the cache; no
                   download is tried), else the default offline backend,
                   with a warning
``"sam"``          :class:`SamSegmenter` ``vit_b`` (downloads if needed)
``"sam-vit_b"``,   :class:`SamSegmenter` with that model type
``"sam-vit_l"``,
``"sam-vit_h"``
``"offline"``      the default offline backend, ``"regiongrow"``
``"regiongrow"``   :class:`RegionGrowSegmenter`
``"floodfill"``    :class:`FloodFillSegmenter`
``"grabcut"``      :class:`GrabCutSegmenter`
``"randomwalker"`` :class:`RandomWalkerSegmenter`
=================  ========================================================

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

import warnings
from collections.abc import Callable
from functools import partial

from camseg.segmenters.base import (
    BaseSegmenter,
    PromptableSegmenter,
    SegmentResult,
    validate_image,
    validate_prompt,
)
from camseg.segmenters.checkpoints import SAM_CHECKPOINTS, CheckpointError, find_checkpoint, sam_cache_dir
from camseg.segmenters.offline import (
    FloodFillSegmenter,
    GrabCutSegmenter,
    RandomWalkerSegmenter,
    RegionGrowSegmenter,
)
from camseg.segmenters.sam import SamSegmenter

__all__ = [
    "DEFAULT_OFFLINE",
    "SEGMENTERS",
    "BaseSegmenter",
    "CheckpointError",
    "FloodFillSegmenter",
    "GrabCutSegmenter",
    "PromptableSegmenter",
    "RandomWalkerSegmenter",
    "RegionGrowSegmenter",
    "SamSegmenter",
    "SegmentResult",
    "get_segmenter",
    "validate_image",
    "validate_prompt",
]

DEFAULT_OFFLINE = "regiongrow"
"""The offline backend behind ``"offline"`` and the ``"auto"`` fallback, chosen for
robustness on degraded images (see ``benchmarks/offline_backends.py``)."""

SEGMENTERS: dict[str, Callable[..., PromptableSegmenter]] = {
    "sam": partial(SamSegmenter, "vit_b"),
    **{f"sam-{t}": partial(SamSegmenter, t) for t in SAM_CHECKPOINTS},
    "offline": RegionGrowSegmenter,
    "regiongrow": RegionGrowSegmenter,
    "floodfill": FloodFillSegmenter,
    "grabcut": GrabCutSegmenter,
    "randomwalker": RandomWalkerSegmenter,
}
"""Backend name -> factory taking the backend's keyword arguments."""


def get_segmenter(name: str = "auto", **kwargs) -> PromptableSegmenter:
    """Make a segmenter by name.

    Args:
        name: a key of :data:`SEGMENTERS`, or ``"auto"``: SAM ``vit_b`` when a
            checkpoint is available locally (``checkpoint=`` in ``kwargs``,
            ``$CAMSEG_SAM_CHECKPOINT`` or the cache folder; nothing is
            downloaded) or ``model=`` is given, else the default offline
            backend (:data:`DEFAULT_OFFLINE`) with a :class:`UserWarning`.
        **kwargs: passed to the backend's constructor. With ``"auto"`` they
            are SAM options and are not used by the offline fallback.

    Returns:
        The segmenter; its ``name`` is recorded in every result.

    Raises:
        ValueError: unknown name (the message lists the names).
    """
    if name == "auto":
        if kwargs.get("model") is not None or find_checkpoint("vit_b", kwargs.get("checkpoint")) is not None:
            return SEGMENTERS["sam-vit_b"](**kwargs)
        spec = SAM_CHECKPOINTS["vit_b"]
        warnings.warn(
            f"SAM weights ({spec.filename}) were not found (checkpoint argument, $CAMSEG_SAM_CHECKPOINT, "
            f"or {sam_cache_dir() / spec.filename}); using the offline backend {DEFAULT_OFFLINE!r} instead. "
            "To download them: --segmenter sam on the command line, get_segmenter('sam') in Python.",
            UserWarning,
            stacklevel=2,
        )
        return SEGMENTERS[DEFAULT_OFFLINE]()
    try:
        factory = SEGMENTERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown segmenter {name!r}; expected one of: auto, {', '.join(SEGMENTERS)}") from None
    return factory(**kwargs)
