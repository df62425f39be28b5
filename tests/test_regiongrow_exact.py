"""RegionGrowSegmenter gives bit-identical masks and scores to a frozen, straightforward reference.

The reference (:class:`ReferenceRegionGrow`) is the implementation as it was before the speed-ups
(git 6997e64), copied here with its helpers so that later changes to
:mod:`camseg.segmenters.offline` are measured against it: the colour distance of every pixel,
the leak guard's area at each tolerance (one flood fill per step), scipy's Euclidean distance
transform for the nearest region pixel of each boundary candidate, and ``np.median``.

Images: the dataset's shapes drawn on random and smooth backgrounds, clean, degraded
(``degrade``: noise + JPEG), low-contrast and very noisy; the tests' coloured blobs; flat images.
Prompts: one foreground point anywhere (border pixels included, sub-pixel coordinates), several
foreground points, foreground plus background points; several parameter settings.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest
from scipy import ndimage

from camseg.data.dataset import degrade
from camseg.data.shapes import CLASSES, render_sample, sample_shape
from camseg.segmenters.offline import TOLERANCE_STEPS, RegionGrowSegmenter

H, W = 48, 64

# --------------------------------------------------------------------------
# The frozen reference (helpers prefixed ref_)

_K3 = np.ones((3, 3), np.uint8)


def ref_dilate(mask, iterations=1):
    return cv2.dilate(mask.astype(np.uint8), _K3, iterations=iterations,
                      borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def ref_erode(mask):
    return cv2.erode(mask.astype(np.uint8), _K3, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def ref_fill_small_holes(mask, max_fraction=0.05):
    n, labels = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    n -= 1
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    small = sizes <= max_fraction * mask.sum()
    small[0] = False
    small[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = False
    return mask | small[labels]


def ref_seed_component(mask, row, col):
    binary = mask.astype(np.uint8)
    area = cv2.floodFill(binary, None, (int(col), int(row)), 2, 0, 0, 8)[0]
    return binary, int(area)


def ref_component_at(mask, row, col):
    if not mask[row, col]:
        out = np.zeros_like(mask, dtype=bool)
        out[row, col] = True
        return out
    return ref_fill_small_holes(ref_seed_component(mask, row, col)[0] == 2)


def ref_contrast_score(features, mask):
    if not mask.any():
        return 0.0
    ring = ref_dilate(mask, 2) & ~mask
    if not ring.any():
        return 0.0
    mu = np.median(features[mask], axis=0)
    dist = np.linalg.norm(features - mu, axis=-1)
    inside, outside = float(np.median(dist[mask])), float(np.median(dist[ring]))
    return float(np.clip(1.0 - inside / (outside + 1e-6), 0.0, 1.0))


def ref_area(dist, row, col, step):
    inside = dist <= step
    return float(ref_seed_component(inside, row, col)[1]) if inside[row, col] else 1.0


def ref_stable_step(areas, steps, stability, plateau, min_area):
    n = len(steps)
    chosen, least, least_q = None, None, np.inf
    for k in range(1, n - 1):
        if areas[k] < min_area:
            continue
        q = (areas[k + 1] - areas[k - 1]) / areas[k]
        if q <= stability:
            chosen = k
            break
        if q <= least_q:
            least, least_q = k, q
    if chosen is None:
        if least is None:
            return float(steps[-1])
        chosen = least
    j = chosen
    while j + 1 < n and areas[j + 1] <= (1 + plateau) * areas[chosen]:
        j += 1
    return float(steps[j])


class ReferenceRegionGrow(RegionGrowSegmenter):
    """``RegionGrowSegmenter`` as it was (every per-image and per-prompt step frozen here)."""

    def _prepare(self, image):
        f = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb).astype(np.float32)
        self._features = cv2.bilateralFilter(f, 5, self.smoothing, 3) if self.smoothing > 0 else f

    def _segment(self, fg_rows, fg_cols, bg_rows, bg_cols):
        f = self._features
        mask = np.zeros(f.shape[:2], bool)
        for r, c in zip(fg_rows, fg_cols, strict=True):
            if mask[r, c]:
                continue
            region, dist, tol = self._grow(int(r), int(c))
            for _ in range(6):
                if not region[bg_rows, bg_cols].any():
                    break
                tol *= 0.7
                region = self._refine(ref_component_at(dist <= tol, int(r), int(c)), dist)
            mask |= region
        return mask, functools.partial(ref_contrast_score, f, mask)

    def _cap(self, dist, r, c):
        if self.stability is None:
            return np.inf
        steps = np.asarray(TOLERANCE_STEPS, float)
        areas = [ref_area(dist, r, c, t) for t in steps]  # every step (the lazy original read fewer: same answer)
        return ref_stable_step(areas, steps, self.stability, self.plateau, self.min_area)

    def _grow(self, r, c):
        f = self._features
        mu = np.median(f[max(0, r - 1):r + 2, max(0, c - 1):c + 2].reshape(-1, 3), axis=0)
        dist = np.linalg.norm(f - mu, axis=-1)
        cap = self._cap(dist, r, c)
        core = ref_component_at(dist <= min(self.initial_tolerance, cap), r, c)
        interior = ref_erode(core)
        if interior.sum() < 5:
            interior = core
        mu = np.median(f[interior], axis=0)
        dist = np.linalg.norm(f - mu, axis=-1)
        noise = float(np.median(dist[interior]))
        tol = float(np.clip(self.noise_gain * noise + self.noise_offset, self.min_tolerance, self.max_tolerance))
        if np.isfinite(cap):
            cap = min(cap, self._cap(dist, r, c))
        tol = min(tol, max(cap, float(TOLERANCE_STEPS[0])))
        core = ref_component_at(dist <= tol, r, c)
        return self._refine(core, dist), dist, tol

    def _refine(self, region, dist):
        h, w = dist.shape
        for _ in range(self.rings):
            candidates = ref_dilate(region) & ~region
            if not candidates.any():
                break
            _, (near_r, near_c) = ndimage.distance_transform_edt(~region, return_indices=True)
            rr, cc = np.nonzero(candidates)
            dr, dc = rr - near_r[rr, cc], cc - near_c[rr, cc]
            norm = np.hypot(dr, dc)
            norm[norm == 0] = 1.0
            br = np.clip(np.rint(rr + self.probe * dr / norm).astype(np.int64), 0, h - 1)
            bc = np.clip(np.rint(cc + self.probe * dc / norm).astype(np.int64), 0, w - 1)
            accept = dist[rr, cc] < 0.5 * dist[br, bc]
            if not accept.any():
                break
            region = region.copy()
            region[rr[accept], cc[accept]] = True
        return ref_fill_small_holes(region)


# --------------------------------------------------------------------------
# Images and prompts


def _background(rng: np.random.Generator, kind: str) -> np.ndarray:
    """uint8 (32, 32, 3): the dataset pastes shapes on 32 x 32 CIFAR photos, upscaled."""
    if kind == "noise":
        return rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    if kind == "smooth":
        small = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
        return cv2.resize(small, (32, 32), interpolation=cv2.INTER_LINEAR)
    if kind == "flat":
        return np.full((32, 32, 3), rng.integers(0, 256, 3), np.uint8)
    raise ValueError(kind)


def _shape_image(rng: np.random.Generator, kind: str, low_contrast: bool) -> np.ndarray:
    bg = _background(rng, kind)
    spec = sample_shape(rng, int(rng.integers(0, len(CLASSES))))
    if low_contrast:  # the shape's colour within a few grey levels of the background's mean
        colour = np.clip(bg.reshape(-1, 3).mean(0) + rng.integers(-12, 13, 3), 0, 255).astype(int)
        spec = type(spec)(spec.label, spec.center, spec.radius, spec.angle_deg, tuple(int(v) for v in colour))
    return render_sample(bg, spec)[0]


def _blobs_image(rng: np.random.Generator) -> np.ndarray:
    """The tests' coloured rectangles on a textured background (conftest ``blobs``)."""
    img = rng.integers(60, 90, (H, W, 3)).astype(np.uint8)
    for _ in range(8):
        r, c = rng.integers(0, H - 12), rng.integers(0, W - 14)
        img[r:r + rng.integers(6, 12), c:c + rng.integers(6, 14)] = rng.integers(0, 256, 3)
    return img


