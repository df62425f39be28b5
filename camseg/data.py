"""The synthetic shapes dataset: one solid shape on a CIFAR-10 background.

Contract (SPEC section 1): RGB images of 64 x 48 pixels (W x H); five classes
:data:`CLASSES` in that index order; splits of 3500/1000/500 images; each
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

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, UnidentifiedImageError
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from camseg.cifar import Cifar10Source, resolve_cifar10

CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond")
"""Class names in index order."""

IMAGE_SIZE: tuple[int, int] = (64, 48)
"""(W, H) of the generated images."""

SPLITS: dict[str, int] = {"train": 3500, "val": 1000, "test": 500}
"""Default number of images per split."""

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

SQUARE_TILT_DEG = 10.0
"""Squares turn at most this much from upright, diamonds at most this much
from 45 degrees, so the two classes never overlap (25 degrees apart)."""

MANIFEST = "dataset.json"


# --------------------------------------------------------------------------
# Drawing


@dataclass(frozen=True)
class ShapeSpec:
    """One shape: class, centre (x, y) in pixels, circumradius, rotation and colour."""

    label: int
    center: tuple[float, float]
    radius: float
    angle_deg: float
    color: tuple[int, int, int]


def shape_polygon(spec: ShapeSpec) -> list[tuple[float, float]]:
    """Vertices (x, y) of a polygonal shape (square, triangle, star, diamond)."""
    name = CLASSES[spec.label]
    cx, cy = spec.center
    r = spec.radius
    if name in ("square", "diamond"):
        base = [45.0, 135.0, 225.0, 315.0] if name == "square" else [0.0, 90.0, 180.0, 270.0]
        pts = [(r, b) for b in base]
    elif name == "triangle":
        pts = [(r, -90.0 + 120.0 * k) for k in range(3)]
    elif name == "star":
        pts = [(r if k % 2 == 0 else 0.45 * r, -90.0 + 36.0 * k) for k in range(10)]
    else:
        raise ValueError(f"{name!r} is not a polygon")
    out = []
    for rad, deg in pts:
        a = math.radians(deg + spec.angle_deg)
        out.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return out


def draw_mask(spec: ShapeSpec, size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """The shape's exact mask, bool (H, W), drawn without anti-aliasing."""
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    if CLASSES[spec.label] == "circle":
        cx, cy = spec.center
        r = spec.radius
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        draw.polygon(shape_polygon(spec), fill=255)
    return np.asarray(canvas) > 0


def sample_shape(rng: np.random.Generator, label: int, size: tuple[int, int] = IMAGE_SIZE) -> ShapeSpec:
    """Draw a random shape of class ``label`` that fits inside an image of ``size`` (W, H)."""
    w, h = size
    name = CLASSES[label]
    radius = float(rng.uniform(0.17, 0.32) * h)  # 8..15 px at H = 48
    if name == "circle":
        radius *= 0.85  # similar area to the polygons
    margin = radius + 1.0
    center = (float(rng.uniform(margin, w - 1 - margin)), float(rng.uniform(margin, h - 1 - margin)))
    if name in ("square", "diamond"):
        angle = float(rng.uniform(-SQUARE_TILT_DEG, SQUARE_TILT_DEG))
    elif name == "circle":
        angle = 0.0
    else:
        angle = float(rng.uniform(0.0, 360.0))
    hue, sat, val = rng.uniform(0, 1), rng.uniform(0.45, 1.0), rng.uniform(0.45, 1.0)
    rgb = _hsv_to_rgb(hue, sat, val)
    return ShapeSpec(label, center, radius, angle, rgb)


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (int(round(r * 255)), int(round(g * 255)), int(round(b * 255)))


def render_sample(background: np.ndarray, spec: ShapeSpec, size: tuple[int, int] = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``spec`` on a CIFAR background.

    Args:
        background: uint8 (32, 32, 3) RGB, upscaled bilinearly to ``size``.
        spec: the shape.
        size: (W, H) of the result.

    Returns:
        ``(image, mask)``: uint8 (H, W, 3) RGB and bool (H, W).
    """
    bg = np.asarray(Image.fromarray(background).resize(size, Image.BILINEAR))
    mask = draw_mask(spec, size)
    image = bg.copy()
    image[mask] = spec.color
    return image, mask


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
    generator, :func:`sample_shape`) or a distribution of
    :mod:`camseg.profiles` (``"wide"``, ``"plain"``, ``"small"``, ...).

    Returns:
        ``(images, masks, labels)``: uint8 (n, H, W, 3), bool (n, H, W), int64 (n,).
    """
    indices, from_train = background_indices(source, split, n, seed, sizes)
    backgrounds = source.load(from_train, indices)
    rng = np.random.default_rng([seed, 1 + ("train", "val", "test").index(split)])
    labels = _split_labels(rng, n)
    if profile != "standard":
        from camseg.profiles import profile as get_profile, sample_images

        images, masks = sample_images(rng, backgrounds, labels, get_profile(profile), size)
        return images, masks, labels.astype(np.int64)
    w, h = size
    images = np.empty((n, h, w, 3), dtype=np.uint8)
    masks = np.empty((n, h, w), dtype=bool)
    for i in range(n):
        spec = sample_shape(rng, int(labels[i]), size)
        images[i], masks[i] = render_sample(backgrounds[i], spec, size)
    return images, masks, labels.astype(np.int64)


def _write_png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path, format="PNG", optimize=False, compress_level=6)


