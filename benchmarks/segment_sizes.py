"""``camseg segment`` on one test image scaled to larger sizes: wall time, peak memory, IoU.

Each run is a fresh process under ``/usr/bin/time -v`` (wall clock and maximum
resident set size, so imports and the model count as a user sees them). The
baseline, in the same run, is the old way: the whole pipeline at the image's
own size (``pipe.run(normalize(image[None]))``), which is what ``camseg
segment`` did before it learnt to classify at the classifier's input size.
Sizes above ``--baseline-max`` pixels skip the baseline (it needed 12.5 GB at
2000 x 1500).

    python benchmarks/segment_sizes.py --data artifacts/data --checkpoint artifacts/classifier-efficientnet_lite0.pt

The image is test image ``--index`` upscaled (bicubic) and its mask
(nearest); IoU is against that mask.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

OLD_WAY = """
import sys, numpy as np
from PIL import Image
from camseg.models.classifier import default_cam, load_checkpoint
from camseg.data.dataset import normalize
from camseg.pipelines.pipeline import ForegroundBackgroundPipeline
from camseg.segmenters import get_segmenter
image = np.array(Image.open(sys.argv[1]).convert("RGB"))
model, meta = load_checkpoint(sys.argv[2])
pipe = ForegroundBackgroundPipeline(model, get_segmenter("offline"), cam=default_cam(model, meta["arch"]))
mask = pipe.run(normalize(image[None])).masks[0].numpy()
Image.fromarray(mask.astype(np.uint8) * 255).save(sys.argv[3])
"""


def timed(cmd: list[str]) -> tuple[float, float, int, str]:
    """(wall s, peak RSS MiB, exit status, stdout) of ``cmd`` under /usr/bin/time -v."""
    done = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    h, m, s = (float(g) if g else 0.0 for g in wall.groups())
    rss = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) / 1024
    return h * 3600 + m * 60 + s, rss, done.returncode, done.stdout


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--index", type=int, default=0, help="test image")
    parser.add_argument("--sizes", nargs="+", default=["64x48", "640x480", "1024x768", "2000x1500"])
    parser.add_argument("--baseline-max", type=int, default=1024 * 768, help="largest W*H run the old way")
    args = parser.parse_args()
    from camseg.data.dataset import ShapesDataset

    ds = ShapesDataset(args.data, "test")
    image = Image.open(ds.image_paths[args.index]).convert("RGB")
    gt = Image.open(ds.mask_paths[args.index]).convert("L")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            w, h = (int(v) for v in size.split("x"))
            path = Path(tmp) / f"in-{w}x{h}.png"
            image.resize((w, h), Image.BICUBIC).save(path)
            truth = np.array(gt.resize((w, h), Image.NEAREST)) > 0
            ways = [("camseg segment", [sys.executable, "-m", "camseg.cli", "segment", str(path), "--checkpoint",
                                        args.checkpoint, "--segmenter", "offline", "--out", f"{tmp}/new.png"],
                     f"{tmp}/new.png")]
            if w * h <= args.baseline_max:
                ways.insert(0, ("old: pipeline at full size", [sys.executable, "-c", OLD_WAY, str(path),
                                                               args.checkpoint, f"{tmp}/old.png"], f"{tmp}/old.png"))
            for name, cmd, out in ways:
                wall, rss, code, stdout = timed(cmd)
                score = iou(np.array(Image.open(out)) > 0, truth) if code == 0 else float("nan")
                said = re.search(r"class '(\w+)' \(p = ([\d.]+)", stdout)
                rows.append((f"{w} x {h}", name, wall, rss, score, f"{said.group(1)} {said.group(2)}" if said else ""))
                print(f"{w} x {h}  {name:28s} {wall:6.1f} s  {rss:7.0f} MiB  IoU {score:.3f}  {rows[-1][-1]}",
                      flush=True)
    label_file = ds.mask_paths[args.index].parents[2] / "labels" / "test" / f"{ds.stems[args.index]}.txt"
    print(f"\ntest image {args.index} ({ds.image_paths[args.index].name}), label {label_file.read_text().strip()}")
    print("| size | way | wall (s) | peak RSS (MiB) | IoU | class, p |\n| --- | --- | ---: | ---: | ---: | --- |")
    for size, name, wall, rss, score, said in rows:
        print(f"| {size} | {name} | {wall:.1f} | {rss:.0f} | {score:.3f} | {said} |")


if __name__ == "__main__":
    main()
