"""Drawing the five shapes: class names, image size, a shape's outline and mask.

Contract (book: Reference › Data): RGB images of 64 x 48 pixels (W x H); five classes
:data:`CLASSES` in that index order. :func:`render_sample` draws one solid shape on a
background; :mod:`camseg.data.dataset` writes and reads dataset folders of such images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["CLASSES", "IMAGE_SIZE", "SQUARE_TILT_DEG", "ShapeSpec", "draw_mask", "render_sample", "sample_shape",
           "shape_polygon"]

CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond")
"""Class names in index order."""

IMAGE_SIZE: tuple[int, int] = (64, 48)
"""(W, H) of the generated images."""

SQUARE_TILT_DEG = 10.0
"""Squares turn at most this much from upright, diamonds at most this much
from 45 degrees, so the two classes never overlap (25 degrees apart)."""

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


def render_sample(background: np.ndarray, spec: ShapeSpec,
                  size: tuple[int, int] = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
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

