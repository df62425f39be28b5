"""Class activation maps: Grad-CAM and Grad-CAM++ behind one base class.

Both methods weight the activations ``A^k`` (k = channel) of a target layer
by per-channel weights ``w^c_k`` for the class ``c`` being explained, and keep
the positive part:

.. math::

    L^c = \\mathrm{ReLU}\\Big(\\sum_k w^c_k A^k\\Big)

The map is upsampled (bilinear) to the input size (H, W) and rescaled
min..max to 0..1 per image; with several target layers the result is the mean
of the rescaled maps. A constant map becomes all zeros, never NaN.

* :class:`GradCAM` (Selvaraju et al., ICCV 2017):
  ``w^c_k = mean_ij dy^c / dA^k_ij``.
* :class:`GradCAMPlusPlus` (Chattopadhay et al., WACV 2018): weights the
  positive gradients by ``alpha = g^2 / (2 g^2 + sum_ab A_ab g^3)``, using the
  exponential-score identity for the higher derivatives.

A variant only implements :meth:`BaseCAM.channel_weights`.

Cost: one forward and one backward per batch. The forward runs without
autograd up to the first target layer, and gradients are taken with
:func:`torch.autograd.grad` with respect to the target activations only, so
no parameter gradient is computed, nothing is written to ``.grad`` and the
backward stops at the earliest target layer. A model in train mode is
explained in eval mode, with a warning (batch-norm statistics would change
and each map would depend on the rest of the batch); each module's own
train/eval flag is restored afterwards, and ``requires_grad`` flags are never
changed. Float64 input is cast to the model's dtype; a call inside
``torch.inference_mode()`` works. Hooks are removed when the call ends, also when it raises.

Only built-ins, torch, torchvision, numpy, scipy, cv2, PIL, tqdm and
matplotlib may be imported here (book: Reference › API contracts).

Example:
    >>> import torch
    >>> from torchvision.models import resnet18
    >>> _ = torch.manual_seed(0)
    >>> model = resnet18(num_classes=5).eval()
    >>> cam = GradCAM(model, [model.layer3[-1]])
    >>> maps = cam(torch.randn(2, 3, 48, 64), targets=[0, 3])
    >>> maps.shape, maps.dtype, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
    ((2, 48, 64), dtype('float32'), True, True)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AugmentedCAM", "BaseCAM", "CAMOutput", "ForwardPass", "GradCAM", "GradCAMPlusPlus", "eval_mode",
           "in_train_mode", "rescale_maps", "translate"]


@dataclass(frozen=True)
class CAMOutput:
    """Everything one CAM call computed.

    Attributes:
        maps: float32 (B, H, W) in [0, 1], the mean over target layers.
        layer_maps: float32 (L, B, H, W), each layer's rescaled map.
        targets: int64 (B,), the class explained for each image.
        logits: float32 (B, C), the model's output.
        probs: the softmax (B, C) of the model's own output for the image as given (for
            :class:`AugmentedCAM`: the unshifted, unmirrored copy), a float tensor on the
            model's device; None when unknown.
        features: the input of the model's last ``nn.Linear`` (its penultimate features) in
            that forward pass, float (B, D) on the model's device; None when the model has no
            ``nn.Linear``. With ``probs``, what a classifier run on the same batch gives (e.g.
            ``camseg.prompting.regions.classifier_outputs``), without running it again.
    """

    maps: np.ndarray
    layer_maps: np.ndarray
    targets: np.ndarray
    logits: np.ndarray
    probs: torch.Tensor | None = None
    features: torch.Tensor | None = None


@dataclass
class ForwardPass:
    """A CAM's forward pass through the model, kept for the backward (:meth:`BaseCAM.explain`).

    Attributes:
        logits: float (B, C), the model's output; part of the autograd graph from the first
            target layer on.
        activations: the target layers' outputs (B, K, h, w), each requiring grad.
        features: float (B, D), the input of the model's last ``nn.Linear`` (detached), or None.
        height: the input's height in pixels.
        width: the input's width in pixels.
    """

    logits: torch.Tensor
    activations: list[torch.Tensor]
    features: torch.Tensor | None
    height: int
    width: int


def rescale_maps(maps: torch.Tensor, rel_tol: float = 1e-6) -> torch.Tensor:
    """Rescale each map of a batch (B, H, W) min..max to 0..1.

    A map whose range is at most ``rel_tol`` times its largest magnitude (a
    constant map, e.g. all zero) becomes all zeros instead of NaN.
    """
    flat = maps.flatten(1)
    lo = flat.min(1).values.view(-1, 1, 1)
    hi = flat.max(1).values.view(-1, 1, 1)
    span = hi - lo
    scale = torch.maximum(hi.abs(), lo.abs())
    ok = span > rel_tol * scale
    return torch.where(ok, (maps - lo) / torch.where(ok, span, torch.ones_like(span)), torch.zeros_like(maps))


# The one implementation of camseg.models.cam' helpers lives here, because the Grad-CAM contract
# (book: Reference › API contracts) lets this module import only built-ins, torch, torchvision, numpy,
# scipy, cv2, PIL, tqdm and matplotlib; camseg.models.cam re-exports them for every other module.
def in_train_mode(model: nn.Module) -> list[str]:
    """Names of the submodules of ``model`` (``""`` for the model itself) in train mode
    whose mode changes what they compute (batch norm, dropout and their kin:
    every module with running statistics or a dropout probability)."""
    return [name for name, m in model.named_modules()
            if m.training and isinstance(m, (nn.modules.batchnorm._NormBase, nn.modules.dropout._DropoutNd))]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` and all its submodules in eval mode for the block, then restore
    each module's own ``training`` flag (also when the block raises).

    Yields:
        ``model`` itself.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training


class _ActivationHooks:
    """Forward hooks that capture the target layers' outputs for autograd.

    The model's forward is expected to run under ``torch.no_grad()``; when the
    first target layer fires, autograd is switched on and that layer's output
    is replaced by a detached copy that requires grad, so the graph (and the
    backward) starts there. Every captured output is handed on as a clone, so
    an in-place operation after a target layer cannot alter the captured value.
    The enclosing ``no_grad`` context restores the grad mode when it exits.
    """

    def __init__(self, layers: Sequence[nn.Module]) -> None:
        self.layers = list(layers)
        self.activations: list[torch.Tensor | None] = [None] * len(self.layers)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> _ActivationHooks:
        try:
            for i, layer in enumerate(self.layers):
                self._handles.append(layer.register_forward_hook(self._make_hook(i)))
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _make_hook(self, index: int):
        def hook(module: nn.Module, inputs: object, output: object) -> torch.Tensor:
            if not isinstance(output, torch.Tensor):
                raise ValueError(
                    f"target layer {index} ({type(module).__name__}) returned {type(output).__name__}; "
                    "a CAM target layer must return one tensor (B, K, h, w)"
                )
            if self.activations[index] is not None:
                raise ValueError(
                    f"target layer {index} ({type(module).__name__}) ran twice in one forward pass; "
                    "pick a layer that the model calls once"
                )
            if not torch.is_grad_enabled() or not output.requires_grad:
                torch.set_grad_enabled(True)
                output = output.detach().requires_grad_(True)
            self.activations[index] = output
            return output.clone()

        return hook


class BaseCAM:
    """Shared machinery of the gradient-based CAM methods.

    Subclasses implement :meth:`channel_weights` only.

    Args:
        model: a classifier mapping a normalised batch (B, C, H, W) to logits
            (B, num_classes). Its mode is not changed: call ``model.eval()``.
        target_layers: modules of ``model`` whose outputs (B, K, h, w) are
            explained; each must run once per forward pass.
        in_channels: channels an input must have (3 for RGB).
    """

    def __init__(self, model: nn.Module, target_layers: Iterable[nn.Module], in_channels: int = 3) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(target_layers, nn.Module):
            raise TypeError("target_layers must be an iterable of modules, e.g. [model.layer4[-1]], not one module")
        layers = list(target_layers)
        if not layers:
            raise ValueError("target_layers is empty; give at least one layer, e.g. [model.layer4[-1]]")
        own = {id(m) for m in model.modules()}
        for i, layer in enumerate(layers):
            if not isinstance(layer, nn.Module):
                raise TypeError(f"target_layers[{i}] must be an nn.Module, got {type(layer).__name__}")
            if id(layer) not in own:
                raise ValueError(f"target_layers[{i}] ({type(layer).__name__}) is not a submodule of the model")
        self.model = model
        self.target_layers = layers
        self.in_channels = in_channels

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """Per-channel weights (B, K) from activations and gradients (B, K, h, w)."""
        raise NotImplementedError

    def __call__(self, image: torch.Tensor, targets: Iterable[int] | None = None) -> np.ndarray:
        """CAMs of a batch.

        Args:
            image: normalised float batch (B, C, H, W).
            targets: one class index per image, or None for the model's top class.

        Returns:
            float32 array (B, H, W) with values in [0, 1].

        Raises:
            ValueError: wrong rank, channel count, an empty batch, non-finite
                values, ``targets`` of the wrong length or out of range.
        """
        return self.compute(image, targets).maps

    def _check_image(self, image: torch.Tensor) -> None:
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"image must be a torch.Tensor (B, {self.in_channels}, H, W), got {type(image).__name__}")
        if image.ndim != 4:
            hint = " (add a batch axis with image[None])" if image.ndim == 3 else ""
            raise ValueError(f"image must have shape (B, {self.in_channels}, H, W), got {tuple(image.shape)}{hint}")
        if image.shape[1] != self.in_channels:
            hint = " (channels last? use image.permute(0, 3, 1, 2))" if image.shape[-1] == self.in_channels else ""
            raise ValueError(
                f"image must have {self.in_channels} channels in axis 1 (B, {self.in_channels}, H, W), "
                f"got shape {tuple(image.shape)}{hint}"
            )
        if image.shape[0] == 0:
            raise ValueError("image is an empty batch (B = 0); give at least one image")
        if not image.is_floating_point():
            raise ValueError(f"image must be a normalised float tensor, got dtype {image.dtype}")
        if not bool(torch.isfinite(image).all()):
            raise ValueError("image contains NaN or infinite values")

    @staticmethod
    def _check_targets(targets: object, batch: int) -> torch.Tensor:
        if isinstance(targets, (str, bytes)):
            raise ValueError(f"targets must be class indices, got {targets!r}; class names are resolved by "
                             "camseg.pipelines.pipeline.resolve_targets (a pipeline's targets= takes names)")
        one = isinstance(targets, (int, float, np.integer, np.floating)) or (
            isinstance(targets, (np.ndarray, torch.Tensor)) and targets.ndim == 0)
        if one:  # one class for the whole batch
            values = [targets.item() if isinstance(targets, (np.ndarray, torch.Tensor)) else targets] * batch
        elif isinstance(targets, (np.ndarray, torch.Tensor)):
            values = list(np.asarray(targets.detach().cpu() if isinstance(targets, torch.Tensor) else targets)
                          .reshape(-1))
        else:
            try:
                values = list(targets)
            except TypeError:
                raise ValueError(f"targets must be one class index or one per image, got {type(targets).__name__}") \
                    from None
        if len(values) != batch:
            raise ValueError(f"targets must give one class index per image: expected {batch}, got {len(values)}")
        out = []
        for v in values:
            if isinstance(v, torch.Tensor) and v.numel() == 1:
                v = v.item()
            elif isinstance(v, np.ndarray) and v.size == 1:
                v = v.item()
            if isinstance(v, (bool, np.bool_)):
                raise ValueError(f"targets must be integers, got {v!r} ({type(v).__name__})")
            if isinstance(v, (float, np.floating)) and float(v).is_integer():
                v = int(v)  # 3.0 names class 3; 0.5 names none
            if not isinstance(v, (int, np.integer)):
                raise ValueError(f"targets must be integers, got {v!r} ({type(v).__name__})")
            out.append(int(v))
        return torch.as_tensor(out, dtype=torch.int64)

    def compute(self, image: torch.Tensor, targets: Iterable[int] | int | None = None) -> CAMOutput:
        """Like :meth:`~BaseCAM.__call__`, also returning per-layer maps, targets and logits."""
        with torch.inference_mode(False):  # see below
            self._check_image(image)
            batch, _, height, width = image.shape
            target_idx = None if targets is None else self._check_targets(targets, batch)
        self._warn_train_mode()
        # Works inside torch.inference_mode() too: autograd is re-enabled for this call, and the
        # input (an inference tensor there) is copied into a normal one.
        with torch.inference_mode(False), eval_mode(self.model):
            return self.explain(self._forward(image.clone() if image.is_inference() else image), target_idx)

    def _warn_train_mode(self) -> None:
        training = in_train_mode(self.model)
        if training:
            warnings.warn(
                f"the model is in train mode ({len(training)} batch-norm/dropout layers, e.g. "
                f"{training[0] or type(self.model).__name__!r}): the CAM is computed in eval mode, so running "
                "statistics are not updated and each map depends on its image alone; every module's mode is "
                "restored afterwards. Call model.eval() to silence this.", UserWarning, stacklevel=4)

    def forward_pass(self, image: torch.Tensor) -> ForwardPass:
        """The forward half of :meth:`compute` on a normalised batch (B, C, H, W), in eval mode
        (each module's own mode restored afterwards); :meth:`explain` finishes it for the
        classes to explain. Lets a caller read the logits first (e.g. to vote on the class with
        other copies of the image) without running the model twice. ``compute(image, t)`` is
        ``explain(forward_pass(image), t)``."""
        with torch.inference_mode(False):
            self._check_image(image)
        self._warn_train_mode()
        with torch.inference_mode(False), eval_mode(self.model):
            return self._forward(image.clone() if image.is_inference() else image)

    def _forward(self, image: torch.Tensor) -> ForwardPass:
        batch, _, height, width = image.shape
        try:
            param = next(self.model.parameters())
            image = image.to(device=param.device, dtype=param.dtype if param.is_floating_point() else image.dtype)
        except StopIteration:
            pass
        head = None
        for module in self.model.modules():
            if isinstance(module, nn.Linear):
                head = module
        features: list[torch.Tensor] = []
        handle = head.register_forward_hook(lambda mod, inp, out: features.append(inp[0].detach().flatten(1))) \
            if head is not None else None
        try:
            with _ActivationHooks(self.target_layers) as hooks, torch.no_grad():
                try:
                    logits = self.model(image)
                except RuntimeError as exc:
                    text = str(exc)
                    if any(k in text for k in ("Kernel size can't be greater", "Output size is too small",
                                               "smaller than kernel", "should be larger than", "padding")):
                        raise ValueError(f"the images ({height} x {width}, H x W) are too small for this model: "
                                         f"{text.splitlines()[0]}; give larger images (camseg segment resizes to "
                                         "the classifier's input size)") from exc
                    raise
                if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != batch:
                    raise ValueError(
                        f"the model must return logits (B, num_classes) = ({batch}, C), got "
                        f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}"
                    )
                missing = [i for i, a in enumerate(hooks.activations) if a is None]
                if missing:
                    raise ValueError(f"target_layers {missing} did not run in the model's forward pass")
                activations = list(hooks.activations)
        finally:
            if handle is not None:
                handle.remove()
        feats = features[-1] if len(features) == 1 and features[-1].shape[0] == batch else None
        return ForwardPass(logits, activations, feats, height, width)

    def explain(self, fwd: ForwardPass, targets: Iterable[int] | int | None = None) -> CAMOutput:
        """The maps of a :meth:`forward_pass` for ``targets`` (one class index per image, or
        None for the top class of its logits): the backward half of :meth:`compute`. Each pass
        can be explained once (the backward frees its graph)."""
        with torch.inference_mode(False):  # works inside torch.inference_mode() too
            return self._explain(fwd, targets)

    def _explain(self, fwd: ForwardPass, targets: Iterable[int] | int | None) -> CAMOutput:
        logits, activations, height, width = fwd.logits, fwd.activations, fwd.height, fwd.width
        with torch.enable_grad():
            target_idx = None if targets is None else self._check_targets(targets, len(logits))
            if target_idx is None:
                target_idx = logits.argmax(1).cpu()
            elif int(target_idx.min()) < 0 or int(target_idx.max()) >= logits.shape[1]:
                raise ValueError(
                    f"targets must lie in 0..{logits.shape[1] - 1} (the model has {logits.shape[1]} classes), "
                    f"got {target_idx.tolist()}"
                )
            score = logits.gather(1, target_idx.to(logits.device).view(-1, 1)).sum()
            grads = torch.autograd.grad(score, activations, allow_unused=True)
        layer_maps = []
        for i, (act, grad) in enumerate(zip(activations, grads, strict=True)):
            if grad is None:
                raise ValueError(f"target_layers[{i}] does not influence the model's output")
            if act.ndim != 4:
                raise ValueError(f"target_layers[{i}] output must be (B, K, h, w), got {tuple(act.shape)}")
            act = act.detach()
            with torch.no_grad():
                weights = self.channel_weights(act, grad)
                cam = F.relu((weights[:, :, None, None] * act).sum(1))
                cam = F.interpolate(cam[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
                layer_maps.append(rescale_maps(cam))
        stacked = torch.stack(layer_maps).float().cpu()
        logits = logits.detach()
        return CAMOutput(
            maps=stacked.mean(0).numpy(), layer_maps=stacked.numpy(), targets=target_idx.numpy(),
            logits=logits.float().cpu().numpy(), probs=torch.softmax(logits, 1), features=fwd.features,
        )


class GradCAM(BaseCAM):
    """Grad-CAM: channel weights are the spatial mean of the gradients.

    ``w^c_k = (1 / hw) sum_ij dy^c / dA^k_ij``  (Selvaraju et al., 2017).

    Args:
        model: classifier (B, C, H, W) -> logits (B, num_classes); mode untouched.
        target_layers: modules whose outputs (B, K, h, w) are explained.

    Call with a normalised batch (B, C, H, W) and optional ``targets`` (one
    class index per image; None = top class); returns float32 (B, H, W) in [0, 1].
    """

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return grads.mean(dim=(2, 3))


class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++: positive gradients weighted by per-pixel coefficients.

    With ``g = dy^c / dA^k_ij`` (exponential-score identity for the second and
    third derivatives, eq. 19 of Chattopadhay et al., 2018):

    ``alpha_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3 + eps)``, zero where ``g = 0``
    or the denominator is 0; ``w^c_k = sum_ij alpha_ij ReLU(g_ij)``.

    Args:
        model, target_layers: as for :class:`GradCAM`.
        eps: added to the denominator (default 0, an exact safe division;
            pytorch-grad-cam uses 1e-6).
    """

    def __init__(self, model: nn.Module, target_layers: Iterable[nn.Module], in_channels: int = 3,
                 eps: float = 0.0) -> None:
        super().__init__(model, target_layers, in_channels)
        self.eps = float(eps)

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        g2 = grads.pow(2)
        g3 = g2 * grads
        sum_a = activations.sum(dim=(2, 3), keepdim=True)
        denom = 2 * g2 + sum_a * g3 + self.eps
        safe = (denom != 0) & (grads != 0)
        alpha = torch.where(safe, g2 / torch.where(safe, denom, torch.ones_like(denom)), torch.zeros_like(g2))
        return (alpha * F.relu(grads)).sum(dim=(2, 3))


def translate(image: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Move the content of a batch (..., H, W) by ``dx`` pixels right and ``dy`` down, (x, y)
    order; the uncovered edge repeats the nearest edge pixels. Same shape and dtype."""
    if dx == 0 and dy == 0:
        return image
    pad = max(abs(dx), abs(dy))
    height, width = image.shape[-2:]
    shape = image.shape
    flat = image.reshape(-1, 1, height, width)
    padded = F.pad(flat, (pad, pad, pad, pad), mode="replicate")
    return padded[..., pad - dy:pad - dy + height, pad - dx:pad - dx + width].reshape(shape)


class AugmentedCAM(BaseCAM):
    """Test-time augmentation: the mean of a CAM over mirrored and shifted copies of the image,
    each map moved back onto the original.

    The copies are explained for the same classes as the original: ``targets``
    when given, else the top class of ``classify``'s scores when given, else the
    original's top class; ``logits`` are ``classify``'s scores when given, else
    the original's (the prediction is then the un-augmented one). Meant for
    classifiers trained on such copies (camseg's see mirrored shapes at every
    position): small shifts move the object across the coarse grid of the
    deep layers (16 and 32 pixels of the upsampled input), so the averaged
    map is finer than any one of them, and the copies' errors partly cancel.
    Every copy costs one more forward and backward pass.

    Args:
        cam: the CAM to average (e.g. ``GradCAM(model, layers)``); its model,
            layers and channel weights are this object's.
        flip: also explain the mirror image (left-right) of every copy.
        shifts: translations (dx, dy) in pixels, (x, y) order, besides the
            unshifted image; a copy's uncovered edge repeats the edge pixels
            (:func:`translate`), and so does its map moved back.
        classify: ``classify(image) -> scores``, float (B, C) for the batch
            (e.g. :class:`camseg.models.classifier.FlipVote`): the class decision, when
            it is not the original's forward pass. When it also has
            ``from_logits(image, known)`` (``known``: flip dims -> logits (B, C) of that
            flip of the image; ``()`` the image, ``(-1,)`` its mirror) and ``flip`` and
            ``share_passes`` are on, the original's and the mirror's forward passes (which
            the maps need anyway) give it those two flips' logits, so they are not computed
            twice.
        share_passes: let ``classify`` reuse the CAM's forward passes (above); False runs
            ``classify(image)`` on its own (the reference path: the same numbers where the
            classifier's output does not depend on how a batch is split into passes).

    ``compute(image, targets)`` returns a :class:`CAMOutput` whose
    ``layer_maps`` float32 (L, B, H, W) are each layer's mean over the copies
    and ``maps`` (B, H, W) their mean over the layers, in [0, 1].
    """

    def __init__(self, cam: BaseCAM, flip: bool = True, shifts: Iterable[tuple[int, int]] = (),
                 classify: Callable[[torch.Tensor], torch.Tensor] | None = None, share_passes: bool = True) -> None:
        if not isinstance(cam, BaseCAM):
            raise TypeError(f"cam must be a BaseCAM (e.g. GradCAM(model, layers)), got {type(cam).__name__}")
        if classify is not None and not callable(classify):
            raise TypeError(f"classify must be a callable image -> scores (B, C), got {type(classify).__name__}")
        moves = []
        for shift in shifts:
            try:
                dx, dy = shift
            except (TypeError, ValueError):
                raise ValueError(f"shifts must be (dx, dy) pairs of integers, got {shift!r}") from None
            if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (dx, dy)):
                raise ValueError(f"shifts must be (dx, dy) pairs of integers, got {shift!r}")
            if (int(dx), int(dy)) != (0, 0) and (int(dx), int(dy)) not in moves:
                moves.append((int(dx), int(dy)))
        super().__init__(cam.model, cam.target_layers, cam.in_channels)
        self.cam = cam
        self.flip = bool(flip)
        self.shifts: tuple[tuple[int, int], ...] = tuple(moves)
        self.classify = classify
        self.share_passes = bool(share_passes)

    @property
    def description(self) -> str:
        """A short name, e.g. "Grad-CAM, 10 copies (mirror, 4 shifts)"; with ``classify``, its
        ``description`` attribute (or "own class decision") after a semicolon."""
        parts = (["mirror"] if self.flip else []) + ([f"{len(self.shifts)} shifts"] if self.shifts else [])
        inner = {"GradCAM": "Grad-CAM", "GradCAMPlusPlus": "Grad-CAM++"}.get(type(self.cam).__name__,
                                                                           type(self.cam).__name__)
        name = f"{inner}, {self.n_copies} copies ({', '.join(parts)})" if parts else inner
        if self.classify is not None:
            name += "; " + str(getattr(self.classify, "description", "own class decision"))
        return name

    @property
    def n_copies(self) -> int:
        """How many CAMs one call computes (the original included)."""
        return (1 + len(self.shifts)) * (2 if self.flip else 1)

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return self.cam.channel_weights(activations, grads)

    def compute(self, image: torch.Tensor, targets: Iterable[int] | int | None = None) -> CAMOutput:
        self._check_image(image)
        height, width = image.shape[-2:]
        too_far = [s for s in self.shifts if abs(s[0]) >= width or abs(s[1]) >= height]
        if too_far:
            raise ValueError(f"shifts {too_far} move the image ({height} x {width}, H x W) out of view; "
                             "give shifts smaller than the image")
        logits = None
        shared = self.flip and self.share_passes and callable(getattr(self.classify, "from_logits", None))
        if shared:
            # The original and its mirror are two of the vote's copies: one forward pass each serves both.
            if targets is not None:
                self._check_targets(targets, len(image))
            passes = {(): self.cam.forward_pass(image), (-1,): self.cam.forward_pass(image.flip(-1))}
            scores = self.classify.from_logits(image, {dims: fwd.logits.detach() for dims, fwd in passes.items()})
        elif self.classify is not None:
            scores = self.classify(image)
        if self.classify is not None:
            if tuple(scores.shape[:1]) != (len(image),) or scores.ndim != 2:
                raise ValueError(f"classify must return scores (B, C) for B = {len(image)} images, "
                                 f"got shape {tuple(scores.shape)}")
            logits = scores.detach().float().cpu().numpy()
            if targets is None:
                targets = logits.argmax(1)
        out = self.cam.explain(passes[()], targets) if shared else self.cam.compute(image, targets)
        total = out.layer_maps.astype(np.float64)
        for dx, dy in ((0, 0), *self.shifts):
            moved = translate(image, dx, dy)
            for mirrored in ((False, True) if self.flip else (False,)):
                if (dx, dy) == (0, 0) and not mirrored:
                    continue  # the original, above
                if shared and (dx, dy) == (0, 0):
                    copy = self.cam.explain(passes.pop((-1,)), out.targets)
                else:
                    copy = self.cam.compute(moved.flip(-1) if mirrored else moved, out.targets)
                maps = torch.from_numpy(np.ascontiguousarray(copy.layer_maps[..., ::-1] if mirrored
                                                             else copy.layer_maps))
                total += translate(maps, -dx, -dy).numpy()
        layer_maps = (total / self.n_copies).astype(np.float32)
        return CAMOutput(maps=layer_maps.mean(0), layer_maps=layer_maps, targets=out.targets,
                         logits=out.logits if logits is None else logits, probs=out.probs, features=out.features)
