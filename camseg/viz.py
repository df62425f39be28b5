"""Plot helpers for the book and the report (matplotlib, safe under the Agg backend).

Every function returns a :class:`matplotlib.figure.Figure` made with
``matplotlib.figure.Figure`` directly (no ``pyplot`` state), so figures are
never shown twice in a notebook and nothing depends on a display. In a
notebook, leave the figure as the cell's last expression; in a script, call
``fig.savefig(...)`` or :func:`figure_png`.

Conventions (as everywhere in camseg): images are uint8 (H, W, 3) RGB or a
batch (B, H, W, 3); masks bool (H, W); CAMs float (H, W) in [0, 1]; points
(N, 2) in **(x, y)** pixel order (x = column, y = row) with labels (N,):
1 = foreground (drawn green), 0 = background (drawn red), -1 = padding
(not drawn). Figures that show a segmenter's output name its backend.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from camseg.data import CLASSES

__all__ = [
    "cam_overlay", "confusion_matrix", "figure_png", "gradcam_panels", "mask_gallery", "prompts_on_images",
    "sample_grid", "training_curve",
]

FG_COLOR = "#00c000"
BG_COLOR = "#ff2020"


def _image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"an image must be (H, W, 3) RGB, got shape {image.shape}")
    return image


def _batch(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    return [_image(im) for im in images]


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _contour(ax, mask: np.ndarray, color: str = "yellow", lw: float = 1.2) -> None:
    mask = np.asarray(mask, bool)
    if mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=[color], linewidths=lw)


def _draw_points(ax, coords: np.ndarray, labels: np.ndarray, size: float = 60) -> None:
    coords = np.asarray(coords, dtype=float).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    if len(coords) != len(labels):
        raise ValueError(f"{len(coords)} points but {len(labels)} labels")
    for lab, color, marker in ((1, FG_COLOR, "*"), (0, BG_COLOR, "X")):
        sel = labels == lab
        if sel.any():  # (x, y): x is the column, y the row
            ax.scatter(coords[sel, 0], coords[sel, 1], s=size, c=color, marker=marker, edgecolors="white",
                       linewidths=0.8, zorder=3)


def _suffix(backend: str | None) -> str:
    return f" (segmenter: {backend})" if backend else ""


def cam_overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a CAM (H, W) in [0, 1] over an image (H, W, 3) uint8; returns uint8 (H, W, 3).

    >>> cam_overlay(np.zeros((2, 3, 3), np.uint8), np.ones((2, 3))).shape
    (2, 3, 3)
    """
    image = _image(image)
    cam = np.asarray(cam, dtype=float)
    if cam.shape != image.shape[:2]:
        raise ValueError(f"cam {cam.shape} and image {image.shape[:2]} must have the same (H, W)")
    heat = colormaps[cmap](np.clip(cam, 0, 1))[..., :3] * 255
    return np.clip((1 - alpha) * image + alpha * heat, 0, 255).astype(np.uint8)


