"""Pointing game and CAM mass inside of Grad-CAM per target-layer choice, on the wide validation set.

    python results/cam_layers.py artifacts      # the build's work folder (three seed checkpoints)

Validation data only (CIFAR-10 train photos of the val split): a layer choice
made from this output is not tuned on any test set. Output of 2026-11-30:
``results/cam-layers-wide-val.txt``.
"""

import sys
from pathlib import Path

import numpy as np

from camseg.analysis import cam_mass_inside, pointing_game
from camseg.cam import GradCAM
from camseg.cifar import resolve_cifar10
from camseg.classifier import load_checkpoint
from camseg.data import SPLITS, normalize, read_manifest
from camseg.profiles import WIDE, validation_set
from camseg.suite import checkpoint_path

work = Path(sys.argv[1] if len(sys.argv) > 1 else "artifacts")
manifest = read_manifest(work / "data") or {}
images, _, masks = validation_set(resolve_cifar10(), WIDE, int(manifest.get("seed", 0)), manifest.get("sizes", SPLITS))
images, masks = images[:600], masks[:600]
print("| seed | layers | pointing game | CAM mass inside |\n| ---: | --- | ---: | ---: |")
for seed in (0, 1, 2):
    model, meta = load_checkpoint(checkpoint_path(work, "efficientnet_lite0", seed), "cpu")
    for layers in (["backbone._blocks.10"], ["backbone._blocks.15"], ["backbone._blocks.10", "backbone._blocks.15"]):
        cam = GradCAM(model, [model.get_submodule(n) for n in layers])
        maps = np.concatenate([cam(normalize(images[k:k + 100])) for k in range(0, len(images), 100)])
        print(f"| {seed} | {' + '.join(layers)} | {pointing_game(maps, masks).mean():.3f} | "
              f"{cam_mass_inside(maps, masks).mean():.3f} |", flush=True)
