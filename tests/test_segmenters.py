"""The segmenter interface, the offline backends and the registry (no SAM weights needed)."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from camseg.segmenters import (
    DEFAULT_OFFLINE,
    SEGMENTERS,
    FloodFillSegmenter,
    GrabCutSegmenter,
    PromptableSegmenter,
    RandomWalkerSegmenter,
    RegionGrowSegmenter,
    SegmentResult,
    get_segmenter,
)
from camseg.segmenters.base import (
    image_key,
    point_pixels,
    validate_image,
    validate_prompt,
)
from camseg.segmenters.checkpoints import CHECKPOINT_ENV_VAR
from camseg.segmenters.offline import stable_tolerance

OFFLINE = [FloodFillSegmenter, GrabCutSegmenter, RandomWalkerSegmenter, RegionGrowSegmenter]
H, W = 48, 64
BG, FG = (40, 90, 160), (220, 40, 40)


def square_image() -> tuple[np.ndarray, np.ndarray]:
    """A flat 20 x 20 square (rows 10..29, cols 20..39) on a flat background, and its mask."""
    image = np.empty((H, W, 3), np.uint8)
    image[:] = BG
    mask = np.zeros((H, W), bool)
    mask[10:30, 20:40] = True
    image[mask] = FG
    return image, mask


def fg(*xy: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(xy, dtype=np.float64), np.ones(len(xy), dtype=np.int64)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# --------------------------------------------------------------------------
# Known answers


@pytest.mark.parametrize("cls", OFFLINE)
def test_flat_square_is_found_exactly(cls):
    image, mask = square_image()
    seg = cls()
    seg.set_image(image)
    res = seg.predict(*fg((30.0, 20.0)))  # (x, y) = (col 30, row 20): the square's centre
    assert isinstance(res, SegmentResult)
    assert res.mask.dtype == bool and res.mask.shape == (H, W)
    np.testing.assert_array_equal(res.mask, mask)
    assert res.backend == seg.name
    assert 0.0 <= res.score <= 1.0


@pytest.mark.parametrize("cls", OFFLINE)
def test_point_on_the_background_segments_the_background(cls):
    image, mask = square_image()
    seg = cls()
    seg.set_image(image)
    res = seg.predict(*fg((5.0, 40.0)))
    assert res.mask[40, 5] and not (res.mask & mask).any()


@pytest.mark.parametrize("cls", OFFLINE)
def test_background_points_are_excluded(cls):
    image, mask = square_image()
    seg = cls()
    seg.set_image(image)
    coords = np.array([[30.0, 20.0], [22.0, 12.0], [37.0, 27.0]])  # fg centre, two bg points inside the square
    res = seg.predict(coords, np.array([1, 0, 0]))
    assert not res.mask[12, 22] and not res.mask[27, 37]
    assert res.mask[20, 30]
    assert not (res.mask & ~mask).any()


@pytest.mark.parametrize("cls", OFFLINE)
def test_two_foreground_points_give_the_union(cls):
    image, mask = square_image()
    other = np.zeros((H, W), bool)
    other[32:44, 48:60] = True
    image[other] = (30, 200, 60)
    seg = cls()
    seg.set_image(image)
    res = seg.predict(*fg((30.0, 20.0), (54.0, 38.0)))
    np.testing.assert_array_equal(res.mask, mask | other)


def test_regiongrow_background_point_separates_similar_colours():
    """Two touching squares 15 grey levels apart: without the leak guard and smoothing they are one
    region, and a background point in one keeps only the other."""
    image, mask = square_image()
    twin = np.zeros((H, W), bool)
    twin[10:30, 40:52] = True
    image[twin] = (FG[0] - 15, FG[1], FG[2])
    seg = RegionGrowSegmenter(smoothing=0, stability=None)
    seg.set_image(image)
    both = seg.predict(*fg((30.0, 20.0))).mask
    np.testing.assert_array_equal(both, mask | twin)  # within the colour tolerance: one region
    res = seg.predict(np.array([[30.0, 20.0], [46.0, 20.0]]), np.array([1, 0]))
    np.testing.assert_array_equal(res.mask, mask)


def test_regiongrow_leak_guard_stops_at_a_low_contrast_edge():
    """A flat square touching a larger patch 8 levels away: without the guard the region spills into
    the patch; with it (the default) the region is the square from any point inside it, give or take
    the one column of mixed pixels that smoothing leaves on the low-contrast side."""
    image, mask = square_image()
    patch = np.zeros((H, W), bool)
    patch[5:45, 40:62] = True
    image[patch] = (FG[0] - 8, FG[1] + 4, FG[2])
    unguarded = RegionGrowSegmenter(stability=None)
    unguarded.set_image(image)
    assert unguarded.predict(*fg((30.0, 20.0))).mask[patch].all()
    seg = RegionGrowSegmenter()
    seg.set_image(image)
    for point in [(30.0, 20.0), (21.0, 11.0), (38.0, 28.0), (25.0, 25.0)]:
        got = seg.predict(*fg(point)).mask
        assert got[mask].all() and (got & ~mask).sum() <= 20, point  # 20: one column of the square's height


def test_stable_tolerance_known_answers():
    steps = np.arange(1.0, 8.0)
    # fills at step 2, calm until step 5, then spills: the cap is the last step within 25 % of step 2's area
    assert stable_tolerance(np.array([1.0, 40, 41, 42, 44, 300, 900]), steps, 0.2, 0.25, 6) == 5.0
    # a region that keeps growing slowly (noise filling in): no calm step, the least growth wins
    areas = np.array([2.0, 10, 30, 60, 90, 120, 150])
    assert stable_tolerance(areas, steps, 0.2, 0.25, 6) == 7.0
    # never reaching min_area: no cap
    assert stable_tolerance(np.ones(7), steps, 0.2, 0.25, 6) == 7.0
    with pytest.raises(ValueError, match="same length"):
        stable_tolerance(np.ones(6), steps, 0.2, 0.25, 6)


def _reference_areas(dist, row, col, steps):
    # scipy's labelling, not OpenCV's: the component of dist <= t holding (row, col), 1 when outside it
    from scipy import ndimage

    out = []
    for t in steps:
        labels, _ = ndimage.label(dist <= t, structure=np.ones((3, 3)))
        out.append(float((labels == labels[row, col]).sum()) if labels[row, col] else 1.0)
    return np.array(out)


@pytest.mark.parametrize("seed", range(40))
def test_leak_guard_reads_few_steps_and_agrees_with_the_whole_curve(seed):
    from camseg.segmenters.offline import TOLERANCE_STEPS, area_curve, AreaCurve, stable_step

    rng = np.random.default_rng(seed)
    # a blob of one colour on a background of another, both noisy, sometimes touching: leaks at some step
    dist = np.abs(rng.normal(0, rng.uniform(1, 12), (H, W))) + rng.uniform(20, 60)
    r0, c0, rad = rng.integers(10, 38), rng.integers(10, 54), rng.integers(3, 12)
    yy, xx = np.mgrid[:H, :W]
    blob = (yy - r0) ** 2 + (xx - c0) ** 2 <= rad ** 2
    dist[blob] = np.abs(rng.normal(0, rng.uniform(1, 8), blob.sum()))
    steps = np.asarray(TOLERANCE_STEPS, float)
    ref = _reference_areas(dist, r0, c0, steps)
    np.testing.assert_array_equal(area_curve(dist, r0, c0, steps), ref)
    for stability, plateau, min_area in ((0.2, 0.25, 6), (0.05, 0.1, 6), (0.5, 0.5, 30)):
        lazy = AreaCurve(dist, r0, c0, steps)
        assert stable_step(lazy, steps, stability, plateau, min_area) == stable_tolerance(
            ref, steps, stability, plateau, min_area)
        assert len(lazy._areas) <= len(steps)


def test_leak_guard_stops_reading_once_decided():
    from camseg.segmenters.offline import AreaCurve, stable_step

    dist = np.full((H, W), 100.0)
    dist[10:20, 10:20] = 3.0  # a flat square, 100 px, far from its background's colour
    steps = np.arange(1.0, 23.0) * 4  # 4, 8, ..., 88
    curve = AreaCurve(dist, 15, 15, steps)
    assert stable_step(curve, steps, 0.2, 0.25, 6) == 96.0 - 8.0  # calm from step 1; the last within 25 %
    curve = AreaCurve(dist, 15, 15, np.arange(1.0, 30.0))
    assert stable_step(curve, curve.steps, 0.2, 0.25, 6) == 29.0  # never leaks: every step is read
    dist[30:40, 30:60] = 50.0
    curve = AreaCurve(dist, 15, 15, np.arange(1.0, 30.0) * 2)
    assert stable_step(curve, curve.steps, 0.2, 0.25, 6) == 58.0
    dist[20:30, 10:40] = 50.0  # a larger patch touching the square: from tolerance 50 the region spills into it
    curve = AreaCurve(dist, 15, 15, np.array([2.0, 4, 6, 8, 10, 60, 70, 80, 90, 100, 110]))
    assert stable_step(curve, curve.steps, 0.2, 0.25, 6) == 10.0
    assert sorted(curve._areas) == [0, 1, 2, 3, 4, 5]  # decided at step 1; step 5 spills; 6-10 never read


@pytest.mark.parametrize("kwargs", [{"smoothing": -1}, {"stability": -0.1}, {"plateau": -1}, {"min_area": 0}])
def test_regiongrow_rejects_bad_guard_settings(kwargs):
    with pytest.raises(ValueError, match="need smoothing >= 0"):
        RegionGrowSegmenter(**kwargs)


def _jpeg(image: np.ndarray, quality: int = 85, noise: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format="JPEG", quality=quality)
    return np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_regiongrow_is_robust_to_noise_and_jpeg():
    image, mask = square_image()
    yy, xx = np.mgrid[:H, :W]
    image[~mask] = np.stack([xx * 3, yy * 2 + 40, 255 - xx * 2], -1)[~mask].astype(np.uint8)  # a gradient background
    degraded = _jpeg(image)
    seg = RegionGrowSegmenter()
    seg.set_image(degraded)
    for point in [(30.0, 20.0), (22.0, 12.0), (37.0, 28.0)]:  # centre and near two corners
        assert iou(seg.predict(*fg(point)).mask, mask) > 0.9


@pytest.mark.parametrize("cls", OFFLINE)
def test_deterministic_and_independent_of_the_callers_array(cls):
    image, _ = square_image()
    image = _jpeg(image, noise=8.0)
    a, b = cls(), cls()
    a.set_image(image)
    b.set_image(image.copy())
    prompt = (np.array([[30.0, 20.0], [5.0, 5.0]]), np.array([1, 0]))
    first = a.predict(*prompt)
    image[:] = 0  # changing the caller's array after set_image changes nothing
    again = a.predict(*prompt)
    other = b.predict(*prompt)
    np.testing.assert_array_equal(first.mask, again.mask)
    np.testing.assert_array_equal(first.mask, other.mask)
    assert first.score == again.score == other.score


@pytest.mark.parametrize("cls", OFFLINE)
def test_points_on_the_image_corners_and_fractional_points(cls):
    image, _ = square_image()
    seg = cls()
    seg.set_image(image)
    for x, y in [(0.0, 0.0), (W - 1.0, H - 1.0), (W - 1.0, 0.0), (29.6, 20.4)]:
        res = seg.predict(*fg((x, y)))
        assert res.mask[int(round(y)), int(round(x))]


@pytest.mark.parametrize("cls", OFFLINE)
def test_tiny_images(cls):
    seg = cls()
    image = np.zeros((3, 4, 3), np.uint8)
    image[1, 1:3] = 255
    seg.set_image(image)
    res = seg.predict(*fg((1.0, 1.0)))
    assert res.mask.shape == (3, 4) and res.mask[1, 1]
    seg.set_image(np.zeros((1, 1, 3), np.uint8))
    assert seg.predict(*fg((0.0, 0.0))).mask.tolist() == [[True]]


def test_regiongrow_predict_is_fast():
    image, _ = square_image()
    seg = get_segmenter("offline")
    seg.set_image(_jpeg(image))
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        seg.predict(*fg((30.0, 20.0)))
        times.append(time.perf_counter() - t0)
    assert np.median(times) < 0.020  # measured about 2 ms on one CPU thread


# --------------------------------------------------------------------------
# Validation (shared by all backends)


@pytest.mark.parametrize(("image", "error", "message"), [
    (np.zeros((H, W, 3), np.float32), ValueError, "uint8"),
    (np.zeros((H, W), np.uint8), ValueError, r"\(H, W, 3\)"),
    (np.zeros((3, H, W), np.uint8), ValueError, "channels first"),
    (np.zeros((H, W, 4), np.uint8), ValueError, r"\(H, W, 3\)"),
    (np.zeros((0, W, 3), np.uint8), ValueError, "empty"),
    ([[[0, 0, 0]]], TypeError, "numpy array"),
])
@pytest.mark.parametrize("cls", OFFLINE)
def test_bad_images_are_rejected(cls, image, error, message):
    with pytest.raises(error, match=message):
        cls().set_image(image)


BAD_PROMPTS = [
    (np.array([30.0, 20.0]), np.array([1]), r"\(N, 2\)"),
    (np.zeros((1, 3)), np.array([1]), r"\(N, 2\)"),
    (np.zeros((0, 2)), np.zeros(0, np.int64), "empty"),
    (np.array([[30.0, 20.0]]), np.array([1, 0]), r"shape \(N,\)"),
    (np.array([[30.0, 20.0]]), np.array([2]), "1 .foreground. or 0"),
    (np.array([[30.0, 20.0]]), np.array([1.0]), "integers"),
    (np.array([[30.0, 20.0]]), np.array([0]), "no foreground"),
    (np.array([[64.0, 20.0]]), np.array([1]), r"outside the image.*0 <= x <= 63"),
    (np.array([[30.0, -1.0]]), np.array([1]), "outside the image"),
    (np.array([[np.nan, 1.0]]), np.array([1]), "NaN"),
    (np.array([["a", "b"]]), np.array([1]), "numeric"),
    (np.array([[20.0, 60.0]]), np.array([1]), r"\(row, col\) given instead of \(x, y\)"),
]


@pytest.mark.parametrize(("coords", "labels", "message"), BAD_PROMPTS)
@pytest.mark.parametrize("cls", OFFLINE)
def test_bad_prompts_are_rejected(cls, coords, labels, message):
    image, _ = square_image()
    seg = cls()
    seg.set_image(image)
    with pytest.raises(ValueError, match=message):
        seg.predict(coords, labels)


@pytest.mark.parametrize("cls", OFFLINE)
def test_predict_before_set_image(cls):
    with pytest.raises(RuntimeError, match="set_image"):
        cls().predict(*fg((1.0, 1.0)))


def test_invalid_image_keeps_the_previous_one():
    seg = RegionGrowSegmenter()
    seg.set_image(square_image()[0])
    with pytest.raises(ValueError):
        seg.set_image(np.zeros((4, 4), np.uint8))
    assert seg.image_shape == (H, W)  # validation failed before anything changed


def test_validate_prompt_returns_clean_copies():
    coords_in, labels_in = [[1, 2], [3, 4]], np.array([True, False])
    coords, labels = validate_prompt(coords_in, labels_in, (5, 5, 3))
    assert coords.dtype == np.float64 and coords.shape == (2, 2)
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0]
    rows, cols = point_pixels(np.array([[1.4, 2.6]]))  # (x, y) -> (row, col) = (round(y), round(x))
    assert rows.tolist() == [3] and cols.tolist() == [1]


def test_image_key_depends_on_content_not_layout():
    image, _ = square_image()
    assert image_key(image) == image_key(np.asfortranarray(image)) == image_key(image.copy())
    changed = image.copy()
    changed[0, 0, 0] ^= 1
    assert image_key(changed) != image_key(image)
    assert image_key(validate_image(image[:, :32])) != image_key(image)


def test_bad_backend_options():
    with pytest.raises(ValueError, match="tolerance"):
        FloodFillSegmenter(tolerance=300)
    with pytest.raises(ValueError, match="beta"):
        RandomWalkerSegmenter(beta=0)
    with pytest.raises(ValueError, match="mode"):
        RandomWalkerSegmenter(mode="fast")
    with pytest.raises(ValueError, match="iterations"):
        GrabCutSegmenter(iterations=0)
    with pytest.raises(ValueError, match="min_tolerance"):
        RegionGrowSegmenter(min_tolerance=20, max_tolerance=10)


# --------------------------------------------------------------------------
# Registry


def test_registry_names():
    assert set(SEGMENTERS) == {"sam", "sam-vit_b", "sam-vit_l", "sam-vit_h", "offline",
                               "regiongrow", "floodfill", "grabcut", "randomwalker"}
    assert DEFAULT_OFFLINE == "regiongrow"
    for name in ("floodfill", "grabcut", "randomwalker", "regiongrow"):
        seg = get_segmenter(name)
        assert seg.name == name and isinstance(seg, PromptableSegmenter)
    assert isinstance(get_segmenter("offline"), RegionGrowSegmenter)
    assert get_segmenter("floodfill", tolerance=5).tolerance == 5


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="unknown segmenter 'sam2'.*auto.*sam-vit_h.*regiongrow"):
        get_segmenter("sam2")


def test_auto_without_weights_warns_and_uses_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMSEG_CACHE", str(tmp_path))
    monkeypatch.delenv(CHECKPOINT_ENV_VAR, raising=False)
    with pytest.warns(UserWarning, match="SAM weights .*sam_vit_b_01ec64.pth.* not found.*'regiongrow'"):
        seg = get_segmenter("auto")
    assert isinstance(seg, RegionGrowSegmenter)
    with pytest.warns(UserWarning, match="not found"):
        assert isinstance(get_segmenter(), RegionGrowSegmenter)  # "auto" is the default


def test_auto_with_a_local_checkpoint_builds_sam(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMSEG_CACHE", str(tmp_path))
    ckpt = tmp_path / "my_sam.pth"
    ckpt.write_bytes(b"weights")
    monkeypatch.setenv(CHECKPOINT_ENV_VAR, str(ckpt))
    calls = []
    monkeypatch.setitem(SEGMENTERS, "sam-vit_b", lambda **kw: calls.append(kw) or "sam-made")
    assert get_segmenter("auto", device="cpu") == "sam-made"
    assert calls == [{"device": "cpu"}]
    monkeypatch.delenv(CHECKPOINT_ENV_VAR)
    assert get_segmenter("auto", checkpoint=ckpt) == "sam-made"


def test_importing_camseg_segmenters_does_not_import_segment_anything():
    code = "import sys, camseg.segmenters; print('segment_anything' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["regiongrow", "floodfill"])
def test_offline_predict_batch_is_a_loop_over_predict(name):
    image = np.zeros((24, 32, 3), np.uint8)
    image[4:14, 6:20] = (200, 30, 30)
    image[16:22, 22:30] = (20, 200, 30)
    seg = get_segmenter(name)
    seg.set_image(image)
    coords = np.array([[[10.0, 8.0], [25.0, 18.0]], [[25.0, 18.0], [2.0, 2.0]], [[2.0, 20.0], [10.0, 8.0]]])
    labels = np.array([[1, 0], [1, 0], [1, 0]])
    out = seg.predict_batch(coords, labels)
    assert [r.mask.tolist() for r in out] == [seg.predict(c, lab).mask.tolist() for c, lab in zip(coords, labels)]
    assert len({r.mask.tobytes() for r in out}) == 3  # three different answers
    with pytest.raises(ValueError, match="prompt 0: point 0 .*outside the image"):
        seg.predict_batch(np.array([[[40.0, 1.0]]]), np.array([[1]]))
