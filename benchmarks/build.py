"""End to end: the main build (`camseg build`) from nothing, then again with nothing changed.

Exports the committed tree (``git archive HEAD``) into a fresh temporary
folder with an empty artefact folder, runs ``camseg build`` there (dataset,
training, evaluation of all pipelines on the 500 test images clean and
degraded, the CAM study, the Jupyter Book, the PDF report), then runs it a
second time. Prints each run's per-stage wall time and peak memory (from
``_build/build-profile.json``, written by ``camseg build``) and the whole
run's wall time and peak resident memory of the process tree.

    python benchmarks/build.py                # about 10 minutes on a 2-core CPU
    python benchmarks/build.py --keep DIR     # keep the build folder
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export_tree(dest: Path) -> None:
    """The committed files of this checkout, without artefacts or build output."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")


def run_build(folder: Path, log_path: Path) -> dict:
    """``camseg build`` in ``folder``; wall time, exit code, peak RSS of the process tree (MiB)."""
    cmd = [sys.executable, "-m", "camseg", "build", "--workdir", "artifacts"]
    env = dict(os.environ)
    shared = ROOT.parent / "shared" / "data" / "cifar10"  # the export is not beside ../shared
    if "CAMSEG_CIFAR10" not in env and shared.is_dir():
        env["CAMSEG_CIFAR10"] = str(shared)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    profile = json.loads((folder / "_build" / "build-profile.json").read_text()) if code == 0 else None
    return {"seconds": seconds, "exit": code, "peak_rss_mib": usage.ru_maxrss / 1024, "profile": profile}


def table(run: dict) -> str:
    lines = ["| stage | wall (s) | peak memory (MiB) | |", "| --- | ---: | ---: | --- |"]
    for row in run["profile"]["stages"]:
        note = row["note"] if row["note"] in ("cached", "computed") else ""
        lines.append(f"| {row['stage']} | {row['seconds']:.1f} | {row['peak_rss_mib']:.0f} | {note} |")
    lines.append(f"| **whole command** | **{run['seconds']:.1f}** | {run['peak_rss_mib']:.0f} (largest process) | |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep", default=None, help="build in this folder and keep it (default: a temporary one)")
    args = p.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="camseg-build-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        export_tree(folder)
        print(f"# camseg build from a clean export of HEAD in {folder}")
        print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
        for name in ("fresh", "rebuild (nothing changed)"):
            run = run_build(folder, folder / f"build-{name.split()[0]}.log")
            if run["exit"] != 0:
                print(f"{name}: camseg build failed (exit {run['exit']}); log in {folder}")
                sys.exit(1)
            print(f"\n## {name}: {run['seconds']:.0f} s ({run['seconds'] / 60:.1f} min)\n")
            print(table(run))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
