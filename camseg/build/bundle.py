"""A results bundle: everything ``camseg build`` computed, in one verified archive for readers.

:func:`write_bundle` packs a work folder (see :mod:`camseg.build.artifacts`) into
one ``.tar.gz``; :func:`fetch_bundle` downloads or opens one, verifies it and
installs it into a work folder, so that ``camseg build --from-bundle URL``
finds every artefact cached and needs neither CIFAR-10 nor a GPU nor any
training or evaluation. The archive holds, under their work-folder paths::

    manifest.json                     format, camseg version, settings, backend, device, every file's size and SHA-256
    _build/build-profile.json         the stage times of the build that made it (when given; not installed)
    data/...                          the shapes dataset, whole (its manifest lists every split: a partial copy
                                      would fail verification and be rebuilt from CIFAR-10)
    shift/<profile>/...               the shift-suite test sets
    classifier-<arch>.pt              the classifiers (every seed)
    classifier-<arch>-seed<k>.pt
    eval/...                          the evaluations, predicted masks, CAM study, seeds and suite summary

Member order, timestamps and owners are fixed, so the same work folder gives
the same bytes. A bundle is refused, and the work folder left untouched, when
its camseg version (which includes a digest of the source,
:func:`camseg.build.keys.camseg_version`) is not the running one, when any
file's size or SHA-256 differs from the manifest, or when a member is not a
plain file at a relative path inside the folder.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from camseg.build.keys import camseg_version, file_sha256
from camseg.utils.paths import atomic_path, cache_dir, owner_tag, write_atomic

__all__ = [
    "BUNDLE_FORMAT", "BUNDLE_NAME", "INSTALLED", "MANIFEST", "PROFILE", "PUBLISHED_URL", "BundleConflictError",
    "BundleCorruptError", "BundleError", "BundleInfo", "BundleUnsafeError", "BundleVersionError", "bundle_env",
    "bundle_files", "bundle_is_current", "fetch_bundle", "installed_bundle", "installed_record", "is_url",
    "read_bundle_manifest", "write_bundle",
]

BUNDLE_NAME = "camseg-results.tar.gz"
"""The bundle's file name (``camseg build`` writes ``_build/camseg-results.tar.gz``)."""

PUBLISHED_URL = "https://camseg.github.io/camseg/camseg-results.tar.gz"
"""Where the published book's results bundle is (deployed beside the book on GitHub Pages by
``.github/workflows/book.yml``); a chapter opened alone loads it (:func:`camseg.publishing.book.setup`)."""

BUNDLE_FORMAT = 1
MANIFEST = "manifest.json"
"""The archive member describing the bundle (first in the archive)."""

PROFILE = "_build/build-profile.json"
"""The archive member holding the build's stage times (:class:`camseg.build.stages.StageLog`)."""

INSTALLED = "bundle.json"
"""What :func:`fetch_bundle` records in the work folder about the bundle it installed: the settings,
backend and device the results were built with, which :func:`camseg.build.artifacts.build_artifacts`
then uses instead of resolving ``"auto"`` anew (:func:`installed_bundle`)."""

REQUIRED = ("data/dataset.json", "eval/test-clean.json", "eval/test-degraded.json", "eval/cam-study.json")
"""Work-folder files without which a folder holds no finished build (besides a classifier checkpoint)."""

_DATASET_ROOTS = re.compile(r"^(data|shift/[^/]+)/")


class BundleError(ValueError):
    """A results bundle that cannot be written, read or installed; the message is one line."""


class BundleVersionError(BundleError):
    """The bundle was made by another camseg version (or source)."""


class BundleCorruptError(BundleError):
    """Not a readable bundle, or a file that differs from the bundle's manifest."""


class BundleUnsafeError(BundleError):
    """A member that would land outside the work folder, or is not a plain file."""


class BundleConflictError(BundleError):
    """The work folder already holds other content at a path of the bundle."""


