"""The computed results behind the book and the PDF report, built once and cached.

:func:`build_artifacts` makes (or loads, when already on disk) everything the
chapters and the report show, under one work folder (default
:func:`default_workdir`), and returns them as one typed, frozen
:class:`Artifacts`::

    WORKDIR/data/                          the shapes dataset (seed 0)        camseg.data.dataset.build_dataset
    WORKDIR/classifier-<arch>.pt           the trained classifier             camseg.models.classifier.train_classifier
    WORKDIR/eval/test-clean.json           every pipeline on the test split   camseg.evaluation.evaluate.evaluate
    WORKDIR/eval/test-degraded.json        the same on degraded test images
    WORKDIR/eval/test-clean-masks.npz      predicted masks and points (for galleries)
    WORKDIR/eval/cam-study.json            Grad-CAM vs Grad-CAM++, layer choice, CAM-only baseline

Each derived artefact carries the :class:`ArtifactKey` it was made with: the
**resolved** segmenter backend (never ``"auto"``), the device, the SHA-256 of
the classifier checkpoint's content, the camseg version and the settings
(seed, architecture, split size). It is reused only when the key matches, so
a rebuild of an unchanged book is cheap and a changed input is never served
stale. Every file is written atomically. One segmenter instance (one SAM
model) serves every evaluation of a build.

Settings come from the arguments, else from environment variables, so that
``camseg build --segmenter X --device Y`` reaches the chapters (their
``build_artifacts()`` call runs in another process): ``$CAMSEG_WORKDIR``,
``$CAMSEG_SEGMENTER``, ``$CAMSEG_DEVICE``, and for quick runs (tests, a
Colab smoke run) ``$CAMSEG_SIZES`` (``"train=40,val=10,test=10"``),
``$CAMSEG_EPOCHS`` and ``$CAMSEG_ARCH``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Callable, Collection, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from camseg.build.keys import camseg_version, file_sha256, make_segmenter
from camseg.build.stages import StageLog
from camseg.build.suite import lock_file
from camseg.utils.paths import held_lock, write_atomic

__all__ = [
    "CAM_STUDY_LAYERS", "ENV_VARS", "REPORT_EXAMPLE", "ArtifactKey", "Artifacts", "Backend", "CamStudy",
    "CamStudyRow", "Evaluation", "GradcamExample", "PipelineScores", "Settings", "build_artifacts", "cam_study",
    "default_workdir", "gradcam_example", "load_predictions",
    "PARTS", "run_evaluation", "shared_segmenter",
]

CAM_STUDY_LAYERS: dict[str, tuple[str, ...]] = {
    "efficientnet_lite0": ("backbone._blocks.5", "backbone._blocks.10", "backbone._blocks.14", "backbone._blocks.15"),
    "resnet18": ("backbone.layer2", "backbone.layer3", "backbone.layer4"),
}
"""Candidate Grad-CAM target layers compared in the CAM study, shallow to deep."""

CAM_THRESHOLDS: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
REPORT_EXAMPLE = 3
"""Test image shown in the PDF report's Grad-CAM figure."""

ENV_VARS = ("CAMSEG_WORKDIR", "CAMSEG_SEGMENTER", "CAMSEG_DEVICE", "CAMSEG_SIZES", "CAMSEG_EPOCHS", "CAMSEG_ARCH",
            "CAMSEG_SEEDS", "CAMSEG_SUITE_SIZE", "CAMSEG_SEGMENTER_REASON")
"""Environment variables :class:`Settings` reads (``camseg build`` sets the first three for the chapters,
and ``CAMSEG_SEGMENTER_REASON``: why its ``auto`` chose that backend)."""


def default_workdir() -> Path:
    """Where artefacts live: ``$CAMSEG_WORKDIR``; else ``artifacts/`` at the root of the
    checkout the current folder is in (the folder holding ``_toc.yml`` or
    ``pyproject.toml``, so a chapter executed in ``book/`` finds it); else ``./artifacts``."""
    env = os.environ.get("CAMSEG_WORKDIR")
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() or (folder / "pyproject.toml").is_file():
            return folder / "artifacts"
    return here / "artifacts"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


# --------------------------------------------------------------------------
# Settings and keys


def _parse_sizes(text: str) -> dict[str, int]:
    try:
        sizes = {k.strip(): int(v) for k, v in (part.split("=") for part in text.split(",") if part.strip())}
    except ValueError:
        raise ValueError(f"$CAMSEG_SIZES must look like 'train=40,val=10,test=10', got {text!r}") from None
    if not sizes or set(sizes) - {"train", "val", "test"} or any(v < 0 for v in sizes.values()):
        raise ValueError(f"$CAMSEG_SIZES must map train/val/test to counts >= 0, got {text!r}")
    return sizes


