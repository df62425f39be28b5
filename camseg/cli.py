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
import sys
import time
from collections.abc import Sequence


def _cmd_data_build(args: argparse.Namespace) -> int:
    from camseg.data import build_dataset

    t0 = time.perf_counter()
    sizes = {"train": args.train, "val": args.val, "test": args.test}
    if args.profile != "standard":  # a shift-suite test set: the test split only
        sizes = {"test": args.test}
    path = build_dataset(args.out, seed=args.seed, cifar10=args.cifar10, sizes=sizes, overwrite=args.overwrite,
                         profile=args.profile)
    print(f"dataset ready at {path} ({sum(sizes.values())} images, seed {args.seed}) "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from camseg.classifier import train_classifier

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    extra = {}
    if args.recipe == "wide":
        from camseg.profiles import wide_training

        fresh, val = wide_training(args.data, seed=args.seed)
        extra = {"fresh": fresh, "val": val, "recipe": "wide"}
    result = train_classifier(args.data, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                              seed=args.seed, pretrained=False if args.no_pretrained else "auto",
                              input_scale=args.input_scale, out=args.out, device=args.device, **extra)
    test = result.meta["test_accuracy"]
    print(f"saved {result.path}: {args.arch} on {result.meta['device']}, "
          f"val acc {result.meta['val_accuracy']:.4f}, test acc "
          + ("n/a" if test is None else f"{test:.4f}") + f", {time.perf_counter() - t0:.0f} s")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from camseg.report import results, write_report

    res = results(args.workdir, seed=args.seed, segmenter=args.segmenter, device=args.device)
    print(f"wrote {write_report(res, args.out)} (segmenter {res['segmenter']}, device {res['device']})")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    """The main job: artefacts (cached), the Jupyter Book and the PDF report.

    Prints each stage's wall time and peak memory (this process and its
    children) and writes them to ``<book>/_build/build-profile.json``.
    """
    import os
    import shutil
    import subprocess
    from pathlib import Path

    from camseg.artifacts import build_artifacts
    from camseg.report import write_report
    from camseg.stages import StageLog

    root = Path(args.book)
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
    print("[1/3] artefacts: dataset, classifier, evaluations (each computed once, then reused)")
    res = build_artifacts(args.workdir, seed=args.seed, segmenter=args.segmenter, device=args.device, stages=stages)
    print(f"      {res.meta['arch']}: test accuracy {res.meta['test_accuracy']:.4f}; segmenter {res.backend.name}; "
          f"device {res.device}")
    if exe is not None:
        print("[2/3] book: jupyter-book build -W -n --keep-going (chapters reuse the artefacts)")
        # The chapters' results() call reads these, so they use what this build used.
        env = dict(os.environ, CAMSEG_WORKDIR=str(Path(res.workdir).resolve()), CAMSEG_SEGMENTER=res.backend.name,
                   CAMSEG_DEVICE=res.device)
        with stages.stage("book") as row:
            done = subprocess.run([exe, "build", "-W", "-n", "--keep-going", str(root)], env=env)
            row["note"] = str(root / "_build" / "html" / "index.html")
        if done.returncode != 0:
            print(f"camseg: error: the book build failed (exit {done.returncode}); see the log above",
                  file=sys.stderr)
            return done.returncode
    with stages.stage("report") as row:
        out = write_report(res, args.report)
        row["note"] = str(out)
    print(f"[3/3] report: {out}")
    profile = stages.write_json(root / "_build" / "build-profile.json")
    print(f"\nstages (also in {profile}):\n{stages.table()}")
    return 0


def _make_segmenter(name: str, device: str) -> object:
    """The segmenter for ``name`` (``auto`` resolved once, its reason printed to stderr);
    SAM backends go on ``device``, the offline ones run on the CPU."""
    from camseg.segmenters import choose_backend, get_segmenter

    choice = choose_backend(name)
    if choice.requested == "auto":
        print(f"segmenter: {choice.name} ({choice.reason})", file=sys.stderr)
    return get_segmenter(choice.name, **({"device": device} if choice.name.startswith("sam") else {}))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from camseg.evaluate import evaluate, format_table, write_json

    from camseg.devices import device_name

    device = device_name(args.device)
    segmenter = _make_segmenter(args.segmenter, device)
    result = evaluate(args.data, args.checkpoint, segmenter, split=args.split, degraded=args.degraded,
                      limit=args.limit, batch_size=args.batch_size, device=device, explain=args.explain)
    print(format_table(result))
    if args.json:
        print(f"wrote {write_json(result, args.json)}")
    return 0


def _cmd_segment(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from camseg.classifier import default_target_layers, load_checkpoint
    from camseg.data import CLASSES, normalize
    from camseg.pipelines import BasicSamPipeline, ForegroundBackgroundPipeline, ForegroundPointsPipeline

    try:
        with Image.open(args.image) as im:
            image = np.array(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read image {args.image}: {exc}") from exc
    from camseg.devices import device_name

    device = device_name(args.device)
    model, meta = load_checkpoint(args.checkpoint, device=device)
    kinds = {"center": BasicSamPipeline, "foreground": ForegroundPointsPipeline,
             "foreground_background": ForegroundBackgroundPipeline}
    segmenter = _make_segmenter(args.segmenter, device)
    pipe = kinds[args.pipeline](model, segmenter, default_target_layers(model, meta["arch"]))
    out = pipe.run(normalize(image[None]), targets=args.target)
    mask = out.masks[0].numpy()
    Image.fromarray(mask.astype(np.uint8) * 255).save(args.out)
    coords, labels = out.prompts.for_image(0)
    points = ", ".join(f"({x:.0f}, {y:.0f}){'+' if lab == 1 else '-'}" for (x, y), lab in zip(coords, labels))
    print(f"{args.out}: {int(mask.sum())} pixels of class {CLASSES[int(out.targets[0])]!r}, "
          f"points (x, y) {points}, segmenter {out.backend}, device {device}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from camseg.classifier import ARCHITECTURES, DEFAULT_ARCH
    from camseg.data import SPLITS
    from camseg.devices import DEVICE_CHOICES

    device_opt = {"default": "auto", "choices": DEVICE_CHOICES,
                  "help": "auto (CUDA when available, else the CPU), cpu or cuda"}

    parser = argparse.ArgumentParser(prog="camseg", description="Segmentation without user input: Grad-CAM -> SAM.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="dataset commands").add_subparsers(dest="data_command", required=True)
    b = data.add_parser("build", help="generate the synthetic shapes dataset (SPEC section 1)")
    b.add_argument("--out", required=True, help="destination folder")
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    b.add_argument("--cifar10", default=None,
                   help="folder with train.tar/test.tar or a torchvision CIFAR-10 root (default: autodetect, "
                        "then $CAMSEG_CIFAR10, then download)")
    for split, n in SPLITS.items():
        b.add_argument(f"--{split}", type=int, default=n, help=f"images in the {split} split (default {n})")
    b.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    from camseg.profiles import SHIFT_PROFILES

    b.add_argument("--profile", default="standard", choices=["standard", *SHIFT_PROFILES],
                   help="standard: the published dataset (default); any other: a shift-suite test set of --test "
                        "images on CIFAR-10 test photos (camseg.profiles)")
    b.set_defaults(func=_cmd_data_build)

    t = sub.add_parser("train", help="train a classifier and save its checkpoint")
    t.add_argument("--data", required=True, help="dataset folder")
    t.add_argument("--arch", default=DEFAULT_ARCH, choices=sorted(ARCHITECTURES), help=f"default {DEFAULT_ARCH}")
    t.add_argument("--out", required=True, help="checkpoint file to write")
    t.add_argument("--epochs", type=int, default=None, help="default: the architecture's")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--input-scale", type=float, default=None, help="input upsampling factor (default: the arch's)")
    t.add_argument("--no-pretrained", action="store_true", help="random initialisation")
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--recipe", default="standard", choices=["standard", "wide"],
                   help="standard: the dataset's train split; wide: fresh shapes of camseg.profiles.WIDE every "
                        "epoch, selected on a wide validation set (default standard)")
    t.add_argument("--device", **device_opt)
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="evaluate every pipeline, the centre baseline and the oracle on a split")
    e.add_argument("--data", required=True, help="dataset folder (SPEC section 1 layout)")
    e.add_argument("--split", default="test")
    e.add_argument("--checkpoint", required=True, help="classifier checkpoint")
    e.add_argument("--segmenter", default="auto", help="auto (SAM if weights are found, else offline), sam, "
                   "sam-vit_l, sam-vit_h, offline, regiongrow, floodfill, grabcut, randomwalker")
    e.add_argument("--json", default=None, help="write the results to this JSON file")
    e.add_argument("--degraded", action="store_true", help="JPEG quality 90 + mild noise first")
    e.add_argument("--limit", type=int, default=None, help="only the first N images")
    e.add_argument("--explain", default="top", choices=["top", "label"],
                   help="top: the CAM explains the classifier's top class (default); label: the image's labelled "
                        "class (a class-name prompt per image)")
    e.add_argument("--batch-size", type=int, default=50)
    e.add_argument("--device", **device_opt)
    e.set_defaults(func=_cmd_evaluate)

    g = sub.add_parser("segment", help="segment one image with no user input")
    g.add_argument("image", help="an RGB image file")
    g.add_argument("--out", required=True, help="mask PNG to write (255 = object)")
    g.add_argument("--target", default=None, help="class name to segment (default: the top class)")
    g.add_argument("--checkpoint", default="artifacts/classifier-efficientnet_lite0.pt")
    g.add_argument("--segmenter", default="auto")
    g.add_argument("--pipeline", default="foreground_background",
                   choices=["center", "foreground", "foreground_background"])
    g.add_argument("--device", **device_opt)
    g.set_defaults(func=_cmd_segment)

    r = sub.add_parser("report", help="the 1-2 page PDF report (WeasyPrint) from the cached results")
    r.add_argument("--workdir", default=None, help="where artefacts are cached (default $CAMSEG_WORKDIR, else ./artifacts)")
    r.add_argument("--out", default="_build/report.pdf")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--segmenter", default="auto", help="auto: SAM if its checkpoint is found or can be downloaded, "
                   "else offline")
    r.add_argument("--device", **device_opt)
    r.set_defaults(func=_cmd_report)

    m = sub.add_parser("build", help="the main job: dataset, classifier, evaluations (cached), book, report")
    m.add_argument("--workdir", default=None, help="where artefacts are cached (default $CAMSEG_WORKDIR, else ./artifacts)")
    m.add_argument("--seed", type=int, default=0)
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
                   help="images per shift-suite set (default $CAMSEG_SUITE_SIZE or 200; 0 skips seeds and suite)")
    m.set_defaults(func=_cmd_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"camseg: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
