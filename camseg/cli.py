"""The ``camseg`` command line.

::

    camseg data build --out artifacts/data [--seed 0] [--cifar10 PATH]
    camseg train --data artifacts/data --arch efficientnet_lite0 --out artifacts/classifier.pt
    camseg evaluate --data artifacts/data --checkpoint CKPT --segmenter offline --json OUT.json
    camseg report --out _build/report.pdf
    camseg build [--workdir artifacts] [--segmenter auto] [--device auto]   # the main job: artefacts, book, report
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence

KNOWN_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, RuntimeError)
"""Errors printed as one line with exit status 2 (see the book's Reference › Command line); ``--debug`` shows
the traceback.
RuntimeError covers camseg's CheckpointError (a missing or corrupt SAM checkpoint)."""


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``lo..hi`` (``hi`` None: no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            bounds = f">= {lo}" if hi is None else f"in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"expected an integer {bounds}"
                                             f", got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def float_range(lo: float, hi: float | None = None, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number ``> lo`` (``lo_open``) or ``>= lo``, and ``<= hi``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low_ok = value > lo if lo_open else value >= lo
        if not math.isfinite(value) or not low_ok or (hi is not None and value > hi):
            want = f"{'>' if lo_open else '>='} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
            raise argparse.ArgumentTypeError(f"expected a finite number {want}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def _cmd_data_build(args: argparse.Namespace) -> int:
    from camseg.data.dataset import MANIFEST, build_dataset
    from camseg.data.io import check_output_folder

    check_output_folder(args.out, "--out")
    t0 = time.perf_counter()
    sizes = {"train": args.train, "val": args.val, "test": args.test}
    if args.profile != "standard":  # a shift-suite test set: the test split only
        sizes = {"test": args.test}
    path = build_dataset(args.out, seed=args.seed, cifar10=args.cifar10, sizes=sizes, overwrite=args.overwrite,
                         profile=args.profile)
    print(f"dataset ready at {path} ({sum(sizes.values())} images, seed {args.seed}; verified against its "
          f"{MANIFEST}) in {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from camseg.build.suite import recipe_inputs
    from camseg.data.io import check_output_file
    from camseg.models.classifier import train_classifier
    from camseg.utils.devices import set_cpu_threads

    check_output_file(args.out, "--out")  # before minutes of training
    if args.threads:
        set_cpu_threads(args.threads)
    t0 = time.perf_counter()
    extra = recipe_inputs(args.recipe, args.data, args.seed)
    result = train_classifier(args.data, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                              seed=args.seed, pretrained=False if args.no_pretrained else "auto",
                              input_scale=args.input_scale, out=args.out, device=args.device, **extra)
    test = result.meta["test_accuracy"]
    print(f"saved {result.path}: {args.arch} on {result.meta['device']}, "
          f"val acc {result.meta['val_accuracy']:.4f}, test acc "
          + ("n/a" if test is None else f"{test:.4f}") + f", {time.perf_counter() - t0:.0f} s")
    return 0


def missing_results(workdir, arch: str | None = None) -> list[str]:
    """The cached artefacts ``camseg report`` needs that are not in ``workdir`` (relative paths)."""
    from pathlib import Path

    from camseg.models.classifier import DEFAULT_ARCH

    work = Path(workdir)
    need = ["data/dataset.json", f"classifier-{arch or DEFAULT_ARCH}.pt", "eval/test-clean.json",
            "eval/test-clean-masks.npz", "eval/test-degraded.json", "eval/cam-study.json"]
    return [rel for rel in need if not (work / rel).is_file()]


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from camseg.build.artifacts import build_artifacts, default_workdir
    from camseg.data.io import check_output_file
    from camseg.publishing.report import write_report

    check_output_file(args.out, "--out", suffixes=(".pdf",))
    work = Path(args.workdir) if args.workdir is not None else default_workdir()
    log = print
    if not args.build:
        how = (f"build them with `camseg build --workdir {work} --no-book` (minutes on a CPU), "
               "or pass --build to let `camseg report` compute them")
        missing = missing_results(work)
        if missing:
            raise FileNotFoundError(f"no cached results in {work} (missing {', '.join(missing)}): {how}")

        def log(line: str) -> None:  # build_artifacts() logs before it computes anything: stop there
            if line.startswith("segmenter: "):  # which backend and why: information, not work
                print(line, file=sys.stderr)
                return
            raise FileNotFoundError(f"the cached results in {work} do not fit these settings ({line}): {how}")

    res = build_artifacts(work, seed=args.seed, segmenter=args.segmenter, device=args.device, log=log)
    print(f"wrote {write_report(res, args.out)} (segmenter {res.backend.name}, device {res.device})")
    return 0


def artefacts_fingerprint(workdir) -> str:
    """SHA-256 over camseg's source (every module, the presentation ones too: they make the
    chapters' tables and figures) and every evaluation JSON under ``workdir/eval``: it changes
    whenever what the chapters show can change."""
    import hashlib
    from pathlib import Path

    import camseg

    digest = hashlib.sha256()
    package = Path(camseg.__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    eval_dir = Path(workdir) / "eval"
    for path in sorted(eval_dir.rglob("*.json")):
        digest.update(path.relative_to(eval_dir).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def forget_stale_chapters(build_dir, fingerprint: str) -> bool:
    """Drop jupyter-book's executed-notebook cache under ``build_dir`` when the artefacts changed.

    jupyter-book re-runs a chapter only when its code changes; after new
    evaluations an unchanged chapter would show the old numbers. The
    fingerprint of the artefacts the cache was made with is kept in
    ``build_dir/artefacts.sha256`` (written by :func:`remember_chapters`).

    Returns:
        True when the cache was dropped (or there was none to trust).
    """
    import shutil
    from pathlib import Path

    build_dir = Path(build_dir)
    stamp = build_dir / "artefacts.sha256"
    if stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return False
    for name in (".jupyter_cache", "jupyter_execute"):
        shutil.rmtree(build_dir / name, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    return True


def remember_chapters(build_dir, fingerprint: str) -> None:
    """Record that the chapters under ``build_dir`` were executed with these artefacts."""
    from pathlib import Path

    from camseg.utils.paths import atomic_path

    with atomic_path(Path(build_dir) / "artefacts.sha256") as tmp:
        tmp.write_text(fingerprint + "\n")


BOOK_SOURCES: tuple[str, ...] = ("_config.yml", "_toc.yml", "book", "_static")
"""What ``jupyter-book build`` reads besides camseg's source, relative to the book's root."""


def book_fingerprint(root, artefacts: str, env: dict[str, str]) -> str:
    """SHA-256 of everything the built book depends on: ``artefacts``
    (:func:`artefacts_fingerprint`: camseg's source, which the API pages are parsed from, and the
    evaluations), the book's sources under ``root`` (:data:`BOOK_SOURCES`, without the API pages
    generated during a build and any ``_build``), the ``CAMSEG_*`` settings of ``env`` the chapters
    run with, and the versions of jupyter-book and Sphinx."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    root = Path(root)
    digest = hashlib.sha256(artefacts.encode() + b"\0")
    for name in sorted(k for k in env if k.startswith("CAMSEG_")):
        digest.update(f"{name}={env[name]}\0".encode())
    for package in ("jupyter-book", "sphinx"):
        try:
            digest.update(f"{package}=={version(package)}\0".encode())
        except PackageNotFoundError:
            digest.update(f"{package} missing\0".encode())
    generated = root / "book" / "reference" / "api"
    for top in BOOK_SOURCES:
        paths = [root / top] if (root / top).is_file() else sorted((root / top).rglob("*"))
        for path in paths:
            skip = {"_build", ".ipynb_checkpoints", "__pycache__"} & set(path.relative_to(root).parts)
            if path.is_file() and not skip and not path.is_relative_to(generated):
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _cmd_build(args: argparse.Namespace) -> int:
    """The main job: artefacts (cached), the Jupyter Book and the PDF report.

    Prints each stage's wall time and peak memory (this process and its
    children) and writes them to ``<book>/_build/build-profile.json``.
    """
    import os
    import shutil
    import subprocess
    from pathlib import Path

    from camseg.build.artifacts import build_artifacts
    from camseg.build.stages import StageLog
    from camseg.data.io import check_output_file
    from camseg.utils.paths import atomic_path

    check_output_file(args.report, "--report", suffixes=(".pdf",))
    root = Path(args.book)
    bundle_out = None if args.no_bundle else Path(args.bundle or root / "_build" / "camseg-results.tar.gz")
    if bundle_out is not None:
        check_output_file(bundle_out, "--bundle")
        if not bundle_out.name.endswith((".tar.gz", ".tgz")):
            raise ValueError(f"--bundle {bundle_out}: expected a .tar.gz file name")
    if not (root / "_config.yml").is_file():
        raise FileNotFoundError(f"{root / '_config.yml'} not found: run `camseg build` from the repository root "
                                "or pass --book PATH")
    exe = None
    if not args.no_book:
        exe = shutil.which("jupyter-book")
        if exe is None:
            raise FileNotFoundError("jupyter-book is not installed: pip install -r requirements.txt")
    if args.seeds is not None:
        os.environ["CAMSEG_SEEDS"] = str(args.seeds)  # the book's kernels inherit the same settings
    if args.suite_size is not None:
        os.environ["CAMSEG_SUITE_SIZE"] = str(args.suite_size)
    stages = StageLog()
    seed = args.seed
    if args.from_bundle is not None:
        seed = _install_bundle(args, stages)
    print("[1/3] artefacts: dataset, classifier, evaluations (each computed once, then reused)")
    res = build_artifacts(args.workdir, seed=seed or 0, segmenter=args.segmenter, device=args.device, stages=stages)
    print(f"      {res.meta['arch']}: test accuracy {res.meta['test_accuracy']:.4f}; segmenter {res.backend.name}; "
          f"device {res.device}")
    if exe is not None:
        print("[2/3] book: jupyter-book build -W -n --keep-going (chapters reuse the artefacts)")
        # The chapters' build_artifacts() call reads these, so they use what this build used.
        env = dict(os.environ, CAMSEG_WORKDIR=str(Path(res.workdir).resolve()), CAMSEG_SEGMENTER=res.backend.name,
                   CAMSEG_SEGMENTER_REASON=res.backend.reason, CAMSEG_DEVICE=res.device)
        fingerprint = artefacts_fingerprint(res.workdir)
        book_key = book_fingerprint(root, fingerprint, env)
        # this build's stages so far, for the chapters' reproducibility box (the rest is added after)
        stages.write_json(root / "_build" / "build-profile.json", complete=False)
        stamp, index = root / "_build" / "book.sha256", root / "_build" / "html" / "index.html"
        unchanged = index.is_file() and stamp.is_file() and stamp.read_text().strip() == book_key
        if unchanged:
            print(f"      unchanged since it was last built (its sources, camseg and the artefacts): {index} kept; "
                  f"delete {stamp} to build it anyway")
        elif forget_stale_chapters(root / "_build", fingerprint):
            print("      the artefacts changed since the chapters were last executed: every chapter runs again")
        with stages.stage("book") as row:
            if unchanged:
                done = subprocess.CompletedProcess([], 0)
                row["note"] = f"{index} (unchanged, not rebuilt)"
            else:
                stamp.unlink(missing_ok=True)
                done = subprocess.run([exe, "build", "-W", "-n", "--keep-going", str(root)], env=env)
                row["note"] = str(index)
        if done.returncode == 0 and not unchanged:
            remember_chapters(root / "_build", fingerprint)
            with atomic_path(stamp) as tmp:
                tmp.write_text(book_key + "\n")
        if done.returncode != 0:
            print(f"camseg: error: the book build failed (exit {done.returncode}); see the log above",
                  file=sys.stderr)
            return done.returncode
    from camseg.publishing.report import write_report

    with stages.stage("report") as row:
        out = write_report(res, args.report)
        row["note"] = str(out)
    print(f"[3/3] report: {out}")
    profile = stages.write_json(root / "_build" / "build-profile.json")
    if bundle_out is not None:
        from camseg.build.bundle import bundle_is_current, write_bundle

        with stages.stage("results bundle") as row:  # the bundle holds the profile up to here
            kept = bundle_is_current(bundle_out, res.workdir)
            if not kept:
                write_bundle(res.workdir, bundle_out, profile, settings=res.settings, backend=res.backend,
                             device=res.device)
            row["note"] = f"{bundle_out}{' (holds these results already, kept)' if kept else ''}"
        print(f"      bundle: {bundle_out} ({bundle_out.stat().st_size / 2**20:.1f} MiB; "
              f"{'unchanged, with the profile of the build that made it; ' if kept else ''}"
              f"camseg build --from-bundle {bundle_out} reuses every result)")
        stages.write_json(profile)
    print(f"\nstages (also in {profile}):\n{stages.table()}")
    return 0


def _install_bundle(args: argparse.Namespace, stages) -> int:
    """``camseg build --from-bundle``: verify and install the bundle into the work folder, and ask
    for what it was built with (environment variables the chapters inherit too) wherever the
    command line does not say otherwise. Returns the seed to build."""
    import os
    from pathlib import Path

    from camseg.build.artifacts import default_workdir
    from camseg.build.bundle import bundle_env, fetch_bundle

    work = Path(args.workdir) if args.workdir is not None else default_workdir()
    print(f"[0/3] bundle: installing {args.from_bundle} into {work} (verified first)")
    with stages.stage("install results bundle") as row:
        info = fetch_bundle(args.from_bundle, work, known_hash=args.bundle_sha256, overwrite=args.overwrite,
                            progress=sys.stderr.isatty())
        row["note"] = f"{info.installed} of {len(info.files)} files installed"
    args.workdir = str(work)
    keep = set()
    if args.seeds is not None:
        keep.add("CAMSEG_SEEDS")
    if args.suite_size is not None:
        keep.add("CAMSEG_SUITE_SIZE")
    if args.segmenter not in (None, "auto"):
        keep |= {"CAMSEG_SEGMENTER", "CAMSEG_SEGMENTER_REASON"}
    if args.device not in (None, "auto"):
        keep.add("CAMSEG_DEVICE")
    env = bundle_env(info, keep)
    if env.get("CAMSEG_DEVICE", "cpu").startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            env.pop("CAMSEG_DEVICE")
            print(f"camseg: warning: the bundle's results were computed on {info.device}, which this machine lacks; "
                  "those keyed on the device are computed again here", file=sys.stderr)
    os.environ.update(env)
    print(f"      {len(info.files)} files ({info.size / 2**20:.1f} MiB, camseg {info.version}), "
          f"{info.installed} installed; segmenter {info.backend.get('name')}, device {info.device}")
    seed = args.seed if args.seed is not None else info.settings.get("seed")
    return int(seed or 0)


def _make_segmenter(name: str, device: str) -> object:
    """The segmenter for ``name`` (``auto`` resolved once, its reason printed to stderr);
    SAM backends go on ``device``, the offline ones run on the CPU."""
    from camseg.segmenters import choose_backend, get_segmenter

    choice = choose_backend(name)
    if choice.requested == "auto":
        print(f"segmenter: {choice.name} ({choice.reason})", file=sys.stderr)
    return get_segmenter(choice.name, **({"device": device} if choice.name.startswith("sam") else {}))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from camseg.data.io import check_output_file
    from camseg.evaluation.evaluate import evaluate, write_json
    from camseg.publishing.tables import format_table
    from camseg.utils.devices import device_name

    if args.json:
        check_output_file(args.json, "--json", suffixes=(".json",))
    device = device_name(args.device)
    segmenter = _make_segmenter(args.segmenter, device)
    result = evaluate(args.data, args.checkpoint, segmenter, split=args.split, degraded=args.degraded,
                      limit=args.limit, batch_size=args.batch_size, device=device, explain=args.explain,
                      workers=args.workers or None)
    print(format_table(result))
    if args.json:
        print(f"wrote {write_json(result, args.json)}")
    return 0


def _cmd_segment(args: argparse.Namespace) -> int:
    from camseg.data.io import LOSSLESS_MASK_FORMATS, check_output_file, load_image, save_mask
    from camseg.data.shapes import CLASSES, IMAGE_SIZE
    from camseg.models.classifier import default_cam, load_checkpoint
    from camseg.pipelines.segment import segment_image
    from camseg.utils.devices import device_name

    out = check_output_file(args.out, "--out", suffixes=tuple(LOSSLESS_MASK_FORMATS), inputs=[args.image])
    loaded = load_image(args.image)
    device = device_name(args.device)
    model, meta = load_checkpoint(args.checkpoint, device=device)
    classes = tuple(meta.get("classes") or CLASSES)
    target = args.target
    if target is not None and target not in classes:
        raise ValueError(f"--target: unknown class name {target!r} for {args.checkpoint}; expected one of "
                         f"{', '.join(classes)}")
    res = segment_image(loaded.rgb, model, default_cam(model, meta["arch"]), _make_segmenter(args.segmenter, device),
                        pipeline=args.pipeline, target=target, classifier_size=meta.get("input_size", IMAGE_SIZE),
                        classes=classes)
    save_mask(res.mask, out)
    for note in ((f"{args.image}: {loaded.note}",) if loaded.note else ()) + res.notes:
        print(f"note: {note}")
    name = classes[res.target]
    print(f"class {name!r} (p = {res.probability:.2f}"
          + (f"; the classifier's top class is {classes[res.top_class]!r}, p = {res.top_probability:.2f}"
             if res.target != res.top_class else "") + ")")
    if res.unsure:
        print(f"camseg: warning: the classifier is unsure: {classes[res.top_class]!r} p = {res.top_probability:.2f}, "
              f"{classes[res.runner_up]!r} p = {res.runner_up_probability:.2f}; the mask may show the wrong object "
              "(check it, or name the class with --target)", file=sys.stderr)
    points = ", ".join(f"({x:.0f}, {y:.0f}){'+' if lab == 1 else '-'}"
                       for (x, y), lab in zip(res.point_coords, res.point_labels, strict=True))
    w, h = res.image_size
    print(f"{out}: {int(res.mask.sum())} of {w} x {h} pixels segmented as {name!r}, points (x, y) {points}, "
          f"segmenter {res.backend}, device {device}")
    return 0


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (book: Reference › Command line), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from camseg.data.dataset import SPLITS
    from camseg.models.classifier import ARCHITECTURES, DEFAULT_ARCH
    from camseg.utils.devices import DEVICE_CHOICES

    device_opt = {"default": "auto", "choices": DEVICE_CHOICES,
                  "help": "auto (CUDA when available, else the CPU), cpu or cuda"}

    parser = _Parser(prog="camseg", description="Segmentation without user input: Grad-CAM -> SAM.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="dataset commands").add_subparsers(dest="data_command", required=True)
    b = data.add_parser("build", help="generate the synthetic shapes dataset (see the book's Reference, Data)")
    b.add_argument("--out", required=True, help="destination folder")
    b.add_argument("--seed", type=int_range(0), default=0, help="random seed >= 0 (default 0)")
    b.add_argument("--cifar10", default=None,
                   help="folder with train.tar/test.tar or a torchvision CIFAR-10 root (default: autodetect, "
                        "then $CAMSEG_CIFAR10, then download)")
    for split, n in SPLITS.items():
        b.add_argument(f"--{split}", type=int_range(0), default=n, help=f"images in the {split} split (default {n})")
    b.add_argument("--overwrite", action="store_true",
                   help="replace a camseg dataset built otherwise (never another folder, unless it is empty)")
    from camseg.data.profiles import SHIFT_PROFILES

    b.add_argument("--profile", default="standard", choices=["standard", *SHIFT_PROFILES],
                   help="standard: the published dataset (default); any other: a shift-suite test set of --test "
                        "images on CIFAR-10 test photos (camseg.data.profiles)")
    b.set_defaults(func=_cmd_data_build)

    t = sub.add_parser("train", help="train a classifier and save its checkpoint")
    t.add_argument("--data", required=True, help="dataset folder")
    t.add_argument("--arch", default=DEFAULT_ARCH, choices=sorted(ARCHITECTURES), help=f"default {DEFAULT_ARCH}")
    t.add_argument("--out", required=True, help="checkpoint file to write")
    t.add_argument("--epochs", type=int_range(1), default=None, help="default: the architecture's")
    t.add_argument("--batch-size", type=int_range(1), default=64)
    t.add_argument("--lr", type=float_range(0, 10, lo_open=True), default=1e-3)
    t.add_argument("--seed", type=int_range(0), default=0)
    t.add_argument("--input-scale", type=float_range(0.25, 8), default=None,
                   help="input upsampling factor, 0.25..8 (default: the arch's)")
    t.add_argument("--no-pretrained", action="store_true", help="random initialisation")
    t.add_argument("--threads", type=int_range(0, 1024), default=0,
                   help="CPU threads of torch and OpenCV (default 0: their own choice)")
    t.add_argument("--recipe", default="standard", choices=["standard", "wide"],
                   help="standard: the dataset's train split; wide: fresh shapes of camseg.data.profiles.WIDE every "
                        "epoch, selected on a wide validation set (default standard)")
    t.add_argument("--device", **device_opt)
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="evaluate every pipeline, the centre baseline and the oracle on a split")
    e.add_argument("--data", required=True, help="dataset folder (layout: see the book's Reference, Data)")
    e.add_argument("--split", default="test")
    e.add_argument("--checkpoint", required=True, help="classifier checkpoint")
    e.add_argument("--segmenter", default="auto", help="auto (SAM if weights are found, else offline), sam, "
                   "sam-vit_l, sam-vit_h, offline, regiongrow, floodfill, grabcut, randomwalker")
    e.add_argument("--json", default=None, help="write the results to this JSON file")
    e.add_argument("--degraded", action="store_true", help="JPEG quality 90 + mild noise first")
    e.add_argument("--limit", type=int_range(1), default=None, help="only the first N images (N >= 1)")
    e.add_argument("--explain", default="top", choices=["top", "label"],
                   help="top: the CAM explains the classifier's top class (default); label: the image's labelled "
                        "class (a class-name prompt per image)")
    e.add_argument("--batch-size", type=int_range(1), default=50)
    e.add_argument("--workers", type=int_range(0, 64), default=0,
                   help="processes evaluating batches side by side (default 0: 2 for an offline segmenter on a "
                        "CPU with 2+ cores, else 1), each with its share of the CPU threads")
    e.add_argument("--device", **device_opt)
    e.set_defaults(func=_cmd_evaluate)

    g = sub.add_parser("segment", help="segment one image with no user input")
    g.add_argument("image", help="an image file of any size and mode (greyscale, 16-bit, palette, alpha: "
                                 "see camseg.data.io)")
    g.add_argument("--out", required=True, help="mask to write, 255 = object, at the image's size (.png, .bmp, .tif)")
    g.add_argument("--target", default=None, help="class name to segment (default: the top class)")
    g.add_argument("--checkpoint", default="artifacts/classifier-efficientnet_lite0.pt")
    g.add_argument("--segmenter", default="auto")
    g.add_argument("--pipeline", default="foreground_background",
                   choices=["center", "foreground", "foreground_background"])
    g.add_argument("--device", **device_opt)
    g.set_defaults(func=_cmd_segment)

    r = sub.add_parser("report", help="the 1-2 page PDF report (WeasyPrint) from the cached results")
    r.add_argument("--workdir", default=None,
                   help="where artefacts are cached (default $CAMSEG_WORKDIR, else ./artifacts)")
    r.add_argument("--out", default="_build/report.pdf")
    r.add_argument("--seed", type=int_range(0), default=0)
    r.add_argument("--segmenter", default="auto", help="auto: SAM if its checkpoint is found or can be downloaded, "
                   "else offline")
    r.add_argument("--device", **device_opt)
    r.add_argument("--build", action="store_true",
                   help="compute missing or out-of-date results (dataset, training, evaluations: minutes) "
                        "instead of stopping with an error")
    r.set_defaults(func=_cmd_report)

    m = sub.add_parser("build", help="the main job: dataset, classifier, evaluations (cached), book, report")
    m.add_argument("--workdir", default=None,
                   help="where artefacts are cached (default $CAMSEG_WORKDIR, else ./artifacts)")
    m.add_argument("--seed", type=int_range(0), default=None, help="default 0 (with --from-bundle: the bundle's)")
    m.add_argument("--segmenter", default="auto", help="auto: SAM if its checkpoint is found or can be downloaded, "
                   "else offline; the chapters use the same")
    m.add_argument("--device", **device_opt)
    m.add_argument("--book", default=".", help="folder with _config.yml (default: the current one)")
    m.add_argument("--report", default="_build/report.pdf", help="where to write the PDF report")
    m.add_argument("--no-book", action="store_true", help="skip the Jupyter Book (artefacts and report only)")
    m.add_argument("--seeds", type=int, default=None,
                   help="classifier seeds trained and evaluated on the standard split and the shift suite "
                        "(default $CAMSEG_SEEDS or 3)")
    m.add_argument("--suite-size", type=int, default=None,
                   help="images per shift-suite set (default $CAMSEG_SUITE_SIZE or 100; 0 skips seeds and suite)")
    m.add_argument("--from-bundle", default=None, metavar="URL|PATH",
                   help="first install a results bundle (camseg-results.tar.gz of another build: verified, same "
                        "camseg version) into the work folder, and build with its settings: nothing is recomputed")
    m.add_argument("--bundle-sha256", default=None, metavar="HEX",
                   help="with --from-bundle: the bundle's SHA-256, checked before it is used")
    m.add_argument("--overwrite", action="store_true",
                   help="with --from-bundle: replace files of the work folder that differ from the bundle's")
    m.add_argument("--bundle", default=None, metavar="PATH",
                   help="where to write the results bundle (default _build/camseg-results.tar.gz of --book)")
    m.add_argument("--no-bundle", action="store_true", help="do not write the results bundle")
    m.set_defaults(func=_cmd_build)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    _add_debug(sub)
    return parser


def _add_debug(sub: argparse._SubParsersAction) -> None:
    """``--debug`` after any subcommand too (``camseg segment ... --debug``)."""
    for p in sub.choices.values():
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_debug(action)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text += f": {exc.filename}"
    return text


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"camseg: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command. Exit status 0 done, 2 a usage or input error (one line on stderr, the
    traceback only with ``--debug``), 130 interrupted."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    debug = bool(getattr(args, "debug", False))
    previous = warnings.showwarning
    if not debug:
        warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except KNOWN_ERRORS as exc:
        if debug:
            raise
        print(f"camseg: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("camseg: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":
    sys.exit(main())
