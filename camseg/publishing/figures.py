"""The README's figure: one test image through the pipeline, from a build's cached results.

    python -m camseg.publishing.figures _static/pipeline.png [--workdir artifacts] [--index 3]

It loads the results :func:`camseg.build.artifacts.build_artifacts` cached (computing whatever is
missing of the evaluations) and saves :meth:`camseg.publishing.book.Book.summary_figure`
(input → Grad-CAM → points → mask) as a PNG, atomically.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "write_pipeline_figure"]


def write_pipeline_figure(out: str | os.PathLike, workdir: str | os.PathLike | None = None, index: int = 3,
                          dpi: int = 110) -> Path:
    """Save the pipeline figure of test image ``index`` to ``out`` (PNG); returns the path."""
    from camseg.build.artifacts import build_artifacts
    from camseg.publishing.book import Book
    from camseg.publishing.viz import figure_png
    from camseg.utils.paths import write_atomic

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"{out}: expected a .png file name")
    book = Book(build_artifacts(workdir, parts=("evaluations",)))
    if not 0 <= index < len(book.images):
        raise ValueError(f"--index must be in 0..{len(book.images) - 1}, got {index}")
    return write_atomic(out, figure_png(book.summary_figure(index), dpi=dpi))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m camseg.publishing.figures", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--workdir", default=None, help="the build's work folder (default: artifacts/)")
    parser.add_argument("--index", type=int, default=3, help="test image (default 3, the report's example)")
    args = parser.parse_args(argv)
    print(f"wrote {write_pipeline_figure(args.out, args.workdir, args.index)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
