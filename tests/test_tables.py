"""camseg.publishing.tables: one formatter for the book, the PDF and the CLI."""

from __future__ import annotations

import pytest

from camseg.build.artifacts import CamStudy
from camseg.publishing import tables
from camseg.publishing.tables import Column, Table


def _pipe(iou, fg, bg=None):
    return {"iou": iou, "fg_hit_rate": fg, "fg_distance": 1.25, "bg_hit_rate": bg,
            "bg_distance": None if bg is None else 30.0, "seconds": 2.0, "per_class_iou": {"circle": iou}}


def _result(degraded=False):
    return {"n_images": 10, "segmenter": "regiongrow", "degraded": degraded, "classifier_accuracy": 0.97,
            "pipelines": {"center": _pipe(0.35, 0.354), "foreground_background": _pipe(0.99, 0.998, 0.0)},
            "strategies": {"cam_argmax": {"fg_hit_rate": 0.728, "fg_distance": 8.2, "bg_hit_rate": 0.0,
                                          "bg_distance": 48.7}, "mask_scoring": {"fg_hit_rate": 0.998}}}


def test_fmt_formats_and_spread():
    assert tables.fmt(0.35249) == "0.352"
    assert tables.fmt(float("nan")) == "–"
    assert tables.fmt(3.04, "distance", 0.26) == "3.0 ± 0.3"
    assert tables.fmt(0.5, "percent", 0.01) == "50.0 ± 1.0 %"
    with pytest.raises(ValueError, match="unknown number kind"):
        tables.fmt(1.0, "furlongs")


def test_column_headers_have_units_and_directions():
    headers = [c.header for c in tables.METRICS]
    assert headers == ["IoU ↑", "fg hit ↑", "fg dist (px) ↓", "bg hit ↓", "bg dist (px)"]
    with pytest.raises(ValueError, match="better"):
        Column("x", "x", better="sideways")


def test_pipeline_table_plain_names_groups_and_spread():
    res = _result()
    res["pipelines"]["center"]["iou_sd"] = 0.012
    t = tables.pipeline_table({"clean": res, "degraded": _result(True)})
    labels = [r[0] for r in t.rows]
    assert labels == ["centre point (baseline)", "CAM foreground + background points"] * 2
    assert t.rows[0][1] == "0.350 ± 0.012" and t.rows[1][4] == "0.000" and t.rows[0][4] == "–"
    assert set(t.groups) == {0, 2} and "97.0 %" in t.groups[0] and "degraded" in t.groups[2]
    text = t.to_text()
    assert "cam_argmax" not in text and "regiongrow" in text
    # columns never touch: every number is separated by at least two spaces
    assert "0.3500.354" not in text.replace(" ", "") or "  0.354" in text


def test_text_and_html_agree_and_escape():
    t = Table("T <1>", ("name", "v ↑"), (("a<b", "1.000"), ("c", "2.000")), {1: "group & co"}, "note")
    html = t.to_html()
    assert "a&lt;b" in html and "group &amp; co" in html and "<caption>T &lt;1&gt;</caption>" in html
    assert 'class="camseg-table-wrap"' in html
    lines = t.to_text().splitlines()
    assert lines[0] == "T <1>" and lines[1].startswith("name") and lines[1].endswith("v ↑")
    assert lines[3] == "a<b   1.000" and lines[4] == "group & co" and lines[-1] == "note"
    assert list(t.to_frame().index) == ["a<b", "c"]
    with pytest.raises(ValueError, match="cells"):
        Table("x", ("a", "b"), (("only one",),))


def test_strategy_table_order_and_labels():
    t = tables.strategy_table({"clean": _result()})
    assert [r[0] for r in t.rows] == ["CAM maximum", "mask scoring, foreground + background"]
    assert t.rows[1][3] == "–"


def test_best_threshold_ties_and_empty():
    assert tables.best_threshold({"0.2": 0.3, "0.6": 0.5, "0.4": 0.5}) == (0.4, 0.5)
    with pytest.raises(ValueError, match="no thresholds"):
        tables.best_threshold({})


def test_iou_table_with_baselines():
    study = CamStudy.from_json({"rows": [], "cam_only_iou": {"0.3": 0.40, "0.5": 0.45}, "cam_slic_iou": {"0.4": 0.5}})
    t = tables.iou_table({"clean": _result(), "degraded": _result(True)}, study)
    assert t.header == ("pipeline", "IoU ↑, clean", "IoU ↑, degraded (noise + JPEG)")
    assert t.rows[-2] == ("CAM alone, threshold 0.5", "0.450", "–")
    assert t.rows[-1] == ("CAM + SLIC superpixels, threshold 0.4", "0.500", "–")
    assert "optimistic" in t.note


def test_published_table_has_the_stated_figures_and_this_build():
    t = tables.published_table({"clean": _result()}, accuracy=0.995)
    # quantumFeline/DNN-all, HW_2_Grad_CAM_Segmentation.ipynb; 1miqi1/..., report.pdf Table 1
    assert t.rows[0] == ("quantumFeline", "0.896", "0.684", "0.838", "–", "0.870", "0.868")
    assert t.rows[1] == ("1miqi1", "0.900", "–", "–", "0.773", "0.769", "0.765")
    assert t.rows[-1][:4] == ("camseg (this build)", "0.995", "0.728", "–")
    assert t.header[1] == "top-class accuracy ↑"


