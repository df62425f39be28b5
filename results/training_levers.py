"""Cheaper training, measured on validation data: the wide recipe with progressive resizing.

    python results/training_levers.py DATA OUT_DIR --warmup-epochs 4 --seeds 0,1,2

Trains the build's classifier (EfficientNet-Lite0, the wide recipe of ``camseg build``:
:func:`camseg.build.suite.recipe_inputs`) with the first ``--warmup-epochs`` epochs at the native
64 x 48 input (about a quarter of a 2x step's cost) and the rest at the model's own 2x, and prints
each epoch's wide-validation accuracy (the set that selects the epoch; CIFAR-10 train photos of the
val split) and seconds. Compare with the build's checkpoints (their ``meta["history"]``). No test
set takes part. Output of the run behind the decision: ``results/training-levers-val.txt``.
"""

import argparse
import time
from pathlib import Path


def main() -> None:
    from camseg.build.suite import recipe_inputs
    from camseg.models.classifier import train_classifier
    from camseg.utils.devices import set_cpu_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--warmup-epochs", type=int, default=4)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_cpu_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        t = time.perf_counter()
        r = train_classifier(args.data, arch="efficientnet_lite0", seed=seed, out=args.out / f"seed{seed}.pt",
                             progress=False, warmup_epochs=args.warmup_epochs, **recipe_inputs("wide", args.data, seed))
        print(f"seed {seed}: {time.perf_counter() - t:.0f} s, best epoch {r.meta['best_epoch']}, "
              f"wide val accuracy {r.meta['val_accuracy']:.3f}; per epoch (accuracy, s): "
              + ", ".join(f"{h['val_accuracy']:.3f} {h['seconds']:.0f}" for h in r.meta["history"]), flush=True)


if __name__ == "__main__":
    main()
