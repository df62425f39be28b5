"""Prompt strategies: known answers on hand-made heatmaps and images."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import red_and_blue_image

from camseg.data.dataset import normalize
from camseg.prompting.prompts import (
    CamArgmax,
    CamCentroid,
    CamInterior,
    CenterPoint,
    PromptContext,
    Prompts,
    deepest_point,
    oracle_points,
    rowcol_to_xy,
    stack_prompts,
)
from camseg.prompting.regions import (
    CamSupportScore,
    DeletionScore,
    KeepScore,
    LinearScore,
    MaskScoring,
    SimilarityScore,
)
from camseg.segmenters import RegionGrowSegmenter, get_segmenter


def _ctx(cams, images=None, **kw):
    cams = np.asarray(cams, np.float32)
    b, h, w = cams.shape
    images = np.zeros((b, h, w, 3), np.uint8) if images is None else images
    return PromptContext(images, normalize(images), cams, np.zeros(b, np.int64), **kw)


def test_rowcol_to_xy():
    assert rowcol_to_xy(np.array([[[3, 7], [0, 1]]])).tolist() == [[[7, 3], [1, 0]]]
    with pytest.raises(ValueError, match="last axis of 2"):
        rowcol_to_xy(np.zeros((2, 3)))


def test_deepest_point():
    region = np.zeros((9, 12), bool)
    region[2:7, 1:10] = True  # 5 rows x 9 cols: centre row 4, centre col 5
    assert deepest_point(region).tolist() == [5.0, 4.0]
    with pytest.raises(ValueError, match="empty"):
        deepest_point(np.zeros((3, 3), bool))


def test_center_point_is_x_y():
    p = CenterPoint()(_ctx(np.zeros((2, 48, 64))))
    assert p.point_coords.tolist() == [[[31.0, 23.0]]] * 2  # x = (64-1)//2, y = (48-1)//2
    assert p.point_labels.tolist() == [[1]] * 2


def test_cam_argmax_and_background():
    cam = np.zeros((1, 10, 20), np.float32)
    cam[0, 2, 15] = 1.0  # row 2, col 15
    p = CamArgmax(with_background=True)(_ctx(cam))
    assert p.point_coords[0, 0].tolist() == [15.0, 2.0]
    assert p.point_labels.tolist() == [[1, 0]]
    bx, by = p.point_coords[0, 1]
    assert np.hypot(bx - 15, by - 2) > 10  # far from the peak


def test_cam_centroid_threshold():
    cam = np.zeros((1, 10, 10), np.float32)
    cam[0, 4:7, 1:4] = 1.0  # centre (x, y) = (2, 5)
    cam[0, 0, 9] = 0.5  # below the 0.6 threshold: ignored
    assert CamCentroid(0.6)(_ctx(cam)).point_coords[0, 0].tolist() == [2.0, 5.0]


def test_cam_interior_picks_the_heavier_region():
    cam = np.zeros((1, 20, 30), np.float32)
    cam[0, 1:4, 1:4] = 1.0  # small, peak 1.0
    cam[0, 8:17, 10:25] = 0.8  # large: more mass
    p = CamInterior(threshold=0.5, n_background=1)(_ctx(cam))
    x, y = p.point_coords[0, 0]
    assert 10 <= x < 25 and 8 <= y < 17
    assert p.point_labels.tolist() == [[1, 0]]
    bx, by = p.point_coords[0, 1]
    assert cam[0, int(by), int(bx)] < 0.2


def test_oracle_point():
    m = np.zeros((1, 10, 10), bool)
    m[0, 2:5, 6:9] = True  # centre (x, y) = (7, 3)
    assert oracle_points(m).point_coords.tolist() == [[[7.0, 3.0]]]
    ring = np.zeros((1, 9, 9), bool)
    ring[0, 1:8, 1:8] = True
    ring[0, 3:6, 3:6] = False  # centre (4, 4) lies in the hole: nearest mask pixel instead
    x, y = oracle_points(ring).point_coords[0, 0]
    assert ring[0, int(y), int(x)] and np.hypot(x - 4, y - 4) == 2.0
    with pytest.raises(ValueError, match="empty"):
        oracle_points(np.zeros((1, 3, 3), bool))


def test_prompts_padding():
    p = stack_prompts([np.array([[1, 2]]), np.array([[3, 4], [5, 6]])], [np.array([1]), np.array([1, 0])])
    assert p.point_coords.shape == (2, 2, 2) and p.point_labels.tolist() == [[1, -1], [1, 0]]
    coords, labels = p.for_image(0)
    assert coords.tolist() == [[1, 2]] and labels.tolist() == [1]
    assert p.foreground().point_labels.tolist() == [[1, -1], [1, -1]]
    with pytest.raises(ValueError, match=r"\(B, N, 2\)"):
        Prompts(np.zeros((2, 3)), np.zeros((2, 3)))


def test_mask_scoring_finds_the_object_the_classifier_needs(redness_model):
    """The CAM covers a red square (what the classifier sees) and a blue distractor
    equally; segmenting candidates and asking the classifier picks the red one."""
    image, red = red_and_blue_image()
    cam = np.zeros((1, 48, 64), np.float32)
    cam[0, 5:45, 4:58] = 1.0  # uninformative: both squares and background
    ctx = _ctx(cam, image[None], classifier=redness_model, segmenter=get_segmenter("regiongrow"))
    p = MaskScoring(n_background=2)(ctx)
    x, y = p.point_coords[0, 0]
    assert red[int(y), int(x)]  # foreground point in the red square
    assert abs(x - 44) <= 1 and abs(y - 17) <= 1  # ... deep inside it (centre (44, 17))
    assert p.point_labels.tolist() == [[1, 0, 0]]
    for bx, by in p.point_coords[0, 1:]:
        assert not red[int(by), int(bx)]
    assert (ctx.extras["mask_scoring_regions"][0] == red).mean() > 0.98
    assert not redness_model.training


def test_mask_scoring_needs_classifier_and_segmenter():
    with pytest.raises(ValueError, match="needs a classifier and a segmenter"):
        MaskScoring()(_ctx(np.zeros((1, 8, 8))))


def test_strategies_are_deterministic():
    rng = np.random.default_rng(0)
    cams = rng.random((3, 12, 16)).astype(np.float32)
    for s in (CamArgmax(True), CamCentroid(), CamInterior(n_background=2)):
        a, b = s(_ctx(cams)), s(_ctx(cams))
        assert np.array_equal(a.point_coords, b.point_coords)
        h, w = 12, 16
        assert (a.point_coords[..., 0] <= w - 1).all() and (a.point_coords[..., 1] <= h - 1).all()




SCORERS = [SimilarityScore(), KeepScore(), DeletionScore(), CamSupportScore(),
           LinearScore((("cam_support", 2.0), ("similarity", 1.5), ("deletion", 1.0), ("area", -1.0)), -1.0)]


@pytest.mark.parametrize("scorer", SCORERS, ids=lambda s: s.name)
def test_mask_scoring_prunes_without_changing_the_choice(tiny_model, scorer, blobs):
    """Branch and bound scores few regions, yet picks the region (and the distractor) that
    scoring every region would: checked against an exhaustive scoring of the same regions."""
    images, cams = blobs(np.random.default_rng(1), 3)
    # many candidates (the former default): enough regions that pruning has something to skip
    ms = MaskScoring(n_background=2, scorer=scorer, threshold=0.1, max_candidates=96)
    seen = []
    handle = tiny_model.register_forward_hook(lambda mod, inp, out: seen.append(len(inp[0])))
    # unsmoothed region growing keeps the noisy background in many pieces: many regions compete
    segmenter = RegionGrowSegmenter(smoothing=0)
    try:
        ctx = _ctx(cams, images, classifier=tiny_model, segmenter=segmenter)
        p = ms(ctx)
        lazy = sum(seen)
        seen.clear()
        fresh = _ctx(cams, images, classifier=tiny_model, segmenter=RegionGrowSegmenter(smoothing=0))
        total_regions = 0
        for i in range(len(images)):
            masks, seeds = ms.regions(fresh, i)
            total_regions += len(masks)
            scores = ms.score_regions(fresh, i)
            cam_mean = np.array([cams[i][m].mean() for m in masks])
            best = int(np.lexsort((cam_mean, scores))[-1])
            assert np.array_equal(ctx.extras["mask_scoring_regions"][i], masks[best])
            limit = min(ms.distractor_max_score, ms.distractor_ratio * scores[best])
            rivals = [k for k in np.argsort(-cam_mean, kind="stable")
                      if k != best and not (masks[k] & masks[best]).any() and scores[k] <= limit]
            if rivals:
                assert np.array_equal(p.point_coords[i, 1], deepest_point(masks[rivals[0]], cams[i]))
    finally:
        handle.remove()
    assert total_regions >= 3 * len(images)
    # never more images through the classifier than scoring everything; fewer when the bound bites
    assert lazy <= sum(seen)
    if isinstance(scorer, SimilarityScore):
        assert lazy < sum(seen)
