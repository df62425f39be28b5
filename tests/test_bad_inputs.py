"""Bad input, table-driven: each case must raise a clear error from camseg's own checks.

Every row names the call, the exception type and a pattern the message must
match (what was wrong and what was expected). The test also checks that the
error was raised by camseg's code, not deep inside torch, OpenCV or numpy.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TinyNet
from PIL import Image

from camseg.data.dataset import DatasetError, ShapesDataset, normalize
from camseg.data.io import check_output_file, save_mask, to_rgb
from camseg.evaluation.metrics import centre_of_mass, iou, iou_per_image, mean_iou, point_distances, point_metrics
from camseg.models.cam import GradCAM, GradCAMPlusPlus
from camseg.models.classifier import load_checkpoint
from camseg.pipelines.pipeline import BasicSamPipeline, ForegroundBackgroundPipeline
from camseg.pipelines.segment import segment_image
from camseg.prompting.prompts import PromptContext
from camseg.segmenters import get_segmenter
from camseg.segmenters.checkpoints import CheckpointError, resolve_checkpoint
from camseg.segmenters.sam import load_sam

H, W = 48, 64


class Env:
    """Everything the cases call, built once."""

    def __init__(self, root: Path, dataset: Path) -> None:
        torch.manual_seed(0)
        self.model = TinyNet().eval()
        self.cam = GradCAM(self.model, [self.model.conv2])
        self.campp = GradCAMPlusPlus(self.model, [self.model.conv2])
        self.pipe = BasicSamPipeline(self.model, get_segmenter("regiongrow"), [self.model.conv2])
        self.fg_pipe = ForegroundBackgroundPipeline(self.model, get_segmenter("regiongrow"), [self.model.conv2])
        rng = np.random.default_rng(0)
        self.uint8 = rng.integers(0, 256, (2, H, W, 3), dtype=np.uint8)
        self.x = normalize(self.uint8)
        self.seg = get_segmenter("regiongrow")
        self.seg.set_image(self.uint8[0])
        self.fresh_seg = get_segmenter("regiongrow")
        self.gt = np.zeros((2, H, W), bool)
        self.gt[:, 10:20, 10:30] = True
        self.root, self.dataset = root, dataset
        self._n = 0
        # checkpoints: one good classifier file, then broken variants
        from camseg.models.classifier import save_checkpoint, train_classifier

        clf = train_classifier(dataset, arch="resnet18", epochs=1, batch_size=4, pretrained=False, input_scale=1.0,
                               seed=0, progress=False, log=None)
        self.good_ckpt = save_checkpoint(clf.model, clf.meta, root / "good.pt")
        data = self.good_ckpt.read_bytes()
        (root / "truncated.pt").write_bytes(data[: len(data) // 2])
        (root / "garbage.pt").write_bytes(b"\x89PNG not a checkpoint" * 10)
        save_checkpoint(clf.model, dict(clf.meta, arch="efficientnet_lite0"), root / "wrong_arch.pt")
        torch.save({"weights": torch.zeros(3)}, root / "foreign.pt")
        torch.save({"image_encoder.pos_embed": torch.zeros(1)}, root / "sam_partial_state.pt")
        # a model with a 5x5 kernel on its input: images under 5 x 5 pixels are too small for it
        self.big_kernel = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                              torch.nn.Flatten(), torch.nn.Linear(4, 5)).eval()
        self.image = root / "image.png"
        Image.fromarray(self.uint8[0]).save(self.image)
        self.tiny_image = root / "tiny.png"
        Image.fromarray(self.uint8[0, :11, :15]).save(self.tiny_image)

    def broken_dataset(self, change: Callable[[Path], None]) -> Path:
        """A copy of the tiny dataset with ``change`` applied to it."""
        self._n += 1
        copy = self.root / f"broken{self._n}"
        shutil.copytree(self.dataset, copy)
        change(copy)
        return copy


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_dataset, fake_cifar) -> Env:
    e = Env(tmp_path_factory.mktemp("bad"), tiny_dataset)
    e.fake_cifar = fake_cifar
    return e


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[Env], object]
    error: type[BaseException]
    match: str


def _unlink(*parts: str) -> Callable[[Path], None]:
    return lambda root: root.joinpath(*parts).unlink()


def _write(rel: str, data: bytes) -> Callable[[Path], None]:
    return lambda root: (root / rel).write_bytes(data)


def _copy(src: str, dst: str) -> Callable[[Path], None]:
    return lambda root: shutil.copy(root / src, root / dst)


def _small_mask(root: Path) -> None:
    Image.new("L", (32, 32)).save(root / "masks/test/00001.png")


def _empty_mask(root: Path) -> None:
    Image.new("L", (64, 48)).save(root / "masks/test/00002.png")


def _evaluate(e: Env, data: Path | None = None, **kw) -> dict:
    from camseg.evaluation.evaluate import evaluate

    return evaluate(data or e.dataset, e.good_ckpt, get_segmenter("regiongrow"), progress=False, **kw)


def _build_into(e: Env, make: Callable[[Path], None], **kw) -> Path:
    from conftest import TINY_SIZES

    from camseg.data.dataset import build_dataset

    e._n += 1
    out = e.root / f"out{e._n}"
    make(out)
    return build_dataset(out, cifar10=e.fake_cifar, sizes=TINY_SIZES, progress=False, **kw)


def _precious(out: Path) -> None:
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")


def _xy(x: float, y: float) -> np.ndarray:
    return np.array([[x, y]], np.float32)


ONE = np.array([1])

CASES = [
    # ---------------------------------------------------------------- CAM input
    Case("cam/rank-3", lambda e: e.cam(e.x[0]), ValueError, r"shape \(B, 3, H, W\)"),
    Case("cam/one-channel", lambda e: e.cam(e.x[:, :1]), ValueError, r"3 channels in axis 1 \(B, 3, H, W\)"),
    Case("cam/channels-last", lambda e: e.cam(e.x.permute(0, 2, 3, 1)), ValueError, r"channels|\(B, 3, H, W\)"),
    Case("cam/empty-batch", lambda e: e.cam(e.x[:0]), ValueError, "empty batch"),
    Case("cam/uint8", lambda e: e.cam(torch.as_tensor(e.uint8).permute(0, 3, 1, 2).contiguous()), ValueError,
         "normalised float tensor, got dtype torch.uint8"),
    Case("cam/nan", lambda e: e.cam(torch.where(torch.rand_like(e.x) < 0.01, torch.nan, e.x)), ValueError, "NaN"),
    Case("cam/inf", lambda e: e.cam(e.x.index_put((torch.tensor([0]),), torch.tensor(float("inf")))), ValueError,
         "infinite"),
    Case("cam/numpy", lambda e: e.cam(e.x.numpy()), TypeError, "must be a torch.Tensor"),
    Case("cam/targets-length", lambda e: e.cam(e.x, [0]), ValueError, "expected 2, got 1"),
    Case("cam/target-too-big", lambda e: e.cam(e.x, [0, 5]), ValueError, "out of range|0..4"),
    Case("cam/target-negative", lambda e: e.cam(e.x, [-1, 0]), ValueError, "out of range|0..4"),
    Case("cam/target-float", lambda e: e.cam(e.x, [0.5, 1.0]), ValueError, "integers"),
    Case("cam++/nan", lambda e: e.campp(e.x * torch.nan), ValueError, "NaN"),
    Case("cam/layer-not-in-model", lambda e: GradCAM(e.model, [torch.nn.Conv2d(3, 3, 1)]), ValueError,
         "not a submodule"),
    Case("cam/one-layer-not-a-list", lambda e: GradCAM(e.model, e.model.conv2), TypeError, "iterable of modules"),
    # ----------------------------------------------------------- pipeline input
    Case("pipeline/0-255-floats", lambda e: e.pipe(torch.as_tensor(e.uint8).permute(0, 3, 1, 2).float()),
         ValueError, "raw 0..255 pixel values"),
    Case("pipeline/0-1-floats", lambda e: e.pipe(torch.as_tensor(e.uint8).permute(0, 3, 1, 2).float() / 255),
         ValueError, r"\[0, 1\].*not normalised"),
    Case("pipeline/channels-last", lambda e: e.pipe(e.x.permute(0, 2, 3, 1)), ValueError, "channels last"),
    Case("pipeline/numpy-uint8", lambda e: e.pipe(e.uint8), ValueError, "camseg.data.dataset.normalize"),
    Case("pipeline/empty-batch", lambda e: e.pipe(e.x[:0]), ValueError, "empty"),
    Case("pipeline/nan", lambda e: e.pipe(e.x * torch.nan), ValueError, "NaN"),
    Case("pipeline/unknown-class", lambda e: e.pipe.run(e.x, targets="hexagon"), ValueError,
         "unknown class name 'hexagon'; expected one of circle"),
    Case("pipeline/targets-length", lambda e: e.pipe.run(e.x, targets=[0, 1, 2]), ValueError, "expected 2, got 3"),
    Case("pipeline/target-out-of-range", lambda e: e.pipe.run(e.x, targets=[0, 7]), ValueError, "out of range 0..4"),
    Case("pipeline/points-(B,N,3)", lambda e: e.pipe.segment(e.x, np.zeros((2, 1, 3)), np.ones((2, 1))),
         ValueError, r"\(B, N, 2\)"),
    Case("pipeline/points-for-other-batch", lambda e: e.pipe.segment(e.x, np.zeros((3, 1, 2)), np.ones((3, 1))),
         ValueError, "3 point sets for 2 images"),
    Case("pipeline/all-padding", lambda e: e.pipe.segment(e.x, np.zeros((2, 1, 2)), -np.ones((2, 1))),
         ValueError, "no prompt point"),
    Case("pipeline/not-a-segmenter", lambda e: BasicSamPipeline(e.model, object(), [e.model.conv2]), TypeError,
         "set_image"),
    # --------------------------------------------------------- segmenter input
    Case("segmenter/float-image", lambda e: e.fresh_seg.set_image(e.uint8[0] / 255.0), ValueError,
         r"uint8 .*\(image \* 255\)"),
    Case("segmenter/channels-first", lambda e: e.fresh_seg.set_image(e.uint8[0].transpose(2, 0, 1).copy()),
         ValueError, "channels first"),
    Case("segmenter/grey", lambda e: e.fresh_seg.set_image(e.uint8[0, ..., 0]), ValueError, r"\(H, W, 3\)"),
    Case("segmenter/list", lambda e: e.fresh_seg.set_image(e.uint8[0].tolist()), TypeError, "numpy array"),
    Case("segmenter/empty-image", lambda e: e.fresh_seg.set_image(np.zeros((0, 5, 3), np.uint8)), ValueError,
         "empty"),
    Case("segmenter/predict-before-set-image", lambda e: get_segmenter("regiongrow").predict(_xy(1, 1), ONE),
         RuntimeError, r"call set_image\(image\) before predict"),
    Case("segmenter/point-outside", lambda e: e.seg.predict(_xy(70, 10), ONE), ValueError,
         r"outside the image: points are \(x, y\) with 0 <= x <= 63"),
    Case("segmenter/row-col-swapped", lambda e: e.seg.predict(_xy(10, 55), ONE), ValueError,
         r"\(row, col\) given instead of \(x, y\)"),
    Case("segmenter/one-point-1d", lambda e: e.seg.predict(np.array([3.0, 4.0]), ONE), ValueError, r"\(N, 2\)"),
    Case("segmenter/points-(N,3)", lambda e: e.seg.predict(np.zeros((1, 3)), ONE), ValueError, r"\(N, 2\)"),
    Case("segmenter/label-2", lambda e: e.seg.predict(_xy(3, 4), np.array([2])), ValueError,
         r"1 \(foreground\) or 0 \(background\), got \[2\]"),
    Case("segmenter/float-labels", lambda e: e.seg.predict(_xy(3, 4), np.array([1.0])), ValueError, "integers"),
    Case("segmenter/labels-length", lambda e: e.seg.predict(_xy(3, 4), np.array([1, 0])), ValueError,
         r"shape \(N,\) = \(1,\)"),
    Case("segmenter/no-foreground", lambda e: e.seg.predict(_xy(3, 4), np.array([0])), ValueError,
         "no foreground point"),
    Case("segmenter/nan-point", lambda e: e.seg.predict(_xy(np.nan, 4), ONE), ValueError, "NaN"),
    Case("segmenter/empty-prompt", lambda e: e.seg.predict(np.zeros((0, 2)), np.zeros(0, int)), ValueError,
         "empty"),
    Case("segmenter/unknown-name", lambda e: get_segmenter("sam2"), ValueError, "unknown segmenter"),
    # ----------------------------------------------------------------- metrics
    Case("metrics/mask-sizes-differ", lambda e: iou(e.gt[0], e.gt[0, :10]), ValueError, "same"),
    Case("metrics/batch-sizes-differ", lambda e: iou_per_image(e.gt, e.gt[:1]), ValueError, "same"),
    Case("metrics/mask-0-255", lambda e: iou(e.gt[0] * 255, e.gt[0]), ValueError, "boolean .or 0/1."),
    Case("metrics/mean-of-nothing", lambda e: mean_iou(e.gt[:0], e.gt[:0]), ValueError, "empty batch"),
    Case("metrics/empty-gt-centre", lambda e: centre_of_mass(np.zeros((H, W), bool)), ValueError,
         "empty mask is undefined"),
    Case("metrics/empty-gt-distance", lambda e: point_distances(_xy(3, 3), np.zeros((H, W), bool)), ValueError,
         "empty mask"),
    Case("metrics/empty-gt-in-batch",
         lambda e: point_metrics(np.zeros((2, 1, 2)), np.ones((2, 1)), np.stack([e.gt[0], np.zeros((H, W), bool)])),
         ValueError, r"gt_masks \[1\] have no True pixel"),
    Case("metrics/label-2", lambda e: point_metrics(np.zeros((2, 1, 2)), np.full((2, 1), 2), e.gt), ValueError,
         r"1 \(fg\), 0 \(bg\) or -1"),
    Case("metrics/points-outside", lambda e: point_metrics(np.full((2, 1, 2), 99.0), np.ones((2, 1)), e.gt),
         ValueError, r"outside the image.*not \(row, col\)"),
    Case("metrics/points-shape", lambda e: point_metrics(np.zeros((2, 2)), np.ones((2, 1)), e.gt), ValueError,
         r"\(B, N, 2\)"),
    # ------------------------------------------------------------- checkpoints
    Case("classifier/missing", lambda e: load_checkpoint(e.root / "nope.pt"), FileNotFoundError, "camseg train"),
    Case("classifier/truncated", lambda e: load_checkpoint(e.root / "truncated.pt"), ValueError,
         "not a readable checkpoint"),
    Case("classifier/garbage", lambda e: load_checkpoint(e.root / "garbage.pt"), ValueError,
         "not a readable checkpoint"),
    Case("classifier/foreign", lambda e: load_checkpoint(e.root / "foreign.pt"), ValueError,
         "not a camseg classifier checkpoint"),
    Case("classifier/wrong-architecture", lambda e: load_checkpoint(e.root / "wrong_arch.pt"), ValueError,
         "do not fit architecture 'efficientnet_lite0'"),
    Case("sam/truncated", lambda e: load_sam("vit_b", e.root / "truncated.pt", "cpu"), CheckpointError,
         "cannot load SAM checkpoint .*truncated.pt.*corrupt"),
    Case("sam/garbage", lambda e: load_sam("vit_b", e.root / "garbage.pt", "cpu"), CheckpointError,
         "corrupt or not a PyTorch state dict"),
    Case("sam/wrong-architecture", lambda e: load_sam("vit_b", e.root / "sam_partial_state.pt", "cpu"),
         CheckpointError, "is not a SAM vit_b checkpoint"),
    Case("sam/classifier-file", lambda e: load_sam("vit_b", e.good_ckpt, "cpu"), CheckpointError,
         "does not hold a state dict|is not a SAM vit_b checkpoint"),
    Case("sam/unknown-type", lambda e: load_sam("vit_x", e.good_ckpt), ValueError, "unknown SAM model type 'vit_x'"),
    # ----------------------------------------------------------------- dataset
    Case("dataset/missing-split", lambda e: ShapesDataset(e.broken_dataset(lambda r: shutil.rmtree(r / "masks/val")),
                                                          "val"), DatasetError, r"split 'val' is missing"),
    Case("dataset/missing-mask", lambda e: ShapesDataset(e.broken_dataset(_unlink("masks/test/00003.png")), "test"),
         DatasetError, r"has no mask \(masks/test/00003.png\)"),
    Case("dataset/missing-label", lambda e: ShapesDataset(e.broken_dataset(_unlink("labels/test/00002.txt")), "test"),
         DatasetError, r"00002"),
    Case("dataset/extra-image", lambda e: ShapesDataset(
        e.broken_dataset(_copy("images/test/00000.png", "images/test/extra.png")), "test"),
        DatasetError, r"images/test/extra.png has no mask"),
    Case("dataset/unpaired-mask", lambda e: ShapesDataset(
        e.broken_dataset(_copy("masks/test/00000.png", "masks/test/lonely.png")), "test"),
        DatasetError, r"lonely"),
    Case("dataset/unreadable-png", lambda e: ShapesDataset(
        e.broken_dataset(_write("images/test/00004.png", b"not a png")), "test").arrays(progress=False),
        DatasetError, r"cannot read .*00004.png"),
    Case("dataset/unknown-class", lambda e: ShapesDataset(
        e.broken_dataset(_write("labels/test/00002.txt", b"hexagon\n")), "test"),
        DatasetError, r"unknown class name 'hexagon'; expected one of circle"),
    Case("dataset/mask-size", lambda e: ShapesDataset(e.broken_dataset(_small_mask), "test").arrays(progress=False),
         DatasetError, r"is 32x32 but its image .* is 64x48"),
    Case("dataset/not-a-folder", lambda e: ShapesDataset(e.root / "nothing-here", "test"), DatasetError,
         "nothing-here"),
    # ------------------------------------------------------- round 2 (issue 13)
    Case("cam/target-fraction", lambda e: e.cam(e.x, 3.5), ValueError, "integers, got 3.5"),
    Case("cam/target-name", lambda e: e.cam(e.x, "star"), ValueError, "resolve_targets"),
    Case("cam/image-too-small-for-the-model",
         lambda e: GradCAM(e.big_kernel, [e.big_kernel[0]])(torch.randn(1, 3, 4, 4)), ValueError,
         r"\(4 x 4, H x W\) are too small for this model"),
    Case("pipeline/target-fraction", lambda e: e.pipe.run(e.x, targets=2.5), ValueError, "class indices or names"),
    Case("pipeline/targets-2d", lambda e: e.pipe.run(e.x, targets=torch.zeros(2, 1, dtype=torch.int64)), ValueError,
         "1-d sequence"),
    Case("prompts/context-cams-0-255", lambda e: PromptContext(e.uint8, e.x, np.full((2, H, W), 200.0),
                                                               np.zeros(2, int)), ValueError, r"\[0, 1\]"),
    Case("prompts/context-cams-nan", lambda e: PromptContext(e.uint8, e.x, np.full((2, H, W), np.nan),
                                                             np.zeros(2, int)), ValueError, "NaN"),
    Case("segment/image-too-small", lambda e: segment_image(e.uint8[0, :11, :15], e.model, [e.model.conv2], e.seg),
         ValueError, r"15 x 11 pixels .*at least 16 x 12"),
    Case("segment/unknown-pipeline", lambda e: segment_image(e.uint8[0], e.model, [e.model.conv2], e.seg,
                                                             pipeline="cam"), ValueError, "unknown pipeline 'cam'"),
    Case("io/float-image-out-of-range", lambda e: to_rgb(Image.fromarray(np.full((4, 4), 7.0, np.float32), "F")),
         ValueError, r"values in \[0, 1\]"),
    Case("io/mask-as-jpeg", lambda e: save_mask(e.gt[0], e.root / "m.jpg"), ValueError, "losslessly"),
    Case("io/output-is-a-folder", lambda e: check_output_file(e.root, "--out", (".png",)), ValueError,
         "is a folder; give a file name"),
    Case("io/output-without-extension", lambda e: check_output_file(e.root / "mask", "--out", (".png",)), ValueError,
         "no file extension"),
    Case("io/output-is-the-input", lambda e: check_output_file(e.image, "--out", (".png",), inputs=[e.image]),
         ValueError, "is the input file"),
    Case("classifier/checkpoint-is-a-folder", lambda e: load_checkpoint(e.root), ValueError,
         "is a folder, not a checkpoint file"),
    Case("sam/checkpoint-is-a-folder", lambda e: resolve_checkpoint("vit_b", e.root, download=False),
         CheckpointError, "is a folder, not a checkpoint file"),
    Case("evaluate/empty-ground-truth-names-the-file",
         lambda e: _evaluate(e, e.broken_dataset(_empty_mask)), DatasetError, r"masks/test/00002.png"),
    Case("evaluate/limit-0", lambda e: _evaluate(e, limit=0), ValueError, "limit must be an integer >= 1"),
    Case("evaluate/limit-negative", lambda e: _evaluate(e, limit=-3), ValueError, "limit must be an integer >= 1"),
    Case("evaluate/batch-size-0", lambda e: _evaluate(e, batch_size=0), ValueError, "batch_size must be"),
    Case("data/overwrite-a-foreign-folder", lambda e: _build_into(e, _precious, overwrite=True), FileExistsError,
         "not a camseg dataset .* even with --overwrite"),
    Case("data/out-is-a-file", lambda e: _build_into(e, lambda p: p.write_text("x")), FileExistsError,
         "is a file, not a dataset folder"),
    Case("data/negative-seed", lambda e: _build_into(e, lambda p: None, seed=-1), ValueError, "seed must be"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_a_clear_error(case, env):
    with pytest.raises(case.error, match=case.match) as info:
        case.call(env)
    raised_in = Path(str(info.traceback[-1].path))
    assert "camseg" in raised_in.parts, f"raised in {raised_in}, not by camseg's own checks"


def test_the_table_is_large():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


# ---------------------------------------------------------------------------
# Inputs that used to fail and are now accepted: each must give the same answer as the plain form.


def _same_maps(e: Env, call: Callable[[], np.ndarray], targets=(3, 3)) -> None:
    np.testing.assert_allclose(call(), e.cam(e.x, list(targets)), atol=1e-5)


ACCEPTED = {
    "cam/one-int-for-the-batch": lambda e: _same_maps(e, lambda: e.cam(e.x, targets=3)),
    "cam/0-d-tensor": lambda e: _same_maps(e, lambda: e.cam(e.x, targets=torch.tensor(3))),
    "cam/numpy-int": lambda e: _same_maps(e, lambda: e.cam(e.x, targets=np.int64(3))),
    "cam/whole-float": lambda e: _same_maps(e, lambda: e.cam(e.x, targets=3.0)),
    "cam/tensor-of-targets": lambda e: _same_maps(e, lambda: e.cam(e.x, targets=torch.tensor([3, 1])), (3, 1)),
    "cam/float64-input": lambda e: _same_maps(e, lambda: e.cam(e.x.double(), [3, 3])),
    "cam/inside-inference-mode": lambda e: _same_maps(e, lambda: _in_inference_mode(lambda: e.cam(e.x, [3, 3]))),
    "pipeline/0-d-tensor": lambda e: _same_targets(e, torch.tensor(3)),
    "pipeline/whole-float": lambda e: _same_targets(e, 3.0),
    "pipeline/class-name": lambda e: _same_targets(e, "star"),
    "pipeline/float64-input": lambda e: np.testing.assert_array_equal(
        e.pipe.run(e.x.double(), targets=3).masks, e.pipe.run(e.x, targets=3).masks),
    "pipeline/float64-input-mask-scoring": lambda e: np.testing.assert_array_equal(
        e.fg_pipe.run(e.x.double(), targets=3).masks, e.fg_pipe.run(e.x, targets=3).masks),
}


def _in_inference_mode(call):
    with torch.inference_mode():
        return call()


def _same_targets(e: Env, targets) -> None:
    out = e.pipe.run(e.x, targets=targets)
    assert out.targets.tolist() == [3, 3]
    np.testing.assert_array_equal(out.masks, e.pipe.run(e.x, targets=[3, 3]).masks)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_inputs_give_the_plain_answer(name, env):
    ACCEPTED[name](env)


def test_a_model_in_train_mode_is_explained_in_eval_mode_with_a_warning(env):
    model = env.model
    reference = env.cam(env.x, [3, 3])
    model.train()
    model.conv1.eval()  # a module with its own mode: it must come back as it was
    stats = model.bn.running_mean.clone()
    with pytest.warns(UserWarning, match="model is in train mode"):
        maps = env.cam(env.x, [3, 3])
    with pytest.warns(UserWarning, match="train mode"):
        first = env.cam(env.x[:1], [3])  # alone: the same map as within the batch
    try:
        np.testing.assert_allclose(maps, reference, atol=1e-6)
        np.testing.assert_allclose(first[0], maps[0], atol=1e-6)
        torch.testing.assert_close(model.bn.running_mean, stats)  # no batch-norm update
        assert model.training and model.bn.training and not model.conv1.training
    finally:
        model.eval()


# ---------------------------------------------------------------------------
# The command line: every known error is one line on stderr, exit status 2, no traceback.


@dataclass(frozen=True)
class CliCase:
    id: str
    argv: Callable[[Env], list[str]]
    match: str


def _seg(e: Env, *extra: str, image: Path | None = None) -> list[str]:
    return ["segment", str(image or e.image), "--checkpoint", str(e.good_ckpt), "--segmenter", "offline",
            "--out", str(e.root / "mask.png"), *extra]


def _ev(e: Env, *extra: str) -> list[str]:
    return ["evaluate", "--data", str(e.dataset), "--checkpoint", str(e.good_ckpt), "--segmenter", "offline", *extra]


def _tr(e: Env, *extra: str) -> list[str]:
    return ["train", "--data", str(e.dataset), "--arch", "resnet18", "--epochs", "1", "--no-pretrained",
            "--input-scale", "1", "--out", str(e.root / "c.pt"), *extra]


CLI_CASES = [
    CliCase("evaluate/limit-negative", lambda e: _ev(e, "--limit", "-3"), r"--limit: expected an integer >= 1, got -3"),
    CliCase("evaluate/limit-0", lambda e: _ev(e, "--limit", "0"), r"--limit: expected an integer >= 1, got 0"),
    CliCase("evaluate/batch-size-0", lambda e: _ev(e, "--batch-size", "0"), r"--batch-size: expected an integer >= 1"),
    CliCase("evaluate/batch-size-negative", lambda e: _ev(e, "--batch-size", "-1"), r"--batch-size: expected an int"),
    CliCase("evaluate/json-is-a-folder", lambda e: _ev(e, "--json", str(e.root)), r"--json .* is a folder"),
    CliCase("evaluate/empty-mask-file", lambda e: _ev(e, "--split", "test") [:2] + [str(e.broken_dataset(_empty_mask))]
            + _ev(e)[3:], r"masks/test/00002.png"),
    CliCase("train/batch-size-0", lambda e: _tr(e, "--batch-size", "0"), r"--batch-size: expected an integer >= 1"),
    CliCase("train/lr-nan", lambda e: _tr(e, "--lr", "nan"), r"--lr: expected a finite number > 0"),
    CliCase("train/out-is-a-folder", lambda e: _tr(e)[:-2] + ["--out", str(e.root)], r"--out .* is a folder"),
    CliCase("data/seed-negative", lambda e: ["data", "build", "--out", str(e.root / "d"), "--seed", "-1"],
            r"--seed: expected an integer >= 0"),
    CliCase("data/train-negative", lambda e: ["data", "build", "--out", str(e.root / "d"), "--train", "-5"],
            r"--train: expected an integer >= 0"),
    CliCase("segment/mask-as-jpeg", lambda e: _seg(e)[:-2] + ["--out", str(e.root / "m.jpg")],
            r"\.jpg is not supported.*lossless"),
    CliCase("segment/out-is-a-folder", lambda e: _seg(e)[:-2] + ["--out", str(e.root)], r"is a folder; give a file"),
    CliCase("segment/out-without-extension", lambda e: _seg(e)[:-2] + ["--out", str(e.root / "mask")],
            "no file extension"),
    CliCase("segment/out-is-the-input", lambda e: _seg(e)[:-2] + ["--out", str(e.image)], "is the input file"),
    CliCase("segment/image-too-small", lambda e: _seg(e, image=e.tiny_image), r"15 x 11 pixels .*at least 16 x 12"),
    CliCase("segment/checkpoint-is-a-folder", lambda e: _seg(e)[:2] + ["--checkpoint", str(e.root)] + _seg(e)[4:],
            "is a folder, not a checkpoint file"),
    CliCase("segment/unknown-target", lambda e: _seg(e, "--target", "hexagon"), "unknown class name 'hexagon'"),
    CliCase("segment/sam-checkpoint-corrupt", lambda e: _seg(e)[:4] + ["--segmenter", "sam"] + _seg(e)[6:],
            r"SAM checkpoint .*truncated\.pt.* corrupt"),
    CliCase("segment/write-fails", lambda e: _seg(e)[:-2] + ["--out", "/proc/camseg-mask.png"], r"/proc"),
    CliCase("report/nothing-cached", lambda e: ["report", "--workdir", str(e.root / "empty-work"), "--out",
                                                str(e.root / "r.pdf")], r"no cached results in .*camseg build"),
    CliCase("report/out-not-pdf", lambda e: ["report", "--workdir", str(e.root), "--out", str(e.root / "r.html")],
            r"\.html is not supported here; expected one of \.pdf"),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_error_is_one_line_with_exit_2(case, env, capsys, monkeypatch):
    from camseg.cli import main

    monkeypatch.setenv("CAMSEG_SAM_CHECKPOINT", str(env.root / "truncated.pt"))
    argv = case.argv(env)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("camseg"), err
    assert "Traceback" not in err
    assert __import__("re").search(case.match, lines[0]), lines[0]


def test_cli_debug_shows_the_traceback(env, capsys):
    from camseg.cli import main

    with pytest.raises(ValueError, match="is a folder, not a checkpoint"):
        main(_seg(env)[:2] + ["--checkpoint", str(env.root)] + _seg(env)[4:] + ["--debug"])
