"""Every results table, built once and rendered for the book, the PDF and the CLI.

One table helper so that the three always agree: the same plain labels
(never code names such as ``cam_argmax``), the same units, the same ↑/↓
(which direction is better), the same number formats, and the same choice
of the best CAM threshold.

* :class:`Column`: one metric: its key in a result dict, label, unit,
  direction and number format.
* :class:`Table`: a frozen, rendered table (title, header, rows of strings,
  optional group rows); :meth:`Table.to_html` for the book and the PDF,
  :meth:`Table.to_text` for a terminal, :meth:`Table.to_frame` for pandas.
* Builders from the results of :func:`camseg.evaluation.evaluate.evaluate`:
  :func:`pipeline_table`, :func:`strategy_table`, :func:`iou_table`,
  :func:`per_class_table`, :func:`cam_study_table`, :func:`published_table`.

A value may carry a spread: a mapping ``{"mean": m, "sd": s}`` (or
``{"mean": m, "std": s}``) is written ``m ± s``; a result dict with a
``<key>_sd`` entry beside ``<key>`` is written the same way.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from camseg.build.artifacts import CamStudy

__all__ = [
    "Column", "METRICS", "PIPELINE_LABELS", "POINT_METRICS", "PUBLISHED", "SETTINGS", "STRATEGY_LABELS", "Table",
    "baseline_threshold", "best_threshold", "cam_study_table", "condition_table", "failures_suite_table", "fmt",
    "iou_table", "label", "per_class_table", "per_seed_table", "pipeline_table", "published_iou",
    "published_sources", "published_table", "settings_table", "strategies_suite_table", "strategy_label",
    "strategy_split_table", "strategy_table", "suite_detail_table", "suite_table", "value_and_sd",
]

PIPELINE_LABELS: dict[str, str] = {
    "center": "centre point (baseline)",
    "foreground": "CAM foreground point",
    "foreground_background": "CAM foreground + background points",
    "oracle": "oracle point (upper bound)",
}
"""Plain names of the evaluated pipelines, in table order."""

STRATEGY_LABELS: dict[str, str] = {
    "center": "image centre",
    "cam_argmax": "CAM maximum",
    "cam_centroid": "CAM centroid (CAM ≥ 0.6)",
    "cam_interior": "deepest point of the CAM region",
    "mask_scoring_fg": "mask scoring, foreground only",
    "mask_scoring": "mask scoring, foreground + background",
    "mask_scoring_similarity": "mask scoring with the published similarity score",
}
"""Plain names of the prompt strategies scored on their points alone, in table order."""

SPLIT_LABELS: dict[str, str] = {"clean": "clean", "degraded": "degraded (noise + JPEG)"}


def label(name: str) -> str:
    """The plain name of a pipeline, strategy or split key (the key itself when unknown).

    >>> label("cam_argmax"), label("foreground"), label("something")
    ('CAM maximum', 'CAM foreground point', 'something')
    """
    return PIPELINE_LABELS.get(name) or STRATEGY_LABELS.get(name) or SPLIT_LABELS.get(name) or name


def strategy_label(name: str) -> str:
    """The plain name of a prompt strategy (``"center"`` is "image centre" here).

    >>> strategy_label("center"), strategy_label("mask_scoring")
    ('image centre', 'mask scoring, foreground + background')
    """
    return STRATEGY_LABELS.get(name) or label(name)


def fmt(value: float | None, kind: str = "rate", sd: float | None = None) -> str:
    """How every table writes a number.

    ``"iou"``/``"rate"``/``"fraction"``: 3 decimals; ``"distance"`` (pixels) and
    ``"seconds"``: 1 decimal; ``"percent"``: one decimal and a % sign;
    ``"count"``: an integer. ``None`` (or NaN) is an en dash. With ``sd``, the
    spread follows as ``± sd`` in the same format.

    >>> fmt(0.98827), fmt(11.964, "distance"), fmt(None), fmt(0.5, sd=0.0123)
    ('0.988', '12.0', '–', '0.500 ± 0.012')
    >>> fmt(0.9712, "percent"), fmt(7, "count")
    ('97.1 %', '7')
    """
    if value is None or value != value:  # None or NaN
        return "–"
    if kind == "percent":
        spread = f" ± {100 * sd:.1f}" if sd is not None and sd == sd else ""
        return f"{100 * value:.1f}{spread} %"
    if kind in ("distance", "seconds"):
        text = f"{value:.1f}"
    elif kind == "count":
        text = f"{int(round(value))}"
    elif kind in ("iou", "rate", "fraction"):
        text = f"{value:.3f}"
    else:
        raise ValueError(f"unknown number kind {kind!r}: use iou, rate, fraction, distance, seconds, percent, count")
    if sd is not None and sd == sd:
        text += " ± " + fmt(sd, kind)
    return text


def value_and_sd(row: Mapping, key: str) -> tuple[float | None, float | None]:
    """``(value, sd)`` of ``row[key]``: a plain number (sd from ``row[key + "_sd"]`` if there)
    or a mapping with ``mean`` and ``sd``/``std``.

    >>> value_and_sd({"iou": 0.9, "iou_sd": 0.01}, "iou"), value_and_sd({"iou": {"mean": 0.8, "sd": 0.1}}, "iou")
    ((0.9, 0.01), (0.8, 0.1))
    """
    value = row.get(key)
    if isinstance(value, Mapping):
        return value.get("mean"), value.get("sd", value.get("std"))
    return value, row.get(f"{key}_sd")


@dataclass(frozen=True)
class Column:
    """One metric column.

    Attributes:
        key: the key in a result row (e.g. ``"fg_hit_rate"``).
        name: plain label (e.g. ``"fg hit rate"``).
        kind: number format for :func:`fmt`.
        unit: shown in brackets after the name (e.g. ``"px"``).
        better: ``"higher"`` (↑), ``"lower"`` (↓) or ``None`` (no direction).
    """

    key: str
    name: str
    kind: str = "rate"
    unit: str = ""
    better: str | None = None

    def __post_init__(self) -> None:
        if self.better not in (None, "higher", "lower"):
            raise ValueError(f"better must be 'higher', 'lower' or None, got {self.better!r}")

    @property
    def header(self) -> str:
        """``name (unit) ↑``.

        >>> Column("fg_distance", "fg distance", "distance", "px", "lower").header
        'fg distance (px) ↓'
        """
        arrow = {"higher": " ↑", "lower": " ↓", None: ""}[self.better]
        return f"{self.name}{f' ({self.unit})' if self.unit else ''}{arrow}"

    def cell(self, row: Mapping | None) -> str:
        if row is None:
            return fmt(None)
        value, sd = value_and_sd(row, self.key)
        return fmt(value, self.kind, sd)


METRICS: tuple[Column, ...] = (
    Column("iou", "IoU", "iou", better="higher"),
    Column("fg_hit_rate", "fg hit", "rate", better="higher"),
    Column("fg_distance", "fg dist", "distance", "px", "lower"),
    Column("bg_hit_rate", "bg hit", "rate", better="lower"),
    Column("bg_distance", "bg dist", "distance", "px"),
)
"""Every metric of a pipeline (see the book's Reference › Metrics), in table order."""

POINT_METRICS: tuple[Column, ...] = METRICS[1:]
"""The point metrics alone (prompt strategies have no mask)."""


@dataclass(frozen=True)
class Table:
    """A table of formatted cells.

    Attributes:
        title: caption.
        header: column headers, the first for the row labels.
        rows: each a list of ``len(header)`` strings.
        groups: ``{row index: label}``: a full-width group row is drawn before that row.
        note: a sentence under the table (sources, definitions).
        wrap: cells of text that wrap (a table of words, not of numbers).
    """

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    groups: Mapping[int, str] = field(default_factory=dict)
    note: str = ""
    wrap: bool = False

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"a row of {len(row)} cells under {len(self.header)} headers: {row}")

    def to_html(self, caption: bool = True, css_class: str = "camseg-table") -> str:
        """An HTML table (escaped), wrapped in ``<div class="camseg-table-wrap">`` so it scrolls
        inside its box on a narrow screen."""
        e = html.escape
        head = "".join(f"<th>{e(h)}</th>" for h in self.header)
        body = []
        for i, row in enumerate(self.rows):
            if i in self.groups:
                body.append(f'<tr class="group"><td colspan="{len(self.header)}">{e(self.groups[i])}</td></tr>')
            body.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
        cap = f"<caption>{e(self.title)}</caption>" if caption and self.title else ""
        note = f'<p class="camseg-table-note">{e(self.note)}</p>' if self.note else ""
        css_class += " camseg-wrap" if self.wrap else ""
        return (f'<div class="camseg-table-wrap"><table class="{css_class}">{cap}<thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table>{note}</div>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_text(self) -> str:
        """Aligned plain text: labels left, numbers right, two spaces between columns."""
        lines = [self.header, *self.rows]
        widths = [max(len(line[j]) for line in lines) for j in range(len(self.header))]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths)))

        out = [self.title] if self.title else []
        out += [line(self.header), "  ".join("-" * w for w in widths)]
        for i, row in enumerate(self.rows):
            if i in self.groups:
                out.append(self.groups[i])
            out.append(line(row))
        if self.note:
            out.append(self.note)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.to_text()

    def to_frame(self):
        """A pandas DataFrame of the cells (strings), indexed by the first column."""
        import pandas as pd

        return pd.DataFrame([r[1:] for r in self.rows], index=[r[0] for r in self.rows],
                            columns=list(self.header[1:])).rename_axis(self.header[0])


