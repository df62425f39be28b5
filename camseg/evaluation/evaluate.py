"""``camseg evaluate``: every pipeline and prompt strategy on a dataset split.

Runs the centre-point baseline (:class:`~camseg.pipelines.pipeline.BasicSamPipeline`),
the two CAM pipelines, and an **oracle** prompt (one point at the mask pixel
nearest the ground truth's centre of mass: the segmenter's upper bound), and
measures IoU, point hit rates and distances (book: Reference › Metrics), per class too.
It also scores the point strategies alone (foreground/background hit rates
and distances) so they can be compared.

Work shared between pipelines is done once per batch: the classifier and
Grad-CAM run once (the flips' vote and region scoring reuse the CAM's forward
passes), each image is set on the segmenter once per pipeline (SAM serves
repeats from its embedding cache), the CAM pipelines and strategies share the
candidate regions and choose each image's region once per region score
(:meth:`~camseg.prompting.regions.MaskScoring.decide`, which scores the
regions of the whole batch together), and a prompt already segmented for an
image (the centre point of the baseline pipeline and strategy) is not
segmented again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from camseg.data.dataset import DatasetError, ShapesDataset, degrade, normalize
from camseg.data.profiles import contrast
from camseg.data.shapes import CLASSES
from camseg.evaluation.metrics import iou_per_image, point_metrics
from camseg.models.analysis import pointing_game
from camseg.models.cam import AugmentedCAM
from camseg.models.classifier import default_cam, load_checkpoint
from camseg.pipelines.pipeline import BasicSamPipeline, ForegroundBackgroundPipeline, ForegroundPointsPipeline
from camseg.prompting.prompts import CamArgmax, CamCentroid, CamInterior, CenterPoint, Prompts, oracle_points
from camseg.prompting.regions import MaskScoring
from camseg.utils.devices import model_device
from camseg.utils.paths import atomic_path

PIPELINES = ("center", "foreground", "foreground_background", "oracle")


def _strategies() -> dict[str, Callable]:
    from camseg.prompting.regions import SimilarityScore

    return {"center": CenterPoint(), "cam_argmax": CamArgmax(with_background=True),
            "cam_centroid": CamCentroid(), "cam_interior": CamInterior(n_background=2),
            # the published region score, beside the default's (the before/after of region selection);
            # it shares the candidate regions and their evidence with the CAM pipelines
            "mask_scoring_similarity": MaskScoring(n_background=2, scorer=SimilarityScore(),
                                                   name="mask_scoring_similarity")}


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
    explain: str = "top",
    device: str = "auto",
    reference: bool = False,
) -> dict:
    """Evaluate all pipelines on one split.

    Args:
        data: dataset folder in the dataset layout (book: Reference › Data).
        checkpoint: classifier checkpoint (``camseg train``).
        segmenter: a promptable segmenter (``camseg.segmenters.get_segmenter``).
        split: which split.
        degraded: re-encode the images as JPEG (quality 90) with mild noise
            first (:func:`camseg.data.dataset.degrade`, seed 0).
        limit: evaluate only the first ``limit`` images.
        batch_size: images per batch.
        progress: show a progress bar.
        keep_masks: also return the predicted masks and points (not JSON-able).
        explain: ``"top"``: each CAM explains the classifier's top class (for
            the default architecture the class its four flips vote for,
            :func:`camseg.models.classifier.flip_logits`);
            ``"label"``: it explains the image's labelled class (a class-name
            prompt per image; book: Reference › Evaluation results).
        device: where the classifier, Grad-CAM and mask scoring run: ``"auto"``
            (CUDA when available), ``"cpu"``, ``"cuda"``. The segmenter keeps
            its own device (``get_segmenter(..., device=...)``).
        reference: the straightforward path, for tests and benchmarks: each image's
            region chosen image by image (``MaskScoring(batched=False)``), the flips'
            vote and region scoring running the classifier themselves instead of
            reusing the CAM's forward passes, every prompt segmented even when
            segmented before. The same prompts and masks (tests check it); slower.

    Returns:
        A JSON-able dict: ``dataset``, ``split``, ``n_images``, ``segmenter``, ``device``
        (the classifier's, resolved),
        ``classifier_accuracy`` (of the class decision the CAM uses:
        :func:`camseg.models.classifier.default_cam`), ``pipelines`` (name -> ``iou``,
        ``fg_hit_rate``, ``fg_distance``, ``bg_hit_rate``, ``bg_distance``,
        ``seconds``, ``per_class_iou``, ``n_fg``, ``n_bg``) and ``strategies``
        (name -> point metrics).
    """
    if explain not in ("top", "label"):
        raise ValueError(f"explain must be 'top' or 'label', got {explain!r}")
    model, meta = load_checkpoint(checkpoint, device=device)
    cam = default_cam(model, meta["arch"])
    if reference and isinstance(cam, AugmentedCAM):
        cam = AugmentedCAM(cam.cam, flip=cam.flip, shifts=cam.shifts, classify=cam.classify, share_passes=False)
    names = {id(m): n for n, m in model.named_modules()}
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
        "center": BasicSamPipeline(model, segmenter, cam=cam),
        "foreground": ForegroundPointsPipeline(model, segmenter, cam=cam),
        "foreground_background": ForegroundBackgroundPipeline(model, segmenter, cam=cam),
    }
    strategies = _strategies()
    if reference:
        for pipe in pipes.values():
            if isinstance(pipe.strategy, MaskScoring):
                pipe.strategy = replace(pipe.strategy, batched=False)
        strategies = {k: replace(s, batched=False) if isinstance(s, MaskScoring) else s for k, s in strategies.items()}
    n = len(images)
    masks = {k: [] for k in PIPELINES}
    prompts = {k: [] for k in PIPELINES}
    strategy_prompts = {k: [] for k in strategies}
    strategy_masks = {k: [] for k in strategies}
    seconds = dict.fromkeys(PIPELINES, 0.0)
    predictions, peak_hits = [], []
    bar = tqdm(total=n, desc=f"evaluate {split}{' (degraded)' if degraded else ''}", unit="img",
               disable=not progress)
    for start in range(0, n, batch_size):
        x = normalize(images[start:start + batch_size])
        t0 = time.perf_counter()
        targets = labels[start:start + batch_size] if explain == "label" else None
        ctx = pipes["center"].context(x, targets)
        if reference:
            ctx.extras.pop("classifier_outputs", None)
        t_ctx = time.perf_counter() - t0
        predictions.append(np.asarray(ctx.extras["logits"]).argmax(1))
        peak_hits.append(pointing_game(ctx.cams, gts[start:start + batch_size]))
        segmented: dict[tuple, np.ndarray] | None = None if reference else {}  # (image, points, labels) -> mask
        for name, pipe in pipes.items():
            t0 = time.perf_counter()
            out = pipe.run(x, context=ctx)
            seconds[name] += time.perf_counter() - t0 + (t_ctx if name != "center" else 0.0)
            masks[name].append(out.masks.numpy())
            prompts[name].append(out.prompts)
            if segmented is not None:
                _remember(segmented, out.prompts, masks[name][-1])
        t0 = time.perf_counter()
        oracle = oracle_points(gts[start:start + batch_size])
        masks["oracle"].append(_segment_once(pipes["center"], x, oracle, segmented))
        seconds["oracle"] += time.perf_counter() - t0
        prompts["oracle"].append(oracle)
        for name, strategy in strategies.items():
            prompts_s = strategy(ctx)
            strategy_prompts[name].append(prompts_s)
            strategy_masks[name].append(_segment_once(pipes["center"], x, prompts_s, segmented))
        bar.update(len(x))
    bar.close()
    predictions = np.concatenate(predictions)
    result = {
        "dataset": str(data), "split": split, "degraded": degraded, "n_images": n,
        "segmenter": getattr(segmenter, "name", type(segmenter).__name__),
        "device": str(model_device(model)),
        "classifier": {"arch": meta["arch"], "checkpoint": str(checkpoint),
                       "target_layers": [names[id(m)] for m in cam.target_layers],
                       "cam": type(cam).__name__},
        "classifier_accuracy": float((predictions == labels).mean()),
        "explain": explain,
        "pipelines": {}, "strategies": {},
    }
    per_image = {"label": labels.tolist(), "predicted": predictions.tolist(),
                 "cam_peak_hit": np.concatenate(peak_hits).astype(int).tolist(),
                 "area": gts.reshape(n, -1).sum(1).tolist(),
                 "border": np.array([m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()
                                     for m in gts]).astype(int).tolist(),
                 "contrast": [round(contrast(im, m), 2) for im, m in zip(images, gts, strict=True)],
                 "iou": {}, "fg_hit": {}}
    for name in PIPELINES:
        pred = np.concatenate(masks[name])
        ious = iou_per_image(pred, gts)
        coords, labs = _concat_prompts(prompts[name])
        pm = point_metrics(coords, labs, gts)
        per_image["iou"][name] = np.round(ious, 4).tolist()
        per_image["fg_hit"][name] = _first_fg_hit(coords, labs, gts).astype(int).tolist()
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
        ious = iou_per_image(np.concatenate(strategy_masks[name]), gts)
        result["strategies"][name] = {**point_metrics(coords, labs, gts).as_dict(), "iou": float(ious.mean())}
        per_image["iou"][name] = np.round(ious, 4).tolist()
        per_image["fg_hit"][name] = _first_fg_hit(coords, labs, gts).astype(int).tolist()
    for name in ("foreground", "foreground_background"):
        result["strategies"]["mask_scoring" if name == "foreground_background" else "mask_scoring_fg"] = {
            k: result["pipelines"][name][k] for k in ("fg_hit_rate", "fg_distance", "bg_hit_rate", "bg_distance",
                                                      "n_fg", "n_bg", "iou")}
    result["per_image"] = per_image
    return result


def _prompt_key(prompts: Prompts, i: int) -> tuple:
    coords, labels = prompts.for_image(i)
    return (i, np.asarray(coords, np.float32).tobytes(), np.asarray(labels, np.int64).tobytes())


def _remember(segmented: dict, prompts: Prompts, masks: np.ndarray) -> None:
    """Note the mask bool (H, W) each image's points got, keyed by image and points."""
    for i, mask in enumerate(masks):
        segmented[_prompt_key(prompts, i)] = mask


def _segment_once(pipe: BasicSamPipeline, x: torch.Tensor, prompts: Prompts, segmented: dict | None) -> np.ndarray:
    """Masks bool (B, H, W) for ``prompts`` on the normalised batch ``x``: those of points
    already segmented on the same image taken from ``segmented``, the rest segmented by
    ``pipe`` (in one call) and added to it. The same masks as segmenting everything: a
    segmenter's mask depends only on the image and the points. ``segmented`` None:
    segment everything."""
    if segmented is None:
        return pipe.segment(x, prompts.point_coords, prompts.point_labels).numpy()
    keys = [_prompt_key(prompts, i) for i in range(len(x))]
    todo = [i for i, k in enumerate(keys) if k not in segmented]
    if todo:
        new = pipe.segment(x[todo], prompts.point_coords[todo], prompts.point_labels[todo]).numpy()
        for i, mask in zip(todo, new, strict=True):
            segmented[keys[i]] = mask
    return np.stack([segmented[k] for k in keys])


def _first_fg_hit(coords: np.ndarray, labels: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """Per image, whether its first foreground point (x, y) lies on the mask: bool (N,)."""
    out = np.zeros(len(gts), bool)
    h, w = gts.shape[1:]
    for i in range(len(gts)):
        fg = np.nonzero(labels[i] == 1)[0]
        if len(fg):
            x, y = coords[i, fg[0]]
            out[i] = gts[i, min(max(int(round(y)), 0), h - 1), min(max(int(round(x)), 0), w - 1)]
    return out


def _concat_prompts(parts: list) -> tuple[np.ndarray, np.ndarray]:
    n = max(p.point_coords.shape[1] for p in parts)
    coords, labels = [], []
    for p in parts:
        pad = n - p.point_coords.shape[1]
        coords.append(np.pad(p.point_coords, ((0, 0), (0, pad), (0, 0))))
        labels.append(np.pad(p.point_labels, ((0, 0), (0, pad)), constant_values=-1))
    return np.concatenate(coords), np.concatenate(labels)


def write_json(result: dict, path: str | os.PathLike) -> Path:
    """Write ``result`` as JSON atomically (temporary file, then rename)."""
    path = Path(path)
    clean = {k: v for k, v in result.items() if not k.startswith("_")}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean, indent=2) + "\n")
    return path
