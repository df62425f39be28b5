"""Image files at camseg's boundary: any image mode read as RGB, masks written losslessly,
output paths checked before any work starts.

How :func:`to_rgb` turns each Pillow mode into uint8 (H, W, 3) RGB:

=====================================  ===============================================
mode                                   conversion
=====================================  ===============================================
``RGB``                                as is
``L`` (8-bit grey), ``1`` (b/w)        the grey level copied to R, G and B (``1``: 0/255)
``I;16*`` (16-bit grey), ``I``         ``round(v / 257)``: 0..65535 onto 0..255, linear
                                       (``I`` must hold values in 0..65535)
``F`` (32-bit float grey)              ``round(255 v)`` for values in [0, 1], else refused
``P`` (palette)                        the palette's colours (with transparency: as RGBA)
``RGBA``, ``LA``, ``PA``, ``La``...    composited over white: ``a * c + (1 - a) * 255``
``CMYK``, ``YCbCr``, ``LAB``, ``HSV``  Pillow's conversion to RGB
=====================================  ===============================================

An EXIF orientation tag is applied first (a phone photo comes out upright);
of a multi-frame file (GIF, TIFF) the first frame is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "LOSSLESS_MASK_FORMATS", "MAX_PIXELS", "LoadedImage", "check_output_file", "check_output_folder",
    "load_image", "save_mask", "to_rgb",
]

MAX_PIXELS = 64_000_000
"""Largest image :func:`load_image` reads (W x H), so memory stays bounded (about 200 MB of RGB)."""

LOSSLESS_MASK_FORMATS: dict[str, str] = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
"""File suffix -> Pillow format of the lossless formats a mask may be written in."""

_WHITE = 255.0
_NO_COLOUR = " (no colour: a shape that differs from its background mostly in hue is harder to separate)"


@dataclass(frozen=True)
class LoadedImage:
    """An image file read as RGB.

    Attributes:
        rgb: uint8 (H, W, 3) RGB.
        mode: the file's Pillow mode (``"RGB"``, ``"L"``, ``"I;16"``, ``"P"``, ...).
        note: how it was converted to RGB (None when it already was 8-bit RGB).
    """

    rgb: np.ndarray
    mode: str
    note: str | None


def to_rgb(im: Image.Image) -> tuple[np.ndarray, str | None]:
    """A Pillow image as uint8 (H, W, 3) RGB, converted as the module's table says.

    Returns:
        ``(rgb, note)``: the array and a short description of the conversion
        (None for an 8-bit RGB image).

    Raises:
        ValueError: a mode whose values cannot be mapped (``I`` outside
            0..65535, ``F`` outside [0, 1]).
    """
    mode = im.mode
    if mode == "RGB":
        return np.array(im), None
    if mode in ("L", "1"):
        grey = np.array(im.convert("L"))
        return np.repeat(grey[..., None], 3, axis=2), (f"{'8-bit' if mode == 'L' else '1-bit'} greyscale copied to "
                                                       f"RGB{_NO_COLOUR}")
    if mode.startswith("I"):
        values = np.array(im).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"a {mode} image with values {values.min()}..{values.max()} cannot be read as 16-bit "
                             "greyscale (0..65535)")
        grey = np.rint(values / 257.0).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), f"16-bit greyscale scaled linearly 0..65535 -> 0..255{_NO_COLOUR}"
    if mode == "F":
        values = np.array(im, dtype=np.float64)
        if not np.isfinite(values).all() or (values.size and (values.min() < 0 or values.max() > 1)):
            raise ValueError("a 32-bit float (mode F) image must hold values in [0, 1]; "
                             f"this one spans {np.nanmin(values):g}..{np.nanmax(values):g}")
        grey = np.rint(values * 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), f"32-bit float greyscale [0, 1] scaled to 0..255{_NO_COLOUR}"
    if mode == "P" and "transparency" not in im.info:
        return np.array(im.convert("RGB")), "palette colours"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa", "P", "RGBX") or "A" in mode:
        rgba = np.array(im.convert("RGBA")).astype(np.float64)
        alpha = rgba[..., 3:] / 255.0
        rgb = np.rint(rgba[..., :3] * alpha + _WHITE * (1.0 - alpha)).astype(np.uint8)
        return rgb, f"{mode} with transparency composited over white"
    return np.array(im.convert("RGB")), f"{mode} converted to RGB"


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read an image file of any mode as uint8 (H, W, 3) RGB (see :func:`to_rgb`).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a folder, not an image Pillow can read, more than
            ``max_pixels`` pixels, or values that cannot be mapped.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an image file")
    if not path.exists():
        raise FileNotFoundError(f"cannot read image {path}: no such file")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ValueError(f"image {path} is {w} x {h} pixels; camseg reads at most {max_pixels:,} pixels "
                                 "(W x H): scale it down first")
            frames = getattr(im, "n_frames", 1)
            im.seek(0)
            orientation = im.getexif().get(0x0112, 1)
            upright = ImageOps.exif_transpose(im)
            rgb, note = to_rgb(upright)
            mode = im.mode
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    notes = [note] if note else []
    if orientation not in (1, None):
        notes.append("turned upright as its EXIF orientation says")
    if frames > 1:
        notes.append(f"first of {frames} frames")
    return LoadedImage(np.ascontiguousarray(rgb), mode, "; ".join(notes) or None)


def save_mask(mask: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a bool (H, W) mask as an 8-bit image, 255 on the object, 0 elsewhere, atomically
    and losslessly (the format follows the suffix: one of :data:`LOSSLESS_MASK_FORMATS`)."""
    from camseg.utils.paths import atomic_path

    path = Path(path)
    fmt = LOSSLESS_MASK_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: a mask must be written losslessly; use one of {', '.join(LOSSLESS_MASK_FORMATS)}")
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != bool:
        raise ValueError(f"mask must be bool (H, W), got {mask.dtype} {mask.shape}")
    with atomic_path(path) as tmp:
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp, format=fmt)
    return path


