"""Wall time and peak memory of the stages of a long job (``camseg build``).

:class:`StageLog` times each stage and samples the resident memory of this
process and all its children (a book build runs notebook kernels as child
processes) every ``interval`` seconds with :mod:`psutil`, so each stage gets
its own peak, not the running maximum of the process.

Example:
    >>> log = StageLog(echo=None)
    >>> with log.stage("sum"):
    ...     total = sum(range(1000))
    >>> [row["stage"] for row in log.rows]
    ['sum']
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from camseg.paths import atomic_path

__all__ = ["StageLog", "tree_rss"]

MIB = 2**20


def tree_rss(process: psutil.Process | None = None) -> int:
    """Resident memory in bytes of ``process`` (default: this one) plus all its descendants."""
    process = process or psutil.Process()
    total = 0
    for p in (process, *process.children(recursive=True)):
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # a child that just ended
            pass
    return total


class StageLog:
    """Stages of a job with their wall time (s) and peak resident memory (MiB).

    Args:
        echo: called with a line when a stage ends (default ``print``; None: silent).
        interval: memory sampling period in seconds.

    ``rows`` holds one dict per stage: ``stage``, ``seconds``, ``peak_rss_mib``
    (this process and its children, sampled) and ``note`` (e.g. "cached").
    """

    def __init__(self, echo: Callable[[str], None] | None = print, interval: float = 0.05) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.echo = echo
        self.interval = float(interval)
        self.rows: list[dict] = []

    @contextmanager
    def stage(self, name: str, note: str = "") -> Iterator[dict]:
        """Time the ``with`` block as stage ``name``; the yielded row's ``note`` may be set inside."""
        row = {"stage": name, "seconds": 0.0, "peak_rss_mib": 0.0, "note": note}
        peak = [tree_rss()]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(self.interval):
                peak[0] = max(peak[0], tree_rss())

        sampler = threading.Thread(target=sample, name=f"camseg-stage-{name}", daemon=True)
        t0 = time.perf_counter()
        sampler.start()
        try:
            yield row
        finally:
            done.set()
            sampler.join()
            row["seconds"] = time.perf_counter() - t0
            row["peak_rss_mib"] = max(peak[0], tree_rss()) / MIB
            self.rows.append(row)
            if self.echo:
                extra = f"; {row['note']}" if row["note"] else ""
                self.echo(f"      {name}: {row['seconds']:.1f} s, peak {row['peak_rss_mib']:.0f} MiB{extra}")

    @property
    def total_seconds(self) -> float:
        return sum(r["seconds"] for r in self.rows)

    def table(self) -> str:
        """The stages as a Markdown table, with a total row."""
        lines = ["| stage | wall (s) | peak memory (MiB) | note |", "| --- | ---: | ---: | --- |"]
        lines += [f"| {r['stage']} | {r['seconds']:.1f} | {r['peak_rss_mib']:.0f} | {r['note']} |" for r in self.rows]
        peak = max((r["peak_rss_mib"] for r in self.rows), default=0.0)
        lines.append(f"| **total** | **{self.total_seconds:.1f}** | {peak:.0f} | |")
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> Path:
        """Write ``{"stages": rows, "total_seconds": ...}`` to ``path`` atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"stages": self.rows, "total_seconds": self.total_seconds}, indent=2) + "\n")
        return path
