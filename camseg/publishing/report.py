"""The two-page A4 PDF report (WeasyPrint), rendered from the book's artefacts.

The artefacts themselves (dataset, classifier, evaluations, CAM study) are
built and cached by :mod:`camseg.build.artifacts`.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from camseg.build.artifacts import REPORT_EXAMPLE, Artifacts, load_predictions
from camseg.publishing import tables as _tables
from camseg.utils.paths import write_atomic

__all__ = ["PIPELINE_LABELS", "page_fill", "report_html", "write_report"]

PIPELINE_LABELS: dict[str, str] = _tables.PIPELINE_LABELS
"""Display names of the evaluated pipelines, in table order (from :mod:`camseg.publishing.tables`)."""


# --------------------------------------------------------------------------
# The PDF report

fmt = _tables.fmt  # one number format for the book, the PDF and the CLI (camseg.publishing.tables)

_CSS = """
@page { size: A4; margin: 11mm 14mm 12mm 14mm; font-family: 'DejaVu Sans', sans-serif;
        @bottom-right { content: "camseg report · page " counter(page) " of " counter(pages);
                        font-size: 7.5pt; color: #666; font-family: 'DejaVu Sans', sans-serif; } }
body { font-family: 'DejaVu Sans', sans-serif; font-size: 8.6pt; line-height: 1.33; color: #111; }
h1 { font-size: 15pt; margin: 0 0 1.5mm 0; }
h2 { font-size: 10.5pt; margin: 3.5mm 0 1.2mm 0; border-bottom: 0.5pt solid #999; break-after: avoid; }
p { margin: 0 0 1.8mm 0; }
.meta { color: #222; font-size: 8.3pt; background: #f1f1f1; padding: 1.6mm 2.2mm; border-left: 1.2mm solid #c33; }
figure { margin: 1.5mm 0 2.5mm 0; break-inside: avoid; }
figure img { width: 100%; }
figcaption { font-size: 7.6pt; color: #333; text-align: left; margin-top: 0.8mm; }
.page2 { break-before: page; }
.block { break-inside: avoid; margin: 1mm 0 3mm 0; }
table { border-collapse: collapse; width: 100%; font-size: 7.2pt; line-height: 1.15; break-inside: avoid; }
caption { text-align: left; font-weight: bold; font-size: 8.2pt; padding-bottom: 1mm; }
th, td { border-bottom: 0.4pt solid #bbb; padding: 0.4mm 1.6mm; text-align: right; }
th { vertical-align: bottom; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 0.8pt solid #333; }
tr.group td { background: #eee; font-weight: bold; text-align: left; }
.camseg-table-note { font-size: 7.4pt; color: #444; margin: 0.8mm 0 0 0; }
ul { margin: 0 0 1mm 0; padding-left: 5mm; }
li { margin-bottom: 1mm; }
ul.sources { font-size: 7.8pt; }
a { color: #114; text-decoration: none; }
"""


def _png(fig, width_in: float, height_in: float, dpi: int = 150) -> str:
    from camseg.publishing.viz import figure_png

    fig.set_size_inches(width_in, height_in)
    return base64.b64encode(figure_png(fig, dpi=dpi)).decode()


def _iou_histogram_png(res: Artifacts) -> str | None:
    """The per-image IoU histogram of the clean split, if its predicted masks are on disk."""
    from camseg.evaluation.metrics import iou_per_image
    from camseg.publishing.viz import iou_histogram

    path = res.predictions
    if not path or res.masks is None or not Path(path).is_file():
        return None
    pipes = load_predictions(path)["pipelines"]
    names = [n for n in ("foreground_background", "center", "oracle") if n in pipes]
    ious = {_tables.label(n): iou_per_image(pipes[n]["masks"], res.masks) for n in names}
    return _png(iou_histogram(ious, backend=res.backend.name), 7.2, 1.45)


def _accuracy_sentence(meta, clean: dict) -> str:
    """Both accuracies, each named: the classifier's own top class and the class the CAM explains."""
    top = meta.get("test_accuracy")
    vote = clean.get("classifier_accuracy")
    own = f"its own top class is right for {fmt(top, 'percent')} of the test images" if top is not None else ""
    explained = (f"the class the CAM explains (the vote of the image's four flips) for {fmt(vote, 'percent')}"
                 if vote is not None else "")
    return "; ".join(b for b in (own, explained) if b)


def _degraded_sentence(p: dict, degr: dict, sd: float | None) -> str:
    """What noise and JPEG do, and where the drop comes from (:func:`camseg.publishing.book.degraded_cause`)."""
    from camseg.publishing.book import degraded_cause

    if "foreground_background" not in degr or "oracle" not in degr:
        return ""
    return degraded_cause({"iou_fb": p["foreground_background"]["iou"], "iou_oracle": p["oracle"]["iou"],
                           "iou_fb_deg": degr["foreground_background"]["iou"], "iou_oracle_deg": degr["oracle"]["iou"],
                           "hit_fb": p["foreground_background"]["fg_hit_rate"],
                           "hit_fb_deg": degr["foreground_background"]["fg_hit_rate"]}, sd)


def report_html(res: Artifacts) -> str:
    """The report as a self-contained HTML string (figures embedded as PNG data URIs), two A4 pages.

    Page 1: the backend (named a stand-in for SAM unless it is SAM), the classifier's two accuracies,
    the findings (:func:`camseg.publishing.findings.findings`), the shift suite's table (mean ± sd over
    the seeds, when the build has one), the method and the Grad-CAM figure. Page 2: the pipelines,
    every metric on the standard split (tables from :mod:`camseg.publishing.tables`, ± sd where the
    results carry one), the per-image IoU histogram when the masks are on disk, SAM and the stand-in
    with the published solutions (name, link, figures), and a discussion of at most five sentences
    built on the findings. No table is split across pages and no log text, warning or path is printed.

    ``res`` needs ``backend``, ``clean`` (and usually ``degraded``), ``meta``
    (``arch``, ``test_accuracy``) and ``gradcam_example``; ``cam_study``, ``suite`` and
    ``predictions`` are optional.
    """
    from camseg.publishing.findings import findings, next_steps, suite_findings
    from camseg.publishing.viz import gradcam_panels

    def e(text: str) -> str:
        return html.escape(text)

    backend = res.backend.name
    is_sam = backend.startswith("sam")
    if res.clean is None or res.gradcam_example is None:
        raise ValueError("the report needs the clean evaluation and the Grad-CAM example (Artifacts.clean, "
                         "Artifacts.gradcam_example)")
    evals = {k: e.raw for k, e in (("clean", res.clean), ("degraded", res.degraded)) if e is not None}
    clean = evals["clean"]
    p = clean["pipelines"]
    meta = res.meta or {}
    ex = res.gradcam_example
    cam_png = _png(gradcam_panels(ex.image[None], ex.cam[None], ex.mask[None],
                                  titles=[f"{ex.label}\n(predicted {ex.predicted})"]), 7.2, 1.5)
    study = res.cam_study
    default_row = study.default_row if study else None
    degr = evals.get("degraded", {}).get("pipelines", {})
    f = suite_findings(res.suite) if res.suite is not None else None
    published = _tables.published_iou()
    sd = f.standard.iou[1] if f is not None and f.standard is not None else None

    if is_sam:
        backend_line = f"Every mask was made by SAM (<b>{e(backend)}</b>), the reference segmenter."
    else:
        backend_line = (f"Every mask was made by <b>{e(backend)}</b>, an offline <b>stand-in for SAM</b> "
                        "(SAM's weights could not be downloaded where this report was built) that grows a region "
                        "of similar colour from the points and suits these flat-coloured shapes unusually well: "
                        "its IoU says whether the prompts land on the object, not what SAM would score (published "
                        f"SAM ViT-B solutions, one point: {e(' and '.join(published))}; sources on page 2).")
    cam_sentence = ""
    if default_row:
        cam_sentence = (f" On the test split the default Grad-CAM puts {fmt(default_row.mass_inside, 'percent')} "
                        "of its mass inside the shape, and its maximum lands on the shape in "
                        f"{fmt(default_row.pointing_game, 'percent')} of the images.")
    baseline = ""
    if study and study.cam_only_iou:
        t, v, on = _tables.baseline_threshold(study, "cam_only")
        baseline = (f" Thresholding the CAM alone, without a segmenter, reaches a mean IoU of {fmt(v)} at the "
                    f"threshold best on the {'validation' if on == 'val' else 'test'} split ({t:.1f})")
        if study.cam_slic_iou:
            ts, vs, _ = _tables.baseline_threshold(study, "cam_slic")
            baseline += f", and {fmt(vs)} when snapped to SLIC superpixels ({ts:.1f})"
        baseline += ("." if on == "val" else "; both thresholds were chosen on the test split, so these baselines "
                     "are optimistic.")
    hist = _iou_histogram_png(res)
    steps = next_steps(f, backend)  # the published figures are quoted above it
    degraded = _degraded_sentence(p, degr, sd)
    discussion = " ".join(e(x) for x in [*steps[:5 - bool(degraded)], *([degraded] if degraded else [])])
    # the last finding, on the segmenter, is the box at the top of the page
    found = "".join(f"<li>{s.html()}</li>" for s in findings(f, backend, published)[:-1])
    suite_block = ""
    if f is not None:
        suite_block = (f'<div class="block">{_tables.suite_table(f).to_html()}</div>')

    page1 = [
        "<h1>camseg: segmentation without user input</h1>",
        f'<p class="meta">{backend_line}</p>',
        f"<p>Classifier: {e(str(meta.get('arch', '?')))}; {e(_accuracy_sentence(meta, clean))}. Data: synthetic "
        f"shapes on CIFAR-10 photos (64 × 48 px, five classes), {clean['n_images']} test images on the standard "
        "split; a shift suite of test sets that each change one thing. All numbers are computed by "
        "camseg from the same cached results as the book.</p>",
        f"<h2>Findings</h2><ul>{found}</ul>",
        suite_block,
        "<h2>Method</h2>",
        "<p>A classifier recognises the shape; Grad-CAM weights the activations of a target layer by the spatial "
        "mean of the class score's gradients, giving a heatmap of where the classifier looked. The heatmap is "
        "turned into point prompts (x, y) for a promptable segmenter, which returns the mask; nobody clicks."
        f"{cam_sentence}</p>",
        f'<figure><img src="data:image/png;base64,{cam_png}"/><figcaption>Figure 1. Test image '
        f"{REPORT_EXAMPLE}: the input, the Grad-CAM heatmap of the predicted class (jet colour map, rescaled to "
        "0–1 per image, see the colour bar), the overlay with the true outline in white, and the ground truth. "
        "The heat should sit on the shape.</figcaption></figure>",
    ]
    page2 = [
        '<div class="page2"><h2>Results on the standard split</h2>',
        "<p>Four pipelines prompt the same segmenter: the <b>centre point</b> (a baseline that ignores the "
        "classifier); the <b>CAM foreground point</b> (points where the CAM is high are each segmented, the "
        "classifier scores each region shown alone, and the best region's deepest point is the prompt); "
        "<b>CAM foreground + background points</b> (two background points more, on the strongest rejected region "
        "and on low-CAM pixels far from the object); the <b>oracle point</b> (the mask pixel nearest the true "
        "centre of mass: the segmenter's upper bound). IoU: |P ∩ G| / |P ∪ G| per image, averaged. Degraded: "
        f"Gaussian noise (σ = 3), then JPEG quality 90.{baseline}</p>",
        f'<div class="block">{_tables.pipeline_table(evals).to_html()}</div>',
        # the centre and the foreground-only points are the pipelines' rows above
        f'<div class="block">{_tables.strategy_split_table(evals, skip=("center", "mask_scoring_fg")).to_html()}'
        "</div>",
    ]
    if hist:
        page2.append(f'<figure><img src="data:image/png;base64,{hist}"/><figcaption>Figure 2. Per-image IoU on '
                     "the clean test split (log counts); images left of the dashed line (IoU 0.5) count as "
                     "failed.</figcaption></figure>")
    page2 += [
        "<h2>SAM, the stand-in and the published solutions</h2>",
        f"<p>{'' if is_sam else f'The stand-in ({e(backend)}) keeps the interface of SAM but has no learned model. '}"
        "The published solutions of this task (ResNet18, SAM ViT-B) state their figures here:</p>",
        f'<ul class="sources">{_tables.published_sources("html")}</ul>',
        "<h2>Discussion</h2>", f"<p>{discussion}</p></div>",
    ]
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>camseg report</title>"
            f"<style>{_CSS}</style></head><body>{''.join(page1 + page2)}</body></html>")


def page_fill(document) -> list[float]:
    """How full each page of a rendered WeasyPrint document (``HTML(...).render()``) is: the bottom of its
    lowest line of text or image as a fraction of the page's content height (the footer aside)."""
    from weasyprint.formatting_structure import boxes

    fills = []
    for page in document.pages:
        root = page._page_box
        top, bottom = root.content_box_y(), root.content_box_y()

        def walk(box) -> None:
            nonlocal bottom
            for child in getattr(box, "children", None) or ():
                if isinstance(child, boxes.MarginBox):
                    continue
                if isinstance(child, (boxes.LineBox, boxes.ReplacedBox)):
                    bottom = max(bottom, child.position_y + child.margin_height())
                walk(child)

        walk(root)
        fills.append((bottom - top) / root.height)
    return fills


def write_report(res: Artifacts, out_pdf: str | os.PathLike) -> Path:
    """Render the 1-2 page A4 report to ``out_pdf`` with WeasyPrint, atomically.

    The PDF is written to a temporary file in the same folder and renamed,
    so a failed render never leaves a half-written report.

    Args:
        res: the results (:class:`~camseg.build.artifacts.Artifacts`).
        out_pdf: where to write the PDF.

    Returns:
        The path written.
    """
    from weasyprint import HTML

    pdf = HTML(string=report_html(res)).write_pdf()
    return write_atomic(Path(out_pdf), pdf)
