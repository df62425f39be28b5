"""MaskScoring: branch and bound against scoring every candidate region (the obvious way).

Both choose the same regions and points (checked here); branch and bound
shows the classifier only the regions whose upper bound (CAM support x
agreement, since the classifier's similarity is at most 1) can still beat
the best score found. Times the prompt step of the two CAM pipelines
(foreground, foreground+background, sharing their regions as ``evaluate``
does) on test images, clean and degraded, and counts the images the
classifier sees.

    python benchmarks/mask_scoring.py --images 100
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from camseg.classifier import default_target_layers, load_checkpoint
from camseg.data import ShapesDataset, degrade, normalize
from camseg.pipelines import ForegroundBackgroundPipeline, ForegroundPointsPipeline
from camseg.prompts import MaskScoring
from camseg.segmenters import get_segmenter


class ExhaustiveMaskScoring(MaskScoring):
    """Scores every region before choosing (baseline)."""

    def _best(self, ctx, i, entry, cam_mean):
        self._score(ctx, i, entry, np.arange(len(entry["masks"])))
        return super()._best(ctx, i, entry, cam_mean)


def run(kind, model, layers, x, batch):
    seg = get_segmenter("offline")
    fg = ForegroundPointsPipeline(model, seg, layers, strategy=kind(n_background=0, name="foreground"))
    fb = ForegroundBackgroundPipeline(model, seg, layers, strategy=kind(n_background=2, name="foreground_background"))
    seen = [0]
    handle = model.register_forward_hook(lambda mod, inp, out: seen.__setitem__(0, seen[0] + len(inp[0])))
    points, seconds = [], 0.0
    try:
        for s in range(0, len(x), batch):
            ctx = fg.context(x[s:s + batch])
            seen[0] -= len(x[s:s + batch])  # the context's own forward is not scoring
            t0 = time.perf_counter()
            p1, p2 = fg.prompts(None, context=ctx), fb.prompts(None, context=ctx)
            seconds += time.perf_counter() - t0
            points.append((p1.point_coords, p2.point_coords, p2.point_labels))
    finally:
        handle.remove()
    return seconds, seen[0], points


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="artifacts/data")
    p.add_argument("--checkpoint", default="artifacts/classifier-efficientnet_lite0.pt")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--batch", type=int, default=50)
    args = p.parse_args()
    model, meta = load_checkpoint(args.checkpoint)
    layers = default_target_layers(model, meta["arch"])
    images = ShapesDataset(args.data, "test").arrays(progress=False)[0][: args.images]
    print(f"# MaskScoring prompts for 2 pipelines, {len(images)} test images, {meta['arch']}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads")
    print("| images | way | classifier images | wall (s) | s per image | time vs exhaustive |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for tag, imgs in (("clean", images), ("degraded", degrade(images))):
        x = normalize(imgs)
        base = run(ExhaustiveMaskScoring, model, layers, x, args.batch)
        fast = run(MaskScoring, model, layers, x, args.batch)
        same = all(np.array_equal(a, b) for pa, pb in zip(base[2], fast[2], strict=True)
                   for a, b in zip(pa, pb, strict=True))
        for name, (sec, seen, _) in (("exhaustive", base), ("branch and bound", fast)):
            print(f"| {tag} | {name} | {seen} | {sec:.1f} | {sec / len(imgs):.3f} | {sec / base[0]:.2f}x |")
        print(f"| {tag} | same points both ways | {same} | | | |")


if __name__ == "__main__":
    main()
