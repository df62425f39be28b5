"""Measure the offline segmenters on the shapes test split: IoU and time per predict.

For every image the prompt is ONE foreground point, the "oracle" point: the
ground-truth mask pixel nearest the mask's centre of mass (mean (x, y) of its
True pixels). "jittered" moves it to a mask pixel 2-3 px away (seeded; still
inside the mask) to show how sensitive a backend is to where the point falls.
"degraded" is :func:`camseg.data.dataset.degrade` (Gaussian noise std 3, JPEG q90),
the robustness condition used throughout the project.

IoU per image is |pred & gt| / |pred | gt| (an empty union would count as 1;
ground-truth masks are never empty here), averaged over images. "fail" is the
share of images with IoU < 0.5 on degraded images with the oracle point.
Times are wall-clock means per call on this machine (run with
``OMP_NUM_THREADS=1``): ``set_image`` (per-image precomputation) and
``predict`` (per prompt).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/offline_backends.py [--root artifacts/data]
        [--split test] [--limit N] [--backends regiongrow grabcut ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from camseg.data.dataset import ShapesDataset, degrade  # noqa: E402
from camseg.segmenters import (  # noqa: E402
    DEFAULT_OFFLINE,
    FloodFillSegmenter,
    GrabCutSegmenter,
    RandomWalkerSegmenter,
    RegionGrowSegmenter,
)

BACKENDS = {
    "floodfill": FloodFillSegmenter,
    "floodfill (tol 24)": partial(FloodFillSegmenter, tolerance=24.0),
    "grabcut": GrabCutSegmenter,
    "randomwalker": RandomWalkerSegmenter,
    "randomwalker (beta 130)": partial(RandomWalkerSegmenter, beta=130.0),
    "regiongrow": RegionGrowSegmenter,
}
"""Backends measured: the registry's defaults plus variants that show the effect of a parameter."""


def oracle_point(mask: np.ndarray) -> np.ndarray:
    """The mask pixel nearest the mask's centre of mass, as float (x, y)."""
    rows, cols = np.nonzero(mask)
    cx, cy = cols.mean(), rows.mean()
    i = int(np.argmin((cols - cx) ** 2 + (rows - cy) ** 2))
    return np.array([cols[i], rows[i]], dtype=np.float64)


def jittered_point(mask: np.ndarray, point: np.ndarray, rng: np.random.Generator,
                   low: float = 2.0, high: float = 3.0) -> np.ndarray:
    """A mask pixel at distance ``low..high`` px from ``point`` (x, y), drawn with ``rng``; ``point`` if none."""
    rows, cols = np.nonzero(mask)
    d = np.hypot(cols - point[0], rows - point[1])
    ok = np.nonzero((d >= low) & (d <= high))[0]
    if len(ok) == 0:
        return point.copy()
    i = int(rng.choice(ok))
    return np.array([cols[i], rows[i]], dtype=np.float64)


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """|pred & gt| / |pred | gt|; 1.0 when both are empty."""
    union = np.logical_or(pred, gt).sum()
    return float(np.logical_and(pred, gt).sum() / union) if union else 1.0


def evaluate(factory, images: np.ndarray, masks: np.ndarray, points: np.ndarray) -> dict:
    """Mean IoU, share of IoU < 0.5, and mean ms per set_image / predict over the images."""
    seg = factory()
    labels = np.array([1], dtype=np.int64)
    ious, t_set, t_pred = [], 0.0, 0.0
    for image, gt, point in zip(images, masks, points, strict=True):
        t0 = time.perf_counter()
        seg.set_image(image)
        t1 = time.perf_counter()
        res = seg.predict(point[None], labels)
        t2 = time.perf_counter()
        t_set += t1 - t0
        t_pred += t2 - t1
        ious.append(iou(res.mask, gt))
    ious = np.asarray(ious)
    n = len(images)
    return {"iou": float(ious.mean()), "fail": float((ious < 0.5).mean()),
            "set_ms": 1000 * t_set / n, "predict_ms": 1000 * t_pred / n}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(ROOT / "artifacts" / "data"), help="dataset folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--seed", type=int, default=0, help="seed of the jitter")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    cv2.setNumThreads(1)
    images, _, masks = ShapesDataset(args.root, args.split).arrays()
    if args.limit is not None:
        images, masks = images[:args.limit], masks[:args.limit]
    degraded = degrade(images)
    points = np.stack([oracle_point(m) for m in masks])
    rng = np.random.default_rng(args.seed)
    jittered = np.stack([jittered_point(m, p, rng) for m, p in zip(masks, points, strict=True)])
    moved = np.hypot(*(jittered - points).T)
    conditions = {
        "clean": (images, points),
        "clean+jitter": (images, jittered),
        "degraded": (degraded, points),
        "degraded+jitter": (degraded, jittered),
    }
    print(f"{len(images)} images of split {args.split!r} from {args.root}; one foreground point per image; "
          f"jitter moved the point by {moved.mean():.2f} px on average (min {moved.min():.2f}, max {moved.max():.2f}); "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print()
    header = ["backend", *[f"IoU {c}" for c in conditions], "fail (degraded)", "ms set_image", "ms predict"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    results = {}
    for name in args.backends:
        factory = BACKENDS[name]
        res = {c: evaluate(factory, ims, masks, pts) for c, (ims, pts) in conditions.items()}
        results[name] = res
        set_ms = np.mean([r["set_ms"] for r in res.values()])
        pred_ms = np.mean([r["predict_ms"] for r in res.values()])
        label = f"{name} (default offline)" if name == DEFAULT_OFFLINE else name
        cells = [label, *[f"{res[c]['iou']:.3f}" for c in conditions], f"{100 * res['degraded']['fail']:.1f} %",
                 f"{set_ms:.2f}", f"{pred_ms:.2f}"]
        print("| " + " | ".join(cells) + " |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
