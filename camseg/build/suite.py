"""The build's robustness artefacts: classifier seeds, the shift suite and their evaluations, cached.

Under the work folder::

    WORKDIR/classifier-<arch>.pt            seed 0 (the book's classifier)
    WORKDIR/classifier-<arch>-seed<k>.pt    the other seeds
    WORKDIR/shift/<profile>/                the shift suite (camseg.data.profiles.SHIFT_PROFILES), test split only
    WORKDIR/eval/seeds/<set>-seed<k>.json   every pipeline on each set, per seed

Each file is reused when it was made with the same settings (a checkpoint:
seed, architecture, recipe, dataset; an evaluation: segmenter, checkpoint
content, set size, explained class) and made again otherwise. The
``distractor`` set is evaluated with ``explain="label"`` (a class-name
prompt: the CAM explains the labelled shape, not whichever the classifier
likes best); the others with ``explain="top"``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from camseg.build.keys import file_sha256
from camseg.utils.paths import atomic_path, held_lock

__all__ = ["DEFAULT_SEEDS", "SUITE_SIZE", "SuiteResults", "checkpoint_path", "explain_for",
           "recipe_details", "recipe_inputs", "seed_checkpoints", "shift_datasets", "suite_results"]

DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2)
"""Classifier seeds of the main build."""

SUITE_SIZE = 100
"""Images per shift-suite set in the main build."""


def explain_for(name: str) -> str:
    """``"label"`` for the distractor set (a class-name prompt), else ``"top"``."""
    return "label" if name == "distractor" else "top"


def lock_file(work: str | os.PathLike, name: str) -> Path:
    """The lock guarding the computation of artefact ``name`` in the work folder ``work``:
    ``work/.locks/<name>.lock`` (:func:`camseg.utils.paths.held_lock`)."""
    return Path(work) / ".locks" / f"{name}.lock"


def checkpoint_path(work: Path, arch: str, seed: int) -> Path:
    """``classifier-<arch>.pt`` for seed 0 (the book's), ``classifier-<arch>-seed<k>.pt`` otherwise."""
    return Path(work) / (f"classifier-{arch}.pt" if seed == 0 else f"classifier-{arch}-seed{seed}.pt")


def shift_datasets(work: Path, seed: int = 0, n: int = SUITE_SIZE, names: Sequence[str] | None = None,
                   log: Callable[[str], None] = print) -> dict[str, Path]:
    """Build (or reuse) the shift-suite test sets under ``WORKDIR/shift/``."""
    from camseg.data.dataset import build_dataset, read_manifest
    from camseg.data.profiles import SHIFT_PROFILES

    out = {}
    for name in names or SHIFT_PROFILES:
        path = Path(work) / "shift" / name
        manifest = read_manifest(path)
        if not manifest or manifest.get("sizes") != {"test": n} or manifest.get("seed") != seed:
            log(f"building the shift set {name!r} ({n} images) into {path}")
        build_dataset(path, seed=seed, sizes={"test": n}, profile=name, progress=False,
                      overwrite=bool(manifest) and (manifest.get("sizes") != {"test": n}
                                                    or manifest.get("seed") != seed))
        out[name] = path
    return out


def seed_checkpoints(data: Path, work: Path, arch: str, seeds: Sequence[int], recipe: str = "wide",
                     log: Callable[[str], None] = print, epochs: int | None = None,
                     device: str = "auto") -> dict[int, Path]:
    """Train (or reuse) one classifier per seed on ``data`` with ``recipe`` (``epochs``: None for
    the architecture's default; a checkpoint trained for other epochs is retrained). Each seed's
    training holds a lock in ``work`` (``lock_file``), so two builds in one folder train it once."""
    details = recipe_details(recipe)
    out = {}
    for seed in seeds:
        ckpt = checkpoint_path(work, arch, seed)
        with held_lock(lock_file(work, ckpt.stem), f"the classifier {ckpt.name}", log):
            out[seed] = _seed_checkpoint(data, ckpt, arch, seed, recipe, details, log, epochs, device)
    return out


def _seed_checkpoint(data: Path, ckpt: Path, arch: str, seed: int, recipe: str, details: dict | None,
                     log: Callable[[str], None], epochs: int | None, device: str) -> Path:
    """One seed of :func:`seed_checkpoints`, under its lock: reuse ``ckpt`` or train it."""
    from camseg.models.classifier import load_checkpoint, train_classifier

    if ckpt.is_file():
        try:
            _, meta = load_checkpoint(ckpt)
            if (meta.get("seed") == seed and meta.get("arch") == arch and meta.get("recipe", "standard") == recipe
                    and Path(str(meta.get("data"))).name == Path(data).name
                    and (epochs is None or meta.get("epochs") == epochs)
                    and meta.get("recipe_details") == details):
                return ckpt
            log(f"{ckpt} was trained otherwise (seed {meta.get('seed')}, recipe {meta.get('recipe', 'standard')}"
                f"{'' if meta.get('recipe_details') == details else ', another shape distribution'}); retraining")
        except ValueError as exc:
            log(f"retraining: {exc}")
    log(f"training {arch} seed {seed} ({recipe} recipe) into {ckpt} (minutes on a CPU)")
    train_classifier(data, arch=arch, seed=seed, epochs=epochs, out=ckpt, progress=False, log=log, device=device,
                     **recipe_inputs(recipe, data, seed))
    return ckpt


def recipe_details(recipe: str) -> dict | None:
    """The settings behind a training recipe, as stored in its checkpoints: for ``"wide"``, the
    parameters of :data:`camseg.data.profiles.WIDE` (JSON types); None for ``"standard"``."""
    if recipe != "wide":
        return None
    from dataclasses import asdict

    from camseg.data.profiles import WIDE

    return json.loads(json.dumps(asdict(WIDE)))


def recipe_inputs(recipe: str, data: Path, seed: int) -> dict:
    """:func:`camseg.models.classifier.train_classifier`'s keyword arguments for ``recipe`` on the dataset
    at ``data``: for ``"wide"``, fresh shapes every epoch and the wide validation set
    (:func:`camseg.data.sets.wide_training`), the recipe's name and :func:`recipe_details`; none
    for ``"standard"`` (the dataset's own splits)."""
    if recipe != "wide":
        return {}
    from camseg.data.sets import wide_training

    fresh, val = wide_training(data, seed=seed)
    return {"fresh": fresh, "val": val, "recipe": "wide", "recipe_details": recipe_details("wide")}


def _stamp(backend: str, device: str, digest: str, explain: str, data: Path) -> dict:
    from camseg.build.keys import camseg_version
    from camseg.data.dataset import read_manifest

    return {"backend": backend, "device": device, "checkpoint_sha256": digest, "explain": explain,
            "camseg_version": camseg_version(), "dataset": read_manifest(data)}


def _current(path: Path, stamp: dict) -> dict | None:
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return res if res.get("suite_key") == stamp and "per_image" in res else None


def evaluate_to(path: Path, data: Path, ckpt: Path, stamp: dict, split: str = "test",
                threads: int | None = None) -> None:
    """Evaluate ``ckpt`` on ``data`` and write the JSON, stamped with ``stamp`` (backend, device,
    checkpoint digest, explained class, version, dataset manifest), to ``path``; a top-level
    function so that it can run in a worker process."""
    from camseg.build.keys import make_segmenter
    from camseg.evaluation.evaluate import evaluate, write_json
    from camseg.utils.devices import set_cpu_threads

    if threads is not None:
        set_cpu_threads(threads)
    seg, _ = make_segmenter(stamp["backend"], stamp["device"])
    res = evaluate(data, ckpt, seg, split=split, explain=stamp["explain"], progress=False, device=stamp["device"])
    res["suite_key"] = stamp
    res["set"] = path.stem.rsplit("-seed", 1)[0]
    write_json(res, path)


@dataclass(frozen=True)
class SuiteResults:
    """Evaluations per set and seed.

    Attributes:
        sets: set name (``"standard"`` for the published test split, then the
            shift profiles) -> one evaluation result per seed, in seed order.
        seeds: the seeds.
        checkpoints: seed -> checkpoint path.
    """

    sets: dict[str, list[dict]]
    seeds: tuple[int, ...]
    checkpoints: dict[int, Path]


def suite_results(work: Path, data: Path, checkpoints: dict[int, Path], backend: str, shift: dict[str, Path],
                  log: Callable[[str], None] = print, workers: int | None = None,
                  device: str = "cpu", known: dict[tuple[str, int], dict] | None = None) -> SuiteResults:
    """Evaluate every checkpoint on the standard test split and every shift set (cached).

    Missing evaluations run in ``workers`` processes (default: 2 for offline
    backends on a machine with 2+ CPUs, else 1: SAM would be loaded twice).
    ``known``: results already computed elsewhere, by (set, seed), used as they
    are (the build passes its clean test-split evaluation of the first seed).
    """
    with held_lock(lock_file(work, "suite-evaluations"), "the shift suite's evaluations", log):
        return _suite_results(work, data, checkpoints, backend, shift, log, workers, device, dict(known or {}))


def _suite_results(work: Path, data: Path, checkpoints: dict[int, Path], backend: str, shift: dict[str, Path],
                   log: Callable[[str], None], workers: int | None, device: str,
                   known: dict[tuple[str, int], dict]) -> SuiteResults:
    """:func:`suite_results` under its lock."""
    eval_dir = Path(work) / "eval" / "seeds"
    sets = {"standard": Path(data), **shift}
    digests = {seed: file_sha256(p) for seed, p in checkpoints.items()}
    jobs, results = [], {name: [] for name in sets}
    stamps = {(name, seed): _stamp(backend, device, digests[seed], explain_for(name), path)
              for name, path in sets.items() for seed in checkpoints}
    for name, path in sets.items():
        for seed, ckpt in sorted(checkpoints.items()):
            out = eval_dir / f"{name}-seed{seed}.json"
            if (name, seed) not in known and _current(out, stamps[name, seed]) is None:
                jobs.append((out, path, ckpt, stamps[name, seed]))
    if jobs:
        log(f"evaluating {len(jobs)} (set, seed) pairs (segmenter {backend})")
        eval_dir.mkdir(parents=True, exist_ok=True)
        if workers is None:
            workers = 2 if not backend.startswith("sam") and device == "cpu" and (os.cpu_count() or 1) >= 2 else 1
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            threads = max(1, (os.cpu_count() or 2) // workers)
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for job in [pool.submit(evaluate_to, *j, threads=threads) for j in jobs]:
                    job.result()
        else:
            for j in jobs:
                evaluate_to(*j)
    for name in sets:
        for seed in sorted(checkpoints):
            res = known.get((name, seed)) or _current(eval_dir / f"{name}-seed{seed}.json", stamps[name, seed])
            if res is None:
                raise RuntimeError(f"the evaluation of seed {seed} on {name!r} was not written")
            results[name].append(res)
    return SuiteResults(results, tuple(sorted(checkpoints)), dict(checkpoints))


def write_summary(suite: SuiteResults, path: Path) -> Path:
    """The mean ± sd table (:func:`camseg.evaluation.robustness.seed_table`) as JSON at ``path``."""
    from camseg.evaluation.robustness import seed_table

    rows = seed_table(suite.sets)
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps({"seeds": list(suite.seeds), "rows": rows}, indent=2) + "\n")
    return Path(path)
