"""Shared fixtures: tiny seeded models and data, no downloads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn


@pytest.fixture(scope="session")
def resnet18_model() -> nn.Module:
    """A randomly initialised, seeded torchvision ResNet18 with 5 classes, in eval mode."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=5)
    # Random BN statistics make the random network's maps less degenerate.
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


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
    from camseg.data import build_dataset

    return build_dataset(tmp_path_factory.mktemp("data") / "shapes", seed=0, cifar10=fake_cifar,
                         sizes=TINY_SIZES, progress=False)