@dataclass(frozen=True)
class BundleInfo:
    """A verified bundle installed into a work folder (:func:`fetch_bundle`).

    Attributes:
        path: the archive (the cached download for a URL).
        workdir: the work folder it was installed into.
        version: the camseg version it was made by (the running one).
        files: the work-folder paths it holds (POSIX, relative), sorted.
        settings: what it was built with (``seed``, ``arch``, ``sizes``, ``epochs``, ``seeds``,
            ``suite_size``, ``segmenter`` and ``device`` as requested).
        backend: the resolved segmenter (``name``, ``reason``, ``requested``).
        device: the resolved device.
        profile: the build's stage times (``_build/build-profile.json``), or None.
        installed: how many files were put in place (the others were already there, identical).
        sha256: SHA-256 of the archive.
        size: the archive's size in bytes.
    """

    path: Path
    workdir: Path
    version: str
    files: tuple[str, ...]
    settings: Mapping[str, Any] = field(repr=False)
    backend: Mapping[str, Any] = field(repr=False)
    device: str = "cpu"
    profile: Mapping[str, Any] | None = field(default=None, repr=False)
    installed: int = 0
    sha256: str = ""
    size: int = 0


def is_url(source: str | os.PathLike) -> bool:
    """Whether ``source`` is an ``http://`` or ``https://`` URL (else a local path)."""
    return isinstance(source, str) and re.match(r"^https?://", source, re.IGNORECASE) is not None


# --------------------------------------------------------------------------
# Writing


def bundle_files(workdir: str | os.PathLike) -> list[str]:
    """The work-folder files a bundle holds (relative POSIX paths, sorted): ``data/`` and ``shift/``
    whole, the ``classifier-*.pt`` checkpoints and ``eval/``. Hidden names (locks, partial files of a
    writer) are left out.

    Raises:
        BundleError: ``workdir`` holds no finished build (names what is missing).
    """
    work = Path(workdir)
    if not work.is_dir():
        raise BundleError(f"cannot bundle {work}: no such folder; expected a work folder of `camseg build`")
    missing = [rel for rel in REQUIRED if not (work / rel).is_file()]
    if not any(work.glob("classifier-*.pt")):
        missing.append("classifier-<arch>.pt")
    if missing:
        raise BundleError(f"cannot bundle {work}: it holds no finished build (missing {', '.join(missing)}); "
                          "run `camseg build` first")
    out = [p.name for p in work.glob("classifier-*.pt") if p.is_file()]
    for top in ("data", "shift", "eval"):
        for dirpath, dirnames, filenames in os.walk(work / top):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if not name.startswith("."):
                    out.append((Path(dirpath) / name).relative_to(work).as_posix())
    return sorted(out)


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _settings_from_files(work: Path) -> tuple[dict, dict, str]:
    """Settings, backend and device as recorded by the build's own files (the clean evaluation's
    artefact key, the dataset manifest, the seeds' summary, the shift sets' manifests)."""
    key = (_read_json(work / "eval" / "test-clean.json") or {}).get("artifact_key") or {}
    data = _read_json(work / "data" / "dataset.json") or {}
    summary = _read_json(work / "eval" / "seeds" / "summary.json")
    shift_sizes = {int((m.get("sizes") or {}).get("test", 0))
                   for m in (_read_json(p) for p in sorted(work.glob("shift/*/dataset.json"))) if m}
    settings = {"seed": key.get("seed", data.get("seed")), "arch": key.get("arch"),
                "sizes": data.get("sizes"), "epochs": None,
                "seeds": len(summary["seeds"]) if summary and summary.get("seeds") else 0,
                "suite_size": max(shift_sizes) if summary and shift_sizes else 0,
                "segmenter": key.get("backend"), "device": key.get("device")}
    backend = {"name": key.get("backend"), "reason": "", "requested": key.get("backend")}
    return settings, backend, str(key.get("device") or "cpu")


