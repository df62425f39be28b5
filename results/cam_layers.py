"""Grad-CAM's target layers and its test-time copies (mirror image, shifts), chosen on the wide
validation set.

    python results/cam_layers.py artifacts      # the build's work folder (three seed checkpoints)

For each seed's classifier, Grad-CAM of the top class is computed once for
every block from ``_blocks.5`` to ``_blocks.15`` on 600 images of the wide
validation set, for the image and for its mirror image (mirrored back). Every
combination of one to four blocks is then scored by the pointing game (CAM
maximum on the shape) and the CAM mass inside the shape, alone and averaged
with the mirror image's map, mean over the three seeds. Then, for the best
blocks, Grad-CAM is averaged over copies of the image
(:class:`camseg.models.cam.AugmentedCAM`): the mirror image, and the mirror image
with four shifts (left, right, up, down) of 4, 6 or 8 pixels, each shifted
copy mirrored too (10 copies). The layers of
:data:`camseg.models.classifier.ARCHITECTURES` are the best row of the first table;
its copies are the mirror image only (results/README.md says why).

Validation data only (CIFAR-10 train photos of the val split): no test set
takes part. Output: ``results/cam-layers-wide-val.txt``.
"""

import itertools
import sys
from pathlib import Path

import numpy as np
import torch

from camseg.build.suite import checkpoint_path
from camseg.data.cifar import resolve_cifar10
from camseg.data.dataset import SPLITS, normalize, read_manifest
from camseg.data.profiles import WIDE
from camseg.data.sets import validation_set
from camseg.models.analysis import cam_mass_inside, pointing_game
from camseg.models.cam import AugmentedCAM, GradCAM
from camseg.models.classifier import ARCHITECTURES, load_checkpoint

work = Path(sys.argv[1] if len(sys.argv) > 1 else "artifacts")
manifest = read_manifest(work / "data") or {}
images, _, masks = validation_set(resolve_cifar10(), WIDE, int(manifest.get("seed", 0)), manifest.get("sizes", SPLITS))
images, masks = images[:600], masks[:600]
blocks = list(range(5, 16))
seeds = (0, 1, 2)
scores: dict[tuple[int, ...], list[tuple[float, float, float]]] = {}
for seed in seeds:
    model, _ = load_checkpoint(checkpoint_path(work, "efficientnet_lite0", seed), "cpu")
    cam = GradCAM(model, [model.get_submodule(f"backbone._blocks.{b}") for b in blocks])
    plain, mirrored = [], []
    for k in range(0, len(images), 100):
        x = normalize(images[k:k + 100])
        out = cam.compute(x)
        plain.append(out.layer_maps)
        mirrored.append(cam.compute(torch.flip(x, dims=[3]), out.targets).layer_maps[..., ::-1])
    plain, mirrored = np.concatenate(plain, 1), np.concatenate(mirrored, 1)  # (L, N, H, W)
    for r in (1, 2, 3, 4):
        for sub in itertools.combinations(range(len(blocks)), r):
            maps = plain[list(sub)].mean(0)
            both = (maps + mirrored[list(sub)].mean(0)) / 2
            scores.setdefault(tuple(blocks[i] for i in sub), []).append(
                (pointing_game(maps, masks).mean(), cam_mass_inside(maps, masks).mean(),
                 pointing_game(both, masks).mean()))

default = tuple(int(n.rsplit(".", 1)[1]) for n in ARCHITECTURES["efficientnet_lite0"].target_layers)
rows = sorted(scores, key=lambda k: -np.mean([v[0] for v in scores[k]]))
print(f"Grad-CAM of the top class, {len(images)} wide-validation images, seeds {', '.join(map(str, seeds))}; "
      f"the 15 best of {len(rows)} block combinations, then the former default (10,) and the present one "
      f"{default}.\n")
print("| blocks | pointing game per seed | mean | CAM mass inside | with the mirror image |")
print("| --- | --- | ---: | ---: | ---: |")
for k in rows[:15] + [(10,), default]:
    v = np.array(scores[k])
    print(f"| {' + '.join(map(str, k))} | {' / '.join(f'{a:.3f}' for a in v[:, 0])} | {v[:, 0].mean():.3f} | "
          f"{v[:, 1].mean():.3f} | {v[:, 2].mean():.3f} |")
best = sorted(scores, key=lambda k: -np.mean([v[2] for v in scores[k]]))[:5]
print("\nThe five best with the mirror image: " + "; ".join(
    f"{' + '.join(map(str, k))} {np.mean([v[2] for v in scores[k]]):.3f}" for k in best))

best_blocks = rows[0]
print(f"\nGrad-CAM on blocks {' + '.join(map(str, best_blocks))}, averaged over copies of the image "
      "(pointing game per seed, mean):\n")
print("| copies | pointing game per seed | mean | CAM mass inside |\n| --- | --- | ---: | ---: |")


def cross(s: int) -> list[tuple[int, int]]:
    return [(-s, 0), (s, 0), (0, -s), (0, s)]


variants = {"the image alone": (False, []), "+ mirror": (True, [])}
for s in (4, 6, 8):
    variants[f"+ mirror, 4 shifts of {s} px (10 copies)"] = (True, cross(s))
models = [load_checkpoint(checkpoint_path(work, "efficientnet_lite0", seed), "cpu")[0] for seed in seeds]
for name, (flip, shifts) in variants.items():
    per_seed = []
    for model in models:
        cam = AugmentedCAM(GradCAM(model, [model.get_submodule(f"backbone._blocks.{b}") for b in best_blocks]),
                           flip=flip, shifts=shifts)
        maps = np.concatenate([cam(normalize(images[k:k + 100])) for k in range(0, len(images), 100)])
        per_seed.append((pointing_game(maps, masks).mean(), cam_mass_inside(maps, masks).mean()))
    v = np.array(per_seed)
    print(f"| {name} | {' / '.join(f'{a:.3f}' for a in v[:, 0])} | {v[:, 0].mean():.3f} | {v[:, 1].mean():.3f} |",
          flush=True)
