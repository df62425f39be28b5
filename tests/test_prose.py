"""camseg.publishing.prose and every sentence generated from numbers: ties, differences within the
seed-sd and large differences, with both signs, never read wrong."""

from __future__ import annotations

import re

import pytest

from camseg.publishing import book, prose

WRONG = (re.compile(r"\bfrom (\d\.\d{3}) to \1\b"), re.compile(r"within 0\.0+\b"), re.compile(r"-0\.0+\b"),
         re.compile(r"\bnan\b", re.I), re.compile(r"loses -"))
"""What a generated sentence must never say: "from X to X", "within 0.000", "-0.000", NaN, "loses -0.02"."""


def _reads_right(text: str) -> None:
    for pattern in WRONG:
        assert not pattern.search(text), f"{pattern.pattern!r} in {text!r}"


# (a, b, sd, relation of a to b)
CASES = [
    pytest.param(0.9941, 0.9944, 0.002, "same", id="tie"),
    pytest.param(0.9944, 0.9941, None, "same", id="tie-no-sd"),
    pytest.param(0.992, 0.994, 0.004, "within noise", id="tiny-below"),
    pytest.param(0.996, 0.994, 0.004, "within noise", id="tiny-above"),
    pytest.param(0.900, 0.950, 0.010, "lower", id="large-below"),
    pytest.param(0.950, 0.900, 0.010, "higher", id="large-above"),
    pytest.param(0.992, 0.994, None, "lower", id="small-no-sd"),
    pytest.param(0.994, 0.990, 0.004, "higher", id="exactly-one-sd"),
]


@pytest.mark.parametrize("a, b, sd, relation", CASES)
def test_compare(a, b, sd, relation):
    c = prose.compare(a, b, sd)
    assert c.relation == relation
    assert c.differs == (relation in ("higher", "lower"))
    assert float(c.size) == pytest.approx(abs(float(prose.num(a)) - float(prose.num(b))), abs=1e-9)


def test_compare_uses_the_printed_numbers():
    # 0.99349 and 0.99351 print as 0.993 and 0.994: a difference of 0.001, never "0.000 below"
    c = prose.compare(0.99349, 0.99351)
    assert c.relation == "lower" and c.size == "0.001"
    assert prose.num(-0.0001) == "0.000"


@pytest.mark.parametrize("a, b, sd, relation", CASES)
def test_change_reads_right(a, b, sd, relation):
    """``change(before=b, after=a)``: how a change moves a number."""
    text = prose.change(b, a, sd)
    _reads_right(text)
    expected = {"same": "leaves the IoU the same", "within noise": "only within noise",
                "higher": "raises the IoU from", "lower": "lowers the IoU from"}[relation]
    assert expected in text
    if relation == "within noise":
        assert f"less than one seed-sd, {prose.num(sd)}" in text


@pytest.mark.parametrize("a, b, sd, relation", CASES)
def test_gap_reads_right(a, b, sd, relation):
    text = prose.gap(a, b, sd, "a perfect click")
    _reads_right(text)
    expected = {"same": "the same as a perfect click", "within noise": "within noise of a perfect click",
                "higher": "above a perfect click", "lower": "below a perfect click"}[relation]
    assert text.startswith(expected) or expected in text


def _values(fg, fb, oracle, loss_fb, loss_oracle):
    return {"iou_fg": fg, "iou_fb": fb, "iou_oracle": oracle, "iou_fb_deg": fb - loss_fb,
            "iou_oracle_deg": oracle - loss_oracle, "loss_fb": loss_fb, "loss_oracle": loss_oracle,
            "hit_fb": 0.998, "hit_fb_deg": 0.97}


@pytest.mark.parametrize("fg, fb, oracle, loss_fb, loss_oracle, sd, words", [
    # the case: everything 0.994 ("from 0.994 to 0.994", "within 0.000")
    (0.9941, 0.9943, 0.9944, 0.030, 0.0304, 0.001,
     ("leaves the IoU the same (0.994)", "the same as the oracle click (0.994)", "the pipeline loses no more",
      "lowers the pipeline’s IoU from 0.994 to 0.964")),
    # tiny differences, both signs, below the seed-sd
    (0.990, 0.993, 0.995, 0.031, 0.029, 0.004,
     ("only within noise (0.990 → 0.993", "within noise of the oracle click", "the pipeline loses no more")),
    (0.995, 0.992, 0.990, 0.029, 0.031, 0.004,
     ("only within noise (0.995 → 0.992", "within noise of the oracle click", "the pipeline loses no more")),
    # large differences, both signs
    (0.90, 0.95, 0.99, 0.10, 0.03, 0.01,
     ("raises the IoU from 0.900 to 0.950", "0.040 below the oracle click (0.990)",
      "the pipeline loses more (0.100 against 0.030)")),
    (0.95, 0.90, 0.85, 0.03, 0.10, 0.01,
     ("lowers the IoU from 0.950 to 0.900", "0.050 above the oracle click (0.850)", "the pipeline loses less")),
    # noise and JPEG help the pipeline (a negative loss): never "loses -0.020"
    (0.95, 0.95, 0.99, -0.02, 0.03, 0.01,
     ("raises the pipeline’s IoU from 0.950 to 0.970", "the prompts hold")),
    # only the pipeline drops: the prompts, not the segmenter
    (0.95, 0.95, 0.99, 0.05, 0.0, 0.01,
     ("leaves that of the oracle click the same (0.990)", "the drop comes from the prompts")),
    # no seeds: only ties are told apart
    (0.992, 0.994, 0.995, 0.05, 0.03, None,
     ("raises the IoU from 0.992 to 0.994", "0.001 below the oracle click", "the pipeline loses more")),
])
def test_comparison_sentences_read_right(fg, fb, oracle, loss_fb, loss_oracle, sd, words):
    s = book.comparison_sentences(_values(fg, fb, oracle, loss_fb, loss_oracle), sd)
    text = " ".join(s.values())
    _reads_right(text)
    for w in words:
        assert w in text, (w, s)