def _settings_json(settings: Any) -> dict:
    """A :class:`camseg.build.artifacts.Settings` (or a mapping) as JSON types, ``sizes`` as a dict."""
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        from dataclasses import asdict

        settings = asdict(settings)
    out = json.loads(json.dumps(dict(settings), default=list))
    if isinstance(out.get("sizes"), list):
        out["sizes"] = {str(k): int(v) for k, v in out["sizes"]}
    return out


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_bundle(workdir: str | os.PathLike, out_path: str | os.PathLike,
                 profile: str | os.PathLike | None = None, *, settings: Any = None,
                 backend: Any = None, device: str | None = None, compresslevel: int = 6) -> Path:
    """Pack what a build computed in ``workdir`` into one ``.tar.gz`` at ``out_path``.

    Args:
        workdir: the work folder of a finished build.
        out_path: the archive to write (atomically; its folder is created).
        profile: the build's ``_build/build-profile.json``, stored as :data:`PROFILE` (None: none).
        settings: what the build was asked for: a :class:`camseg.build.artifacts.Settings` or a
            mapping (None: read from the build's files; ``epochs`` is then unknown).
        backend: the resolved segmenter: a :class:`camseg.build.artifacts.Backend`, a mapping with
            ``name``/``reason``/``requested``, or a name (None: the clean evaluation's key).
        device: the resolved device (None: the clean evaluation's key).
        compresslevel: gzip level (the PNGs and checkpoints hardly compress further).

    Returns:
        ``out_path``.

    Raises:
        BundleError: ``workdir`` holds no finished build, or its evaluations were made by another
            camseg version than the running one (they would not be reused by it either).
    """
    work = Path(workdir)
    out = Path(out_path)
    files = bundle_files(work)
    version = camseg_version()
    key = (_read_json(work / "eval" / "test-clean.json") or {}).get("artifact_key") or {}
    if key.get("camseg_version") != version:
        raise BundleError(f"cannot bundle {work}: its evaluations were made by camseg {key.get('camseg_version')}, "
                          f"this is {version}: run `camseg build` first")
    found_settings, found_backend, found_device = _settings_from_files(work)
    if backend is None:
        backend = found_backend
    elif isinstance(backend, str):
        backend = {"name": backend, "reason": "", "requested": backend}
    elif not isinstance(backend, Mapping):
        backend = {"name": backend.name, "reason": backend.reason, "requested": backend.requested}
    entries = [{"path": rel, "size": (work / rel).stat().st_size, "sha256": file_sha256(work / rel)} for rel in files]
    sources = {rel: work / rel for rel in files}
    if profile is not None:
        profile = Path(profile)
        if not profile.is_file():
            raise BundleError(f"cannot bundle the build profile {profile}: no such file")
        entries.append({"path": PROFILE, "size": profile.stat().st_size, "sha256": file_sha256(profile)})
        sources[PROFILE] = profile
    entries.sort(key=lambda e: e["path"])
    manifest = {
        "format": BUNDLE_FORMAT,
        "camseg_version": version,
        "settings": _settings_json(settings) or found_settings,
        "backend": {k: backend.get(k) for k in ("name", "reason", "requested")},
        "device": device or found_device,
        "artifact_key": key,
        "total_bytes": sum(e["size"] for e in entries),
        "files": entries,
    }
    payload = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                     compresslevel=compresslevel) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tarinfo(MANIFEST, len(payload)), io.BytesIO(payload))
            for entry in entries:
                with open(sources[entry["path"]], "rb") as f:
                    tar.addfile(_tarinfo(entry["path"], entry["size"]), f)
    return out


def bundle_is_current(bundle: str | os.PathLike, workdir: str | os.PathLike) -> bool:
    """Whether the bundle at ``bundle`` already holds exactly what ``workdir`` holds now: made by the
    running camseg version, listing the same files (:func:`bundle_files`) with the same sizes and
    SHA-256 (its build profile aside). False when it is missing or unreadable, or ``workdir`` holds
    no finished build. Reads the manifest only; the archive's members are checked when installed
    (:func:`fetch_bundle`)."""
    try:
        manifest = read_bundle_manifest(bundle)
        files = bundle_files(workdir)
    except (BundleError, OSError):
        return False
    if manifest["camseg_version"] != camseg_version():
        return False
    listed = {e.get("path"): e for e in manifest["files"] if isinstance(e, dict) and e.get("path") != PROFILE}
    if set(listed) != set(files):
        return False
    work = Path(workdir)
    return all((work / rel).stat().st_size == listed[rel].get("size") and file_sha256(work / rel) == listed[rel].get(
        "sha256") for rel in files)


