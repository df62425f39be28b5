"""``camseg evaluate``: every pipeline and prompt strategy on a dataset split.

Runs the centre-point baseline (:class:`~camseg.pipelines.BasicSamPipeline`),
the two CAM pipelines, and an **oracle** prompt (one point at the mask pixel
nearest the ground truth's centre of mass: the segmenter's upper bound), and
measures IoU, point hit rates and distances (SPEC section 5), per class too.
It also scores the point strategies alone (foreground/background hit rates
and distances) so they can be compared.

Work shared between pipelines is done once per batch: the classifier and
Grad-CAM run once, each image is set on the segmenter once per pipeline (SAM
serves repeats from its embedding cache), and the two CAM pipelines share the
scored candidate regions.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from camseg.classifier import default_target_layers, load_checkpoint
from camseg.data import CLASSES, DatasetError, ShapesDataset, degrade, normalize
from camseg.devices import model_device
from camseg.metrics import iou_per_image, point_metrics
from camseg.paths import atomic_path
from camseg.pipelines import BasicSamPipeline, ForegroundBackgroundPipeline, ForegroundPointsPipeline
from camseg.prompts import CamArgmax, CamCentroid, CamInterior, CenterPoint, oracle_points

PIPELINES = ("center", "foreground", "foreground_background", "oracle")


def _strategies() -> dict[str, Callable]:
    return {"center": CenterPoint(), "cam_argmax": CamArgmax(with_background=True),
            "cam_centroid": CamCentroid(), "cam_interior": CamInterior(n_background=2)}


def evaluate(
    data: str | os.PathLike,
    checkpoint: str | os.PathLike,
    segmenter: object,
    split: str = "test",
    degraded: bool = False,
    limit: int | None = None,
    batch_size: int = 50,
    progress: bool = True,
    keep_masks: bool = False,
    device: str = "auto",
) -> dict:
    """Evaluate all pipelines on one split.

    Args:
        data: dataset folder (SPEC section 1 layout).
        checkpoint: classifier checkpoint (``camseg train``).
        segmenter: a promptable segmenter (``camseg.segmenters.get_segmenter``).
        split: which split.
        degraded: re-encode the images as JPEG (quality 90) with mild noise
            first (:func:`camseg.data.degrade`, seed 0).
        limit: evaluate only the first ``limit`` images.
        batch_size: images per batch.
        progress: show a progress bar.
        keep_masks: also return the predicted masks and points (not JSON-able).
        device: where the classifier, Grad-CAM and mask scoring run: ``"auto"``
            (CUDA when available), ``"cpu"``, ``"cuda"``. The segmenter keeps
            its own device (``get_segmenter(..., device=...)``).

    Returns:
        A JSON-able dict: ``dataset``, ``split``, ``n_images``, ``segmenter``, ``device``
        (the classifier's, resolved),
        ``classifier_accuracy``, ``pipelines`` (name -> ``iou``,
        ``fg_hit_rate``, ``fg_distance``, ``bg_hit_rate``, ``bg_distance``,
        ``seconds``, ``per_class_iou``, ``n_fg``, ``n_bg``) and ``strategies``
        (name -> point metrics).
    """
    model, meta = load_checkpoint(checkpoint, device=device)
    layers = default_target_layers(model, meta["arch"])
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be an integer >= 1 (or None for all images), got {limit!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    dataset = ShapesDataset(data, split)
    images, labels, gts = dataset.arrays()
    if limit is not None:
        images, labels, gts = images[:limit], labels[:limit], gts[:limit]
    empty = np.flatnonzero(~gts.reshape(len(gts), -1).any(1))
    if len(empty):
        names = ", ".join(str(dataset.mask_paths[i]) for i in empty[:3]) + (" ..." if len(empty) > 3 else "")
        raise DatasetError(f"{len(empty)} ground-truth mask(s) have no object pixel, so IoU and point metrics are "
                           f"undefined: {names}")
    if degraded:
        images = degrade(images)
    pipes = {
        "center": BasicSamPipeline(model, segmenter, layers),
        "foreground": ForegroundPointsPipeline(model, segmenter, layers),
        "foreground_background": ForegroundBackgroundPipeline(model, segmenter, layers),
    }
    n = len(images)
    masks = {k: [] for k in PIPELINES}
    prompts = {k: [] for k in PIPELINES}
    strategy_prompts = {k: [] for k in _strategies()}
    seconds = dict.fromkeys(PIPELINES, 0.0)
    predictions = []
    bar = tqdm(total=n, desc=f"evaluate {split}{' (degraded)' if degraded else ''}", unit="img",
               disable=not progress)
    for start in range(0, n, batch_size):
        x = normalize(images[start:start + batch_size])
        t0 = time.perf_counter()
        ctx = pipes["center"].context(x)
        t_ctx = time.perf_counter() - t0
        predictions.append(ctx.extras["logits"].argmax(1))
        for name, pipe in pipes.items():
            t0 = time.perf_counter()
            out = pipe.run(x, context=ctx)
            seconds[name] += time.perf_counter() - t0 + (t_ctx if name != "center" else 0.0)
            masks[name].append(out.masks.numpy())
            prompts[name].append(out.prompts)
        t0 = time.perf_counter()
        oracle = oracle_points(gts[start:start + batch_size])
        masks["oracle"].append(pipes["center"].segment(x, oracle.point_coords, oracle.point_labels).numpy())
        seconds["oracle"] += time.perf_counter() - t0
        prompts["oracle"].append(oracle)
        for name, strategy in _strategies().items():
            strategy_prompts[name].append(strategy(ctx))
        bar.update(len(x))
    bar.close()
    predictions = np.concatenate(predictions)
    result = {
        "dataset": str(data), "split": split, "degraded": degraded, "n_images": n,
        "segmenter": getattr(segmenter, "name", type(segmenter).__name__),
        "device": str(model_device(model)),
        "classifier": {"arch": meta["arch"], "checkpoint": str(checkpoint),
                       "target_layers": meta.get("target_layers")},
        "classifier_accuracy": float((predictions == labels).mean()),
        "pipelines": {}, "strategies": {},
    }
    for name in PIPELINES:
        pred = np.concatenate(masks[name])
        ious = iou_per_image(pred, gts)
        coords, labs = _concat_prompts(prompts[name])
        pm = point_metrics(coords, labs, gts)
        result["pipelines"][name] = {
            "iou": float(ious.mean()), **{k: v for k, v in pm.as_dict().items()},
            "seconds": seconds[name],
            "per_class_iou": {c: float(ious[labels == k].mean()) for k, c in enumerate(CLASSES) if (labels == k).any()},
        }
        if keep_masks:
            result.setdefault("_masks", {})[name] = pred
            result.setdefault("_points", {})[name] = (coords, labs)
    for name, parts in strategy_prompts.items():
        coords, labs = _concat_prompts(parts)
        result["strategies"][name] = point_metrics(coords, labs, gts).as_dict()
    for name in ("foreground", "foreground_background"):
        result["strategies"]["mask_scoring" if name == "foreground_background" else "mask_scoring_fg"] = {
            k: result["pipelines"][name][k] for k in ("fg_hit_rate", "fg_distance", "bg_hit_rate", "bg_distance",
                                                      "n_fg", "n_bg")}
    return result


def _concat_prompts(parts: list) -> tuple[np.ndarray, np.ndarray]:
    n = max(p.point_coords.shape[1] for p in parts)
    coords, labels = [], []
    for p in parts:
        pad = n - p.point_coords.shape[1]
        coords.append(np.pad(p.point_coords, ((0, 0), (0, pad), (0, 0))))
        labels.append(np.pad(p.point_labels, ((0, 0), (0, pad)), constant_values=-1))
    return np.concatenate(coords), np.concatenate(labels)


def format_table(result: dict) -> str:
    """A plain-text table of a result of :func:`evaluate` (the same labels, units and number
    formats as the book and the PDF: :mod:`camseg.tables`)."""
    from camseg.tables import pipeline_table, strategy_table

    tag = "degraded" if result.get("degraded") else "clean"
    first = pipeline_table({tag: result}, seconds=True).to_text()
    return f"{result.get('split', 'test')} split\n{first}\n\n{strategy_table({tag: result}).to_text()}"


def write_json(result: dict, path: str | os.PathLike) -> Path:
    """Write ``result`` as JSON atomically (temporary file, then rename)."""
    path = Path(path)
    clean = {k: v for k, v in result.items() if not k.startswith("_")}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean, indent=2) + "\n")
    return path
