"""The code of a git revision beside the working tree, for the benchmarks that time before against after
(``evaluate_rate.py``, ``regiongrow_speed.py``): a detached git worktree, imported through ``PYTHONPATH``."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: the working tree, the code "after"."""


def worktree(rev: str, path: Path) -> str:
    """Check out ``rev`` (detached) at ``path`` (``git worktree add``, or moved there when ``path`` is a
    worktree already); returns its commit."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"], check=True,
                            capture_output=True, text=True).stdout.strip()
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit], check=True,
                       capture_output=True)
    else:
        subprocess.run(["git", "-C", str(path), "checkout", "--detach", "--quiet", commit], check=True)
    return commit


def run_worker(code: Path, cmd: list[str], env: dict[str, str], out: Path) -> dict:
    """Run a benchmark's worker ``cmd`` with ``env`` (whose ``PYTHONPATH`` is ``code``) from a
    neutral folder, and return the ``out/timing.json`` it wrote, after checking that the worker
    imported camseg from ``code`` (its ``"camseg"`` entry: ``camseg.__file__``)."""
    import json
    import tempfile

    subprocess.run(cmd, env=env, check=True, cwd=tempfile.gettempdir())
    timing = json.loads((out / "timing.json").read_text())
    if not timing["camseg"].startswith(str(code)):
        raise RuntimeError(f"the worker imported {timing['camseg']}, not the code under {code}")
    return timing
