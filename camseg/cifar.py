"""CIFAR-10 backgrounds for the shapes dataset, from either of two sources.

The generator needs CIFAR-10 photos as backgrounds. Two sources give them:

* :class:`TarSource`: the offline copy, two tar archives ``train.tar`` and
  ``test.tar`` holding ``{split}/{class}/{NNNN}.jpg`` (32x32 JPEGs), as in
  ``../shared/data/cifar10/``. Checked against ``SHA256SUMS`` when present.
* :class:`TorchvisionSource`: the official binary batches through
  :class:`torchvision.datasets.CIFAR10`, downloaded where the internet is
  reachable.

:func:`resolve_cifar10` picks one: an explicit path, then the environment
variable ``CAMSEG_CIFAR10``, then the usual offline locations, then batches
already downloaded into the cache, then a download. When none works it raises
:class:`Cifar10NotFoundError` naming both ways to provide the data.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from camseg.paths import cache_dir

ENV_VAR = "CAMSEG_CIFAR10"
"""Environment variable naming a folder with ``train.tar``/``test.tar`` or a
torchvision CIFAR-10 root (one holding ``cifar-10-batches-py``)."""

_BATCHES = "cifar-10-batches-py"


class Cifar10NotFoundError(FileNotFoundError):
    """No CIFAR-10 source could be found or downloaded."""


class Cifar10Source(Protocol):
    """Indexable CIFAR-10 images of one split (train or test)."""

    name: str

    def count(self, train: bool) -> int:
        """Number of images in the train (50000) or test (10000) split."""

    def load(self, train: bool, indices: np.ndarray) -> np.ndarray:
        """Images at ``indices`` as a uint8 array (N, 32, 32, 3), RGB."""


class TarSource:
    """CIFAR-10 as JPEGs inside ``train.tar`` and ``test.tar``.

    Images are indexed in the sorted order of their member names, so an index
    means the same image on every machine.

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

    def _members(self, train: bool) -> list[str]:
        if train not in self._names:
            split = "train" if train else "test"
            with tarfile.open(self.folder / f"{split}.tar") as tar:
                names = sorted(m.name for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg"))
            self._names[train] = names
        return self._names[train]

    def count(self, train: bool) -> int:
        return len(self._members(train))

    def load(self, train: bool, indices: np.ndarray) -> np.ndarray:
        names = self._members(train)
        split = "train" if train else "test"
        out = np.empty((len(indices), 32, 32, 3), dtype=np.uint8)
        with tarfile.open(self.folder / f"{split}.tar") as tar:
            members = {m.name: m for m in tar.getmembers()}  # tar.extractfile(name) searches linearly
            for k, i in enumerate(indices):
                data = tar.extractfile(members[names[int(i)]]).read()
                out[k] = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        return out


class TorchvisionSource:
    """The official CIFAR-10 batches via :class:`torchvision.datasets.CIFAR10`.

    Args:
        root: torchvision root (the folder that holds ``cifar-10-batches-py``).
        download: download the batches if they are missing.
    """

    name = "torchvision"

    def __init__(self, root: str | os.PathLike, download: bool = False) -> None:
        from torchvision.datasets import CIFAR10

        self.root = Path(root)
        self._data = {
            train: CIFAR10(str(self.root), train=train, download=download).data for train in (True, False)
        }

    def count(self, train: bool) -> int:
        return len(self._data[train])

    def load(self, train: bool, indices: np.ndarray) -> np.ndarray:
        return self._data[train][np.asarray(indices, dtype=np.int64)]


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
