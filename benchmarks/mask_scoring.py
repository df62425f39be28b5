"""MaskScoring's cost: the published region score against camseg's fitted default, and branch
and bound against scoring every candidate region.

Times the prompt step of the two CAM pipelines (foreground, and foreground +
background, sharing their regions as ``camseg evaluate`` does) on test images,
clean and degraded, counts the images the classifier sees while scoring, and
reports the foreground hit rate of each way. The baseline is the published
score (``SimilarityScore``, every region competing), measured in the same run.
The exhaustive variant of the default scores every shortlisted region before
choosing: it must give the same points as branch and bound, image by image
(``batched=False``) and batched over the images (the default), checked here.

    python benchmarks/mask_scoring.py --images 100
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from camseg.data.dataset import ShapesDataset, degrade, normalize
from camseg.models.classifier import default_cam, load_checkpoint
from camseg.pipelines.pipeline import ForegroundBackgroundPipeline, ForegroundPointsPipeline
from camseg.prompting.regions import MaskScoring, SimilarityScore
from camseg.segmenters import get_segmenter


@dataclass
class ExhaustiveMaskScoring(MaskScoring):
    """Scores every competing region before choosing (what branch and bound avoids); image by
    image, through :meth:`choose` (``batched=False``)."""

    batched: bool = False

    def choose(self, ctx, i):
        entry = self._scores(ctx, i)
        competing = np.flatnonzero(np.isfinite(entry["bound"]))
        if len(competing):
            self._score(entry, competing)
        return super().choose(ctx, i)


def run(strategy: MaskScoring, model, cam, x, masks, batch):
    seg = get_segmenter("offline")
    fg = ForegroundPointsPipeline(model, seg, cam=cam, strategy=replace(strategy, n_background=0, name="foreground"))
    fb = ForegroundBackgroundPipeline(model, seg, cam=cam,
                                      strategy=replace(strategy, n_background=2, name="foreground_background"))
    seen = [0]
    handle = model.register_forward_hook(lambda mod, inp, out: seen.__setitem__(0, seen[0] + len(inp[0])))
    points, seconds, total = [], 0.0, 0
    try:
        for s in range(0, len(x), batch):
            ctx = fg.context(x[s:s + batch])
            seen[0] = 0  # the context's own forward is not scoring
            t0 = time.perf_counter()
            p1, p2 = fg.prompts(None, context=ctx), fb.prompts(None, context=ctx)
            seconds += time.perf_counter() - t0
            points.append((p1.point_coords, p2.point_coords, p2.point_labels))
            total += seen[0]
    finally:
        handle.remove()
    fg_xy = np.concatenate([p[0][:, 0] for p in points])
    h, w = masks.shape[1:]
    hit = masks[np.arange(len(masks)), np.clip(np.round(fg_xy[:, 1]).astype(int), 0, h - 1),
                np.clip(np.round(fg_xy[:, 0]).astype(int), 0, w - 1)].mean()
    return seconds, total, points, float(hit)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="artifacts/data")
    p.add_argument("--checkpoint", default="artifacts/classifier-efficientnet_lite0.pt")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--batch", type=int, default=50)
    args = p.parse_args()
    model, meta = load_checkpoint(args.checkpoint)
    cam = default_cam(model, meta["arch"])
    images, _, masks = ShapesDataset(args.data, "test").arrays(progress=False)
    images, masks = images[: args.images], masks[: args.images]
    print(f"# MaskScoring prompts for 2 pipelines, {len(images)} test images, {meta['arch']}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads")
    print("| images | way | classifier images | wall (s) | s per image | time vs published | fg hit |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    ways = (("published score (similarity, all regions)", MaskScoring(scorer=SimilarityScore(), shortlist=0)),
            ("default (fitted score, 24 regions), exhaustive", ExhaustiveMaskScoring()),
            ("default (fitted score, 24 regions), branch and bound", MaskScoring(batched=False)),
            ("default (fitted score, 24 regions), batched branch and bound", MaskScoring()))
    for tag, imgs in (("clean", images), ("degraded", degrade(images))):
        x = normalize(imgs)
        res = [run(s, model, cam, x, masks, args.batch) for _, s in ways]
        base = res[0][0]
        for (name, _), (sec, seen, _, hit) in zip(ways, res, strict=True):
            print(f"| {tag} | {name} | {seen} | {sec:.1f} | {sec / len(imgs):.3f} | {sec / base:.2f}x | {hit:.3f} |")
        same = all(np.array_equal(a, b) for other in (res[2][2], res[3][2])
                   for pa, pb in zip(res[1][2], other, strict=True) for a, b in zip(pa, pb, strict=True))
        print(f"| {tag} | exhaustive and both branch and bounds give the same points | {same} | | | | |")


if __name__ == "__main__":
    main()