def _backend(results: Iterable[Mapping]) -> str:
    names = sorted({str(r.get("segmenter")) for r in results if r and r.get("segmenter")})
    return ", ".join(names)


def _split(results: Iterable[Mapping]) -> str:
    return ", ".join(sorted({str(r.get("split", "test")) for r in results if r})) or "test"


def pipeline_table(evals: Mapping[str, Mapping], columns: Sequence[Column] = METRICS, seconds: bool = False) -> Table:
    """Every metric of every pipeline, one group of rows per split.

    Args:
        evals: ``{"clean": result, "degraded": result}`` (any split tags), each
            a result of :func:`camseg.evaluation.evaluate.evaluate`.
        columns: the metrics to show.
        seconds: add the wall time of each pipeline.
    """
    cols = list(columns) + ([Column("seconds", "time", "seconds", "s")] if seconds else [])
    rows, groups = [], {}
    for tag, res in evals.items():
        if not res:
            continue
        groups[len(rows)] = (f"{label(tag)}: {res['n_images']} images, accuracy of the explained class "
                             f"{fmt(res['classifier_accuracy'], 'percent')}")
        for name, m in res["pipelines"].items():
            rows.append((label(name), *(c.cell(m) for c in cols)))
    return Table(f"Every metric on the {_split(evals.values())} split (segmenter: {_backend(evals.values())})",
                 ("pipeline", *(c.header for c in cols)), tuple(rows), groups,
                 "IoU: mean over images. Hit rates: fraction of points inside the true mask. "
                 "Distances: mean pixels to the mask's centre of mass.")


