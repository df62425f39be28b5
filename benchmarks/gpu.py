"""The GPU run as one script: training, SAM evaluation, batched decoding and the CUDA tests, one table.

``python benchmarks/gpu.py`` on a machine with a CUDA GPU runs, each part under
its own time budget and all under a hard overall deadline (``--budget-s``,
default 480 s):

1. **data**: builds the shapes dataset (the build's sizes, 3500/1000/500) into
   a temporary folder (``--cifar10 PATH`` or the default CIFAR-10 lookup), or
   takes ``--data``;
2. **training**: one seed of the default classifier with the build's wide
   recipe (``camseg.build.suite.recipe_inputs("wide", ...)``) and autocast on
   CUDA; stops after the last epoch that fits the part's budget and reports
   seconds per epoch over the epochs it ran;
3. **evaluation**: ``camseg.evaluation.evaluate.evaluate`` with SAM ``vit_b``
   (the real checkpoint where ``find_checkpoint`` finds one, random weights
   otherwise: then speed only, IoU "n/a (random weights)") on as many test
   images as fit, after a warm-up;
4. **decoding**: on the same image embeddings, K single-point prompts an image
   decoded one prompt per decoder pass against all K in one pass
   (``SamSegmenter(batch_prompts=False/True)``): prompts/s and whether the
   masks agree; also the encoder's images/s;
5. **tests**: the CUDA tests, ``pytest -m "not slow" -k cuda`` on the test
   files that mention CUDA.

It prints one markdown table headed with the GPU's name and the torch, CUDA
and cuDNN versions, and writes it with every figure to ``--out``
(``gpu-results.json``). A part whose time is up is stopped and says so; a
part with no time left is skipped with a note. Exit status 0, or 1 when a
part failed (an exception, a failing test).

Without CUDA it exits with status 2 and a one-line message, unless
``--cpu-smoke``: then every part runs at toy sizes on the CPU (a 10/5/2-image
dataset, one epoch, SAM's vit_b architecture at a 224 px input with random
weights) so that the script's logic is tested without a GPU::

    python benchmarks/gpu.py                        # on a GPU machine
    python benchmarks/gpu.py --cpu-smoke --out /tmp/smoke.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
PARTS = ("data", "training", "evaluation", "decoding", "tests")
GPU_BUDGETS = {"data": 45.0, "training": 150.0, "evaluation": 130.0, "decoding": 45.0, "tests": 60.0}
"""Seconds per part on a GPU (430 s together, under the default 480 s deadline)."""
SMOKE_BUDGETS = {"data": 40.0, "training": 60.0, "evaluation": 60.0, "decoding": 30.0, "tests": 60.0}
SMOKE_SIZES = {"train": 10, "val": 5, "test": 2}
SMOKE_SAM_SIZE = 224  # vit_b's architecture at a 224 px input: one 14 x 14 attention window
MIN_START_S = 5.0  # a part is skipped when less than this is left overall
NO_CUDA = ("gpu.py: no CUDA GPU (torch.cuda.is_available() is False); run it on a GPU machine, "
           "or pass --cpu-smoke to test the script on the CPU")


class PartTimeout(BaseException):
    """A part ran past its time limit (a BaseException, so no ``except Exception`` in camseg swallows it)."""


class StopTraining(Exception):
    """The next epoch would not fit the training part's budget."""


# --------------------------------------------------------------------------
# Report and table


class Report:
    """Rows of figures (part, figure, value, unit) and each part's status."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.parts: dict[str, dict] = {}

    def add(self, part: str, figure: str, value: object, unit: str = "") -> None:
        self.rows.append({"part": part, "figure": figure, "value": value, "unit": unit})


def fmt(value: object) -> str:
    """A cell: floats to 3-4 significant digits, bools as yes/no, None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        mag = abs(value)
        return f"{value:.0f}" if mag >= 1000 else f"{value:.1f}" if mag >= 10 else \
            f"{value:.2f}" if mag >= 1 else f"{value:.3f}" if mag >= 0.001 or value == 0 else f"{value:.2e}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def format_table(title: str, rows: list[dict]) -> str:
    """The markdown table: a ``###`` heading ``title``, then one row per figure."""
    lines = [f"### {title}", "", "| part | figure | value | unit |", "| --- | --- | ---: | --- |"]
    lines += [f"| {r['part']} | {fmt(r['figure'])} | {fmt(r['value'])} | {fmt(r['unit'])} |" for r in rows]
    return "\n".join(lines)


