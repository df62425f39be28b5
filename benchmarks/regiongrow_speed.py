"""RegionGrowSegmenter's time per prompt: the code of a git revision (before) against the working tree (after).

The prompts are those ``camseg evaluate`` gives the default offline backend, made without a CAM:

* ``grid``: one foreground point per prompt on the candidate grid of
  :class:`camseg.prompting.regions.Proposal` (stride 3, offset 1: the points a CAM
  would choose among), every ``--every``-th grid point of each image, all in one
  ``predict_batch`` call, as ``Proposal.regions`` makes it;
* ``fg+bg``: ``--mixed`` prompts per image of one foreground grid point and two
  background grid points (seeded), one ``predict`` each, as the pipelines'
  foreground + background prompts.

Each code base runs in a fresh subprocess with one thread (``OMP_NUM_THREADS=1``,
``cv2.setNumThreads(1)``), before and after alternating ``--repeats`` times:

* before: the revision ``--before`` (default ``HEAD``) checked out in a git
  worktree (``git worktree add --detach /tmp/camseg-before-regiongrow REV``, reused and
  moved to ``REV`` when it is already there), imported through ``PYTHONPATH``;
* after: the working tree this script belongs to.

``--degraded`` runs on the images degraded as the book's degraded condition
(``camseg.data.dataset.degrade``: noise + JPEG q90) instead.

The clock covers the prompts only (``set_image`` is timed apart; scores are read
after the clock stops). It prints one markdown table: prompts, milliseconds per
prompt before and after (the fastest repeat), the ratio before / after (> 1:
faster), and whether every mask and every score is identical. ::

    python benchmarks/regiongrow_speed.py --data /work/ref/data200 --split test --images 50 [--every 4]
        [--mixed 8] [--repeats 2] [--before REV] [--degraded]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from revisions import ROOT, run_worker, worktree  # benchmarks/revisions.py, beside this script


def load_images(data: str, split: str, n: int) -> list[np.ndarray]:
    """The first ``n`` images (sorted by name) of ``data/images/split``, uint8 (H, W, 3) RGB."""
    from PIL import Image

    files = sorted((Path(data) / "images" / split).glob("*.png"))[:n]
    if not files:
        raise SystemExit(f"no images in {Path(data) / 'images' / split}")
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def make_prompts(image: np.ndarray, every: int, mixed: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Prompts of one image: name -> (coords float32 (K, n, 2) in (x, y), labels int64 (K, n))."""
    from camseg.prompting.regions import Proposal

    h, w = image.shape[:2]
    grid = Proposal(threshold=0.0, max_candidates=10**9).points(np.zeros((h, w), np.float32))  # (x, y), raster order
    rng = np.random.default_rng(seed)
    picks = np.stack([rng.choice(len(grid), 3, replace=False) for _ in range(mixed)]) if mixed else \
        np.zeros((0, 3), int)
    labels = np.zeros((len(picks), 3), np.int64)
    labels[:, 0] = 1
    return {"grid": (grid[::every][:, None, :], np.ones((len(grid[::every]), 1), np.int64)),
            "fg+bg": (grid[picks], labels)}


def worker(args: argparse.Namespace) -> None:
    """Time the prompts with whatever ``camseg`` is importable; write the masks, scores and timings."""
    import cv2

    import camseg
    from camseg.segmenters.offline import RegionGrowSegmenter

    cv2.setNumThreads(1)
    images = load_images(args.data, args.split, args.images)
    if args.degraded:
        from camseg.data.dataset import degrade

        images = list(degrade(np.stack(images)))
    seg = RegionGrowSegmenter()
    seconds = {"grid": 0.0, "fg+bg": 0.0, "set_image": 0.0}
    counts = {"grid": 0, "fg+bg": 0}
    arrays = {}
    for i, image in enumerate(images):
        prompts = make_prompts(image, args.every, args.mixed, seed=i)
        t0 = time.perf_counter()
        seg.set_image(image)
        seconds["set_image"] += time.perf_counter() - t0
        coords, labels = prompts["grid"]
        t0 = time.perf_counter()
        grid = seg.predict_batch(coords, labels)
        seconds["grid"] += time.perf_counter() - t0
        coords, labels = prompts["fg+bg"]
        t0 = time.perf_counter()
        mixed = [seg.predict(c, lab) for c, lab in zip(coords, labels, strict=True)]
        seconds["fg+bg"] += time.perf_counter() - t0
        for name, results in (("grid", grid), ("fg+bg", mixed)):
            counts[name] += len(results)
            if results:
                arrays[f"{i}/{name}/masks"] = np.stack([r.mask for r in results])
                arrays[f"{i}/{name}/scores"] = np.array([r.score for r in results])
    out = Path(args.out)
    np.savez_compressed(out / "arrays.npz", **arrays)
    (out / "timing.json").write_text(json.dumps({"seconds": seconds, "counts": counts, "camseg": camseg.__file__}))


