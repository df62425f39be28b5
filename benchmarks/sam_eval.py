"""Evaluation with SAM: camseg encodes each image once; the naive way encodes at every ``set_image``.

Runs ``camseg.evaluation.evaluate.evaluate`` (the four pipelines of ``camseg evaluate``:
centre, foreground, foreground+background, oracle, plus the mask-scoring
candidates) twice on the same images with the same randomly initialised SAM
(speed does not depend on the weights, and none can be downloaded here):

* **camseg**: :class:`camseg.segmenters.SamSegmenter` as it is: every image
  is encoded once (batched by ``prepare``), later ``set_image`` calls hit the
  embedding cache;
* **naive**: the same segmenter with the cache emptied before every
  ``set_image`` and no batching, i.e. what calling ``SamPredictor.set_image``
  in every pipeline call does (published notebooks' way).

A hook on the image encoder counts its images; both runs must give the same
masks. With ``--throughput`` (meant for a GPU) it also times embedding
throughput (images/s) at several batch sizes in float32 and bfloat16.

    python benchmarks/sam_eval.py --images 2
    python benchmarks/sam_eval.py --images 8 --throughput      # on a GPU machine
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from camseg.evaluation.evaluate import PIPELINES, evaluate
from camseg.segmenters import SamSegmenter


class NaiveSamSegmenter(SamSegmenter):
    """SamSegmenter without its embedding cache: every set_image runs the encoder (baseline only)."""

    def set_image(self, image: np.ndarray) -> None:
        self.cache.clear()
        super().set_image(image)

    def prepare(self, images) -> int:  # the naive way does not batch ahead
        return 0


def _count_encoder(sam) -> list[int]:
    seen = [0]
    sam.image_encoder.register_forward_hook(lambda mod, inp, out: seen.__setitem__(0, seen[0] + len(inp[0])))
    return seen


def compare(data: Path, checkpoint: Path, n_images: int, model_type: str, device: str) -> dict:
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    sam = sam_model_registry[model_type](checkpoint=None).to(device).eval()
    encoded = _count_encoder(sam)
    rows = {}
    masks = {}
    for name, cls in (("camseg (encode once)", SamSegmenter), ("naive (set_image per call)", NaiveSamSegmenter)):
        seg = cls(model=sam, name=f"sam-{model_type}-random")
        encoded[0] = 0
        t0 = time.perf_counter()
        result = evaluate(data, checkpoint, seg, limit=n_images, batch_size=n_images, progress=False,
                          keep_masks=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        rows[name] = {"seconds": time.perf_counter() - t0, "encoder_images": encoded[0]}
        masks[name] = result["_masks"]
    a, b = masks.values()
    same = all(np.array_equal(a[k], b[k]) for k in PIPELINES)
    return {"rows": rows, "same_masks": same}


def throughput(model_type: str, batch_sizes: list[int], repeats: int) -> list[dict]:
    from segment_anything import sam_model_registry

    device = "cuda" if torch.cuda.is_available() else "cpu"
    sam = sam_model_registry[model_type](checkpoint=None).to(device).eval()
    size = sam.image_encoder.img_size
    out = []
    for dtype in (torch.float32, torch.bfloat16):
        for bs in batch_sizes:
            x = torch.randn(bs, 3, size, size, device=device)
            times = []
            with torch.inference_mode(), torch.autocast(device_type=device, dtype=dtype,
                                                        enabled=dtype != torch.float32):
                for i in range(repeats + 1):
                    if device == "cuda":
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    sam.image_encoder(x)
                    if device == "cuda":
                        torch.cuda.synchronize()
                    if i:  # the first run warms up
                        times.append(time.perf_counter() - t0)
            med = float(np.median(times))
            out.append({"dtype": str(dtype).replace("torch.", ""), "batch": bs, "median_s": med,
                        "images_per_s": bs / med})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="artifacts/data")
    p.add_argument("--checkpoint", default="artifacts/classifier-efficientnet_lite0.pt")
    p.add_argument("--images", type=int, default=2, help="test images to evaluate (default 2)")
    p.add_argument("--model-type", default="vit_b")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--throughput", action="store_true", help="also time encoder throughput (GPU)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "CPU"
    print(f"# SAM {args.model_type} (random weights) in camseg evaluate, {args.images} test images, "
          f"device {args.device} ({dev}), torch {torch.__version__}, {torch.get_num_threads()} threads")
    res = compare(Path(args.data), Path(args.checkpoint), args.images, args.model_type, args.device)
    base = res["rows"]["naive (set_image per call)"]
    print("| way | encoder images | wall (s) | time vs naive |")
    print("| --- | ---: | ---: | ---: |")
    for name, row in res["rows"].items():
        print(f"| {name} | {row['encoder_images']} | {row['seconds']:.1f} | {row['seconds'] / base['seconds']:.2f}x |")
    print(f"same masks both ways: {res['same_masks']}")
    if args.throughput:
        print("\n| dtype | batch | s per batch | images/s |")
        print("| --- | ---: | ---: | ---: |")
        for row in throughput(args.model_type, args.batch_sizes, args.repeats):
            print(f"| {row['dtype']} | {row['batch']} | {row['median_s']:.3f} | {row['images_per_s']:.1f} |")


if __name__ == "__main__":
    main()
