"""Where camseg keeps downloaded and cached files."""

from __future__ import annotations

import glob
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
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
"""A temporary file of unknown owner untouched for this long belongs to a killed writer
(a live one keeps writing)."""


def current_umask() -> int:
    """The process's umask (read from ``/proc/self/status`` where it can be, else set and reset)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | os.PathLike, directory: bool = False) -> None:
    """Give ``path`` the mode a plain ``open()``/``mkdir()`` would: 0o666 (0o777 for a
    folder) less the umask. ``tempfile`` creates 0o600 files and 0o700 folders, which
    others cannot read in a shared folder."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def owner_tag() -> str:
    """``<pid>@<host>``: who owns a temporary file or folder, recorded in its name."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
    return f"{os.getpid()}@{host}"


_OWNER = re.compile(r"(?:^|[.-])(\d+)@([A-Za-z0-9-]+)\.")


def owner_is_gone(name: str, age_seconds: float, older_than: float = STALE_SECONDS) -> bool:
    """Whether the process that made the temporary file or folder ``name`` is gone.

    A name with an owner tag (:func:`owner_tag`) from this host: its process no
    longer runs. Any other name (another host, or an older camseg that recorded
    no owner): untouched for ``older_than`` seconds.
    """
    import psutil

    match = _OWNER.search(name)
    if match and match.group(2) == owner_tag().split("@", 1)[1]:
        pid = int(match.group(1))
        if pid == os.getpid():
            return False
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False
    return age_seconds >= older_than


def remove_stale_partials(path: str | os.PathLike, older_than: float = STALE_SECONDS) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` left for ``path`` when its
    process was killed (``.<name>.*.partial`` beside it whose owner is gone, see
    :func:`owner_is_gone`). A live writer's file is never touched.

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
            if owner_is_gone(stale.name[len(path.name) + 1:], now - stale.stat().st_mtime, older_than):
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
    The file gets the mode a plain ``open()`` would give (0o666 less the umask),
    not ``tempfile``'s private 0o600. A process killed mid-write (no chance to
    clean up) leaves only a hidden ``.<name>.<pid>@<host>.<random>.partial``
    file; the next write of ``path`` removes it once its owner is gone
    (:func:`remove_stale_partials`).

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
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{owner_tag()}.", suffix=".partial", dir=path.parent)
    except OSError as exc:  # name the file the caller asked for, not the temporary one
        raise type(exc)(exc.errno, f"cannot write {path}: {exc.strerror}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        if Path(tmp).exists():
            apply_umask(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` through :func:`atomic_path`: all of it or nothing; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return path


@contextmanager
def held_lock(lock_file: str | os.PathLike, what: str, log: Callable[[str], None] | None = None,
              timeout: float | None = None, doing: str = "computing") -> Iterator[None]:
    """Hold the file lock ``lock_file`` (:class:`filelock.FileLock`) for the block: the one process
    that computes ``what`` at a time; another waits (saying so through ``log``) and then finds
    the result cached instead of computing it again.

    Args:
        lock_file: the lock's path (its folder is made if missing).
        what: what the lock guards, for the messages (e.g. ``"the classifier of seed 1"``).
        log: called once with a line when the lock is held by another process (default: nothing).
        timeout: seconds to wait at most (None: as long as it takes).
        doing: the verb of the messages ("another process is *computing* ...").

    Raises:
        TimeoutError: still held by another process after ``timeout`` seconds.
    """
    from filelock import FileLock, Timeout

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file, mode=0o666 & ~current_umask())
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if log is not None:
            log(f"another process is {doing} {what} (lock {lock_file}); waiting for it to finish")
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise TimeoutError(f"another process is still {doing} {what} after {timeout:g} s "
                               f"(lock {lock_file}); try again later") from None
    try:
        yield
    finally:
        lock.release()