def compare(a: Path, b: Path, name: str) -> str:
    """"yes" when every mask and score of prompt set ``name`` is identical, else where they differ."""
    with np.load(a / "arrays.npz") as na, np.load(b / "arrays.npz") as nb:
        keys = sorted(k for k in set(na.files) | set(nb.files) if f"/{name}/" in k)
        bad = [k for k in keys if k not in na.files or k not in nb.files or na[k].shape != nb[k].shape
               or not np.array_equal(na[k], nb[k])]
    return "yes" if not bad else f"NO: {len(bad)} arrays differ ({', '.join(bad[:4])})"


def run_one(code: Path, args: argparse.Namespace, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--out", str(out), "--data", args.data,
           "--split", args.split, "--images", str(args.images), "--every", str(args.every),
           "--mixed", str(args.mixed)] + (["--degraded"] if args.degraded else [])
    return run_worker(code, cmd, env, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="dataset folder (images/<split>/*.png)")
    p.add_argument("--split", default="test")
    p.add_argument("--images", type=int, default=50)
    p.add_argument("--every", type=int, default=4, help="every n-th grid point of each image (default 4)")
    p.add_argument("--mixed", type=int, default=8, help="foreground + background prompts per image (default 8)")
    p.add_argument("--degraded", action="store_true", help="degrade the images (noise + JPEG) first")
    p.add_argument("--before", default="HEAD", help="git revision of the code before (default HEAD)")
    p.add_argument("--worktree", default="/tmp/camseg-before-regiongrow")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    commit = worktree(args.before, Path(args.worktree))
    codes = {"before": Path(args.worktree), "after": ROOT}
    times: dict[str, dict[str, list[float]]] = {c: {"grid": [], "fg+bg": [], "set_image": []} for c in codes}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for code, path in codes.items():
                timing = run_one(path, args, Path(tmp) / f"{code}-{rep}")
                counts = timing["counts"]
                for name, sec in timing["seconds"].items():
                    times[code][name].append(sec / (counts[name] if name in counts else args.images))
                print(f"  {code:6s} repeat {rep}: " + ", ".join(f"{k} {v:.2f} s" for k, v in timing["seconds"].items()),
                      flush=True)
        same = {name: compare(Path(tmp) / "before-0", Path(tmp) / "after-0", name) for name in counts}
    print(f"\nbefore: {args.before} = {commit[:12]}; after: the working tree ({ROOT}); {args.images} images of "
          f"{args.data} ({args.split}{', degraded' if args.degraded else ''}), 1 thread, fastest of {args.repeats}")
    print("| prompts | count | ms/prompt before | ms/prompt after | ratio | masks and scores identical |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in counts:
        before, after = min(times["before"][name]) * 1e3, min(times["after"][name]) * 1e3
        print(f"| {name} | {counts[name]} | {before:.3f} | {after:.3f} | {before / after:.2f}x | {same[name]} |")
    before, after = min(times["before"]["set_image"]) * 1e3, min(times["after"]["set_image"]) * 1e3
    print(f"| set_image (per image) | {args.images} | {before:.3f} | {after:.3f} | {before / after:.2f}x | |")


if __name__ == "__main__":
    main()