def strategy_table(evals: Mapping[str, Mapping], columns: Sequence[Column] = POINT_METRICS) -> Table:
    """The prompt strategies scored on their points alone, one group of rows per split."""
    rows, groups = [], {}
    for tag, res in evals.items():
        if not res:
            continue
        groups[len(rows)] = label(tag)
        strategies = res.get("strategies", {})
        for name in [*STRATEGY_LABELS, *(k for k in strategies if k not in STRATEGY_LABELS)]:
            if name in strategies:
                rows.append((strategy_label(name), *(c.cell(strategies[name]) for c in columns)))
    return Table(f"Prompt points on the {_split(evals.values())} split (segmenter: {_backend(evals.values())})",
                 ("prompt strategy", *(c.header for c in columns)), tuple(rows), groups)


def strategy_split_table(evals: Mapping[str, Mapping], keys: Sequence[str] = ("fg_hit_rate", "bg_hit_rate"),
                         skip: Sequence[str] = ()) -> Table:
    """The prompt strategies scored on their points alone, compact: one row per strategy (but those in
    ``skip``), one column per metric in ``keys`` and split (for the PDF)."""
    cols = {c.key: c for c in POINT_METRICS}
    tags = [t for t, r in evals.items() if r]
    names = list(dict.fromkeys(n for t in tags for n in [*STRATEGY_LABELS, *evals[t].get("strategies", {})]
                               if n in evals[t].get("strategies", {}) and n not in skip))
    rows = tuple((strategy_label(n), *(cols[k].cell(evals[t]["strategies"].get(n)) for k in keys for t in tags))
                 for n in names)
    short = {"clean": "clean", "degraded": "degraded"}
    header = tuple(f"{cols[k].name}, {short.get(t, t)}{cols[k].header[len(cols[k].name):]}" for k in keys for t in tags)
    return Table(f"Prompt points on the {_split(evals.values())} split (segmenter: {_backend(evals.values())})",
                 ("prompt strategy", *header), rows)


