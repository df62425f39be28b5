"""The synthetic shapes dataset: one solid shape on a CIFAR-10 background.

Contract (book: Reference › Data): RGB images of 64 x 48 pixels (W x H); five classes
:data:`~camseg.data.shapes.CLASSES` in that index order; splits of 3500/1000/500 images; each
sample ``(image, label, mask)`` with ``mask`` a boolean array (H, W) that is
True on the shape. On disk::

    ROOT/images/{split}/NAME.png   RGB image
    ROOT/masks/{split}/NAME.png    non-zero on the shape
    ROOT/labels/{split}/NAME.txt   the class name

Images, masks and labels pair by file stem. :func:`build_dataset` writes this
layout deterministically from a seed; :class:`ShapesDataset` loads any folder
written this way.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from camseg.data.cifar import Cifar10Source, resolve_cifar10
from camseg.data.shapes import CLASSES, IMAGE_SIZE, render_sample, sample_shape
from camseg.utils.paths import apply_umask, held_lock, owner_is_gone, owner_tag

SPLITS: dict[str, int] = {"train": 3500, "val": 1000, "test": 500}
"""Default number of images per split."""

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

MANIFEST = "dataset.json"


# --------------------------------------------------------------------------
# Building the dataset on disk


def _split_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    return labels


def background_indices(source: Cifar10Source, split: str, n: int, seed: int,
                       sizes: Mapping[str, int] = SPLITS) -> tuple[np.ndarray, bool]:
    """Which CIFAR-10 images are the backgrounds of a split: ``(indices (n,), from_train)``.

    Train and val take disjoint runs of one seeded permutation of CIFAR-10's
    train images (train first, val after ``sizes["train"]``); test takes a
    permutation of its test images. ``split="rest"`` gives the train images
    after train and val (``n`` of them), free for other uses (e.g. fresh
    training shapes) without touching val's backgrounds.
    """
    if split not in ("train", "val", "test", "rest"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    pool_rng = np.random.default_rng([seed, 0])
    train_pool = pool_rng.permutation(source.count(True))
    test_pool = pool_rng.permutation(source.count(False))
    if split == "train":
        indices, from_train = train_pool[:n], True
    elif split == "val":
        start = sizes.get("train", 0)
        indices, from_train = train_pool[start:start + n], True
    elif split == "rest":
        start = sizes.get("train", 0) + sizes.get("val", 0)
        indices, from_train = train_pool[start:start + n], True
    else:
        indices, from_train = test_pool[:n], False
    if len(indices) < n:
        raise ValueError(f"CIFAR-10 has too few images for {n} {split} samples")
    return indices, from_train


def generate_split(
    source: Cifar10Source, split: str, n: int, seed: int, size: tuple[int, int] = IMAGE_SIZE,
    sizes: Mapping[str, int] = SPLITS, profile: str = "standard",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate one split in memory.

    Train and val backgrounds are disjoint draws from CIFAR-10's train images,
    test backgrounds come from its test images (:func:`background_indices`).
    Classes are balanced. ``profile``: ``"standard"`` (the published
    generator, :func:`~camseg.data.shapes.sample_shape`) or a distribution of
    :mod:`camseg.data.profiles` (``"wide"``, ``"plain"``, ``"small"``, ...).

    Returns:
        ``(images, masks, labels)``: uint8 (n, H, W, 3), bool (n, H, W), int64 (n,).
    """
    indices, from_train = background_indices(source, split, n, seed, sizes)
    backgrounds = source.load(from_train, indices)
    rng = np.random.default_rng([seed, 1 + ("train", "val", "test").index(split)])
    labels = _split_labels(rng, n)
    if profile != "standard":
        from camseg.data.profiles import profile as get_profile
        from camseg.data.profiles import sample_images

        images, masks = sample_images(rng, backgrounds, labels, get_profile(profile), size)
        return images, masks, labels.astype(np.int64)
    w, h = size
    images = np.empty((n, h, w, 3), dtype=np.uint8)
    masks = np.empty((n, h, w), dtype=bool)
    for i in range(n):
        spec = sample_shape(rng, int(labels[i]), size)
        images[i], masks[i] = render_sample(backgrounds[i], spec, size)
    return images, masks, labels.astype(np.int64)


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


SETTINGS_KEYS: tuple[str, ...] = ("seed", "sizes", "image_size", "classes")
"""Manifest keys that say how a dataset was built; with the background order and the CIFAR-10
source (when one is asked for), equal settings give the same dataset."""