def parse_pytest_summary(output: str) -> dict[str, int]:
    """Counts from pytest's last summary line, e.g. ``{"passed": 2, "skipped": 1}``."""
    counts: dict[str, int] = {}
    lines = [ln for ln in output.strip().splitlines() if re.search(r"\d+ (passed|failed|skipped|errors?|deselected|"
                                                                    r"xfailed|xpassed)|no tests ran", ln)]
    if lines:
        for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)", lines[-1]):
            counts["error" if word.startswith("error") else word] = int(n)
    return counts


# --------------------------------------------------------------------------
# Running parts under budgets


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`PartTimeout` in the main thread after ``seconds`` (SIGALRM)."""
    def alarm(signum, frame):
        raise PartTimeout

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, max(0.01, seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_parts(parts: list[tuple[str, Callable, float]], ctx: object, report: Report, deadline: float,
              log: Callable[[str], None] = lambda line: None, cuda: bool = False) -> None:
    """Run each ``(name, fn, budget_s)`` as ``fn(ctx, report, limit_s)`` under ``limit_s = min(budget_s,
    time left before deadline)`` (``time.monotonic()`` seconds); a part is skipped when less than
    :data:`MIN_START_S` is left or when ``fn`` raises :class:`Skip`. ``fn`` may return a note; a note
    starting with ``"failed"`` or ``"stopped"`` gives the part that status."""
    for name, fn, budget in parts:
        left = deadline - time.monotonic()
        if left < MIN_START_S:
            note = f"skipped: overall budget exhausted ({max(0.0, left):.0f} s left)"
            report.parts[name] = {"status": "skipped", "seconds": 0.0, "budget_s": budget, "note": note}
            report.add(name, note, "-")
            log(f"{name}: {note}")
            continue
        limit = min(budget, left)
        log(f"{name}: starting (limit {limit:.0f} s)")
        if cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        status, note = "done", ""
        t0 = time.monotonic()
        try:
            with time_limit(limit):
                note = fn(ctx, report, limit) or ""
            if note.startswith(("failed", "stopped")):
                status = note.split()[0].rstrip(":")
        except PartTimeout:
            status, note = "stopped", f"stopped at its time limit ({fmt(float(limit))} s); figures above are partial"
        except Skip as exc:
            status, note = "skipped", f"skipped: {exc}"
        except Exception as exc:  # noqa: BLE001 - one part's failure must not lose the others' figures
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            status, note = "failed", f"failed: {type(exc).__name__}: {first}"
        seconds = time.monotonic() - t0
        report.parts[name] = {"status": status, "seconds": round(seconds, 2), "budget_s": round(limit, 1),
                              "note": note}
        if note:
            report.add(name, note, "-")
        if status != "skipped":
            report.add(name, f"part wall time (limit {fmt(float(limit))} s)", seconds, "s")
            if cuda:
                import torch

                report.add(name, "peak GPU memory allocated", torch.cuda.max_memory_allocated() / 2**20, "MiB")
                torch.cuda.empty_cache()
        log(f"{name}: {status} in {seconds:.1f} s{': ' + note if note else ''}")


class Skip(Exception):
    """A part cannot run (what it needs is missing)."""


def _sync(ctx) -> None:
    if ctx.device.type == "cuda":
        import torch

        torch.cuda.synchronize()


# --------------------------------------------------------------------------
# The parts


def part_data(ctx, rep: Report, limit: float) -> str:
    from camseg.data.dataset import SPLITS, ShapesDataset, build_dataset, read_manifest

    if ctx.args.data:
        ctx.data = Path(ctx.args.data)
        sizes = (read_manifest(ctx.data) or {}).get("sizes") or {s: len(ShapesDataset(ctx.data, s))
                                                                   for s in ("train", "val", "test")}
        rep.add("data", "dataset (given with --data)", "/".join(str(sizes.get(s, 0)) for s in ("train", "val", "test")),
                "train/val/test images")
        return ""
    sizes = SMOKE_SIZES if ctx.smoke else dict(SPLITS)
    cifar10 = ctx.args.cifar10
    if cifar10 is None:
        from camseg.data.cifar import Cifar10NotFoundError, resolve_cifar10

        try:
            resolve_cifar10(None, download=False)
            rep.add("data", "backgrounds", "CIFAR-10 (default lookup)")
        except Cifar10NotFoundError:  # a bare GPU machine: keep the speed figures rather than none
            cifar10 = noise_cifar10(ctx.tmp / "noise-cifar10", sizes["train"] + sizes["val"] + 100,
                                    sizes["test"] + 100)
            os.environ["CAMSEG_CIFAR10"] = str(cifar10)  # for the wide recipe's lookup
            rep.add("data", "backgrounds", "random noise: CIFAR-10 not found (give --cifar10 PATH); "
                    "accuracies and IoU are not the build's")
    else:
        rep.add("data", "backgrounds", "CIFAR-10 (--cifar10)")
    ctx.data = build_dataset(ctx.tmp / "data", seed=0, cifar10=cifar10, sizes=sizes, progress=False)
    rep.add("data", "dataset built (seed 0)", "/".join(str(sizes[s]) for s in ("train", "val", "test")),
            "train/val/test images")
    return ""


def noise_cifar10(folder: Path, n_train: int, n_test: int) -> Path:
    """A stand-in for the offline CIFAR-10 copy (``train.tar``, ``test.tar`` of 32 x 32 JPEGs in
    ``{split}/{class}/{NNNN}.jpg``) holding seeded random-noise images."""
    import io
    import tarfile

    import numpy as np
    from PIL import Image

    from camseg.data.cifar import CLASS_NAMES

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        with tarfile.open(folder / f"{split}.tar", "w") as tar:
            for i in range(n):
                small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)  # blotches, not pixel noise
                buf = io.BytesIO()
                Image.fromarray(small).resize((32, 32), Image.BILINEAR).save(buf, format="JPEG")
                info = tarfile.TarInfo(f"{split}/{CLASS_NAMES[i % 10]}/{i // 10:04d}.jpg")
                info.size = buf.tell()
                buf.seek(0)
                tar.addfile(info, buf)
    return folder


def _stand_in_checkpoint(path: Path) -> Path:
    """An untrained default classifier (ImageNet backbone, random head) for the evaluation's speed."""
    from camseg.models.classifier import DEFAULT_ARCH, build_classifier, save_checkpoint

    model, weights = build_classifier(DEFAULT_ARCH)
    meta = {"arch": DEFAULT_ARCH, "num_classes": 5, "input_scale": model.input_scale, "initial_weights": weights,
            "note": "untrained stand-in written by benchmarks/gpu.py"}
    return save_checkpoint(model, meta, path)


