"""Region selection pieces: eval_mode, best_region, scorers, fitting, robustness summaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from camseg.evaluation.robustness import by_bins, failure_causes, mean_sd, seed_table
from camseg.models.cam import eval_mode
from camseg.prompting.regions import (
    FEATURES,
    LinearScore,
    Proposal,
    RegionEvidence,
    Regions,
    SimilarityScore,
    best_region,
    fit_linear_score,
)


def test_eval_mode_restores_each_modules_own_flag_even_on_error():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Dropout())
    net.train()
    net[1].eval()  # frozen statistics, deliberately
    with pytest.raises(RuntimeError):
        with eval_mode(net):
            assert not any(m.training for m in net.modules())
            raise RuntimeError("boom")
    assert [m.training for m in net.modules()] == [True, True, False, True]


@pytest.mark.parametrize("seed", range(20))
def test_best_region_equals_exhaustive_argmax(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 30))
    exact = rng.random(k)
    bounds = exact + rng.random(k) * rng.integers(0, 2)  # valid upper bounds, some tight
    tie = rng.random(k)
    calls = []

    def score(idx):
        calls.extend(idx.tolist())
        return exact[idx]

    best, scores = best_region(bounds, score, tie)
    assert best == int(np.lexsort((tie, exact))[-1])
    assert len(set(calls)) == len(calls)  # never scored twice
    assert np.allclose(scores[~np.isnan(scores)], exact[~np.isnan(scores)])


def test_best_region_rejects_empty():
    with pytest.raises(ValueError, match="non-empty"):
        best_region(np.zeros(0), lambda idx: idx)


def _evidence():
    masks = np.zeros((3, 8, 10), bool)
    masks[0, 1:4, 1:4] = True  # holds the CAM peak
    masks[1, 5:8, 6:10] = True
    masks[2, :, :] = True
    masks[2, 1:4, 1:4] = False
    cam = np.zeros((8, 10), np.float32)
    cam[2, 2] = 1.0
    cam[1:4, 1:4] += 0.5
    return RegionEvidence(Regions(masks, np.array([4, 1, 2])), np.clip(cam, 0, 1), 0)


def test_cam_features_known_answers():
    ev = _evidence()
    f = ev.features(names=("peak_inside", "area", "border", "agreement"))
    assert f["peak_inside"].tolist() == [1.0, 0.0, 0.0]  # region 2 lies 2 px from the peak: beyond dilation 1
    assert f["area"].tolist() == pytest.approx([9 / 80, 12 / 80, 71 / 80])
    assert f["border"][0] == 0.0 and f["border"][2] == 1.0
    assert f["agreement"].tolist() == pytest.approx(list(1 - np.exp(-np.array([4, 1, 2]) / 4)))
    with pytest.raises(ValueError, match="unknown features"):
        ev.features(names=("colour",))
    with pytest.raises(ValueError, match="needs the classifier"):
        ev.features(names=("keep",))


def test_linear_score_bound_bounds_the_score(tiny_model):
    rng = np.random.default_rng(0)
    image = torch.randn(3, 8, 10)
    ev = _evidence()
    ev = RegionEvidence(ev.regions, ev.cam, 0, tiny_model, image)
    for _ in range(10):
        w = tuple((f, float(rng.normal())) for f in ("cam_support", "similarity", "keep", "deletion", "area"))
        s = LinearScore(w, float(rng.normal()))
        assert (s.score(ev, np.arange(3)) <= s.bound(ev) + 1e-12).all()
    s = SimilarityScore()
    assert (s.score(ev, np.arange(3)) <= s.bound(ev) + 1e-12).all()


def test_fit_linear_score_learns_the_separating_feature():
    rng = np.random.default_rng(0)
    feats, hits = [], []
    for _ in range(60):
        good = rng.random(5) < 0.3
        feats.append({"cam_support": np.where(good, 0.8, 0.2) + rng.normal(0, 0.05, 5), "area": rng.random(5)})
        hits.append(good)
    s = fit_linear_score(feats, hits, ("cam_support", "area"))
    w = dict(s.weights)
    assert w["cam_support"] > 2 and abs(w["area"]) < w["cam_support"] / 3
    with pytest.raises(ValueError, match="both kinds"):
        fit_linear_score([{"area": np.ones(3)}], [np.ones(3, bool)], ("area",))


def test_proposal_points_are_xy_and_on_the_grid():
    cam = np.zeros((9, 12), np.float32)
    cam[7, 10] = 1.0  # row 7, col 10: on the stride-3 grid (offset 1)
    pts = Proposal(threshold=0.5, stride=3).points(cam)
    assert pts.tolist() == [[10.0, 7.0]]


def test_mean_sd_and_bins_and_seed_table():
    assert mean_sd([1.0]) == (1.0, 0.0)
    with pytest.raises(ValueError):
        mean_sd([])
    with pytest.raises(ValueError, match="increasing"):
        by_bins([1], [1], [2, 1])
    res = {"set": [{"n_images": 4, "classifier_accuracy": a,
                    "pipelines": {"foreground_background": {"fg_hit_rate": a, "iou": a, "bg_hit_rate": 0.0},
                                  "oracle": {"iou": 1.0}}} for a in (0.9, 1.0)]}
    row = seed_table(res)[0]
    assert row["seeds"] == 2 and row["iou"][0] == pytest.approx(0.95)
    assert row["iou"][1] == pytest.approx(np.std([0.9, 1.0], ddof=1))
    assert "fg_hit_published" not in row  # no seed scored the published region score
    for r, before in zip(res["set"], (0.8, 0.7), strict=True):
        r["strategies"] = {"mask_scoring_similarity": {"fg_hit_rate": before, "iou": before}}
    row = seed_table(res)[0]
    assert row["fg_hit_published"][0] == pytest.approx(0.75) and row["iou_published"][0] == pytest.approx(0.75)
    del res["set"][1]["strategies"]
    assert "fg_hit_published" not in seed_table(res)[0]  # only where every seed has it


def test_failure_causes_label_prompt_ignores_the_classifier():
    rec = {"label": [0, 1], "predicted": [2, 2], "cam_peak_hit": [1, 0], "fg_hit": {"p": [0, 0]},
           "iou": {"p": [0.0, 0.0]}}
    assert failure_causes(rec, "p", explain="top")["classifier"] == 2
    counts = failure_causes(rec, "p", explain="label")
    assert counts["region choice"] == 1 and counts["CAM"] == 1 and counts["classifier"] == 0


def test_compare_and_collect_on_a_known_image(redness_model):
    """The red square is what the redness classifier needs: classifier scorers pick it, its
    regions are labelled hits, and the features come out for every kept region."""
    from conftest import red_and_blue_image

    from camseg.data.dataset import normalize
    from camseg.evaluation.regionfit import collect_features, compare_scorers
    from camseg.prompting.prompts import PromptContext
    from camseg.prompting.regions import DeletionScore, KeepScore
    from camseg.segmenters import get_segmenter

    image, red = red_and_blue_image()
    cam = np.zeros((1, 48, 64), np.float32)
    cam[0, 5:45, 4:58] = 1.0
    ctx = PromptContext(image[None], normalize(image[None]), cam, np.zeros(1, np.int64), classifier=redness_model,
                        segmenter=get_segmenter("regiongrow"))
    hits = compare_scorers([ctx], red[None], [KeepScore(), DeletionScore()])
    assert hits == {"keep": 1.0, "deletion": 1.0}
    feats, labels = collect_features([ctx], red[None], top=4)
    assert len(feats) == 1 and set(feats[0]) == set(FEATURES) and labels[0].any()
    k = int(np.argmax(labels[0]))
    assert feats[0]["keep"][k] == max(feats[0]["keep"])


def test_shape_features_known_answers():
    masks = np.zeros((2, 40, 40), bool)
    masks[0, 2:12, 2:12] = True  # a filled square: convex
    masks[1, 15:36, 15:36] = True
    masks[1, 20:31, 20:31] = False  # a 21 x 21 frame around an 11 x 11 hole
    image = np.zeros((40, 40, 3), np.uint8)
    image[2:12, 2:12] = (255, 0, 0)  # a flat red square on black
    rng = np.random.default_rng(0)
    image[masks[1]] = rng.integers(0, 256, (int(masks[1].sum()), 3))  # a noisy frame
    ev = RegionEvidence(Regions(masks, np.ones(2, np.int64)), np.zeros((40, 40), np.float32), 0, image=image)
    f = ev.features(names=("solidity", "uniformity", "contrast"))
    # contours run through pixel centres: the frame's hull is 20 x 20 = 400 px for 320 px of region
    assert f["solidity"].tolist() == pytest.approx([1.0, 320 / 400])
    assert f["uniformity"][0] == 1.0 and f["uniformity"][1] == pytest.approx(0.0, abs=1e-9)  # std ~74 > 64
    assert f["contrast"][0] == pytest.approx(1.0)  # pure red against black: distance 255
    with pytest.raises(ValueError, match="needs the image"):
        RegionEvidence(ev.regions, ev.cam, 0).features(names=("uniformity",))
    with pytest.raises(ValueError, match="uint8 \\(H, W, 3\\)"):
        RegionEvidence(ev.regions, ev.cam, 0, image=image[:10])


class _RedDetector(nn.Module):
    """Logit of class 0 = 40 x (mean red of the normalised input + 2.118) - 4 (black: -4, so p = 0.005),
    the other four 0: a classifier that sees red, known by construction."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(3, 5)
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.zero_()
            self.head.weight[0, 0] = 40.0
            self.head.bias[0] = 40.0 * 0.485 / 0.229 - 4.0

    def forward(self, x):
        return self.head(self.pool(x).flatten(1))


