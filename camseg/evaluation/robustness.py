"""Robustness figures from evaluation results: spread over seeds, metrics by condition, failure causes.

Pure functions over the JSON-able results of :func:`camseg.evaluation.evaluate.evaluate`
(its ``per_image`` records) used by the book's robustness chapter:

* :func:`mean_sd`: mean and sample standard deviation over training seeds;
* :func:`by_bins`: a per-image metric averaged within bins of a condition
  (shape area, contrast against the background);
* :func:`failure_causes`: why the foreground point missed, per image, counted;
* :func:`condition_frames`: IoU and fg hit by shape area, contrast and JPEG quality.

The tables and plots that go with them are in :mod:`camseg.publishing.tables`,
:mod:`camseg.publishing.findings` and :mod:`camseg.publishing.viz`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["CAUSES", "CONTRAST_EDGES", "JPEG_SETS", "SIZE_EDGES", "by_bins", "condition_frames", "failure_causes",
           "mean_sd", "seed_table"]

CAUSES: tuple[str, ...] = ("ok", "segmenter", "region choice", "CAM", "classifier")
"""Outcome of one image of the foreground pipeline, in the order they are tested (see :func:`failure_causes`)."""


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0.0 for a single value) of ``values``.

    >>> mean_sd([0.9, 1.0, 0.95])
    (0.95, 0.05)
    """
    v = np.asarray([x for x in values if x is not None], np.float64)
    if not len(v):
        raise ValueError("mean_sd needs at least one value")
    sd = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return round(float(v.mean()), 12), round(sd, 12)


def by_bins(values: Sequence[float], metric: Sequence[float], edges: Sequence[float]) -> list[dict]:
    """Mean of ``metric`` per bin of ``values``: bins ``[edges[k], edges[k + 1])``.

    Returns:
        One dict per bin: ``{"low", "high", "n", "mean"}`` (``mean`` None for an empty bin).

    >>> by_bins([10, 20, 30, 40], [1.0, 0.0, 1.0, 1.0], [0, 25, 50])
    [{'low': 0, 'high': 25, 'n': 2, 'mean': 0.5}, {'low': 25, 'high': 50, 'n': 2, 'mean': 1.0}]
    """
    values, metric = np.asarray(values, np.float64), np.asarray(metric, np.float64)
    if values.shape != metric.shape:
        raise ValueError(f"values and metric must have one entry per image, got {values.shape} and {metric.shape}")
    if len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be increasing with at least two entries, got {list(edges)}")
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (values >= lo) & (values < hi)
        out.append({"low": lo, "high": hi, "n": int(inside.sum()),
                    "mean": float(metric[inside].mean()) if inside.any() else None})
    return out


def failure_causes(per_image: Mapping, pipeline: str = "foreground_background", explain: str = "top",
                   iou_ok: float = 0.5) -> dict[str, int]:
    """Count, per image, what went wrong in ``pipeline`` (the first cause that applies).

    * ``ok``: the foreground point is on the shape and the IoU is at least ``iou_ok``;
    * ``segmenter``: the point is on the shape but the mask is poor (IoU < ``iou_ok``);
    * ``classifier``: the point missed and the top class was wrong (only with
      ``explain="top"``: with a class-name prompt the classifier does not pick);
    * ``CAM``: the point missed and the CAM's maximum is off the shape too;
    * ``region choice``: the point missed although the CAM peaked on the shape.

    Args:
        per_image: the ``per_image`` record of an evaluation result.

    >>> rec = {"label": [0, 1, 2, 3], "predicted": [0, 1, 0, 3], "cam_peak_hit": [1, 1, 0, 1],
    ...        "fg_hit": {"p": [1, 1, 0, 0]}, "iou": {"p": [0.9, 0.2, 0.0, 0.0]}}
    >>> failure_causes(rec, "p")
    {'ok': 1, 'segmenter': 1, 'region choice': 1, 'CAM': 0, 'classifier': 1}
    """
    hit = np.asarray(per_image["fg_hit"][pipeline], bool)
    iou = np.asarray(per_image["iou"][pipeline], np.float64)
    wrong = np.asarray(per_image["label"]) != np.asarray(per_image["predicted"])
    peak = np.asarray(per_image["cam_peak_hit"], bool)
    counts = dict.fromkeys(CAUSES, 0)
    for k in range(len(hit)):
        if hit[k]:
            counts["ok" if iou[k] >= iou_ok else "segmenter"] += 1
        elif explain == "top" and wrong[k]:
            counts["classifier"] += 1
        elif not peak[k]:
            counts["CAM"] += 1
        else:
            counts["region choice"] += 1
    return counts


