"""The backend registry: a name -> the factory of that promptable segmenter.

``segment_anything`` is imported only when a SAM backend is made
(:class:`~camseg.segmenters.sam.SamSegmenter` imports it on construction).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from camseg.segmenters.base import PromptableSegmenter
from camseg.segmenters.offline import (
    FloodFillSegmenter,
    GrabCutSegmenter,
    RandomWalkerSegmenter,
    RegionGrowSegmenter,
)
from camseg.segmenters.sam import SamSegmenter

__all__ = ["SEGMENTERS"]

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