KINDS: dict[str, str] = {"images": ".png", "masks": ".png", "labels": ".txt"}
"""Sub-folders of a dataset and the suffix of their files."""


def lock_path(out: str | os.PathLike) -> Path:
    """The lock file that guards building ``out``: ``.<name>.lock`` beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.lock"


class _FolderDigest:
    """Count, bytes and SHA-256 of one folder's files, fed in sorted name order."""

    def __init__(self) -> None:
        self.count, self.bytes, self._h = 0, 0, hashlib.sha256()

    def add(self, name: str, data: bytes) -> None:
        self.count += 1
        self.bytes += len(data)
        self._h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())

    def as_dict(self) -> dict:
        return {"count": self.count, "bytes": self.bytes, "sha256": self._h.hexdigest()}


def verify_dataset(root: str | os.PathLike, full: bool | None = None) -> dict:
    """Check a built dataset against its manifest.

    Every split of the manifest must hold exactly the files ``00000`` ..
    ``n-1`` in ``images/``, ``masks/`` and ``labels/``; a format-2 manifest
    also records each folder's total size and a SHA-256 over names and
    contents: the sizes are always checked, the contents with ``full``.

    Args:
        root: the dataset folder.
        full: True: hash every file (seconds for the default 5000 images on a
            busy machine); False: names and sizes only; None (default): hash
            the folders holding a file modified after the manifest was
            written (a build writes the manifest last, so an untouched
            dataset is checked by names and sizes, an edited one by content).

    Returns:
        The manifest.

    Raises:
        DatasetError: no readable manifest, or what differs (missing, extra,
            changed files), naming the folder.
    """
    root = Path(root)
    manifest = read_manifest(root)
    if manifest is None or not isinstance(manifest.get("sizes"), dict):
        raise DatasetError(f"{root} has no readable {MANIFEST}: not a complete camseg dataset")
    written = (root / MANIFEST).stat().st_mtime
    recorded = manifest.get("files") or {}
    for split, n in manifest["sizes"].items():
        for kind, suffix in KINDS.items():
            folder = root / kind / split
            want = {f"{i:05d}{suffix}" for i in range(int(n))}
            try:
                entries = {e.name: e for e in os.scandir(folder)}
            except FileNotFoundError:
                entries = {}
                if n:
                    raise DatasetError(f"{folder} is missing; {MANIFEST} lists {n} files there") from None
            have = set(entries)
            if have != want:
                missing, extra = sorted(want - have), sorted(have - want)
                raise DatasetError(
                    f"{folder} holds {len(have & want)} of the {n} files {MANIFEST} lists"
                    + (f"; missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}" if missing else "")
                    + (f"; unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}" if extra else "")
                )
            rec = recorded.get(f"{kind}/{split}")
            if rec is None:
                continue
            names = sorted(want)
            stats = [entries[name].stat() for name in names]
            size = sum(st.st_size for st in stats)
            if size != rec["bytes"]:
                raise DatasetError(f"{folder} holds {size} bytes, {MANIFEST} records {rec['bytes']}: files changed")
            if full or (full is None and any(st.st_mtime > written for st in stats)):
                digest = _FolderDigest()
                for name in names:
                    digest.add(name, (folder / name).read_bytes())
                if digest.as_dict()["sha256"] != rec["sha256"]:
                    raise DatasetError(f"the contents of {folder} differ from what {MANIFEST} records: files changed")
    return manifest


def _remove_dead_leftovers(out: Path) -> None:
    """Remove ``.<name>.partial-*`` / ``.<name>.old-*`` folders whose owner process is gone.

    Called with the build lock held, so no other camseg build of ``out`` is
    running; a folder without an owner tag (an older camseg) is removed only
    once it is stale (:func:`camseg.utils.paths.owner_is_gone`)."""
    now = time.time()
    for pattern in (f".{glob.escape(out.name)}.partial-*", f".{glob.escape(out.name)}.old-*"):
        for left in out.parent.glob(pattern):
            try:
                age = now - left.stat().st_mtime
            except FileNotFoundError:
                continue
            if owner_is_gone(left.name, age):
                shutil.rmtree(left, ignore_errors=True)