def part_training(ctx, rep: Report, limit: float) -> str:
    from camseg.build.suite import recipe_inputs
    from camseg.models.classifier import ARCHITECTURES, DEFAULT_ARCH, train_classifier
    from camseg.utils.devices import autocast_dtype

    if ctx.data is None:
        raise Skip("no dataset (the data part did not finish)")
    end = time.monotonic() + limit
    t0 = time.monotonic()
    inputs = recipe_inputs("wide", ctx.data, 0)
    rep.add("training", "wide-recipe inputs (backgrounds, wide val set; CPU)", time.monotonic() - t0, "s")
    epochs = ctx.args.epochs or (1 if ctx.smoke else ARCHITECTURES[DEFAULT_ARCH].epochs)
    dtype = autocast_dtype(ctx.device)
    rep.add("training", "classifier", f"{DEFAULT_ARCH}, wide recipe, seed 0, batch 64, "
            f"autocast {str(dtype).removeprefix('torch.') if dtype else 'off (CPU)'}")
    rep.add("training", "training images per epoch (fresh shapes)", inputs["fresh"].n, "images")
    stamps = [time.monotonic()]

    def log(line: str) -> None:
        if not re.search(r" epoch \d+/\d+:", line):
            return
        stamps.append(time.monotonic())
        done = len(stamps) - 1
        if done < epochs:
            per = statistics.median(b - a for a, b in zip(stamps[1:-1], stamps[2:])) if done > 1 \
                else stamps[1] - stamps[0]
            if stamps[-1] + per * (epochs - done) * 1.1 > end:
                raise StopTraining(done)

    out = ctx.tmp / "classifier.pt"
    result, stopped = None, False
    try:
        result = train_classifier(ctx.data, seed=0, epochs=epochs, out=out, progress=False, log=log,
                                  device=ctx.device, amp=True, **inputs)
    except StopTraining:
        stopped = True
    finally:  # also when the part's time limit cut an epoch short
        done = len(stamps) - 1
        rep.add("training", "epochs completed", f"{done} of {epochs}", "epochs")
        if done:
            rep.add("training", "first epoch (training + validation, incl. warm-up)", stamps[1] - stamps[0], "s")
        if done > 1:
            rep.add("training", f"median epoch, epochs 2-{done}",
                    statistics.median(b - a for a, b in zip(stamps[1:-1], stamps[2:])), "s/epoch")
    if result is None:
        return (f"stopped after {done} of {epochs} epochs: the next would not fit the part's budget; "
                f"s/epoch measured on {done} epochs; the evaluation uses an untrained stand-in classifier") \
            if stopped else ""
    ctx.checkpoint, ctx.trained = out, True
    rep.add("training", "training wall (train_classifier)", time.monotonic() - stamps[0], "s")
    rep.add("training", "best wide-val accuracy", result.meta["val_accuracy"], "")
    rep.add("training", "test accuracy", result.meta["test_accuracy"], "")
    return ""


