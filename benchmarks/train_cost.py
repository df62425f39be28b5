"""Where training time comes from: CPU seconds per training step and per image evaluated, by input scale.

CPU time (``time.process_time``) rather than wall time, so that the figures
hold on a machine shared with other jobs; with one torch thread the two agree
on an idle machine. Each figure is the median of ``--steps`` timed steps after
one warm-up, EfficientNet-Lite0 (ImageNet weights), batch 64 at 64 x 48 input.

    python benchmarks/train_cost.py [--scales 1 1.5 2] [--steps 3] [--bf16]

``--bf16`` also times each scale under CPU mixed precision
(``torch.autocast("cpu", dtype=torch.bfloat16)``), the CPU counterpart of the
autocast training uses on CUDA.

Multiply by 55 steps an epoch (3500 images) and the epochs for a training's cost.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from camseg.models.classifier import build_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y = torch.randn(64, 3, 48, 64), torch.randint(0, 5, (64,))
    print("| input scale | precision | input (W x H) | CPU s per training step | CPU ms per image, eval "
          "| x scale 1, fp32 (step) |")
    print("| ---: | --- | --- | ---: | ---: | ---: |")
    base = None
    for scale, bf16 in [(s, b) for s in args.scales for b in ((False, True) if args.bf16 else (False,))]:
        precision = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
        model, _ = build_classifier(input_scale=scale)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        steps = []
        for k in range(args.steps + 1):
            model.train()
            c0 = time.process_time()
            with precision:
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if k:
                steps.append(time.process_time() - c0)
        model.eval()
        with torch.no_grad(), precision:
            c0 = time.process_time()
            model(x)
            per_image = (time.process_time() - c0) / len(x) * 1000
        step = statistics.median(steps)
        base = base or step
        print(f"| {scale:g} | {'bf16' if bf16 else 'fp32'} | {int(64 * scale)} x {int(48 * scale)} | {step:.2f} | "
              f"{per_image:.1f} | "
              f"{step / base:.2f} |")


if __name__ == "__main__":
    main()
