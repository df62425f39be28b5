"""``camseg evaluate`` does each piece of work once, with the same prompts and masks as the
straightforward path: the region choice once per image and score, region scoring batched over
the images, the flips' vote and region scoring reusing the CAM's forward passes, a segmented
prompt not segmented again."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from camseg.data.dataset import normalize
from camseg.evaluation.evaluate import evaluate
from camseg.models.cam import AugmentedCAM
from camseg.models.classifier import FlipVote, default_cam, flip_logits
from camseg.prompting import regions
from camseg.prompting.prompts import PromptContext
from camseg.prompting.regions import (
    FITTED_SCORE,
    CamSupportScore,
    DeletionScore,
    KeepScore,
    LinearScore,
    MaskScoring,
    RemovalScore,
    SimilarityScore,
    classifier_outputs,
)
from camseg.segmenters import RegionGrowSegmenter, get_segmenter
from camseg.segmenters.base import BaseSegmenter
from camseg.segmenters.offline import component_at




def _ctx(cams, images, targets, **kw):
    return PromptContext(images, normalize(images), cams, np.asarray(targets, np.int64), **kw)


SCORERS = [FITTED_SCORE, SimilarityScore(), KeepScore(), DeletionScore(), RemovalScore(), CamSupportScore(),
           # negative weights on classifier features: their lower and upper ends swap
           LinearScore((("cam_support", 2.0), ("similarity", -1.5), ("removal", 3.0), ("deletion", -0.5),
                        ("keep", 1.0), ("area", -1.0)), 0.5, name="mixed")]


@pytest.mark.parametrize("scorer", SCORERS, ids=lambda s: s.name)
def test_batched_choice_is_the_per_image_reference(tiny_model, scorer, blobs):
    """MaskScoring's batched search (every image's classifier runs in shared batches, bounds
    tightened run by run) picks the regions and distractors of the per-image branch and bound,
    with at most as many images through the classifier."""
    images, cams = blobs(np.random.default_rng(3), 4)
    targets = [0, 1, 2, 3]
    seen = [0]
    handle = tiny_model.register_forward_hook(lambda mod, inp, out: seen.__setitem__(0, seen[0] + len(inp[0])))
    out, chosen, runs = {}, {}, {}
    try:
        for batched in (False, True):
            # unsmoothed region growing keeps the background in many pieces: many regions compete
            ctx = _ctx(cams, images, targets, classifier=tiny_model, segmenter=RegionGrowSegmenter(smoothing=0))
            ms = MaskScoring(n_background=2, scorer=scorer, threshold=0.1, max_candidates=96, batched=batched)
            seen[0] = 0
            out[batched] = ms(ctx)
            runs[batched] = seen[0]
            chosen[batched] = ctx.extras["mask_scoring_regions"]
            assert len(ms.decide(ctx)) == len(images)  # cached: no more classifier runs
            assert seen[0] == runs[batched]
    finally:
        handle.remove()
    np.testing.assert_array_equal(out[True].point_coords, out[False].point_coords)
    np.testing.assert_array_equal(out[True].point_labels, out[False].point_labels)
    np.testing.assert_array_equal(chosen[True], chosen[False])
    assert runs[True] <= runs[False]


def test_removal_and_deletion_stay_within_their_known_range(tiny_model, blobs):
    """A probability drop is at most the whole image's probability: the bound the batched search
    uses before running the classifier holds for every region."""
    images, cams = blobs(np.random.default_rng(4), 2)
    ctx = _ctx(cams, images, [1, 4], classifier=tiny_model, segmenter=RegionGrowSegmenter(smoothing=0))
    ms = MaskScoring(threshold=0.1)
    for i in range(2):
        ev = ms.evidence(ctx, i)
        idx = np.arange(len(ev))
        names = ("removal", "deletion", "keep", "similarity")
        ranges = {f: ev.known_range(f, idx) for f in names}  # nothing run yet
        values = ev.features(idx, names)
        for f in names:
            low, high = ranges[f]
            assert (low == 0).all() and (high <= 1).all()
            assert ((low <= values[f]) & (values[f] <= high)).all()
            for end in ev.known_range(f, idx):  # known now: exact
                np.testing.assert_array_equal(end, values[f])
        assert (ranges["removal"][1] < 1).all()  # tighter than [0, 1]: the whole image's probability


def test_evaluate_chooses_each_region_once_per_image_and_score(tiny_dataset, tiny_checkpoint, monkeypatch):
    """Five MaskScoring strategies ask for a choice in ``camseg evaluate`` (the two CAM pipelines,
    the published-score baseline, twice each way); each image is searched once per region score."""
    searched, entries = [], {}
    real_search, real_scores = MaskScoring._search, MaskScoring._scores

    def search(self, entry, *args, **kwargs):
        searched.append(id(entry))
        return real_search(self, entry, *args, **kwargs)

    def scores(self, ctx, i):
        entry = real_scores(self, ctx, i)
        entries[id(entry)] = entry
        return entry

    monkeypatch.setattr(MaskScoring, "_search", search)
    monkeypatch.setattr(MaskScoring, "_scores", scores)
    res = evaluate(tiny_dataset, tiny_checkpoint, get_segmenter("regiongrow"), split="test", progress=False,
                   batch_size=3)
    assert len(entries) == 2 * res["n_images"]  # two region scores: the fitted default and the published one
    assert len(searched) == len(set(searched))  # never twice for one image and score
    assert set(searched) == {k for k, e in entries.items() if len(e["ev"])}

    # the per-image reference path too: one branch and bound per image and score
    calls = []
    real_best = regions.best_region
    monkeypatch.setattr(regions, "best_region", lambda *a, **k: calls.append(1) or real_best(*a, **k))
    entries.clear()
    evaluate(tiny_dataset, tiny_checkpoint, get_segmenter("regiongrow"), split="test", progress=False, batch_size=3,
             reference=True)
    assert len(calls) == sum(1 for e in entries.values() if len(e["ev"]))


def _strip(result: dict) -> dict:
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k != "seconds" and not k.startswith("_")}
        return [strip(v) for v in obj] if isinstance(obj, list) else obj
    return strip(result)


@pytest.mark.parametrize("degraded", [False, True])
def test_evaluate_gives_the_reference_paths_prompts_and_masks(tiny_dataset, tiny_checkpoint, monkeypatch, degraded):
    """The shared-work path and the straightforward one (``reference=True``) give equal points,
    masks and numbers; the shared one segments fewer prompts (the centre point once)."""
    prompts = [0]
    real_predict = BaseSegmenter.predict

    def predict(self, *args, **kwargs):
        prompts[0] += 1
        return real_predict(self, *args, **kwargs)

    monkeypatch.setattr(BaseSegmenter, "predict", predict)
    out, asked = {}, {}
    for reference in (True, False):
        prompts[0] = 0
        out[reference] = evaluate(tiny_dataset, tiny_checkpoint, get_segmenter("regiongrow"), split="test",
                                  progress=False, batch_size=3, keep_masks=True, degraded=degraded,
                                  reference=reference)
        asked[reference] = prompts[0]
    fast, ref = out[False], out[True]
    for name in ref["_masks"]:
        np.testing.assert_array_equal(fast["_masks"][name], ref["_masks"][name])
        for a, b in zip(fast["_points"][name], ref["_points"][name], strict=True):
            np.testing.assert_array_equal(a, b)
    assert _strip(fast) == _strip(ref)
    # the centre strategy reuses the centre pipeline's masks (and any other prompt made twice for an image)
    assert asked[False] <= asked[True] - ref["n_images"]


def test_flip_vote_reuses_the_cams_forward_passes(random_efficientnet):
    """default_cam's AugmentedCAM takes the vote's unflipped and mirrored logits from its own
    forward passes (4 model calls instead of 6) and gives the same maps, classes and scores; its
    probabilities and penultimate features are the classifier's on the same batch."""
    model = random_efficientnet
    cam = default_cam(model, "efficientnet_lite0")
    assert isinstance(cam, AugmentedCAM) and isinstance(cam.classify, FlipVote) and cam.share_passes
    x = torch.randn(3, 3, 48, 64, generator=torch.Generator().manual_seed(2))
    calls = [0]
    handle = model.register_forward_hook(lambda mod, inp, out: calls.__setitem__(0, calls[0] + 1))
    try:
        for targets in (None, [0, 3, 1]):
            calls[0] = 0
            shared = cam.compute(x, targets)
            n_shared = calls[0]
            calls[0] = 0
            ref = AugmentedCAM(cam.cam, flip=True, classify=lambda im: flip_logits(model, im),
                               share_passes=False).compute(x, targets)
            assert (n_shared, calls[0]) == (4, 6)
            np.testing.assert_array_equal(shared.maps, ref.maps)
            np.testing.assert_array_equal(shared.layer_maps, ref.layer_maps)
            np.testing.assert_array_equal(shared.targets, ref.targets)
            np.testing.assert_array_equal(shared.logits, ref.logits)
            np.testing.assert_array_equal(shared.logits, flip_logits(model, x).numpy())
    finally:
        handle.remove()
    probs, feats = classifier_outputs(model, x)
    assert torch.equal(shared.probs, probs) and torch.equal(shared.features, feats)
    with torch.inference_mode():  # works there too
        again = cam.compute(x, [0, 3, 1])
    np.testing.assert_array_equal(again.maps, shared.maps)
    np.testing.assert_array_equal(again.logits, shared.logits)