def vit_b_reduced(img_size: int = SMOKE_SAM_SIZE):
    """SAM with vit_b's architecture at a smaller square input (random weights), for the CPU smoke run."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(0)
    grid = img_size // 16
    return Sam(
        image_encoder=ImageEncoderViT(depth=12, embed_dim=768, img_size=img_size, mlp_ratio=4,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=12, patch_size=16,
                                      qkv_bias=True, use_rel_pos=True, global_attn_indexes=[2, 5, 8, 11],
                                      window_size=14, out_chans=256),
        prompt_encoder=PromptEncoder(embed_dim=256, image_embedding_size=(grid, grid),
                                     input_image_size=(img_size, img_size), mask_in_chans=16),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=256, iou_head_depth=3,
                                 iou_head_hidden_dim=256,
                                 transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8)),
    ).eval()


def get_sam(ctx):
    """(model, description, real weights?), loaded once."""
    if ctx.sam is None:
        import torch

        if ctx.smoke:
            ctx.sam = (vit_b_reduced().to(ctx.device), f"vit_b architecture at {SMOKE_SAM_SIZE} px, random weights "
                       "(CPU smoke)", False)
        else:
            from camseg.segmenters.checkpoints import find_checkpoint
            from camseg.segmenters.sam import load_sam

            path = find_checkpoint("vit_b", ctx.args.sam_checkpoint)
            if path is not None:
                ctx.sam = (load_sam("vit_b", path, ctx.device), f"vit_b, {path.name}", True)
            else:
                from segment_anything import sam_model_registry

                torch.manual_seed(0)
                ctx.sam = (sam_model_registry["vit_b"](checkpoint=None).to(ctx.device).eval(),
                           "vit_b, random weights (no checkpoint found)", False)
    return ctx.sam


def part_evaluation(ctx, rep: Report, limit: float) -> str:
    from camseg.data.dataset import ShapesDataset
    from camseg.evaluation.evaluate import PIPELINES, evaluate
    from camseg.segmenters import SamSegmenter

    if ctx.data is None:
        raise Skip("no dataset (the data part did not finish)")
    end = time.monotonic() + limit
    ckpt = ctx.checkpoint or _stand_in_checkpoint(ctx.tmp / "stand-in.pt")
    sam, desc, real = get_sam(ctx)
    rep.add("evaluation", "SAM", desc)
    if not ctx.trained:
        rep.add("evaluation", "classifier", "untrained stand-in (training did not finish)")
    seg = SamSegmenter(model=sam, name="sam-vit_b")
    rep.add("evaluation", "SAM settings", f"encoder {str(seg.encoder_dtype or 'float32').removeprefix('torch.')}, "
            f"{seg.batch_size} images per encoder pass, prompts {'batched' if seg.batch_prompts else 'one by one'}")
    available = len(ShapesDataset(ctx.data, "test"))
    # a warm-up (one-time costs: kernels, autotuning), then a short timed run sizes the real one
    warm, calib = (1, 1) if ctx.smoke else (min(available, 2), min(available, 8))
    evaluate(ctx.data, ckpt, seg, split="test", limit=warm, progress=False, device=ctx.device)
    seg = SamSegmenter(model=sam, name="sam-vit_b")  # an empty embedding cache
    _sync(ctx)
    t0 = time.monotonic()
    evaluate(ctx.data, ckpt, seg, split="test", limit=calib, progress=False, device=ctx.device)
    _sync(ctx)
    per_image = (time.monotonic() - t0) / calib
    rep.add("evaluation", f"warm-up ({warm} image(s)), then a sizing run ({calib} image(s), not counted)",
            per_image, "s/image")
    fit = int((end - time.monotonic() - 0.1 * limit) / per_image)
    n = max(1, min(available, ctx.args.eval_images or available, fit))
    seg = SamSegmenter(model=sam, name="sam-vit_b")  # an empty embedding cache
    t0 = time.monotonic()
    res = evaluate(ctx.data, ckpt, seg, split="test", limit=n, progress=False, device=ctx.device)
    _sync(ctx)
    wall = time.monotonic() - t0
    rep.add("evaluation", "test images evaluated (4 pipelines + mask-scoring candidates)", f"{n} of {available}",
            "images")
    rep.add("evaluation", "evaluation wall", wall, "s")
    rep.add("evaluation", "throughput", n / wall, "images/s")
    rep.add("evaluation", "SAM encoder images", seg.images_encoded, "images")
    rep.add("evaluation", "classifier accuracy (flip-voted class)",
            res["classifier_accuracy"] if ctx.trained else "n/a (classifier not trained)", "")
    for name in PIPELINES:
        if not real:
            iou = "n/a (random weights)"
        elif not ctx.trained and name in ("foreground", "foreground_background"):
            iou = "n/a (classifier not trained)"
        else:
            iou = res["pipelines"][name]["iou"]
        rep.add("evaluation", f"IoU, {name}", iou, "")
    return ""


def part_decoding(ctx, rep: Report, limit: float) -> str:
    import numpy as np

    from camseg.data.dataset import ShapesDataset
    from camseg.segmenters import SamSegmenter

    if ctx.data is None:
        raise Skip("no dataset (the data part did not finish)")
    end = time.monotonic() + limit
    sam, desc, _ = get_sam(ctx)
    images = ShapesDataset(ctx.data, "test").arrays()[0][:ctx.args.decode_images or (2 if ctx.smoke else 16)]
    k = ctx.args.prompts or (16 if ctx.smoke else 64)
    one = SamSegmenter(model=sam, batch_prompts=False, name="one-by-one")
    batched = SamSegmenter(model=sam, batch_prompts=True, name="batched")
    batched.cache = one.cache  # the same embeddings
    rep.add("decoding", "SAM", desc)
    one.prepare(images[:1])  # warm-up
    _sync(ctx)
    if len(images) > 1:
        t0 = time.monotonic()
        one.prepare(images[1:])
        _sync(ctx)
        rep.add("decoding", f"encoder ({str(one.encoder_dtype or 'float32').removeprefix('torch.')}, "
                f"{one.batch_size} images a pass, {len(images) - 1} image(s))",
                (len(images) - 1) / (time.monotonic() - t0), "images/s")
    rng = np.random.default_rng(0)
    h, w = images.shape[1:3]
    seconds = {"one": 0.0, "batched": 0.0}
    same = agree = total = timed = 0
    for i, image in enumerate(images):
        coords = np.stack([rng.uniform(0, w - 1, k), rng.uniform(0, h - 1, k)], -1)[:, None]
        labels = np.ones((k, 1), np.int64)
        masks = {}
        for name, seg in (("one", one), ("batched", batched)):
            seg.set_image(image)
            _sync(ctx)
            t0 = time.monotonic()
            masks[name] = np.stack([r.mask for r in seg.predict_batch(coords, labels)])
            _sync(ctx)
            if i:  # image 0 warms up
                seconds[name] += time.monotonic() - t0
        same += int((masks["one"] == masks["batched"]).all(axis=(1, 2)).sum())
        agree += int((masks["one"] == masks["batched"]).sum())
        total += masks["one"].size
        timed += bool(i)
        if i and time.monotonic() + (seconds["one"] + seconds["batched"]) / timed > end - 0.1 * limit:
            break
    n_images = i + 1
    rep.add("decoding", "images x single-point prompts (first image warms up)", f"{n_images} x {k}", "")
    if timed:
        for name, label in (("one", "one-by-one (a decoder pass per prompt)"),
                            ("batched", "batched (one decoder pass per image)")):
            rep.add("decoding", label, timed * k / seconds[name], "prompts/s")
        rep.add("decoding", "speed-up, batched over one-by-one", seconds["one"] / seconds["batched"], "x")
    rep.add("decoding", "masks identical, batched vs one-by-one", f"{same} of {n_images * k}", "masks")
    rep.add("decoding", "mask pixels agreeing", 100.0 * agree / total, "%")
    return ""


def cuda_test_files(root: Path = REPO) -> list[Path]:
    """Test files whose name or text mentions CUDA (``-k cuda`` picks its tests from them), this script's own
    test left out."""
    return [p for p in sorted((root / "tests").glob("test_*.py"))
            if p.name != "test_gpu_script.py" and "cuda" in (p.name + p.read_text(errors="replace")).lower()]


def part_tests(ctx, rep: Report, limit: float) -> str:
    files = [str(p.relative_to(REPO)) for p in cuda_test_files()]
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "not slow", "-k", "cuda", "-p", "no:cacheprovider",
           *files]
    rep.add("tests", "selection", f"pytest -m 'not slow' -k cuda ({len(files)} files)")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=max(1.0, limit - 2.0))
    except subprocess.TimeoutExpired:
        return "stopped: pytest ran past the part's time limit"
    rep.add("tests", "pytest wall", time.monotonic() - t0, "s")
    counts = parse_pytest_summary(proc.stdout)
    for word in ("passed", "failed", "error", "skipped"):
        if counts.get(word) or word in ("passed", "failed"):
            rep.add("tests", word, counts.get(word, 0), "tests")
    reasons = sorted(set(re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.+)$", proc.stdout, re.M)))
    if reasons:
        rep.add("tests", "skip reasons", "; ".join(reasons))
    if proc.returncode not in (0, 5):
        tail = (proc.stdout.strip().splitlines() or [""])[-1]
        return f"failed: pytest exit status {proc.returncode} ({tail})"
    return ""


# --------------------------------------------------------------------------
# Main


def _title(ctx) -> tuple[str, dict]:
    import torch

    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
           "python": platform.python_version(), "date": datetime.date.today().isoformat(), "commit": _commit()}
    if ctx.device.type == "cuda":
        props = torch.cuda.get_device_properties(ctx.device)
        env["device"] = torch.cuda.get_device_name(ctx.device)
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        head = f"{env['device']} ({env['gpu_memory_gib']} GiB)"
    else:
        env["device"] = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        head = f"CPU smoke run, no GPU: {env['device']}"
    title = (f"{head}: torch {env['torch']}, CUDA {env['cuda'] or 'none'}, cuDNN {env['cudnn'] or 'none'}, "
             f"Python {env['python']}, {env['date']}, commit {env['commit']}")
    return title, env


def _commit() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="gpu-results.json", help="JSON file of the figures (default gpu-results.json)")
    p.add_argument("--budget-s", type=float, default=480.0, help="hard overall deadline in seconds (default 480)")
    p.add_argument("--part-budget", action="append", default=[], metavar="PART=S",
                   help=f"seconds for one part ({', '.join(PARTS)}); repeatable")
    p.add_argument("--data", help="an existing dataset folder (default: build one into a temporary folder)")
    p.add_argument("--cifar10", help="CIFAR-10 source for the dataset and the wide recipe (default: the lookup)")
    p.add_argument("--sam-checkpoint", help="SAM vit_b checkpoint (default: find_checkpoint's lookup)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the architecture's 6; 1 with --cpu-smoke)")
    p.add_argument("--eval-images", type=int, help="most test images to evaluate (default: as many as fit)")
    p.add_argument("--decode-images", type=int, help="images for the decoding comparison (default 16; 2 smoke)")
    p.add_argument("--prompts", type=int, help="single-point prompts an image for decoding (default 64; 16 smoke)")
    p.add_argument("--cpu-smoke", action="store_true", help="no GPU: every part at toy sizes on the CPU")
    p.add_argument("--threads", type=int, default=1, help="CPU threads with --cpu-smoke (default 1)")
    args = p.parse_args(argv)
    budgets = dict(SMOKE_BUDGETS if args.cpu_smoke else GPU_BUDGETS)
    for item in args.part_budget:
        name, _, value = item.partition("=")
        if name not in PARTS:
            p.error(f"--part-budget {item}: unknown part {name!r}; expected one of {', '.join(PARTS)}")
        try:
            budgets[name] = float(value)
        except ValueError:
            p.error(f"--part-budget {item}: {value!r} is not a number of seconds")
    args.budgets = budgets
    return args


def main(argv: list[str] | None = None) -> int:
    t_start = time.monotonic()
    args = parse_args(argv)
    import torch

    if not args.cpu_smoke and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    deadline = t_start + args.budget_s
    if args.cifar10:  # recipe_inputs looks CIFAR-10 up itself: through the environment variable
        os.environ["CAMSEG_CIFAR10"] = str(Path(args.cifar10).resolve())
    from camseg.utils.devices import set_cpu_threads

    if args.cpu_smoke:
        set_cpu_threads(args.threads)  # more threads than free cores make a contended CPU far slower
    device = torch.device("cpu" if args.cpu_smoke else "cuda")

    def log(line: str) -> None:
        print(f"[gpu.py {time.monotonic() - t_start:6.1f} s] {line}", file=sys.stderr, flush=True)

    report = Report()
    with tempfile.TemporaryDirectory(prefix="camseg-gpu-") as tmp:
        ctx = SimpleNamespace(args=args, smoke=args.cpu_smoke, device=device, tmp=Path(tmp), data=None,
                              checkpoint=None, trained=False, sam=None)
        title, env = _title(ctx)
        parts = [(name, globals()[f"part_{name}"], args.budgets[name]) for name in PARTS]
        run_parts(parts, ctx, report, deadline, log=log, cuda=device.type == "cuda")
    wall = time.monotonic() - t_start
    report.add("all", f"total wall (deadline {args.budget_s:.0f} s)", wall, "s")
    table = format_table(title, report.rows)
    print(table, flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"title": title, "mode": "cpu-smoke" if args.cpu_smoke else "gpu", **env,
                               "budget_s": args.budget_s, "part_budgets_s": args.budgets, "wall_s": round(wall, 2),
                               "parts": report.parts, "rows": report.rows, "table": table},
                              indent=2, default=str) + "\n")
    log(f"wrote {out}")
    return 1 if any(p["status"] == "failed" for p in report.parts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
