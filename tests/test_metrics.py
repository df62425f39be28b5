"""Metrics on hand-computed cases, properties, and an independent reference (scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest

from camseg.evaluation.metrics import (
    centre_of_mass,
    iou,
    iou_per_image,
    mean_iou,
    point_distances,
    point_hits,
    point_metrics,
)


def _box(h, w, r0, r1, c0, c1):
    m = np.zeros((h, w), bool)
    m[r0:r1, c0:c1] = True
    return m


def test_iou_by_hand():
    a = _box(6, 6, 0, 3, 0, 3)  # 9 pixels
    b = _box(6, 6, 1, 4, 1, 4)  # 9 pixels, 4 shared -> union 14
    assert iou(a, b) == pytest.approx(4 / 14)
    assert iou(a, a) == 1.0
    assert iou(a, ~a) == 0.0
    assert iou(a, b) == iou(b, a)


def test_iou_empty_cases():
    empty = np.zeros((3, 3), bool)
    assert iou(empty, empty) == 1.0  # empty union counts as perfect agreement
    assert iou(_box(3, 3, 0, 1, 0, 1), empty) == 0.0
    assert iou(empty, _box(3, 3, 0, 1, 0, 1)) == 0.0


def test_mean_iou_is_over_images_not_pixels():
    gts = np.stack([_box(4, 4, 0, 4, 0, 4), _box(4, 4, 0, 1, 0, 1)])   # 16 px and 1 px
    preds = np.stack([_box(4, 4, 0, 4, 0, 2), _box(4, 4, 0, 1, 0, 1)])  # IoU 0.5 and 1.0
    assert iou_per_image(preds, gts).tolist() == [0.5, 1.0]
    assert mean_iou(preds, gts) == 0.75  # a pixel-pooled IoU would be 9/17


def test_iou_matches_sklearn():
    from sklearn.metrics import jaccard_score

    rng = np.random.default_rng(0)
    preds = rng.random((20, 12, 9)) > 0.5
    gts = rng.random((20, 12, 9)) > 0.6
    ref = [jaccard_score(g.ravel(), p.ravel()) for p, g in zip(preds, gts)]
    np.testing.assert_allclose(iou_per_image(preds, gts), ref)


def test_iou_bad_input():
    with pytest.raises(ValueError, match="same"):
        iou(np.zeros((2, 3), bool), np.zeros((3, 2), bool))
    with pytest.raises(ValueError, match=r"mask \(H, W\)"):
        iou(np.zeros((1, 2, 3), bool), np.zeros((1, 2, 3), bool))
    with pytest.raises(ValueError, match="boolean"):
        iou(np.full((2, 2), 0.5), np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="empty batch"):
        mean_iou(np.zeros((0, 2, 2), bool), np.zeros((0, 2, 2), bool))


def test_points_are_x_y():
    m = np.zeros((4, 8), bool)
    m[1, 6] = True  # row 1, column 6
    assert point_hits(np.array([[6, 1]]), m).tolist() == [True]
    with pytest.raises(ValueError, match=r"outside the image .* not \(row, col\)"):
        point_hits(np.array([[1, 6]]), m)  # (row, col) by mistake: y = 6 is outside a 4-row image
    assert point_hits(np.array([[6.4, 0.6]]), m).tolist() == [True]  # rounds to the pixel


def test_centre_and_distance_by_hand():
    m = _box(5, 5, 1, 3, 2, 4)  # rows 1-2, cols 2-3 -> centre (x, y) = (2.5, 1.5)
    assert centre_of_mass(m).tolist() == [2.5, 1.5]
    np.testing.assert_allclose(point_distances(np.array([[2.5, 1.5], [5.5 - 1, 1.5]]), m), [0.0, 2.0])
    with pytest.raises(ValueError, match="empty mask"):
        centre_of_mass(np.zeros((3, 3), bool))


def test_point_metrics_pooled_over_points():
    gts = np.stack([_box(6, 6, 0, 3, 0, 3), _box(6, 6, 3, 6, 3, 6)])
    coords = np.array([[[1, 1], [5, 5], [0, 5]],      # fg hit, bg miss, padding
                       [[4, 4], [5, 5], [1, 1]]], float)  # fg hit, fg hit, bg miss
    labels = np.array([[1, 0, -1], [1, 1, 0]])
    m = point_metrics(coords, labels, gts)
    assert (m.n_fg, m.n_bg) == (3, 2)
    assert m.fg_hit_rate == 1.0 and m.bg_hit_rate == 0.0
    # distances: centres (1, 1) and (4, 4)
    assert m.fg_distance == pytest.approx((0 + 0 + np.sqrt(2)) / 3)
    assert m.bg_distance == pytest.approx((np.hypot(4, 4) + np.hypot(3, 3)) / 2)
    only_fg = point_metrics(coords, np.where(labels == 0, -1, labels), gts)
    assert only_fg.bg_hit_rate is None and only_fg.bg_distance is None and only_fg.n_bg == 0


@pytest.mark.parametrize(
    "coords,labels,gts,message",
    [
        (np.zeros((1, 2, 3)), np.ones((1, 2)), np.ones((1, 4, 4), bool), r"\(B, N, 2\)"),
        (np.zeros((1, 2, 2)), np.ones((1, 3)), np.ones((1, 4, 4), bool), r"\(B, N\)"),
        (np.zeros((1, 2, 2)), np.array([[1, 2]]), np.ones((1, 4, 4), bool), "1 \\(fg\\), 0 \\(bg\\) or -1"),
        (np.zeros((2, 1, 2)), np.ones((2, 1)), np.ones((1, 4, 4), bool), "2 point sets for 1 masks"),
        (np.zeros((1, 1, 2)), np.ones((1, 1)), np.zeros((1, 4, 4), bool), r"gt_masks \[0\] have no True pixel"),
        (np.full((1, 1, 2), 9.0), np.ones((1, 1)), np.ones((1, 4, 4), bool), "outside the image"),
    ],
)
def test_point_metrics_bad_input(coords, labels, gts, message):
    with pytest.raises(ValueError, match=message):
        point_metrics(coords, labels, gts)
