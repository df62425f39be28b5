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

from camseg.paths import STALE_SECONDS, atomic_path, remove_stale_partials
from camseg.segmenters import SamSegmenter
from camseg.segmenters.checkpoints import CheckpointSpec, download_checkpoint
from test_sam import tiny_sam

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
    from camseg.paths import owner_tag

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