def _nearest_existing(path: Path) -> Path:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _check_writable_folder(folder: Path, what: str, target: Path) -> None:
    base = _nearest_existing(folder) if not folder.exists() else folder
    if not base.is_dir():
        raise ValueError(f"{what} {target}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {target}: cannot write in folder {base} (permission denied)")


def check_output_file(path: str | os.PathLike, what: str, suffixes: Sequence[str] | None = None,
                      inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check, before any work, that a file can be written at ``path``.

    ``path`` must name a file (not a folder, with a suffix from ``suffixes`` if
    given), must not be one of ``inputs``, and its folder must exist or be
    creatable, and be writable.

    Args:
        path: the output file.
        what: how the message names it (``"--out"``).
        suffixes: allowed suffixes (lower case, with the dot), or None for any.
        inputs: files that must not be overwritten (the input image).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: what is wrong and what was expected.
    """
    raw = os.fspath(path)
    if not raw.strip():
        raise ValueError(f"{what} is empty; give a file name")
    target = Path(raw)
    if raw.endswith(("/", os.sep)) or target.is_dir():
        example = target / f"out{suffixes[0] if suffixes else ''}"
        raise ValueError(f"{what} {raw} is a folder; give a file name, e.g. {example}")
    if suffixes is not None:
        if not target.suffix:
            raise ValueError(f"{what} {raw} has no file extension; expected one of {', '.join(suffixes)}")
        if target.suffix.lower() not in suffixes:
            raise ValueError(f"{what} {raw}: {target.suffix} is not supported here; expected one of "
                             f"{', '.join(suffixes)}" + (" (lossless formats: a JPEG would blur the mask)"
                                                        if set(suffixes) <= set(LOSSLESS_MASK_FORMATS) else ""))
    for other in inputs:
        other = Path(other)
        if target.exists() and other.exists() and os.path.samefile(target, other) or \
                target.resolve() == other.resolve():
            raise ValueError(f"{what} {raw} is the input file {other}; refusing to overwrite it")
    _check_writable_folder(target.parent, what, target)
    return target


def check_output_folder(path: str | os.PathLike, what: str) -> Path:
    """Check, before any work, that ``path`` is a folder or can be made one, in a writable place.

    Raises:
        ValueError: ``path`` is a file, or its nearest existing folder is not writable.
    """
    raw = os.fspath(path)
    if not raw.strip():
        raise ValueError(f"{what} is empty; give a folder")
    target = Path(raw)
    if target.exists() and not target.is_dir():
        raise ValueError(f"{what} {raw} is a file, not a folder")
    _check_writable_folder(target.parent if not target.exists() else target, what, target)
    return target
