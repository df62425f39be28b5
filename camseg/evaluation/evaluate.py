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
from dataclasses import dataclass, replace
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


@dataclass
class _BatchOutput:
    """What :class:`_Evaluator` computed for one batch of B images (masks bool (B, H, W), prompts
    in (x, y); ``seconds``: wall time per pipeline)."""

    predictions: np.ndarray
    peak_hits: np.ndarray
    masks: dict[str, np.ndarray]
    prompts: dict[str, Prompts]
    strategy_prompts: dict[str, Prompts]
    strategy_masks: dict[str, np.ndarray]
    seconds: dict[str, float]


class _Evaluator:
    """The pipelines and strategies of one evaluation, built once and run batch by batch (in this
    process or in a worker process of :func:`evaluate`)."""

    def __init__(self, checkpoint: str | os.PathLike, segmenter: object, device: str, reference: bool) -> None:
        self.model, self.meta = load_checkpoint(checkpoint, device=device)
        cam = default_cam(self.model, self.meta["arch"])
        if reference and isinstance(cam, AugmentedCAM):
            cam = AugmentedCAM(cam.cam, flip=cam.flip, shifts=cam.shifts, classify=cam.classify,
                               share_passes=False)
        self.cam, self.reference = cam, reference
        self.pipes = {
            "center": BasicSamPipeline(self.model, segmenter, cam=cam),
            "foreground": ForegroundPointsPipeline(self.model, segmenter, cam=cam),
            "foreground_background": ForegroundBackgroundPipeline(self.model, segmenter, cam=cam),
        }
        self.strategies = _strategies()
        if reference:
            for pipe in self.pipes.values():
                if isinstance(pipe.strategy, MaskScoring):
                    pipe.strategy = replace(pipe.strategy, batched=False)
            self.strategies = {k: replace(s, batched=False) if isinstance(s, MaskScoring) else s
                               for k, s in self.strategies.items()}

    def batch(self, images: np.ndarray, labels: np.ndarray, gts: np.ndarray, explain: str) -> _BatchOutput:
        """Run every pipeline and strategy on uint8 (B, H, W, 3) images with int (B,) labels and
        bool (B, H, W) ground-truth masks."""
        pipes = self.pipes
        x = normalize(images)
        t0 = time.perf_counter()
        ctx = pipes["center"].context(x, labels if explain == "label" else None)
        if self.reference:
            ctx.extras.pop("classifier_outputs", None)
        t_ctx = time.perf_counter() - t0
        out = _BatchOutput(np.asarray(ctx.extras["logits"]).argmax(1), pointing_game(ctx.cams, gts), {}, {}, {}, {},
                           dict.fromkeys(PIPELINES, 0.0))
        segmented: dict[tuple, np.ndarray] | None = None if self.reference else {}  # (image, points, labels) -> mask
        for name, pipe in pipes.items():
            t0 = time.perf_counter()
            res = pipe.run(x, context=ctx)
            out.seconds[name] = time.perf_counter() - t0 + (t_ctx if name != "center" else 0.0)
            out.masks[name], out.prompts[name] = res.masks.numpy(), res.prompts
            if segmented is not None:
                _remember(segmented, res.prompts, out.masks[name])
        t0 = time.perf_counter()
        oracle = oracle_points(gts)
        out.masks["oracle"], out.prompts["oracle"] = _segment_once(pipes["center"], x, oracle, segmented), oracle
        out.seconds["oracle"] = time.perf_counter() - t0
        for name, strategy in self.strategies.items():
            out.strategy_prompts[name] = prompts_s = strategy(ctx)
            out.strategy_masks[name] = _segment_once(pipes["center"], x, prompts_s, segmented)
        return out


_WORKER: dict[str, object] = {}
"""A worker process's :class:`_Evaluator` (set by :func:`_start_worker`)."""


def _start_worker(checkpoint: str, segmenter: object, device: str, reference: bool, threads: int) -> None:
    from camseg.utils.devices import set_cpu_threads

    set_cpu_threads(threads)
    _WORKER["evaluator"] = _Evaluator(checkpoint, segmenter, device, reference)


