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
    "Column", "METRICS", "PIPELINE_LABELS", "POINT_METRICS", "PUBLISHED", "STRATEGY_LABELS", "Table",
    "baseline_threshold", "best_threshold", "cam_study_table", "fmt", "iou_table", "label", "per_class_table",
    "pipeline_table",
    "published_table", "strategy_label", "strategy_table", "value_and_sd",
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
    """

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    groups: Mapping[int, str] = field(default_factory=dict)
    note: str = ""

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
        groups[len(rows)] = (f"{label(tag)}: {res['n_images']} images, classifier accuracy "
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
    {"system": "published solutions (ResNet18 + SAM ViT-B)", "segmenter": "SAM ViT-B",
     "accuracy": "about 0.90", "argmax_hit": "0.68", "centroid_hit": "0.88", "iou": "0.72–0.90",
     "source": "published results on this task (the notebook HW_2_Grad_CAM_Segmentation.ipynb in the public "
               "repository quantumFeline/DNN-all; the public repository 1miqi1/Image-segmentation-without-user-input)"},
)
"""Figures reported by published solutions of this task (typed from their source, not computed)."""


def published_table(evals: Mapping[str, Mapping], accuracy: float | None = None) -> Table:
    """This build's clean-test figures beside the published ones (:data:`PUBLISHED`)."""
    clean = evals["clean"]
    s = clean.get("strategies", {})
    p = clean["pipelines"]
    acc = accuracy if accuracy is not None else clean.get("classifier_accuracy")

    def cell(row: Mapping | None, key: str) -> str:
        return Column(key, key).cell(row) if row else "–"

    ours = (f"camseg (this build, {clean.get('segmenter')})", str(clean.get("segmenter")), fmt(acc),
            cell(s.get("cam_argmax"), "fg_hit_rate"), cell(s.get("cam_centroid"), "fg_hit_rate"),
            fmt(p.get("foreground_background", {}).get("iou"))
            + (f" (oracle {fmt(p['oracle']['iou'])})" if "oracle" in p else ""))
    rows = [(r["system"], r["segmenter"], r["accuracy"], r["argmax_hit"], r["centroid_hit"], r["iou"])
            for r in PUBLISHED]
    return Table("This build beside the published solutions (clean test split)",
                 ("system", "segmenter", "accuracy ↑", "hit, CAM max ↑", "hit, centroid ↑", "mean IoU ↑"),
                 (*rows, ours),
                 note="Accuracy: the classifier's on the test split; hit: fraction of foreground points on the "
                      "shape. Sources: " + "; ".join(r["source"] for r in PUBLISHED) + ". The camseg row is "
                      "computed by this build; its segmenter is an offline stand-in unless it names SAM, "
                      "so its IoU is not comparable with SAM's.")


def format_table(result: dict) -> str:
    """A plain-text table of a result of :func:`camseg.evaluation.evaluate.evaluate`, with the same labels, units and number
    formats as the book and the PDF."""
    tag = "degraded" if result.get("degraded") else "clean"
    first = pipeline_table({tag: result}, seconds=True).to_text()
    return f"{result.get('split', 'test')} split\n{first}\n\n{strategy_table({tag: result}).to_text()}"