def best_threshold(scores: Mapping[str | float, float]) -> tuple[float, float]:
    """The threshold with the highest score and that score; ties go to the lower threshold.

    ``scores`` maps a threshold (a number or its string, as in the JSON
    results) to a mean IoU.

    >>> best_threshold({"0.3": 0.41, "0.4": 0.45, "0.5": 0.45})
    (0.4, 0.45)
    """
    if not scores:
        raise ValueError("no thresholds to choose from")
    items = sorted((float(t), float(v)) for t, v in scores.items())
    t, v = max(items, key=lambda tv: (tv[1], -tv[0]))
    return t, v


def baseline_threshold(study: CamStudy, kind: str = "cam_only") -> tuple[float, float, str]:
    """A CAM-alone baseline's threshold and its test-split IoU: ``(threshold, IoU, chosen_on)``.

    ``kind`` is ``"cam_only"`` or ``"cam_slic"``. The threshold is the best on
    the validation split (``<kind>_iou_val``, ``chosen_on="val"``); a study
    made before those were recorded falls back to the test split's own best
    (``chosen_on="test"``, optimistic).

    >>> from camseg.build.artifacts import CamStudy
    >>> study = CamStudy.from_json({"rows": [], "cam_only_iou": {"0.3": 0.40, "0.5": 0.44},
    ...                             "cam_only_iou_val": {"0.3": 0.5, "0.5": 0.4}})
    >>> baseline_threshold(study)
    (0.3, 0.4, 'val')
    """
    test = study.curve(kind, "test")
    val = study.curve(kind, "val")
    if not val:
        t, v = best_threshold(test)
        return t, v, "test"
    t, _ = best_threshold(val)
    by_t = {float(k): float(x) for k, x in test.items()}
    if t not in by_t:
        raise ValueError(f"threshold {t} chosen on val was not measured on test (have {sorted(by_t)})")
    return t, by_t[t], "val"


def iou_table(evals: Mapping[str, Mapping], cam_study: CamStudy | None = None) -> Table:
    """Mean IoU per pipeline, one column per split, with the CAM-only baselines below.

    The baselines' threshold is chosen on the validation split
    (:func:`baseline_threshold`); the table's note says which split chose it.
    """
    tags = [t for t, r in evals.items() if r]
    col = Column("iou", "IoU", "iou")
    names = list(dict.fromkeys(n for t in tags for n in evals[t]["pipelines"]))
    rows = [(label(n), *(col.cell(evals[t]["pipelines"].get(n)) for t in tags)) for n in names]
    note = ""
    if cam_study:
        blank = ("–",) * (len(tags) - 1)
        chosen = set()
        for kind, text in (("cam_only", "CAM alone"), ("cam_slic", "CAM + SLIC superpixels")):
            if cam_study.curve(kind):
                t, v, on = baseline_threshold(cam_study, kind)
                chosen.add(on)
                rows.append((f"{text}, threshold {t:.1f}", fmt(v, "iou"), *blank))
        note = ("CAM-alone baselines use no segmenter; their threshold is the best on the validation split."
                if chosen == {"val"} else
                "CAM-alone baselines use no segmenter; their threshold is the best on this test split, "
                "so they are optimistic.")
    return Table(f"Mean IoU on the test split (segmenter: {_backend(evals[t] for t in tags)})",
                 ("pipeline", *(f"IoU ↑, {label(t)}" for t in tags)), tuple(rows), note=note)


