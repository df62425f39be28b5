"""``camseg evaluate``'s rate: the code of a git revision (before) against the working tree (after).

Runs :func:`camseg.evaluation.evaluate.evaluate` (offline segmenter, CPU) on
the same images with each code base, in the same run, alternating before and
after ``--repeats`` times per thread count, each in a fresh subprocess:

* before: the revision ``--before`` (default ``HEAD``) checked out in a git
  worktree (``git worktree add --detach /tmp/camseg-before REV``, reused when
  it is already there and moved to ``REV``), imported through ``PYTHONPATH``;
* after: the working tree this script belongs to.

Each worker sets its threads (torch and OpenCV, ``set_cpu_threads``) and
times ``evaluate()`` alone (imports and model building outside the clock; the
dataset is read inside it, by both). It prints one table: images, threads,
seconds per image before and after (the fastest repeat; every repeat in the
JSON), the ratio before / after (> 1: faster), and whether the outputs are
identical: the evaluation JSON without its timing fields (``seconds``, and
``dataset``/``checkpoint`` paths, which are the same anyway) and each
pipeline's masks (N, H, W) and points (N, P, 2) in (x, y) with their labels.
::

    python benchmarks/evaluate_rate.py --data /work/ref/data200 --checkpoint /work/ref/ck.pt \\
        --images 200 --threads 1 2 [--before REV] [--repeats 1] [--workers 1] [--json out.json]

``--workers N``: the code after evaluates in N worker processes (``evaluate(workers=N)``, each with
``os.cpu_count() // N`` threads; the ``--threads`` figure is then the machine's, which the workers share).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from revisions import ROOT, run_worker, worktree  # benchmarks/revisions.py, beside this script


def worker(args: argparse.Namespace) -> None:
    """Run one evaluation with whatever ``camseg`` is importable; write its JSON and arrays."""
    import camseg
    from camseg.evaluation.evaluate import evaluate, write_json
    from camseg.segmenters import get_segmenter
    from camseg.utils.devices import set_cpu_threads

    set_cpu_threads(args.threads)
    c0, t0 = time.process_time(), time.perf_counter()
    more = {"workers": args.workers} if args.workers != 1 else {}  # code before worker processes lacks the option
    result = evaluate(args.data, args.checkpoint, get_segmenter(args.segmenter), split=args.split, limit=args.images,
                      progress=False, keep_masks=True, device="cpu", **more)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = Path(args.out)
    write_json(result, out / "result.json")
    arrays = {}
    for name, masks in result["_masks"].items():
        coords, labels = result["_points"][name]
        arrays.update({f"{name}/masks": masks, f"{name}/coords": coords, f"{name}/labels": labels})
    np.savez_compressed(out / "arrays.npz", **arrays)
    (out / "timing.json").write_text(json.dumps({"seconds": seconds, "cpu_seconds": cpu,
                                                 "n_images": result["n_images"], "camseg": camseg.__file__}))


def _strip(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in ("seconds",)}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def compare(a: Path, b: Path) -> tuple[bool, str]:
    """Whether two workers' outputs are identical (timing fields aside), and where they differ."""
    ja, jb = (_strip(json.loads((p / "result.json").read_text())) for p in (a, b))
    notes = []
    if ja != jb:
        keys = sorted(k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k))
        notes.append(f"JSON differs in {keys}")
    with np.load(a / "arrays.npz") as na, np.load(b / "arrays.npz") as nb:
        if sorted(na.files) != sorted(nb.files):
            notes.append("different arrays")
        for key in sorted(set(na.files) & set(nb.files)):
            if na[key].shape != nb[key].shape or not np.array_equal(na[key], nb[key]):
                diff = "shape" if na[key].shape != nb[key].shape else \
                    f"{int((na[key] != nb[key]).reshape(len(na[key]), -1).any(1).sum())} images"
                notes.append(f"{key}: {diff}")
    return not notes, "; ".join(notes)


def run_one(code: Path, args: argparse.Namespace, threads: int, out: Path, workers: int = 1) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--out", str(out), "--threads", str(threads),
           "--data", args.data, "--checkpoint", args.checkpoint, "--images", str(args.images),
           "--segmenter", args.segmenter, "--split", args.split, "--workers", str(workers)]
    return run_worker(code, cmd, env, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--segmenter", default="offline")
    p.add_argument("--before", default="HEAD", help="git revision of the code before (default HEAD)")
    p.add_argument("--worktree", default="/tmp/camseg-before")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--json", help="write every timing here")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes of the code after (evaluate(workers=N), each with threads / N threads)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.threads = args.threads[0]
        worker(args)
        return
    commit = worktree(args.before, Path(args.worktree))
    codes = {"before": Path(args.worktree), "after": ROOT}
    rows, record = [], {"before": commit, "images": args.images, "data": args.data, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            times: dict[str, list[float]] = {"before": [], "after": []}
            for rep in range(args.repeats):
                for name, code in codes.items():
                    timing = run_one(code, args, threads, Path(tmp) / f"{name}-{threads}-{rep}",
                                     args.workers if name == "after" else 1)
                    times[name].append(timing["seconds"] / timing["n_images"])
                    record["runs"].append({"code": name, "threads": threads, **timing})
                    print(f"  {name:6s} threads {threads}: {timing['seconds']:.1f} s "
                          f"(CPU {timing['cpu_seconds']:.1f} s) for {timing['n_images']} images", flush=True)
            same, where = compare(Path(tmp) / f"before-{threads}-0", Path(tmp) / f"after-{threads}-0")
            before, after = min(times["before"]), min(times["after"])
            rows.append((timing["n_images"], threads, before, after, before / after,
                         "yes" if same else f"NO: {where}"))
    print(f"\nbefore: {args.before} = {commit[:12]}; after: the working tree ({ROOT})")
    print(f"after: {args.workers} worker process(es)")
    print("| images | threads | s/image before | s/image after | ratio | outputs identical |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n, threads, before, after, ratio, same in rows:
        print(f"| {n} | {threads} | {before:.3f} | {after:.3f} | {ratio:.2f}x | {same} |")
    if args.json:
        record["workers_after"] = args.workers
        record["table"] = [dict(zip(("images", "threads", "before", "after", "ratio", "identical"), r, strict=True))
                           for r in rows]
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