@pytest.mark.parametrize("clean, degraded, words", [
    (0.700, 0.7001, "stays the same for CAM maximum (0.700)"),
    (0.700, 0.720, "changes only within chance for CAM maximum (0.700 → 0.720)"),
    (0.720, 0.700, "changes only within chance for CAM maximum (0.720 → 0.700)"),
    (0.700, 0.800, "rises for CAM maximum (0.700 → 0.800)"),
    (0.800, 0.700, "falls for CAM maximum (0.800 → 0.700)"),
])
def test_degradation_sentence_reads_right(clean, degraded, words):
    s = book.degradation_sentence({"cam_argmax": {"fg_hit_rate": clean}}, {"cam_argmax": {"fg_hit_rate": degraded}},
                                  500)
    _reads_right(s)
    assert words in s


def _run(iou, oracle, hit=0.98, acc=0.99, explain="top", n=100, fail=0):
    per_image = {"label": [0] * n, "predicted": [0] * n, "cam_peak_hit": [1] * n,
                 "fg_hit": {"foreground_background": [1] * (n - fail) + [0] * fail},
                 "iou": {"foreground_background": [0.95] * (n - fail) + [0.0] * fail}}
    return {"n_images": n, "classifier_accuracy": acc, "explain": explain, "per_image": per_image,
            "pipelines": {"foreground_background": {"iou": iou, "fg_hit_rate": hit, "bg_hit_rate": 0.01},
                          "oracle": {"iou": oracle}}}


def _suite(standard=(0.9941, 0.9943, 0.9942), oracle=0.9944):
    return {"standard": [_run(x, oracle) for x in standard],
            "plain": [_run(0.95, 0.96), _run(0.94, 0.96), _run(0.96, 0.96)],
            "lowcontrast_border": [_run(0.60, 0.61, fail=30), _run(0.62, 0.61, fail=28), _run(0.58, 0.61, fail=32)],
            "jpeg95": [_run(0.93, 0.95)] * 3, "jpeg50": [_run(0.80, 0.85, fail=10)] * 3,
            "distractor": [_run(0.85, 0.9, acc=0.52, explain="label")] * 3}


def test_findings_read_right_on_a_saturated_split():
    from camseg.publishing.findings import findings, next_steps, suite_findings

    f = suite_findings(_suite())
    sentences = findings(f, "regiongrow", ["0.870 for quantumFeline/DNN-all"])
    text = " ".join(s.text for s in sentences)
    _reads_right(text)
    assert "the same as a perfect click (0.994)" in text and "no longer tells methods apart" in text
    assert "weakest on faint shapes cut by the border (IoU 0.600" in text and "segmenter is the limit" in text
    assert "all fail because the CAM peaked on the shape but another region won" in text
    assert "lowers the IoU from 0.930 to 0.800" in text and "stand-in for SAM" in text
    assert f.get("distractor").accuracy is None  # a top-class accuracy of a two-shape image is left out
    steps = " ".join(next_steps(f, "regiongrow"))
    assert "several objects" not in steps and "named shape" in steps and "saturated" in steps


def test_findings_of_a_split_that_is_not_saturated_say_so():
    from camseg.publishing.findings import findings, suite_findings

    text = " ".join(s.text for s in findings(suite_findings(_suite((0.90, 0.91, 0.89), 0.99)), "sam-vit_b"))
    _reads_right(text)
    assert "0.090 below a perfect click" in text and "saturated" not in text and "made by SAM" in text


def test_findings_without_a_suite():
    from camseg.publishing.findings import findings, suite_findings

    assert suite_findings({}) is None
    text = " ".join(s.text for s in findings(None, "regiongrow"))
    assert "--suite-size 0" in text