@dataclass(frozen=True)
class Settings:
    """What the artefacts are built with.

    Attributes:
        seed: dataset and training seed.
        arch: classifier architecture.
        segmenter: the requested segmenter (``"auto"``, ``"sam"``, ``"regiongrow"``, ...).
        device: the requested device (``"auto"``, ``"cpu"``, ``"cuda"``).
        sizes: images per split as ``(("train", n), ("val", n), ("test", n))``
            (default :data:`camseg.data.dataset.SPLITS`).
        epochs: training epochs (None: the architecture's default).
        seeds: classifier seeds (``seed``, ``seed + 1``, ...) evaluated on the
            standard split and the shift suite (``$CAMSEG_SEEDS``, default 3).
        suite_size: images per shift-suite set (``$CAMSEG_SUITE_SIZE``,
            default :data:`camseg.build.suite.SUITE_SIZE`, or 0 for a quick run with
            ``$CAMSEG_SIZES`` and no ``$CAMSEG_SEEDS``); 0 skips the seeds and the suite.
    """

    seed: int = 0
    arch: str = "efficientnet_lite0"
    segmenter: str = "auto"
    device: str = "auto"
    sizes: tuple[tuple[str, int], ...] = ()
    epochs: int | None = None
    seeds: int = 3
    suite_size: int = 100

    @classmethod
    def from_env(cls, seed: int = 0, arch: str | None = None, segmenter: str | None = None,
                 device: str | None = None, defaults: Mapping[str, str] | None = None) -> Settings:
        """Arguments first, then ``$CAMSEG_ARCH``, ``$CAMSEG_SEGMENTER``, ``$CAMSEG_DEVICE``,
        ``$CAMSEG_SIZES``, ``$CAMSEG_EPOCHS``, then ``defaults`` (the same variables: those of an
        installed results bundle, :func:`camseg.build.bundle.bundle_env`), then camseg's defaults.
        ``segmenter="auto"`` and ``device="auto"`` give way to the environment variable
        (``camseg build`` sets it to what it resolved, so a chapter's ``SEGMENTER = "auto"`` uses the
        build's backend)."""
        from camseg.data.dataset import SPLITS
        from camseg.models.classifier import DEFAULT_ARCH

        env = {**(defaults or {}), **os.environ}
        sizes = _parse_sizes(env["CAMSEG_SIZES"]) if env.get("CAMSEG_SIZES") else dict(SPLITS)
        epochs = env.get("CAMSEG_EPOCHS")
        try:
            epochs = int(epochs) if epochs else None
        except ValueError:
            raise ValueError(f"$CAMSEG_EPOCHS must be an integer, got {epochs!r}") from None
        from camseg.build.suite import DEFAULT_SEEDS, SUITE_SIZE

        try:
            seeds = int(env.get("CAMSEG_SEEDS") or len(DEFAULT_SEEDS))
            # a quick run ($CAMSEG_SIZES: tests, a Colab smoke run) skips the suite unless asked for it
            quick = bool(env.get("CAMSEG_SIZES")) and not env.get("CAMSEG_SEEDS")
            suite_size = int(env.get("CAMSEG_SUITE_SIZE") or (0 if quick else SUITE_SIZE))
        except ValueError:
            raise ValueError("$CAMSEG_SEEDS and $CAMSEG_SUITE_SIZE must be integers") from None
        return cls(seed=int(seed), arch=arch or env.get("CAMSEG_ARCH") or DEFAULT_ARCH,
                   segmenter=(segmenter if segmenter not in (None, "auto") else env.get("CAMSEG_SEGMENTER"))
                   or "auto",
                   device=(device if device not in (None, "auto") else env.get("CAMSEG_DEVICE")) or "auto",
                   sizes=tuple((k, int(sizes[k])) for k in ("train", "val", "test") if k in sizes), epochs=epochs,
                   seeds=seeds, suite_size=suite_size)


@dataclass(frozen=True)
class ArtifactKey:
    """What a derived artefact was made with; it is reused only when all of it matches.

    Attributes:
        backend: the resolved segmenter (e.g. ``"sam-vit_b"``, ``"regiongrow"``), never ``"auto"``.
        device: the resolved device (``"cpu"``, ``"cuda"``).
        checkpoint_sha256: SHA-256 of the classifier checkpoint file.
        camseg_version: camseg's version.
        seed: the seed the evaluation depends on.
        arch: the classifier architecture it depends on.
        n_test: the number of test images it depends on.
    """

    backend: str
    device: str
    checkpoint_sha256: str
    camseg_version: str
    seed: int
    arch: str
    n_test: int

    def as_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# --------------------------------------------------------------------------
# The typed result