def per_class_table(result: Mapping, classes: Sequence[str] | None = None) -> Table:
    """Mean IoU per true class (columns) for each pipeline (rows) of one result."""
    pipelines = result["pipelines"]
    classes = list(classes or dict.fromkeys(c for m in pipelines.values() for c in m.get("per_class_iou", {})))
    rows = tuple((label(n), *(fmt(m.get("per_class_iou", {}).get(c), "iou") for c in classes))
                 for n, m in pipelines.items())
    return Table(f"Mean IoU per true class ({label('degraded' if result.get('degraded') else 'clean')}; "
                 f"segmenter: {result.get('segmenter')})", ("pipeline", *classes), rows)


def cam_study_table(study: CamStudy) -> Table:
    """Grad-CAM vs Grad-CAM++ per target layer: CAM mass inside the mask and the pointing game."""
    mass = Column("mass_inside", "CAM mass inside", "fraction", better="higher")
    game = Column("pointing_game", "pointing game", "fraction", better="higher")
    rows = []
    for r in study.rows:
        layers = " + ".join(str(n).replace("backbone.", "") for n in r.layers)
        cells = {"mass_inside": r.mass_inside, "pointing_game": r.pointing_game}
        rows.append((r.method, layers + (" (default)" if r.default else ""), mass.cell(cells), game.cell(cells)))
    return Table(f"How well the CAM points at the shape ({study.n_images or '?'} test images)",
                 ("method", "target layer", mass.header, game.header), tuple(rows))


PUBLISHED: tuple[dict, ...] = (
    {"name": "quantumFeline/DNN-all",
     "url": "https://github.com/quantumFeline/DNN-all/blob/main/HW_2_Grad_CAM_Segmentation.ipynb",
     "classifier": "ResNet18", "segmenter": "SAM ViT-B", "accuracy": 0.896, "argmax_hit": 0.684,
     "centroid_hit": 0.838, "point_hit": None, "iou_fg": 0.870, "iou_fb": 0.868,
     "short": "accuracy 0.896, fg hit 0.684 (CAM max) and 0.838 (CAM centroid), IoU 0.870 (one point) and 0.868 "
              "(with background points): printed outputs under \u201cTraining a classifier\u201d and "
              "\u201cPipeline implementation and evaluation\u201d",
     "where": "notebook HW_2_Grad_CAM_Segmentation.ipynb: test accuracy 89.6 % printed under \u201cTraining a "
              "classifier\u201d; under \u201cPipeline implementation and evaluation\u201d, the hit rates of the "
              "weighted CAM centroid (0.838) and the CAM maximum (0.684) on the 500 test images, then "
              "\u201cAverage IoU\u201d 0.870 (foreground point) and 0.868 (foreground + background points)"},
    {"name": "1miqi1/Image-segmentation-without-user-input",
     "url": "https://github.com/1miqi1/Image-segmentation-without-user-input/blob/main/report.pdf",
     "classifier": "ResNet18", "segmenter": "SAM ViT-B", "accuracy": 0.900, "argmax_hit": None,
     "centroid_hit": None, "point_hit": 0.773, "iou_fg": 0.769, "iou_fb": 0.765,
     "short": "IoU 0.769 (one point) and 0.765 (with a background point), fg hit 0.773: report.pdf, section 3, "
              "Table 1; accuracy 0.900: its notebook, under \u201cTraining a classifier\u201d",
     "where": "report.pdf, section 3 (Results), Table 1: hit rate 0.773 and IoU 0.769 with one foreground "
              "point (the maximum of a smoothed CAM), 0.770 and 0.765 with a background point too; test "
              "accuracy 90.0 % printed under \u201cTraining a classifier\u201d in its notebook "
              "hw_2_gradcam_and_sam_student.ipynb"},
)
"""Figures stated by published solutions of this task (typed from the files named in ``where``, not computed):
``accuracy`` is the classifier's own top class on the 500 test images; ``argmax_hit``/``centroid_hit`` the
foreground hit rate of the CAM maximum / weighted centroid; ``point_hit`` that of the solution's own point;
``iou_fg``/``iou_fb`` the mean IoU with SAM ViT-B of one foreground point / with background points too."""