def test_removal_takes_the_object_away_where_deletion_leaves_its_silhouette():
    from camseg.data.dataset import normalize

    image = np.zeros((24, 32, 3), np.uint8)
    image[8:16, 10:18] = (255, 0, 0)
    masks = np.zeros((2, 24, 32), bool)
    masks[0, 8:16, 10:18] = True  # the red square
    masks[1, 0:6, 0:6] = True  # black background
    model = _RedDetector().eval()
    ev = RegionEvidence(Regions(masks, np.ones(2, np.int64)), np.zeros((24, 32), np.float32), 0, model,
                        normalize(image[None])[0], image=image)
    removal = ev.removal(np.arange(2))
    assert removal[0] > 0.5 and removal[1] == pytest.approx(0.0, abs=1e-6)
    assert 0.0 <= removal.min() and removal.max() <= 1.0
    assert ev.classifier_images == 2
    ev.removal(np.arange(2))  # cached: no more classifier runs
    assert ev.classifier_images == 2


def test_the_default_score_is_the_recorded_fit():
    import json
    from pathlib import Path

    from camseg.evaluation.regionfit import FITTED_FEATURES
    from camseg.prompting.regions import FITTED_SCORE, MaskScoring

    fit = json.loads((Path(__file__).parents[1] / "results" / "regionfit.json").read_text())
    recorded = fit["fitted"]["fitted"]
    assert [f for f, _ in FITTED_SCORE.weights] == list(FITTED_FEATURES) == list(recorded["weights"])
    assert dict(FITTED_SCORE.weights) == pytest.approx(recorded["weights"], abs=5e-5)
    assert FITTED_SCORE.bias == pytest.approx(recorded["bias"], abs=5e-5)
    # it was kept because it beat the published score on the half of the validation set it was not fitted on
    held_out = fit["fg_hit_compare_half"]
    assert held_out["fitted"] > held_out["similarity"]
    assert MaskScoring().scorer == FITTED_SCORE and MaskScoring().shortlist >= fit["top"]


