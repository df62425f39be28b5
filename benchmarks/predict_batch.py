"""SAM prompt decoding: K single calls against one batched call, and against SamPredictor.

On one encoded image (SAM ``vit_b`` with random weights: speed does not depend
on them), decodes K single-point prompts (as MaskScoring's candidates are)
three ways, in the same run:

* ``sampredictor``: ``SamPredictor.predict`` per prompt (camseg's path before
  ``predict_batch``; it upsamples 3 masks per prompt to 1024 x 1024);
* ``loop``: ``SamSegmenter.predict_batch`` with ``batch_prompts=False`` (one
  decoder pass per prompt, the chosen mask resized straight to the image);
* ``batched``: ``batch_prompts=True`` (one decoder pass for all K).

Checks that the three give the same masks, prints the median of ``--repeats``
timings per way, and the device. ::

    python benchmarks/predict_batch.py --prompts 96 --size 48x64 --threads 2 [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def main() -> None:
    from segment_anything import SamPredictor, sam_model_registry

    from camseg.segmenters import SamSegmenter
    from camseg.utils.devices import resolve_device

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=96)
    p.add_argument("--size", default="48x64", help="image H x W (default 48x64, the shapes images)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    h, w = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)
    model = sam_model_registry["vit_b"](checkpoint=None).to(dev).eval()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    coords = np.stack([rng.uniform(0, w - 1, args.prompts), rng.uniform(0, h - 1, args.prompts)], -1)[:, None]
    labels = np.ones((args.prompts, 1), np.int64)

    t0 = time.perf_counter()
    loop = SamSegmenter(model=model, batch_prompts=False, precision="fp32")
    loop.set_image(image)
    encode = time.perf_counter() - t0
    batched = SamSegmenter(model=model, batch_prompts=True, precision="fp32")
    batched.cache = loop.cache  # the same embedding, encoded once
    batched.set_image(image)
    ref = SamPredictor(model)
    ref.set_image(image)

    def sampredictor() -> list[np.ndarray]:
        out = []
        for c, lab in zip(coords, labels):
            masks, scores, _ = ref.predict(point_coords=c, point_labels=lab, multimask_output=True)
            out.append(masks[int(np.argmax(scores))])
        return out

    ways = {"sampredictor": sampredictor,
            "loop": lambda: [r.mask for r in loop.predict_batch(coords, labels)],
            "batched": lambda: [r.mask for r in batched.predict_batch(coords, labels)]}
    print(f"SAM vit_b (random weights) on {dev}, {args.threads} CPU threads, image {h}x{w}, "
          f"{args.prompts} single-point prompts; encoder {encode:.1f} s (once)", flush=True)
    times, masks = {}, {}
    for name, fn in ways.items():
        runs = []
        for _ in range(args.repeats):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            masks[name] = np.stack(fn())
            if dev.type == "cuda":
                torch.cuda.synchronize()
            runs.append(time.perf_counter() - t0)
        times[name] = runs
        print(f"  {name}: {', '.join(f'{r:.2f}' for r in runs)} s", flush=True)
    same = {name: int((masks[name] != masks["sampredictor"]).any(axis=(1, 2)).sum()) for name in ways}
    print(f"{'way':14s} {'median s':>9s} {'runs (s)':>24s} {'prompts/s':>10s} {'masks differing':>16s}")
    for name, runs in times.items():
        med = statistics.median(runs)
        print(f"{name:14s} {med:9.2f} {', '.join(f'{r:.2f}' for r in runs):>24s} {args.prompts / med:10.1f} "
              f"{same[name]:>16d}")


if __name__ == "__main__":
    main()