@dataclass(frozen=True)
class PipelineScores:
    """Scores of one pipeline (or point strategy) on a split; None where it has no such points
    (e.g. ``bg_*`` for a pipeline without background points, ``iou`` for a strategy)."""

    iou: float | None
    fg_hit_rate: float | None
    fg_distance: float | None
    bg_hit_rate: float | None
    bg_distance: float | None
    seconds: float | None = None

    @classmethod
    def from_json(cls, m: Mapping) -> PipelineScores:
        return cls(*(m.get(k) for k in ("iou", "fg_hit_rate", "fg_distance", "bg_hit_rate", "bg_distance",
                                         "seconds")))


@dataclass(frozen=True)
class Evaluation:
    """One evaluation (:func:`camseg.evaluation.evaluate.evaluate`) of the test split.

    Attributes:
        degraded: True for the degraded images.
        segmenter: backend used; device: device used.
        n_images: the number of images evaluated.
        classifier_accuracy: the classifier's accuracy on them.
        pipelines: pipeline name -> :class:`PipelineScores`.
        strategies: point-strategy name -> :class:`PipelineScores`.
        raw: the JSON result as written (read-only).
    """

    degraded: bool
    segmenter: str
    device: str
    n_images: int
    classifier_accuracy: float
    pipelines: Mapping[str, PipelineScores]
    strategies: Mapping[str, PipelineScores]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, res: Mapping) -> Evaluation:
        return cls(bool(res.get("degraded")), str(res["segmenter"]), str(res.get("device", "cpu")),
                   int(res["n_images"]), float(res["classifier_accuracy"]),
                   _frozen({k: PipelineScores.from_json(v) for k, v in res["pipelines"].items()}),
                   _frozen({k: PipelineScores.from_json(v) for k, v in res.get("strategies", {}).items()}),
                   _frozen(res))


@dataclass(frozen=True)
class CamStudyRow:
    method: str
    layers: tuple[str, ...]
    default: bool
    mass_inside: float
    pointing_game: float


@dataclass(frozen=True)
class CamStudy:
    """The CAM study (:func:`cam_study`): one row per method and layer choice, and the
    CAM-only baselines (threshold -> mean IoU, thresholds as ``"0.2"``...)."""

    rows: tuple[CamStudyRow, ...]
    cam_only_iou: Mapping[str, float]
    cam_slic_iou: Mapping[str, float]
    n_images: int
    raw: Mapping[str, Any] = field(repr=False)
    cam_only_iou_val: Mapping[str, float] = field(default_factory=dict)
    cam_slic_iou_val: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, s: Mapping) -> CamStudy:
        """The study from its JSON (:func:`cam_study`'s dict): ``rows``, ``n_images``, and the threshold
        curves ``cam_only_iou``, ``cam_slic_iou`` (test) and their ``_val`` twins (validation), when present."""
        rows = tuple(CamStudyRow(r["method"], tuple(r["layers"]), bool(r["default"]), float(r["mass_inside"]),
                                 float(r["pointing_game"])) for r in s["rows"])
        return cls(rows, _frozen(s.get("cam_only_iou") or {}), _frozen(s.get("cam_slic_iou") or {}),
                   int(s.get("n_images", 0)), _frozen(s), _frozen(s.get("cam_only_iou_val") or {}),
                   _frozen(s.get("cam_slic_iou_val") or {}))

    def curve(self, kind: str, split: str = "test") -> Mapping[str, float]:
        """Threshold (as ``"0.3"``) -> mean IoU of a CAM-only baseline: ``kind`` ``"cam_only"`` or
        ``"cam_slic"``, on the ``"test"`` or ``"val"`` split (empty when not computed)."""
        if kind not in ("cam_only", "cam_slic") or split not in ("test", "val"):
            raise ValueError(f"expected kind cam_only or cam_slic and split test or val, got {kind!r}, {split!r}")
        return getattr(self, f"{kind}_iou" + ("_val" if split == "val" else ""))

    @property
    def default_row(self) -> CamStudyRow | None:
        return next((r for r in self.rows if r.default), None)


@dataclass(frozen=True)
class GradcamExample:
    """Grad-CAM of one test image: image uint8 (H, W, 3), cam float32 (H, W) in [0, 1],
    mask bool (H, W), label and predicted class names."""

    image: np.ndarray = field(repr=False)
    cam: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    label: str
    predicted: str


@dataclass(frozen=True)
class Backend:
    """The segmenter a build used: ``name`` (resolved), ``reason`` (why, for the reader),
    ``requested`` (what was asked for)."""

    name: str
    reason: str
    requested: str

    @property
    def is_fallback(self) -> bool:
        """True when ``"auto"`` fell back to an offline backend."""
        return self.requested == "auto" and not self.name.startswith("sam")