def test_published_sources_name_link_and_where():
    md, page = tables.published_sources("md"), tables.published_sources("html")
    for r in tables.PUBLISHED:
        assert f"[{r['name']}]({r['url']})" in md and f'href="{r["url"]}"' in page
        assert r["url"].startswith(f"https://github.com/{r['name']}/blob/main/")
    assert "Table 1" in md and "Average IoU" in md
    assert tables.published_iou() == ["0.870 for quantumFeline/DNN-all",
                                      "0.769 for 1miqi1/Image-segmentation-without-user-input"]
    with pytest.raises(ValueError, match="markup"):
        tables.published_sources("tex")


def test_cli_table_uses_the_helper():
    from camseg.publishing.tables import format_table

    text = format_table(_result())
    assert "CAM foreground + background points" in text and "CAM maximum" in text
    assert "0.990" in text and "fg dist (px) ↓" in text


def test_baseline_threshold_is_chosen_on_val_and_reported_on_test():
    study = CamStudy.from_json({
        "rows": [], "cam_only_iou": {"0.3": 0.40, "0.5": 0.45}, "cam_only_iou_val": {"0.3": 0.52, "0.5": 0.47},
        "cam_slic_iou": {"0.3": 0.50, "0.5": 0.55}, "cam_slic_iou_val": {"0.3": 0.4, "0.5": 0.6}})
    assert tables.baseline_threshold(study, "cam_only") == (0.3, 0.40, "val")  # not the test split's best (0.5)
    t = tables.iou_table({"clean": _result()}, study)
    assert t.rows[-2] == ("CAM alone, threshold 0.3", "0.400")
    assert t.rows[-1] == ("CAM + SLIC superpixels, threshold 0.5", "0.550")
    assert "validation split" in t.note and "optimistic" not in t.note
    with pytest.raises(ValueError, match="not measured on test"):
        tables.baseline_threshold(CamStudy.from_json({"rows": [], "cam_only_iou": {"0.5": 0.4},
                                                      "cam_only_iou_val": {"0.2": 0.5}}))


def _seed_run(iou, n=4, explain="top", area=(30, 80, 200, 900)):
    per_image = {"label": [0] * n, "predicted": [0] * n, "cam_peak_hit": [1] * n, "area": list(area),
                 "contrast": [20, 50, 70, 300], "fg_hit": {"foreground_background": [1, 1, 1, 0]},
                 "iou": {"foreground_background": [0.9, 0.95, 1.0, 0.0]}}
    return {"n_images": n, "classifier_accuracy": 1.0, "explain": explain, "per_image": per_image,
            "pipelines": {"foreground_background": {"iou": iou, "fg_hit_rate": 0.75, "bg_hit_rate": None},
                          "oracle": {"iou": 0.994}},
            "strategies": {"cam_argmax": {"fg_hit_rate": 0.5}, "mask_scoring": {"fg_hit_rate": 0.75}}}


def test_suite_tables_have_consistent_digits_and_no_nan():
    from camseg.evaluation import robustness
    from camseg.publishing.findings import suite_findings

    sets = {"standard": [_seed_run(0.9941), _seed_run(0.9939)], "plain": [_seed_run(0.9), _seed_run(0.8)],
            "jpeg95": [_seed_run(0.85), _seed_run(0.85)],
            "distractor": [_seed_run(0.7, explain="label"), _seed_run(0.72, explain="label")]}
    f = suite_findings(sets)
    head = tables.suite_table(f)
    assert head.header == ("set", "fg hit ↑", "IoU ↑", "oracle − IoU ↓")
    assert head.rows[0] == ("standard split", "0.750 ± 0.000", "0.994 ± 0.000", "0.000")
    assert head.rows[1][2] == "0.850 ± 0.071" and "2 classifier seeds" in head.title
    detail = tables.suite_detail_table(f)
    assert detail.rows[-1][0] == "a second shape (distractor)" and detail.rows[-1][1] == "–"  # no accuracy
    seeds = tables.per_seed_table(sets["standard"], (0, 1))
    assert seeds.rows == (("seed 0", "1.000", "0.750", "0.994", "0.994"),
                          ("seed 1", "1.000", "0.750", "0.994", "0.994"))  # never "1.0" beside "0.994"
    # the area bins 250-500 and the contrast bin 30-45... hold no image: left out, never NaN
    cond = tables.condition_table(robustness.condition_frames(sets))
    text = cond.to_text()
    assert "nan" not in text.lower() and "250–500" not in text and "120–250" in text
    assert list(cond.groups.values()) == ["shape area (px)", "contrast", "JPEG quality"]
    only_area = tables.condition_table(robustness.condition_frames(sets), ["shape area (px)"])
    assert list(only_area.groups.values()) == ["shape area (px)"]
    strat = tables.strategies_suite_table(sets)
    assert strat.header == ("set", "CAM max ↑", "camseg score ↑") and strat.rows[0][1:] == ("0.500", "0.750")
    fail = tables.failures_suite_table(f)
    assert fail.rows[0] == ("standard split", "6", "0", "2", "0", "0")  # the CAM peaked on the shape


def test_settings_table_wraps_and_names_commands():
    t = tables.settings_table()
    assert t.wrap and "camseg-wrap" in t.to_html()
    assert all(row[2].startswith("python ") for row in t.rows)