def _worker_batch(images: np.ndarray, labels: np.ndarray, gts: np.ndarray, explain: str) -> _BatchOutput:
    return _WORKER["evaluator"].batch(images, labels, gts, explain)  # type: ignore[attr-defined]


def auto_workers(segmenter: object, device: str, n_images: int, batch_size: int) -> int:
    """How many processes :func:`evaluate` uses when not told: 2 for an offline segmenter on a
    CPU with 2 or more cores and at least two batches of images, else 1 (a GPU, or SAM, which
    each process would load again, is best used by one)."""
    from camseg.segmenters.offline import OfflineSegmenter
    from camseg.utils.devices import resolve_device

    if not isinstance(segmenter, OfflineSegmenter) or resolve_device(device).type != "cpu":
        return 1
    return 2 if (os.cpu_count() or 1) >= 2 and n_images > batch_size else 1


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
    workers: int | None = 1,
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
        workers: processes that evaluate batches side by side, each with its share of the
            CPU threads and its own copy of the classifier and of ``segmenter`` (which must
            then be an offline one: :class:`camseg.segmenters.offline.OfflineSegmenter`).
            The batches are the same, so the results equal a one-process run with the workers'
            thread count (``os.cpu_count() // workers`` each), but for the ``seconds``. The
            number of threads can change the classifier's last bits, and so, rarely, a nearly
            tied choice of points (2-4 of 200 images between one and two threads,
            ``benchmarks/README.md``); the build's evaluations run one thread each too.
            None: :func:`auto_workers` (2 for an offline segmenter on a CPU with 2+ cores).

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
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be an integer >= 1 (or None for all images), got {limit!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1 (or None: automatic), got {workers!r}")
    evaluator = _Evaluator(checkpoint, segmenter, device, reference)
    model, meta, cam = evaluator.model, evaluator.meta, evaluator.cam
    names = {id(m): n for n, m in model.named_modules()}
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
    n = len(images)
    if workers is None:
        workers = auto_workers(segmenter, device, n, batch_size)
    starts = list(range(0, n, batch_size))
    workers = min(int(workers), len(starts)) or 1
    if workers > 1:
        from camseg.segmenters.offline import OfflineSegmenter

        if not isinstance(segmenter, OfflineSegmenter):
            raise ValueError(f"workers={workers} needs an offline segmenter (each process holds its own copy), got "
                             f"{getattr(segmenter, 'name', type(segmenter).__name__)}: use workers=1")
    bar = tqdm(total=n, desc=f"evaluate {split}{' (degraded)' if degraded else ''}", unit="img",
               disable=not progress)
    if workers == 1:
        outputs = []
        for start in starts:
            sl = slice(start, start + batch_size)
            outputs.append(evaluator.batch(images[sl], labels[sl], gts[sl], explain))
            bar.update(len(outputs[-1].predictions))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                                 initargs=(str(checkpoint), segmenter, device, reference, threads)) as pool:
            jobs = [pool.submit(_worker_batch, images[s:s + batch_size], labels[s:s + batch_size],
                                gts[s:s + batch_size], explain) for s in starts]
            for job in as_completed(jobs):
                bar.update(len(job.result().predictions))
            outputs = [job.result() for job in jobs]
    bar.close()
    masks = {k: [o.masks[k] for o in outputs] for k in PIPELINES}
    prompts = {k: [o.prompts[k] for o in outputs] for k in PIPELINES}
    strategy_prompts = {k: [o.strategy_prompts[k] for o in outputs] for k in evaluator.strategies}
    strategy_masks = {k: [o.strategy_masks[k] for o in outputs] for k in evaluator.strategies}
    seconds = {k: float(sum(o.seconds[k] for o in outputs)) for k in PIPELINES}
    predictions = [o.predictions for o in outputs]
    peak_hits = [o.peak_hits for o in outputs]
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
