"""Shared fixtures: tiny seeded models and data, no downloads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _no_sam_download(monkeypatch):
    """SAM's download location is a closed local port, so ``"auto"`` never downloads from the internet
    (it falls back at once); tests that serve a checkpoint set their own URL. The book's env vars
    are cleared so that a developer's settings do not leak into tests."""
    monkeypatch.setenv("CAMSEG_SAM_BASE_URL", "http://127.0.0.1:9/")
    for var in ("CAMSEG_SEGMENTER", "CAMSEG_SEGMENTER_REASON", "CAMSEG_DEVICE", "CAMSEG_SIZES", "CAMSEG_EPOCHS",
                "CAMSEG_ARCH", "CAMSEG_SEEDS", "CAMSEG_SUITE_SIZE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def resnet18_model() -> nn.Module:
    """A randomly initialised, seeded torchvision ResNet18 with 5 classes, in eval mode."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    return _random_batch_norm(resnet18(num_classes=5))


def _random_batch_norm(model: nn.Module) -> nn.Module:
    """``model`` with seeded random batch-norm statistics (they make a random network's maps less
    degenerate), in eval mode."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


@pytest.fixture()
def random_efficientnet() -> nn.Module:
    """EfficientNet-Lite0 with seeded random weights and batch-norm statistics (no download), in eval mode;
    a fresh one for each test."""
    from camseg.models.classifier import build_classifier

    torch.manual_seed(0)
    model, _ = build_classifier("efficientnet_lite0", pretrained=False)
    return _random_batch_norm(model)


@pytest.fixture()
def blobs():
    """``blobs(rng, n, h=48, w=64) -> (images uint8 (n, h, w, 3), cams float32 (n, h, w))``: eight coloured
    rectangles on a textured background per image, and smooth random CAMs in [0, 1]."""

    def make(rng: np.random.Generator, n: int, h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
        images = rng.integers(60, 90, (n, h, w, 3)).astype(np.uint8)
        for img in images:
            for _ in range(8):
                r, c = rng.integers(0, h - 12), rng.integers(0, w - 14)
                img[r:r + rng.integers(6, 12), c:c + rng.integers(6, 14)] = rng.integers(0, 256, 3)
        yy, xx = np.mgrid[0:h, 0:w]
        cams = np.stack([np.exp(-((yy - rng.uniform(0, h)) ** 2 + (xx - rng.uniform(0, w)) ** 2) / 800)
                         for _ in range(n)])
        return images, cams.astype(np.float32)

    return make


@pytest.fixture()
def image_batch() -> torch.Tensor:
    """A seeded normalised batch (4, 3, 48, 64)."""
    gen = torch.Generator().manual_seed(2)
    return torch.randn(4, 3, 48, 64, generator=gen)


class TinyNet(nn.Module):
    """conv -> relu -> conv -> relu -> global pool -> linear: 3 input channels, 5 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.conv1(x)))
        x = self.relu(self.conv2(x))
        return self.fc(x.mean((2, 3)))


@pytest.fixture()
def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet().eval()


def assert_valid_cam(maps: np.ndarray, batch: int, height: int, width: int) -> None:
    """A CAM batch has the right shape, dtype float32, finite values in [0, 1]."""
    assert maps.shape == (batch, height, width)
    assert maps.dtype == np.float32
    assert np.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0


@pytest.fixture(scope="session")
def fake_cifar(tmp_path_factory):
    """A tiny offline CIFAR-10 copy in the shared layout: train.tar (40 JPEGs), test.tar (20 JPEGs)."""
    import io
    import tarfile

    from PIL import Image

    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 20)):
        with tarfile.open(root / f"{split}.tar", "w") as tar:
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, format="JPEG")
                info = tarfile.TarInfo(f"{split}/{['cat', 'dog'][i % 2]}/{i:04d}.jpg")
                info.size = buf.tell()
                buf.seek(0)
                tar.addfile(info, buf)
    return root


TINY_SIZES = {"train": 10, "val": 5, "test": 5}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, fake_cifar):
    """A 20-image shapes dataset built from the fake CIFAR copy (seed 0)."""
    from camseg.data.dataset import build_dataset

    return build_dataset(tmp_path_factory.mktemp("data") / "shapes", seed=0, cifar10=fake_cifar,
                         sizes=TINY_SIZES, progress=False)


class RednessNet(nn.Module):
    """A hand-built classifier: class 0 = "something red is in the image".

    A 1x1 convolution measures redness (R - G - B of the normalised input,
    positive only on saturated red), global max pooling gives one feature,
    and a constant feature of 1 is appended; the last linear layer turns
    (redness, 1) into logits for 5 classes. Its Grad-CAM for class 0 lights
    up red pixels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.detect = nn.Conv2d(3, 1, 1)
        with torch.no_grad():
            self.detect.weight.copy_(torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1))
            self.detect.bias.fill_(-1.0)
        self.fc = nn.Linear(2, 5)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.zero_()
            self.fc.weight[0, 0] = 3.0  # class 0 grows with redness
            self.fc.bias[1] = 2.0  # class 1 otherwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red = torch.relu(self.detect(x)).amax((2, 3))
        return self.fc(torch.cat([red, torch.ones_like(red)], 1))


def red_and_blue_image(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (h, w, 3): a red square (rows 10-24, cols 36-52), a blue square (rows 26-40,
    cols 8-22) on a grey gradient; returns (image, red-square mask)."""
    image = np.zeros((h, w, 3), np.uint8)
    image[...] = np.linspace(90, 150, w, dtype=np.uint8)[None, :, None]
    image[26:41, 8:23] = (30, 40, 220)
    mask = np.zeros((h, w), bool)
    mask[10:25, 36:53] = True
    image[mask] = (230, 20, 20)
    return image, mask


@pytest.fixture()
def redness_model() -> nn.Module:
    return RednessNet().eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dataset, tmp_path_factory):
    """A ResNet18 (input scale 1) trained for one epoch on the tiny dataset, saved to disk."""
    from camseg.models.classifier import train_classifier

    out = tmp_path_factory.mktemp("tinyckpt") / "resnet18.pt"
    train_classifier(tiny_dataset, arch="resnet18", epochs=1, batch_size=5, pretrained=False, input_scale=1.0,
                     seed=0, out=out, progress=False, log=None)
    return out


@pytest.fixture()
def make_artifacts():
    """A factory of small typed results (:class:`camseg.build.artifacts.Artifacts`) from plain JSON-like parts,
    for the book's and the report's helpers; nothing is trained or read from disk."""
    from pathlib import Path

    from camseg.build.artifacts import (
        ArtifactKey,
        Artifacts,
        Backend,
        CamStudy,
        Evaluation,
        GradcamExample,
        Settings,
    )

    def make(clean: dict | None = None, degraded: dict | None = None, meta: dict | None = None,
             cam_study: dict | None = None, segmenter: str = "regiongrow", reason: str = "",
             requested: str | None = None, images=None, labels=None, masks=None, model=None,
             gradcam_example: dict | None = None, suite=None, predictions=None, device: str = "cpu") -> Artifacts:
        def evaluation(raw):
            return None if raw is None else Evaluation.from_json({"segmenter": segmenter, **raw})

        return Artifacts(
            workdir=Path("."), data=Path("data"), settings=Settings(segmenter=requested or segmenter),
            key=ArtifactKey(segmenter, device, "0" * 64, "test", 0, (meta or {}).get("arch", "tiny"), 0),
            test=None, images=images, labels=labels, masks=masks, model=model, meta=meta or {},
            backend=Backend(segmenter, reason, requested or segmenter), device=device,
            clean=evaluation(clean), degraded=evaluation(degraded), predictions=predictions,
            cam_study=None if cam_study is None else CamStudy.from_json(cam_study),
            gradcam_example=None if gradcam_example is None else GradcamExample(**gradcam_example), suite=suite)

    return make
