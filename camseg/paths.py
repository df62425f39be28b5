"""Where camseg keeps downloaded and cached files."""

from __future__ import annotations

import glob
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

CACHE_ENV_VAR = "CAMSEG_CACHE"


def cache_dir() -> Path:
    """The cache folder: ``$CAMSEG_CACHE`` if set, else the platform's user cache
    folder for camseg (``~/.cache/camseg`` on Linux). Not created here."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env) if env else Path(platformdirs.user_cache_dir("camseg"))


STALE_SECONDS = 600.0
"""A temporary file untouched for this long belongs to a killed writer (a live one keeps writing)."""


def remove_stale_partials(path: str | os.PathLike, older_than: float = STALE_SECONDS) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` left for ``path`` when its
    process was killed (``.<name>.*.partial`` beside it, unmodified for ``older_than`` s).

    Such files are never read as results (only the final name is), but a killed
    checkpoint download would otherwise leave hundreds of MB behind each time.

    Returns:
        The paths removed.
    """
    path = Path(path)
    removed = []
    now = time.time()
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.partial"):
        try:
            if now - stale.stat().st_mtime >= older_than:
                stale.unlink()
                removed.append(stale)
        except FileNotFoundError:  # another process cleaned it
            pass
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Write ``path`` atomically: yield a temporary path in the same folder, rename it
    to ``path`` when the block succeeds, remove it when the block raises.

    A reader therefore sees the old file or the complete new one, never half a file.
    A process killed mid-write (no chance to clean up) leaves only a hidden
    ``.<name>.<random>.partial`` file; the next write of ``path`` removes it
    once it is stale (:func:`remove_stale_partials`).

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