# --------------------------------------------------------------------------
# Reading


def _check_member(member: tarfile.TarInfo, where: str) -> str | None:
    """The member's relative POSIX path, None for a folder entry; refuses anything that could
    land outside the work folder or is not a plain file."""
    name = member.name
    pure = PurePosixPath(name)
    if (not name or name.startswith(("/", "\\")) or "\\" in name or re.match(r"^[A-Za-z]:", name)
            or any(part in ("..", "") for part in name.rstrip("/").split("/")) or pure.is_absolute()):
        raise BundleUnsafeError(f"bundle {where} holds the member {name!r}, outside the work folder; "
                                "expected relative paths without '..': refusing it")
    if member.isdir():
        return None
    if not member.isfile():
        kind = "a link" if (member.issym() or member.islnk()) else "not a plain file"
        raise BundleUnsafeError(f"bundle {where} holds the member {name!r}, which is {kind}; "
                                "expected plain files only: refusing it")
    return pure.as_posix()


def _open_tar(path: Path, where: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:gz")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleCorruptError(f"bundle {where} is not a readable .tar.gz ({type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())}); expected a camseg results bundle") from None


def _parse_manifest(raw: bytes, where: str) -> dict:
    try:
        manifest = json.loads(raw)
    except ValueError:
        manifest = None
    if (not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list)
            or not isinstance(manifest.get("camseg_version"), str)):
        raise BundleCorruptError(f"bundle {where} has an unreadable {MANIFEST}; expected a camseg results bundle")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleCorruptError(f"bundle {where} has format {manifest.get('format')!r}; this camseg reads format "
                                 f"{BUNDLE_FORMAT}")
    return manifest


def read_bundle_manifest(path: str | os.PathLike) -> dict:
    """The ``manifest.json`` of the bundle at ``path``, unverified (to inspect a bundle).

    Raises:
        BundleCorruptError: not a readable bundle.
    """
    path = Path(path)
    with _open_tar(path, str(path)) as tar:
        try:
            member = tar.getmember(MANIFEST)
            raw = tar.extractfile(member).read()
        except (KeyError, AttributeError, tarfile.TarError, OSError, EOFError):
            raise BundleCorruptError(f"bundle {path} has no {MANIFEST}; expected a camseg results bundle") from None
    return _parse_manifest(raw, str(path))


def _hash_spec(known_hash: str | None) -> str | None:
    """``known_hash`` as pooch's ``"sha256:<hex>"`` (a bare hex digest is SHA-256)."""
    if known_hash is None:
        return None
    text = known_hash.strip().lower()
    if ":" not in text:
        text = f"sha256:{text}"
    algo, _, hexdigest = text.partition(":")
    if algo != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexdigest):
        raise BundleError(f"known_hash {known_hash!r} is not a SHA-256 digest; expected 64 hex digits, "
                          "optionally after 'sha256:'")
    return text


def _download(url: str, known_hash: str | None, progress: bool, timeout: float) -> Path:
    """``url`` into ``cache_dir()/bundles`` with :func:`pooch.retrieve` (reused when cached and,
    with ``known_hash``, matching it)."""
    import logging

    import pooch
    import requests

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return Path(pooch.retrieve(url, known_hash=known_hash, path=cache_dir() / "bundles",
                                   downloader=pooch.HTTPDownloader(progressbar=progress, timeout=timeout),
                                   progressbar=progress))
    except ValueError as exc:  # pooch: the download does not match known_hash (and was deleted)
        raise BundleCorruptError(f"bundle {url} does not match its known hash {known_hash} "
                                 f"({' '.join(str(exc).split())[:200]}); it was deleted") from None
    except (requests.RequestException, OSError) as exc:
        raise BundleError(f"cannot download bundle {url} ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:200]}); expected a reachable URL or a local file") from None
    finally:
        logger.setLevel(level)


