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
                   (argument, ``$CAMSEG_SAM_CHECKPOINT`` or the cache) or
                   can be downloaded (a HEAD request bounded to 3 s, see
                   :func:`choose_backend`), else the default offline
                   backend, with a warning that says why
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
from camseg.segmenters.checkpoints import CheckpointError
from camseg.segmenters.choice import DEFAULT_OFFLINE, BackendChoice, choose_backend
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

SEGMENTERS: dict[str, Callable[..., PromptableSegmenter]] = {
    "sam": partial(SamSegmenter, "vit_b"),
    **{f"sam-{t}": partial(SamSegmenter, t) for t in ("vit_b", "vit_l", "vit_h")},
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
            ``$CAMSEG_SAM_CHECKPOINT`` or the cache folder) or can be
            downloaded (bounded check, :func:`choose_backend`), or ``model=``
            is given; else the default offline backend
            (:data:`DEFAULT_OFFLINE`) with a :class:`UserWarning` saying why.
        **kwargs: passed to the backend's constructor. With ``"auto"`` they
            are SAM options and are not used by the offline fallback.

    Returns:
        The segmenter; its ``name`` is recorded in every result.

    Raises:
        ValueError: unknown name (the message lists the names).
    """
    if name == "auto":
        choice = choose_backend("auto", kwargs.get("checkpoint"), model=kwargs.get("model"),
                                base_url=kwargs.get("base_url"))
        if not choice.is_fallback:
            return SEGMENTERS["sam-vit_b"](**kwargs)
        warnings.warn(choice.reason, UserWarning, stacklevel=2)
        return SEGMENTERS[DEFAULT_OFFLINE]()
    try:
        factory = SEGMENTERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown segmenter {name!r}; expected one of: auto, {', '.join(SEGMENTERS)}") from None
    return factory(**kwargs)
