"""Offline promptable segmenters: no downloaded weights, fast on a CPU.

They share SAM's interface (:class:`~camseg.segmenters.base.PromptableSegmenter`)
so that tests and offline builds of the book run without SAM checkpoints.
All take uint8 (H, W, 3) RGB images and point prompts (N, 2) in **(x, y)**
order with labels (N,) (1 = foreground, 0 = background), and return a bool
(H, W) mask. Every backend excludes the background points' pixels from the
mask. The pixel of a point is ``(row, col) = (round(y), round(x))``.

* :class:`FloodFillSegmenter` (``"floodfill"``): naive flood fill from each
  foreground point (OpenCV ``floodFill``), colours within a fixed tolerance
  of the seed pixel.
* :class:`GrabCutSegmenter` (``"grabcut"``): OpenCV GrabCut initialised
  from the points (a sure-foreground dot and a probable-foreground square
  around each foreground point; image border and background points sure
  background).
* :class:`RandomWalkerSegmenter` (``"randomwalker"``): scikit-image random
  walker with the foreground points as one seed class and the image border
  plus the background points as the other.
* :class:`RegionGrowSegmenter` (``"regiongrow"``, the default offline
  backend, ``"offline"``): region growing in bilateral-smoothed YCrCb,
  stopped where the region's area jumps (a leak), with a noise-adaptive
  colour tolerance, then a sub-pixel boundary decision for the one or two
  rings of pixels around the region (a pixel joins when it is nearer the
  object's colour than half the object/background contrast measured a few
  pixels further out). Designed for solid objects on photographs that were
  JPEG-compressed and noisy, where the object's edge pixels are mixtures.

``benchmarks/offline_backends.py`` measures them (mean IoU on the test split,
clean and degraded, with an oracle point and a jittered one, and the time per
``predict``); the choice of the default is argued in
:class:`RegionGrowSegmenter`.

Scores (:attr:`~camseg.segmenters.base.SegmentResult.score`) are a contrast-based confidence in
[0, 1]: 1 minus the ratio of the typical colour distance (to the mask's median
colour) inside the mask to that in a 2-pixel ring around it (random walker:
the mean foreground probability inside the mask). Compare them only within
one backend.
"""

from __future__ import annotations

import functools
import warnings

import cv2
import numpy as np

from camseg.segmenters.base import BaseSegmenter, point_pixels

__all__ = [
    "TOLERANCE_STEPS",
    "FloodFillSegmenter",
    "GrabCutSegmenter",
    "OfflineSegmenter",
    "RandomWalkerSegmenter",
    "RegionGrowSegmenter",
    "component_at",
    "fill_small_holes",
    "stable_tolerance",
]

_K3 = np.ones((3, 3), np.uint8)


