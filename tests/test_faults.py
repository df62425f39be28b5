"""Interrupted writes leave nothing a later run would take for complete, and a rerun recovers.

Two kinds of interruption are simulated: an exception in the middle of a
write (Ctrl-C, a full disk: the writer's cleanup runs) and a killed process
(SIGKILL: no cleanup runs; here a real child process is killed mid-download).
The dataset build and the classifier checkpoint have their own tests
(``test_data.test_interrupted_build_leaves_nothing``,
``test_classifier.test_save_is_atomic``).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch
from test_sam import tiny_sam

from camseg.segmenters import SamSegmenter
from camseg.segmenters.checkpoints import CheckpointSpec, download_checkpoint
from camseg.utils.paths import STALE_SECONDS, atomic_path, remove_stale_partials

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB "checkpoint"
SPEC = CheckpointSpec("vit_b", "sam_fake_0123ab.pth", len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                      md5=hashlib.md5(PAYLOAD).hexdigest()[:6])


def _partials(folder):
    return sorted(p.name for p in folder.glob(".*.partial"))


def _age(path, seconds):
    old = time.time() - seconds
    os.utime(path, (old, old))


class _Downloader:
    """Stands in for pooch.HTTPDownloader: writes ``fraction`` of the payload, then ``then()``."""

    def __init__(self, fraction=1.0, then=None):
        self.fraction, self.then = fraction, then

    def __call__(self, url, output_file, pooch_obj):
        with open(output_file, "wb") as f:
            f.write(PAYLOAD[: int(len(PAYLOAD) * self.fraction)])
        if self.then is not None:
            self.then()


def _use_downloader(monkeypatch, downloader):
    import pooch

    monkeypatch.setattr(pooch, "HTTPDownloader", lambda **kw: downloader)


def _ctrl_c():
    raise KeyboardInterrupt


def test_download_interrupted_by_an_exception_leaves_nothing_and_a_rerun_completes(tmp_path, monkeypatch):
    folder = tmp_path / "sam"
    _use_downloader(monkeypatch, _Downloader(0.5, then=_ctrl_c))
    with pytest.raises(KeyboardInterrupt):
        download_checkpoint(SPEC, folder, progress=False)
    assert list(folder.iterdir()) == []  # neither the final name nor a temporary file
    _use_downloader(monkeypatch, _Downloader())
    path = download_checkpoint(SPEC, folder, progress=False)
    assert path.read_bytes() == PAYLOAD and [p.name for p in folder.iterdir()] == [SPEC.filename]


def test_download_killed_mid_write_is_never_taken_and_is_cleaned_up(tmp_path, monkeypatch):
    """A real child process is SIGKILLed while it writes the checkpoint."""
    folder = tmp_path / "sam"
    code = textwrap.dedent(f"""
        import time, pooch, sys
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_faults import SPEC, _Downloader
        from camseg.segmenters.checkpoints import download_checkpoint
        pooch.HTTPDownloader = lambda **kw: _Downloader(0.5, then=lambda: time.sleep(60))
        download_checkpoint(SPEC, {str(folder)!r}, progress=False)
    """)
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            parts = list(folder.glob(".*.partial")) if folder.exists() else []
            if parts and parts[0].stat().st_size >= len(PAYLOAD) // 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the child never started writing")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (folder / SPEC.filename).exists()  # nothing under the final name
    (left,) = folder.glob(".*.partial")
    # A later run: the killed writer's temporary file is removed at once (its owner is gone), and
    # the download completes.
    _use_downloader(monkeypatch, _Downloader())
    download_checkpoint(SPEC, folder, progress=False)
    assert not left.exists() and [p.name for p in folder.iterdir()] == [SPEC.filename]
    assert (folder / SPEC.filename).read_bytes() == PAYLOAD


def test_a_live_writers_partial_is_kept_until_its_owner_is_gone(tmp_path):
    from camseg.utils.paths import owner_tag

    host = owner_tag().split("@")[1]
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".ckpt.pt.{child.pid}@{host}.abc.partial"
        live.write_bytes(b"half")
        _age(live, STALE_SECONDS + 5)  # old, but its writer still runs: not ours to delete
        assert remove_stale_partials(tmp_path / "ckpt.pt") == [] and live.exists()
    finally:
        child.kill()
        child.wait()
    assert remove_stale_partials(tmp_path / "ckpt.pt") == [live] and not live.exists()


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "eval.json"
    target.write_text("old, complete")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text("new, half")
        raise OSError("disk full")
    assert target.read_text() == "old, complete" and _partials(tmp_path) == []


def test_stale_partials_only(tmp_path):
    target = tmp_path / "report.pdf"
    stale, fresh, other = (tmp_path / ".report.pdf.a.partial", tmp_path / ".report.pdf.b.partial",
                           tmp_path / ".other.pdf.c.partial")
    for p in (stale, fresh, other):
        p.write_bytes(b"half")
    _age(stale, STALE_SECONDS + 5)
    _age(other, STALE_SECONDS + 5)
    assert remove_stale_partials(target) == [stale]
    assert fresh.exists() and other.exists()  # another file's leftovers are not ours to judge
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"%PDF")
    assert target.read_bytes() == b"%PDF"


@pytest.fixture()
def sam_model():
    return tiny_sam()


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)


def test_embedding_cache_write_interrupted(tmp_path, monkeypatch, sam_model):
    import camseg.segmenters.sam as sam_module

    real_save = torch.save

    def half_save(obj, f, *a, **kw):
        real_save(obj, f, *a, **kw)
        with open(f, "r+b") as fh:  # cut the file in half, then the "power fails"
            fh.truncate(os.path.getsize(f) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(sam_module.torch, "save", half_save)
    seg = SamSegmenter(model=sam_model, cache_dir=tmp_path, model_id="tiny")
    with pytest.raises(KeyboardInterrupt):
        seg.set_image(_image())
    folder = tmp_path / "tiny"
    assert list(folder.iterdir()) == []  # no embedding file, no temporary file
    monkeypatch.setattr(sam_module.torch, "save", real_save)
    again = SamSegmenter(model=sam_model, cache_dir=tmp_path, model_id="tiny")
    again.set_image(_image())
    assert again.encoder_calls == 1 and len(list(folder.glob("*.pt"))) == 1
    third = SamSegmenter(model=sam_model, cache_dir=tmp_path, model_id="tiny")
    third.set_image(_image())
    assert third.encoder_calls == 0 and third.cache.disk_hits == 1


def test_corrupt_embedding_file_is_recomputed_and_replaced(tmp_path, sam_model):
    seg = SamSegmenter(model=sam_model, cache_dir=tmp_path, model_id="tiny")
    seg.set_image(_image())
    (path,) = (tmp_path / "tiny").glob("*.pt")
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])  # e.g. copied by hand and cut short
    fresh = SamSegmenter(model=sam_model, cache_dir=tmp_path, model_id="tiny")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh.set_image(_image())
    assert any("unreadable embedding file" in str(w.message) for w in caught)
    assert fresh.encoder_calls == 1
    torch.testing.assert_close(fresh.embedding(_image()), seg.embedding(_image()))
    check = SamSegmenter(model=sam_model, cache_dir=tmp_path, model_id="tiny")
    check.set_image(_image())
    assert check.encoder_calls == 0  # the file was rewritten whole


# ---------------------------------------------------------------------------
# Dataset builds: concurrent, verified, never replacing what is not theirs (issue 13)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_concurrent_builds_of_one_folder_give_one_complete_dataset(tmp_path, fake_cifar):
    """A second build started while the first is writing waits for it, then reuses its verified result."""
    from conftest import TINY_SIZES

    from camseg.data.dataset import ShapesDataset, build_dataset, verify_dataset

    out = tmp_path / "ds"
    code = textwrap.dedent(f"""
        import time
        import camseg.data.dataset as data
        real = data._png_bytes
        def slow(array):
            time.sleep(0.03)
            return real(array)
        data._png_bytes = slow
        data.build_dataset({str(out)!r}, seed=0, cifar10={str(fake_cifar)!r}, sizes={TINY_SIZES!r}, progress=False)
        print("first done")
    """)
    first = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    deadline = time.time() + 60
    while not list(tmp_path.glob(".ds.partial-*/images/train/*.png")):
        assert time.time() < deadline and first.poll() is None, "the first build never started writing"
        time.sleep(0.02)
    with pytest.raises(TimeoutError, match="another process is still building"):
        build_dataset(out, seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False, lock_timeout=0.05)
    said = []
    path = build_dataset(out, seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False, log=said.append)
    assert first.wait(60) == 0 and "first done" in first.stdout.read()
    assert any("another process is building" in line for line in said)
    assert not list(tmp_path.glob(".ds.partial-*"))  # the first's folder was published, never deleted
    verify_dataset(path)
    assert [len(ShapesDataset(path, s)) for s in ("train", "val", "test")] == [10, 5, 5]


def test_a_rerun_verifies_before_it_trusts(tmp_path, fake_cifar):
    from conftest import TINY_SIZES

    from camseg.data.dataset import DatasetError, build_dataset, verify_dataset

    out = build_dataset(tmp_path / "ds", seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False)
    good = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.png")}
    for name in ("00001.png", "00004.png"):
        (out / "images" / "train" / name).unlink()
    with pytest.raises(DatasetError, match=r"images/train holds 8 of the 10 files .*missing 00001.png, 00004.png"):
        verify_dataset(out)
    said = []
    build_dataset(out, seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False, log=said.append)
    assert any("fails verification" in line and "rebuilding" in line for line in said)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*.png")} == good
    # the same size, other content: only the content digest sees it
    mask = out / "masks" / "val" / "00002.png"
    data = bytearray(mask.read_bytes())
    data[-20] ^= 0xFF
    mask.write_bytes(bytes(data))
    verify_dataset(out, full=False)
    with pytest.raises(DatasetError, match="contents of .*masks/val differ"):
        verify_dataset(out)  # modified after the manifest: its folder is hashed
    built = (out / "dataset.json").stat().st_mtime
    os.utime(mask, (built - 1, built - 1))  # an edit that hides its time is found by a full check only
    verify_dataset(out)
    with pytest.raises(DatasetError, match="contents of .*masks/val differ"):
        verify_dataset(out, full=True)
    os.utime(mask)
    build_dataset(out, seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False, log=said.append)
    assert mask.read_bytes() == good[mask.relative_to(out)]


def test_overwrite_replaces_only_a_camseg_dataset_or_an_empty_folder(tmp_path, fake_cifar, capsys):
    from camseg.cli import main

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    base = ["data", "build", "--cifar10", str(fake_cifar), "--train", "5", "--val", "5", "--test", "5", "--out"]
    assert main([*base, str(precious), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "not a camseg dataset" in err and "even with --overwrite" in err
    assert (precious / "thesis.txt").read_text() == "years of work"
    assert main([*base, str(precious)]) == 2
    assert "pass overwrite" not in capsys.readouterr().err  # never suggested for a foreign folder
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*base, str(empty)]) == 0  # an empty folder is filled, no --overwrite needed
    assert main([*base, str(empty), "--seed", "3"]) == 2  # a dataset built otherwise: --overwrite needed
    assert "--overwrite" in capsys.readouterr().err
    assert main([*base, str(empty), "--seed", "3", "--overwrite"]) == 0
    assert "verified against its dataset.json" in capsys.readouterr().out


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_files_get_the_users_umask(tmp_path, fake_cifar, umask):
    from conftest import TINY_SIZES, TinyNet

    from camseg.data.dataset import build_dataset
    from camseg.data.io import save_mask
    from camseg.models.classifier import save_checkpoint

    old = os.umask(umask)
    try:
        ds = build_dataset(tmp_path / "ds", seed=0, cifar10=fake_cifar, sizes=TINY_SIZES, progress=False)
        ckpt = save_checkpoint(TinyNet(), {"arch": "tiny"}, tmp_path / "c.pt")
        mask = save_mask(np.zeros((4, 4), bool), tmp_path / "m.png")
        with atomic_path(tmp_path / "r.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    assert ds.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (ds / "images" / "train").stat().st_mode & 0o777 == 0o777 & ~umask
    for f in (ds / "dataset.json", ds / "images" / "train" / "00000.png", ckpt, mask, tmp_path / "r.json"):
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask, f


def test_a_killed_trainings_partial_checkpoint_is_removed_by_the_next_save(tmp_path):
    from conftest import TinyNet

    from camseg.models.classifier import save_checkpoint
    from camseg.utils.paths import owner_tag

    host = owner_tag().split("@")[1]
    left = tmp_path / f".c.pt.{_dead_pid()}@{host}.k1.partial"  # a training killed while saving, a moment ago
    left.write_bytes(b"half a checkpoint")
    save_checkpoint(TinyNet(), {"arch": "tiny"}, tmp_path / "c.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_report_with_nothing_cached_says_how_to_build(tmp_path, capsys):
    from camseg.cli import main

    work = tmp_path / "work"
    assert main(["report", "--workdir", str(work), "--out", str(tmp_path / "r.pdf")]) == 2
    err = capsys.readouterr().err
    assert "no cached results" in err and "camseg build" in err and "--build" in err
    assert not work.exists() and not (tmp_path / "r.pdf").exists()  # nothing was built
