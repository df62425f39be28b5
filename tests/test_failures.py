"""camseg.evaluation.failures: one cause per failed image, on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest

from camseg.evaluation.failures import FAILURE_KINDS, classify_failures
from camseg.evaluation.metrics import iou_per_image

H, W = 10, 12


def _square(r0: int, c0: int, size: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[r0:r0 + size, c0:c0 + size] = True
    return m


def _case():
    """Seven images, each built to show one cause (or none)."""
    truth = _square(2, 2, 5)                       # 25 px, the top-left of the image
    small = _square(2, 2, 2)                       # 4 px
    elsewhere = _square(6, 8, 3)                   # off the shape
    on_cam = np.where(truth, 1.0, 0.1)             # CAM peaks on the shape
    off_cam = np.where(elsewhere, 1.0, 0.1)        # CAM peaks off it
    on_pt, off_pt = [4.0, 4.0], [9.0, 7.0]         # (x, y): inside / outside the truth
    rows = [  # (truth, prediction, cam, fg point, true label, predicted label)
        (truth, truth, on_cam, on_pt, 0, 0),                       # success
        (truth, elsewhere, on_cam, on_pt, 1, 2),                   # wrong class
        (truth, elsewhere, off_cam, off_pt, 1, 1),                 # CAM off the object
        (truth, elsewhere, on_cam, off_pt, 1, 1),                  # right CAM, wrong region
        (small, np.ones((H, W), bool), np.where(small, 1.0, 0.1), [2.0, 2.0], 3, 3),  # small shape
        (truth, np.ones((H, W), bool), on_cam, on_pt, 4, 4),       # leak
        (truth, _square(4, 4, 2), on_cam, on_pt, 4, 4),            # misses part
    ]
    truths = np.stack([r[0] for r in rows])
    preds = np.stack([r[1] for r in rows])
    cams = np.stack([r[2] for r in rows])
    coords = np.array([[r[3], [0.0, 9.0]] for r in rows])        # fg point, then a bg point
    labels = np.tile([1, 0], (len(rows), 1))
    true = np.array([r[4] for r in rows])
    pred = np.array([r[5] for r in rows])
    return iou_per_image(preds, truths), true, pred, cams, truths, preds, coords, labels


def test_each_cause_on_a_hand_built_image():
    f = classify_failures(*_case(), small_area=10)
    assert f.kinds.tolist() == ["", *FAILURE_KINDS]
    assert f.n_images == 7 and f.n_failures == 6
    assert f.counts == dict.fromkeys(FAILURE_KINDS, 1)
    assert f.examples("segmentation leak").tolist() == [5]


def test_order_wrong_class_wins_and_threshold_decides_failure():
    ious, true, pred, cams, truths, preds, coords, labels = _case()
    pred = true.copy()
    pred[5] = (true[5] + 1) % 5                      # the leak image is now also misclassified
    f = classify_failures(ious, true, pred, cams, truths, preds, coords, labels, small_area=10)
    assert f.kinds[5] == "wrong class"
    assert f.kinds[1] == "segmentation misses part"  # right class now: the point on the shape, the mask elsewhere
    none = classify_failures(ious, true, pred, cams, truths, preds, coords, labels, iou_threshold=1e-9)
    assert none.n_failures == (ious < 1e-9).sum()
    assert sum(f.counts.values()) == f.n_failures


def test_padding_and_missing_foreground_point_count_as_off_the_shape():
    ious, true, pred, cams, truths, preds, coords, labels = _case()
    labels = labels.copy()
    labels[6] = [-1, 0]                              # no foreground point at all
    f = classify_failures(ious, true, pred, cams, truths, preds, coords, labels, small_area=10)
    assert f.kinds[6] == "right CAM, wrong region"


@pytest.mark.parametrize("change, message", [
    ({"ious": np.zeros((2, 2))}, "1-D"),
    ({"labels": np.zeros(3, int)}, "labels"),
    ({"cams": np.zeros((7, H, W + 1))}, "cams"),
    ({"point_coords": np.zeros((7, 2, 3))}, "x, y"),
    ({"iou_threshold": 0.0}, "iou_threshold"),
    ({"small_area": -1}, "small_area"),
])
def test_bad_input(change, message):
    names = ("ious", "labels", "predicted", "cams", "truths", "predictions", "point_coords", "point_labels")
    kwargs = dict(zip(names, _case()))
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        classify_failures(**kwargs)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown failure kind"):
        classify_failures(*_case()).examples("bad luck")
