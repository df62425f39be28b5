"""How many training shapes sit across the image border: the wide recipe's ``border`` fraction,
chosen on validation data.

    python results/wide_border.py artifacts/data --former A.pt B.pt C.pt --new D.pt E.pt F.pt

``--former``: classifiers trained with ``WIDE.border = 0.2``; ``--new``: the same recipe and seeds
with 0.4 (``camseg train --recipe wide``). Each is measured on validation sets only (CIFAR-10 train
photos of the val split, :func:`camseg.data.sets.validation_set`):

* the wide validation set of the former distribution (1000 images; the same set for both, so
  neither is measured on its own selection set), accuracy overall and on the shapes that touch
  the border;
* a border validation set (the ``border`` shift profile's shapes, every one across an edge) and a
  low-contrast one (1000 images each): accuracy, and on the first 300 the foreground hit of the
  default pipeline (``MaskScoring()``: first foreground point on the shape) and whether the CAM's
  peak lies on the shape.

Mean ± sd over the classifiers given. No test set takes part. Output:
``results/wide-border-val.txt``.
"""

import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np


def _sets(data):
    from camseg.data.profiles import SHIFT_PROFILES, WIDE
    from camseg.data.sets import dataset_validation_set

    return {"wide val (border 0.2)": dataset_validation_set(data, replace(WIDE, border=0.2)),
            "border val": dataset_validation_set(data, SHIFT_PROFILES["border"]),
            "low-contrast val": dataset_validation_set(data, SHIFT_PROFILES["lowcontrast"])}


def measure(data: str, ckpt: str, n_pipeline: int = 300) -> dict[str, float]:
    import torch

    from camseg.data.dataset import normalize
    from camseg.evaluation.regionfit import classifier_and_cam, fg_hits_of_points, validation_contexts
    from camseg.models.cam import eval_mode
    from camseg.models.classifier import predict
    from camseg.prompting.regions import MaskScoring
    from camseg.segmenters import get_segmenter

    torch.set_num_threads(1)
    model, cam = classifier_and_cam(ckpt)
    out = {}
    for name, (images, labels, masks) in _sets(data).items():
        ok = predict(model, normalize(images)).argmax(1).numpy() == labels
        out[f"{name}: accuracy"] = ok.mean()
        if name.startswith("wide"):
            edge = masks[:, 0].any(1) | masks[:, -1].any(1) | masks[:, :, 0].any(1) | masks[:, :, -1].any(1)
            out[f"{name}: accuracy, shapes at the border ({edge.sum()})"] = ok[edge].mean()
            continue
        hits, peaks = [], []
        strategy = MaskScoring()
        for b, ctx in enumerate(validation_contexts(model, cam, images[:n_pipeline], get_segmenter("regiongrow"))):
            with eval_mode(model):
                prompts = strategy(ctx)
            gt = masks[b * 50:b * 50 + ctx.batch]
            hits.append(fg_hits_of_points(gt, prompts.point_coords[:, 0]))
            for m, c in zip(gt, ctx.cams, strict=True):
                y, x = np.unravel_index(int(np.argmax(c)), c.shape)
                peaks.append(m[y, x])
        out[f"{name}: fg hit ({n_pipeline})"] = np.concatenate(hits).mean()
        out[f"{name}: CAM peak on the shape ({n_pipeline})"] = np.mean(peaks)
    return out


def main(argv):
    data = argv[0]
    groups, cur = {}, None
    for a in argv[1:]:
        if a in ("--former", "--new"):
            cur = groups.setdefault(a[2:], [])
        else:
            cur.append(a)
    jobs = [(g, c) for g, cs in groups.items() for c in cs]
    with ProcessPoolExecutor(2) as pool:
        res = list(pool.map(measure, [data] * len(jobs), [c for _, c in jobs]))
    rows = list(res[0])
    heads = [f"border {0.2 if g == 'former' else 0.4} ({len(groups[g])} seeds)" for g in groups]
    print(f"| measure | {' | '.join(heads)} |")
    print(f"| --- |{' --- |' * len(groups)}")
    for r in rows:
        cells = []
        for g in groups:
            v = np.array([x[r] for (gg, _), x in zip(jobs, res, strict=True) if gg == g])
            sd = v.std(ddof=1) if len(v) > 1 else 0
            cells.append(f"{v.mean():.3f} ± {sd:.3f} ({' / '.join(f'{x:.3f}' for x in v)})")
        print(f"| {r} | {' | '.join(cells)} |")
    print("\nclassifiers:", {g: cs for g, cs in groups.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