@dataclass(frozen=True)
class Artifacts:
    """Everything the chapters and the report show (see the module docstring).

    Attributes:
        workdir: the artefact folder.
        data: the dataset in it.
        settings: what was asked for; key: what was used (resolved backend,
            device, checkpoint hash, version).
        test: the test :class:`~camseg.data.dataset.ShapesDataset`; images uint8
            (N, H, W, 3), labels int64 (N,), masks bool (N, H, W) of it.
        model: the classifier (on :attr:`device`).
        meta: its metadata.
        checkpoint: its file.
        backend: :class:`Backend`; device: the resolved device name.
        clean: the :class:`Evaluation` of the clean test images.
        degraded: that of the degraded ones.
        predictions: the clean split's masks file (:func:`load_predictions`) or None.
        cam_study: :class:`CamStudy`; gradcam_example: :class:`GradcamExample`
            of test image :data:`REPORT_EXAMPLE`.
        suite: :class:`camseg.build.suite.SuiteResults` (every seed on the standard
            split and the shift suite), or None when ``settings.suite_size`` is 0.
    """

    workdir: Path
    data: Path
    settings: Settings
    key: ArtifactKey
    test: Any = field(repr=False)
    images: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    masks: np.ndarray = field(repr=False)
    model: Any = field(repr=False)
    meta: Mapping[str, Any] = field(repr=False)
    checkpoint: Path = Path()
    backend: Backend = Backend("?", "", "?")
    device: str = "cpu"
    clean: Evaluation | None = None
    degraded: Evaluation | None = None
    predictions: Path | None = None
    cam_study: CamStudy | None = None
    gradcam_example: GradcamExample | None = None
    suite: Any = field(default=None, repr=False)

    @property
    def segmenter(self) -> str:
        """The resolved backend's name."""
        return self.backend.name


# --------------------------------------------------------------------------
# Building blocks, each cached on disk



RECIPE = "wide"
"""Training data of the book's classifiers: fresh shapes of :data:`camseg.data.profiles.WIDE` every
epoch, selected on a wide validation set (:func:`camseg.data.sets.wide_training`)."""


def _classifier(data: Path, work: Path, settings: Settings, device, log) -> tuple[Path, object, dict]:
    """The seed's classifier (:func:`camseg.build.suite.seed_checkpoints`: reused when trained with the
    same seed, architecture, recipe, dataset and epochs), loaded on ``device``."""
    from camseg.build.suite import seed_checkpoints
    from camseg.models.classifier import load_checkpoint

    ckpt = seed_checkpoints(data, work, settings.arch, [settings.seed], RECIPE, log, settings.epochs,
                            device)[settings.seed]
    model, meta = load_checkpoint(ckpt, device=device)
    return ckpt, model, meta


def _save_predictions(result: dict, path: Path) -> None:
    arrays = {}
    for name, masks in result["_masks"].items():
        coords, labels = result["_points"][name]
        arrays[f"masks_{name}"] = np.packbits(masks, axis=-1)
        arrays[f"coords_{name}"] = coords.astype(np.float32)
        arrays[f"labels_{name}"] = labels.astype(np.int8)
    arrays["shape"] = np.asarray(next(iter(result["_masks"].values())).shape)
    arrays["segmenter"] = np.asarray(result["segmenter"])
    arrays["key"] = np.asarray(json.dumps(result.get("artifact_key"), sort_keys=True))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(path, buf.getvalue())


def load_predictions(path: str | os.PathLike) -> dict:
    """Predicted masks and prompt points saved with the clean evaluation.

    Returns:
        ``{"segmenter": name, "pipelines": {name: {"masks": bool (N, H, W),
        "point_coords": float32 (N, K, 2) (x, y), "point_labels": int (N, K)}}}``.
    """
    with np.load(path) as z:
        shape = tuple(int(v) for v in z["shape"])
        out = {"segmenter": str(z["segmenter"]), "pipelines": {}}
        for key in z.files:
            if key.startswith("masks_"):
                name = key[len("masks_"):]
                masks = np.unpackbits(z[key], axis=-1, count=shape[-1]).astype(bool)
                out["pipelines"][name] = {"masks": masks, "point_coords": z[f"coords_{name}"],
                                          "point_labels": z[f"labels_{name}"].astype(np.int64)}
    return out


