"""camseg evaluate / segment on the tiny dataset (offline backend)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from camseg.cli import main
from camseg.evaluation.evaluate import evaluate, write_json
from camseg.publishing.tables import format_table
from camseg.segmenters import get_segmenter

KEYS = {"iou", "fg_hit_rate", "fg_distance", "bg_hit_rate", "bg_distance", "seconds"}


@pytest.fixture(scope="module")
def result(tiny_dataset, tiny_checkpoint):
    return evaluate(tiny_dataset, tiny_checkpoint, get_segmenter("regiongrow"), split="test", progress=False,
                    batch_size=3, keep_masks=True)


def test_result_shape(result):
    assert result["n_images"] == 5 and result["split"] == "test" and result["segmenter"] == "regiongrow"
    assert set(result["pipelines"]) == {"center", "foreground", "foreground_background", "oracle"}
    for m in result["pipelines"].values():
        assert KEYS <= set(m)
        assert 0.0 <= m["iou"] <= 1.0
    assert result["pipelines"]["foreground"]["bg_hit_rate"] is None
    assert result["pipelines"]["foreground_background"]["n_bg"] == 10
    assert 0.0 <= result["classifier_accuracy"] <= 1.0
    assert {"center", "cam_argmax", "cam_centroid", "cam_interior", "mask_scoring"} <= set(result["strategies"])


def test_oracle_is_the_segmenters_upper_bound(result, tiny_dataset):
    from camseg.data.dataset import ShapesDataset
    from camseg.evaluation.metrics import iou_per_image

    oracle = result["pipelines"]["oracle"]
    assert oracle["fg_hit_rate"] == 1.0  # the oracle point is inside the mask by construction
    assert oracle["iou"] > 0.9  # flat shapes on clean images: region growing from inside recovers them
    _, _, gts = ShapesDataset(tiny_dataset, "test").arrays()
    recomputed = iou_per_image(result["_masks"]["oracle"], gts).mean()
    assert recomputed == pytest.approx(oracle["iou"])
    # the centre baseline's fg hit rate is what the centre point gives on these masks
    hits = gts[:, 23, 31].mean()
    assert result["pipelines"]["center"]["fg_hit_rate"] == pytest.approx(hits)


def test_write_json_and_table(result, tmp_path):
    path = write_json(result, tmp_path / "out" / "r.json")
    loaded = json.loads(path.read_text())
    assert loaded["pipelines"]["oracle"]["iou"] == result["pipelines"]["oracle"]["iou"]
    assert "_masks" not in loaded
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]
    table = format_table(result)
    assert "oracle point" in table and "CAM foreground + background points" in table and "regiongrow" in table
    assert "foreground_background" not in table and "cam_argmax" not in table  # plain names, as in the book


def test_cli_evaluate_and_segment(tiny_dataset, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "e.json"
    code = main(["evaluate", "--data", str(tiny_dataset), "--split", "val", "--checkpoint", str(tiny_checkpoint),
                 "--segmenter", "offline", "--json", str(out), "--degraded", "--device", "cpu"])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["split"] == "val" and data["degraded"] is True and data["n_images"] == 5
    assert data["device"] == "cpu" and data["segmenter"] == "regiongrow"  # resolved, never "auto"
    assert "oracle" in capsys.readouterr().out
    image = tiny_dataset / "images" / "test" / "00000.png"
    mask_path = tmp_path / "m.png"
    code = main(["segment", str(image), "--checkpoint", str(tiny_checkpoint), "--segmenter", "offline",
                 "--target", "star", "--out", str(mask_path)])
    assert code == 0
    mask = np.array(Image.open(mask_path))
    assert mask.shape == (48, 64) and set(np.unique(mask)) <= {0, 255}
    assert "class 'star'" in capsys.readouterr().out


def test_cli_bad_inputs(tiny_dataset, tiny_checkpoint, tmp_path, capsys):
    code = main(["segment", str(tmp_path / "nope.png"), "--checkpoint", str(tiny_checkpoint), "--out",
                 str(tmp_path / "m.png"), "--segmenter", "offline"])
    assert code == 2 and "cannot read image" in capsys.readouterr().err
    code = main(["segment", str(tiny_dataset / "images" / "test" / "00000.png"), "--checkpoint",
                 str(tiny_checkpoint), "--target", "hexagon", "--out", str(tmp_path / "m.png"),
                 "--segmenter", "offline"])
    assert code == 2 and "unknown class name 'hexagon'" in capsys.readouterr().err
    code = main(["evaluate", "--data", str(tmp_path), "--checkpoint", str(tiny_checkpoint), "--segmenter", "offline"])
    assert code == 2 and "missing" in capsys.readouterr().err
    code = main(["evaluate", "--data", str(tiny_dataset), "--checkpoint", str(tiny_checkpoint), "--segmenter", "nope"])
    assert code == 2 and "nope" in capsys.readouterr().err
    if not torch.cuda.is_available():
        code = main(["evaluate", "--data", str(tiny_dataset), "--checkpoint", str(tiny_checkpoint), "--segmenter",
                     "offline", "--device", "cuda"])
        assert code == 2 and "CUDA is not available" in capsys.readouterr().err


def test_explain_label_prompts_with_the_labelled_class(tiny_dataset, tiny_checkpoint, monkeypatch):
    """--explain label: Grad-CAM is asked for each image's labelled class; the result keeps the keys
    of the book's Reference › Evaluation results."""
    from camseg.data.dataset import ShapesDataset
    from camseg.evaluation import evaluate as ev

    asked = []
    real = ev.BasicSamPipeline.context

    def spy(self, images, targets=None):
        asked.append(None if targets is None else list(np.asarray(targets)))
        return real(self, images, targets)

    monkeypatch.setattr(ev.BasicSamPipeline, "context", spy)
    res = evaluate(tiny_dataset, tiny_checkpoint, get_segmenter("regiongrow"), split="test", progress=False,
                   batch_size=5, explain="label")
    _, labels, _ = ShapesDataset(tiny_dataset, "test").arrays()
    assert asked == [labels.tolist()]
    assert res["explain"] == "label" and res["device"] == "cpu"
    assert {"segmenter", "device", "explain", "n_images", "classifier_accuracy", "classifier", "pipelines"} <= set(res)
    for m in res["pipelines"].values():
        assert KEYS <= set(m)
    rec = res["per_image"]
    assert rec["label"] == labels.tolist() and len(rec["iou"]["foreground_background"]) == 5
    with pytest.raises(ValueError, match="explain must be 'top' or 'label'"):
        evaluate(tiny_dataset, tiny_checkpoint, get_segmenter("regiongrow"), explain="class", progress=False)
