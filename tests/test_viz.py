"""camseg.publishing.viz: every helper returns a Figure with the expected axes, on tiny arrays."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from camseg.publishing import viz


@pytest.fixture()
def tiny():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 12, 16, 3), dtype=np.uint8)
    masks = np.zeros((5, 12, 16), bool)
    masks[:, 3:8, 4:10] = True
    cams = rng.random((5, 12, 16)).astype(np.float32)
    return images, masks, cams


def _n_axes(fig: Figure) -> int:
    assert isinstance(fig, Figure)
    fig.canvas.draw()  # renders under Agg: catches errors that only show when drawing
    return len(fig.axes)


def test_sample_grid(tiny):
    images, masks, _ = tiny
    fig = viz.sample_grid(images, [0, 1, 2, 3, 4], masks, per_class=2)
    assert _n_axes(fig) == 5 * 2


def test_sample_grid_rejects_mismatch(tiny):
    images, masks, _ = tiny
    with pytest.raises(ValueError, match="must agree"):
        viz.sample_grid(images, [0, 1], masks)


def test_training_curve():
    meta = {"arch": "tiny", "best_epoch": 2, "test_accuracy": 0.9,
            "history": [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.5 + e / 10,
                         "val_accuracy": 0.4 + e / 10}
                        for e in (1, 2, 3)]}
    assert _n_axes(viz.training_curve(meta)) == 2
    with pytest.raises(ValueError, match="history"):
        viz.training_curve({"arch": "x"})


def test_confusion_matrix_counts():
    fig = viz.confusion_matrix([0, 1, 2, 2], [0, 1, 2, 1])
    assert _n_axes(fig) == 2
    assert "Blues" in fig.axes[1].get_ylabel()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("1") == 4 and "75.0%" in fig.axes[0].get_title()
    with pytest.raises(ValueError):
        viz.confusion_matrix([0, 7], [0, 1])


def test_gradcam_panels(tiny):
    images, masks, cams = tiny
    fig = viz.gradcam_panels(images[:3], cams[:3], masks[:3], titles=["a", "b", "c"])
    assert _n_axes(fig) == 3 * 4 + 1  # and one colour bar
    assert [ax.get_title() for ax in fig.axes[:4]][:2] == ["input", "Grad-CAM heatmap"]
    bar = fig.axes[-1]
    assert "jet" in bar.get_ylabel() and "rescaled" in bar.get_ylabel()
    plus = viz.gradcam_panels(images[:1], cams[:1], masks[:1], method="Grad-CAM++")
    assert plus.axes[1].get_title() == "Grad-CAM++ heatmap"  # never headed "Grad-CAM" for Grad-CAM++


def test_prompts_on_images_xy_order(tiny):
    images, masks, cams = tiny
    coords = np.array([[[2.0, 9.0], [14.0, 1.0]]] * 2)  # (x, y)
    labels = np.array([[1, 0], [1, -1]])
    fig = viz.prompts_on_images(images[:2], coords, labels, masks=masks[:2], cams=cams[:2], titles=["x", "y"])
    assert _n_axes(fig) == 3  # two images and the CAM colour bar
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["foreground point", "background point", "true outline"]
    assert "jet" in fig.axes[-1].get_ylabel()
    fg = fig.axes[0].collections[-2].get_offsets()  # foreground drawn first, then background
    assert np.allclose(np.asarray(fg), [[2.0, 9.0]])  # x is the column, y the row
    with pytest.raises(ValueError, match="x, y"):
        viz.prompts_on_images(images[:2], coords[:, :, :1], labels)


def test_mask_gallery(tiny):
    images, masks, _ = tiny
    preds = np.roll(masks[:3], 2, axis=2)
    fig = viz.mask_gallery(images[:3], preds, masks[:3], np.zeros((3, 1, 2)), np.ones((3, 1), int),
                           titles=["1", "2", "3"], backend="regiongrow")
    assert _n_axes(fig) == 2 * 3
    assert "regiongrow" in fig.get_suptitle()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"foreground point", "extra (mask only)", "missed (truth only)", "mask and truth"} <= set(legend)
    five = viz.mask_gallery(images, np.roll(masks, 2, axis=2), masks, ncols=3)
    assert _n_axes(five) == 2 * 6 and sum(ax.get_visible() for ax in five.axes) == 2 * 5  # one cell hidden


def test_pipeline_summary_and_histogram_and_failures(tiny):
    images, masks, cams = tiny
    fig = viz.pipeline_summary(images[0], cams[0], np.array([[3.0, 4.0], [10.0, 1.0]]), np.array([1, 0]),
                               masks[0], masks[0], explained="star", iou=1.0, backend="regiongrow")
    assert _n_axes(fig) == 5
    assert [ax.get_title(loc="left") for ax in fig.axes[:4]] == [
        "1  input", "2  Grad-CAM of 'star'", "3  point prompts", "4  mask, IoU 1.00"]
    hist = viz.iou_histogram({"clean": np.array([0.1, 0.9, 1.0]), "degraded": np.array([0.2, 0.3, 1.0])})
    assert _n_axes(hist) == 1
    assert [t.get_text() for t in hist.axes[0].get_legend().get_texts()] == [
        "clean (3 images, 1 below 0.5)", "degraded (3 images, 2 below 0.5)"]
    with pytest.raises(ValueError, match="1-D"):
        viz.iou_histogram(np.zeros((2, 2)))
    bars = viz.failure_counts({"wrong class": 2, "small shape": 0}, 500)
    assert _n_axes(bars) == 1 and "of 500" in bars.axes[0].get_xlabel()


def test_cam_overlay_and_png(tiny):
    images, masks, cams = tiny
    out = viz.cam_overlay(images[0], cams[0])
    assert out.shape == images[0].shape and out.dtype == np.uint8
    with pytest.raises(ValueError):
        viz.cam_overlay(images[0], cams[0][:4])
    png = viz.figure_png(viz.gradcam_panels(images[:1], cams[:1], masks[:1]))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_slic_masks_follow_image_edges_and_check_input():
    from camseg.models.analysis import slic_masks, threshold_masks

    img = np.zeros((1, 24, 32, 3), np.uint8)
    img[0, 6:18, 8:20] = (200, 30, 30)  # a red block
    cam = np.zeros((1, 24, 32))
    cam[0, 4:16, 6:18] = 1.0  # a coarse CAM, shifted up-left
    truth = np.zeros((24, 32), bool)
    truth[6:18, 8:20] = True
    slic = slic_masks(img, cam, 0.5, n_segments=12)[0]
    coarse = threshold_masks(cam, 0.5)[0]
    assert (slic & truth).sum() / (slic | truth).sum() > (coarse & truth).sum() / (coarse | truth).sum()
    with pytest.raises(ValueError, match="uint8"):
        slic_masks(img.astype(float), cam)
    with pytest.raises(ValueError, match="cams must be"):
        slic_masks(img, cam[:, :10])


def test_by_condition_reads_at_column_width():
    """Horizontal bars: the bins' labels read level, at 10 pt, in an 8-inch (column-wide) figure; an empty bin
    is absent from the table, never drawn as NaN."""
    import pandas as pd

    frames = {"shape area (px)": pd.DataFrame({"images": [3, 5], "IoU": [0.5, 0.9], "fg hit": [0.6, 1.0]},
                                              index=["0–60", "60–120"]),
              "JPEG quality": pd.DataFrame({"images": [], "IoU": [], "fg hit": []})}
    fig = viz.by_condition(frames, "regiongrow")
    assert fig.get_size_inches()[0] == 8 and len(fig.axes) == 1  # the empty frame has no panel
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0–60", "60–120"]
    assert all(t.get_fontsize() >= 10 and t.get_rotation() == 0 for t in ax.get_yticklabels())