def _current_evaluation(key: ArtifactKey, degraded: bool, eval_dir: Path,
                        want_predictions: bool) -> tuple[dict, Path | None] | None:
    """The cached evaluation (result, masks file or None) if it was made with ``key``, else None."""
    tag = "degraded" if degraded else "clean"
    json_path = eval_dir / f"test-{tag}.json"
    npz_path = eval_dir / f"test-{tag}-masks.npz"
    result = _read_json(json_path)
    current = bool(result) and result.get("artifact_key") == key.as_json() and bool(result.get("degraded")) == degraded
    have_npz = npz_path.is_file()
    if have_npz:
        try:
            with np.load(npz_path) as z:
                have_npz = json.loads(str(z["key"])) == key.as_json()
        except (OSError, ValueError, KeyError):
            have_npz = False
    if current and (have_npz or not want_predictions):
        return result, (npz_path if have_npz else None)
    return None


def run_evaluation(data: Path, ckpt: Path, key: ArtifactKey, degraded: bool, eval_dir: Path,
                   threads: int | None = None, segmenter: object | None = None) -> None:
    """Evaluate every pipeline on the test split and write ``test-<clean|degraded>.json`` and
    the masks file, both from the same run, atomically, stamped with ``key``.

    Args:
        segmenter: the segmenter to use (one instance shared by a build's evaluations); None:
            made here from ``key.backend`` (in a worker process).
        threads: CPU threads of torch and OpenCV (None: unchanged); a top-level function so that it can run
            in a worker process.
    """
    from camseg.evaluation.evaluate import evaluate, write_json
    from camseg.utils.devices import set_cpu_threads

    if threads is not None:
        set_cpu_threads(threads)
    tag = "degraded" if degraded else "clean"
    if segmenter is None:
        segmenter, _ = make_segmenter(key.backend, key.device)
    fresh = evaluate(data, ckpt, segmenter, split="test", degraded=degraded, progress=True, keep_masks=True,
                     device=key.device)
    fresh["artifact_key"] = key.as_json()
    _save_predictions(fresh, eval_dir / f"test-{tag}-masks.npz")
    write_json(fresh, eval_dir / f"test-{tag}.json")


def _evaluations(data: Path, ckpt: Path, key: ArtifactKey, eval_dir: Path, want_predictions: bool, log,
                 segmenter: Callable[[], object]) -> dict[str, tuple[dict, Path | None]]:
    """Clean and degraded evaluations, cached. ``segmenter()`` gives the build's one segmenter
    (made on first use). Computed in two processes at once when both are missing, the backend is
    an offline one and there are two or more CPUs (their segmenter work is single-threaded
    Python); SAM runs them in turn in this process, with one model."""
    want = {False: want_predictions, True: False}
    out = {d: _current_evaluation(key, d, eval_dir, want[d]) for d in (False, True)}
    todo = [d for d, res in out.items() if res is None]
    for d in todo:
        log(f"evaluating the pipelines on the {'degraded' if d else 'clean'} test split "
            f"(segmenter {key.backend} on {key.device}; minutes on a CPU)")
    parallel = (len(todo) == 2 and not key.backend.startswith("sam") and key.device == "cpu"
                and (os.cpu_count() or 1) >= 2)
    if parallel:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (os.cpu_count() or 2) // 2)
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            jobs = [pool.submit(run_evaluation, data, ckpt, key, d, eval_dir, threads) for d in todo]
            for job in jobs:
                job.result()  # re-raises a worker's error
    else:
        for d in todo:
            run_evaluation(data, ckpt, key, d, eval_dir, segmenter=segmenter())
    for d in todo:
        out[d] = _current_evaluation(key, d, eval_dir, want[d])
        if out[d] is None:
            raise RuntimeError(f"the {'degraded' if d else 'clean'} evaluation in {eval_dir} was not written")
    return {"degraded" if d else "clean": res for d, res in out.items()}


