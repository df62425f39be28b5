"""The offline backend's leak guard and smoothing (:class:`camseg.segmenters.offline.RegionGrowSegmenter`),
chosen on validation data with the oracle point.

    python results/regiongrow_tuning.py artifacts/data     # the build's dataset folder

For every image the prompt is one foreground point, the ground-truth pixel
nearest the mask's centre of mass (:func:`camseg.prompting.prompts.oracle_points`), so
the figures measure the segmenter alone. Sets: the wide validation set
(:func:`camseg.data.sets.validation_set`: CIFAR-10 train photos of the val split
with the wide recipe's shapes: small, low-contrast, JPEG-compressed, noisy)
and the standard val split, clean and degraded (:func:`camseg.data.dataset.degrade`).
Columns: mean IoU and the share of images below IoU 0.5. Rows: the former
default, each change alone, and the settings around the chosen one. No test
set takes part. Output: ``results/regiongrow-wide-val.txt``.
"""

import sys
import time
from pathlib import Path

import numpy as np

from camseg.data.cifar import resolve_cifar10
from camseg.data.dataset import SPLITS, ShapesDataset, degrade, read_manifest
from camseg.data.profiles import WIDE
from camseg.data.sets import validation_set
from camseg.prompting.prompts import oracle_points
from camseg.segmenters.offline import RegionGrowSegmenter

FORMER = {"smoothing": 0.0, "stability": None, "noise_gain": 4.0}
VARIANTS = {
    "former default (no smoothing, no leak guard, noise_gain 4)": FORMER,
    "leak guard only (most stable step, plateau 0.25)": {**FORMER, "stability": 0.0},
    "leak guard (first calm step, stability 0.2)": {**FORMER, "stability": 0.2},
    "smoothing 15 only": {**FORMER, "smoothing": 15.0},
    "noise_gain 3 only": {**FORMER, "noise_gain": 3.0},
    "default: smoothing 15 + guard 0.2 / plateau 0.25 + noise_gain 3": {},
    "  stability 0.1": {"stability": 0.1},
    "  stability 0.3": {"stability": 0.3},
    "  plateau 0.15": {"plateau": 0.15},
    "  smoothing 10": {"smoothing": 10.0},
    "  smoothing 30": {"smoothing": 30.0},
    "  noise_gain 4": {"noise_gain": 4.0},
}


def ious(seg: RegionGrowSegmenter, images: np.ndarray, masks: np.ndarray, points: np.ndarray) -> np.ndarray:
    """IoU (N,) of the masks from one point per image, ``points`` (N, 1, 2) (x, y)."""
    out = []
    for image, mask, point in zip(images, masks, points, strict=True):
        seg.set_image(image)
        pred = seg.predict(point, np.array([1])).mask
        out.append((pred & mask).sum() / (pred | mask).sum())
    return np.array(out)


def main(data: str) -> str:
    manifest = read_manifest(data) or {}
    wide, _, wide_masks = validation_set(resolve_cifar10(), WIDE, int(manifest.get("seed", 0)),
                                         manifest.get("sizes", SPLITS))
    std, _, std_masks = ShapesDataset(data, "val").arrays(progress=False)
    sets = {"wide val": (wide, wide_masks), "val clean": (std, std_masks), "val degraded": (degrade(std), std_masks)}
    points = {name: oracle_points(masks).point_coords for name, (_, masks) in sets.items()}
    lines = ["Oracle-point IoU of the region-growing backend (mean; share below 0.5), validation data only",
             f"({', '.join(f'{k}: {len(v[0])} images' for k, v in sets.items())})", "",
             f"| settings | {' | '.join(sets)} | ms per image (wide val) |", "| --- |" + " --- |" * (len(sets) + 1)]
    for name, kw in VARIANTS.items():
        seg = RegionGrowSegmenter(**kw)
        cells, ms = [], 0.0
        for set_name, (images, masks) in sets.items():
            t0 = time.perf_counter()
            v = ious(seg, images, masks, points[set_name])
            if set_name == "wide val":
                ms = 1000 * (time.perf_counter() - t0) / len(images)
            cells.append(f"{v.mean():.4f} ({(v < 0.5).mean():.1%})")
        lines.append(f"| {name} | {' | '.join(cells)} | {ms:.1f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    text = main(sys.argv[1] if len(sys.argv) > 1 else "artifacts/data")
    (Path(__file__).parent / "regiongrow-wide-val.txt").write_text(text)
