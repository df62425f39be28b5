"""camseg.build.artifacts: keys, caches, settings from the environment, and one small real build."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
import torch

from camseg.build import artifacts, suite
from camseg.build.artifacts import ArtifactKey, Artifacts, Settings
from camseg.data.profiles import SHIFT_PROFILES
from camseg.models.classifier import load_checkpoint

KEY = ArtifactKey("fakeseg", "cpu", "ab" * 32, "0.1.0", 0, "resnet18", 10)


def _eval(degraded: bool) -> dict:
    p = {"iou": 0.5, "fg_hit_rate": 0.9, "fg_distance": 1.0, "bg_hit_rate": None, "bg_distance": None, "seconds": 1.0}
    return {"split": "test", "degraded": degraded, "n_images": 10, "segmenter": "fakeseg", "device": "cpu",
            "classifier_accuracy": 0.9, "pipelines": {"center": p}, "strategies": {}, "artifact_key": KEY.as_json()}


@pytest.fixture()
def cached(tmp_path):
    (tmp_path / "eval").mkdir()
    for degraded in (False, True):
        (tmp_path / "eval" / f"test-{'degraded' if degraded else 'clean'}.json").write_text(json.dumps(_eval(degraded)))
    fake = {"segmenter": "fakeseg", "artifact_key": KEY.as_json(), "_masks": {"center": np.zeros((10, 4, 8), bool)},
            "_points": {"center": (np.zeros((10, 1, 2)), np.ones((10, 1), int))}}
    artifacts._save_predictions(fake, tmp_path / "eval" / "test-clean-masks.npz")
    return tmp_path


def test_eval_cache_is_reused_without_recomputing(cached, monkeypatch):
    monkeypatch.setattr(artifacts, "run_evaluation", lambda *a, **k: pytest.fail("recomputed"))
    both = artifacts._evaluations(cached / "data", cached / "c.pt", KEY, cached / "eval", True, print,
                                  lambda: pytest.fail("segmenter made"))
    assert not both["clean"][0]["degraded"] and both["degraded"][0]["degraded"]
    assert both["clean"][1] == cached / "eval" / "test-clean-masks.npz" and both["degraded"][1] is None
    loaded = artifacts.load_predictions(both["clean"][1])
    assert loaded["segmenter"] == "fakeseg" and loaded["pipelines"]["center"]["masks"].shape == (10, 4, 8)


@pytest.mark.parametrize("change", [{"backend": "floodfill"}, {"device": "cuda"}, {"checkpoint_sha256": "cd" * 32},
                                    {"camseg_version": "0.2.0"}, {"seed": 1}, {"n_test": 11}])
def test_any_change_of_what_was_used_makes_the_cache_stale(cached, change):
    other = dataclasses.replace(KEY, **change)
    assert artifacts._current_evaluation(KEY, False, cached / "eval", True) is not None
    assert artifacts._current_evaluation(other, False, cached / "eval", False) is None


def test_one_segmenter_serves_both_evaluations_in_turn(cached, monkeypatch):
    for f in (cached / "eval").iterdir():
        f.unlink()
    made, used = [], []
    sam_key = dataclasses.replace(KEY, backend="sam-vit_b")  # SAM: in turn, in this process

    def fake_run(data, ckpt, key, degraded, eval_dir, threads=None, segmenter=None):
        used.append(segmenter)
        res = _eval(degraded) | {"artifact_key": key.as_json()}
        (eval_dir / f"test-{'degraded' if degraded else 'clean'}.json").write_text(json.dumps(res))
        artifacts._save_predictions({**res, "_masks": {"center": np.zeros((10, 4, 8), bool)},
                                     "_points": {"center": (np.zeros((10, 1, 2)), np.ones((10, 1), int))}},
                                    eval_dir / f"test-{'degraded' if degraded else 'clean'}-masks.npz")

    monkeypatch.setattr(artifacts, "run_evaluation", fake_run)
    seg = object()

    def shared():
        made.append(1)
        return seg

    artifacts._evaluations(cached / "data", cached / "c.pt", sam_key, cached / "eval", True, print, shared)
    assert used == [seg, seg]


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("CAMSEG_SEGMENTER", "floodfill")
    monkeypatch.setenv("CAMSEG_DEVICE", "cpu")
    monkeypatch.setenv("CAMSEG_SIZES", "train=20, val=5,test=5")
    monkeypatch.setenv("CAMSEG_EPOCHS", "1")
    s = Settings.from_env(seed=3)
    assert (s.segmenter, s.device, s.sizes, s.epochs, s.seed) == (
        "floodfill", "cpu", (("train", 20), ("val", 5), ("test", 5)), 1, 3)
    assert Settings.from_env(segmenter="grabcut").segmenter == "grabcut"  # an argument wins
    assert Settings.from_env(segmenter="auto", device="auto").segmenter == "floodfill"  # "auto" gives way
    assert Settings.from_env(segmenter="auto", device="auto").device == "cpu"
    monkeypatch.setenv("CAMSEG_SIZES", "train:20")
    with pytest.raises(ValueError, match="CAMSEG_SIZES must look like 'train=40,val=10,test=10', got 'train:20'"):
        Settings.from_env()


def test_a_small_real_build_is_typed_keyed_and_cached(tmp_path, fake_cifar, monkeypatch):
    """Dataset, classifier, evaluations and CAM study from the fake CIFAR copy; a second build
    in a fresh process (memo cleared) computes nothing."""
    monkeypatch.setenv("CAMSEG_CIFAR10", str(fake_cifar))
    monkeypatch.setenv("CAMSEG_SIZES", "train=10,val=5,test=5")
    monkeypatch.setenv("CAMSEG_EPOCHS", "1")
    monkeypatch.setenv("CAMSEG_SUITE_SIZE", "0")  # the seeds and the suite: test_seeds_and_shift_suite (slow)
    monkeypatch.setattr(artifacts, "_MEMO", {})
    lines: list[str] = []
    res = artifacts.build_artifacts(tmp_path, arch="resnet18", segmenter="floodfill", device="cpu",
                                    log=lines.append)
    assert isinstance(res, Artifacts)
    assert res.backend.name == "floodfill" and res.device == "cpu" and res.key.device == "cpu"
    assert res.key.checkpoint_sha256 == artifacts.file_sha256(res.checkpoint)
    assert res.clean.n_images == 5 and res.clean.device == "cpu" and res.clean.pipelines["oracle"] is not None
    assert 0.0 <= res.clean.pipelines["foreground_background"].iou <= 1.0
    assert res.cam_study.default_row is not None and res.images.shape == (5, 48, 64, 3)
    saved = json.loads((tmp_path / "eval" / "test-clean.json").read_text())
    assert saved["device"] == "cpu" and saved["artifact_key"] == res.key.as_json()
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.device = "cuda"
    assert res.clean.raw["pipelines"]["center"]["iou"] == res.clean.pipelines["center"].iou
    assert artifacts.build_artifacts(tmp_path, arch="resnet18", segmenter="floodfill", device="cpu") is res  # memo
    monkeypatch.setattr(artifacts, "_MEMO", {})
    monkeypatch.setattr(artifacts, "run_evaluation", lambda *a, **k: pytest.fail("recomputed"))
    monkeypatch.setattr(suite, "evaluate_to", lambda *a, **k: pytest.fail("recomputed"))
    again = artifacts.build_artifacts(tmp_path, arch="resnet18", segmenter="floodfill", device="cpu",
                                      log=lines.append)
    assert again.clean.raw == res.clean.raw
    assert res.meta["recipe"] == "wide" and res.suite is None
    # a checkpoint trained on another shape distribution (WIDE changed since) is not reused
    assert res.meta["recipe_details"] == suite.recipe_details("wide") and res.meta["recipe_details"]["border"] > 0
    monkeypatch.setattr(suite, "recipe_details", lambda recipe: {**res.meta["recipe_details"], "border": 0.0})
    logs: list[str] = []
    suite.seed_checkpoints(res.data, tmp_path, "resnet18", [0], "wide", logs.append, 1, "cpu")
    assert any("another shape distribution); retraining" in line for line in logs), logs
    assert load_checkpoint(res.checkpoint)[1]["recipe_details"]["border"] == 0.0


@pytest.mark.slow
def test_seeds_and_shift_suite(tmp_path, fake_cifar, monkeypatch):
    """Two seeds on the standard split and every shift set (3 images each), cached; the
    distractor set is evaluated with a class-name prompt."""
    monkeypatch.setenv("CAMSEG_CIFAR10", str(fake_cifar))
    monkeypatch.setenv("CAMSEG_SIZES", "train=10,val=5,test=5")
    monkeypatch.setenv("CAMSEG_EPOCHS", "1")
    monkeypatch.setenv("CAMSEG_SEEDS", "2")
    monkeypatch.setenv("CAMSEG_SUITE_SIZE", "3")
    monkeypatch.setattr(artifacts, "_MEMO", {})
    res = artifacts.build_artifacts(tmp_path, arch="resnet18", segmenter="floodfill", device="cpu", log=print)
    assert res.meta["recipe"] == "wide" and res.suite.seeds == (0, 1)
    assert set(res.suite.sets) == {"standard", *SHIFT_PROFILES}
    for name, per_seed in res.suite.sets.items():
        assert [r["n_images"] for r in per_seed] == [5 if name == "standard" else 3] * 2
        assert {r["explain"] for r in per_seed} == {"label" if name == "distractor" else "top"}
    assert (tmp_path / "classifier-resnet18-seed1.pt").is_file()
    assert json.loads((tmp_path / "eval" / "seeds" / "summary.json").read_text())["seeds"] == [0, 1]
    monkeypatch.setattr(artifacts, "_MEMO", {})
    monkeypatch.setattr(suite, "evaluate_to", lambda *a, **k: pytest.fail("recomputed"))
    again = artifacts.build_artifacts(tmp_path, arch="resnet18", segmenter="floodfill", device="cpu", log=print)
    assert again.suite.sets["plain"][1] == res.suite.sets["plain"][1]


def test_auto_offline_falls_back_within_seconds(monkeypatch, tmp_path):
    """No cached weights and a download location that does not answer (a non-routable address)."""
    from camseg.segmenters import choose_backend

    monkeypatch.setenv("CAMSEG_CACHE", str(tmp_path))
    monkeypatch.delenv("CAMSEG_SAM_CHECKPOINT", raising=False)
    monkeypatch.setenv("CAMSEG_SAM_BASE_URL", "http://10.255.255.1/")
    t0 = time.perf_counter()
    choice = choose_backend("auto")  # the default bound, REACH_TIMEOUT = 3 s
    assert time.perf_counter() - t0 < 10.0
    assert choice.name == "regiongrow" and choice.is_fallback
    assert "cannot be reached" in choice.reason and "10.255.255.1" in choice.reason


def test_chapters_inherit_why_the_build_chose_its_backend(monkeypatch):
    """`camseg build` resolves `auto` once and hands the chapters the backend and its reason."""
    from camseg.build.artifacts import resolve_backend

    monkeypatch.setenv("CAMSEG_SEGMENTER", "regiongrow")
    assert resolve_backend(None).reason == "asked for regiongrow"  # alone, the name reads as a request
    monkeypatch.setenv("CAMSEG_SEGMENTER_REASON", "SAM weights were not found (test)")
    assert resolve_backend(None).reason == "SAM weights were not found (test)"
    assert resolve_backend("floodfill").reason == "asked for floodfill"  # another backend keeps its own


def test_camseg_version_carries_a_digest_of_the_source():
    import re

    from camseg.build.keys import camseg_version

    assert re.fullmatch(r".+\+src\.[0-9a-f]{12}", camseg_version())


def test_presentation_modules_left_out_of_the_digest_exist():
    from pathlib import Path

    import camseg
    from camseg.build.keys import PRESENTATION_MODULES, is_presentation

    here = Path(camseg.__file__).parent
    assert all((here / name).is_dir() if name.endswith("/") else (here / name).is_file()
               for name in PRESENTATION_MODULES)
    computing = ["evaluation/evaluate.py", "prompting/regions.py", "prompting/prompts.py", "models/cam.py",
                 "build/artifacts.py", "data/dataset.py", "segmenters/offline.py"]
    assert not any(is_presentation(m) for m in computing)
    assert is_presentation("publishing/tables.py") and is_presentation("cli.py")


def test_the_source_digest_ignores_prose_but_not_code():
    import ast

    from camseg.build.keys import code_only

    base = 'def f(x):\n    """Doc."""\n    return x + 1\n\nK = 2\n"""K\'s docstring."""\n'
    prose = 'def f(x):\n    """Other words."""\n    # a comment\n    return x + 1  # more\n\nK = 2\n"""New."""\n'
    code = 'def f(x):\n    """Doc."""\n    return x + 2\n\nK = 2\n"""K\'s docstring."""\n'
    digest = [code_only(ast.parse(t)) for t in (base, prose, code)]
    assert digest[0] == digest[1] != digest[2]


