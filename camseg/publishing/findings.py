"""What the build found, in a few sentences: the book's intro and robustness chapter and the PDF share them.

:func:`suite_findings` condenses the seeds x shift-set evaluations
(:class:`camseg.build.suite.SuiteResults`) into one :class:`SetResult` per set
(mean ± sd over the classifier seeds) and :func:`findings` turns them into
sentences whose wording follows the numbers (:mod:`camseg.publishing.prose`):
how the standard split compares with a perfect click (is it saturated?), how
the method holds on the shift sets, where it is weakest and why (the failure
causes), what JPEG does, and what the segmenter that made the masks means for
the IoU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from camseg.evaluation.robustness import CAUSES, failure_causes, mean_sd
from camseg.publishing.prose import change, compare, gap, num, pm

__all__ = ["CAUSE_WORDS", "HOLDS_IOU", "IMPROVE", "SET_LABELS", "Findings", "SetResult", "Sentence", "findings",
           "next_steps", "set_label", "suite_findings"]

SET_LABELS: dict[str, str] = {
    "standard": "standard split",
    "plain": "wide geometry, clean",
    "small": "small shapes",
    "lowcontrast": "faint shapes",
    "border": "shapes cut by the border",
    "lowcontrast_border": "faint shapes cut by the border",
    "jpeg95": "JPEG quality 95",
    "jpeg90": "JPEG quality 90",
    "jpeg75": "JPEG quality 75",
    "jpeg50": "JPEG quality 50",
    "noise": "Gaussian noise",
    "distractor": "a second shape (distractor)",
}
"""Plain names of the evaluated sets (``standard``: the published test split; the others:
:data:`camseg.data.profiles.SHIFT_PROFILES`)."""

HOLDS_IOU = 0.9
"""The mean IoU at or above which the findings say the method holds on a set."""

CAUSE_WORDS: dict[str, str] = {
    "segmenter": "the point is on the shape but the mask is poor (the segmenter)",
    "region choice": "the CAM peaked on the shape but another region won (the region choice)",
    "CAM": "the CAM's peak is off the shape (the CAM)",
    "classifier": "the classifier named the wrong class",
}
"""Each failure cause of :func:`camseg.evaluation.robustness.failure_causes` in plain words."""


def set_label(name: str) -> str:
    """The plain name of an evaluated set (the key itself when unknown).

    >>> set_label("lowcontrast_border"), set_label("new")
    ('faint shapes cut by the border', 'new')
    """
    return SET_LABELS.get(name, name)


@dataclass(frozen=True)
class SetResult:
    """One evaluated set, mean ± sd over the classifier seeds, for the foreground + background pipeline.

    Attributes:
        name: the set's key (``"standard"`` or a shift profile).
        n_images: images in the set.
        seeds: how many seeds were evaluated.
        explain: ``"top"`` (the classifier's class is explained) or ``"label"`` (the set's label is).
        iou: (mean, sd) of the mean IoU.
        fg_hit: (mean, sd) of the foreground hit rate.
        oracle: (mean, sd) of the oracle point's mean IoU.
        bg_in_shape: (mean, sd) of the background points' hit rate on the shape.
        accuracy: (mean, sd) of the accuracy of the explained class; None for a set explained by its
            label (a top-class accuracy against one label of a two-shape image measures nothing).
        fg_hit_published: (mean, sd) of the fg hit with the published region score, or None.
        causes: failure causes summed over the seeds (:func:`camseg.evaluation.robustness.failure_causes`).
        per_seed_iou: the mean IoU of each seed, in seed order.
    """

    name: str
    n_images: int
    seeds: int
    explain: str
    iou: tuple[float, float]
    fg_hit: tuple[float, float]
    oracle: tuple[float, float]
    bg_in_shape: tuple[float, float]
    accuracy: tuple[float, float] | None
    fg_hit_published: tuple[float, float] | None = None
    causes: Mapping[str, int] = field(default_factory=dict)
    per_seed_iou: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        return set_label(self.name)

    @property
    def failed(self) -> int:
        """The number of images, summed over the seeds, with any cause but ``ok``."""
        return sum(n for cause, n in self.causes.items() if cause != "ok")


@dataclass(frozen=True)
class Findings:
    """The suite condensed (:func:`suite_findings`).

    Attributes:
        seeds: the classifier seeds.
        sets: one :class:`SetResult` per evaluated set, in the suite's order.
        overall_iou: (mean, sd) over seeds of each seed's mean IoU over the shift sets (all but standard).
        overall_hit: the same for the fg hit rate.
    """

    seeds: tuple[int, ...]
    sets: tuple[SetResult, ...]
    overall_iou: tuple[float, float]
    overall_hit: tuple[float, float]

    def get(self, name: str) -> SetResult | None:
        return next((s for s in self.sets if s.name == name), None)

    @property
    def standard(self) -> SetResult | None:
        return self.get("standard")

    @property
    def shift(self) -> tuple[SetResult, ...]:
        """The shift sets (every set but the standard split)."""
        return tuple(s for s in self.sets if s.name != "standard")

    @property
    def holding(self) -> tuple[SetResult, ...]:
        """Shift sets whose mean IoU is at least :data:`HOLDS_IOU`."""
        return tuple(s for s in self.shift if s.iou[0] >= HOLDS_IOU)

    @property
    def weakest(self) -> tuple[SetResult, ...]:
        """The shift sets from the lowest mean IoU up."""
        return tuple(sorted(self.shift, key=lambda s: s.iou[0]))


def _set_result(name: str, per_seed: Sequence[Mapping], pipeline: str) -> SetResult:
    p = [r["pipelines"][pipeline] for r in per_seed]
    explain = str(per_seed[0].get("explain") or ("label" if name == "distractor" else "top"))
    causes = dict.fromkeys(CAUSES, 0)
    for r in per_seed:
        if "per_image" in r:
            for cause, n in failure_causes(r["per_image"], pipeline, r.get("explain", explain)).items():
                causes[cause] += n
    published = [r.get("strategies", {}).get("mask_scoring_similarity") for r in per_seed]
    return SetResult(
        name=name, n_images=int(per_seed[0]["n_images"]), seeds=len(per_seed), explain=explain,
        iou=mean_sd([m["iou"] for m in p]), fg_hit=mean_sd([m["fg_hit_rate"] for m in p]),
        oracle=mean_sd([r["pipelines"]["oracle"]["iou"] for r in per_seed]),
        bg_in_shape=mean_sd([m["bg_hit_rate"] or 0.0 for m in p]),
        accuracy=None if explain == "label" else mean_sd([r["classifier_accuracy"] for r in per_seed]),
        fg_hit_published=mean_sd([m["fg_hit_rate"] for m in published]) if all(published) else None,
        causes=causes, per_seed_iou=tuple(float(m["iou"]) for m in p))


def suite_findings(suite, pipeline: str = "foreground_background") -> Findings | None:
    """The suite (:class:`camseg.build.suite.SuiteResults`, or ``{set: [result per seed]}``) condensed;
    None when it holds no evaluation (a build with ``--suite-size 0``)."""
    sets = getattr(suite, "sets", suite) or {}
    sets = {name: runs for name, runs in sets.items() if runs}
    if not sets:
        return None
    results = tuple(_set_result(name, runs, pipeline) for name, runs in sets.items())
    n_seeds = max(len(runs) for runs in sets.values())
    shift = [name for name in sets if name != "standard" and len(sets[name]) == n_seeds]

    def over_sets(key: str) -> tuple[float, float]:
        if not shift:
            return float("nan"), float("nan")
        per_seed = [sum(sets[n][k]["pipelines"][pipeline][key] for n in shift) / len(shift) for k in range(n_seeds)]
        return mean_sd(per_seed)

    seeds = tuple(getattr(suite, "seeds", ()) or range(n_seeds))
    return Findings(seeds=seeds, sets=results, overall_iou=over_sets("iou"), overall_hit=over_sets("fg_hit_rate"))


@dataclass(frozen=True)
class Sentence:
    """One finding: a short bold lead and the sentence(s) behind it (plain text, no markup)."""

    lead: str
    text: str

    def markdown(self) -> str:
        return f"**{self.lead}** {self.text}"

    def html(self) -> str:
        import html

        return f"<b>{html.escape(self.lead)}</b> {html.escape(self.text)}"


def _seeds(n: int) -> str:
    return f"{n} classifier seed" + ("" if n == 1 else "s")


def _standard(f: Findings) -> Sentence | None:
    s = f.standard
    if s is None:
        return None
    c = compare(s.iou[0], s.oracle[0], s.iou[1])
    text = (f"On the standard test split the pipeline's mean IoU is {pm(*s.iou)} over {_seeds(s.seeds)}, "
            f"{gap(s.iou[0], s.oracle[0], s.iou[1], 'a perfect click')}")
    if c.relation == "lower":
        lead = "It works on the standard split." if s.iou[0] >= HOLDS_IOU else "It falls short on the standard split."
        return Sentence(lead, text + ".")
    return Sentence("It works on the standard split, which is saturated.",
                    text + ": this split no longer tells methods apart.")


def _shift(f: Findings) -> Sentence | None:
    if not f.shift:
        return None
    k, held = len(f.shift), len(f.holding)
    lead = "It holds on most shifted data." if 2 * held >= k else "It drops on shifted data."
    text = (f"Over the {k} shift sets the mean IoU is {pm(*f.overall_iou)} (mean over the sets, ± sd over "
            f"{_seeds(len(f.seeds))}) and the foreground point lands on the shape for {pm(*f.overall_hit)} of the "
            f"images; the IoU is at least {num(HOLDS_IOU, 2)} on {held} of the {k} sets.")
    return Sentence(lead, text)


def _weakest(f: Findings, n: int = 2) -> Sentence | None:
    worst = [s for s in f.weakest if s.explain == "top"][:n] or list(f.weakest[:n])
    if not worst:
        return None
    parts = []
    for s in worst:
        c = compare(s.iou[0], s.oracle[0], s.iou[1])
        limit = ("a perfect click does no better, so the segmenter is the limit" if not c.differs or c.delta > 0
                 else f"a perfect click reaches {num(s.oracle[0])}")
        parts.append(f"{s.label} (IoU {pm(*s.iou)}; {limit})")
    causes = {cause: sum(s.causes.get(cause, 0) for s in worst) for cause in CAUSES if cause != "ok"}
    failed = sum(causes.values())
    text = "It is weakest on " + " and on ".join(parts) + "."
    if failed:
        top = max(causes, key=lambda cause: causes[cause])
        share = "all" if causes[top] == failed else f"{causes[top]}"
        text += (f" Of the {failed} images that fail there (all seeds), {share} fail because "
                 f"{CAUSE_WORDS[top]}.")
    return Sentence("Where it fails, and why.", text)


def _jpeg(f: Findings) -> Sentence | None:
    best, worst = f.get("jpeg95"), f.get("jpeg50")
    if best is None or worst is None:
        return None
    sd = max(best.iou[1], worst.iou[1])
    c = compare(worst.iou[0], best.iou[0], sd)
    lead = "JPEG costs IoU." if c.relation == "lower" else "JPEG barely matters."
    return Sentence(lead, f"Lowering the JPEG quality from 95 to 50 {change(best.iou[0], worst.iou[0], sd)}.")


def _segmenter(backend: str, published_iou: Sequence[str] = ()) -> Sentence:
    if backend.startswith("sam"):
        return Sentence("The masks are SAM's.", f"Every mask was made by SAM ({backend}).")
    quoted = (" (published SAM ViT-B solutions reach " + " and ".join(published_iou) + " with one point)"
              if published_iou else "")
    return Sentence("The IoU is the stand-in's, not SAM's.",
                    f"Every mask was made by {backend}, an offline stand-in for SAM that suits flat-coloured "
                    "shapes unusually well: its IoU says whether the prompts land on the shape, not what SAM "
                    f"would score{quoted}.")


def findings(f: Findings | None, backend: str, published_iou: Sequence[str] = ()) -> list[Sentence]:
    """The build's findings, most important first: the standard split (saturated or not), the shift
    suite (mean ± sd over seeds), the weakest sets and why they fail, JPEG, and the segmenter.

    Args:
        f: the suite condensed (:func:`suite_findings`), or None when the build had no suite.
        backend: the segmenter that made the masks (e.g. ``"regiongrow"``, ``"sam-vit_b"``).
        published_iou: the published solutions' mean IoU, as printed (for the stand-in's sentence).
    """
    if f is None:
        return [Sentence("No shift suite in this build.",
                         "This build evaluated one classifier on the standard split only (camseg build "
                         "--suite-size 0), so it says nothing about seeds or shifted data."),
                _segmenter(backend, published_iou)]
    out = [_standard(f), _shift(f), _weakest(f), _jpeg(f), _segmenter(backend, published_iou)]
    return [s for s in out if s is not None]


IMPROVE: dict[str, str] = {
    "CAM": "a CAM that still peaks on such shapes (other layers, or more such shapes in training)",
    "region choice": "the region score, to keep the region the CAM peaks on",
    "segmenter": "the segmenter's boundary on such edges",
    "classifier": "the classifier on such images",
}
"""What to improve next, by the failure cause that dominates the weakest set."""


def next_steps(f: Findings | None, backend: str, published_iou: Sequence[str] = ()) -> list[str]:
    """At most four sentences on what to do next, each following from a finding: run SAM (or a larger
    SAM), decide on the shift suite when the standard split is saturated, fix the dominant failure
    cause of the weakest set, and what the distractor set says about images with two shapes."""
    out = []
    if backend.startswith("sam"):
        out.append("A larger SAM (ViT-L, ViT-H) may tighten the boundaries of small and faint shapes.")
    else:
        quoted = (f" (published SAM ViT-B solutions reach {' and '.join(published_iou)} with one point)"
                  if published_iou else "")
        out.append(f"Re-running the build with SAM, where its weights can be downloaded, would give the IoU this "
                   f"stand-in ({backend}) only approximates{quoted}.")
    if f is None:
        out.append("A build with the shift suite (camseg build --seeds 3) would show how the method holds on "
                   "shifted data and how much the seeds move it.")
        return out
    std = f.standard
    if std is not None and compare(std.iou[0], std.oracle[0], std.iou[1]).relation != "lower":
        out.append(f"The standard split is saturated (IoU {pm(*std.iou)} against {num(std.oracle[0])} for a "
                   "perfect click), so the shift suite, not that split, should decide between methods.")
    worst = [s for s in f.weakest if s.explain == "top"][:1]
    if worst and worst[0].failed:
        s = worst[0]
        top = max((c for c in CAUSES if c != "ok"), key=lambda c: s.causes.get(c, 0))
        out.append(f"The weakest set, {s.label}, fails mostly because {CAUSE_WORDS[top]}, so the next thing "
                   f"to improve is {IMPROVE[top]}.")
    d = f.get("distractor")
    if d is not None:
        out.append(f"With a second shape of another class in the image and the first one's class named in the "
                   f"prompt, the foreground point lands on the named shape for {pm(*d.fg_hit)} of the images "
                   f"(IoU {pm(*d.iou)}).")
    return out[:4]
