"""SAM checkpoints: where they are looked for, how they are downloaded and checked.

Resolution order for a model type (:func:`resolve_checkpoint`):

1. an explicit path (``checkpoint=`` argument);
2. the environment variable ``CAMSEG_SAM_CHECKPOINT`` (a file path; ignored
   for a model type when it names another model type's official file);
3. the cache folder ``cache_dir() / "sam" / <official file name>``
   (:func:`camseg.utils.paths.cache_dir`, i.e. ``$CAMSEG_CACHE`` or
   ``~/.cache/camseg``);
4. a download from the official location, ``DEFAULT_BASE_URL + file name``
   (``base_url`` overrides the location, e.g. a mirror or a test server).

A download goes to a temporary file in the cache folder, with a progress bar;
it is checked (size in bytes, SHA-256, and the MD5 prefix that is part of the
official file name) and only then renamed, atomically, to its final name. A
failed or corrupt download is deleted, so a half-written file is never taken
for a checkpoint. A file found in the cache whose size is wrong is moved
aside (``<name>.corrupt``) and fetched again. Offline, a missing checkpoint
raises :class:`CheckpointError` naming the file, the URL and the three ways
to provide it.

The official files and their facts (:data:`SAM_CHECKPOINTS`):

=========  =====================  =============  ========================
type       file                   bytes          SHA-256 (first 16 hex)
=========  =====================  =============  ========================
``vit_b``  sam_vit_b_01ec64.pth     375,042,383  ec2df62732614e57...
``vit_l``  sam_vit_l_0b3195.pth   1,249,524,607  3adcc4315b642a4d...
``vit_h``  sam_vit_h_4b8939.pth   2,564,550,879  a7bf3b02f3ebf126...
=========  =====================  =============  ========================

The hex in each file name is the start of the file's **MD5** digest, not of
its SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from camseg.utils.paths import atomic_path, cache_dir

__all__ = [
    "BASE_URL_ENV_VAR",
    "CHECKPOINT_ENV_VAR",
    "DEFAULT_BASE_URL",
    "SAM_CHECKPOINTS",
    "CheckpointError",
    "CheckpointSpec",
    "download_checkpoint",
    "find_checkpoint",
    "resolve_checkpoint",
    "sam_cache_dir",
    "verify_checkpoint",
]

BASE_URL_ENV_VAR = "CAMSEG_SAM_BASE_URL"
"""Environment variable naming a download location (a mirror) used instead of :data:`DEFAULT_BASE_URL`."""

CHECKPOINT_ENV_VAR = "CAMSEG_SAM_CHECKPOINT"
"""Environment variable naming a SAM checkpoint file."""

DEFAULT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
"""Official location of the SAM v1 checkpoints (segment-anything's README, "Model Checkpoints")."""


class CheckpointError(RuntimeError):
    """A SAM checkpoint is missing, cannot be downloaded, or is corrupt."""


@dataclass(frozen=True)
class CheckpointSpec:
    """The facts that identify one checkpoint file.

    Attributes:
        model_type: segment-anything's registry key (``"vit_b"``, ...).
        filename: the official file name.
        size: expected size in bytes.
        sha256: expected SHA-256 hex digest (full, or a prefix of it; empty: not checked).
        md5: expected MD5 hex digest (full, or a prefix of it; empty: not checked).
    """

    model_type: str
    filename: str
    size: int
    sha256: str = ""
    md5: str = ""

    def url(self, base_url: str | None = None) -> str:
        """Download URL: ``base_url`` (default ``$CAMSEG_SAM_BASE_URL``, else :data:`DEFAULT_BASE_URL`) + file name."""
        base = base_url if base_url is not None else (os.environ.get(BASE_URL_ENV_VAR) or DEFAULT_BASE_URL)
        return base.rstrip("/") + "/" + self.filename


# Facts verified with the project's `search` tool (this machine has no network):
# * File names and URLs: facebookresearch/segment-anything README.md, section
#   "Model Checkpoints" (it publishes no sizes or hashes).
# * Sizes in bytes and full SHA-256 digests: several independent third-party
#   download manifests agree (e.g. a model-info table with "size"/"hash" per
#   file listing all three; a `ModelDownload(..., size, sha256)` table listing
#   all three; a weights table listing vit_b and vit_h with SHA-256), and a
#   wget log of dl.fbaipublicfiles.com shows "Length: 375042383" for vit_b.
#   One project lists vit_l as 1249524736 bytes; every other source gives
#   1249524607, used here.
# * MD5 digests: Sanster/IOPaint iopaint/plugins/interactive_seg.py (and
#   other downloaders) list md5 01ec64d2..., 0b319550..., 4b8939a8... --
#   the hex in the official file names is the MD5 prefix. The SHA-256
#   digests start with ec2df627 / 3adcc431 / a7bf3b02 instead.
SAM_CHECKPOINTS: dict[str, CheckpointSpec] = {
    "vit_b": CheckpointSpec(
        "vit_b", "sam_vit_b_01ec64.pth", 375_042_383,
        sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        md5="01ec64d29a2fca3f0661936605ae66f8",
    ),
    "vit_l": CheckpointSpec(
        "vit_l", "sam_vit_l_0b3195.pth", 1_249_524_607,
        sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        md5="0b3195507c641ddb6910d2bb5adee89c",
    ),
    "vit_h": CheckpointSpec(
        "vit_h", "sam_vit_h_4b8939.pth", 2_564_550_879,
        sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        md5="4b8939a88964f0f4ff5f5b2642c598a6",
    ),
}


def _spec_for(model_type: str, spec: CheckpointSpec | None) -> CheckpointSpec:
    if spec is not None:
        return spec
    try:
        return SAM_CHECKPOINTS[model_type]
    except KeyError:
        known = ", ".join(SAM_CHECKPOINTS)
        raise ValueError(f"unknown SAM model type {model_type!r}; expected one of {known}") from None


def sam_cache_dir() -> Path:
    """Folder of downloaded SAM checkpoints: ``cache_dir() / "sam"`` (not created here)."""
    return cache_dir() / "sam"


def verify_checkpoint(path: str | os.PathLike, spec: CheckpointSpec, full: bool = True) -> None:
    """Check a file against ``spec``: its size, and with ``full`` its SHA-256 and MD5.

    Args:
        path: the file.
        spec: expected facts.
        full: also hash the file (seconds for the large checkpoints).

    Raises:
        CheckpointError: a mismatch; the message names the file and both values.
    """
    path = Path(path)
    size = path.stat().st_size
    if size != spec.size:
        raise CheckpointError(
            f"{path} is {size:,} bytes but {spec.filename} has {spec.size:,} bytes: "
            "the file is truncated or not this checkpoint"
        )
    if not full or not (spec.sha256 or spec.md5):
        return
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
    for algo, want, got in (("SHA-256", spec.sha256, sha.hexdigest()), ("MD5", spec.md5, md5.hexdigest())):
        if want and not got.startswith(want.lower()):
            raise CheckpointError(f"{path}: {algo} is {got}, expected {want} for {spec.filename}: the file is corrupt")


def _official_spec_by_name(name: str) -> CheckpointSpec | None:
    return next((s for s in SAM_CHECKPOINTS.values() if s.filename == name), None)


def _env_checkpoint(spec: CheckpointSpec) -> Path | None:
    value = os.environ.get(CHECKPOINT_ENV_VAR)
    if not value:
        return None
    path = Path(value).expanduser()
    other = _official_spec_by_name(path.name)
    if other is not None and other.filename != spec.filename:
        return None  # it names another model type's checkpoint
    return path


def find_checkpoint(
    model_type: str = "vit_b",
    checkpoint: str | os.PathLike | None = None,
    *,
    spec: CheckpointSpec | None = None,
    folder: str | os.PathLike | None = None,
) -> Path | None:
    """A local checkpoint for ``model_type`` if there is one; never downloads.

    Looks at ``checkpoint``, then ``$CAMSEG_SAM_CHECKPOINT``, then the cache
    folder. A file with an official name must have the official size (a cheap
    check; hashes are not computed here).

    Args:
        model_type: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``.
        checkpoint: an explicit path.
        spec: facts of the expected file (default: the official ones).
        folder: the cache folder (default :func:`sam_cache_dir`).

    Returns:
        The path, or None.
    """
    spec = _spec_for(model_type, spec)
    folder = Path(folder) if folder is not None else sam_cache_dir()
    for path in (Path(checkpoint).expanduser() if checkpoint is not None else None,
                 _env_checkpoint(spec), folder / spec.filename):
        if path is not None and path.is_file() and _size_ok(path, spec):
            return path
    return None


def _size_ok(path: Path, spec: CheckpointSpec) -> bool:
    expected = spec if path.name == spec.filename else _official_spec_by_name(path.name)
    return expected is None or path.stat().st_size == expected.size


def _how_to_provide(spec: CheckpointSpec, folder: Path, url: str) -> str:
    return (
        f"Provide it in one of these ways: pass checkpoint=PATH, "
        f"set {CHECKPOINT_ENV_VAR}=PATH, or put the file at {folder / spec.filename} "
        f"(download {url} on a machine with internet access; expected {spec.size:,} bytes"
        + (f", SHA-256 {spec.sha256}" if spec.sha256 else "") + ")."
    )


def resolve_checkpoint(
    model_type: str = "vit_b",
    checkpoint: str | os.PathLike | None = None,
    *,
    download: bool = True,
    base_url: str | None = None,
    progress: bool = True,
    spec: CheckpointSpec | None = None,
    folder: str | os.PathLike | None = None,
    timeout: float = 60.0,
) -> Path:
    """The checkpoint file for ``model_type``: explicit path, env var, cache, or a download.

    Args:
        model_type: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``.
        checkpoint: an explicit path; it must exist (no fallback then).
        download: download into the cache when no local file is found.
        base_url: download location (default :data:`DEFAULT_BASE_URL`).
        progress: show a progress bar while downloading.
        spec: facts of the expected file (default: the official ones; tests
            pass their own).
        folder: the cache folder (default :func:`sam_cache_dir`).
        timeout: seconds to wait for the server (connect and each read).

    Returns:
        Path of an existing file; a downloaded one has passed
        :func:`verify_checkpoint` (size, SHA-256, MD5).

    Raises:
        CheckpointError: the explicit or env-var file does not exist or has
            the wrong size; no file and ``download=False``; the download
            failed (offline, HTTP error) or the downloaded file is corrupt.
            The message names the file, the URL and how to provide it.
    """
    spec = _spec_for(model_type, spec)
    folder = Path(folder) if folder is not None else sam_cache_dir()
    url = spec.url(base_url)
    for path, origin in ((Path(checkpoint).expanduser() if checkpoint is not None else None, "checkpoint argument"),
                         (_env_checkpoint(spec), f"${CHECKPOINT_ENV_VAR}")):
        if path is None:
            continue
        if path.is_dir():
            raise CheckpointError(f"SAM checkpoint {path} (from the {origin}) is a folder, not a checkpoint file")
        if not path.is_file():
            raise CheckpointError(f"SAM checkpoint {path} (from the {origin}) does not exist")
        if not _size_ok(path, spec):
            raise CheckpointError(
                f"SAM checkpoint {path} (from the {origin}) is {path.stat().st_size:,} bytes, "
                f"not the official {(_official_spec_by_name(path.name) or spec).size:,}: truncated or corrupt"
            )
        return path
    cached = folder / spec.filename
    if cached.is_file():
        if _size_ok(cached, spec):
            return cached
        aside = _move_aside(cached)
        warnings.warn(f"{cached} had the wrong size ({aside.stat().st_size:,} bytes, expected {spec.size:,}); "
                      f"moved to {aside}", RuntimeWarning, stacklevel=2)
    if not download:
        raise CheckpointError(f"SAM {spec.model_type} checkpoint {spec.filename} was not found and downloading "
                              f"is off. {_how_to_provide(spec, folder, url)}")
    return download_checkpoint(spec, folder, base_url=base_url, progress=progress, timeout=timeout)


def _move_aside(path: Path) -> Path:
    """Rename a bad file to ``<name>.corrupt`` (replacing an older one) so it is never taken again."""
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    return aside


def download_checkpoint(
    spec: CheckpointSpec,
    folder: str | os.PathLike | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``spec``'s file into ``folder``, verify it, and rename it into place atomically.

    The data goes to a hidden temporary file in ``folder``
    (``.<name>.<random>.partial``, :func:`camseg.utils.paths.atomic_path`), which is
    checked with :func:`verify_checkpoint` (size, SHA-256, MD5) and then
    renamed to ``folder / spec.filename``. On any failure or interruption the
    temporary file is deleted, so nothing incomplete is left under the final
    name; one left by a killed process is removed by the next download. Uses
    :class:`pooch.HTTPDownloader` (``requests``) with a timeout.

    Args:
        spec: the file to fetch and its expected facts.
        folder: destination (default :func:`sam_cache_dir`), created if needed.
        base_url: location (default :data:`DEFAULT_BASE_URL`).
        progress: show a tqdm progress bar.
        timeout: seconds to wait for the server (connect and each read).

    Returns:
        The final path.

    Raises:
        CheckpointError: the server cannot be reached or answers with an
            error, or the file fails verification.
    """
    import pooch
    import requests

    folder = Path(folder) if folder is not None else sam_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    url = spec.url(base_url)
    final = folder / spec.filename
    with atomic_path(final) as tmp:  # also removes what a killed earlier download left
        downloader = pooch.HTTPDownloader(progressbar=progress, chunk_size=1 << 20, timeout=timeout)
        try:
            downloader(url, str(tmp), None)
        except (requests.RequestException, OSError) as exc:
            raise CheckpointError(
                f"SAM {spec.model_type} checkpoint {spec.filename} is not available locally and could not be "
                f"downloaded from {url} ({type(exc).__name__}: {exc}). {_how_to_provide(spec, folder, url)}"
            ) from exc
        try:
            verify_checkpoint(tmp, spec, full=True)
        except CheckpointError as exc:
            raise CheckpointError(f"download from {url} is corrupt and was deleted: {exc}") from None
    return final


def load_state_dict(path: str | os.PathLike) -> dict:
    """Load a SAM checkpoint (a plain state dict) on the CPU with ``weights_only=True``.

    Raises:
        CheckpointError: the file cannot be read as a state dict; the message names it.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        first = (str(exc).strip().splitlines() or [""])[0]
        first = first if len(first) <= 160 else first[:157] + "..."
        raise CheckpointError(f"cannot load SAM checkpoint {path}: it is corrupt or not a PyTorch state dict "
                              f"({type(exc).__name__}: {first})") from exc
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return state


def quarantine_if_cached(path: Path, model_type: str, folder: str | os.PathLike | None = None) -> Path | None:
    """Move ``path`` aside when it is the cached checkpoint of ``model_type`` (an unloadable download).

    A user's own file, or the cached file of another model type, is left in place.

    Returns:
        The new path (``<name>.corrupt``), or None when the file was left in place.
    """
    spec = SAM_CHECKPOINTS.get(model_type)
    folder = Path(folder) if folder is not None else sam_cache_dir()
    if spec is None or not path.is_file():
        return None
    try:
        is_cached = path.resolve() == (folder / spec.filename).resolve()
    except OSError:
        return None
    return _move_aside(path) if is_cached else None

