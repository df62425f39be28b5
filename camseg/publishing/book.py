"""The book's one set-up line: ``B = book.setup(WORKDIR, SEED)``.

:func:`setup` loads (or builds, the first time) the computed results,
registers every number the chapters' prose quotes as a ``myst_nb`` glue
value (:func:`glue_values`, so no number is ever typed), makes figures
sharp (retina PNGs) and returns a :class:`Book`: the results plus the few
derived arrays the chapters show (the classifier's predictions and the CAMs
of the whole test split, per-image IoU, the failure taxonomy), each computed
at most once per kernel.

Numbers are formatted by the chapters' glue roles (``{glue:text}`key:.3f```)
and by :mod:`camseg.publishing.tables`; this module only computes them.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Collection, Mapping, Sequence
from functools import cached_property
from importlib import metadata
from pathlib import Path

import numpy as np

from camseg.build.artifacts import Artifacts, CamStudy, build_artifacts, default_workdir, load_predictions
from camseg.build.bundle import PUBLISHED_URL
from camseg.build.suite import SuiteResults

__all__ = ["Book", "comparison_sentences", "degradation_sentence", "degraded_cause", "glue_values",
           "reproducibility_markdown", "setup", "suite_values"]

PACKAGES = ("camseg", "torch", "torchvision", "numpy", "scipy", "scikit-image", "opencv-python-headless",
            "efficientnet-lite-pytorch", "segment-anything", "matplotlib", "jupyter-book", "sphinx", "myst-nb",
            "sphinx-mathjax-offline", "weasyprint")
"""Packages whose versions the reproducibility box lists."""


CODE_NAMES = frozenset({"backend", "arch", "cam_default_layer"})
"""Glue keys whose text is a code name (shown in code font)."""


class Book:
    """The results of one build and what the chapters derive from them.

    Attributes:
        artifacts: the typed results (:class:`camseg.build.artifacts.Artifacts`).
    """

    def __init__(self, artifacts: Artifacts) -> None:
        self.artifacts = artifacts

    # ---- plain views of the results ------------------------------------------------
    @property
    def images(self) -> np.ndarray:
        """The test split's images, uint8 (N, H, W, 3) RGB."""
        return self.artifacts.images

    @property
    def labels(self) -> np.ndarray:
        """The test split's class indices, int (N,)."""
        return self.artifacts.labels

    @property
    def masks(self) -> np.ndarray:
        """The test split's true masks, bool (N, H, W)."""
        return self.artifacts.masks

    @property
    def evals(self) -> Mapping[str, Mapping]:
        """``{"clean": result, "degraded": result}``: the evaluation JSONs of
        :func:`camseg.evaluation.evaluate.evaluate` as written (see the reference's evaluation keys),
        what :mod:`camseg.publishing.tables` formats."""
        a = self.artifacts
        return {k: e.raw for k, e in (("clean", a.clean), ("degraded", a.degraded)) if e is not None}

    @property
    def cam_study(self) -> CamStudy | None:
        """The CAM study (:class:`camseg.build.artifacts.CamStudy`), or None."""
        return self.artifacts.cam_study

    @property
    def meta(self) -> Mapping:
        """The classifier checkpoint's metadata (architecture, accuracies, training history)."""
        return self.artifacts.meta

    @property
    def model(self):
        """The classifier (a ``torch.nn.Module`` in eval mode)."""
        return self.artifacts.model

    @property
    def arch(self) -> str:
        return str(self.meta["arch"])

    @property
    def segmenter(self) -> str:
        """The backend that produced every mask (e.g. ``"regiongrow"`` or ``"sam-vit_b"``)."""
        return self.artifacts.backend.name

    @property
    def is_sam(self) -> bool:
        return self.segmenter.startswith("sam")

    @property
    def device(self) -> str:
        """The device the results were computed on (``"cpu"`` or ``"cuda"``)."""
        return self.artifacts.device

    @property
    def suite(self) -> SuiteResults:
        """The seeds' evaluations on the standard split and the shift suite
        (:class:`camseg.build.suite.SuiteResults`); empty when the build had none
        (``camseg build --suite-size 0``)."""
        suite = self.artifacts.suite
        return suite if suite is not None else SuiteResults(sets={}, seeds=(), checkpoints={})

    def shared_segmenter(self):
        """The segmenter that made the results, one instance per process
        (:func:`camseg.build.artifacts.shared_segmenter`: one SAM model and embedding cache)."""
        from camseg.build.artifacts import shared_segmenter

        return shared_segmenter(self.segmenter, self.device)

    @property
    def layers(self) -> list:
        from camseg.models.classifier import default_target_layers

        return default_target_layers(self.model, self.arch)

    @cached_property
    def cam(self):
        """The CAM the pipelines use (:func:`camseg.models.classifier.default_cam`): Grad-CAM over
        :attr:`layers`, averaged over copies of the image where the architecture says so."""
        from camseg.models.classifier import default_cam

        return default_cam(self.model, self.arch)

    # ---- derived, computed once ----------------------------------------------------
    @cached_property
    def _cam_output(self):
        from camseg.data.dataset import normalize

        images = self.images
        cam = self.cam
        outs = [cam.compute(normalize(images[s:s + 50])) for s in range(0, len(images), 50)]
        return np.concatenate([o.maps for o in outs]), np.concatenate([o.targets for o in outs])

    @property
    def cams(self) -> np.ndarray:
        """The pipelines' CAM (:attr:`cam`) of the class in :attr:`explained` for every test image, float32
        (N, H, W) in [0, 1]."""
        return self._cam_output[0]

    @cached_property
    def predicted(self) -> np.ndarray:
        """The classifier's own top class for every test image (one forward pass), int (N,)."""
        from camseg.data.dataset import normalize
        from camseg.models.classifier import predict

        return predict(self.model, normalize(self.images)).argmax(1).numpy()

    @property
    def explained(self) -> np.ndarray:
        """The class the pipelines' CAM explained for every test image, int (N,), that is the
        classifier's decision as the pipelines take it (for the default architecture the vote
        of the image's four flips, :func:`camseg.models.classifier.flip_logits`)."""
        return self._cam_output[1]

    def cams_of(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """The pipelines' CAM (the class it explains) of a few test images: maps float32 (K, H, W), explained
        classes int (K,)."""
        from camseg.data.dataset import normalize

        out = self.cam.compute(normalize(self.images[list(indices)]))
        return out.maps, out.targets

    def layer_breakdown(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """Test image ``index`` explained by Grad-CAM on each default target layer, by their mean
        and, where the pipelines' CAM averages over copies of the image, by that CAM; every row for
        the class the pipelines' CAM explains (:attr:`explained`), so the rows differ only in
        layers and copies.

        Returns:
            ``(images, maps, masks, titles)``, one row each, for
            :func:`camseg.publishing.viz.gradcam_panels`: images uint8 (K, H, W, 3) (the same image K
            times), maps float32 (K, H, W), masks bool (K, H, W), titles (K,).
        """
        from camseg.data.dataset import normalize
        from camseg.models.cam import AugmentedCAM, GradCAM
        from camseg.models.classifier import ARCHITECTURES

        image, mask = self.images[[index]], self.masks[[index]]
        x = normalize(image)
        pipeline = self.cam.compute(x)
        plain = GradCAM(self.model, self.layers).compute(x, pipeline.targets)
        maps = [*plain.layer_maps[:, 0], plain.maps[0]]
        titles = [n.replace("backbone.", "") for n in ARCHITECTURES[self.arch].target_layers] + ["mean of the layers"]
        if isinstance(self.cam, AugmentedCAM):
            maps.append(pipeline.maps[0])
            titles.append("with the mirror image" if not self.cam.shifts else f"over {self.cam.n_copies} copies")
        return np.repeat(image, len(maps), 0), np.stack(maps), np.repeat(mask, len(maps), 0), titles

    def other_class(self, indices: Sequence[int], offset: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                              list[str]]:
        """Test images ``indices`` explained by Grad-CAM (the default target layers) for the class
        ``offset`` places after their label in the class list: a class they do not contain.

        Returns:
            ``(images, maps, masks, titles)`` for :func:`camseg.publishing.viz.gradcam_panels`: images uint8
            (K, H, W, 3), maps float32 (K, H, W), masks bool (K, H, W), and per image a title
            naming its label, the class explained and the classifier's probability for it.
        """
        import torch

        from camseg.data.dataset import normalize
        from camseg.data.shapes import CLASSES
        from camseg.models.cam import GradCAM

        idx = list(indices)
        labels = self.labels[idx]
        other = [(int(lab) + offset) % len(CLASSES) for lab in labels]
        out = GradCAM(self.model, self.layers).compute(normalize(self.images[idx]), targets=other)
        prob = torch.softmax(torch.from_numpy(out.logits), 1).numpy()
        titles = [f"test {i}: {CLASSES[lab]}\nexplains {CLASSES[t]}, p = {prob[k, t]:.2f}"
                  for k, (i, lab, t) in enumerate(zip(idx, labels, other, strict=True))]
        return self.images[idx], out.maps, self.masks[idx], titles

    @cached_property
    def predictions(self) -> dict:
        """Clean-split masks and points per pipeline (:func:`camseg.build.artifacts.load_predictions`)."""
        if self.artifacts.predictions is None:
            raise ValueError("these results hold no predicted masks (built with predictions=False)")
        return load_predictions(self.artifacts.predictions)["pipelines"]

    def ious(self, pipeline: str = "foreground_background") -> np.ndarray:
        """Per-image IoU of a pipeline on the clean test split, float (N,)."""
        from camseg.evaluation.metrics import iou_per_image

        return iou_per_image(self.predictions[pipeline]["masks"], self.masks)

    def summary_figure(self, index: int = 3, pipeline: str = "foreground_background"):
        """The method on one test image: input → Grad-CAM → points → mask
        (:func:`camseg.publishing.viz.pipeline_summary`)."""
        from camseg.data.shapes import CLASSES
        from camseg.publishing.viz import pipeline_summary

        cam, target = self.cams_of([index])
        p = self.predictions[pipeline]
        return pipeline_summary(self.images[index], cam[0], p["point_coords"][index],
                                p["point_labels"][index], p["masks"][index], self.masks[index],
                                explained=CLASSES[int(target[0])], iou=float(self.ious(pipeline)[index]),
                                backend=self.segmenter)

    def backend_why(self) -> str:
        """Why this backend made the masks, in plain words without paths or addresses
        (from the reason ``camseg.segmenters.choice.choose_backend`` gave; "" if unknown)."""
        reason = self.artifacts.backend.reason
        for marker, plain in (("asked for", "it was asked for by name"),
                              ("found at", "SAM's weights were on the machine that built it"),
                              ("can be downloaded", "SAM's weights could be downloaded when it was built"),
                              ("cannot be reached", "SAM's weights were not on the machine that built it "
                                                    "and could not be downloaded")):
            if marker in reason:
                return plain
        return ""

    def backend_sentence(self) -> str:
        """One plain sentence (Markdown) on which segmenter made the masks, whether it is
        SAM, and why (:meth:`backend_why`)."""
        why = self.backend_why()
        why = f" It was used because {why}." if why else ""
        if self.is_sam:
            return f"Every mask in this book was made by SAM (`{self.segmenter}`), the reference backend.{why}"
        return (f"Every mask in this book was made by `{self.segmenter}`, an **offline stand-in for SAM**, "
                f"so its numbers are not SAM's (see *How SAM makes a mask* in the segmentation chapter).{why}")

    def failures(self, pipeline: str = "foreground_background", iou_threshold: float = 0.5):
        """The cause of each failed image (:func:`camseg.evaluation.failures.classify_failures`)."""
        from camseg.evaluation.failures import classify_failures

        p = self.predictions[pipeline]
        return classify_failures(self.ious(pipeline), self.labels, self.explained, self.cams,
                                 self.masks, p["masks"], p["point_coords"], p["point_labels"],
                                 iou_threshold=iou_threshold)


def _find_root(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder
    return None


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def reproducibility_markdown(res: Artifacts, profile_path: str | os.PathLike | None = None) -> str:
    """A Markdown table: seeds, machine, package versions and each stage's time of the last build.

    Args:
        res: the results (for the seed, the classifier's training time and device).
        profile_path: ``_build/build-profile.json`` written by ``camseg build``
            (default: the one under the book's root, if any).
    """
    meta = res.meta
    rows = [("seeds", f"dataset {meta.get('seed', '?')}, training {meta.get('seed', '?')}, "
                      "degradation noise 0; evaluation is deterministic"),
            ("segmenter", res.backend.name),
            ("classifier", f"{meta.get('arch')}, trained {meta.get('train_seconds', 0) / 60:.1f} min on "
                           f"{meta.get('device', 'cpu')}")]
    try:
        import psutil

        memory = f", {psutil.virtual_memory().total / 2**30:.0f} GiB memory"
    except ImportError:  # pragma: no cover - psutil is a dependency
        memory = ""
    rows.append(("machine", f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs{memory}, "
                            f"Python {sys.version.split()[0]}"))
    try:
        import torch

        if torch.cuda.is_available():
            rows.append(("GPU", torch.cuda.get_device_name(0)))
    except ImportError:  # pragma: no cover
        pass
    rows.append(("packages", ", ".join(f"{p} {_version(p)}" for p in PACKAGES)))
    root = _find_root()
    path = Path(profile_path) if profile_path else (root / "_build" / "build-profile.json" if root else None)
    profile = None
    if path is not None and path.is_file():
        try:
            profile = json.loads(path.read_text())
        except (OSError, ValueError):
            profile = None
    if profile and profile.get("stages"):
        stages = "; ".join(f"{r['stage']} {r['seconds']:.0f} s ({r.get('note') or 'done'})".replace(
            str(root) + "/" if root else "\0", "") for r in profile["stages"])
        total = f"total {profile.get('total_seconds', 0):.0f} s"
        if profile.get("complete") is False:  # written by `camseg build` before its book stage
            total += " before the book (the book, the report and the results bundle follow)"
        rows.append(("last `camseg build`", f"{stages}; {total}"))
    else:
        rows.append(("last `camseg build`", "no build profile yet (`camseg build` writes _build/build-profile.json)"))
    body = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"| item | value |\n|---|---|\n{body}\n"


def degradation_sentence(clean: Mapping[str, Mapping], degraded: Mapping[str, Mapping], n_images: int) -> str:
    """A sentence on how each prompt strategy's foreground hit rate changes on degraded images, with the
    sampling error that tells a real change from chance (:func:`camseg.publishing.prose.compare` with two
    standard errors as the noise: "the same", "within chance", "rises", "falls").

    ``clean``/``degraded``: ``{strategy: point metrics}`` (the results' ``strategies``).

    >>> s = degradation_sentence({"cam_argmax": {"fg_hit_rate": 0.70}}, {"cam_argmax": {"fg_hit_rate": 0.80}}, 500)
    >>> s.split("; ")[0]
    'On degraded images the foreground hit rate rises for CAM maximum (0.700 → 0.800)'
    >>> s.split("; ")[1]
    'a change smaller than about 0.041 (two standard errors of a rate near 0.7 over 500 images) is within chance.'
    """
    from camseg.publishing.prose import compare, num
    from camseg.publishing.tables import strategy_label as label

    rates = [float(m["fg_hit_rate"]) for m in clean.values() if m.get("fg_hit_rate") is not None]
    p = float(np.median(rates)) if rates else 0.5
    p = min(max(p, 0.05), 0.95)
    two_se = 2 * (p * (1 - p) / max(n_images, 1)) ** 0.5
    groups: dict[str, list[str]] = {"higher": [], "lower": [], "within noise": [], "same": []}
    for name, m in clean.items():
        if name not in degraded or m.get("fg_hit_rate") is None:
            continue
        a, b = float(m["fg_hit_rate"]), float(degraded[name]["fg_hit_rate"])
        c = compare(b, a, two_se)
        groups[c.relation].append(f"{label(name)} ({num(a)} → {num(b)})" if c.relation != "same"
                                  else f"{label(name)} ({num(a)})")
    bits = [f"{verb} for " + ", ".join(groups[key]) for key, verb in
            (("higher", "rises"), ("lower", "falls"), ("within noise", "changes only within chance"),
             ("same", "stays the same")) if groups[key]]
    return (f"On degraded images the foreground hit rate {'; it '.join(bits) or 'was not measured'}; a change "
            f"smaller than about {num(two_se)} (two standard errors of a rate near {p:.1f} over {n_images} images) "
            "is within chance.")


def comparison_sentences(v: Mapping[str, float], sd: float | None = None) -> dict[str, str]:
    """Sentences whose wording depends on the numbers (so the prose never contradicts them), each built with
    :mod:`camseg.publishing.prose`: "the same" for a tie, "within noise" for a difference below ``sd``.

    ``v``: the numeric glue values (``iou_fg``, ``iou_fb``, ``iou_oracle``, their ``_deg`` twins,
    ``loss_fb``, ``loss_oracle``, ``hit_fb``, ``hit_fb_deg``); ``sd``: the noise scale of an IoU,
    the spread over classifier seeds on the standard split (None without seeds: only ties are told apart).

    >>> s = comparison_sentences({"iou_fg": 0.99, "iou_fb": 0.99, "iou_oracle": 0.992, "iou_fb_deg": 0.93,
    ...                           "iou_oracle_deg": 0.957, "loss_fb": 0.06, "loss_oracle": 0.035, "hit_fb": 0.998,
    ...                           "hit_fb_deg": 0.97}, sd=0.004)
    >>> s["oracle_gap"]
    'within noise of the oracle click (0.992; the difference, 0.002, is less than one seed-sd, 0.004)'
    >>> s["background_change"]
    'leaves the IoU the same (0.990)'
    >>> print(*s["degraded_cause"].split(":")[0].split(" and "), sep="\\n")
    Degrading the images (noise, then JPEG) lowers the pipeline’s IoU from 0.990 to 0.930
    lowers that of the oracle click from 0.992 to 0.957
    """
    from camseg.publishing.prose import change, gap

    out = {"oracle_gap": gap(v["iou_fb"], v["iou_oracle"], sd)}
    if "iou_fg" in v:
        out["background_change"] = change(v["iou_fg"], v["iou_fb"], sd)
    out["degraded_cause"] = degraded_cause(v, sd)
    return out


def degraded_cause(v: Mapping[str, float], sd: float | None = None) -> str:
    """What noise and JPEG do to the pipeline and to the oracle click, and so where the drop comes from
    (the prompts, the segmenter, both, or neither), worded by :func:`camseg.publishing.prose.change`.

    ``v``: ``iou_fb``, ``iou_oracle``, their ``_deg`` twins, ``hit_fb`` and ``hit_fb_deg``; ``sd``: the
    noise scale of an IoU (None: only ties are told apart).
    """
    from camseg.publishing.prose import change, compare, num

    fb, fb_deg, orc, orc_deg = v["iou_fb"], v["iou_fb_deg"], v["iou_oracle"], v["iou_oracle_deg"]
    lf, lo = fb - fb_deg, orc - orc_deg
    pipe_drops = compare(fb_deg, fb, sd).relation == "lower"
    oracle_drops = compare(orc_deg, orc, sd).relation == "lower"
    c = compare(lf, lo, sd)
    where = (f"the foreground point lands on the shape for {v['hit_fb_deg']:.1%} of the degraded images "
             f"({v['hit_fb']:.1%} clean)")
    moves = (f"Degrading the images (noise, then JPEG) {change(fb, fb_deg, sd, 'the pipeline’s IoU')} and "
             f"{change(orc, orc_deg, sd, 'that of the oracle click')}")
    if not pipe_drops:
        return f"{moves}: the prompts hold; {where}."
    if not oracle_drops:
        return f"{moves}: the drop comes from the prompts, not from the segmenter; {where}."
    if c.relation == "higher":
        return (f"{moves}: the pipeline loses more ({num(lf)} against {num(lo)}), so the segmenter accounts for "
                f"part of the drop and the prompts for the rest; {where}.")
    return (f"{moves}: the pipeline loses {'less' if c.relation == 'lower' else 'no more'}, so the drop comes from "
            f"the segmenter on noisy edges, not from the prompts; {where}.")


def suite_values(res: Artifacts) -> dict[str, object]:
    """The glue values of the seeds and the shift suite (``suite_*``, ``std_*``) and the findings
    (``findings_md``: one bullet each; ``findings_par``: one paragraph, without the last finding, on
    the segmenter; ``next_steps_md``), for every build: without a suite the numbers read "–" and the
    findings say it was not built."""
    from camseg.publishing.findings import findings, next_steps, suite_findings
    from camseg.publishing.prose import num, pm
    from camseg.publishing.tables import published_iou

    f = suite_findings(res.suite) if res.suite is not None else None
    v: dict[str, object] = {}
    if f is not None and f.shift:
        worst = f.weakest[0]
        v.update(suite_iou=pm(*f.overall_iou), suite_hit=pm(*f.overall_hit), suite_worst=pm(*worst.iou),
                 suite_worst_name=worst.label,
                 suite_worst_oracle=num(worst.oracle[0]))
    else:
        v.update(suite_iou="–", suite_hit="–", suite_worst="–",
                 suite_worst_name="no set (no shift suite in this build)", suite_worst_oracle="–")
    std = f.standard if f is not None else None
    if std is not None:
        v.update(std_iou=pm(*std.iou), std_oracle=num(std.oracle[0]), std_sd=float(std.iou[1]))
    elif res.clean is not None:
        p = res.clean.raw["pipelines"]
        v.update(std_iou=num(p["foreground_background"]["iou"]), std_oracle=num(p["oracle"]["iou"]))
    else:
        v.update(std_iou="–", std_oracle="–")
    sentences = findings(f, res.backend.name, published_iou())
    v["findings_md"] = "\n".join(f"* {s.markdown()}" for s in sentences)
    v["findings_par"] = " ".join(s.text for s in sentences[:-1])  # the last, on the segmenter, has its own place
    v["next_steps_md"] = "\n".join(f"* {s}" for s in next_steps(f, res.backend.name, published_iou()))
    return v


def _study_values(study: CamStudy | None) -> dict[str, object]:
    """The glue values of the CAM study (none without one)."""
    from camseg.publishing.tables import baseline_threshold

    v: dict[str, object] = {}
    if study is None:
        return v
    if study.cam_only_iou:
        v["cam_only_t"], v["cam_only"], _ = baseline_threshold(study, "cam_only")
    if study.cam_slic_iou:
        v["cam_slic_t"], v["cam_slic"], _ = baseline_threshold(study, "cam_slic")
    rows, default = study.rows, study.default_row
    pp = next((r for r in rows if default and r.method == "Grad-CAM++" and r.layers == default.layers), None)
    best_pg = max(rows, key=lambda r: r.pointing_game) if rows else None
    if default:
        v["cam_default_layer"] = " + ".join(str(n).replace("backbone.", "") for n in default.layers)
        v["cam_default_mass"], v["cam_default_pg"] = default.mass_inside, default.pointing_game
    if pp:
        v["cam_pp_mass"], v["cam_pp_pg"] = pp.mass_inside, pp.pointing_game
    if best_pg:
        v["cam_best_pg"], v["cam_best_pg_mass"] = best_pg.pointing_game, best_pg.mass_inside
        v["cam_best_pg_name"] = (f"{best_pg.method} on "
                                 + " + ".join(str(n).replace("backbone.", "") for n in best_pg.layers))
    return v


def glue_values(res: Artifacts) -> dict[str, object]:
    """Every number the chapters quote, by glue key (plain floats, ints and short strings): those of
    the classifier always, of the evaluations and the CAM study where the results hold them.

    Keys start with the chapter's prefix: ``intro_``, ``data_``, ``cam_``, ``pr_``,
    ``seg_``, ``d_``; ``backend`` is shared; ``suite_``, ``std_`` and ``findings_`` come from
    :func:`suite_values`. Two accuracies are told apart: ``acc`` is the classifier's own top class
    (one pass, as the published solutions measure it), ``acc_vote`` that of the class the CAM explains
    (for the default architecture the vote of the image's four flips), which the evaluations report.
    """
    from camseg.publishing.tables import PUBLISHED, published_iou, published_sources

    meta = res.meta
    v: dict[str, object] = {
        "backend": res.backend.name,
        "acc": float(meta["test_accuracy"]),
        "val_acc": float(meta.get("val_accuracy") or float("nan")),
        "best_epoch": int(meta.get("best_epoch") or 0),
        "epochs": int(meta.get("epochs") or 0),
        "train_minutes": float(meta.get("train_seconds", 0.0)) / 60,
        "arch": str(meta["arch"]),
        "weights": str(meta.get("initial_weights", "")),
    }
    v.update(_study_values(res.cam_study))
    v.update(suite_values(res))
    v["published_iou"] = " and ".join(published_iou())
    v["published_sources"] = published_sources("md")
    hits = next((r for r in PUBLISHED if r.get("argmax_hit") is not None), None)
    if hits:
        v.update(pub_hits_name=hits["name"], pub_argmax_hit=float(hits["argmax_hit"]),
                 pub_centroid_hit=float(hits["centroid_hit"]))
    if res.clean is None:  # a chapter that shows no evaluation
        return v
    clean, degr = res.clean.raw, (res.degraded or res.clean).raw
    pc, pdg = clean["pipelines"], degr["pipelines"]
    sc, sdg = clean["strategies"], degr["strategies"]
    v["n_test"] = int(clean["n_images"])
    v["acc_deg"] = float(degr["classifier_accuracy"])
    for name in ("center", "foreground", "foreground_background", "oracle"):
        short = {"center": "center", "foreground": "fg", "foreground_background": "fb", "oracle": "oracle"}[name]
        v[f"iou_{short}"] = float(pc[name]["iou"])
        v[f"iou_{short}_deg"] = float(pdg[name]["iou"])
        v[f"hit_{short}"] = float(pc[name]["fg_hit_rate"])
        v[f"hit_{short}_deg"] = float(pdg[name]["fg_hit_rate"])
    v["pr_degradation"] = degradation_sentence(sc, sdg, int(clean["n_images"]))
    v["acc_vote"] = float(clean["classifier_accuracy"])
    v["gap_oracle"] = v["iou_oracle"] - v["iou_fb"]
    v["loss_fb"] = v["iou_fb"] - v["iou_fb_deg"]
    v["loss_oracle"] = v["iou_oracle"] - v["iou_oracle_deg"]
    v.update(comparison_sentences(v, v.get("std_sd")))
    v["bg_hit_fb"] = float(pc["foreground_background"]["bg_hit_rate"] or 0.0)
    for name in ("center", "cam_argmax", "cam_centroid", "cam_interior", "mask_scoring", "mask_scoring_similarity"):
        if name in sc:
            v[f"pr_{name}"] = float(sc[name]["fg_hit_rate"])
            v[f"pr_{name}_deg"] = float(sdg[name]["fg_hit_rate"])
    return v


def _install_bundle(source: str, work: Path) -> None:
    """Install the results bundle at ``source`` into ``work``; warn (and let the chapter compute) when it
    cannot be had or does not fit this camseg."""
    import warnings

    from camseg.build.bundle import BundleError, fetch_bundle

    try:
        info = fetch_bundle(source, work, progress=True)
    except BundleError as exc:
        warnings.warn(f"{exc}; computing the results here instead (minutes on a CPU)", UserWarning, stacklevel=3)
        return
    print(f"results bundle {source} installed into {work} ({info.installed} files, built on {info.device} "
          f"with {info.backend.get('name')})")


def setup(workdir: str | os.PathLike | None = None, seed: int = 0, segmenter: str | None = None,
          device: str | None = None, shows: Collection[str] = ("evaluations", "cam_study"),
          recompute: bool = False, bundle: str | None = None) -> Book:
    """Load the results, register the glue values and make figures sharp; return a :class:`Book`.

    Meant as the one hidden set-up line of a chapter; outside a notebook
    (no IPython kernel) it only loads the results. ``segmenter``/``device``:
    as :func:`camseg.build.artifacts.build_artifacts` (None: ``$CAMSEG_SEGMENTER``/``$CAMSEG_DEVICE``,
    else auto).

    A chapter computes only what it shows: ``shows`` names the parts of
    :func:`~camseg.build.artifacts.build_artifacts` it needs beyond the dataset and the classifier
    (``"evaluations"``, ``"cam_study"``, ``"suite"``). A chapter opened alone, in a folder without
    results, first installs the published results bundle (``bundle``: a URL or path, default
    ``$CAMSEG_BUNDLE_URL`` or :data:`camseg.build.bundle.PUBLISHED_URL`; hash-verified and cached,
    :func:`camseg.build.bundle.fetch_bundle`), so it shows the book's exact numbers in seconds;
    ``recompute=True`` computes them here instead, as does a bundle that cannot be had (with a
    warning that says why).
    """
    import warnings

    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("retina")
    except (ImportError, AttributeError, ValueError):  # not in a notebook
        pass
    work = Path(workdir) if workdir is not None else default_workdir()
    if not recompute and not (work / "eval" / "test-clean.json").is_file():
        _install_bundle(bundle or os.environ.get("CAMSEG_BUNDLE_URL") or PUBLISHED_URL, work)
    res = build_artifacts(work, seed=seed, segmenter=segmenter, device=device, parts=shows)
    try:
        from IPython import get_ipython

        in_kernel = get_ipython() is not None
    except ImportError:  # pragma: no cover
        in_kernel = False
    if in_kernel:
        from IPython.display import Markdown

        from camseg.publishing.notebook import glue

        for key, value in glue_values(res).items():
            if isinstance(value, str):  # names reach the prose as Markdown ({glue:md}), never as 'quoted' reprs
                value = Markdown(f"`{value}`" if key in CODE_NAMES else value)
            glue(key, value, display=False)
        glue("repro", Markdown(reproducibility_markdown(res)), display=False)
        glue("backend_sentence", Markdown(Book(res).backend_sentence()), display=False)
    return Book(res)