def _read_chunk(src, where: str, rel: str) -> bytes:
    """The next MiB of a member; a damaged gzip stream or tar is a corrupt bundle, other
    errors (a full disk) are what they are."""
    try:
        return src.read(1 << 20)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleCorruptError(f"bundle {where} is truncated or corrupt at {rel} ({type(exc).__name__})") from None


def _same_file(path: Path, size: int, sha256: str) -> bool:
    try:
        return path.is_file() and not path.is_symlink() and path.stat().st_size == size and file_sha256(path) == sha256
    except OSError:
        return False


def _dataset_root(rel: str) -> str | None:
    """``data`` or ``shift/<name>`` for a file of a dataset folder (installed as one unit), else None."""
    match = _DATASET_ROOTS.match(rel)
    return match.group(1) if match else None


def _plan(work: Path, entries: dict[str, dict], where: str, overwrite: bool) -> tuple[list[str], list[str]]:
    """What to move into ``work``: dataset folders (whole) and single files, each missing there or
    differing from the bundle. A differing one is refused unless ``overwrite``."""
    units: dict[str, list[str]] = {}
    for rel in entries:
        root = _dataset_root(rel)
        units.setdefault(root or rel, []).append(rel)
    move, conflicts = [], []
    for unit, members in sorted(units.items()):
        target = work / unit
        if not target.exists() and not target.is_symlink():
            move.append(unit)
            continue
        if unit in members:  # a single file
            if not _same_file(target, entries[unit]["size"], entries[unit]["sha256"]):
                conflicts.append(unit)
                move.append(unit)
            continue
        # a dataset folder: identical only when it holds exactly the bundle's files, unchanged
        have = set()
        if target.is_dir() and not target.is_symlink():
            for dirpath, dirnames, filenames in os.walk(target):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                have.update((Path(dirpath) / n).relative_to(work).as_posix() for n in filenames
                            if not n.startswith("."))
        same = have == set(members) and all(_same_file(work / rel, entries[rel]["size"], entries[rel]["sha256"])
                                             for rel in members)
        if not same:
            conflicts.append(unit + "/")
            move.append(unit)
    if conflicts and not overwrite:
        more = f" and {len(conflicts) - 1} more" if len(conflicts) > 1 else ""
        raise BundleConflictError(f"bundle {where}: {work / conflicts[0]}{more} already exist with other content; "
                                  "pass overwrite=True (camseg build --overwrite) to replace them with the bundle's, "
                                  "or use another work folder")
    return move, conflicts


