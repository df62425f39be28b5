"""Grad-CAM speed: camseg against the grad-cam package and a bare forward + backward.

ResNet18 (random weights: speed does not depend on them), a batch of test-like
images 64 x 48 upsampled as the classifier sees them, target layer ``layer2[-1]``
(the earliest layer bounds the backward), given targets. Every timing is the
median of ``--repeats`` runs after one warm-up, measured side by side in one run.

    python benchmarks/gradcam.py [--batch 64] [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchvision.models import resnet18

from camseg.models.cam import GradCAM, GradCAMPlusPlus


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(96, 128), help="H W of the input")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = resnet18(num_classes=5).eval()
    x = torch.randn(args.batch, 3, *args.size)
    targets = [i % 5 for i in range(args.batch)]
    layers = [model.layer2[-1]]

    def bare():
        model.zero_grad(set_to_none=True)
        out = model(x)
        out.gather(1, torch.tensor(targets)[:, None]).sum().backward()

    rows = {"bare forward+backward": median_time(bare, args.repeats)}
    for name, cls in (("GradCAM", GradCAM), ("GradCAMPlusPlus", GradCAMPlusPlus)):
        ours = cls(model, layers)
        rows[f"camseg {name}"] = median_time(lambda: ours(x, targets), args.repeats)
        try:
            import pytorch_grad_cam
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

            ref = getattr(pytorch_grad_cam, name)(model=model, target_layers=layers)
            ref_targets = [ClassifierOutputTarget(t) for t in targets]
            rows[f"grad-cam {name}"] = median_time(lambda: ref(input_tensor=x, targets=ref_targets), args.repeats)
            model.zero_grad(set_to_none=True)
        except ImportError:
            pass
    base = rows["bare forward+backward"]
    print(f"ResNet18, batch {args.batch}, input {args.size[0]}x{args.size[1]}, layer2[-1], "
          f"{args.threads} threads, median of {args.repeats}")
    print(f"{'method':28s} {'median s':>9s} {'x bare':>7s} {'x grad-cam':>10s}")
    for name, t in rows.items():
        ref_name = "grad-cam " + name.split()[-1]
        vs_ref = f"{t / rows[ref_name]:10.2f}" if name.startswith("camseg") and ref_name in rows else f"{'':>10s}"
        print(f"{name:28s} {t:9.3f} {t / base:7.2f} {vs_ref}")


if __name__ == "__main__":
    main()
