"""camseg.publishing.report: the PDF report from a tiny fake results dict (no training), and the caches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from camseg.build import artifacts
from camseg.publishing import report, tables

pypdf = pytest.importorskip("pypdf")
pytest.importorskip("weasyprint")


def _pipeline(iou: float, fg: float, fg_d: float, bg: float | None = None, bg_d: float | None = None) -> dict:
    return {"iou": iou, "fg_hit_rate": fg, "fg_distance": fg_d, "bg_hit_rate": bg, "bg_distance": bg_d,
            "n_fg": 10, "n_bg": 0 if bg is None else 20, "seconds": 1.0, "per_class_iou": {}}


def _eval(shift: float, degraded: bool) -> dict:
    return {
        "split": "test", "degraded": degraded, "n_images": 10, "segmenter": "fakeseg", "classifier_accuracy": 0.9,
        "pipelines": {
            "center": _pipeline(0.3121 - shift, 0.351, 11.96),
            "foreground": _pipeline(0.8711 - shift, 0.953, 1.52),
            "foreground_background": _pipeline(0.8822 - shift, 0.957, 1.48, 0.0123, 31.59),
            "oracle": _pipeline(0.9633 - shift, 1.0, 0.38),
        },
        "strategies": {"cam_argmax": {"fg_hit_rate": 0.728, "fg_distance": 8.24, "bg_hit_rate": 0.0,
                                      "bg_distance": 48.68, "n_fg": 10, "n_bg": 10}},
    }


@pytest.fixture()
def parts() -> dict:
    rng = np.random.default_rng(0)
    mask = np.zeros((12, 16), bool)
    mask[3:9, 4:12] = True
    return {
        "segmenter": "fakeseg-backend",
        "meta": {"arch": "tinynet", "test_accuracy": 0.95},
        "clean": _eval(0.0, False), "degraded": _eval(0.1, True),
        "cam_study": {"rows": [{"method": "Grad-CAM", "layers": ["l"], "default": True, "mass_inside": 0.4,
                                "pointing_game": 0.7}], "cam_only_iou": {"0.4": 0.455, "0.5": 0.454}},
        "gradcam_example": {"image": rng.integers(0, 256, (12, 16, 3), dtype=np.uint8),
                            "cam": rng.random((12, 16)).astype(np.float32), "mask": mask, "label": "star",
                            "predicted": "star"},
    }


@pytest.fixture()
def fake_results(make_artifacts, parts):
    return make_artifacts(**parts)


def _text(path: Path) -> tuple[int, str]:
    reader = pypdf.PdfReader(str(path))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def _pages(path: Path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(str(path)).pages]


def test_report_pdf_pages_backend_and_every_number(make_artifacts, parts, tmp_path):
    fake_results = make_artifacts(**parts, requested="auto",
                                  reason="UserWarning: no SAM checkpoint in /root/.cache/camseg/sam; using offline")
    out = report.write_report(fake_results, tmp_path / "sub" / "report.pdf")
    assert out == tmp_path / "sub" / "report.pdf"
    pages, text = _text(out)
    assert pages == 2
    first, second = _pages(out)
    assert "fakeseg-backend" in first and "stand-in for SAM" in " ".join(first.split())
    # no log text, warning or path in the report
    assert "Warning" not in text and "warning" not in text and "/root" not in text and ".cache" not in text
    # the tables are whole on page 2: caption, group rows and last rows together
    for needle in ("Every metric on the test split", "Prompt points on the test split", "degraded (noise + JPEG)"):
        assert needle in second and needle not in first, needle
    assert "cam_argmax" not in text and "CAM maximum" in second  # plain names
    for tag in ("clean", "degraded"):
        for name, m in parts[tag]["pipelines"].items():
            assert tables.fmt(m["iou"]) in text, (tag, name, "iou")
            assert tables.fmt(m["fg_hit_rate"]) in text
            assert tables.fmt(m["fg_distance"], "distance") in text
            if m["bg_hit_rate"] is not None:
                assert tables.fmt(m["bg_hit_rate"]) in text
                assert tables.fmt(m["bg_distance"], "distance") in text
    for label in ("IoU", "fg hit", "bg hit", "oracle", "centre", "degraded", "fg dist (px) ↓"):
        assert label in text
    assert not list(out.parent.glob("*.partial"))  # atomic: no leftovers


def test_report_spreads_when_results_have_them(make_artifacts, parts, tmp_path):
    parts["clean"]["pipelines"]["foreground"]["iou_sd"] = 0.0123
    html = report.report_html(make_artifacts(**parts))
    assert "0.871 ± 0.012" in html


def test_report_names_sam_as_sam(make_artifacts, parts):
    html = report.report_html(make_artifacts(**{**parts, "segmenter": "sam-vit_b"}))
    assert "stand-in for SAM</b>" not in html and "SAM (<b>sam-vit_b</b>)" in html


def test_report_discussion_at_most_five_sentences(fake_results):
    html = report.report_html(fake_results)
    section = html.split("Discussion</h2>")[1].split("</p>")[0]
    assert 1 <= section.count(". ") + section.rstrip().endswith(".") <= 5
    assert "several objects" not in html


def test_failed_render_leaves_old_pdf(make_artifacts, parts, tmp_path):
    out = tmp_path / "report.pdf"
    out.write_bytes(b"old")
    with pytest.raises(ValueError, match="clean evaluation"):
        report.write_report(make_artifacts(**{**parts, "clean": None}), out)
    assert out.read_bytes() == b"old" and not list(tmp_path.glob("*.partial"))


def test_fmt():
    assert tables.fmt(None) == "–"
    assert tables.fmt(0.98827) == "0.988"
    assert tables.fmt(11.964, "distance") == "12.0"


def test_default_workdir(tmp_path, monkeypatch):
    (tmp_path / "_toc.yml").write_text("root: x\n")
    (tmp_path / "book").mkdir()
    monkeypatch.chdir(tmp_path / "book")
    monkeypatch.delenv("CAMSEG_WORKDIR", raising=False)
    assert artifacts.default_workdir() == tmp_path.resolve() / "artifacts"
    monkeypatch.setenv("CAMSEG_WORKDIR", str(tmp_path / "w"))
    assert artifacts.default_workdir() == tmp_path / "w"


def _run(iou: float, oracle: float, explain: str = "top", fail: int = 0, n: int = 20) -> dict:
    per_image = {"label": [0] * n, "predicted": [0] * n, "cam_peak_hit": [1] * n,
                 "fg_hit": {"foreground_background": [1] * (n - fail) + [0] * fail},
                 "iou": {"foreground_background": [0.95] * (n - fail) + [0.0] * fail}}
    return {"n_images": n, "classifier_accuracy": 0.98, "explain": explain, "per_image": per_image,
            "pipelines": {"foreground_background": {"iou": iou, "fg_hit_rate": 0.97, "bg_hit_rate": 0.01},
                          "oracle": {"iou": oracle}},
            "strategies": {"mask_scoring_similarity": {"fg_hit_rate": 0.9, "iou": 0.9}}}


@pytest.fixture()
def suite():
    from camseg.build.suite import SuiteResults

    sets = {"standard": [_run(0.8822, 0.9633), _run(0.8801, 0.9633), _run(0.8843, 0.9633)],
            "plain": [_run(0.91, 0.95)] * 3, "lowcontrast_border": [_run(0.61, 0.66, fail=6)] * 3,
            "jpeg95": [_run(0.90, 0.95)] * 3, "jpeg50": [_run(0.81, 0.85, fail=2)] * 3,
            "distractor": [_run(0.85, 0.9, explain="label")] * 3}
    return SuiteResults(sets=sets, seeds=(0, 1, 2), checkpoints={})


def test_report_leads_with_the_shift_suite(make_artifacts, parts, suite, tmp_path):
    from weasyprint import HTML

    res = make_artifacts(**parts, suite=suite)
    html = report.report_html(res)
    out = report.write_report(res, tmp_path / "report.pdf")
    first, second = (" ".join(p.split()) for p in _pages(out))
    # page 1: the findings and the robustness table with its spread over the seeds
    assert "Findings" in first and "Mean ± sd over 3 classifier seeds" in first
    assert "faint shapes cut by the border" in first and "0.610 ± 0.000" in first and "±" in first
    assert "its own top class is right for 95.0 %" in first and "the class the CAM explains" in first
    # page 2: the published solutions by name and link, the discussion built on the findings
    for r in tables.PUBLISHED:
        assert r["name"] in second.replace(" ", "") or r["name"] in second
        assert f'href="{r["url"]}"' in html
    assert "Discussion" in second and "named shape" in second and "several objects" not in first + second
    assert "nan" not in (first + second).lower().split() and "within 0.000" not in first + second
    fills = report.page_fill(HTML(string=html).render())
    assert len(fills) == 2 and all(f >= 2 / 3 for f in fills), fills


def test_report_without_a_suite_says_so(fake_results):
    html = report.report_html(fake_results)
    assert "No shift suite in this build" in html and "Mean ± sd" not in html