def _build_lock(out: Path, timeout: float | None, log: Callable[[str], None]):
    """The lock that lets one process at a time build ``out`` (:func:`camseg.utils.paths.held_lock`)."""
    return held_lock(lock_path(out), str(out), log, timeout, doing="building")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build_dataset(
    out: str | os.PathLike,
    seed: int = 0,
    cifar10: str | os.PathLike | Cifar10Source | None = None,
    sizes: Mapping[str, int] = SPLITS,
    overwrite: bool = False,
    progress: bool = True,
    lock_timeout: float | None = None,
    log: Callable[[str], None] | None = None,
    profile: str = "standard",
) -> Path:
    """Generate the shapes dataset and write it to ``out`` atomically.

    Everything is written into a temporary sibling folder which is renamed to
    ``out`` only when complete and verified, so an interrupted build never
    leaves a folder that would load. The same seed, sizes and CIFAR-10 source
    give byte-identical files; the two CIFAR-10 sources give the same photos
    (:mod:`camseg.data.cifar`), differing only by the copy's JPEG compression. The
    manifest records the source. An existing dataset built with the same
    settings is verified and returned before any CIFAR-10 source is looked for.

    Concurrent builds of one ``out`` cannot corrupt each other: a build holds a
    lock (``.<name>.lock`` beside ``out``, the ``filelock`` package) from the
    check to the publication; a second build waits for it and then finds the
    finished dataset. Temporary folders are removed only when their owner
    process is gone. The manifest (``dataset.json``) records each folder's file
    count, size and content digest; the result is verified against it
    (:func:`verify_dataset`) before this returns, and an existing dataset is
    verified before it is reused (one that fails is rebuilt).

    Args:
        out: destination folder (the dataset layout, book: Reference › Data).
        seed: random seed.
        cifar10: a path (see :func:`camseg.data.cifar.resolve_cifar10`), a source,
            or None to autodetect.
        sizes: images per split, e.g. ``{"train": 3500, "val": 1000, "test": 500}``.
        overwrite: replace an existing camseg dataset built otherwise. Only a
            folder with a camseg manifest, or an empty folder, is ever replaced.
        progress: show a progress bar (and, with ``log`` None, messages on stderr).
        lock_timeout: seconds to wait for another build of ``out`` (None: as long as it takes).
        log: called with a line when something noteworthy happens (waiting for
            a lock, rebuilding a dataset that failed verification).
        profile: ``"standard"`` (the published dataset) or a named
            distribution of :mod:`camseg.data.profiles`: ``"wide"`` or a shift-suite
            profile (``"plain"``, ``"small"``, ``"lowcontrast"``, ``"border"``,
            ``"lowcontrast_border"``, ``"jpeg95"``, ``"jpeg90"``, ``"jpeg75"``, ``"jpeg50"``, ``"noise"``,
            ``"distractor"``), usually with ``sizes={"test": n}``: test
            backgrounds always come from CIFAR-10's test images. The manifest
            records it (only when not standard).

    Returns:
        The path of the dataset.

    Raises:
        FileExistsError: ``out`` is a file, a folder that is not a camseg
            dataset and not empty (never replaced), or a dataset built with
            other settings and ``overwrite`` is False.
        DatasetError: the dataset written fails verification.
        TimeoutError: another build held the lock for ``lock_timeout`` seconds.
    """
    out = Path(out)
    sizes = dict(sizes)
    for split, n in sizes.items():
        if split not in ("train", "val", "test") or not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"sizes must map 'train'/'val'/'test' to counts >= 0, got {sizes!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    log = log if log is not None else (_stderr if progress else (lambda line: None))
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a dataset folder; choose another destination")
    if profile != "standard":
        from camseg.data.profiles import profile as get_profile

        get_profile(profile)  # a ValueError naming the profiles
    settings = {"seed": int(seed), "sizes": sizes, "image_size": list(IMAGE_SIZE), "classes": list(CLASSES)}
    wanted_source = _source_name(cifar10)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(out, lock_timeout, log):
        _remove_dead_leftovers(out)
        if out.exists():
            if not out.is_dir():
                raise FileExistsError(f"{out} is a file, not a dataset folder; choose another destination")
            existing = read_manifest(out)
            if existing is None and any(out.iterdir()):
                raise FileExistsError(
                    f"{out} exists and is not a camseg dataset (no readable {MANIFEST}); camseg replaces only its own "
                    "datasets or an empty folder, even with --overwrite: choose another destination"
                )
            if existing is not None and not overwrite:
                if ({k: existing.get(k) for k in SETTINGS_KEYS} != settings
                        or existing.get("profile", "standard") != profile
                        or _backgrounds_of(existing) != BACKGROUND_ORDER
                        or wanted_source not in (None, existing.get("cifar10_source"))):
                    raise FileExistsError(
                        f"{out} exists and was not built with these settings (seed={seed}, sizes={sizes}"
                        + (f", CIFAR-10 source {wanted_source}" if wanted_source else "")
                        + f"; it has seed={existing.get('seed')}, sizes={existing.get('sizes')}); "
                        "pass overwrite=True (--overwrite) to replace it"
                    )
                try:
                    verify_dataset(out)  # names and sizes; contents where files changed after the build
                    return out
                except DatasetError as exc:
                    log(f"{out} fails verification ({exc}); rebuilding it")
        source = cifar10 if (cifar10 is not None and not isinstance(cifar10, (str, os.PathLike))) \
            else resolve_cifar10(cifar10)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{owner_tag()}.", dir=out.parent))
        apply_umask(tmp, directory=True)
        try:
            files = {}
            total = sum(sizes.values())
            with tqdm(total=total, desc=f"building {out.name}", unit="img", disable=not progress) as bar:
                for split, n in sizes.items():
                    images, masks, labels = generate_split(source, split, n, seed, sizes=sizes, profile=profile)
                    digests = {kind: _FolderDigest() for kind in KINDS}
                    for kind in KINDS:
                        (tmp / kind / split).mkdir(parents=True)
                    for i in range(n):
                        stem = f"{i:05d}"
                        for kind, data in (("images", _png_bytes(images[i])),
                                           ("masks", _png_bytes(masks[i].astype(np.uint8) * 255)),
                                           ("labels", (CLASSES[labels[i]] + "\n").encode())):
                            name = stem + KINDS[kind]
                            (tmp / kind / split / name).write_bytes(data)
                            digests[kind].add(name, data)
                        bar.update(1)
                    files.update({f"{kind}/{split}": d.as_dict() for kind, d in digests.items()})
            manifest = {"format": 2, **settings, "cifar10_source": source.name, "backgrounds": BACKGROUND_ORDER,
                        "files": files}
            if profile != "standard":
                manifest["profile"] = profile
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            verify_dataset(tmp, full=True)  # never publish a broken folder
            if out.exists():
                trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{owner_tag()}.", dir=out.parent))
                os.replace(out, trash / out.name)
                os.replace(tmp, out)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        verify_dataset(out, full=False)  # what was published is what the manifest lists
    return out


