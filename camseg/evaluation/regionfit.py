"""Choosing MaskScoring's region scorer on validation data, never on the test sets.

* :func:`validation_contexts`: classifier + Grad-CAM on a validation set, as
  :class:`~camseg.prompting.prompts.PromptContext` batches ready for any scorer.
* :func:`compare_scorers`: the foreground hit rate each scorer's choice gets
  on those contexts (regions and evidence are computed once and shared).
* :func:`collect_features` and :func:`camseg.prompting.regions.fit_linear_score`: the
  evidence features of each image's strongest candidate regions, labelled
  by whether the region's foreground point lands on the object, and a
  logistic combination fitted to them.

Conventions: images uint8 (N, H, W, 3), masks bool (N, H, W).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from camseg.models.cam import BaseCAM, eval_mode
from camseg.prompting.prompts import PromptContext, deepest_point
from camseg.prompting.regions import FEATURES, MaskScoring, RegionScorer, shortlist

__all__ = ["collect_features", "compare_scorers", "foreground_hits", "main", "validation_contexts"]


def validation_contexts(model: nn.Module, cam: BaseCAM, images: np.ndarray, segmenter: object,
                        targets: np.ndarray | None = None, batch_size: int = 50) -> list[PromptContext]:
    """Classifier and CAM (e.g. :func:`camseg.models.classifier.default_cam`) outputs for ``images``
    in batches (top class unless ``targets``)."""
    from camseg.data.dataset import normalize
    from camseg.pipelines.pipeline import BasicSamPipeline

    pipe = BasicSamPipeline(model, segmenter, cam=cam)
    out = []
    for start in range(0, len(images), batch_size):
        t = None if targets is None else targets[start:start + batch_size]
        out.append(pipe.context(normalize(images[start:start + batch_size]), t))
    return out


def foreground_hits(strategy, contexts: Sequence[PromptContext], masks: np.ndarray) -> np.ndarray:
    """Whether ``strategy``'s first point lies on the object, per image: bool (N,) for the N images
    of ``contexts`` (from :func:`validation_contexts`, in order) and their masks bool (N, H, W).
    The classifier runs in eval mode (each module's own mode restored)."""
    hits, start = [], 0
    for ctx in contexts:
        with eval_mode(ctx.classifier):
            prompts = strategy(ctx)
        hits.append(fg_hits_of_points(masks[start:start + ctx.batch], prompts.point_coords[:, 0]))
        start += ctx.batch
    return np.concatenate(hits) if hits else np.zeros(0, bool)


def fg_hits_of_points(masks: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Whether each point lands on its mask: bool (N,) for masks bool (N, H, W) and points float (N, 2)
    in (x, y) pixels, rounded and clipped to the image."""
    h, w = masks.shape[1:]
    return np.array([m[min(max(int(round(y)), 0), h - 1), min(max(int(round(x)), 0), w - 1)]
                     for m, (x, y) in zip(masks, points, strict=True)])


def compare_scorers(contexts: Sequence[PromptContext], masks: np.ndarray, scorers: Sequence[RegionScorer],
                    base: MaskScoring | None = None) -> dict[str, float]:
    """Foreground hit rate of MaskScoring with each scorer on the same contexts.

    Args:
        contexts: from :func:`validation_contexts`.
        masks: bool (N, H, W), the ground truth of the N images in the contexts.
        scorers: the scorers to compare (names must differ).
        base: the MaskScoring settings other than the scorer (default: the defaults).

    Returns:
        scorer name -> fraction of images whose foreground point is on the shape.
    """
    from dataclasses import replace

    base = base or MaskScoring()
    out = {}
    for scorer in scorers:
        strategy = replace(base, scorer=scorer, n_background=0, name=f"cmp_{scorer.name}")
        out[scorer.name] = float(foreground_hits(strategy, contexts, masks).mean())
    return out


def collect_features(contexts: Sequence[PromptContext], masks: np.ndarray, base: MaskScoring | None = None,
                     top: int = 12, names: Sequence[str] = FEATURES
                     ) -> tuple[list[dict[str, np.ndarray]], list[np.ndarray]]:
    """Evidence features and labels of each image's ``top`` candidate regions.

    Regions are ranked by CAM support x agreement (:func:`camseg.prompting.regions.shortlist`,
    the same cheap ranking ``MaskScoring(shortlist=top)`` uses) and the first
    ``top`` kept, so fitting costs at most ``3 * top`` classifier runs per image.

    Returns:
        ``(features, hits)``: per image ``{feature: (k,)}`` and bool (k,), True
        where the region's deepest point lies on the object.
    """
    base = base or MaskScoring()
    features, hits = [], []
    offset = 0
    for ctx in contexts:
        for i in range(ctx.batch):
            ev = base.evidence(ctx, i)
            gt = masks[offset + i]
            if not len(ev):
                continue
            order = shortlist(ev, top)
            with eval_mode(ctx.classifier):
                features.append(ev.features(order, names))
            pts = np.stack([deepest_point(ev.regions.masks[k], ctx.cams[i]) for k in order])
            hits.append(fg_hits_of_points(np.repeat(gt[None], len(order), 0), pts))
        offset += ctx.batch
    return features, hits


FITTED_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if f != "deletion")
"""What :func:`main` fits the default scorer on (``deletion`` costs a classifier run per region and
measured worst of all, so it is left out)."""

CAM_FEATURES: tuple[str, ...] = ("cam_support", "cam_mass", "peak_inside", "agreement", "area", "border")


def _validation_images(args) -> tuple[np.ndarray, np.ndarray]:
    """The first ``args.n`` images uint8 (N, H, W, 3) and masks bool (N, H, W) of the wide
    validation set of the dataset at ``args.data``."""
    from camseg.data.cifar import resolve_cifar10
    from camseg.data.dataset import SPLITS, read_manifest
    from camseg.data.profiles import WIDE
    from camseg.data.sets import validation_set

    manifest = read_manifest(args.data) or {}
    images, _, masks = validation_set(resolve_cifar10(), WIDE, int(manifest.get("seed", 0)),
                                      manifest.get("sizes", SPLITS))
    if not 2 <= args.n <= len(images):
        raise ValueError(f"--n must lie in 2..{len(images)} (the wide validation set's size), got {args.n}")
    return images[:args.n], masks[:args.n]


def classifier_and_cam(checkpoint: str) -> tuple[nn.Module, BaseCAM]:
    """The classifier at ``checkpoint`` and its default CAM."""
    from camseg.models.classifier import default_cam, load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    return model, default_cam(model, meta["arch"])


def _report(out: dict, path: str | None) -> int:
    import json

    print(json.dumps(out, indent=2))
    if path:
        from pathlib import Path

        Path(path).write_text(json.dumps(out, indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m camseg.evaluation.regionfit --data DIR --checkpoint CKPT [CKPT ...]``
    (``[--n 800] [--top 12] [--json OUT]``):
    fit :class:`~camseg.prompting.regions.LinearScore` on the first half of the wide validation set of the
    dataset at DIR (CIFAR-10 train photos of its val split), pooling the regions of every
    classifier given, and compare every scorer's foreground hit on both halves for each classifier
    (and their mean); the second half is data the fit never saw."""
    import argparse
    import time

    from camseg.prompting.regions import (
        FITTED_SCORE,
        CamSupportScore,
        KeepScore,
        LinearScore,
        RemovalScore,
        SimilarityScore,
        fit_linear_score,
    )

    parser = argparse.ArgumentParser(prog="python -m camseg.evaluation.regionfit", description=main.__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--checkpoint", required=True, nargs="+",
                        help="one or more classifiers (e.g. the build's seeds): the fit pools their regions, "
                             "the comparison is made for each")
    parser.add_argument("--segmenter", default="regiongrow")
    parser.add_argument("--n", type=int, default=800, help="validation images (half fit, half compare)")
    parser.add_argument("--top", type=int, default=12, help="regions per image that compete (shortlist)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--shortlists", default=None,
                        help="e.g. 12,24,0: instead of fitting, compare the published and the default score "
                             "with each shortlist size on the held-out half and on the first N/2 images of the "
                             "dataset's own val split")
    args = parser.parse_args(argv)
    if args.shortlists:
        return _compare_shortlists(args, [int(k) for k in args.shortlists.split(",")])
    from camseg.segmenters import get_segmenter

    t0 = time.perf_counter()
    images, masks = _validation_images(args)
    seg = get_segmenter(args.segmenter)
    half = len(images) // 2
    base = MaskScoring(shortlist=args.top)
    feats, hits, contexts = [], [], {}
    for ckpt in args.checkpoint:
        model, cam = classifier_and_cam(ckpt)
        fit_ctx = validation_contexts(model, cam, images[:half], seg)
        f, h = collect_features(fit_ctx, masks[:half], base, args.top, FITTED_FEATURES)
        feats += f
        hits += h
        contexts[ckpt] = (fit_ctx, validation_contexts(model, cam, images[half:], seg))
    fitted: dict[str, LinearScore] = {}
    for name, names in (("linear_cam", CAM_FEATURES), ("fitted", FITTED_FEATURES)):
        sub = [{k: f[k] for k in names} for f in feats]
        score = fit_linear_score(sub, hits, names)
        fitted[name] = LinearScore(score.weights, score.bias, name=name)
    # the default in force, beside the fresh fit: a refit is worth adopting only if it beats it on held-out data
    current = LinearScore(FITTED_SCORE.weights, FITTED_SCORE.bias, name="current_default")
    scorers = [SimilarityScore(), KeepScore(), RemovalScore(), CamSupportScore(), current, *fitted.values()]
    on_fit = {ckpt: compare_scorers(fit_ctx, masks[:half], scorers, base) for ckpt, (fit_ctx, _) in contexts.items()}
    on_cmp = {ckpt: compare_scorers(cmp_ctx, masks[half:], scorers, base) for ckpt, (_, cmp_ctx) in contexts.items()}

    def mean(per: dict[str, dict[str, float]]) -> dict[str, float]:
        return {s.name: float(np.mean([v[s.name] for v in per.values()])) for s in scorers}

    return _report({"checkpoints": [str(c) for c in args.checkpoint], "n_fit": half, "n_compare": len(images) - half,
                    "top": args.top, "fg_hit_fit_half": mean(on_fit), "fg_hit_compare_half": mean(on_cmp),
                    "fg_hit_compare_half_per_checkpoint": on_cmp,
                    "fitted": {k: {"weights": dict(v.weights), "bias": v.bias} for k, v in fitted.items()},
                    "seconds": time.perf_counter() - t0}, args.json)


def _compare_shortlists(args, sizes: Sequence[int]) -> int:
    from camseg.data.dataset import ShapesDataset
    from camseg.prompting.regions import FITTED_SCORE, SimilarityScore
    from camseg.segmenters import get_segmenter

    wide, wide_masks = _validation_images(args)
    model, cam = classifier_and_cam(args.checkpoint[0])
    seg = get_segmenter(args.segmenter)
    half = len(wide) // 2
    std, _, std_masks = ShapesDataset(args.data, "val").arrays(progress=False)
    sets = {"wide val, held-out half": (wide[half:], wide_masks[half:]),
            "standard val": (std[:half], std_masks[:half])}
    out = {}
    for name, (images, masks) in sets.items():
        contexts = validation_contexts(model, cam, images, seg)
        out[name] = {str(k): compare_scorers(contexts, masks, [SimilarityScore(), FITTED_SCORE],
                                             MaskScoring(shortlist=k)) for k in sizes}
    return _report(out, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