def published_iou() -> list[str]:
    """The published mean IoU with one foreground point, as the prose quotes it: ``"0.870 for quantumFeline/DNN-all"``.

    >>> published_iou()[0]
    '0.870 for quantumFeline/DNN-all'
    """
    return [f"{fmt(r['iou_fg'], 'iou')} for {r['name']}" for r in PUBLISHED]


def published_sources(markup: str = "md") -> str:
    """Each published solution by name and link, with where its figures are stated: Markdown (``"md"``, for
    the book) or HTML (``"html"``, for the PDF: the link printed in full, the figures and where, in short)."""
    if markup not in ("md", "html"):
        raise ValueError(f"markup must be 'md' or 'html', got {markup!r}")
    if markup == "md":
        return "\n".join(f"* [{r['name']}]({r['url']}): {r['where']}." for r in PUBLISHED)
    return "".join(f'<li><a href="{html.escape(r["url"])}">{html.escape(r["url"].removeprefix("https://"))}</a>: '
                   f"{html.escape(r.get('short', r['where']))}.</li>" for r in PUBLISHED)


def published_table(evals: Mapping[str, Mapping], accuracy: float | None = None) -> Table:
    """This build's clean-test figures beside the published ones (:data:`PUBLISHED`).

    ``accuracy``: this build's top-class accuracy (the classifier's own class, one pass, as the
    published solutions measure it); default the evaluation's accuracy of the explained class."""
    clean = evals["clean"]
    s = clean.get("strategies", {})
    p = clean["pipelines"]
    acc = accuracy if accuracy is not None else clean.get("classifier_accuracy")

    def hit(name: str) -> str:
        return fmt((s.get(name) or {}).get("fg_hit_rate"))

    rows = [(r["name"].split("/")[0], fmt(r["accuracy"]), fmt(r["argmax_hit"]), fmt(r["centroid_hit"]),
             fmt(r["point_hit"]), fmt(r["iou_fg"], "iou"), fmt(r["iou_fb"], "iou")) for r in PUBLISHED]
    rows.append(("camseg (this build)", fmt(acc), hit("cam_argmax"), hit("cam_centroid"),
                 fmt((p.get("foreground") or {}).get("fg_hit_rate")),
                 fmt((p.get("foreground") or {}).get("iou"), "iou"),
                 fmt((p.get("foreground_background") or {}).get("iou"), "iou")))
    oracle = f" (its oracle click: {fmt(p['oracle']['iou'], 'iou')})" if "oracle" in p else ""
    return Table("This build beside the published solutions (clean test split)",
                 ("solution", "top-class accuracy ↑", "hit, CAM max ↑", "hit, CAM centroid ↑",
                  "hit, its own point ↑", "IoU, fg point ↑", "IoU, fg + bg ↑"),
                 tuple(rows),
                 note="Published solutions: ResNet18 and SAM ViT-B; hit: fraction of foreground points on the "
                      "shape; – where a solution states no such figure. camseg's point is mask scoring's and "
                      f"its masks come from {clean.get('segmenter')}{oracle}; unless that names SAM, it is an "
                      "offline stand-in and its IoU is not comparable with SAM's.")


# --------------------------------------------------------------------------
# The seeds and the shift suite (camseg.publishing.findings condenses them)