def seed_table(results: Mapping[str, Sequence[Mapping]], pipeline: str = "foreground_background") -> list[dict]:
    """Mean ± sd over seeds per evaluated set.

    Args:
        results: set name -> one evaluation result per seed.
        pipeline: the pipeline whose fg hit and IoU are summarised.

    Returns:
        One row per set: ``{"set", "n_images", "seeds", "accuracy": (mean, sd), "fg_hit": ...,
        "iou": ..., "oracle_iou": ..., "bg_in_shape": ...}``, and where every seed's result has
        it, ``"fg_hit_published"`` and ``"iou_published"``: the same with the published
        region score (strategy ``mask_scoring_similarity``), the "before" of region selection.
    """
    rows = []
    for name, per_seed in results.items():
        if not per_seed:
            continue
        p = [r["pipelines"][pipeline] for r in per_seed]
        rows.append({
            "set": name, "n_images": int(per_seed[0]["n_images"]), "seeds": len(per_seed),
            "accuracy": mean_sd([r["classifier_accuracy"] for r in per_seed]),
            "fg_hit": mean_sd([m["fg_hit_rate"] for m in p]),
            "iou": mean_sd([m["iou"] for m in p]),
            "oracle_iou": mean_sd([r["pipelines"]["oracle"]["iou"] for r in per_seed]),
            "bg_in_shape": mean_sd([m["bg_hit_rate"] if m["bg_hit_rate"] is not None else 0.0 for m in p]),
        })
        published = [r.get("strategies", {}).get("mask_scoring_similarity") for r in per_seed]
        if all(published):
            rows[-1]["fg_hit_published"] = mean_sd([m["fg_hit_rate"] for m in published])
            rows[-1]["iou_published"] = mean_sd([m["iou"] for m in published])
    return rows


# --------------------------------------------------------------------------
# Metrics by condition (pandas)

SIZE_EDGES: tuple[float, ...] = (0, 60, 120, 250, 500, 3073)
"""Shape area bins in pixels (8 px across is about 30-50 px of area, 32 px about 500-800)."""

CONTRAST_EDGES: tuple[float, ...] = (0, 30, 45, 60, 100, 450)
"""The contrast bins, in RGB distance between the shape and a 3-pixel ring around it
(:func:`camseg.data.profiles.contrast`)."""

JPEG_SETS: dict[str, str] = {"plain": "none", "jpeg95": "95", "jpeg90": "90", "jpeg75": "75", "jpeg50": "50"}
"""Shift sets that differ only in JPEG quality."""


def _pooled(sets: Mapping[str, Sequence[Mapping]], names: Sequence[str], key: str, pipeline: str) -> tuple:
    values, iou, hit = [], [], []
    for name in names:
        for r in sets.get(name, []):
            rec = r["per_image"]
            values += list(rec[key])
            iou += list(rec["iou"][pipeline])
            hit += list(rec["fg_hit"][pipeline])
    return values, iou, hit


def condition_frames(sets: Mapping[str, Sequence[Mapping]], pipeline: str = "foreground_background") -> dict:
    """IoU and fg hit by shape area, by contrast (every shift set but ``distractor``, all
    seeds pooled) and by JPEG quality (``JPEG_SETS``, mean over seeds); one DataFrame each, with
    columns ``images`` (counted over all seeds), ``IoU`` and ``fg hit``. Bins without images are
    left out (a frame may be empty), so no cell is NaN."""
    import pandas as pd

    names = [n for n in sets if n not in ("standard", "distractor")]
    out = {}
    for key, edges, label in (("area", SIZE_EDGES, "shape area (px)"), ("contrast", CONTRAST_EDGES, "contrast")):
        values, iou, hit = _pooled(sets, names, key, pipeline)
        if not values:
            out[label] = pd.DataFrame({"images": [], "IoU": [], "fg hit": []})
            continue
        bins = [(a, b) for a, b in zip(by_bins(values, iou, edges), by_bins(values, hit, edges), strict=True)
                if a["n"]]
        out[label] = pd.DataFrame({"images": [a["n"] for a, _ in bins], "IoU": [a["mean"] for a, _ in bins],
                                   "fg hit": [b["mean"] for _, b in bins]},
                                  index=[f"{a['low']:g}–{a['high']:g}" for a, _ in bins])
    rows = {}
    for name, quality in JPEG_SETS.items():
        if sets.get(name):
            rows[quality] = {"images": sum(int(r["n_images"]) for r in sets[name]),
                             "IoU": mean_sd([r["pipelines"][pipeline]["iou"] for r in sets[name]])[0],
                             "fg hit": mean_sd([r["pipelines"][pipeline]["fg_hit_rate"] for r in sets[name]])[0]}
    out["JPEG quality"] = (pd.DataFrame(rows).T.astype({"images": int}) if rows
                           else pd.DataFrame({"images": [], "IoU": [], "fg hit": []}))
    return out
