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

from camseg.data.shapes import CLASSES

__all__ = [
    "cam_overlay", "confusion_matrix", "failure_counts", "figure_png", "gradcam_panels", "iou_histogram",
    "mask_gallery", "pipeline_summary", "prompts_on_images", "sample_grid", "training_curve",
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
        raise ValueError("meta has no 'history' (per-epoch rows); was it written by camseg.models.classifier?")
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
    im = ax.imshow(counts, cmap="Blues")
    bar = fig.colorbar(im, ax=ax, shrink=0.8)
    bar.set_label("images (Blues colour map)", fontsize=8)
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


CAM_CMAP = "jet"
"""Colour map of every heatmap (named in each figure's colour bar)."""


def _cam_colorbar(fig: Figure, axes, label: str, cmap: str = CAM_CMAP, orientation: str = "vertical"):
    """One colour bar for the CAM panels, 0 to 1, naming the colour map."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap=cmap), ax=axes, orientation=orientation,
                       fraction=0.05, shrink=0.9, pad=0.02, aspect=25)
    bar.set_label(label, fontsize=8)
    bar.set_ticks([0, 0.5, 1])
    bar.ax.tick_params(labelsize=8)
    return bar


def _legend(fig: Figure, handles: list, ncol: int | None = None) -> None:
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol or len(handles), fontsize=8, frameon=False,
               handletextpad=0.4, columnspacing=1.2)


def _point_handles(size: float = 9) -> list:
    from matplotlib.lines import Line2D

    return [Line2D([], [], ls="", marker="*", ms=size + 3, mfc=FG_COLOR, mec="white", label="foreground point"),
            Line2D([], [], ls="", marker="X", ms=size, mfc=BG_COLOR, mec="white", label="background point"),
            Line2D([], [], color="yellow", lw=2, label="true outline")]


def gradcam_panels(images: np.ndarray, cams: np.ndarray, masks: np.ndarray,
                   titles: Sequence[str] | None = None, method: str = "Grad-CAM",
                   colorbar_label: str | None = None) -> Figure:
    """One row per image: input | heatmap | overlay | ground truth, and a colour bar. ``4 * B + 1`` axes.

    Args:
        images: uint8 (B, H, W, 3); cams: float (B, H, W) in [0, 1]; masks: bool (B, H, W).
        titles: a label per row (e.g. "test 3: star, explained: star").
        method: the CAM's name, in the column titles ("Grad-CAM", "Grad-CAM++").
        colorbar_label: the colour bar's label (default: the method, the colour
            map, and that each map is rescaled to its own 0-1).
    """
    images, cams, masks = _batch(images), np.asarray(cams, float), np.asarray(masks, bool)
    if not len(images) == len(cams) == len(masks):
        raise ValueError(f"{len(images)} images, {len(cams)} CAMs and {len(masks)} masks must agree")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    fig = Figure(figsize=(8, 1.5 * len(images) + 0.5), layout="constrained")
    axes = fig.subplots(len(images), 4, squeeze=False)
    for i, (image, cam, mask) in enumerate(zip(images, cams, masks, strict=True)):
        row = axes[i]
        row[0].imshow(image)
        row[1].imshow(cam, cmap=CAM_CMAP, vmin=0, vmax=1)
        row[2].imshow(cam_overlay(image, cam))
        _contour(row[2], mask, color="white", lw=1.0)
        row[3].imshow(mask, cmap="gray", vmin=0, vmax=1)
        for ax in row:
            _off(ax)
        if titles is not None:
            row[0].set_ylabel(titles[i], fontsize=9)
    for ax, name in zip(axes[0], ("input", f"{method} heatmap", "overlay + true outline", "ground truth"),
                        strict=True):
        ax.set_title(name, fontsize=9.5)
    _cam_colorbar(fig, axes, colorbar_label or f"{method} ({CAM_CMAP} colour map),\neach map rescaled to 0–1")
    return fig


def prompts_on_images(images: np.ndarray, point_coords: np.ndarray, point_labels: np.ndarray,
                      masks: np.ndarray | None = None, cams: np.ndarray | None = None,
                      titles: Sequence[str] | None = None, ncols: int = 3) -> Figure:
    """Images with their prompt points: foreground green stars, background red crosses.

    ``B`` image axes in rows of ``ncols`` (unused cells hidden), a legend
    inside the figure and, with ``cams``, a colour bar.

    Args:
        images: uint8 (B, H, W, 3).
        point_coords: (B, N, 2) in **(x, y)** order; point_labels: (B, N), -1 = padding.
        masks: optional bool (B, H, W) ground truth, drawn as a yellow outline.
        cams: optional CAMs (B, H, W), blended under the points.
        titles: one per image.
        ncols: images per row.
    """
    images = _batch(images)
    coords, labels = np.asarray(point_coords, float), np.asarray(point_labels)
    if coords.ndim != 3 or coords.shape[2] != 2 or labels.shape != coords.shape[:2] or len(coords) != len(images):
        raise ValueError(f"point_coords must be (B, N, 2) (x, y) and point_labels (B, N) for B = {len(images)} "
                         f"images, got {coords.shape} and {labels.shape}")
    n = len(images)
    cols = max(1, min(ncols, n))
    rows = -(-n // cols)
    fig = Figure(figsize=(8, 2.25 * rows + 0.7), layout="constrained")
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = grid.ravel()
    for i, ax in enumerate(axes):
        _off(ax)
        if i >= n:
            ax.set_visible(False)
            continue
        shown = cam_overlay(images[i], cams[i], alpha=0.4) if cams is not None else images[i]
        ax.imshow(shown)
        if masks is not None:
            _contour(ax, masks[i], lw=1.6)
        _draw_points(ax, coords[i], labels[i], size=170)
        ax.set_xlim(-0.5, shown.shape[1] - 0.5)
        ax.set_ylim(shown.shape[0] - 0.5, -0.5)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    handles = _point_handles() if masks is not None else _point_handles()[:2]
    _legend(fig, handles)
    if cams is not None:
        _cam_colorbar(fig, grid, f"Grad-CAM under the points\n({CAM_CMAP} colour map, 0–1)")
    return fig


AGREE_COLORS = {"both": (255, 255, 255), "extra": (230, 40, 40), "missed": (40, 90, 230)}


def mask_gallery(images: np.ndarray, predictions: np.ndarray, truths: np.ndarray,
                 point_coords: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                 titles: Sequence[str] | None = None, backend: str | None = None, ncols: int = 3) -> Figure:
    """Predicted masks against the ground truth: for each image, two panels one above the other.

    Top: the input with the prompt points (if given) and the ground-truth
    outline (yellow). Bottom: agreement map, white = both, red = predicted
    only (extra), blue = missed. Images in rows of ``ncols``; a legend inside
    the figure names every colour and marker.
    """
    from matplotlib.patches import Patch

    images = _batch(images)
    preds, truths = np.asarray(predictions, bool), np.asarray(truths, bool)
    if not len(images) == len(preds) == len(truths):
        raise ValueError(f"{len(images)} images, {len(preds)} predictions and {len(truths)} masks must agree")
    n = len(images)
    cols = max(1, min(ncols, n))
    rows = -(-n // cols)
    fig = Figure(figsize=(8 if cols > 1 else 3.2, 3.5 * rows + 0.8), layout="constrained")
    axes = fig.subplots(2 * rows, cols, squeeze=False)
    for k in range(rows * cols):
        top, bottom = axes[2 * (k // cols), k % cols], axes[2 * (k // cols) + 1, k % cols]
        for ax in (top, bottom):
            _off(ax)
        if k >= n:
            top.set_visible(False)
            bottom.set_visible(False)
            continue
        top.imshow(images[k])
        _contour(top, truths[k], lw=1.6)
        if point_coords is not None and point_labels is not None:
            _draw_points(top, point_coords[k], point_labels[k], size=150)
            top.set_xlim(-0.5, images[k].shape[1] - 0.5)
            top.set_ylim(images[k].shape[0] - 0.5, -0.5)
        agree = np.zeros(preds[k].shape + (3,), np.uint8)
        agree[preds[k] & truths[k]] = AGREE_COLORS["both"]
        agree[preds[k] & ~truths[k]] = AGREE_COLORS["extra"]
        agree[~preds[k] & truths[k]] = AGREE_COLORS["missed"]
        bottom.imshow(agree)
        if titles is not None:
            top.set_title(titles[k], fontsize=9)
    handles = _point_handles() if point_coords is not None else _point_handles()[2:]
    handles += [Patch(fc=np.array(c) / 255, ec="grey", label=name) for name, c in
                (("mask and truth", AGREE_COLORS["both"]), ("extra (mask only)", AGREE_COLORS["extra"]),
                 ("missed (truth only)", AGREE_COLORS["missed"]))]
    _legend(fig, handles, ncol=3)
    if backend:
        fig.suptitle(f"top: prompts and true outline; bottom: predicted mask vs truth{_suffix(backend)}", fontsize=9)
    return fig


def pipeline_summary(image: np.ndarray, cam: np.ndarray, point_coords: np.ndarray, point_labels: np.ndarray,
                     prediction: np.ndarray, truth: np.ndarray, explained: str = "", iou: float | None = None,
                     backend: str | None = None) -> Figure:
    """The method in one row: input → Grad-CAM → point prompts → mask. 4 image axes and a colour bar.

    Args:
        image: uint8 (H, W, 3); cam: float (H, W) in [0, 1]; truth, prediction: bool (H, W).
        point_coords: (N, 2) (x, y); point_labels: (N,).
        explained: the class the CAM explains; iou: the mask's IoU; backend: the segmenter.
    """
    image = _image(image)
    fig = Figure(figsize=(8, 2.75), layout="constrained")
    axes = fig.subplots(1, 4)
    axes[0].imshow(image)
    axes[1].imshow(cam, cmap=CAM_CMAP, vmin=0, vmax=1)
    axes[2].imshow(cam_overlay(image, cam, alpha=0.4))
    _draw_points(axes[2], point_coords, point_labels, size=170)
    axes[2].set_xlim(-0.5, image.shape[1] - 0.5)
    axes[2].set_ylim(image.shape[0] - 0.5, -0.5)
    shown = image.copy()
    shown[prediction] = (0.45 * shown[prediction] + 0.55 * np.array([0, 200, 255])).astype(np.uint8)
    axes[3].imshow(shown)
    _contour(axes[3], truth, lw=1.6)
    names = ("1  input", f"2  Grad-CAM{f' of {explained!r}' if explained else ''}", "3  point prompts",
             "4  mask" + (f", IoU {iou:.2f}" if iou is not None else ""))
    for ax, name in zip(axes, names):
        _off(ax)
        ax.set_title(name, fontsize=9.5, loc="left")
    for ax in axes[:3]:
        ax.annotate("→", xy=(1.04, 0.5), xycoords="axes fraction", fontsize=18, ha="left", va="center",
                    annotation_clip=False)
    from matplotlib.patches import Patch

    _legend(fig, [*_point_handles()[:2], Patch(fc=np.array([0, 200, 255]) / 255, label="mask"),
                  _point_handles()[2]])
    _cam_colorbar(fig, axes, f"Grad-CAM ({CAM_CMAP}), 0–1")
    if backend:
        fig.suptitle(f"segmenter: {backend}", fontsize=8.5, x=0.99, ha="right")
    return fig


def iou_histogram(ious: Mapping[str, np.ndarray] | np.ndarray, threshold: float | None = 0.5,
                  backend: str | None = None, bins: int = 20) -> Figure:
    """Histogram of per-image IoU (one series per key of ``ious``), log-scaled counts. One axis.

    Args:
        ious: float (N,) per-image IoU, or ``{label: (N,)}`` for several pipelines or splits.
        threshold: draw a dashed line here and give the count below it (None: no line).
        backend: the segmenter, named in the title.
    """
    series = dict(ious) if isinstance(ious, Mapping) else {"IoU": np.asarray(ious)}
    edges = np.linspace(0, 1, bins + 1)
    fig = Figure(figsize=(8, 3.0), layout="constrained")
    ax = fig.subplots()
    for k, (name, values) in enumerate(series.items()):
        values = np.asarray(values, float)
        if values.ndim != 1:
            raise ValueError(f"per-image IoU must be 1-D, got {values.shape} for {name!r}")
        below = f", {int((values < threshold).sum())} below {threshold}" if threshold is not None else ""
        ax.hist(values, bins=edges, histtype="stepfilled" if k == 0 else "step", alpha=0.45 if k == 0 else 1,
                lw=1.8, label=f"{name} ({len(values)} images{below})")
    if threshold is not None:
        ax.axvline(threshold, color="grey", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU of the image (higher is better)")
    ax.set_ylabel("images (log scale)")
    ax.legend(loc="upper center", fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"per-image IoU{_suffix(backend)}", fontsize=9.5)
    return fig


def failure_counts(counts: Mapping[str, int], n_images: int, backend: str | None = None) -> Figure:
    """Horizontal bars: failed images per cause (``{cause: count}``, in the order given). One axis."""
    fig = Figure(figsize=(8, 0.42 * len(counts) + 0.9), layout="constrained")
    ax = fig.subplots()
    names = list(counts)[::-1]
    values = [counts[k] for k in names]
    ax.barh(names, values, color="#4477aa")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v}", va="center", fontsize=9)
    ax.set_xlabel(f"failed images (of {n_images})")
    ax.set_xlim(0, max(values + [1]) * 1.15)
    ax.tick_params(labelsize=9)
    ax.set_title(f"why images fail{_suffix(backend)}", fontsize=9.5)
    return fig


def figure_png(fig: Figure, dpi: int = 150) -> bytes:
    """The figure as PNG bytes (for embedding in HTML or a PDF)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def by_condition(frames: Mapping[str, object], backend: str | None = None) -> Figure:
    """IoU and foreground hit per condition, one panel per table of
    :func:`camseg.evaluation.robustness.condition_frames` (index: the condition's bins;
    columns ``IoU`` and ``fg hit``)."""
    if not frames:
        raise ValueError("no condition tables to plot")
    frames = {title: frame for title, frame in frames.items()
              if "IoU" in frame.columns and frame["IoU"].astype(float).notna().any()}
    if not frames:  # a build without the shift suite
        fig = Figure(figsize=(6.4, 1.2), layout="constrained")
        ax = fig.subplots()
        _off(ax)
        ax.text(0.5, 0.5, "no shift suite in this build (camseg build --suite-size 0)", ha="center", va="center")
        return fig
    # horizontal bars: the bins' labels read level, at the size of the text, in a column-wide figure
    fig = Figure(figsize=(8, 0.5 + 0.42 * max(len(f.index) for f in frames.values())), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(frames), sharex=True))
    for ax, (title, frame) in zip(axes, frames.items(), strict=True):
        y = np.arange(len(frame.index))
        ax.barh(y - 0.2, frame["IoU"].astype(float).to_numpy(), 0.4, label="IoU", color="#1f77b4")
        ax.barh(y + 0.2, frame["fg hit"].astype(float).to_numpy(), 0.4, label="fg hit", color="#ff7f0e")
        ax.set_yticks(y, [str(i) for i in frame.index], fontsize=10)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.0)
        ax.set_xticks([0, 0.5, 1.0], ["0", "0.5", "1"], fontsize=10)
        ax.set_title(title, fontsize=11)
        ax.grid(axis="x", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=10, frameon=False)
    fig.suptitle("foreground + background pipeline by condition" + _suffix(backend), fontsize=11)
    return fig