def suite_table(f) -> Table:
    """The headline of the shift suite: per set, mean ± sd over the seeds of the foreground + background
    pipeline's fg hit and IoU, and how far it stays below a perfect click (``f``: a
    :class:`camseg.publishing.findings.Findings`, or None for a build without the suite)."""
    hit, iou = Column("fg_hit", "fg hit", better="higher"), Column("iou", "IoU", "iou", better="higher")
    header = ("set", hit.header, iou.header, "oracle − IoU ↓")
    if f is None:
        return Table("The shift suite (not built)", header, (), note="camseg build --suite-size 0 skips it.")
    rows = tuple((s.label, fmt(s.fg_hit[0], sd=s.fg_hit[1]), fmt(s.iou[0], "iou", s.iou[1]),
                  fmt(s.oracle[0] - s.iou[0], "iou")) for s in f.sets)
    sizes = sorted({s.n_images for s in f.shift})
    std = f.standard
    n = (f"{std.n_images} images on the standard split, " if std else "") + (
        f"{sizes[0]} on each shift set" if len(sizes) == 1 else "images per set: " + ", ".join(map(str, sizes)))
    return Table(f"Mean ± sd over {len(f.seeds)} classifier seed{'s' if len(f.seeds) != 1 else ''}", header, rows,
                 note=f"{n}. oracle − IoU: how far the pipeline stays below one perfect point on the same images. "
                      "The distractor set is prompted with its label (the first shape's class).")


def suite_detail_table(f) -> Table:
    """Per set, mean ± sd over the seeds: the accuracy of the explained class, the fg hit with the published
    region score (the "before" of region selection) and background points on the shape."""
    header = ("set", "explained-class accuracy ↑", "fg hit, published score ↑", "bg in shape ↓")
    if f is None:
        return Table("", header, ())
    rows = tuple((s.label, fmt(s.accuracy[0], sd=s.accuracy[1]) if s.accuracy else "–",
                  fmt(s.fg_hit_published[0], sd=s.fg_hit_published[1]) if s.fg_hit_published else "–",
                  fmt(s.bg_in_shape[0], "percent")) for s in f.sets)
    return Table("", header, rows,
                 note="Explained class: the class the CAM explains, the vote of the image's four flips. The "
                      "distractor set's images hold two shapes and it is prompted with its label, so no accuracy "
                      "is given for it (–).")


def per_seed_table(per_seed: Sequence[Mapping], seeds: Sequence[int],
                   pipeline: str = "foreground_background") -> Table:
    """One row per seed on one set: the accuracy of the explained class, fg hit, IoU and the oracle's IoU."""
    rows = tuple((f"seed {s}", fmt(r["classifier_accuracy"]), fmt(r["pipelines"][pipeline]["fg_hit_rate"]),
                  fmt(r["pipelines"][pipeline]["iou"], "iou"), fmt(r["pipelines"]["oracle"]["iou"], "iou"))
                 for s, r in zip(seeds, per_seed, strict=True))
    return Table("", ("seed", "explained-class accuracy ↑", "fg hit ↑", "IoU ↑", "oracle IoU ↑"), rows)


def condition_table(frames: Mapping[str, object], conditions: Sequence[str] | None = None) -> Table:
    """The tables of :func:`camseg.evaluation.robustness.condition_frames` (those named in ``conditions``,
    default all) as one table, a group of rows each (bins without images are left out)."""
    rows, groups = [], {}
    for title, frame in frames.items():
        if not len(frame) or (conditions is not None and title not in conditions):
            continue
        groups[len(rows)] = title
        for name, r in frame.iterrows():
            images = f"{int(r['images'])}" if "images" in frame.columns else "–"
            rows.append((str(name), images, fmt(r["IoU"], "iou"), fmt(r["fg hit"])))
    return Table("", ("bin", "images", "IoU ↑", "fg hit ↑"), tuple(rows), groups,
                 note="Images counted over all seeds; bins without images are left out.")


