"""The real evaluation path with a tiny random SAM: every pipeline, the oracle and
the mask-scoring candidates are served from one embedding per image."""

from __future__ import annotations

import pytest

pytest.importorskip("segment_anything")

from test_sam import EncoderCounter, tiny_sam  # noqa: E402

from camseg.evaluation.evaluate import evaluate  # noqa: E402
from camseg.segmenters import SamSegmenter  # noqa: E402


def test_encoder_runs_once_per_image_for_all_pipelines(tiny_dataset, tiny_checkpoint):
    model = tiny_sam()
    counter = EncoderCounter(model)
    try:
        seg = SamSegmenter(model=model, name="sam-tiny")
        result = evaluate(tiny_dataset, tiny_checkpoint, seg, split="test", progress=False, batch_size=5)
    finally:
        counter.remove()
    n = result["n_images"]
    assert n == 5
    assert result["segmenter"] == "sam-tiny"
    assert counter.images == n  # 4 pipelines + candidate regions, yet each image encoded once
    assert seg.images_encoded == n
    for m in result["pipelines"].values():
        assert 0.0 <= m["iou"] <= 1.0
