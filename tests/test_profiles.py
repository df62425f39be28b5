"""Shape distributions: the shift suite and the wide training data."""

from __future__ import annotations

import numpy as np
import pytest

from camseg.data.dataset import ShapesDataset, build_dataset, read_manifest
from camseg.data.profiles import SHIFT_PROFILES, WIDE, ShapeDistribution, contrast, profile, render, sample_images
from camseg.data.sets import FreshShapes
from camseg.data.shapes import CLASSES


def _bg(n=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_sizes_follow_the_distribution():
    rng = np.random.default_rng(0)
    small = profile("small")
    for k in range(40):
        _, mask = render(rng, _bg(1, k)[0], k % 5, small)
        ys, xs = np.nonzero(mask)
        assert max(xs.max() - xs.min(), ys.max() - ys.min()) + 1 <= small.across[1] + 1


def test_low_contrast_shapes_are_close_to_their_background():
    rng = np.random.default_rng(1)
    flat = np.full((1, 32, 32, 3), 120, np.uint8)  # a flat background: the local mean is exact
    lo = profile("lowcontrast")
    for k in range(20):
        image, mask = render(rng, flat[0], k % 5, lo)
        assert lo.contrast_low[0] - 1.5 <= contrast(image, mask) <= lo.contrast_low[1] + 1.5
    plain = profile("plain")
    image, mask = render(rng, flat[0], 0, plain)
    assert contrast(image, mask) >= plain.min_contrast - 1.5


def test_border_shapes_touch_the_border_and_others_do_not():
    rng = np.random.default_rng(2)
    for k in range(20):
        _, mask = render(rng, _bg(1, k)[0], k % 5, profile("border"))
        assert mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
        _, mask = render(rng, _bg(1, k)[0], k % 5, profile("plain"))
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def test_low_contrast_border_shapes_are_both():
    """``lowcontrast_border``: every shape touches the border and is faint against a flat background."""
    rng = np.random.default_rng(5)
    flat = np.full((48, 64, 3), 120, np.uint8)
    both = profile("lowcontrast_border")
    for k in range(20):
        image, mask = render(rng, flat, k % 5, both)
        assert mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
        assert both.contrast_low[0] - 1.5 <= contrast(image, mask) <= both.contrast_low[1] + 1.5


def test_distractor_is_another_shape_outside_the_mask():
    rng = np.random.default_rng(3)
    flat = np.full((32, 32, 3), 128, np.uint8)
    image, mask = render(rng, flat, 0, profile("distractor"))
    painted = np.abs(image.astype(int) - 128).sum(-1) > 30
    assert painted[mask].all()
    assert (painted & ~mask).sum() >= 12  # a second shape, not in the labelled mask


def test_jpeg_changes_pixels_clean_does_not():
    bg = _bg(1)[0]
    a, _ = render(np.random.default_rng(4), bg, 1, profile("plain"))
    b, _ = render(np.random.default_rng(4), bg, 1, profile("jpeg50"))
    assert not np.array_equal(a, b)


def test_bad_distributions_are_refused():
    with pytest.raises(ValueError, match="across"):
        ShapeDistribution("x", across=(40.0, 60.0))
    with pytest.raises(ValueError, match="fraction"):
        ShapeDistribution("x", jpeg=1.5)
    with pytest.raises(ValueError, match="unknown profile"):
        profile("nope")


def test_fresh_shapes_differ_per_epoch_and_repeat_per_seed():
    fresh = FreshShapes(_bg(8), WIDE, n=10, seed=0)
    a, la = fresh(0)
    b, lb = fresh(1)
    assert a.shape == (10, 48, 64, 3) and a.dtype == np.uint8
    assert sorted(np.bincount(la, minlength=len(CLASSES))) == [2] * 5
    assert not np.array_equal(a, b)
    assert np.array_equal(FreshShapes(_bg(8), WIDE, n=10, seed=0)(1)[0], b)


def test_sample_images_checks_lengths():
    with pytest.raises(ValueError, match="backgrounds"):
        sample_images(np.random.default_rng(0), _bg(2), np.arange(3), WIDE)


def test_build_a_shift_set(tmp_path, fake_cifar):
    out = build_dataset(tmp_path / "small", seed=0, cifar10=fake_cifar, sizes={"test": 6}, profile="small",
                        progress=False)
    assert read_manifest(out)["profile"] == "small"
    ds = ShapesDataset(out, "test")
    images, labels, masks = ds.arrays()
    assert images.shape == (6, 48, 64, 3) and masks.any((1, 2)).all()
    with pytest.raises(ValueError, match="unknown profile"):
        build_dataset(tmp_path / "bad", cifar10=fake_cifar, sizes={"test": 2}, profile="tiny", progress=False)


def test_every_shift_profile_renders():
    for name in SHIFT_PROFILES:
        images, masks = sample_images(np.random.default_rng(0), _bg(5), np.arange(5), profile(name))
        assert masks.any((1, 2)).all(), name


def test_dataset_validation_set_is_the_wide_trainings_and_needs_a_val_split(tiny_dataset, fake_cifar, tmp_path):
    """The validation set of a dataset folder: the one ``wide_training`` selects epochs on, drawn
    from the val split's photos with the manifest's seed and sizes."""
    from conftest import TINY_SIZES

    from camseg.data.cifar import resolve_cifar10
    from camseg.data.sets import dataset_validation_set, validation_set, wide_training

    images, labels, masks = dataset_validation_set(tiny_dataset, profile("border"), cifar10=fake_cifar)
    expected = validation_set(resolve_cifar10(fake_cifar), profile("border"), 0, TINY_SIZES)
    assert images.shape == (TINY_SIZES["val"], 48, 64, 3)
    for got, want in zip((images, labels, masks), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    _, val = wide_training(tiny_dataset, cifar10=fake_cifar)
    np.testing.assert_array_equal(val[0], dataset_validation_set(tiny_dataset, cifar10=fake_cifar)[0])
    no_val = build_dataset(tmp_path / "noval", cifar10=fake_cifar, sizes={"test": 2}, profile="plain", progress=False)
    with pytest.raises(ValueError, match="has no val split"):
        dataset_validation_set(no_val, cifar10=fake_cifar)
