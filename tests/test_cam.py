"""Behaviour of camseg.models.cam: known answers, hooks, model state, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TinyNet, assert_valid_cam
from torch import nn

from camseg.models.cam import GradCAM, GradCAMPlusPlus, rescale_maps

METHODS = [GradCAM, GradCAMPlusPlus]


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def test_gradcam_known_answer(tiny_model, image_batch):
    """Grad-CAM of conv2 recomputed by hand with autograd, upsampled and rescaled."""
    model = tiny_model
    x = image_batch
    a1 = model.relu(model.bn(model.conv1(x)))
    act = model.conv2(a1).detach().requires_grad_(True)
    logits = model.fc(model.relu(act).mean((2, 3)))
    targets = torch.tensor([1, 0, 4, 2])
    (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), act)
    cam = F.relu((grad.mean((2, 3))[:, :, None, None] * act).sum(1))
    cam = F.interpolate(cam[:, None], size=(48, 64), mode="bilinear", align_corners=False)[:, 0]
    lo = cam.flatten(1).min(1).values[:, None, None]
    hi = cam.flatten(1).max(1).values[:, None, None]
    expected = ((cam - lo) / (hi - lo)).detach().numpy()
    ours = GradCAM(model, [model.conv2])(x, targets.tolist())
    np.testing.assert_allclose(ours, expected, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_batched_equals_one_by_one(method, tiny_model, image_batch):
    cam = method(tiny_model, [tiny_model.conv2, tiny_model.conv1])
    batched = cam(image_batch, [0, 1, 2, 3])
    single = np.concatenate([cam(image_batch[i:i + 1], [i]) for i in range(4)])
    np.testing.assert_allclose(batched, single, atol=1e-6)
    assert_valid_cam(batched, 4, 48, 64)


@pytest.mark.parametrize("method", METHODS)
def test_several_layers_mean_of_rescaled_maps(method, tiny_model, image_batch):
    out = method(tiny_model, [tiny_model.conv1, tiny_model.conv2]).compute(image_batch)
    one = method(tiny_model, [tiny_model.conv1])(image_batch, out.targets)
    two = method(tiny_model, [tiny_model.conv2])(image_batch, out.targets)
    np.testing.assert_allclose(out.maps, (one + two) / 2, atol=1e-6)
    assert out.layer_maps.shape == (2, 4, 48, 64)


@pytest.mark.parametrize("method", METHODS)
def test_hooks_released_after_call_and_after_error(method, tiny_model, image_batch):
    before = _hook_count(tiny_model)
    cam = method(tiny_model, [tiny_model.conv2])
    cam(image_batch)
    assert _hook_count(tiny_model) == before
    with pytest.raises(ValueError, match="targets must lie in 0..4"):
        cam(image_batch, [0, 1, 2, 99])
    assert _hook_count(tiny_model) == before

    class Boom(Exception):
        pass

    def explode(*_):
        raise Boom

    handle = tiny_model.fc.register_forward_hook(explode)  # fails mid-forward, after the target layer ran
    try:
        with pytest.raises(Boom):
            cam(image_batch)
    finally:
        handle.remove()
    assert _hook_count(tiny_model) == before
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("training", [False, True])
def test_model_state_untouched(method, training, image_batch):
    torch.manual_seed(0)
    model = TinyNet().train(training)
    model.conv1.weight.requires_grad_(False)
    model.fc.weight.grad = torch.full_like(model.fc.weight, 7.0)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    method(model, [model.conv2])(image_batch)
    assert model.training is training
    assert all(m.training is training for m in model.modules())
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert torch.equal(model.fc.weight.grad, torch.full_like(model.fc.weight, 7.0))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "fc.weight")


def test_backward_stops_at_earliest_target_layer(tiny_model, image_batch):
    calls = []
    handle = tiny_model.conv1.register_full_backward_hook(lambda *a: calls.append(1))
    try:
        GradCAM(tiny_model, [tiny_model.conv2])(image_batch)
    finally:
        handle.remove()
    assert calls == []


@pytest.mark.parametrize("method", METHODS)
def test_constant_map_gives_zeros_not_nan(method):
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 5)

        def forward(self, x):
            return self.fc(self.conv(x * 0).mean((2, 3)))  # conv of zeros = its bias, constant in space

    torch.manual_seed(0)
    model = Flat().eval()
    maps = method(model, [model.conv])(torch.randn(3, 3, 8, 10))
    assert np.isfinite(maps).all()
    assert (maps == 0).all()


def test_rescale_maps_constant_and_range():
    maps = torch.stack([torch.zeros(3, 4), torch.full((3, 4), 5.0), torch.arange(12.0).view(3, 4)])
    out = rescale_maps(maps)
    assert torch.equal(out[0], torch.zeros(3, 4)) and torch.equal(out[1], torch.zeros(3, 4))
    assert out[2].min() == 0 and out[2].max() == 1
    assert torch.allclose(out[2], torch.arange(12.0).view(3, 4) / 11)


@pytest.mark.parametrize(
    "image,targets,message",
    [
        (torch.randn(3, 48, 64), None, r"shape \(B, 3, H, W\).*image\[None\]"),
        (torch.randn(2, 1, 48, 64), None, "3 channels"),
        (torch.randn(2, 48, 64, 3), None, "channels last"),
        (torch.randn(0, 3, 48, 64), None, "empty batch"),
        (torch.randint(0, 255, (2, 3, 48, 64), dtype=torch.uint8), None, "normalised float"),
        (torch.full((2, 3, 48, 64), float("nan")), None, "NaN"),
        (torch.randn(2, 3, 48, 64), [0], "expected 2, got 1"),
        (torch.randn(2, 3, 48, 64), [0, 1, 2], "expected 2, got 3"),
        (torch.randn(2, 3, 48, 64), [0, 5], r"0..4"),
        (torch.randn(2, 3, 48, 64), [-1, 0], r"0..4"),
        (torch.randn(2, 3, 48, 64), [0.5, 1], "integers"),
        (torch.randn(2, 3, 48, 64), "ab", "class indices"),
    ],
)
@pytest.mark.parametrize("method", METHODS)
def test_bad_input(method, tiny_model, image, targets, message):
    before = _hook_count(tiny_model)
    with pytest.raises(ValueError, match=message):
        method(tiny_model, [tiny_model.conv2])(image, targets)
    assert _hook_count(tiny_model) == before


def test_bad_target_layers(tiny_model, resnet18_model):
    with pytest.raises(ValueError, match="empty"):
        GradCAM(tiny_model, [])
    with pytest.raises(TypeError, match="iterable of modules"):
        GradCAM(tiny_model, tiny_model.conv2)
    with pytest.raises(ValueError, match="not a submodule"):
        GradCAM(tiny_model, [resnet18_model.layer1])
    unused = nn.Conv2d(3, 3, 1)
    tiny_model.add_module("unused", unused)
    try:
        with pytest.raises(ValueError, match="did not run"):
            GradCAM(tiny_model, [unused])(torch.randn(1, 3, 8, 8))
    finally:
        del tiny_model.unused


def test_inplace_op_after_target_layer(image_batch):
    """An in-place ReLU after the target layer neither fails nor alters the captured activations."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1)
            self.act = nn.ReLU(inplace=True)
            self.fc = nn.Linear(6, 5)

        def forward(self, x):
            return self.fc(self.act(self.conv(x)).mean((2, 3)))

    torch.manual_seed(0)
    net = Net().eval()
    out = GradCAM(net, [net.conv]).compute(image_batch)
    act = net.conv(image_batch)
    logits = net.fc(torch.relu(act).mean((2, 3)))
    (grad,) = torch.autograd.grad(logits.gather(1, torch.as_tensor(out.targets)[:, None]).sum(), act)
    cam = F.relu((grad.mean((2, 3))[:, :, None, None] * act).sum(1)).detach()
    np.testing.assert_allclose(out.maps, rescale_maps(cam).numpy(), atol=1e-6)