def test_relu6_in_place_changes_no_number(random_efficientnet):
    """EfficientNet-Lite's ReLU6 clip in place: the same outputs and gradients as out of place."""
    model = random_efficientnet
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU6)]
    assert relus and all(m.inplace for m in relus)
    plain = copy.deepcopy(model)
    for m in plain.modules():
        if isinstance(m, nn.ReLU6):
            m.inplace = False
    x = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(3))
    for train in (False, True):
        grads = []
        for net in (model, plain):
            net.train(train)
            xi = x.clone().requires_grad_(True)
            torch.manual_seed(5)  # the same dropout in train mode
            out = net(xi)
            params = [p for p in net.parameters() if p.requires_grad][-5:]
            grads.append((out.detach(), *torch.autograd.grad(out[:, 1].sum(), [xi, *params])))
        for a, b in zip(*grads, strict=True):
            assert torch.equal(a, b)
    model.eval()


@pytest.mark.parametrize("seed", range(5))
def test_component_at_is_the_labelled_component(seed):
    """The flood-filled component of the seed is the one connected-component labelling gives."""
    rng = np.random.default_rng(seed)
    mask = rng.random((48, 64)) < 0.55
    for _ in range(20):
        r, c = int(rng.integers(0, 48)), int(rng.integers(0, 64))
        got = component_at(mask, r, c)
        _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        if labels[r, c]:
            want = regions_fill(labels == labels[r, c])
        else:
            want = np.zeros_like(mask)
            want[r, c] = True
        np.testing.assert_array_equal(got, want)