def sample_grid(images: np.ndarray, labels: Sequence[int], masks: np.ndarray, per_class: int = 4,
                classes: Sequence[str] = CLASSES) -> Figure:
    """The first ``per_class`` samples of each class, one row per class, with the mask contour in yellow.

    Args:
        images: uint8 (N, H, W, 3); labels: ints (N,); masks: bool (N, H, W).

    Returns:
        A figure with ``len(classes) * per_class`` axes.
    """
    images, labels, masks = _batch(images), np.asarray(labels), np.asarray(masks, bool)
    if not len(images) == len(labels) == len(masks):
        raise ValueError(f"{len(images)} images, {len(labels)} labels and {len(masks)} masks must agree")
    fig = Figure(figsize=(1.6 * per_class, 1.3 * len(classes)), layout="constrained")
    axes = fig.subplots(len(classes), per_class, squeeze=False)
    for c, name in enumerate(classes):
        idx = np.flatnonzero(labels == c)[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            _off(ax)
            if j < len(idx):
                ax.imshow(images[idx[j]])
                _contour(ax, masks[idx[j]])
            if j == 0:
                ax.set_ylabel(name)
    return fig


def training_curve(meta: Mapping) -> Figure:
    """Training loss and train/val accuracy per epoch from a checkpoint's ``meta["history"]``.

    Marks the selected epoch (``meta["best_epoch"]``) and states the test
    accuracy when the meta has one. Returns a figure with 2 axes.
    """
    history = list(meta.get("history") or [])
    if not history:
        raise ValueError("meta has no 'history' (per-epoch rows); was it written by camseg.classifier?")
    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(epochs, [r["train_loss"] for r in history], "o-", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    ax1.set_title("training loss")
    ax2.plot(epochs, [r["train_accuracy"] for r in history], "o-", label="train")
    ax2.plot(epochs, [r["val_accuracy"] for r in history], "s-", label="val")
    if meta.get("best_epoch"):
        ax2.axvline(meta["best_epoch"], color="grey", ls=":", label="kept epoch")
    test = meta.get("test_accuracy")
    ax2.set_title("accuracy" + (f" (test {test:.1%})" if test is not None else ""))
    ax2.set_xlabel("epoch")
    ax2.set_ylim(min(0.0, *(r["train_accuracy"] for r in history)), 1.02)
    ax2.legend(loc="lower right")
    for ax in (ax1, ax2):
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
    fig.suptitle(str(meta.get("arch", "")))
    return fig


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], classes: Sequence[str] = CLASSES) -> Figure:
    """Counts of (true class, predicted class), numbers written in the cells. One axis."""
    labels, predictions = np.asarray(labels, int), np.asarray(predictions, int)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must be equal 1-D shapes")
    k = len(classes)
    if len(labels) and (min(labels.min(), predictions.min()) < 0 or max(labels.max(), predictions.max()) >= k):
        raise ValueError(f"class indices must lie in 0..{k - 1}")
    counts = np.zeros((k, k), int)
    np.add.at(counts, (labels, predictions), 1)
    fig = Figure(figsize=(4.2, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center",
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {np.mean(labels == predictions):.1%} ({len(labels)} images)" if len(labels) else "")
    return fig


def gradcam_panels(images: np.ndarray, cams: np.ndarray, masks: np.ndarray,
                   titles: Sequence[str] | None = None) -> Figure:
    """One row per image: input | heatmap | overlay | ground truth. ``4 * B`` axes.

    Args:
        images: uint8 (B, H, W, 3); cams: float (B, H, W) in [0, 1]; masks: bool (B, H, W).
        titles: a label per row (e.g. "test 3: star, explained: star").
    """
    images, cams, masks = _batch(images), np.asarray(cams, float), np.asarray(masks, bool)
    if not len(images) == len(cams) == len(masks):
        raise ValueError(f"{len(images)} images, {len(cams)} CAMs and {len(masks)} masks must agree")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    fig = Figure(figsize=(8, 1.75 * len(images) + 0.3), layout="constrained")
    axes = fig.subplots(len(images), 4, squeeze=False)
    for i, (image, cam, mask) in enumerate(zip(images, cams, masks, strict=True)):
        row = axes[i]
        row[0].imshow(image)
        row[1].imshow(cam, cmap="jet", vmin=0, vmax=1)
        row[2].imshow(cam_overlay(image, cam))
        _contour(row[2], mask, color="white", lw=0.8)
        row[3].imshow(mask, cmap="gray", vmin=0, vmax=1)
        for ax in row:
            _off(ax)
        if titles is not None:
            row[0].set_ylabel(titles[i], fontsize=8)
    for ax, name in zip(axes[0], ("input", "Grad-CAM heatmap", "overlay (+ mask outline)", "ground truth"),
                        strict=True):
        ax.set_title(name, fontsize=9)
    return fig


def prompts_on_images(images: np.ndarray, point_coords: np.ndarray, point_labels: np.ndarray,
                      masks: np.ndarray | None = None, cams: np.ndarray | None = None,
                      titles: Sequence[str] | None = None) -> Figure:
    """Images with their prompt points: foreground green stars, background red crosses. ``B`` axes.

    Args:
        images: uint8 (B, H, W, 3).
        point_coords: (B, N, 2) in **(x, y)** order; point_labels: (B, N), -1 = padding.
        masks: optional bool (B, H, W) ground truth, drawn as a yellow outline.
        cams: optional CAMs (B, H, W), blended under the points.
        titles: one per image.
    """
    images = _batch(images)
    coords, labels = np.asarray(point_coords, float), np.asarray(point_labels)
    if coords.ndim != 3 or coords.shape[2] != 2 or labels.shape != coords.shape[:2] or len(coords) != len(images):
        raise ValueError(f"point_coords must be (B, N, 2) (x, y) and point_labels (B, N) for B = {len(images)} "
                         f"images, got {coords.shape} and {labels.shape}")
    n = len(images)
    fig = Figure(figsize=(2.0 * n, 1.9), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for i, ax in enumerate(axes):
        shown = cam_overlay(images[i], cams[i], alpha=0.4) if cams is not None else images[i]
        ax.imshow(shown)
        if masks is not None:
            _contour(ax, masks[i])
        _draw_points(ax, coords[i], labels[i])
        ax.set_xlim(-0.5, shown.shape[1] - 0.5)
        ax.set_ylim(shown.shape[0] - 0.5, -0.5)
        _off(ax)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    return fig


def mask_gallery(images: np.ndarray, predictions: np.ndarray, truths: np.ndarray,
                 point_coords: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                 titles: Sequence[str] | None = None, backend: str | None = None) -> Figure:
    """Predicted masks against the ground truth: two rows, ``2 * B`` axes.

    Top row: the input with the prompt points (if given) and the ground-truth
    outline (yellow). Bottom row: agreement map, white = both, red = predicted
    only (false positive), blue = missed (false negative).
    """
    images = _batch(images)
    preds, truths = np.asarray(predictions, bool), np.asarray(truths, bool)
    if not len(images) == len(preds) == len(truths):
        raise ValueError(f"{len(images)} images, {len(preds)} predictions and {len(truths)} masks must agree")
    n = len(images)
    fig = Figure(figsize=(1.9 * n, 3.4), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        top, bottom = axes[0, i], axes[1, i]
        top.imshow(images[i])
        _contour(top, truths[i])
        if point_coords is not None and point_labels is not None:
            _draw_points(top, point_coords[i], point_labels[i], size=45)
            top.set_xlim(-0.5, images[i].shape[1] - 0.5)
            top.set_ylim(images[i].shape[0] - 0.5, -0.5)
        agree = np.zeros(preds[i].shape + (3,), np.uint8)
        agree[preds[i] & truths[i]] = (255, 255, 255)
        agree[preds[i] & ~truths[i]] = (230, 40, 40)
        agree[~preds[i] & truths[i]] = (40, 90, 230)
        bottom.imshow(agree)
        for ax in (top, bottom):
            _off(ax)
        if titles is not None:
            top.set_title(titles[i], fontsize=8)
    axes[1, 0].set_ylabel("white: both\nred: extra\nblue: missed", fontsize=7)
    if backend:
        fig.suptitle(f"predicted vs ground truth{_suffix(backend)}", fontsize=9)
    return fig


def figure_png(fig: Figure, dpi: int = 150) -> bytes:
    """The figure as PNG bytes (for embedding in HTML or a PDF)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def by_condition(frames: Mapping[str, object], backend: str | None = None) -> Figure:
    """IoU and foreground hit per condition, one panel per table of
    :func:`camseg.robustness.condition_frames` (index: the condition's bins;
    columns ``IoU`` and ``fg hit``)."""
    if not frames:
        raise ValueError("no condition tables to plot")
    fig = Figure(figsize=(3.2 * len(frames), 2.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(frames)))
    for ax, (title, frame) in zip(axes, frames.items(), strict=True):
        x = np.arange(len(frame.index))
        ax.bar(x - 0.2, frame["IoU"].astype(float).fillna(0).to_numpy(), 0.4, label="IoU")
        ax.bar(x + 0.2, frame["fg hit"].astype(float).fillna(0).to_numpy(), 0.4, label="fg hit")
        ax.set_xticks(x, [str(i) for i in frame.index], rotation=30, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle("foreground + background pipeline by condition" + _suffix(backend))
    return fig