def test_gradcam_plusplus_differs_from_gradcam(resnet18_model, image_batch):
    layers = [resnet18_model.layer3[-1]]
    a = GradCAM(resnet18_model, layers)(image_batch, [0, 1, 2, 3])
    b = GradCAMPlusPlus(resnet18_model, layers)(image_batch, [0, 1, 2, 3])
    assert np.abs(a - b).max() > 1e-3


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_thousand_calls_leave_no_hooks_and_no_memory_growth(tiny_model):
    x = torch.randn(2, 3, 16, 16)
    cam = GradCAM(tiny_model, [tiny_model.conv2])
    before = _hook_count(tiny_model)
    for _ in range(200):  # warm-up: allocator caches settle
        cam(x)
    rss = _rss_bytes()
    for _ in range(1000):
        cam(x)
    growth = _rss_bytes() - rss
    assert _hook_count(tiny_model) == before
    assert growth < 8 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB over 1000 calls"


# --------------------------------------------------------------------------
# AugmentedCAM


def test_translate_known_answer():
    from camseg.models.cam import translate

    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    right = translate(x, 1, 0)[0, 0]  # content one pixel right, first column repeated
    assert right.tolist() == [[0, 0, 1, 2], [4, 4, 5, 6], [8, 8, 9, 10]]
    up = translate(x, 0, -1)[0, 0]  # content one pixel up, last row repeated
    assert up.tolist() == [[4, 5, 6, 7], [8, 9, 10, 11], [8, 9, 10, 11]]
    assert translate(x, 0, 0) is x
    assert translate(torch.zeros(2, 3, 5, 6, 7), 2, 1).shape == (2, 3, 5, 6, 7)