def fetch_bundle(source: str | os.PathLike, workdir: str | os.PathLike, known_hash: str | None = None,
                 overwrite: bool = False, progress: bool = False, timeout: float = 60.0) -> BundleInfo:
    """Download (or open) a results bundle, verify it, and install it into ``workdir``.

    Everything is extracted into a temporary folder beside ``workdir`` and checked there (the
    manifest, the camseg version, every file's size and SHA-256, no member outside the folder);
    only then are the files moved into ``workdir``, so a refused bundle leaves it as it was.
    Dataset folders (``data/``, ``shift/<name>/``) are installed whole.

    Args:
        source: an ``http(s)://`` URL (downloaded with :func:`pooch.retrieve` into
            ``cache_dir()/bundles`` and reused from there) or a local ``.tar.gz``.
        workdir: the work folder (created if missing).
        known_hash: the archive's SHA-256 (``"sha256:<hex>"`` or ``"<hex>"``), checked when given.
        overwrite: replace files (and dataset folders) of ``workdir`` that differ from the
            bundle's; False refuses. Files already there and identical are always fine.
        progress: show a download progress bar.
        timeout: seconds to wait for the server.

    Returns:
        :class:`BundleInfo`.

    Raises:
        BundleError: the source is missing or unreachable (a ``ValueError``, as are the others).
        BundleCorruptError: not a readable bundle, or a file differs from its manifest.
        BundleVersionError: the bundle was made by another camseg version.
        BundleUnsafeError: a member would land outside the work folder.
        BundleConflictError: the work folder holds other content at a path of the bundle.

    Each message is one line naming the bundle.
    """
    where = str(source)
    spec = _hash_spec(known_hash)
    if is_url(where):
        path = _download(where, spec, progress, timeout)
    else:
        path = Path(source)
        if not path.is_file():
            raise BundleError(f"bundle {path} does not exist; expected a {BUNDLE_NAME} file or an http(s):// URL")
    archive_sha = file_sha256(path)  # once: the known hash of a local file is checked against it
    if not is_url(where) and spec is not None and archive_sha != spec.split(":", 1)[1]:
        raise BundleCorruptError(f"bundle {path} does not match its known hash {known_hash}: refusing it")
    work = Path(workdir)
    work.parent.mkdir(parents=True, exist_ok=True)
    with _open_tar(path, where) as tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BundleCorruptError(f"bundle {where} is truncated or corrupt ({type(exc).__name__}: "
                                     f"{' '.join(str(exc).split())})") from None
        files: dict[str, tarfile.TarInfo] = {}
        for member in members:
            rel = _check_member(member, where)
            if rel is None:
                continue
            if rel in files:
                raise BundleCorruptError(f"bundle {where} holds {rel!r} twice; expected each file once")
            files[rel] = member
        if MANIFEST not in files:
            raise BundleCorruptError(f"bundle {where} has no {MANIFEST}; expected a camseg results bundle")
        manifest = _parse_manifest(tar.extractfile(files.pop(MANIFEST)).read(), where)
        running = camseg_version()
        if manifest["camseg_version"] != running:
            raise BundleVersionError(f"bundle {where} was made by camseg {manifest['camseg_version']}, this is "
                                     f"{running}: rebuild it or install that version")
        entries: dict[str, dict] = {}
        for entry in manifest["files"]:
            rel = entry.get("path") if isinstance(entry, dict) else None
            if not isinstance(rel, str):
                raise BundleCorruptError(f"bundle {where} has an unreadable {MANIFEST} entry {entry!r}")
            _check_member(tarfile.TarInfo(rel), where)  # the manifest's own paths must be safe too
            entries[rel] = entry
        if set(entries) != set(files):
            extra, missing = sorted(set(files) - set(entries)), sorted(set(entries) - set(files))
            raise BundleCorruptError(
                f"bundle {where} does not hold what its {MANIFEST} lists"
                + (f"; missing {', '.join(missing[:3])}" if missing else "")
                + (f"; unlisted {', '.join(extra[:3])}" if extra else ""))
        installable = {rel: e for rel, e in entries.items() if not rel.startswith("_build/")}
        move, _ = _plan(work, installable, where, overwrite)  # before minutes of extraction
        tmp = Path(tempfile.mkdtemp(prefix=f".{work.name}.bundle-{owner_tag()}.", dir=work.parent))
        trash = None
        try:
            profile = None
            for member in members:  # archive order: one pass over the gzip stream
                rel = member.name if member.isfile() else None
                if rel is None or rel == MANIFEST:
                    continue
                rel = PurePosixPath(rel).as_posix()
                entry = entries[rel]
                digest, size = hashlib.sha256(), 0
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with tar.extractfile(member) as src, open(dest, "wb") as out:
                        while chunk := _read_chunk(src, where, rel):
                            digest.update(chunk)
                            size += len(chunk)
                            out.write(chunk)
                except KeyError:  # pragma: no cover - members come from this archive
                    raise BundleCorruptError(f"bundle {where} lost {rel} while reading it") from None
                if size != entry.get("size") or digest.hexdigest() != entry.get("sha256"):
                    raise BundleCorruptError(f"bundle {where}: {rel} differs from its {MANIFEST} ({size} bytes, "
                                             f"SHA-256 {digest.hexdigest()[:12]}..., expected {entry.get('size')} "
                                             f"bytes, {str(entry.get('sha256'))[:12]}...): refusing the bundle")
                if rel == PROFILE:
                    profile = _read_json(dest)
            # Everything verified: move it into place, each dataset folder as one rename.
            now = time.time()
            for dirpath, _, filenames in os.walk(tmp):
                for name in filenames:
                    os.utime(Path(dirpath) / name, (now, now))  # one stamp: the datasets verify fast
            work.mkdir(parents=True, exist_ok=True)
            for unit in move:
                src, dst = tmp / unit, work / unit
                dst.parent.mkdir(parents=True, exist_ok=True)
                if dst.exists() or dst.is_symlink():  # overwrite=True: the old copy goes, after the new one is whole
                    trash = trash or Path(tempfile.mkdtemp(prefix=f".{work.name}.replaced-{owner_tag()}.",
                                                           dir=work.parent))
                    os.replace(dst, trash / unit.replace("/", "__"))
                os.replace(src, dst)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if trash is not None:
                shutil.rmtree(trash, ignore_errors=True)
    installed = sum(1 for rel in installable if any(rel == u or rel.startswith(u + "/") for u in move))
    info = BundleInfo(path=path, workdir=work, version=manifest["camseg_version"], files=tuple(sorted(installable)),
                      settings=MappingProxyType(dict(manifest.get("settings") or {})),
                      backend=MappingProxyType(dict(manifest.get("backend") or {})),
                      device=str(manifest.get("device") or "cpu"),
                      profile=MappingProxyType(profile) if profile is not None else None, installed=installed,
                      sha256=archive_sha, size=path.stat().st_size)
    write_atomic(work / INSTALLED, (json.dumps(installed_record(info), indent=2) + "\n").encode())
    return info


