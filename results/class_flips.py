"""Which class the pipeline explains: the image's own top class, or the class its four flips vote for
(:func:`camseg.models.classifier.flip_logits`), chosen on validation data.

    python results/class_flips.py artifacts

``artifacts``: the build's work folder (its dataset and the three seeds' classifiers). Validation
sets only (CIFAR-10 train photos of the val split, :func:`camseg.data.sets.validation_set`, 1000
images each): the wide set (the one that selects the training epoch) and the shift profiles'
distributions ``plain``, ``small``, ``lowcontrast``, ``border``, ``lowcontrast_border`` and
``jpeg75``. For each classifier: accuracy of the image's own top class and of the voted class, and
on the first 300 images of the wide, border, low-contrast and low-contrast-border sets the
foreground hit of the default pipeline (``MaskScoring()``) with each class as the CAM's target
(images whose two classes agree keep their result; the others are explained again with the voted
class). Mean ± sd over the seeds. No test set takes part. Output: ``results/class-flips-val.txt``.
"""

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SETS = ("wide", "plain", "small", "lowcontrast", "border", "lowcontrast_border", "jpeg75")
PIPELINE_SETS = ("wide", "border", "lowcontrast", "lowcontrast_border")
N_PIPELINE = 300


def _sets(data: str) -> dict:
    from camseg.data.profiles import profile
    from camseg.data.sets import dataset_validation_set

    return {name: dataset_validation_set(data, profile(name)) for name in SETS}


def _hits(model, cam, images, masks, targets, segmenter) -> np.ndarray:
    from camseg.evaluation.regionfit import foreground_hits, validation_contexts
    from camseg.prompting.regions import MaskScoring

    return foreground_hits(MaskScoring(), validation_contexts(model, cam, images, segmenter, targets=targets), masks)


def measure(data: str, ckpt: str) -> dict[str, float]:
    import torch

    from camseg.data.dataset import normalize
    from camseg.evaluation.regionfit import classifier_and_cam
    from camseg.models.cam import AugmentedCAM
    from camseg.models.classifier import flip_logits, predict
    from camseg.segmenters import get_segmenter
    from camseg.utils.devices import set_cpu_threads

    set_cpu_threads(1)
    model, cam = classifier_and_cam(ckpt)
    own_cam = AugmentedCAM(cam.cam, flip=cam.flip, shifts=cam.shifts) if isinstance(cam, AugmentedCAM) else cam
    seg = get_segmenter("regiongrow")
    out = {}
    for name, (images, labels, masks) in _sets(data).items():
        x = normalize(images)
        with torch.no_grad():
            own = predict(model, x).argmax(1).numpy()
            voted = flip_logits(model, x).argmax(1).numpy()
        out[f"{name}: accuracy, own class"] = float((own == labels).mean())
        out[f"{name}: accuracy, voted class"] = float((voted == labels).mean())
        if name not in PIPELINE_SETS:
            continue
        n = N_PIPELINE
        base = _hits(model, own_cam, images[:n], masks[:n], own[:n], seg)
        changed = np.flatnonzero(own[:n] != voted[:n])
        new = base.copy()
        if len(changed):
            new[changed] = _hits(model, own_cam, images[changed], masks[changed], voted[changed], seg)
        out[f"{name}: fg hit ({n}), own class"] = float(base.mean())
        out[f"{name}: fg hit ({n}), voted class"] = float(new.mean())
        out[f"{name}: images whose class changed ({n})"] = float(len(changed))
    return out


def main(argv: list[str]) -> None:
    work = Path(argv[0])
    data = str(work / "data")
    ckpts = [str(work / "classifier-efficientnet_lite0.pt")] + [
        str(work / f"classifier-efficientnet_lite0-seed{k}.pt") for k in (1, 2)]
    with ProcessPoolExecutor(2) as pool:
        res = list(pool.map(measure, [data] * len(ckpts), ckpts))
    lines = [f"Validation sets only (val split photos), {len(ckpts)} seeds: {', '.join(Path(c).name for c in ckpts)}",
             "", "| measure | mean ± sd | per seed |", "| --- | --- | --- |"]
    for key in res[0]:
        v = np.array([r[key] for r in res])
        digits = 0 if "changed" in key else 3
        lines.append(f"| {key} | {v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f} | "
                     f"{' / '.join(f'{x:.{digits}f}' for x in v)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(__file__).with_name("class-flips-val.txt").write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