def test_augmented_cam_known_answer(tiny_model, image_batch):
    """The mean over the copies (mirror x shifts) of each copy's maps moved back; the
    original's logits and classes."""
    from camseg.models.cam import AugmentedCAM, translate

    plain = GradCAM(tiny_model, [tiny_model.conv1, tiny_model.conv2])
    cam = AugmentedCAM(plain, flip=True, shifts=[(3, 0), (0, -2)])
    out = cam.compute(image_batch)
    first = plain.compute(image_batch)
    copies = []
    for dx, dy in ((0, 0), (3, 0), (0, -2)):
        moved = translate(image_batch, dx, dy)
        straight = plain.compute(moved, first.targets).layer_maps
        mirrored = plain.compute(moved.flip(-1), first.targets).layer_maps[..., ::-1].copy()
        copies += [translate(torch.from_numpy(m), -dx, -dy).numpy() for m in (straight, mirrored)]
    expected = np.mean(copies, 0)
    assert cam.n_copies == 6 and cam.description == "Grad-CAM, 6 copies (mirror, 2 shifts)"
    np.testing.assert_allclose(out.layer_maps, expected, atol=1e-6)
    np.testing.assert_allclose(out.maps, expected.mean(0), atol=1e-6)
    np.testing.assert_array_equal(out.targets, first.targets)
    np.testing.assert_array_equal(out.logits, first.logits)
    assert_valid_cam(out.maps, 4, 48, 64)
    assert out.layer_maps.shape == (2, 4, 48, 64)


def test_augmented_cam_without_copies_is_the_cam(tiny_model, image_batch):
    from camseg.models.cam import AugmentedCAM

    plain = GradCAM(tiny_model, [tiny_model.conv2])
    cam = AugmentedCAM(plain, flip=False, shifts=[(0, 0)])
    assert cam.n_copies == 1
    np.testing.assert_allclose(cam(image_batch), plain(image_batch), atol=1e-7)


@pytest.mark.parametrize("method", METHODS)
def test_mirror_averaged_cam_is_mirror_equivariant(method, tiny_model, image_batch):
    """Explaining the mirrored image for the same classes gives the mirrored map."""
    from camseg.models.cam import AugmentedCAM

    cam = AugmentedCAM(method(tiny_model, [tiny_model.conv2]), flip=True)
    targets = [0, 1, 2, 3]
    a = cam(image_batch, targets)
    b = cam(image_batch.flip(-1), targets)
    np.testing.assert_allclose(b, a[:, :, ::-1], atol=1e-5)
    assert not np.allclose(a, method(tiny_model, [tiny_model.conv2])(image_batch, targets), atol=1e-3)


def test_augmented_cam_explains_the_class_classify_chooses(tiny_model, image_batch):
    """With ``classify``, its scores are the logits and their top classes the targets (given
    targets still win); the maps are those of the CAM explaining those classes."""
    from camseg.models.cam import AugmentedCAM

    plain = GradCAM(tiny_model, [tiny_model.conv2])
    own = plain.compute(image_batch)
    scores = torch.zeros(4, 5)
    chosen = (own.targets + 1) % 5  # every image a class other than its own top class
    scores[torch.arange(4), torch.as_tensor(chosen)] = 1.0
    cam = AugmentedCAM(plain, flip=True, classify=lambda images: scores[:len(images)])
    out = cam.compute(image_batch)
    np.testing.assert_array_equal(out.targets, chosen)
    np.testing.assert_array_equal(out.logits, scores.numpy())
    np.testing.assert_allclose(out.maps, AugmentedCAM(plain, flip=True)(image_batch, chosen), atol=1e-6)
    given = cam.compute(image_batch, [0, 1, 2, 3])
    np.testing.assert_array_equal(given.targets, [0, 1, 2, 3])
    np.testing.assert_array_equal(given.logits, scores.numpy())
    assert cam.description == "Grad-CAM, 2 copies (mirror); own class decision"
    with pytest.raises(ValueError, match=r"classify must return scores \(B, C\) for B = 4 images"):
        AugmentedCAM(plain, classify=lambda images: torch.zeros(3, 5)).compute(image_batch)
    with pytest.raises(TypeError, match="classify must be a callable"):
        AugmentedCAM(plain, classify="flips")


def test_augmented_cam_checks_its_inputs(tiny_model):
    from camseg.models.cam import AugmentedCAM

    with pytest.raises(TypeError, match="cam must be a BaseCAM"):
        AugmentedCAM(tiny_model)
    plain = GradCAM(tiny_model, [tiny_model.conv2])
    for bad in ([(1, 2, 3)], [(1.5, 0)], [3], [(True, 0)]):
        with pytest.raises(ValueError, match=r"shifts must be \(dx, dy\) pairs of integers"):
            AugmentedCAM(plain, shifts=bad)
    with pytest.raises(ValueError, match="out of view"):
        AugmentedCAM(plain, shifts=[(64, 0)])(torch.zeros(1, 3, 48, 64))
    cam = AugmentedCAM(plain)
    with pytest.raises(ValueError, match=r"shape \(B, 3, H, W\)"):
        cam(torch.zeros(3, 48, 64))
    with pytest.raises(ValueError, match="one class index per image"):
        cam(torch.zeros(2, 3, 48, 64), [0, 1, 2])
