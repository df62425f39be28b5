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

from camseg.utils.paths import atomic_path

__all__ = ["StageLog", "tree_rss"]

MIB = 2**20


def tree_rss(process: psutil.Process | None = None) -> int:
    """Resident memory in bytes of ``process`` (default: this one) plus all its descendants."""
    process = process or psutil.Process()
    try:
        children = process.children(recursive=True)
    except psutil.Error:  # the process table changed under us: count this process alone
        children = []
    total = 0
    for p in (process, *children):
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
        probe: returns the memory in bytes to track (default :func:`tree_rss`: this
            process and its children).

    ``rows`` holds one dict per stage: ``stage``, ``seconds``, ``peak_rss_mib``
    (the probe's largest value: at the stage's start, at its end, at every
    background sample and at every :meth:`sample` call) and ``note`` (e.g. "cached").

    A background thread samples every ``interval`` seconds, so a short-lived
    peak between two samples can be missed; code that knows when its peak is
    (say, right after a large allocation) calls :meth:`sample` to count it.
    """

    def __init__(self, echo: Callable[[str], None] | None = print, interval: float = 0.05,
                 probe: Callable[[], int] = tree_rss) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.echo = echo
        self.interval = float(interval)
        self.probe = probe
        self.rows: list[dict] = []
        self._running: list[list[int]] = []  # the peak of each running stage (nested stages: each counts)
        self._lock = threading.Lock()

    def sample(self) -> None:
        """Count the probe's current value in the peak of every running stage (no-op outside one)."""
        try:
            value = int(self.probe())
        except Exception:  # noqa: BLE001 - a failed reading must never end the sampling or the job
            return
        with self._lock:
            for peak in self._running:
                peak[0] = max(peak[0], value)

    @contextmanager
    def stage(self, name: str, note: str = "") -> Iterator[dict]:
        """Time the ``with`` block as stage ``name``; the yielded row's ``note`` may be set inside."""
        row = {"stage": name, "seconds": 0.0, "peak_rss_mib": 0.0, "note": note}
        peak = [0]
        with self._lock:
            self._running.append(peak)
        self.sample()
        done = threading.Event()

        def sample() -> None:
            while not done.wait(self.interval):
                self.sample()

        sampler = threading.Thread(target=sample, name=f"camseg-stage-{name}", daemon=True)
        t0 = time.perf_counter()
        sampler.start()
        try:
            yield row
        finally:
            done.set()
            sampler.join()
            row["seconds"] = time.perf_counter() - t0
            self.sample()
            with self._lock:
                self._running = [p for p in self._running if p is not peak]
            row["peak_rss_mib"] = peak[0] / MIB
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

    def write_json(self, path: str | Path, complete: bool = True) -> Path:
        """Write ``{"stages": rows, "total_seconds": ..., "complete": ...}`` to ``path`` atomically;
        ``complete`` False: more stages follow (``camseg build`` writes the stages before the book
        for the book to show, then the whole build)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"stages": self.rows, "total_seconds": self.total_seconds,
                                       "complete": bool(complete)}, indent=2) + "\n")
        return path
