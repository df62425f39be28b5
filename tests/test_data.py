"""The shapes dataset: generation, determinism, atomic writes, loader errors."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest
import torch
from conftest import TINY_SIZES
from PIL import Image

from camseg.data import cifar
from camseg.data.dataset import DatasetError, ShapesDataset, build_dataset, denormalize, normalize, read_manifest
from camseg.data.shapes import CLASSES, IMAGE_SIZE, ShapeSpec, render_sample, sample_shape, shape_polygon


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path, fake_cifar, tiny_dataset):
    again = build_dataset(tmp_path / "again", seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False)
    assert _files(again) == _files(tiny_dataset)
    other = build_dataset(tmp_path / "other", seed=1, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False)
    a, b = _files(other), _files(tiny_dataset)
    assert a.keys() == b.keys() and a != b


def test_layout_and_items(tiny_dataset):
    for split, n in TINY_SIZES.items():
        ds = ShapesDataset(tiny_dataset, split)
        assert len(ds) == n
        image, label, mask = ds[0]
        assert image.shape == (3, 48, 64) and image.dtype == torch.float32
        assert isinstance(label, int) and 0 <= label < 5
        assert mask.shape == (48, 64) and mask.dtype == bool and mask.any()
    images, labels, masks = ShapesDataset(tiny_dataset, "train").arrays()
    assert images.shape == (10, 48, 64, 3) and images.dtype == np.uint8
    assert masks.shape == (10, 48, 64) and labels.shape == (10,)
    assert sorted(set(labels.tolist())) == [0, 1, 2, 3, 4]  # balanced: 2 of each
    # the default transform is ToImage -> [0, 1] -> ImageNet normalisation
    np.testing.assert_allclose(ShapesDataset(tiny_dataset, "train")[0][0].numpy(), normalize(images[:1])[0].numpy(),
                               atol=1e-6)
    np.testing.assert_array_equal(denormalize(normalize(images)), images)


def test_shape_is_solid_and_mask_exact(tiny_dataset):
    images, _, masks = ShapesDataset(tiny_dataset, "test").arrays()
    for image, mask in zip(images, masks):
        colours = np.unique(image[mask].reshape(-1, 3), axis=0)
        assert len(colours) == 1  # one solid colour, hard edges
        # the shape fits inside the image
        ys, xs = np.nonzero(mask)
        assert ys.min() > 0 and xs.min() > 0 and ys.max() < 47 and xs.max() < 63


def test_square_and_diamond_do_not_overlap():
    rng = np.random.default_rng(0)
    sq = [sample_shape(rng, CLASSES.index("square")).angle_deg for _ in range(200)]
    di = [sample_shape(rng, CLASSES.index("diamond")).angle_deg for _ in range(200)]
    assert max(abs(a) for a in sq) <= 10 and max(abs(a) for a in di) <= 10
    # a diamond is a square turned by 45 degrees: same mask
    spec = ShapeSpec(CLASSES.index("diamond"), (30.0, 24.0), 12.0, 0.0, (255, 0, 0))
    turned = ShapeSpec(CLASSES.index("square"), (30.0, 24.0), 12.0, 45.0, (255, 0, 0))
    a, b = np.array(shape_polygon(spec)), np.array(shape_polygon(turned))
    np.testing.assert_allclose(np.roll(a, -1, axis=0), b, atol=1e-9)  # same vertices, start shifted by one


def test_render_known_square():
    # vertices at x 22.2, 42.2
    spec = ShapeSpec(CLASSES.index("square"), (32.2, 24.2), 10 * np.sqrt(2), 0.0, (10, 20, 30))
    image, mask = render_sample(np.zeros((32, 32, 3), np.uint8), spec)
    assert image.shape == (48, 64, 3) and mask.shape == (48, 64)
    ys, xs = np.nonzero(mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (22, 42, 14, 34)  # a 21x21 axis-aligned square
    assert mask.sum() == 21 * 21
    assert (image[mask] == (10, 20, 30)).all() and (image[~mask] == 0).all()


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_interrupted_build_leaves_nothing(tmp_path, fake_cifar, monkeypatch):
    import camseg.data.dataset as data
    from camseg.utils.paths import STALE_SECONDS, owner_tag

    calls = {"n": 0}
    real = data._png_bytes

    def failing(array):
        calls["n"] += 1
        if calls["n"] > 7:
            raise KeyboardInterrupt
        return real(array)

    monkeypatch.setattr(data, "_png_bytes", failing)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(tmp_path / "ds", seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [".ds.lock"]  # neither the dataset nor a partial folder
    # a build killed outright leaves a hidden partial folder: it never loads, and the next build removes it
    # once its owner is gone; a folder of unknown owner is removed only when stale
    host = owner_tag().split("@")[1]
    killed = tmp_path / f".ds.partial-{_dead_pid()}@{host}.x1"
    unknown = tmp_path / ".ds.partial-killed"
    for left in (killed, unknown):
        (left / "images" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="does not exist"):
        ShapesDataset(tmp_path / "ds", "train")
    monkeypatch.setattr(data, "_png_bytes", real)
    build_dataset(tmp_path / "ds", seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ds.lock", ".ds.partial-killed", "ds"]
    old = time.time() - STALE_SECONDS - 1
    os.utime(unknown, (old, old))
    build_dataset(tmp_path / "ds", seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False)  # reused
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ds.lock", "ds"]
    assert len(ShapesDataset(tmp_path / "ds", "train")) == 10


def test_existing_dataset_kept_or_refused(tmp_path, fake_cifar):
    path = build_dataset(tmp_path / "ds", seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False)
    stamp = (path / "images" / "train" / "00000.png").stat().st_mtime_ns
    build_dataset(path, seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False)  # same settings: kept
    assert (path / "images" / "train" / "00000.png").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="overwrite"):
        build_dataset(path, seed=5, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False)
    build_dataset(path, seed=5, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ds.lock", "ds"]


@pytest.fixture()
def broken(tmp_path, tiny_dataset):
    root = tmp_path / "broken"
    shutil.copytree(tiny_dataset, root)
    return root


def test_missing_split(broken):
    shutil.rmtree(broken / "masks" / "val")
    with pytest.raises(DatasetError, match=r"split 'val' is missing.*masks/val"):
        ShapesDataset(broken, "val")
    with pytest.raises(DatasetError, match="split 'nope' is missing"):
        ShapesDataset(broken, "nope")


def test_missing_mask_names_files(broken):
    (broken / "masks" / "test" / "00003.png").unlink()
    with pytest.raises(DatasetError,
                       match=r"images/test/00003.png, labels/test/00003.txt has no mask \(masks/test/00003.png\)"):
        ShapesDataset(broken, "test")


def test_extra_image_names_files(broken):
    shutil.copy(broken / "images" / "test" / "00000.png", broken / "images" / "test" / "extra.png")
    with pytest.raises(DatasetError,
                       match=r"images/test/extra.png has no mask .* and no label \(labels/test/extra.txt\)"):
        ShapesDataset(broken, "test")


def test_unknown_class(broken):
    (broken / "labels" / "test" / "00002.txt").write_text("hexagon\n")
    with pytest.raises(DatasetError, match=r"00002.txt: unknown class name 'hexagon'; expected one of circle"):
        ShapesDataset(broken, "test")


def test_mask_size_mismatch(broken):
    Image.new("L", (32, 32)).save(broken / "masks" / "test" / "00001.png")
    with pytest.raises(DatasetError, match=r"mask .*00001.png is 32x32 but its image .*00001.png is 64x48"):
        ShapesDataset(broken, "test")


def test_unreadable_png(broken):
    (broken / "images" / "test" / "00004.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot read .*00004.png"):
        ShapesDataset(broken, "test")


def test_empty_split(broken):
    for kind in ("images", "masks", "labels"):
        for p in (broken / kind / "val").iterdir():
            p.unlink()
    with pytest.raises(DatasetError, match="holds no images"):
        ShapesDataset(broken, "val")


def test_any_folder_in_the_layout_loads(tmp_path):
    for kind in ("images", "masks", "labels"):
        (tmp_path / kind / "mine").mkdir(parents=True)
    Image.new("RGB", (20, 10), (1, 2, 3)).save(tmp_path / "images" / "mine" / "a.png")
    m = np.zeros((10, 20), np.uint8)
    m[2:5, 3:9] = 1  # any non-zero value marks the shape
    Image.fromarray(m).save(tmp_path / "masks" / "mine" / "a.png")
    (tmp_path / "labels" / "mine" / "a.txt").write_text("star")
    image, label, mask = ShapesDataset(tmp_path, "mine")[0]
    assert image.shape == (3, 10, 20) and label == 3 and mask.sum() == 18


def test_tar_source_indexing(fake_cifar):
    src = cifar.TarSource(fake_cifar)
    assert src.count(True) == 40 and src.count(False) == 20
    imgs = src.load(True, np.array([3, 0]))
    assert imgs.shape == (2, 32, 32, 3) and imgs.dtype == np.uint8
    assert (src.load(True, np.array([0]))[0] == imgs[1]).all()



def test_tar_source_reads_what_tarfile_extracts_and_scans_each_archive_once(tmp_path, fake_cifar, monkeypatch):
    """Images read straight at the members' offsets are those tarfile extracts (in the (class,
    number) order); the archive's headers are read once per process and file version, and a
    changed archive is read again."""
    import io
    import tarfile
    from pathlib import Path

    from PIL import Image

    for name in ("train.tar", "test.tar"):
        shutil.copy(fake_cifar / name, tmp_path / name)
    with tarfile.open(tmp_path / "train.tar") as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".jpg")),
                         key=lambda m: cifar._class_order_key(m.name))
        want = np.stack([np.asarray(Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB"))
                         for m in members])
    opened = []
    real_open = tarfile.open
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    order = np.random.default_rng(0).permutation(len(want))
    np.testing.assert_array_equal(cifar.TarSource(tmp_path).load(True, order), want[order])
    np.testing.assert_array_equal(cifar.TarSource(tmp_path).load(True, order[:5]), want[order[:5]])  # a new source
    assert [Path(p).name for p in opened] == ["train.tar"]
    with tarfile.open(tmp_path / "train.tar", "a") as tar:  # the archive changes: its index is read again
        info = tarfile.TarInfo("train/extra.txt")
        tar.addfile(info, io.BytesIO(b""))
    opened.clear()
    assert cifar.TarSource(tmp_path).count(True) == len(want)
    assert [Path(p).name for p in opened if "train" in str(p)][:1] == ["train.tar"]


def test_a_compressed_archive_is_refused_with_its_name(tmp_path, fake_cifar):
    import gzip

    for name in ("train.tar", "test.tar"):
        (tmp_path / name).write_bytes(gzip.compress((fake_cifar / name).read_bytes()))
    with pytest.raises(ValueError, match="train.tar: expected an uncompressed tar archive"):
        cifar.TarSource(tmp_path).count(True)

def test_tar_checksum_mismatch(tmp_path, fake_cifar):
    for name in ("train.tar", "test.tar"):
        shutil.copy(fake_cifar / name, tmp_path / name)
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  train.tar\n")
    with pytest.raises(ValueError, match="does not match its SHA256"):
        cifar.TarSource(tmp_path)


def test_no_cifar_source_names_both_ways(tmp_path, monkeypatch):
    monkeypatch.delenv(cifar.ENV_VAR, raising=False)
    monkeypatch.setenv("CAMSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cifar, "default_offline_locations", lambda: [tmp_path / "nowhere"])
    with pytest.raises(cifar.Cifar10NotFoundError) as info:
        cifar.resolve_cifar10(download=False)
    message = str(info.value)
    assert "train.tar" in message and cifar.ENV_VAR in message and "--cifar10" in message
    assert "torchvision.datasets.CIFAR10" in message and "download=True" in message
    with pytest.raises(cifar.Cifar10NotFoundError, match="holds neither"):
        cifar.resolve_cifar10(tmp_path)


def test_env_var_source(monkeypatch, fake_cifar):
    monkeypatch.setenv(cifar.ENV_VAR, str(fake_cifar))
    assert isinstance(cifar.resolve_cifar10(download=False), cifar.TarSource)


def test_image_size_constant():
    assert IMAGE_SIZE == (64, 48)


def _official_order(fake_cifar, split: str, seed: int = 5):
    """A torchvision-style view of the fake copy: its images decoded, classes interleaved in a
    random order, each class's images kept in the order of their names (as the real copy's
    conversion script numbered them)."""
    import io
    import tarfile

    from PIL import Image

    with tarfile.open(fake_cifar / f"{split}.tar") as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile()), key=lambda m: cifar._class_order_key(m.name))
        per_class: dict[int, list[np.ndarray]] = {}
        for m in members:
            image = np.asarray(Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB"))
            per_class.setdefault(cifar.CLASS_NAMES.index(m.name.split("/")[1]), []).append(image)
    labels = np.concatenate([[c] * len(v) for c, v in per_class.items()])
    np.random.default_rng(seed).shuffle(labels)
    taken = dict.fromkeys(per_class, 0)
    data = []
    for c in labels:
        data.append(per_class[c][taken[c]])
        taken[c] += 1
    return np.stack(data), labels


def test_both_cifar_sources_give_the_same_dataset(tmp_path, fake_cifar):
    arrays = {True: _official_order(fake_cifar, "train"), False: _official_order(fake_cifar, "test")}
    batches = cifar.TorchvisionSource(arrays=arrays)
    copy = cifar.TarSource(fake_cifar)
    idx = np.array([0, 7, 19, 33])
    np.testing.assert_array_equal(batches.load(True, idx), copy.load(True, idx))
    a = build_dataset(tmp_path / "a", seed=1, cifar10=copy, sizes={"train": 8, "val": 4, "test": 4}, progress=False)
    b = build_dataset(tmp_path / "b", seed=1, cifar10=batches, sizes={"train": 8, "val": 4, "test": 4},
                      progress=False)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(ShapesDataset(a, split).arrays()[0], ShapesDataset(b, split).arrays()[0])
    assert read_manifest(a)["cifar10_source"] == "tar" and read_manifest(b)["cifar10_source"] == "torchvision"
    assert read_manifest(a)["backgrounds"] == read_manifest(b)["backgrounds"]
    # the batches' raw order would give other photos: the test is not vacuous
    raw = arrays[True][0][idx]
    assert not np.array_equal(raw, copy.load(True, idx))


def test_name_offset_check_finds_zero(fake_cifar, tmp_path):
    import io
    import tarfile

    from PIL import Image

    data, labels = _official_order(fake_cifar, "test")
    for split in ("train", "test"):  # a dense copy: NNNN = index within the class, as in the real one
        with tarfile.open(tmp_path / f"{split}.tar", "w") as tar:
            for c in np.unique(labels):
                for k, image in enumerate(data[labels == c]):
                    buf = io.BytesIO()
                    Image.fromarray(image).save(buf, format="PNG")  # lossless, so the match is exact
                    info = tarfile.TarInfo(f"{split}/{cifar.CLASS_NAMES[c]}/{k:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
    arrays = {True: (data, labels), False: (data, labels)}
    diffs = cifar.match_name_offset(cifar.TarSource(tmp_path), cifar.TorchvisionSource(arrays=arrays), n=5)
    assert diffs[0] == 0.0 and diffs[1] > 20 and diffs[-1] > 20


def test_a_built_dataset_is_reused_without_any_cifar_source(tmp_path, fake_cifar, monkeypatch):
    sizes = {"train": 4, "val": 2, "test": 2}
    out = build_dataset(tmp_path / "d", seed=0, cifar10=fake_cifar, sizes=sizes, progress=False)
    monkeypatch.setenv(cifar.ENV_VAR, str(tmp_path / "nowhere"))
    monkeypatch.setattr(cifar, "resolve_cifar10", lambda *a, **k: pytest.fail("looked for CIFAR-10"))
    assert build_dataset(out, seed=0, sizes=sizes, progress=False) == out
    manifest = read_manifest(out)
    (out / "dataset.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "backgrounds"}))
    assert build_dataset(out, seed=0, sizes=sizes, progress=False) == out  # older tar manifest: same order
    (out / "dataset.json").write_text(json.dumps({**manifest, "cifar10_source": "torchvision"} | {"backgrounds": "x"}))
    with pytest.raises(FileExistsError, match="was not built with these settings"):
        build_dataset(out, seed=0, sizes=sizes, progress=False)