def regions_fill(component: np.ndarray) -> np.ndarray:
    from camseg.segmenters.offline import fill_small_holes

    return fill_small_holes(component)


class _Opaque(BaseSegmenter):
    """A segmenter that is not an offline one (as SAM): each worker process could not hold its own copy cheaply."""

    name = "opaque"

    def _set_image(self, image):
        pass

    def _predict(self, *args, **kwargs):
        raise AssertionError("never asked")


def test_worker_processes_give_the_same_results(tiny_dataset, tiny_checkpoint):
    """Batches evaluated in two worker processes give the points, masks and numbers of one
    process (the same batches: region scoring is batched within a batch)."""
    out = {workers: evaluate(tiny_dataset, tiny_checkpoint, get_segmenter("regiongrow"), split="test",
                             progress=False, batch_size=3, keep_masks=True, degraded=True, workers=workers)
           for workers in (1, 2)}
    for name in out[1]["_masks"]:
        np.testing.assert_array_equal(out[2]["_masks"][name], out[1]["_masks"][name])
        for a, b in zip(out[2]["_points"][name], out[1]["_points"][name], strict=True):
            np.testing.assert_array_equal(a, b)
    assert _strip(out[2]) == _strip(out[1])


def test_workers_need_an_offline_segmenter_and_a_count(tiny_dataset, tiny_checkpoint):
    with pytest.raises(ValueError, match="workers=2 needs an offline segmenter"):
        evaluate(tiny_dataset, tiny_checkpoint, _Opaque(), split="test", progress=False, batch_size=3, workers=2)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers must be an integer >= 1"):
            evaluate(tiny_dataset, tiny_checkpoint, get_segmenter("regiongrow"), progress=False, workers=bad)


def test_auto_workers_uses_both_cores_for_an_offline_segmenter_on_a_cpu(monkeypatch):
    from camseg.evaluation import evaluate as E

    monkeypatch.setattr(E.os, "cpu_count", lambda: 2)
    assert E.auto_workers(RegionGrowSegmenter(), "cpu", 200, 50) == 2
    assert E.auto_workers(RegionGrowSegmenter(), "cpu", 50, 50) == 1  # one batch: nothing to share
    assert E.auto_workers(_Opaque(), "cpu", 200, 50) == 1  # SAM-like: each process would load it again
    monkeypatch.setattr(E.os, "cpu_count", lambda: 1)
    assert E.auto_workers(RegionGrowSegmenter(), "cpu", 200, 50) == 1