def bundle_env(info: BundleInfo | Mapping, keep: Iterable[str] = ()) -> dict[str, str]:
    """The environment variables that make :meth:`camseg.build.artifacts.Settings.from_env` (and
    the book's chapters) ask for what the bundle was built with: ``$CAMSEG_ARCH``,
    ``$CAMSEG_SIZES``, ``$CAMSEG_EPOCHS``, ``$CAMSEG_SEEDS``, ``$CAMSEG_SUITE_SIZE``, and the
    resolved ``$CAMSEG_SEGMENTER`` (with ``$CAMSEG_SEGMENTER_REASON``) and ``$CAMSEG_DEVICE``.
    Names in ``keep`` are left out (the caller sets them otherwise). ``info`` may also be the
    record of an installed bundle (:func:`installed_bundle`)."""
    record = installed_record(info) if isinstance(info, BundleInfo) else info
    s, b = record.get("settings") or {}, record.get("backend") or {}
    env = {}
    if s.get("arch"):
        env["CAMSEG_ARCH"] = str(s["arch"])
    if isinstance(s.get("sizes"), Mapping):
        env["CAMSEG_SIZES"] = ",".join(f"{k}={int(v)}" for k, v in s["sizes"].items())
    if s.get("epochs") is not None:
        env["CAMSEG_EPOCHS"] = str(int(s["epochs"]))
    if s.get("seeds") is not None:
        env["CAMSEG_SEEDS"] = str(int(s["seeds"]))
    if s.get("suite_size") is not None:
        env["CAMSEG_SUITE_SIZE"] = str(int(s["suite_size"]))
    if b.get("name"):
        env["CAMSEG_SEGMENTER"] = str(b["name"])
        env["CAMSEG_SEGMENTER_REASON"] = ("the results bundle was built with it" +
                                          (f"; there: {b['reason']}" if b.get("reason") else ""))
    if record.get("device"):
        env["CAMSEG_DEVICE"] = str(record["device"])
    return {k: v for k, v in env.items() if k not in set(keep)}


def installed_record(info: BundleInfo) -> dict:
    """The JSON of :data:`INSTALLED` for ``info``: ``version``, ``sha256``, ``settings``, ``backend``
    (``name``, ``reason``, ``requested``) and ``device`` of the build the bundle holds."""
    return {"version": info.version, "sha256": info.sha256, "settings": dict(info.settings),
            "backend": dict(info.backend), "device": info.device}


def installed_bundle(workdir: str | os.PathLike) -> dict | None:
    """The record (:func:`installed_record`) of the bundle installed into ``workdir``, or None when
    none was, or when it came from another camseg version (its results are then not current)."""
    record = _read_json(Path(workdir) / INSTALLED)
    if not record or record.get("version") != camseg_version():
        return None
    return record
