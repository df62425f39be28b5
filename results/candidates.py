"""How many candidate points MaskScoring segments per image (``Proposal.max_candidates``),
chosen on validation data: the cost of the region proposal against the foreground hit.

    python results/candidates.py artifacts      # the build's work folder (three seed checkpoints)

For each seed's classifier and each cap, the default pipeline's prompts (``MaskScoring(
n_background=2, max_candidates=cap)``: the fitted region score, shortlist 24) on validation sets
only (CIFAR-10 train photos of the val split, :func:`camseg.data.sets.validation_set`): the wide
validation set (first 400 images) and the ``border`` and ``lowcontrast`` shift profiles' shapes
(first 200 each). Measured: the foreground hit (first point on the shape), background points
inside the shape, and the CPU seconds per image of choosing the points (proposal, region
evidence, scoring, background points; one torch and OpenCV thread; the classifier's and CAM's
own work, the same for every cap, is left out). Mean ± sd over the seeds. No test set takes
part. Output: ``results/candidates-val.txt``.
"""

import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CAPS = (96, 64, 48, 32)
SETS = (("wide", 400), ("border", 200), ("lowcontrast", 200))


def _seed(args):
    work, seed = args
    from camseg.build.suite import checkpoint_path
    from camseg.data.profiles import SHIFT_PROFILES, WIDE
    from camseg.data.sets import dataset_validation_set
    from camseg.evaluation.regionfit import classifier_and_cam, fg_hits_of_points, validation_contexts
    from camseg.prompting.regions import MaskScoring
    from camseg.segmenters import get_segmenter
    from camseg.utils.devices import set_cpu_threads

    set_cpu_threads(1)
    model, cam = classifier_and_cam(checkpoint_path(Path(work), "efficientnet_lite0", seed))
    seg = get_segmenter("regiongrow")
    out = {}
    for name, n in SETS:
        images, _, masks = dataset_validation_set(Path(work) / "data", WIDE if name == "wide" else SHIFT_PROFILES[name])
        images, masks = images[:n], masks[:n]
        contexts = validation_contexts(model, cam, images, seg)
        for cap in CAPS:
            scoring = MaskScoring(n_background=2, max_candidates=cap)
            t, hits, bg_in = time.process_time(), [], []
            for b, ctx in enumerate(contexts):
                pr = scoring(ctx)
                gt = masks[b * 50:b * 50 + ctx.batch]
                hits.extend(fg_hits_of_points(gt, pr.point_coords[:, 0]))
                for j in range(ctx.batch):
                    bg = np.flatnonzero(pr.point_labels[j] == 0)
                    bg_in.extend(fg_hits_of_points(np.repeat(gt[j:j + 1], len(bg), 0), pr.point_coords[j, bg]))
            out[name, cap] = (float(np.mean(hits)), float(np.mean(bg_in)), (time.process_time() - t) / n)
            print(f"seed {seed} {name} cap {cap}: fg hit {out[name, cap][0]:.4f}, bg in shape "
                  f"{out[name, cap][1]:.4f}, {out[name, cap][2]:.3f} CPU s an image", flush=True)
    return out


def main(work: str) -> str:
    seeds = (0, 1, 2)
    with ProcessPoolExecutor(2) as pool:
        per_seed = list(pool.map(_seed, [(work, s) for s in seeds]))
    def ms(v):
        return f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}"

    title = (f"MaskScoring(n_background=2, max_candidates=cap), validation sets only, seeds {seeds}: foreground hit, "
             "background points inside the shape, CPU seconds an image of choosing the points (mean ± sd over seeds).")
    lines = [title, "", "| set | cap | fg hit | fg hit per seed | bg in shape | CPU s an image | x cap 96 |",
             "| --- | ---: | --- | --- | --- | ---: | ---: |"]
    for name, n in SETS:
        base = np.mean([r[name, CAPS[0]][2] for r in per_seed])
        for cap in CAPS:
            hit, bg, sec = (np.array([r[name, cap][k] for r in per_seed]) for k in range(3))
            lines.append(f"| {name} ({n}) | {cap} | {ms(hit)} | {' / '.join(f'{h:.3f}' for h in hit)} | "
                         f"{100 * bg.mean():.2f} % | {sec.mean():.3f} | {sec.mean() / base:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    text = main(sys.argv[1] if len(sys.argv) > 1 else "artifacts")
    Path(__file__).with_name("candidates-val.txt").write_text(text)
    print(text)