BACKGROUND_ORDER = "cifar10 by class, then index within class in the official batches"
"""How backgrounds are drawn, as the manifest records it. Both CIFAR-10 sources index images this
way (:mod:`camseg.data.cifar`), so they give the same dataset."""


def _backgrounds_of(manifest: dict) -> str | None:
    """The background order a manifest was built with. Manifests written before it was recorded
    used the tar copy's sorted names, which is this order, or the batches' raw order."""
    if "backgrounds" in manifest:
        return manifest["backgrounds"]
    return BACKGROUND_ORDER if manifest.get("cifar10_source") == "tar" else "cifar10 official batch order"


def _source_name(cifar10: object) -> str | None:
    """The kind of an explicitly given source ("tar" or "torchvision") without loading it, or None."""
    if cifar10 is None:
        return None
    if not isinstance(cifar10, (str, os.PathLike)):
        return getattr(cifar10, "name", None)
    path = Path(cifar10)
    if (path / "train.tar").is_file():
        return "tar"
    return "torchvision" if (path / "cifar-10-batches-py").is_dir() else None


def read_manifest(root: str | os.PathLike) -> dict | None:
    """The build settings stored with a generated dataset, or None."""
    path = Path(root) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------
# Degradation (robustness checks)


def degrade(images: np.ndarray, quality: int = 90, noise_std: float = 3.0, seed: int = 0) -> np.ndarray:
    """Mildly degrade images: Gaussian noise, then a JPEG re-encode.

    Every method is also measured on the test split degraded this way, so that
    no result rests on the shapes' perfectly flat colours.

    Args:
        images: uint8 (N, H, W, 3) RGB.
        quality: JPEG quality (1..95).
        noise_std: standard deviation of the additive Gaussian noise, in grey levels.
        seed: seed of the noise.

    Returns:
        uint8 (N, H, W, 3) RGB, the same shape.
    """
    import io

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3) RGB, got {images.dtype} {images.shape}")
    if not 1 <= quality <= 95:
        raise ValueError(f"quality must be in 1..95, got {quality}")
    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        noisy = image.astype(np.float32) + rng.normal(0.0, noise_std, image.shape).astype(np.float32)
        noisy = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(noisy).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        out[i] = np.array(Image.open(buf).convert("RGB"))
    return out