def build_dataset(
    out: str | os.PathLike,
    seed: int = 0,
    cifar10: str | os.PathLike | Cifar10Source | None = None,
    sizes: Mapping[str, int] = SPLITS,
    overwrite: bool = False,
    progress: bool = True,
    profile: str = "standard",
) -> Path:
    """Generate the shapes dataset and write it to ``out`` atomically.

    Everything is written into a temporary sibling folder which is renamed to
    ``out`` only when complete, so an interrupted build never leaves a folder
    that would load. The same seed, sizes and CIFAR-10 source give
    byte-identical files.

    Args:
        out: destination folder (SPEC section 1 layout).
        seed: random seed.
        cifar10: a path (see :func:`camseg.cifar.resolve_cifar10`), a source,
            or None to autodetect.
        sizes: images per split, e.g. ``{"train": 3500, "val": 1000, "test": 500}``.
        overwrite: replace an existing ``out``; otherwise an existing complete
            dataset built with the same settings is kept and returned.
        progress: show a progress bar.
        profile: ``"standard"`` (the published dataset) or a named
            distribution of :mod:`camseg.profiles`: ``"wide"`` or a shift-suite
            profile (``"plain"``, ``"small"``, ``"lowcontrast"``, ``"border"``,
            ``"jpeg95"``, ``"jpeg75"``, ``"jpeg50"``, ``"noise"``,
            ``"distractor"``), usually with ``sizes={"test": n}``: test
            backgrounds always come from CIFAR-10's test images.

    Returns:
        The path of the dataset.

    Raises:
        FileExistsError: ``out`` exists, was built otherwise (or is not a
            camseg dataset), and ``overwrite`` is False.
    """
    out = Path(out)
    sizes = dict(sizes)
    for split, n in sizes.items():
        if split not in ("train", "val", "test") or not isinstance(n, int) or n < 0:
            raise ValueError(f"sizes must map 'train'/'val'/'test' to counts >= 0, got {sizes!r}")
    if profile != "standard":
        from camseg.profiles import profile as get_profile

        get_profile(profile)  # a ValueError naming the profiles
    source = cifar10 if (cifar10 is not None and not isinstance(cifar10, (str, os.PathLike))) else resolve_cifar10(cifar10)
    manifest = {"format": 1, "seed": seed, "sizes": sizes, "image_size": list(IMAGE_SIZE),
                "classes": list(CLASSES), "cifar10_source": source.name}
    if profile != "standard":
        manifest["profile"] = profile
    if out.exists():
        existing = read_manifest(out)
        if not overwrite:
            if existing == manifest:
                return out
            raise FileExistsError(
                f"{out} exists and was not built with these settings (seed={seed}, sizes={sizes}); "
                "pass overwrite=True (--overwrite) to replace it"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed build
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        total = sum(sizes.values())
        with tqdm(total=total, desc=f"building {out.name}", unit="img", disable=not progress) as bar:
            for split, n in sizes.items():
                images, masks, labels = generate_split(source, split, n, seed, sizes=sizes, profile=profile)
                for sub in ("images", "masks", "labels"):
                    (tmp / sub / split).mkdir(parents=True)
                for i in range(n):
                    stem = f"{i:05d}"
                    _write_png(tmp / "images" / split / f"{stem}.png", images[i])
                    _write_png(tmp / "masks" / split / f"{stem}.png", masks[i].astype(np.uint8) * 255)
                    (tmp / "labels" / split / f"{stem}.txt").write_text(CLASSES[labels[i]] + "\n")
                    bar.update(1)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, trash / out.name)
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


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
    """SPEC transform: ``ToImage -> float32 in [0, 1] -> Normalize(ImageNet mean, std)``.

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
    hint = "; make it with camseg.data.normalize(uint8 images (B, H, W, 3))"
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
    """A dataset folder does not follow the SPEC section 1 layout."""


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
    """A split of a dataset in the SPEC section 1 layout.

    Items are ``(image, label, mask)``: ``image`` after ``transform`` (default
    :func:`default_transform`: float32 (3, H, W), ImageNet-normalised),
    ``label`` an int in 0..4, ``mask`` a bool array (H, W), True on the shape.

    The folder is checked when the dataset is made: every image needs a mask
    and a label with the same stem, labels must name a class of
    :data:`CLASSES`, and each mask must have its image's size.

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

    def __init__(self, root: str | os.PathLike, split: str = "train",
                 transform: Callable[[np.ndarray], torch.Tensor] | None = None) -> None:
        self.root = Path(root)
        self.split = split
        self.transform = transform if transform is not None else default_transform()
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
                    + " and no ".join(f"{k[:-1]} ({k}/{split}/{stem}.{'txt' if k == 'labels' else 'png'})" for k in lack)
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
