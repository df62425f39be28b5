"""CIFAR-10 backgrounds for the shapes dataset, from either of two sources.

The generator needs CIFAR-10 photos as backgrounds. Two sources give them:

* :class:`TarSource`: the offline copy, two tar archives ``train.tar`` and
  ``test.tar`` holding ``{split}/{class}/{NNNN}.jpg`` (32x32 JPEGs), as in
  ``../shared/data/cifar10/``. Checked against ``SHA256SUMS`` when present.
* :class:`TorchvisionSource`: the official binary batches through
  :class:`torchvision.datasets.CIFAR10`, downloaded where the internet is
  reachable.

Both hold the same photos in a different order, so images are indexed the
same way in both: **by class, then by index within the class in the order of
the official batches** (index ``i`` is the ``i``-th image of this order:
all airplanes first, in batch order, then all automobiles, ...). The copy's
conversion script walked torchvision's ``CIFAR10`` in order and numbered each
class's images as it met them, so ``{class}/{NNNN}.jpg`` is image ``NNNN``
of its class (:data:`TAR_NAME_OFFSET`); the batches are put in this order by
a stable sort on their labels. Both sources then give the same dataset for a
seed, differing only by the copy's JPEG compression.
:func:`match_name_offset` checks the offset where both sources are present.

:func:`resolve_cifar10` picks one: an explicit path, then the environment
variable ``CAMSEG_CIFAR10``, then the usual offline locations, then batches
already downloaded into the cache, then a download. When none works it raises
:class:`Cifar10NotFoundError` naming both ways to provide the data.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from camseg.utils.paths import cache_dir

ENV_VAR = "CAMSEG_CIFAR10"
"""Environment variable naming a folder with ``train.tar``/``test.tar`` or a
torchvision CIFAR-10 root (one holding ``cifar-10-batches-py``)."""

_BATCHES = "cifar-10-batches-py"

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
"""CIFAR-10's classes in the order of its labels 0..9 (the copy's folder names)."""

TAR_NAME_OFFSET = 0
"""``NNNN`` in the copy's names minus the image's index within its class in the official batches.
The copy holds ``0000``..``0999`` (test) and ``0000``..``4999`` (train) for every class, exactly
the class's image count, and its script numbered the images in batch order, so the only
order-preserving match is offset 0 (the stored script counts from 1; the names were evidently
shifted to count from 0). :func:`match_name_offset` measures it where the batches can be had."""


class Cifar10NotFoundError(FileNotFoundError):
    """No CIFAR-10 source could be found or downloaded."""


class Cifar10Source(Protocol):
    """Indexable CIFAR-10 images of one split (train or test), in (class, index within class) order."""

    name: str

    def count(self, train: bool) -> int:
        """Number of images in the train (50000) or test (10000) split."""

    def load(self, train: bool, indices: np.ndarray) -> np.ndarray:
        """Images at ``indices`` (positions in the (class, index within class) order) as a uint8
        array (N, 32, 32, 3), RGB."""


class TarSource:
    """CIFAR-10 as JPEGs inside ``train.tar`` and ``test.tar``.

    Images are indexed by (class in :data:`CLASS_NAMES` order, number in the
    name), the order of :class:`TorchvisionSource`, so an index means the same
    photo in both sources.

    Args:
        folder: directory holding ``train.tar`` and ``test.tar``.
        verify: check the archives against ``SHA256SUMS`` if that file exists.
    """

    name = "tar"

    def __init__(self, folder: str | os.PathLike, verify: bool = True) -> None:
        self.folder = Path(folder)
        for split in ("train", "test"):
            if not (self.folder / f"{split}.tar").is_file():
                raise Cifar10NotFoundError(f"{self.folder / (split + '.tar')} does not exist")
        if verify:
            self._verify()
        self._names: dict[bool, list[str]] = {}

    def _verify(self) -> None:
        sums = self.folder / "SHA256SUMS"
        if not sums.is_file():
            return
        stamp = tuple(_file_stamp(p) for p in sorted(self.folder.iterdir()) if p.is_file())
        if stamp in _VERIFIED:  # checked in this process, and no file changed since
            return
        for line in sums.read_text().splitlines():
            if not line.strip():
                continue
            expected, name = line.split()
            path = self.folder / name.lstrip("*")
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != expected:
                raise ValueError(
                    f"{path} does not match its SHA256 in {sums} (expected {expected}, "
                    f"got {digest.hexdigest()}); the archive is corrupt or truncated"
                )
        _VERIFIED.add(stamp)

    def _archive(self, train: bool) -> Path:
        return self.folder / f"{'train' if train else 'test'}.tar"

    def _members(self, train: bool) -> list[str]:
        if train not in self._names:
            index = _tar_index(*_file_stamp(self._archive(train)))
            self._names[train] = sorted((n for n in index if n.endswith(".jpg")), key=_class_order_key)
        return self._names[train]

    def count(self, train: bool) -> int:
        return len(self._members(train))

    def load(self, train: bool, indices: np.ndarray) -> np.ndarray:
        names = self._members(train)
        path = self._archive(train)
        index = _tar_index(*_file_stamp(path))
        out = np.empty((len(indices), 32, 32, 3), dtype=np.uint8)
        with open(path, "rb") as raw:
            for k, i in enumerate(indices):
                offset, size = index[names[int(i)]]
                raw.seek(offset)
                data = raw.read(size)
                if len(data) != size:
                    raise ValueError(f"{path} is truncated: {names[int(i)]} is cut short")
                out[k] = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        return out


_VERIFIED: set[tuple] = set()
"""Stamps (:func:`_file_stamp` of every file of a folder) of the CIFAR-10 copies whose archives
matched their ``SHA256SUMS`` in this process: hashed once, not by every :class:`TarSource`."""


def _file_stamp(path: Path) -> tuple[str, int, int]:
    """(path, size in bytes, modification time in ns): what tells a changed file apart."""
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _tar_index(path: str, size: int, mtime_ns: int) -> dict[str, tuple[int, int]]:
    """Member name -> (offset of its data in the file, size) of the uncompressed tar archive at
    ``path``, for its regular files; read once per process and file version (``size`` and
    ``mtime_ns`` are part of the key), instead of a scan of its 60,000 headers at every load.

    Raises:
        ValueError: ``path`` is not an uncompressed tar archive.
    """
    del size, mtime_ns  # cache key only
    try:
        with tarfile.open(path, "r:") as tar:
            return {m.name: (m.offset_data, m.size) for m in tar.getmembers() if m.isfile()}
    except tarfile.ReadError as exc:
        raise ValueError(f"{path}: expected an uncompressed tar archive of CIFAR-10 JPEGs ({exc})") from None


def _class_order_key(name: str) -> tuple[int, int, str]:
    """(class index, number) of ``{split}/{class}/{NNNN}.jpg``; unknown layouts sort last by name."""
    parts = name.split("/")
    try:
        return CLASS_NAMES.index(parts[-2]), int(Path(parts[-1]).stem) - TAR_NAME_OFFSET, name
    except (ValueError, IndexError):
        return len(CLASS_NAMES), 0, name


class TorchvisionSource:
    """The official CIFAR-10 batches via :class:`torchvision.datasets.CIFAR10`, in (class, index
    within class) order: a stable sort of the batches by label.

    Args:
        root: torchvision root (the folder that holds ``cifar-10-batches-py``).
        download: download the batches if they are missing.
        arrays: instead of ``root``, the batches themselves: ``{True: (data, targets), False: ...}``
            with data uint8 (N, 32, 32, 3) and targets int (N,) in the official order (tests).
    """

    name = "torchvision"

    def __init__(self, root: str | os.PathLike | None = None, download: bool = False,
                 arrays: dict[bool, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        if arrays is None:
            from torchvision.datasets import CIFAR10

            self.root = Path(root)
            sets = {train: CIFAR10(str(self.root), train=train, download=download) for train in (True, False)}
            arrays = {train: (ds.data, np.asarray(ds.targets)) for train, ds in sets.items()}
        self._data = {train: np.asarray(data) for train, (data, _) in arrays.items()}
        self._labels = {train: np.asarray(targets, dtype=np.int64) for train, (_, targets) in arrays.items()}
        self._order = {train: np.argsort(labels, kind="stable") for train, labels in self._labels.items()}

    def count(self, train: bool) -> int:
        return len(self._data[train])

    def load(self, train: bool, indices: np.ndarray) -> np.ndarray:
        return self._data[train][self._order[train][np.asarray(indices, dtype=np.int64)]]


def match_name_offset(tar: TarSource, batches: TorchvisionSource, n: int = 50,
                      offsets: tuple[int, ...] = (-1, 0, 1)) -> dict[int, float]:
    """Check :data:`TAR_NAME_OFFSET` where both sources are present.

    For the first ``n`` test images of each class, compares the copy's image
    named ``NNNN`` with the batches' image number ``NNNN - offset`` of that class.

    Returns:
        offset -> mean absolute pixel difference (0..255) over the compared
        pairs; the true offset's is a few grey levels (JPEG), the others' tens.
    """
    names = tar._members(False)
    counts = np.bincount(np.sort(_batch_labels(batches, False)), minlength=len(CLASS_NAMES))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = {}
    for offset in offsets:
        diffs = []
        for c in range(len(CLASS_NAMES)):
            mine = [(k, name) for k, name in enumerate(names) if _class_order_key(name)[0] == c][:n]
            for k, name in mine:
                j = int(Path(name).stem) - offset
                if not 0 <= j < counts[c]:
                    continue
                a = tar.load(False, np.array([k]))[0].astype(np.int16)
                b = batches.load(False, np.array([starts[c] + j]))[0].astype(np.int16)
                diffs.append(float(np.abs(a - b).mean()))
        out[offset] = float(np.mean(diffs)) if diffs else float("nan")
    return out


def _batch_labels(batches: TorchvisionSource, train: bool) -> np.ndarray:
    return batches._labels[train]


def _from_path(path: Path) -> Cifar10Source:
    if (path / "train.tar").is_file():
        return TarSource(path)
    if (path / _BATCHES).is_dir():
        return TorchvisionSource(path, download=False)
    raise Cifar10NotFoundError(
        f"{path} holds neither train.tar/test.tar (offline JPEG copy) nor {_BATCHES}/ (torchvision batches)"
    )


def default_offline_locations() -> list[Path]:
    """Folders searched for the offline copy when nothing else is given.

    ``shared/data/cifar10`` beside the repository (and beside the current
    directory), the layout of the project's own machines.
    """
    here = Path(__file__).resolve().parent.parent
    candidates = [here.parent / "shared" / "data" / "cifar10", Path.cwd().parent / "shared" / "data" / "cifar10",
                  Path.cwd() / "shared" / "data" / "cifar10"]
    seen: list[Path] = []
    for c in candidates:
        if c not in seen:
            seen.append(c)
    return seen


def resolve_cifar10(path: str | os.PathLike | None = None, download: bool = True) -> Cifar10Source:
    """Find a CIFAR-10 source.

    Order: ``path`` if given; the ``CAMSEG_CIFAR10`` environment variable;
    the offline copy in :func:`default_offline_locations`; torchvision batches
    already in the cache folder; a torchvision download into the cache folder
    (if ``download``).

    Raises:
        Cifar10NotFoundError: nothing found and the download failed; the
            message names both ways to provide the data.
    """
    if path is not None:
        return _from_path(Path(path))
    env = os.environ.get(ENV_VAR)
    if env:
        return _from_path(Path(env))
    for candidate in default_offline_locations():
        if (candidate / "train.tar").is_file():
            return TarSource(candidate)
    root = cache_dir() / "cifar10"
    if (root / _BATCHES).is_dir():
        return TorchvisionSource(root)
    error = "download disabled"
    if download:
        try:
            return TorchvisionSource(root, download=True)
        except Exception as exc:  # network errors come in many types
            error = f"{type(exc).__name__}: {exc}"
    raise Cifar10NotFoundError(
        "CIFAR-10 not found and could not be downloaded "
        f"({error}). Provide it in one of two ways: (1) the offline copy, a folder with "
        f"train.tar and test.tar (e.g. ../shared/data/cifar10), passed as --cifar10 PATH or in the "
        f"{ENV_VAR} environment variable; or (2) the official batches, downloaded by "
        f"torchvision.datasets.CIFAR10(root='{root}', download=True) on a machine with internet access."
    )