# --------------------------------------------------------------------------
# Loading


def default_transform() -> Callable[[np.ndarray], torch.Tensor]:
    """The default transform (book: Reference › Conventions):
    ``ToImage -> float32 in [0, 1] -> Normalize(ImageNet mean, std)``.

    Takes a uint8 (H, W, 3) RGB array or PIL image; returns float32 (3, H, W).
    """
    from torchvision.transforms import v2

    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def normalize(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Batch version of :func:`default_transform`.

    Args:
        images: uint8 (B, H, W, 3) RGB (array or tensor).

    Returns:
        float32 (B, 3, H, W), normalised with the ImageNet mean and std.
    """
    t = torch.as_tensor(np.asarray(images))
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (B, H, W, 3) RGB, got {t.dtype} {tuple(t.shape)}")
    x = t.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


NORMALIZED_RANGE: tuple[float, float] = (
    min((0.0 - m) / sd for m, sd in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)),
    max((1.0 - m) / sd for m, sd in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)),
)
"""The values :func:`normalize` can produce, about (-2.118, 2.640)."""


def check_normalized(images: object, name: str = "images") -> torch.Tensor:
    """Check that ``images`` is a batch as :func:`normalize` makes it.

    Expected: a float tensor (B, 3, H, W), B >= 1, finite, with values in
    :data:`NORMALIZED_RANGE` (ImageNet mean/std normalisation of 0..255
    pixels). Raw 0..255 pixels and unnormalised [0, 1] pixels are recognised
    and named in the error.

    Returns:
        ``images`` unchanged.

    Raises:
        ValueError: what is wrong and what was expected.
    """
    hint = "; make it with camseg.data.dataset.normalize(uint8 images (B, H, W, 3))"
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (B, 3, H, W), got {type(images).__name__}{hint}")
    shape = tuple(images.shape)
    if images.ndim != 4 or shape[1] != 3:
        extra = " (channels last? permute(0, 3, 1, 2))" if images.ndim == 4 and shape[-1] == 3 else ""
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {shape}{extra}{hint}")
    if shape[0] == 0 or shape[2] == 0 or shape[3] == 0:
        raise ValueError(f"{name} is empty: shape {shape}; give at least one image of at least 1 x 1 pixels")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be a normalised float tensor, got dtype {images.dtype}{hint}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    low, high = NORMALIZED_RANGE
    if lo < low - 0.01 or hi > high + 0.01:
        what = " (they look like raw 0..255 pixel values)" if hi > 10 else ""
        raise ValueError(f"{name} values span [{lo:.3g}, {hi:.3g}], outside the normalised range "
                         f"[{low:.3f}, {high:.3f}]{what}{hint}")
    if lo >= 0.0 and hi <= 1.0 and hi - lo > 0.05:
        raise ValueError(f"{name} values all lie in [0, 1] ([{lo:.3g}, {hi:.3g}]): they look like pixel values "
                         f"that were not normalised (mean/std){hint}")
    return images


def denormalize(images: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`normalize`: float (B, 3, H, W) -> uint8 (B, H, W, 3) RGB."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be a tensor (B, 3, H, W), got {getattr(images, 'shape', type(images))}")
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    x = (images.detach().float() * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


class DatasetError(ValueError):
    """A dataset folder does not follow the dataset layout (book: Reference › Data)."""


def _open_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from exc


def _open_mask(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.array(im.convert("L")) > 0
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"cannot read mask {path}: {exc}") from exc


class ShapesDataset(Dataset):
    """A split of a dataset in the dataset layout (book: Reference › Data).

    Items are ``(image, label, mask)``: ``image`` after ``transform`` (default
    :func:`default_transform`: float32 (3, H, W), ImageNet-normalised),
    ``label`` an int in 0..4, ``mask`` a bool array (H, W), True on the shape.

    The folder is checked when the dataset is made: every image needs a mask
    and a label with the same stem, labels must name a class of
    :data:`~camseg.data.shapes.CLASSES`, and each mask must have its image's size.

    Args:
        root: dataset folder.
        split: ``"train"``, ``"val"`` or ``"test"`` (any sub-folder name works).
        transform: applied to the uint8 (H, W, 3) RGB image; None for the default.

    Raises:
        DatasetError: a missing split, unpaired files, an unknown class name,
            an unreadable file or a mask whose size differs from its image;
            the message names the files.

    Example:
        >>> ds = ShapesDataset("artifacts/data", "test")  # doctest: +SKIP
        >>> image, label, mask = ds[0]  # doctest: +SKIP
    """

    _transform: Callable[[np.ndarray], torch.Tensor] | None

    @property
    def transform(self) -> Callable[[np.ndarray], torch.Tensor]:
        """The transform applied to each image (``transform`` given, else :func:`default_transform`)."""
        if self._transform is None:
            self._transform = default_transform()
        return self._transform

    @transform.setter
    def transform(self, value: Callable[[np.ndarray], torch.Tensor] | None) -> None:
        self._transform = value

    def __init__(self, root: str | os.PathLike, split: str = "train",
                 transform: Callable[[np.ndarray], torch.Tensor] | None = None) -> None:
        self.root = Path(root)
        self.split = split
        self._transform = transform  # None: the default, made when first used (it imports torchvision: ~1 s)
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder {self.root} does not exist")
        dirs = {kind: self.root / kind / split for kind in ("images", "masks", "labels")}
        missing = [str(d) for d in dirs.values() if not d.is_dir()]
        if missing:
            raise DatasetError(f"split {split!r} is missing in {self.root}: {', '.join(missing)} not found")
        files = {
            "images": {p.stem: p for p in dirs["images"].iterdir() if p.suffix.lower() == ".png"},
            "masks": {p.stem: p for p in dirs["masks"].iterdir() if p.suffix.lower() == ".png"},
            "labels": {p.stem: p for p in dirs["labels"].iterdir() if p.suffix.lower() == ".txt"},
        }
        stems = set().union(*(f.keys() for f in files.values()))
        problems = []
        for stem in sorted(stems):
            have = [k for k in files if stem in files[k]]
            lack = [k for k in files if stem not in files[k]]
            if lack:
                problems.append(
                    f"{', '.join(str(files[k][stem].relative_to(self.root)) for k in have)} has no "
                    + " and no ".join(f"{k[:-1]} ({k}/{split}/{stem}.{'txt' if k == 'labels' else 'png'})"
                                      for k in lack)
                )
        if problems:
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise DatasetError(f"unpaired files in {self.root}: " + "; ".join(problems[:10]) + more)
        if not stems:
            raise DatasetError(f"split {split!r} in {self.root} holds no images")
        self.stems = sorted(stems)
        self.image_paths = [files["images"][s] for s in self.stems]
        self.mask_paths = [files["masks"][s] for s in self.stems]
        self.labels = []
        for s in self.stems:
            name = files["labels"][s].read_text().strip()
            if name not in CLASSES:
                raise DatasetError(
                    f"{files['labels'][s]}: unknown class name {name!r}; expected one of {', '.join(CLASSES)}"
                )
            self.labels.append(CLASSES.index(name))
        for ip, mp in zip(self.image_paths, self.mask_paths, strict=True):
            isize, msize = _png_size(ip), _png_size(mp)
            if isize != msize:
                raise DatasetError(
                    f"mask {mp} is {msize[0]}x{msize[1]} but its image {ip} is {isize[0]}x{isize[1]} (W x H)"
                )

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, np.ndarray]:
        image = _open_rgb(self.image_paths[index])
        mask = _open_mask(self.mask_paths[index])
        return self.transform(image), self.labels[index], mask

    def arrays(self, progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The whole split in memory, untransformed.

        Returns:
            ``(images, labels, masks)``: uint8 (N, H, W, 3) RGB, int64 (N,),
            bool (N, H, W). All images must share one size.
        """
        imgs = [_open_rgb(p) for p in tqdm(self.image_paths, desc=f"loading {self.split}", disable=not progress)]
        shapes = {im.shape for im in imgs}
        if len(shapes) != 1:
            raise DatasetError(f"images in {self.root}/images/{self.split} differ in size: {sorted(shapes)}")
        masks = np.stack([_open_mask(p) for p in self.mask_paths])
        return np.stack(imgs), np.asarray(self.labels, dtype=np.int64), masks


def _png_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