def test_cam_study_marks_the_pipelines_cam_as_default():
    """With an augmented CAM (EfficientNet) the default row is that CAM on the default layers,
    scored like the others; plain Grad-CAM on those layers is a row of its own."""
    from camseg.data.dataset import normalize
    from camseg.models.analysis import pointing_game
    from camseg.models.classifier import ARCHITECTURES, build_classifier, default_cam

    torch.manual_seed(0)
    model, _ = build_classifier("efficientnet_lite0", pretrained=False)
    model.eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 48, 64, 3), dtype=np.uint8)
    masks = np.zeros((4, 48, 64), bool)
    masks[:, 10:30, 20:45] = True
    study = artifacts.cam_study(model, "efficientnet_lite0", images, masks, batch_size=2)
    defaults = [r for r in study["rows"] if r["default"]]
    layers = list(ARCHITECTURES["efficientnet_lite0"].target_layers)
    assert len(defaults) == 1 and defaults[0]["layers"] == layers
    assert defaults[0]["method"] == default_cam(model, "efficientnet_lite0").description
    assert any(r["method"] == "Grad-CAM" and r["layers"] == layers and not r["default"] for r in study["rows"])
    expected = pointing_game(default_cam(model, "efficientnet_lite0")(normalize(images)), masks).mean()
    assert defaults[0]["pointing_game"] == pytest.approx(expected)
