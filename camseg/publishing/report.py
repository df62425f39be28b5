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

__all__ = ["PIPELINE_LABELS", "report_html", "write_report"]

PIPELINE_LABELS: dict[str, str] = _tables.PIPELINE_LABELS
"""Display names of the evaluated pipelines, in table order (from :mod:`camseg.publishing.tables`)."""


# --------------------------------------------------------------------------
# The PDF report

fmt = _tables.fmt  # one number format for the book, the PDF and the CLI (camseg.publishing.tables)

_CSS = """
@page { size: A4; margin: 13mm 15mm 13mm 15mm; font-family: 'DejaVu Sans', sans-serif;
        @bottom-right { content: "camseg report · page " counter(page) " of " counter(pages);
                        font-size: 7.5pt; color: #666; font-family: 'DejaVu Sans', sans-serif; } }
body { font-family: 'DejaVu Sans', sans-serif; font-size: 9pt; line-height: 1.38; color: #111; }
h1 { font-size: 15pt; margin: 0 0 1.5mm 0; }
h2 { font-size: 10.5pt; margin: 3.5mm 0 1.2mm 0; border-bottom: 0.5pt solid #999; break-after: avoid; }
p { margin: 0 0 1.8mm 0; }
.meta { color: #222; font-size: 8.3pt; background: #f1f1f1; padding: 1.6mm 2.2mm; border-left: 1.2mm solid #c33; }
figure { margin: 1.5mm 0 2.5mm 0; break-inside: avoid; }
figure img { width: 100%; }
figcaption { font-size: 7.6pt; color: #333; text-align: left; margin-top: 0.8mm; }
.page2 { break-before: page; }
.block { break-inside: avoid; margin: 1mm 0 3mm 0; }
table { border-collapse: collapse; width: 100%; font-size: 7.5pt; line-height: 1.2; break-inside: avoid; }
caption { text-align: left; font-weight: bold; font-size: 8.2pt; padding-bottom: 1mm; }
th, td { border-bottom: 0.4pt solid #bbb; padding: 0.55mm 1.6mm; text-align: right; }
th { vertical-align: bottom; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 0.8pt solid #333; }
tr.group td { background: #eee; font-weight: bold; text-align: left; }
.camseg-table-note { font-size: 7.4pt; color: #444; margin: 0.8mm 0 0 0; }
ul { margin: 0 0 1mm 0; padding-left: 5mm; }
li { margin-bottom: 1mm; }
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
    return _png(iou_histogram(ious, backend=res.backend.name), 7.2, 1.9)


def report_html(res: Artifacts) -> str:
    """The report as a self-contained HTML string (figures embedded as PNG data URIs), two A4 pages.

    Page 1: what the method is, the backend (named a stand-in for SAM unless it
    is SAM), the Grad-CAM figure with its colour bar and the pipelines. Page 2:
    every metric (tables from :mod:`camseg.publishing.tables`, ± sd where the results
    carry one), the per-image IoU histogram when the masks are on disk, and at
    most five sentences on improvements. No table is split across pages and
    no log text, warning or path is printed.

    ``res`` needs ``backend``, ``clean`` (and usually ``degraded``), ``meta``
    (``arch``, ``test_accuracy``) and ``gradcam_example``; ``cam_study`` and
    ``predictions`` are optional.
    """
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
                                  titles=[f"{ex.label}\n(predicted {ex.predicted})"]), 7.2, 1.95)
    test_acc = meta.get("test_accuracy")
    acc = fmt(test_acc, "percent") if test_acc is not None else "n/a"
    study = res.cam_study
    default_row = study.default_row if study else None
    degr = evals.get("degraded", {}).get("pipelines", {})

    if is_sam:
        backend_line = f"Every mask was made by SAM (<b>{e(backend)}</b>), the reference segmenter."
    else:
        backend_line = (f"Every mask was made by <b>{e(backend)}</b>, an offline <b>stand-in for SAM</b> "
                        "(SAM's weights cannot be downloaded on the machine that built this report). It grows a "
                        "region of similar colour from the points, which suits these flat-coloured shapes "
                        "unusually well: its IoU measures whether the prompts land on the object and is not "
                        "what SAM would score (published SAM ViT-B solutions: mean IoU 0.72–0.90).")
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
    fb_deg = degr.get("foreground_background", {}).get("iou")
    or_deg = degr.get("oracle", {}).get("iou")
    fb_loss = p["foreground_background"]["iou"] - fb_deg if fb_deg is not None else None
    or_loss = p["oracle"]["iou"] - or_deg if or_deg is not None else None
    improvements = (
        ("Re-running the build with SAM, where its checkpoint can be downloaded, would give the numbers this "
         f"stand-in ({e(backend)}) only approximates. " if not is_sam
         else "A larger SAM (ViT-L, ViT-H) may tighten boundaries on small shapes. ")
        + "Choosing among SAM's three candidate masks with the classifier's score of each mask would remove a "
        "remaining source of wrong masks. "
        + (f"On degraded images the pipeline loses {fmt(fb_loss)} IoU, more than the oracle's {fmt(or_loss)}, so "
           "the candidate regions behind the foreground point need to become robust to noise. "
           if fb_loss is not None and or_loss is not None and fb_loss > or_loss + 0.005 else
           f"On degraded images the segmenter itself loses {fmt(or_loss)} IoU with a perfect click, so its "
           "boundary decision on noisy edges is the next thing to harden. " if or_loss is not None else "")
        + "Images with several objects would test whether the distractor background point generalises.")

    page1 = [
        "<h1>camseg: segmentation without user input</h1>",
        f'<p class="meta">{backend_line}</p>',
        f"<p>Classifier: {e(str(meta.get('arch', '?')))}, test accuracy {acc}. Data: the synthetic shapes test "
        f"split (64 × 48 px, five classes, {clean['n_images']} images). All numbers are computed by "
        "<code>camseg</code> from the same cached results as the book.</p>",
        "<h2>Method</h2>",
        "<p>A classifier recognises the shape; Grad-CAM weights the activations of a target layer by the spatial "
        "mean of the class score's gradients, giving a heatmap of where the classifier looked. The heatmap is "
        "turned into point prompts (x, y) for a promptable segmenter, which returns the mask; nobody clicks."
        f"{cam_sentence}</p>",
        f'<figure><img src="data:image/png;base64,{cam_png}"/><figcaption>Figure 1. Test image '
        f"{REPORT_EXAMPLE}: the input, the Grad-CAM heatmap of the predicted class (jet colour map, rescaled to "
        "0–1 per image, see the colour bar), the overlay with the true outline in white, and the ground truth. "
        "The heat should sit on the shape.</figcaption></figure>",
        "<h2>Pipelines</h2><ul>",
        "<li><b>Centre point (baseline).</b> One foreground point at the image centre, ignoring the classifier; "
        f"it lands on the shape for {fmt(p['center']['fg_hit_rate'], 'percent')} of the images "
        f"(IoU {fmt(p['center']['iou'])}).</li>",
        "<li><b>CAM foreground point.</b> Points where the CAM is high are each segmented; each candidate region "
        "is shown to the classifier by itself (the rest of the image set to the mean colour), and the region whose "
        "classifier features are most similar to the whole image's, weighted by the CAM on it, wins. Its deepest "
        f"interior point is the prompt (IoU {fmt(p['foreground']['iou'])}).</li>",
        "<li><b>CAM foreground + background points.</b> The same foreground point plus two background points, on "
        "the strongest rejected region and on low-CAM pixels far from the object "
        f"(IoU {fmt(p['foreground_background']['iou'])}).</li>",
        "<li><b>Oracle point (upper bound).</b> One point at the mask pixel nearest the true centre of mass: what "
        f"the segmenter does with a perfect click (IoU {fmt(p['oracle']['iou'])}).</li></ul>",
        "<h2>SAM and the stand-in</h2>",
        "<p>SAM encodes the image once with a Vision Transformer (a 64 × 48 image is magnified 16-fold to "
        "1024 × 768 and padded to 1024 × 1024), encodes each point with its label, and a small mask decoder "
        "returns three candidate masks with a predicted IoU each for a single point; camseg keeps the best. The "
        f"stand-in{'' if is_sam else f' ({e(backend)})'} keeps SAM's interface (the image set once, then any "
        "number of prompts) but has no learned model.</p>",
    ]
    page2 = [
        '<div class="page2"><h2>Results</h2>',
        "<p>IoU is |P ∩ G| / |P ∪ G| per image, averaged over images (two empty masks would count as 1). Hit "
        "rates are the fractions of generated points inside the true mask (foreground: higher is better; "
        "background: lower is better); distances are mean pixels to the mask's centre of mass. Degraded: "
        f"Gaussian noise (σ = 3) then JPEG quality 90. Segmenter: {e(backend)}.{baseline}</p>",
        f'<div class="block">{_tables.pipeline_table(evals).to_html()}</div>',
        f'<div class="block">{_tables.strategy_table(evals).to_html()}</div>',
    ]
    if hist:
        page2.append(f'<figure><img src="data:image/png;base64,{hist}"/><figcaption>Figure 2. Per-image IoU on '
                     "the clean test split (log counts); images left of the dashed line (IoU 0.5) count as "
                     "failed.</figcaption></figure>")
    page2 += ["<h2>Possible improvements</h2>", f"<p>{improvements}</p></div>"]
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>camseg report</title>"
            f"<style>{_CSS}</style></head><body>{''.join(page1 + page2)}</body></html>")


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