def images(seed: int) -> list[np.ndarray]:
    """Nine varied uint8 (48, 64, 3) RGB images."""
    rng = np.random.default_rng(seed)
    clean = [_shape_image(rng, kind, low) for kind, low in
             (("noise", False), ("smooth", False), ("smooth", True), ("flat", False), ("noise", True))]
    out = clean + list(degrade(np.stack(clean[:3]), quality=int(rng.integers(40, 95)), noise_std=3.0, seed=seed))
    noisy = clean[2].astype(np.float32) + rng.normal(0, 12, clean[2].shape)
    out.append(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    out.append(_blobs_image(rng))
    return out


def prompts(rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` prompts, (coords float (N, 2) in (x, y), labels int64 (N,)): mostly one foreground point,
    some with border pixels, several foreground points or background points."""
    out = []
    for i in range(n):
        kind = i % 6
        if kind == 0:  # a border pixel
            x, y = (float(rng.choice([0, W - 1])), float(rng.integers(0, H))) if rng.random() < 0.5 else \
                (float(rng.integers(0, W)), float(rng.choice([0, H - 1])))
            coords, labels = np.array([[x, y]]), np.ones(1, np.int64)
        elif kind in (1, 2):  # one point, integer or sub-pixel
            coords = rng.uniform([0, 0], [W - 1, H - 1], (1, 2))
            if kind == 1:
                coords = np.round(coords)
            labels = np.ones(1, np.int64)
        elif kind == 3:  # several foreground points
            k = int(rng.integers(2, 5))
            coords, labels = rng.uniform([0, 0], [W - 1, H - 1], (k, 2)), np.ones(k, np.int64)
        else:  # foreground and background points (some background points close to the foreground one)
            k_bg = int(rng.integers(1, 4))
            fg = rng.uniform([0, 0], [W - 1, H - 1], (1, 2))
            near = np.clip(fg + rng.normal(0, 6, (k_bg, 2)), [0, 0], [W - 1, H - 1])
            far = rng.uniform([0, 0], [W - 1, H - 1], (k_bg, 2))
            bg = np.where(rng.random((k_bg, 1)) < 0.6, near, far)
            coords = np.concatenate([fg, bg])
            labels = np.array([1] + [0] * k_bg, np.int64)
            if kind == 5 and rng.random() < 0.5:  # a second foreground point after the background ones
                coords = np.concatenate([coords, rng.uniform([0, 0], [W - 1, H - 1], (1, 2))])
                labels = np.append(labels, 1)
        out.append((coords, labels))
    return out


def assert_identical(new: RegionGrowSegmenter, ref: RegionGrowSegmenter, image: np.ndarray,
                     rng: np.random.Generator, n_prompts: int, grid_every: int = 9) -> None:
    new.set_image(image)
    ref.set_image(image)
    np.testing.assert_array_equal(new._features, ref._features)
    for coords, labels in prompts(rng, n_prompts):
        a, b = new.predict(coords, labels), ref.predict(coords, labels)
        assert a.mask.dtype == b.mask.dtype == bool
        assert np.array_equal(a.mask, b.mask), (coords.tolist(), labels.tolist(), int((a.mask != b.mask).sum()))
        assert a.score == b.score, (coords.tolist(), labels.tolist(), a.score, b.score)
    # the candidates' way: every grid point, in one predict_batch call
    ys, xs = np.mgrid[1:H:3, 1:W:3]
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)[int(rng.integers(grid_every))::grid_every]
    got = new.predict_batch(pts[:, None], np.ones((len(pts), 1), np.int64))
    want = ref.predict_batch(pts[:, None], np.ones((len(pts), 1), np.int64))
    for a, b, pt in zip(got, want, pts, strict=True):
        assert np.array_equal(a.mask, b.mask), pt.tolist()


# --------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("seed", range(3))
def test_default_regiongrow_is_bit_identical(seed):
    rng = np.random.default_rng(100 + seed)
    for image in images(seed):
        assert_identical(RegionGrowSegmenter(), ReferenceRegionGrow(), image, rng, 24)


SETTINGS = [
    {"smoothing": 0.0},
    {"stability": None},
    {"rings": 0},
    {"rings": 1, "probe": 1},
    {"rings": 3, "probe": 5, "min_area": 30},
    {"initial_tolerance": 6.0, "min_tolerance": 2.0, "max_tolerance": 60.0, "noise_gain": 5.0},
    {"stability": 0.05, "plateau": 0.0},
]


@pytest.mark.parametrize("kw", SETTINGS, ids=[",".join(f"{k}={v}" for k, v in kw.items()) for kw in SETTINGS])
def test_other_settings_are_bit_identical(kw):
    rng = np.random.default_rng(7)
    for image in images(11)[::2]:
        assert_identical(RegionGrowSegmenter(**kw), ReferenceRegionGrow(**kw), image, rng, 8, grid_every=30)


def test_tiny_and_flat_images():
    rng = np.random.default_rng(3)
    cases = [np.full((6, 8, 3), 128, np.uint8), rng.integers(0, 256, (1, 1, 3)).astype(np.uint8),
             rng.integers(0, 256, (1, 7, 3)).astype(np.uint8), rng.integers(0, 256, (5, 1, 3)).astype(np.uint8),
             rng.integers(0, 256, (3, 4, 3)).astype(np.uint8), _shape_image(rng, "flat", False)[:9, :11]]
    for image in cases:
        h, w = image.shape[:2]
        new, ref = RegionGrowSegmenter(), ReferenceRegionGrow()
        new.set_image(image)
        ref.set_image(image)
        for r in range(h):
            for c in range(w):
                a = new.predict(np.array([[c, r]], float), np.ones(1, np.int64))
                b = ref.predict(np.array([[c, r]], float), np.ones(1, np.int64))
                assert np.array_equal(a.mask, b.mask) and a.score == b.score, (image.shape, r, c)


def _random_masks(rng: np.random.Generator, n: int):
    """bool masks of random sizes: noise of any density, and blocky shapes with specks (holes of all sizes)."""
    for i in range(n):
        h, w = (int(v) for v in rng.integers(1, 24, 2)) if i % 2 else (H, W)
        if i % 4 == 0:
            yield rng.random((h, w)) < rng.uniform(0.02, 0.95)
        else:
            coarse = rng.random((max(1, h // 3), max(1, w // 3))) < rng.uniform(0.1, 0.8)
            mask = cv2.resize(coarse.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
            yield mask ^ (rng.random((h, w)) < 0.05)


def test_nearest_region_pixel_matches_scipys_feature_transform():
    """NEIGHBOURS' order picks, for each pixel next to a region, the region pixel scipy's exact
    Euclidean distance transform returns (its ties included)."""
    from camseg.segmenters.offline import NEIGHBOURS

    rng = np.random.default_rng(5)
    checked = 0
    for region in _random_masks(rng, 600):
        candidates = ref_dilate(region) & ~region
        if not region.any() or not candidates.any():
            continue
        _, (near_r, near_c) = ndimage.distance_transform_edt(~region, return_indices=True)
        rr, cc = np.nonzero(candidates)
        framed = np.pad(region, 1)
        first = framed[rr[:, None] + 1 + NEIGHBOURS[:, 0], cc[:, None] + 1 + NEIGHBOURS[:, 1]].argmax(1)
        np.testing.assert_array_equal(rr + NEIGHBOURS[first, 0], near_r[rr, cc])
        np.testing.assert_array_equal(cc + NEIGHBOURS[first, 1], near_c[rr, cc])
        checked += len(rr)
    assert checked > 100_000


def test_fill_small_holes_and_component_at_match_the_reference():
    from camseg.segmenters.offline import component_at, fill_small_holes

    rng = np.random.default_rng(6)
    for mask in _random_masks(rng, 300):
        for frac in (0.05, 0.0, 0.3):
            np.testing.assert_array_equal(fill_small_holes(mask, frac), ref_fill_small_holes(mask, frac))
        for _ in range(3):
            r, c = int(rng.integers(mask.shape[0])), int(rng.integers(mask.shape[1]))
            np.testing.assert_array_equal(component_at(mask, r, c), ref_component_at(mask, r, c))


def test_helpers_give_the_same_bits():
    """Rare one-ulp differences would seldom change a mask, so the exact helpers are checked on their own:
    the colour distance against np.linalg.norm, the median against np.median, the step levels and the
    leak guard's areas against thresholding and flood filling at each step."""
    from camseg.segmenters.offline import LevelAreas, colour_distance, level_table, median_last, step_levels

    rng = np.random.default_rng(8)
    steps = np.asarray(TOLERANCE_STEPS, float)
    table = level_table(tuple(TOLERANCE_STEPS))
    assert table is not None
    seg = RegionGrowSegmenter()
    for i, image in enumerate(images(21)):
        seg.set_image(image)
        f = seg._features
        for features in (f, (rng.random(f.shape) * rng.choice([1.0, 300.0])).astype(np.float32)):
            planes = np.ascontiguousarray(np.moveaxis(features, -1, 0))
            for _ in range(10):
                r, c = int(rng.integers(H)), int(rng.integers(W))
                patch = features[max(0, r - 1):r + 2, max(0, c - 1):c + 2].reshape(-1, 3)
                mu = np.median(patch, axis=0)
                got = median_last(planes[:, max(0, r - 1):r + 2, max(0, c - 1):c + 2].reshape(3, -1))
                assert got.dtype == mu.dtype and np.array_equal(got, mu)
                dist = np.linalg.norm(features - mu, axis=-1)
                mine = colour_distance(planes, mu)
                assert mine.dtype == dist.dtype and np.array_equal(mine, dist)
                some = dist.ravel()[: int(rng.integers(1, dist.size))]
                assert np.median(some) == median_last(some)
                level = step_levels(dist, table)
                for k, t in enumerate(steps):
                    np.testing.assert_array_equal(level <= k, dist <= t)
                if i < 3:
                    areas = LevelAreas(level, r, c)
                    assert [areas[k] for k in range(len(steps))] == [ref_area(dist, r, c, t) for t in steps]