def test_regionfit_pools_classifiers_and_compares_each(tiny_dataset, tiny_checkpoint, fake_cifar, tmp_path,
                                                       monkeypatch):
    """``python -m camseg.evaluation.regionfit`` with two classifiers: one pooled fit, a comparison per
    classifier and their mean; an --n the validation set cannot give is refused."""
    import json
    import shutil
    from dataclasses import replace

    from camseg.data import profiles
    from camseg.evaluation import regionfit

    monkeypatch.setenv("CAMSEG_CIFAR10", str(fake_cifar))
    # large shapes inside the image: the tiny classifier's regions then hold hits and misses to fit
    monkeypatch.setattr(profiles, "WIDE", replace(profiles.WIDE, across=(20.0, 32.0), border=0.0))
    second = tmp_path / "second.pt"
    shutil.copy(tiny_checkpoint, second)
    out = tmp_path / "fit.json"
    argv = ["--data", str(tiny_dataset), "--checkpoint", str(tiny_checkpoint), str(second), "--n", "4", "--top", "3",
            "--segmenter", "floodfill", "--json", str(out)]
    assert regionfit.main(argv) == 0
    fit = json.loads(out.read_text())
    per = fit["fg_hit_compare_half_per_checkpoint"]
    assert fit["checkpoints"] == [str(tiny_checkpoint), str(second)] and list(per) == fit["checkpoints"]
    assert per[str(tiny_checkpoint)] == per[str(second)]  # the same weights give the same choices
    assert fit["fg_hit_compare_half"] == pytest.approx(per[str(second)])
    assert fit["n_fit"] == fit["n_compare"] == 2
    assert set(fit["fitted"]["fitted"]["weights"]) == set(regionfit.FITTED_FEATURES)
    with pytest.raises(ValueError, match=r"--n must lie in 2\.\.5"):
        regionfit.main(argv[:5] + ["--n", "50"])