def _dilate(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """8-connected binary dilation (OpenCV; the same as scipy's with a 3 x 3 structure)."""
    return cv2.dilate(mask.astype(np.uint8), _K3, iterations=iterations,
                      borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def _erode(mask: np.ndarray) -> np.ndarray:
    """8-connected binary erosion, outside the image counting as background (as scipy's)."""
    return cv2.erode(mask.astype(np.uint8), _K3, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


_FILL_ONLY_MASK = cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
"""``cv2.floodFill`` flags (OR the connectivity, 4 or 8): compare each pixel with the seed's value
(fixed range), leave the image alone and write 1 into the mask on the filled pixels. The fastest
mode OpenCV has here (about twice the simple in-place fill on 48 x 64 images)."""


def _flood(image: np.ndarray, row: int, col: int, lo: int = 0, up: int = 0,
           connectivity: int = 8) -> tuple[np.ndarray, int, tuple[int, int, int, int]]:
    """The pixels ``connectivity``-connected to the seed (row, col) whose value ``v`` of ``image``
    (uint8 (H, W), C-contiguous rows, not written to) is in ``[seed - lo, seed + up]``.

    Returns:
        ``(filled, area, (x, y, w, h))``: uint8 (H + 2, W + 2), 1 on the filled pixels shifted by
        one row and column (OpenCV's mask layout: pixel (r, c) is ``filled[r + 1, c + 1]``; its
        one-pixel frame is set to 1 by OpenCV), their number, and their bounding box in image
        coordinates (x = column, y = row).
    """
    h, w = image.shape
    filled = np.zeros((h + 2, w + 2), np.uint8)
    area, _, _, rect = cv2.floodFill(image, filled, (int(col), int(row)), 0, lo, up, connectivity | _FILL_ONLY_MASK)
    return filled, int(area), rect


def _small_holes(framed: np.ndarray, area: int, max_fraction: float) -> np.ndarray | None:
    """The holes of a mask to fill, or None when it has none (decided with one flood fill; most masks have none).

    Args:
        framed: uint8 (h + 2, w + 2), the mask (0/1) cut to its bounding box and framed by a ring of 0.
        area: the number of pixels of the mask.
        max_fraction: holes of at most ``max_fraction * area`` pixels are filled.

    Returns:
        None, or bool (h + 2, w + 2) on the pixels to add (4-connected background parts that do
        not reach the frame, of at most ``max_fraction * area`` pixels). A hole of the whole
        image's mask is one of these: every background pixel outside the bounding box reaches
        the image's border without entering it, so a background part inside reaches the border
        exactly when it reaches the frame.
    """
    outside, n_outside, _ = _flood(framed, 0, 0, connectivity=4)  # framed is 0 at (0, 0)
    if n_outside + area == framed.size:
        return None
    holes = (framed == 0) & (outside[1:-1, 1:-1] == 0)
    n, labels = cv2.connectedComponents(holes.view(np.uint8), connectivity=4)  # 0 = not a hole
    sizes = np.bincount(labels.ravel(), minlength=n)
    small = sizes <= max_fraction * area
    small[0] = False
    return small[labels]


def _framed(mask: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """uint8 (h + 2, w + 2): ``mask[y:y + h, x:x + w]`` (any 0/1 or bool (H, W)) in a ring of 0."""
    framed = np.zeros((h + 2, w + 2), np.uint8)
    framed[1:-1, 1:-1] = mask[y:y + h, x:x + w]
    return framed


def _fill_holes_in_place(region: np.ndarray, area: int, rect: tuple[int, int, int, int],
                         max_fraction: float = 0.05) -> np.ndarray:
    """:func:`fill_small_holes` of ``region`` (bool (H, W), written to), given its area and bounding box
    (x, y, w, h); returns ``region``."""
    x, y, w, h = rect
    fill = _small_holes(_framed(region, x, y, w, h), area, max_fraction)
    if fill is not None:
        region[y:y + h, x:x + w] |= fill[1:-1, 1:-1]
    return region


def fill_small_holes(mask: np.ndarray, max_fraction: float = 0.05) -> np.ndarray:
    """Fill the holes of ``mask`` (4-connected background parts not touching the image border)
    smaller than ``max_fraction`` of its area (noise specks), not larger ones (another object
    enclosed by the region).

    Args:
        mask: bool (H, W).

    Returns:
        A new bool (H, W) array.
    """
    mask = np.asarray(mask, dtype=bool)
    area = int(np.count_nonzero(mask))
    return _fill_holes_in_place(mask.copy(), area, cv2.boundingRect(mask.view(np.uint8)), max_fraction)


def _seed_component(mask: np.ndarray, row: int, col: int) -> tuple[np.ndarray, int]:
    """The 8-connected component of ``mask`` (bool (H, W)) holding pixel (row, col), which must be
    in it: (uint8 (H, W), 2 on the component, and its area in pixels). A flood fill from the seed
    (``cv2.floodFill``) visits only the component, unlike labelling the whole image; the same
    pixels as ``cv2.connectedComponents(..., connectivity=8)``'s label there."""
    binary = mask.astype(np.uint8)
    area = cv2.floodFill(binary, None, (int(col), int(row)), 2, 0, 0, 8)[0]
    return binary, int(area)


def _component(binary: np.ndarray, row: int, col: int) -> np.ndarray:
    """:func:`component_at` of a mask given as uint8 (H, W) 0/1 (C-contiguous; not written to):
    a new bool (H, W) array."""
    if not binary[row, col]:
        out = np.zeros(binary.shape, bool)
        out[row, col] = True
        return out
    filled, area, (x, y, w, h) = _flood(binary, row, col)
    filled[0] = filled[-1] = 0  # OpenCV's frame of 1s: the component is then framed by 0 as _small_holes wants
    filled[:, 0] = filled[:, -1] = 0
    fill = _small_holes(filled[y:y + h + 2, x:x + w + 2], area, 0.05)  # the bounding box and a ring around it
    region = filled[1:-1, 1:-1].astype(bool)
    if fill is not None:
        region[y:y + h, x:x + w] |= fill[1:-1, 1:-1]
    return region


def component_at(mask: np.ndarray, row: int, col: int) -> np.ndarray:
    """The 8-connected component of ``mask`` (bool (H, W)) that holds pixel (row, col), small holes
    filled (:func:`fill_small_holes`); just that pixel when it is not in ``mask``. A new bool (H, W) array."""
    return _component(np.array(mask, dtype=np.uint8, order="C"), row, col)  # a copy: OpenCV wants it writable


def _contrast_score(features: np.ndarray, mask: np.ndarray) -> float:
    """1 - (median distance to the mask's median colour inside) / (same in a 2-px outer ring), in [0, 1]."""
    if not mask.any():
        return 0.0
    ring = _dilate(mask, 2) & ~mask
    if not ring.any():
        return 0.0
    mu = np.median(features[mask], axis=0)
    dist = np.linalg.norm(features - mu, axis=-1)
    inside, outside = float(np.median(dist[mask])), float(np.median(dist[ring]))
    return float(np.clip(1.0 - inside / (outside + 1e-6), 0.0, 1.0))


class OfflineSegmenter(BaseSegmenter):
    """Base of the offline backends: keeps the image, clears background-point pixels.

    Subclasses implement :meth:`_prepare` (per-image precomputation, run by
    ``set_image``) and :meth:`_segment` (per prompt, given the pixels of the
    points).
    """

    def __init__(self) -> None:
        super().__init__()
        self._image: np.ndarray | None = None

    def _set_image(self, image: np.ndarray) -> None:
        self._image = image.copy()  # the caller may change its array later
        self._prepare(self._image)

    def _prepare(self, image: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Per-image precomputation on uint8 (H, W, 3) RGB (default: nothing)."""

    def _predict(self, coords: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
        rows, cols = point_pixels(coords)
        fg = labels == 1
        mask, score = self._segment(rows[fg], cols[fg], rows[~fg], cols[~fg])
        mask = np.array(mask, dtype=bool)
        mask[rows[~fg], cols[~fg]] = False  # background points are never in the mask
        return mask, score

    def _segment(self, fg_rows: np.ndarray, fg_cols: np.ndarray,
                 bg_rows: np.ndarray, bg_cols: np.ndarray) -> tuple[np.ndarray, float]:
        """Mask and score from the foreground (>= 1) and background (>= 0) pixels (row, col)."""
        raise NotImplementedError


class FloodFillSegmenter(OfflineSegmenter):
    """Naive flood fill from each foreground point; the union of the fills.

    A pixel joins when it is 8-connected to the seed through pixels whose every
    RGB channel is within ``tolerance`` grey levels of the **seed pixel's**
    colour (``fixed_range=True``, OpenCV ``FLOODFILL_FIXED_RANGE``) or of the
    neighbour it is reached from (``fixed_range=False``, which leaks along
    gradients). Exact on flat shapes; fragile on noisy or JPEG images.

    Args:
        tolerance: per-channel tolerance in grey levels (0..255).
        fixed_range: compare with the seed's colour (True) or the neighbour's.
    """

    name = "floodfill"

    def __init__(self, tolerance: float = 12.0, fixed_range: bool = True) -> None:
        super().__init__()
        if not 0 <= tolerance <= 255:
            raise ValueError(f"tolerance must be in 0..255 grey levels, got {tolerance}")
        self.tolerance = float(tolerance)
        self.fixed_range = bool(fixed_range)

    def _prepare(self, image: np.ndarray) -> None:
        self._features = image.astype(np.float32)

    def _segment(self, fg_rows, fg_cols, bg_rows, bg_cols):
        h, w = self._image.shape[:2]
        ff_mask = np.zeros((h + 2, w + 2), np.uint8)
        flags = 8 | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
        if self.fixed_range:
            flags |= cv2.FLOODFILL_FIXED_RANGE
        tol = (self.tolerance,) * 3
        scratch = self._image.copy()  # floodFill wants a writable image even in mask-only mode
        for r, c in zip(fg_rows, fg_cols, strict=True):
            if ff_mask[r + 1, c + 1]:
                continue
            cv2.floodFill(scratch, ff_mask, (int(c), int(r)), (0, 0, 0), tol, tol, flags)
        mask = ff_mask[1:-1, 1:-1] > 0
        return mask, functools.partial(_contrast_score, self._features, mask)


class GrabCutSegmenter(OfflineSegmenter):
    """OpenCV GrabCut initialised from the points (``GC_INIT_WITH_MASK``).

    Initial labels: everything "probably background"; a square of half-size
    ``prior_radius`` around each foreground point "probably foreground"; a
    square of half-size ``seed_radius`` around it "sure foreground"; the
    image border and the background points "sure background". GrabCut then
    fits colour GMMs and cuts. Seeded with ``rng_seed`` so results repeat.
    Images too small for GrabCut's colour models fall back to the sure-
    foreground squares (score 0).

    Args:
        iterations: GrabCut iterations.
        seed_radius: half-size in pixels of the sure-foreground square.
        prior_radius: half-size in pixels of the probable-foreground square.
        rng_seed: seed of OpenCV's random generator (k-means initialisation).
    """

    name = "grabcut"

    def __init__(self, iterations: int = 3, seed_radius: int = 2, prior_radius: int = 6, rng_seed: int = 0) -> None:
        super().__init__()
        if iterations < 1 or seed_radius < 0 or prior_radius < seed_radius:
            raise ValueError("need iterations >= 1 and 0 <= seed_radius <= prior_radius, got "
                             f"iterations={iterations}, seed_radius={seed_radius}, prior_radius={prior_radius}")
        self.iterations, self.seed_radius, self.prior_radius = int(iterations), int(seed_radius), int(prior_radius)
        self.rng_seed = int(rng_seed)

    def _prepare(self, image: np.ndarray) -> None:
        self._bgr = np.ascontiguousarray(image[..., ::-1])
        self._features = image.astype(np.float32)

    def _segment(self, fg_rows, fg_cols, bg_rows, bg_cols):
        h, w = self._bgr.shape[:2]
        gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
        sure = np.zeros((h, w), bool)
        for r, c in zip(fg_rows, fg_cols, strict=True):
            p, s = self.prior_radius, self.seed_radius
            gc[max(0, r - p):r + p + 1, max(0, c - p):c + p + 1] = cv2.GC_PR_FGD
            sure[max(0, r - s):r + s + 1, max(0, c - s):c + s + 1] = True
        gc[0, :] = gc[-1, :] = cv2.GC_BGD
        gc[:, 0] = gc[:, -1] = cv2.GC_BGD
        gc[sure] = cv2.GC_FGD
        gc[bg_rows, bg_cols] = cv2.GC_BGD
        gc[fg_rows, fg_cols] = cv2.GC_FGD
        cv2.setRNGSeed(self.rng_seed)
        try:
            cv2.grabCut(self._bgr, gc, None, np.zeros((1, 65)), np.zeros((1, 65)),
                        self.iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error:
            return sure & (gc != cv2.GC_BGD) | _pixels_mask((h, w), fg_rows, fg_cols), 0.0
        mask = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        return mask, functools.partial(_contrast_score, self._features, mask)


def _pixels_mask(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


class RandomWalkerSegmenter(OfflineSegmenter):
    """scikit-image's random walker (Grady, 2006) between point seeds and the border.

    Seeds: the foreground points are class 1; the image border and the
    background points class 2 (a foreground point on the border stays
    class 1). The image (RGB scaled to [0, 1]) is the data; a pixel is in the
    mask when class 1 is its most probable class. Score: the mean class-1
    probability inside the mask.

    Args:
        beta: edge-weight sharpness of the random walker (scikit-image's
            ``beta``; it rescales by the image's spread itself).
        mode: scikit-image solver, ``"cg_j"`` (default), ``"cg"`` or ``"bf"``.
        tol: solver tolerance.
    """

    name = "randomwalker"

    def __init__(self, beta: float = 1000.0, mode: str = "cg_j", tol: float = 1e-3) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        if mode not in ("cg_j", "cg", "bf", "cg_mg"):
            raise ValueError(f"mode must be 'cg_j', 'cg', 'cg_mg' or 'bf', got {mode!r}")
        self.beta, self.mode, self.tol = float(beta), mode, float(tol)

    def _prepare(self, image: np.ndarray) -> None:
        self._data = image.astype(np.float64) / 255.0

    def _segment(self, fg_rows, fg_cols, bg_rows, bg_cols):
        from skimage.segmentation import random_walker

        h, w = self._data.shape[:2]
        seeds = np.zeros((h, w), np.int32)
        seeds[0, :] = seeds[-1, :] = 2
        seeds[:, 0] = seeds[:, -1] = 2
        seeds[bg_rows, bg_cols] = 2
        seeds[fg_rows, fg_cols] = 1
        if not (seeds == 0).any() or not (seeds == 2).any():  # nothing to decide, or no background seed
            mask = seeds == 1
            return mask, 1.0 if mask.any() else 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "probability outside [0, 1]" rounding notes on flat images
            prob = random_walker(self._data, seeds, beta=self.beta, mode=self.mode, tol=self.tol,
                                 channel_axis=-1, return_full_prob=True)
        mask = prob[0] >= prob[1]
        return mask, float(prob[0][mask].mean()) if mask.any() else 0.0


TOLERANCE_STEPS: tuple[float, ...] = (2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 36, 40, 45, 50)
"""Colour tolerances (YCrCb distance) at which :class:`RegionGrowSegmenter` measures its region's area."""


class AreaCurve:
    """The area (pixels) of the 8-connected component of ``dist <= steps[k]`` holding (row, col),
    1 where the pixel itself is above ``steps[k]``; computed when first asked, once per ``k``
    (the leak guard reads a few steps, seldom all)."""

    def __init__(self, dist: np.ndarray, row: int, col: int, steps: np.ndarray) -> None:
        self.dist, self.row, self.col, self.steps = dist, row, col, steps
        self._areas: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, k: int) -> float:
        if k not in self._areas:
            inside = self.dist <= self.steps[k]
            self._areas[k] = float(_seed_component(inside, self.row, self.col)[1]) if inside[self.row, self.col] \
                else 1.0
        return self._areas[k]


def area_curve(dist: np.ndarray, row: int, col: int, steps: np.ndarray) -> np.ndarray:
    """Area (pixels, float (S,)) of the 8-connected component of ``dist <= t`` holding
    (row, col), for each tolerance ``t`` of ``steps``; 1 where the pixel itself is above ``t``."""
    curve = AreaCurve(dist, row, col, steps)
    return np.array([curve[k] for k in range(len(steps))])


def stable_tolerance(areas: np.ndarray, steps: np.ndarray, stability: float, plateau: float,
                     min_area: int) -> float:
    """The tolerance at which a seeded region stops growing before it leaks.

    ``q_k = (a_{k+1} - a_{k-1}) / a_k`` is the region's relative growth around step
    ``k``. The first step whose region has at least ``min_area`` pixels and grows by at
    most ``stability`` is the object; when none does, the step of least growth is (ties:
    the larger tolerance). The tolerance returned is the largest step whose area is still
    within ``1 + plateau`` of that one: past it the region spills into the background.

    Args:
        areas: float (S,), the region's area at each tolerance (``area_curve``).
        steps: float (S,), increasing tolerances.

    Returns:
        One of ``steps``; the last one when no step reaches ``min_area`` (no cap).

    Raises:
        ValueError: ``areas`` and ``steps`` are not 1-D of the same length (at least 3).

    >>> stable_tolerance(np.array([1., 40, 41, 42, 44, 300, 900]), np.arange(1., 8), 0.2, 0.25, 6)
    5.0
    """
    areas, steps = np.asarray(areas, float), np.asarray(steps, float)
    if areas.ndim != 1 or areas.shape != steps.shape or len(areas) < 3:
        raise ValueError(f"areas and steps must be 1-D of the same length (at least 3), got shapes "
                         f"{areas.shape} and {steps.shape}")
    return stable_step(areas, steps, stability, plateau, min_area)


def stable_step(areas, steps: np.ndarray, stability: float, plateau: float, min_area: int) -> float:
    """:func:`stable_tolerance` reading ``areas[k]`` only where it must: ``areas`` may be an
    :class:`AreaCurve`, which computes each step's area when first read."""
    n = len(steps)
    chosen, least, least_q = None, None, np.inf
    for k in range(1, n - 1):
        if areas[k] < min_area:
            continue
        q = (areas[k + 1] - areas[k - 1]) / areas[k]
        if q <= stability:
            chosen = k
            break
        if q <= least_q:  # ties: the larger tolerance
            least, least_q = k, q
    if chosen is None:
        if least is None:
            return float(steps[-1])
        chosen = least
    j = chosen
    while j + 1 < n and areas[j + 1] <= (1 + plateau) * areas[chosen]:
        j += 1
    return float(steps[j])


@functools.lru_cache(maxsize=8)
def level_table(steps: tuple[float, ...]) -> np.ndarray | None:
    """uint8 (256,): entry ``m`` is the first ``k`` with ``m <= steps[k]`` (``len(steps)`` when none), for
    increasing integer steps in 0..254; None for other steps.

    For such steps and any ``d >= 0``, ``d <= steps[k]`` exactly when ``ceil(d) <= steps[k]``, so
    ``table[min(ceil(d), 255)] <= k`` exactly when ``d <= steps[k]`` (see :func:`step_levels`).
    """
    arr = np.asarray(steps, float)
    if not (len(arr) < 255 and np.all(arr == np.round(arr)) and np.all(arr >= 0) and np.all(arr <= 254)
            and np.all(np.diff(arr) > 0)):
        return None
    table = np.searchsorted(arr, np.arange(256), side="left").astype(np.uint8)
    table.flags.writeable = False
    return table


def step_levels(dist: np.ndarray, table: np.ndarray) -> np.ndarray:
    """uint8 (H, W): each pixel's first step ``k`` with ``dist <= steps[k]`` (``len(steps)`` when none),
    from ``dist`` (float (H, W), >= 0, finite) and the steps' :func:`level_table`. The pixels of
    ``dist <= steps[k]`` are then those of ``level <= k``."""
    up = np.ceil(dist)
    np.clip(up, 0, 255, out=up)
    return cv2.LUT(up.astype(np.uint8), table)


class LevelAreas(dict):
    """:class:`AreaCurve` on a level image (:func:`step_levels`): ``self[k]`` is the area (float) of the
    8-connected component of ``level <= k`` holding (row, col), 1.0 when ``level[row, col] > k``;
    computed when first read, then a plain dict look-up.

    One fixed-range flood fill of ``level`` per step (range ``[seed - 255, seed + (k - seed)]``:
    every pixel of level <= k), no thresholded copy.
    """

    def __init__(self, level: np.ndarray, row: int, col: int) -> None:
        super().__init__()
        self.level, self.seed = level, int(level[row, col])
        self.point = (int(col), int(row))  # OpenCV's (x, y)
        self.frame = (level.shape[0] + 2, level.shape[1] + 2)

    def __missing__(self, k: int) -> float:
        if k < self.seed:
            area = 1.0
        else:
            area = float(cv2.floodFill(self.level, np.zeros(self.frame, np.uint8), self.point, 0, 255, k - self.seed,
                                       8 | _FILL_ONLY_MASK)[0])
        self[k] = area
        return area


def median_last(values: np.ndarray) -> np.ndarray:
    """``np.median(values, axis=-1)``, bit for bit, for finite float values (..., n), n >= 1 (without
    ``np.median``'s overhead): the middle order statistic, or the two middle ones summed in the
    values' dtype and halved."""
    n = values.shape[-1]
    half = n // 2
    if n % 2:
        return np.partition(values, half, axis=-1)[..., half]
    part = np.partition(values, (half - 1, half), axis=-1)
    return (part[..., half - 1] + part[..., half]) / 2


def colour_distance(planes: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """float32 (H, W): the Euclidean distance of each pixel's colour to ``mu`` (float32 (3,)), from the
    colour planes float32 (3, H, W). The same bits as ``np.linalg.norm(features - mu, axis=-1)`` on
    the (H, W, 3) features: the same float32 operations in the same order, ``sqrt((d0² + d1²) + d2²)``
    (``tests/test_regiongrow_exact.py`` checks it)."""
    d = planes[0] - mu[0]
    d *= d
    e = planes[1] - mu[1]
    e *= e
    d += e
    np.subtract(planes[2], mu[2], out=e)
    e *= e
    d += e
    return np.sqrt(d, out=d)


NEIGHBOURS = np.array([(0, -1), (-1, 0), (1, 0), (0, 1), (-1, -1), (1, -1), (-1, 1), (1, 1)], np.int64)
"""int64 (8, 2): (row, col) offsets from a pixel to its 8 neighbours, in the order in which
``scipy.ndimage.distance_transform_edt(..., return_indices=True)`` picks among equally near
feature pixels: the nearest of a pixel next to a region is a 4-neighbour (distance 1) when one is
in the region, else a diagonal one (sqrt 2); scipy's two passes (along columns, ties to the smaller
row, then along rows, ties to the smaller column) prefer the smaller column, then the smaller row.
``tests/test_regiongrow_exact.py`` checks it against scipy."""
NEIGHBOURS.flags.writeable = False


@functools.lru_cache(maxsize=2)  # 32 bytes a pixel: 100 kB for 48 x 64
def _probe_table(h: int, w: int, probe: int) -> np.ndarray:
    """int32 (8, (H + 2) * (W + 2)): for a boundary pixel (r, c) of an (H, W) image, at flat index
    ``p = (r + 1) * (W + 2) + c + 1`` of the image framed by one pixel, and each neighbour ``j`` of
    :data:`NEIGHBOURS` (its nearest region pixel), the flat index ``br * W + bc`` of its background
    sample ``probe`` px further out along ``d = (r, c) - neighbour``:
    ``clip(rint((r, c) + probe * d / |d|))``, computed with the same float64 operations as the
    per-pixel formula (``rows + probe * dr / np.hypot(dr, dc)``), so the same pixels."""
    dr, dc = -NEIGHBOURS[:, :1], -NEIGHBOURS[:, 1:]  # int64 (8, 1): pixel - neighbour
    norm = np.hypot(dr, dc)
    rows, cols = np.indices((h + 2, w + 2)).reshape(2, 1, -1) - 1  # int64 (1, P): the image pixel of each index
    br = np.clip(np.rint(rows + probe * dr / norm).astype(np.int64), 0, h - 1)
    bc = np.clip(np.rint(cols + probe * dc / norm).astype(np.int64), 0, w - 1)
    table = (br * w + bc).astype(np.int32)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=2)
def _frame_layout(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For an (H, W) image framed by one pixel ((H + 2, W + 2), flat): bool (H + 2, W + 2), True
    inside the frame; int64 ((H + 2) * (W + 2),), the image's flat index ``r * W + c`` of each framed
    index (-1 on the frame); int64 (8,), the flat steps to the neighbours of :data:`NEIGHBOURS`."""
    inner = np.zeros((h + 2, w + 2), bool)
    inner[1:-1, 1:-1] = True
    flat = np.full((h + 2, w + 2), -1, np.int64)
    flat[1:-1, 1:-1] = np.arange(h * w).reshape(h, w)
    steps = NEIGHBOURS[:, 0] * (w + 2) + NEIGHBOURS[:, 1]
    for a in (inner, flat, steps):
        a.flags.writeable = False
    return inner, flat.ravel(), steps


class RegionGrowSegmenter(OfflineSegmenter):
    """Region growing with a leak guard, a noise-adaptive tolerance and a sub-pixel boundary rule.

    Built for the case the book meets: a solid-coloured object on a
    photograph, possibly of low contrast against it, after JPEG compression
    (which blurs colour over 2 pixels: chroma subsampling) and noise. For each
    foreground point:

    1. Work in YCrCb, smoothed by an edge-preserving bilateral filter
       (``set_image`` does both once; colour sigma ``smoothing``, 5-px window),
       which evens out noise and JPEG blocks inside the object without blurring
       its edge. Take the object's colour ``mu`` as the median of the 3 x 3
       pixels around the point, and ``D`` the Euclidean colour distance to it.
    2. Leak guard: measure the area of the point's 8-connected component of
       ``D <= t`` at each tolerance of :data:`TOLERANCE_STEPS`; the *cap* is
       where it stops growing before it spills into the background
       (:func:`stable_tolerance`).
    3. Core at ``min(initial_tolerance, cap)`` (holes under 5 % of its area
       filled: noise specks, not enclosed objects). Re-estimate ``mu`` as the
       median over the core's interior (the core eroded by one pixel), which
       makes the result nearly independent of where inside the object the
       point lies.
    4. Adapt the tolerance to the noise: ``t = clip(noise_gain * median(D
       over the interior) + noise_offset, min_tolerance, max_tolerance)``,
       never above the cap (measured again around the re-estimated colour),
       and regrow the core at ``t``.
    5. Boundary: for ``rings`` rounds, each pixel ``p`` touching the region
       joins it when ``D(p) < 0.5 * D(b)``, ``b`` being the pixel ``probe``
       pixels further out along the direction from the nearest region pixel
       to ``p``. A mixed pixel ``alpha * mu + (1 - alpha) * bg`` thus joins
       when ``alpha > 0.5``: the edge lands where a hard edge would be.

    Background points: when a region holds a background point, it is regrown
    with the tolerance scaled by 0.7 (up to 6 times) until it does not; the
    background pixels are cleared in any case. Several foreground points give
    the union of their regions.

    Why it is the default offline backend: on clean images every backend
    is near-perfect, so the choice rests on degraded ones. Measured with
    ``benchmarks/offline_backends.py`` (500 test images, one oracle point)
    before steps 1-2 existed: mean IoU 0.992 clean and 0.957 degraded (noise +
    JPEG q90), with 0.4 % of degraded images below IoU 0.5; there the flood
    fill gets 0.59, GrabCut 0.71 (0.81 jittered) and the random walker 0.90.

    Steps 1-2 (and ``noise_gain`` 3 instead of 4) were chosen on validation
    data only, with the oracle point (``results/regiongrow-wide-val.txt``): on
    the wide validation set (CIFAR-10 train photos; low-contrast, small,
    JPEG-compressed and noisy shapes) the mean IoU rose from 0.775 to 0.864 and
    the share of images below IoU 0.5, nearly all of them leaks, fell from
    18.6 % to 4.5 %; on the standard val split it stayed 0.994 clean and went
    from 0.956 to 0.954 degraded. About 0.5 ms per ``predict`` on a 64 x 48
    image, one thread (``benchmarks/regiongrow_speed.py``). Its limit: an object
    whose colour matches the background next to it (within the noise) still
    leaks into it, unless a background point is given there.

    Args:
        initial_tolerance: tolerance (YCrCb distance) of the first core.
        noise_gain, noise_offset: the adaptive tolerance's slope and offset.
        min_tolerance, max_tolerance: bounds of the adaptive tolerance.
        probe: distance in pixels from a boundary pixel to the background
            sample it is compared with.
        rings: rounds of the boundary rule (1-2 pixels of mixed colour).
        smoothing: colour sigma of the bilateral filter (0: none).
        stability, plateau, min_area: the leak guard's parameters
            (:func:`stable_tolerance`); ``stability=None`` turns the guard off.
    """

    name = "regiongrow"

    def __init__(self, initial_tolerance: float = 16.0, noise_gain: float = 3.0, noise_offset: float = 4.0,
                 min_tolerance: float = 10.0, max_tolerance: float = 32.0, probe: int = 3, rings: int = 2,
                 smoothing: float = 15.0, stability: float | None = 0.2, plateau: float = 0.25,
                 min_area: int = 6) -> None:
        super().__init__()
        if not 0 < min_tolerance <= max_tolerance:
            raise ValueError(f"need 0 < min_tolerance <= max_tolerance, got {min_tolerance}, {max_tolerance}")
        if initial_tolerance <= 0 or noise_gain < 0 or probe < 1 or rings < 0:
            raise ValueError("need initial_tolerance > 0, noise_gain >= 0, probe >= 1 and rings >= 0")
        if smoothing < 0 or plateau < 0 or min_area < 1 or (stability is not None and stability < 0):
            raise ValueError(f"need smoothing >= 0, stability >= 0 (or None), plateau >= 0 and min_area >= 1, "
                             f"got {smoothing}, {stability}, {plateau}, {min_area}")
        self.initial_tolerance = float(initial_tolerance)
        self.noise_gain, self.noise_offset = float(noise_gain), float(noise_offset)
        self.min_tolerance, self.max_tolerance = float(min_tolerance), float(max_tolerance)
        self.probe, self.rings = int(probe), int(rings)
        self.smoothing = float(smoothing)
        self.stability, self.plateau, self.min_area = stability, float(plateau), int(min_area)

    def _prepare(self, image: np.ndarray) -> None:
        f = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb).astype(np.float32)
        self._features = cv2.bilateralFilter(f, 5, self.smoothing, 3) if self.smoothing > 0 else f  # (H, W, 3)
        self._planes = np.ascontiguousarray(np.moveaxis(self._features, -1, 0))  # float32 (3, H, W), the same values

    def _segment(self, fg_rows, fg_cols, bg_rows, bg_cols):
        f = self._features
        mask = np.zeros(f.shape[:2], bool)
        for r, c in zip(fg_rows.tolist(), fg_cols.tolist(), strict=True):
            if mask[r, c]:
                continue  # already inside the region of an earlier point
            region, dist, tol = self._grow(r, c)
            for _ in range(6):
                if not region[bg_rows, bg_cols].any():
                    break
                tol *= 0.7
                region = self._refine(_component((dist <= tol).view(np.uint8), r, c), dist)
            mask |= region
        return mask, functools.partial(_contrast_score, f, mask)

    def _cap(self, dist: np.ndarray, r: int, c: int) -> float:
        """The leak guard's largest tolerance for the region seeded at (r, c) (inf when off).

        ``dist``: float32 (H, W), the colour distance to the object's colour."""
        if self.stability is None:
            return np.inf
        steps = np.asarray(TOLERANCE_STEPS, float)
        table = level_table(tuple(TOLERANCE_STEPS))
        areas = AreaCurve(dist, r, c, steps) if table is None else LevelAreas(step_levels(dist, table), r, c)
        return stable_step(areas, steps, self.stability, self.plateau, self.min_area)

    def _grow(self, r: int, c: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Region from the seed pixel (row r, col c): (bool (H, W) mask, float32 (H, W) colour distance
        map, tolerance used)."""
        planes = self._planes
        mu = median_last(planes[:, max(0, r - 1):r + 2, max(0, c - 1):c + 2].reshape(3, -1))
        dist = colour_distance(planes, mu)
        cap = self._cap(dist, r, c)
        core = _component((dist <= min(self.initial_tolerance, cap)).view(np.uint8), r, c)
        interior = _erode(core)
        if np.count_nonzero(interior) < 5:
            interior = core
        mu = median_last(planes[:, interior])
        dist = colour_distance(planes, mu)
        noise = float(median_last(dist[interior]))
        tol = min(max(self.noise_gain * noise + self.noise_offset, self.min_tolerance), self.max_tolerance)
        if np.isfinite(cap):  # the guard again around the re-estimated colour: a leak may have moved
            cap = min(cap, self._cap(dist, r, c))
        tol = min(tol, max(cap, float(TOLERANCE_STEPS[0])))
        core = _component((dist <= tol).view(np.uint8), r, c)
        return self._refine(core, dist), dist, tol

    def _refine(self, region: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """Add boundary pixels nearer the object's colour than half the contrast ``probe`` px further out.

        Args:
            region: bool (H, W) (not written to).
            dist: float32 (H, W), the colour distance to the object's colour.

        Returns:
            A new bool (H, W) mask, small holes filled.

        Each candidate, a pixel next to the region, looks along the direction from its nearest
        region pixel (one of its 8 neighbours, ties broken as scipy's Euclidean distance
        transform does: :data:`NEIGHBOURS`) to the pixel ``probe`` px further out
        (:func:`_probe_table`). The region is kept framed by a pixel of background, so that
        neighbours are flat-index steps.
        """
        h, w = dist.shape
        inner, image_index, neighbour_steps = _frame_layout(h, w)
        probes = _probe_table(h, w, self.probe)
        flat_dist = dist.ravel()
        framed = np.zeros((h + 2, w + 2), np.uint8)
        framed[1:-1, 1:-1] = region
        flat = framed.ravel()
        for _ in range(self.rings):
            candidates = cv2.dilate(framed, _K3, borderType=cv2.BORDER_CONSTANT, borderValue=0) > framed
            candidates &= inner
            at = np.flatnonzero(candidates)  # framed flat indices, row-major as np.nonzero
            if not len(at):
                break
            nearest = flat[at[:, None] + neighbour_steps].argmax(1)  # the first neighbour in the region
            accept = flat_dist[image_index[at]] < 0.5 * flat_dist[probes[nearest, at]]
            if not accept.any():
                break
            flat[at[accept]] = 1
        region = framed[1:-1, 1:-1].astype(bool)
        return _fill_holes_in_place(region, int(np.count_nonzero(region)), cv2.boundingRect(region.view(np.uint8)))
