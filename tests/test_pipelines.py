"""Pipelines end to end on a hand-made image with a hand-built classifier, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import red_and_blue_image

from camseg.data.dataset import normalize
from camseg.evaluation.metrics import iou
from camseg.pipelines.pipeline import (
    BasicSamPipeline,
    ForegroundBackgroundPipeline,
    ForegroundPointsPipeline,
    resolve_targets,
)
from camseg.segmenters import get_segmenter


@pytest.fixture()
def batch():
    image, red = red_and_blue_image()
    return normalize(np.stack([image, image[:, ::-1].copy()])), np.stack([red, red[:, ::-1]])


@pytest.mark.parametrize("cls", [ForegroundPointsPipeline, ForegroundBackgroundPipeline])
def test_cam_pipelines_segment_the_red_square(cls, redness_model, batch):
    images, gts = batch
    pipe = cls(redness_model, get_segmenter("regiongrow"), [redness_model.detect])
    masks = pipe(images)
    assert masks.shape == (2, 48, 64) and masks.dtype == torch.bool
    assert all(iou(m.numpy(), g) > 0.95 for m, g in zip(masks, gts))
    out = pipe.run(images)  # reports its points
    assert out.backend == "regiongrow" and out.targets.tolist() == [0, 0]
    n_bg = int((out.prompts.point_labels == 0).sum())
    assert n_bg == (4 if cls is ForegroundBackgroundPipeline else 0)


def test_basic_pipeline_prompts_the_centre(redness_model, batch):
    images, _ = batch
    out = BasicSamPipeline(redness_model, get_segmenter("regiongrow"), [redness_model.detect]).run(images)
    assert out.prompts.point_coords.tolist() == [[[31.0, 23.0]]] * 2


def test_segment_takes_x_y(redness_model, batch):
    images, gts = batch
    pipe = BasicSamPipeline(redness_model, get_segmenter("regiongrow"), [redness_model.detect])
    xy = np.array([[[44, 17]], [[19, 17]]], np.float32)  # inside the red squares
    masks = pipe.segment(images, xy, np.ones((2, 1), np.int64))
    assert iou(masks[0].numpy(), gts[0]) > 0.95 and iou(masks[1].numpy(), gts[1]) > 0.95
    swapped = pipe.segment(images, xy[..., ::-1].copy(), np.ones((2, 1), np.int64))  # (row, col) by mistake
    assert iou(swapped[0].numpy(), gts[0]) < 0.5


def test_class_name_prompt(redness_model, batch):
    images, _ = batch
    pipe = ForegroundPointsPipeline(redness_model, get_segmenter("regiongrow"), [redness_model.detect])
    assert pipe.run(images, targets="square").targets.tolist() == [1, 1]
    assert resolve_targets(["star", 0], 2).tolist() == [3, 0]
    with pytest.raises(ValueError, match="unknown class name 'hexagon'"):
        resolve_targets("hexagon", 2)
    with pytest.raises(ValueError, match="expected 2, got 1"):
        resolve_targets(["star"], 2)
    with pytest.raises(ValueError, match="out of range"):
        resolve_targets(7, 1)


@pytest.mark.parametrize(
    "coords,labels,message",
    [
        (np.zeros((2, 1, 3)), np.ones((2, 1)), r"\(B, N, 2\)"),
        (np.zeros((2, 1, 2)), np.ones((2, 2)), r"\(B, N\)"),
        (np.zeros((1, 1, 2)), np.ones((1, 1)), "1 point sets for 2 images"),
        (np.zeros((2, 1, 2)), -np.ones((2, 1)), "no prompt point"),
        (np.full((2, 1, 2), 80.0), np.ones((2, 1)), "outside"),
        (np.array([[[5, 5]], [[5, 5]]]), np.array([[0], [0]]), "foreground"),
        (np.array([[[5, 5]], [[5, 5]]]), np.array([[2], [1]]), "0 or 1|0/1|labels"),
    ],
)
def test_segment_bad_points(redness_model, batch, coords, labels, message):
    images, _ = batch
    pipe = BasicSamPipeline(redness_model, get_segmenter("regiongrow"), [redness_model.detect])
    with pytest.raises(ValueError, match=message):
        pipe.segment(images, coords, labels)


def test_bad_images_and_segmenter(redness_model, batch):
    pipe = BasicSamPipeline(redness_model, get_segmenter("regiongrow"), [redness_model.detect])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        pipe(torch.zeros(3, 48, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        pipe.segment(np.zeros((1, 48, 64, 3)), np.zeros((1, 1, 2)), np.ones((1, 1)))
    with pytest.raises(TypeError, match="set_image"):
        BasicSamPipeline(redness_model, object(), [redness_model.detect])
    with pytest.raises(ValueError, match="target_layers is required"):
        BasicSamPipeline(redness_model, get_segmenter("regiongrow"))