def test_candidate_cap_is_the_one_chosen_on_validation_data():
    """``max_candidates`` is the smallest cap of ``results/candidates-val.txt`` that loses at most
    one validation image of any set against the largest cap (the rule its docstring states)."""
    import re
    from pathlib import Path

    from camseg.prompting.regions import MaskScoring

    text = (Path(__file__).parents[1] / "results" / "candidates-val.txt").read_text()
    rows = re.findall(r"^\| (\w+) \((\d+)\) \| (\d+) \| [\d.]+ ± [\d.]+ \| ([\d. /]+) \|", text, re.M)
    hits: dict[str, dict[int, int]] = {}
    for name, n, cap, per_seed in rows:
        hits.setdefault(name, {})[int(cap)] = round(sum(float(v) * int(n) for v in per_seed.split(" / ")))
    assert set(hits) == {"wide", "border", "lowcontrast"}
    caps = sorted(next(iter(hits.values())))
    ok = [c for c in caps if all(h[max(caps)] - h[c] <= 1 for h in hits.values())]
    assert MaskScoring().max_candidates == Proposal().max_candidates == min(ok) == 64


def test_foreground_hits_checks_each_images_first_point():
    """Known answer: the first point of each image against its mask, over several contexts in order."""
    from types import SimpleNamespace

    from camseg.evaluation.regionfit import foreground_hits
    from camseg.prompting.prompts import Prompts

    masks = np.zeros((3, 4, 6), bool)
    masks[:, 1:3, 2:5] = True  # rows 1-2, columns 2-4
    firsts = {0: [[3.0, 1.0], [0.0, 0.0]], 1: [[5.0, 2.0]]}  # (x, y): on, off | off (column 5)
    contexts = [SimpleNamespace(batch=2, classifier=nn.Linear(1, 1), key=0),
                SimpleNamespace(batch=1, classifier=nn.Linear(1, 1), key=1)]

    def strategy(ctx):
        first = np.array(firsts[ctx.key], np.float32)[:, None]
        return Prompts(np.concatenate([first, first], 1), np.array([[1, 0]] * ctx.batch))

    assert foreground_hits(strategy, contexts, masks).tolist() == [True, False, False]
    assert foreground_hits(strategy, [], masks[:0]).shape == (0,)
