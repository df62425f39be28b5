"""camseg.publishing.book: the glue values the chapters quote, the reproducibility box, the derived arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from camseg.publishing import book


def _pipe(iou, fg, bg=None):
    return {"iou": iou, "fg_hit_rate": fg, "fg_distance": 1.0, "bg_hit_rate": bg, "bg_distance": None,
            "per_class_iou": {}}


def _eval(shift):
    return {"n_images": 500, "segmenter": "regiongrow", "classifier_accuracy": 0.99 - shift,
            "pipelines": {"center": _pipe(0.35, 0.354), "foreground": _pipe(0.99 - shift, 0.998),
                          "foreground_background": _pipe(0.991 - shift, 0.998, 0.002),
                          "oracle": _pipe(0.992 - shift / 2, 1.0)},
            "strategies": {"center": {"fg_hit_rate": 0.354}, "cam_argmax": {"fg_hit_rate": 0.70 + shift},
                           "cam_centroid": {"fg_hit_rate": 0.88}, "cam_interior": {"fg_hit_rate": 0.85},
                           "mask_scoring": {"fg_hit_rate": 0.998 - shift}}}


@pytest.fixture()
def parts():
    return {"segmenter": "regiongrow", "clean": _eval(0.0), "degraded": _eval(0.06),
            "meta": {"arch": "efficientnet_lite0", "test_accuracy": 0.996, "val_accuracy": 1.0, "best_epoch": 5,
                     "epochs": 6, "train_seconds": 480.0, "initial_weights": "ImageNet", "seed": 0},
            "cam_study": {"rows": [
                {"method": "Grad-CAM", "layers": ["backbone._blocks.10"], "default": True, "mass_inside": 0.37,
                 "pointing_game": 0.71},
                {"method": "Grad-CAM++", "layers": ["backbone._blocks.10"], "default": False, "mass_inside": 0.3,
                 "pointing_game": 0.6},
                {"method": "Grad-CAM", "layers": ["backbone._blocks.15"], "default": False, "mass_inside": 0.2,
                 "pointing_game": 0.8}],
                "cam_only_iou": {"0.3": 0.40, "0.4": 0.45}, "cam_slic_iou": {"0.5": 0.5}}}


@pytest.fixture()
def res(make_artifacts, parts):
    return make_artifacts(**parts)


def test_glue_values_are_the_results(res):
    v = book.glue_values(res)
    assert v["iou_fb"] == 0.991 and v["iou_fb_deg"] == pytest.approx(0.931)
    assert v["gap_oracle"] == pytest.approx(0.001) and v["loss_oracle"] == pytest.approx(0.03)
    assert v["cam_only"] == 0.45 and v["cam_only_t"] == 0.4 and v["cam_slic_t"] == 0.5
    assert v["cam_default_layer"] == "_blocks.10" and v["cam_pp_pg"] == 0.6
    assert v["cam_best_pg"] == 0.8 and v["cam_best_pg_name"] == "Grad-CAM on _blocks.15"
    assert v["pr_cam_argmax_deg"] == pytest.approx(0.76) and v["train_minutes"] == 8.0
    assert "rises for CAM maximum (0.700 → 0.760)" in v["pr_degradation"]
    assert "falls for mask scoring, foreground + background" in v["pr_degradation"]
    assert all(isinstance(x, (int, float, str)) for x in v.values())
    assert v["oracle_gap"] == "0.001 below the oracle click (0.992)"  # no seeds: no noise scale
    assert v["background_change"] == "raises the IoU from 0.990 to 0.991"
    assert v["acc"] == 0.996 and v["acc_vote"] == 0.99  # the top class; the class the CAM explains
    assert "--suite-size 0" in v["findings_md"] and v["suite_iou"] == "–"
    assert "the pipeline loses more (0.060 against 0.030)" in v["degraded_cause"]


def test_comparison_sentences_follow_the_numbers():
    v = {"iou_fb": 0.757, "iou_oracle": 0.996, "iou_fb_deg": 0.757, "iou_oracle_deg": 0.958, "loss_fb": 0.0,
         "loss_oracle": 0.038, "hit_fb": 0.76, "hit_fb_deg": 0.79}
    s = book.comparison_sentences(v)
    assert s["oracle_gap"] == "0.239 below the oracle click (0.996)"
    assert s["degraded_cause"].startswith("Degrading the images (noise, then JPEG) leaves the pipeline’s IoU the same "
                                          "(0.757) and lowers that of the oracle click from 0.996 to 0.958: the "
                                          "prompts hold")


def test_degradation_sentence_states_the_sampling_error():
    s = book.degradation_sentence({"center": {"fg_hit_rate": 0.5}}, {"center": {"fg_hit_rate": 0.5}}, 100)
    assert "stays the same for image centre (0.500)" in s and "0.100" in s  # 2 * sqrt(0.25 / 100)


def test_reproducibility_markdown(res, tmp_path):
    profile = tmp_path / "build-profile.json"
    profile.write_text(json.dumps({"stages": [{"stage": "dataset", "seconds": 12.3, "note": "cached"},
                                              {"stage": "book", "seconds": 61.0, "note": "done"}],
                                   "total_seconds": 73.3}))
    md = book.reproducibility_markdown(res, profile)
    assert md.startswith("| item | value |\n|---|---|\n")
    for needle in ("dataset 0, training 0", "regiongrow", "efficientnet_lite0", "CPUs", "torch ",
                   "dataset 12 s (cached); book 61 s (done); total 73 s"):
        assert needle in md, needle
    missing = book.reproducibility_markdown(res, tmp_path / "none.json")
    assert "no build profile yet" in missing
    profile.write_text(json.dumps({"stages": [{"stage": "dataset", "seconds": 12.3, "note": "computed"}],
                                   "total_seconds": 12.3, "complete": False}))
    assert "dataset 12 s (computed); total 12 s before the book (the book, the report" in \
        book.reproducibility_markdown(res, profile)


def test_book_views_and_failures(make_artifacts, parts):
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 8, 10), bool)
    masks[:, 2:6, 3:8] = True
    b = book.Book(make_artifacts(**parts, images=rng.integers(0, 255, (3, 8, 10, 3), dtype=np.uint8),
                                 labels=np.array([0, 1, 2]), masks=masks))
    assert b.segmenter == "regiongrow" and not b.is_sam and b.arch == "efficientnet_lite0"
    assert "stand-in for SAM" in b.backend_sentence()
    res2 = make_artifacts(**{**parts, "segmenter": "sam-vit_b"})
    assert "made by SAM" in book.Book(res2).backend_sentence()
    # derived arrays without a model: inject them as a chapter's kernel would have computed them
    pred = masks.copy()
    pred[2] = ~masks[2]
    b.__dict__["predictions"] = {"foreground_background": {
        "masks": pred, "point_coords": np.array([[[5.0, 3.0]]] * 3), "point_labels": np.ones((3, 1), int)}}
    b.__dict__["predicted"] = np.array([0, 1, 2])
    b.__dict__["_cam_output"] = (masks.astype(np.float32), np.array([0, 1, 2]))
    assert b.ious().tolist() == [1.0, 1.0, 0.0]
    f = b.failures()
    assert f.n_failures == 1 and f.kinds[2] == "small shape"  # 20 px < 150 px, point on the shape


@pytest.mark.parametrize("name, expected", [
    ("floodfill", "asked for by name"),
    ("auto", "could not be downloaded"),  # conftest closes SAM's download address: auto falls back
])
def test_backend_sentence_says_why_in_plain_words(make_artifacts, parts, name, expected):
    from camseg.segmenters.choice import choose_backend

    choice = choose_backend(name)
    b = book.Book(make_artifacts(**{**parts, "segmenter": choice.name, "reason": choice.reason, "requested": name}))
    sentence = b.backend_sentence()
    assert expected in sentence and "http" not in sentence and "/" not in sentence.replace("`", "")


def test_a_build_without_the_shift_suite_still_makes_the_robustness_chapter(make_artifacts):
    from camseg.evaluation import robustness
    from camseg.publishing import tables, viz
    from camseg.publishing.findings import suite_findings

    s = book.Book(make_artifacts()).suite
    assert s.sets == {} and s.seeds == ()
    f = suite_findings(s)
    assert f is None and tables.suite_table(f).rows == () and "not built" in tables.suite_table(f).title
    assert tables.suite_detail_table(f).rows == () and tables.failures_suite_table(f).rows == ()
    assert tables.per_seed_table(s.sets.get("standard", []), s.seeds).rows == ()
    frames = robustness.condition_frames(s.sets)
    assert tables.condition_table(frames).rows == () and tables.strategies_suite_table(s.sets).rows == ()
    fig = viz.by_condition(frames, "regiongrow")
    assert "no shift suite" in " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def _untrained_book(make_artifacts, images, masks, labels):
    """A Book over these arrays with a randomly initialised EfficientNet-Lite0 (seed 0), in eval mode."""
    import torch

    from camseg.models.classifier import build_classifier

    torch.manual_seed(0)
    model, _ = build_classifier("efficientnet_lite0", pretrained=False)
    model.eval()
    return model, book.Book(make_artifacts(model=model, meta={"arch": "efficientnet_lite0"}, images=images,
                                           masks=masks, labels=labels))


def test_layer_breakdown_rows_are_each_layer_their_mean_and_the_pipelines_cam(make_artifacts):
    from camseg.data.dataset import normalize
    from camseg.models.cam import GradCAM
    from camseg.models.classifier import ARCHITECTURES, default_cam, default_target_layers

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    masks = np.zeros((2, 48, 64), bool)
    masks[1, 5:20, 10:30] = True
    model, b = _untrained_book(make_artifacts, images, masks, np.zeros(2, np.int64))
    rows, maps, row_masks, titles = b.layer_breakdown(1)
    layers = ARCHITECTURES["efficientnet_lite0"].target_layers
    assert titles == [n.replace("backbone.", "") for n in layers] + ["mean of the layers", "with the mirror image"]
    assert rows.shape == (5, 48, 64, 3) and (rows == images[1]).all() and (row_masks == masks[1]).all()
    x = normalize(images[1:2])
    pipeline = default_cam(model, "efficientnet_lite0").compute(x)  # explains the flips' vote
    plain = GradCAM(model, default_target_layers(model, "efficientnet_lite0")).compute(x, pipeline.targets)
    np.testing.assert_allclose(maps[:3], plain.layer_maps[:, 0], atol=1e-6)
    np.testing.assert_allclose(maps[3], maps[:3].mean(0), atol=1e-6)
    np.testing.assert_allclose(maps[4], pipeline.maps[0], atol=1e-6)


def test_other_class_explains_the_class_offset_places_after_the_label(make_artifacts):
    import torch

    from camseg.data.dataset import normalize
    from camseg.data.shapes import CLASSES
    from camseg.models.cam import GradCAM
    from camseg.models.classifier import default_target_layers

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
    masks = rng.random((3, 48, 64)) > 0.5
    labels = np.array([0, 3, 4])
    model, b = _untrained_book(make_artifacts, images, masks, labels)
    rows, maps, row_masks, titles = b.other_class([2, 0], offset=2)
    assert (rows == images[[2, 0]]).all() and (row_masks == masks[[2, 0]]).all()
    # labels 4 and 0: two places further (wrapping) are classes 1 and 2
    out = GradCAM(model, default_target_layers(model, "efficientnet_lite0")).compute(normalize(images[[2, 0]]),
                                                                                    targets=[1, 2])
    np.testing.assert_allclose(maps, out.maps, atol=1e-6)
    p = torch.softmax(torch.from_numpy(out.logits), 1).numpy()
    assert titles == [f"test 2: {CLASSES[4]}\nexplains {CLASSES[1]}, p = {p[0, 1]:.2f}",
                      f"test 0: {CLASSES[0]}\nexplains {CLASSES[2]}, p = {p[1, 2]:.2f}"]