def strategies_suite_table(sets: Mapping[str, Sequence[Mapping]],
                           strategies: Sequence[str] = ("cam_argmax", "cam_centroid", "cam_interior",
                                                        "mask_scoring_similarity", "mask_scoring")) -> Table:
    """fg hit (mean over seeds) of the published point strategies and camseg's on the same CAMs, per set."""
    from camseg.evaluation.robustness import mean_sd
    from camseg.publishing.findings import set_label

    names = [s for s in strategies if any(s in runs[0].get("strategies", {}) for runs in sets.values() if runs)]
    rows = tuple((set_label(name), *(fmt(mean_sd([r["strategies"][s]["fg_hit_rate"] for r in runs])[0])
                                     if s in runs[0].get("strategies", {}) else "–" for s in names))
                 for name, runs in sets.items() if runs)
    return Table("", ("set", *(f"{SHORT_STRATEGY_NAMES.get(s, s)} ↑" for s in names)), rows)


SHORT_STRATEGY_NAMES: dict[str, str] = {
    "cam_argmax": "CAM max", "cam_centroid": "CAM centroid", "cam_interior": "CAM interior",
    "mask_scoring_similarity": "published score", "mask_scoring": "camseg score"}
"""Column names of :func:`strategies_suite_table`."""


def failures_suite_table(f) -> Table:
    """Failure causes (:func:`camseg.evaluation.robustness.failure_causes`) summed over the seeds, per set."""
    from camseg.evaluation.robustness import CAUSES

    rows = tuple((s.label, *(str(s.causes.get(c, 0)) for c in CAUSES)) for s in (f.sets if f else ()))
    return Table("", ("set", *CAUSES), rows)


SETTINGS: tuple[tuple[str, str, str, str], ...] = (
    ("offline segmenter: smoothing, leak guard, noise gain", "wide validation set, true centre point",
     "python results/regiongrow_tuning.py artifacts/data", "oracle-point IoU 0.775 → 0.864"),
    ("Grad-CAM layers _blocks.10 + 14 + 15, with the mirror image", "600 wide validation images, 3 seeds",
     "python results/cam_layers.py artifacts", "pointing game 0.703 → 0.724 with the mirror image"),
    ("region score of mask scoring", "500 wide validation images, 3 seeds; 500 others held out",
     "python -m camseg.evaluation.regionfit", "held-out fg hit 0.863 (published score) → 0.910"),
    ("shortlist of 24 regions", "500 held-out wide validation images, seed 0",
     "python -m camseg.evaluation.regionfit --shortlists 12,24,0", "fg hit 0.928 (12), 0.932 (24), 0.932 (all)"),
    ("40 % of training shapes across the border", "border, wide and low-contrast validation sets, 3 seeds",
     "python results/wide_border.py", "border set: accuracy 0.914 → 0.925, fg hit 0.951 → 0.967"),
    ("region score kept after that change", "500 held-out wide validation images, 3 seeds",
     "python -m camseg.evaluation.regionfit", "fg hit 0.864 refitted, 0.864 kept"),
    ("at most 64 candidate points an image", "wide, border and low-contrast validation sets, 3 seeds",
     "python results/candidates.py artifacts", "fg hit as with 96 (wide 0.882) at 0.76–0.79× the time"),
    ("explained class: the vote of four flips", "seven validation sets, 3 seeds",
     "python results/class_flips.py artifacts", "accuracy on the wide set 0.873 → 0.889, border 0.932 → 0.947"),
)
"""The way each tuned setting was chosen, as rows (setting, chosen on, command, the figure that decided it),
typed from the outputs of the commands (validation sets only), in the order they were made."""


def settings_table() -> Table:
    """:data:`SETTINGS` as a table."""
    return Table("", ("setting", "chosen on", "command", "figure (validation)"), SETTINGS,
                 note="Each choice uses the ones above it; none looked at a test split or at the shift suite.",
                 wrap=True)


def format_table(result: dict) -> str:
    """A plain-text table of a result of :func:`camseg.evaluation.evaluate.evaluate`, with the same labels,
    units and number formats as the book and the PDF."""
    tag = "degraded" if result.get("degraded") else "clean"
    first = pipeline_table({tag: result}, seconds=True).to_text()
    return f"{result.get('split', 'test')} split\n{first}\n\n{strategy_table({tag: result}).to_text()}"