def cam_study(model, arch: str, images: np.ndarray, masks: np.ndarray, batch_size: int = 50,
              val: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Grad-CAM vs Grad-CAM++ and the choice of target layers, measured on a split.

    For each method and each layer of :data:`CAM_STUDY_LAYERS` (and the mean of
    the two deepest, and the architecture's default layers), the CAM of the top
    class is scored by the mean fraction of its mass inside the ground-truth
    mask and by the pointing game (its maximum inside the mask). The CAM the
    pipelines use (:func:`camseg.models.classifier.default_cam`; a Grad-CAM row, or
    one named by :attr:`camseg.models.cam.AugmentedCAM.description` where it is
    averaged over copies of the image) is the row marked ``default``; it is also turned into masks by thresholds alone,
    the CAM-only baseline, scored by mean IoU at every threshold of
    ``CAM_THRESHOLDS``, on these images and on ``val`` (where the
    threshold is chosen: :func:`camseg.publishing.tables.baseline_threshold`). Runs on the
    model's device.

    Args:
        model: the classifier, in eval mode.
        arch: its architecture name (picks the layers).
        images: uint8 (N, H, W, 3); masks: bool (N, H, W).
        val: ``(images, masks)`` of the validation split, or None.

    Returns:
        JSON-able ``{"rows": [{"method", "layers", "default", "mass_inside",
        "pointing_game"}], "cam_only_iou": {threshold: mean IoU}, "cam_slic_iou":
        {threshold: mean IoU of the SLIC-refined CAM}, "cam_only_iou_val",
        "cam_slic_iou_val" (the same on ``val``; absent without it), "n_images"}``.
    """
    from camseg.data.dataset import normalize
    from camseg.models.analysis import cam_mass_inside, pointing_game
    from camseg.models.cam import AugmentedCAM, GradCAM, GradCAMPlusPlus
    from camseg.models.classifier import ARCHITECTURES, default_cam

    def maps_of(cam, imgs: np.ndarray) -> np.ndarray:
        return np.concatenate([cam(normalize(imgs[s:s + batch_size])) for s in range(0, len(imgs), batch_size)])

    names = CAM_STUDY_LAYERS.get(arch) or ARCHITECTURES[arch].target_layers
    default = tuple(ARCHITECTURES[arch].target_layers)
    configs = [(n,) for n in names] + [tuple(names[-2:])]
    if default not in configs:
        configs.append(default)
    pipeline_cam = default_cam(model, arch)
    augmented = isinstance(pipeline_cam, AugmentedCAM)
    rows = []

    def add(method: str, config: tuple[str, ...], cams: np.ndarray, is_default: bool) -> None:
        rows.append({"method": method, "layers": list(config), "default": is_default,
                     "mass_inside": float(cam_mass_inside(cams, masks).mean()),
                     "pointing_game": float(pointing_game(cams, masks).mean())})

    for method_name, method in (("Grad-CAM", GradCAM), ("Grad-CAM++", GradCAMPlusPlus)):
        per_layer = []
        cam = method(model, [model.get_submodule(n) for n in names])
        for start in range(0, len(images), batch_size):
            per_layer.append(cam.compute(normalize(images[start:start + batch_size])).layer_maps)
        per_layer = np.concatenate(per_layer, axis=1)  # (L, N, H, W)
        for config in configs:
            if set(config) <= set(names):
                cams = per_layer[[names.index(n) for n in config]].mean(0)
            else:  # a default layer outside the candidates
                cams = maps_of(method(model, [model.get_submodule(n) for n in config]), images)
            add(method_name, config, cams, method_name == "Grad-CAM" and config == default and not augmented)
    default_maps = maps_of(pipeline_cam, images)
    if augmented:
        add(pipeline_cam.description, default, default_maps, True)
    cam_only, cam_slic = _threshold_curves(images, default_maps, masks)
    out = {"rows": rows, "cam_only_iou": cam_only, "cam_slic_iou": cam_slic, "n_images": int(len(images))}
    if val is not None:
        out["cam_only_iou_val"], out["cam_slic_iou_val"] = _threshold_curves(val[0], maps_of(pipeline_cam, val[0]),
                                                                             val[1])
        out["n_images_val"] = int(len(val[0]))
    return out


def _threshold_curves(images: np.ndarray, cams: np.ndarray, masks: np.ndarray) -> tuple[dict, dict]:
    """Mean IoU of the CAM alone and of the SLIC-snapped CAM at each of ``CAM_THRESHOLDS``."""
    from camseg.evaluation.metrics import iou_per_image
    from camseg.models.analysis import slic_masks, slic_superpixels, threshold_masks

    cam_only = {f"{t:.1f}": float(iou_per_image(threshold_masks(cams, t), masks).mean()) for t in CAM_THRESHOLDS}
    superpixels = slic_superpixels(images)
    cam_slic = {f"{t:.1f}": float(iou_per_image(slic_masks(None, cams, t, superpixels=superpixels), masks).mean())
                for t in CAM_THRESHOLDS}
    return cam_only, cam_slic


def gradcam_example(model, arch: str, image: np.ndarray, mask: np.ndarray, label: int) -> GradcamExample:
    """The pipelines' CAM (:func:`camseg.models.classifier.default_cam`) of one image (uint8 (H, W, 3))
    for its top class."""
    from camseg.data.dataset import normalize
    from camseg.data.shapes import CLASSES
    from camseg.models.classifier import default_cam

    out = default_cam(model, arch).compute(normalize(image[None]))
    return GradcamExample(image, out.maps[0], mask, CLASSES[int(label)], CLASSES[int(out.targets[0])])


# --------------------------------------------------------------------------
# The entry point

_MEMO: dict[tuple, Artifacts] = {}
_SEGMENTERS: dict[tuple[str, str], object] = {}


def shared_segmenter(name: str, device: str = "cpu") -> object:
    """The one segmenter instance (one SAM model, one embedding cache) of backend ``name``
    (resolved, e.g. ``Artifacts.backend.name``) on ``device`` in this process; made on first use.
    The evaluations of a build use it, and so should chapters instead of ``get_segmenter``."""
    key = (name, device)
    if key not in _SEGMENTERS:
        _SEGMENTERS[key] = make_segmenter(name, device)[0]
    return _SEGMENTERS[key]


def resolve_backend(name: str | None):
    """:func:`camseg.segmenters.choose_backend <camseg.segmenters.choice.choose_backend>`, keeping the reason
    ``camseg build`` resolved.

    ``camseg build`` resolves ``auto`` once and runs the chapters with
    ``$CAMSEG_SEGMENTER`` (the backend) and ``$CAMSEG_SEGMENTER_REASON`` (why); a
    chapter asking for that backend reports the build's reason, not "asked for".
    """
    from camseg.segmenters import choose_backend

    choice = choose_backend(name)
    inherited = os.environ.get("CAMSEG_SEGMENTER_REASON")
    if inherited and choice.name == os.environ.get("CAMSEG_SEGMENTER"):
        choice = dataclasses.replace(choice, reason=inherited)
    return choice


PARTS: tuple[str, ...] = ("evaluations", "cam_study", "suite")
"""What :func:`build_artifacts` can compute beyond the dataset and the classifier (all by default)."""


def _cam_study_cached(path: Path, key: ArtifactKey, model, settings: Settings, ckpt: Path, data: Path,
                      images: np.ndarray, masks: np.ndarray, dev: str, note, stage, lock: Path) -> dict:
    """The CAM study (:func:`cam_study`) of the test split, from ``path`` when it was made with ``key``
    (the segmenter aside: the study uses none), else computed under ``lock`` and written there."""
    from camseg.data.dataset import ShapesDataset

    with stage("CAM study"), held_lock(lock, "the CAM study", note):
        study = _read_json(path)
        stamp = {**key.as_json(), "backend": None}  # the study does not depend on the segmenter
        if not (study and study.get("artifact_key") == stamp and "cam_slic_iou_val" in study):
            note("measuring Grad-CAM and Grad-CAM++ per target layer on the test split")
            val_images, _, val_masks = ShapesDataset(data, "val").arrays(progress=False)
            study = {**cam_study(model, settings.arch, images, masks, val=(val_images, val_masks)),
                     "checkpoint": ckpt.name, "arch": settings.arch, "device": dev, "artifact_key": stamp}
            write_atomic(path, (json.dumps(study, indent=2) + "\n").encode())
    return study


def build_artifacts(workdir: str | os.PathLike | None = None, seed: int = 0, arch: str | None = None,
                    segmenter: str | None = None, device: str | None = None, predictions: bool = True,
                    log: Callable[[str], None] | None = None, stages: StageLog | None = None,
                    parts: Collection[str] = PARTS) -> Artifacts:
    """Build or load every artefact the book and the report show.

    Args:
        workdir: artefact folder (default :func:`default_workdir`).
        seed: dataset and training seed.
        arch: classifier architecture (default ``$CAMSEG_ARCH`` or
            :data:`camseg.models.classifier.DEFAULT_ARCH`).
        segmenter: segmenter name (default ``$CAMSEG_SEGMENTER`` or ``"auto"``,
            resolved by :func:`camseg.segmenters.choose_backend <camseg.segmenters.choice.choose_backend>`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` (default ``$CAMSEG_DEVICE`` or ``"auto"``).
        predictions: also make sure the clean test split's predicted masks
            are on disk (needed for galleries).
        log: called with a line whenever something is computed, and once
            with the backend and why (default: print).
        stages: a :class:`~camseg.build.stages.StageLog` to record each step's wall
            time and peak memory in (dataset, classifier, evaluations, CAM study).
        parts: what to compute beyond the dataset and the seed's classifier, a subset of
            :data:`PARTS`: ``"evaluations"`` (:attr:`Artifacts.clean`, ``degraded``,
            ``predictions``), ``"cam_study"``, ``"suite"`` (the classifier seeds and the shift
            suite, as the settings say: ``$CAMSEG_SEEDS``, ``$CAMSEG_SUITE_SIZE``). A part left out
            is None in the result and costs nothing: a chapter computes only what it shows.

    Every stage holds a lock in the work folder while it computes (``WORKDIR/.locks``), so two
    builds, or a build and a chapter, in one folder wait for each other and reuse the result.

    Returns:
        :class:`Artifacts`. Within one process the result is memoised on the
        folder, the settings and the **resolved** backend and device, so
        calling it again is free.
    """
    from camseg.data.dataset import ShapesDataset, build_dataset, read_manifest
    from camseg.utils.devices import device_name

    from camseg.build.bundle import bundle_env, installed_bundle

    work = Path(workdir) if workdir is not None else default_workdir()
    recorded = installed_bundle(work)  # results installed from a bundle: its settings, backend and device
    settings = Settings.from_env(seed, arch, segmenter, device, defaults=bundle_env(recorded) if recorded else None)
    key_dev = recorded["device"] if recorded and settings.device in ("auto", recorded["device"]) else None
    try:
        dev = device_name(settings.device if key_dev is None else key_dev)
    except (ValueError, RuntimeError):  # a bundle made on a GPU, read here without one: keys as made, run here
        dev = device_name("auto")
    key_dev = key_dev or dev
    if recorded and settings.segmenter in ("auto", recorded["backend"].get("name")):
        made = recorded["backend"]  # as the bundle's build resolved it, not resolved anew here
        choice = Backend(made["name"], made.get("reason", ""), made.get("requested", made["name"]))
    else:
        choice = resolve_backend(settings.segmenter)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; expected some of {', '.join(PARTS)}")
    want_suite = "suite" in parts and settings.seeds > 0 and settings.suite_size > 0
    want_evals = "evaluations" in parts or want_suite  # the suite reuses the seed's clean evaluation
    memo_key = (str(work.resolve()), settings, choice.name, key_dev, dev, predictions, frozenset(parts))
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    log = log or print
    stages = stages if stages is not None else StageLog(echo=None)
    log(f"segmenter: {choice.name} ({choice.reason}); device: {dev}"
        + (f" (results made on {key_dev})" if key_dev != dev else ""))
    said: list[str] = []

    def note(line: str) -> None:  # a stage that logs something computed it
        said.append(line)
        log(line)

    @contextmanager
    def stage(name: str):
        said.clear()
        with stages.stage(name) as row:
            yield
            row["note"] = "computed" if said else "cached"

    data = work / "data"
    with stage("dataset"):
        if read_manifest(data) is None:
            note(f"building the dataset into {data}")
        build_dataset(data, seed=settings.seed, sizes=dict(settings.sizes), progress=False)  # at once when built
    with stage("classifier"):
        ckpt, model, meta = _classifier(data, work, settings, dev, note)
    test = ShapesDataset(data, "test")
    images, labels, masks = test.arrays(progress=False)
    key = ArtifactKey(choice.name, key_dev, file_sha256(ckpt), camseg_version(), settings.seed, settings.arch,
                      len(test))

    eval_dir = work / "eval"
    both: dict[str, tuple[dict, Path | None]] = {}
    if want_evals:
        with stage("evaluations (clean and degraded)"), held_lock(lock_file(work, "test-evaluations"),
                                                                  "the test split's evaluations", note):
            both = _evaluations(data, ckpt, key, eval_dir, predictions, note,
                                lambda: shared_segmenter(choice.name, dev))
    study = None
    if "cam_study" in parts:
        study = _cam_study_cached(eval_dir / "cam-study.json", key, model, settings, ckpt, data, images, masks, dev,
                                  note, stage, lock_file(work, "cam-study"))
    suite = None
    if want_suite:
        from camseg.build.suite import seed_checkpoints, shift_datasets, suite_results, write_summary

        with stage(f"seeds and shift suite ({settings.seeds} seeds, {settings.suite_size} images a set)"):
            ckpts = seed_checkpoints(data, work, settings.arch, [settings.seed + k for k in range(settings.seeds)],
                                     RECIPE, note, settings.epochs, dev)
            shift = shift_datasets(work, settings.seed, settings.suite_size, log=note)
            clean = both["clean"][0]  # seed's clean test split is already evaluated: shared, not redone
            known = {("standard", settings.seed): clean} if "per_image" in clean else {}
            suite = suite_results(work, data, ckpts, choice.name, shift, note, device=key_dev, known=known)
            write_summary(suite, eval_dir / "seeds" / "summary.json")
    ex = min(REPORT_EXAMPLE, len(test) - 1)
    out = Artifacts(
        workdir=work, data=data, settings=settings, key=key, test=test, images=images, labels=labels, masks=masks,
        model=model, meta=_frozen(meta), checkpoint=ckpt, backend=Backend(choice.name, choice.reason, choice.requested),
        device=dev, clean=Evaluation.from_json(both["clean"][0]) if both else None,
        degraded=Evaluation.from_json(both["degraded"][0]) if both else None,
        predictions=both["clean"][1] if both else None, cam_study=CamStudy.from_json(study) if study else None,
        gradcam_example=gradcam_example(model, settings.arch, images[ex], masks[ex], labels[ex]), suite=suite,
    )
    _MEMO[memo_key] = out
    return out
