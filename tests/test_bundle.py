"""The results bundle (camseg.build.bundle): written, fetched (local file and HTTP), verified, refused."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest

from camseg.build import bundle as B
from camseg.build.keys import camseg_version
from camseg.cli import main


def make_workdir(root: Path, version: str | None = None) -> Path:
    """A small fake work folder shaped like build_artifacts' (no training: fake checkpoint bytes)."""
    work = root / "work"
    key = {"backend": "regiongrow", "device": "cpu", "checkpoint_sha256": "0" * 64,
           "camseg_version": version or camseg_version(), "seed": 0, "arch": "resnet18", "n_test": 2}
    files = {
        "data/dataset.json": json.dumps({"format": 2, "seed": 0, "sizes": {"train": 1, "val": 1, "test": 2}}),
        "data/images/train/00000.png": b"png-train", "data/images/val/00000.png": b"png-val",
        "data/images/test/00000.png": b"png-test-0", "data/images/test/00001.png": b"png-test-1",
        "data/labels/test/00000.txt": b"circle\n", "data/masks/test/00000.png": b"mask",
        "shift/plain/dataset.json": json.dumps({"seed": 0, "sizes": {"test": 2}, "profile": "plain"}),
        "shift/plain/images/test/00000.png": b"shift-png",
        "classifier-resnet18.pt": b"fake checkpoint 0" * 100, "classifier-resnet18-seed1.pt": b"fake checkpoint 1",
        "eval/test-clean.json": json.dumps({"segmenter": "regiongrow", "artifact_key": key}),
        "eval/test-clean-masks.npz": b"npz", "eval/test-degraded.json": json.dumps({"artifact_key": key}),
        "eval/cam-study.json": json.dumps({"rows": []}),
        "eval/seeds/summary.json": json.dumps({"seeds": [0, 1], "rows": []}),
        "eval/seeds/plain-seed1.json": json.dumps({"set": "plain"}),
    }
    for rel, content in files.items():
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (root / ".data.lock").write_text("")  # beside, never bundled
    (work / "eval" / ".test-clean.json.123@host.abc.partial").write_text("half")  # a writer's temporary file
    return work


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def built(tmp_path) -> tuple[Path, Path]:
    """(work folder, its bundle with a build profile)."""
    work = make_workdir(tmp_path / "src")
    profile = tmp_path / "src" / "_build" / "build-profile.json"
    profile.parent.mkdir(parents=True)
    profile.write_text(json.dumps({"stages": [{"stage": "dataset", "seconds": 1.5}], "total_seconds": 1.5}))
    out = B.write_bundle(work, tmp_path / "out" / B.BUNDLE_NAME, profile)
    return work, out


def rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy the archive member by member; ``edit(info, data)`` returns ``[(info, data), ...]`` to write."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dst, "w:gz") as tout:
        for info in tin.getmembers():
            data = tin.extractfile(info).read() if info.isfile() else None
            for new_info, new_data in edit(info, data):
                if new_data is not None:
                    new_info.size = len(new_data)
                tout.addfile(new_info, io.BytesIO(new_data) if new_data is not None else None)
    return dst


def test_round_trip(built, tmp_path):
    work, out = built
    info = B.fetch_bundle(out, tmp_path / "dest")
    want = snapshot(work)
    del want["eval/.test-clean.json.123@host.abc.partial"]
    got = snapshot(tmp_path / "dest")
    record = json.loads(got.pop(B.INSTALLED))  # what was installed, for build_artifacts
    assert got == want  # everything, byte for byte, and nothing else
    assert info.version == camseg_version() and info.installed == len(want) and info.files == tuple(sorted(want))
    assert record == B.installed_record(info) and B.installed_bundle(tmp_path / "dest") == record
    assert record["backend"]["name"] == "regiongrow" and record["device"] == "cpu"
    assert info.backend["name"] == "regiongrow" and info.device == "cpu"
    assert info.settings["arch"] == "resnet18" and info.settings["sizes"] == {"train": 1, "val": 1, "test": 2}
    assert info.settings["seeds"] == 2 and info.settings["suite_size"] == 2
    assert info.profile["total_seconds"] == 1.5 and not (tmp_path / "dest" / "_build").exists()
    assert info.sha256 == hashlib.sha256(out.read_bytes()).hexdigest() and info.size == out.stat().st_size
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dest")] == []  # no temporary folder left
    # installing again over identical files is fine and moves nothing
    assert B.fetch_bundle(out, tmp_path / "dest").installed == 0


def test_archive_is_deterministic_and_relative(built, tmp_path):
    work, out = built
    again = B.write_bundle(work, tmp_path / "again.tar.gz", tmp_path / "src" / "_build" / "build-profile.json")
    assert again.read_bytes() == out.read_bytes()
    raw = gzip.decompress(out.read_bytes())
    assert str(tmp_path).encode() not in raw
    with tarfile.open(out, "r:gz") as tar:
        names = tar.getnames()
        assert names[0] == B.MANIFEST and names[1:] == sorted(names[1:])
        assert all(not n.startswith("/") and ".." not in n.split("/") for n in names)
        assert all(m.mtime == 0 and m.uid == 0 and m.isfile() for m in tar.getmembers())
    manifest = B.read_bundle_manifest(out)
    assert manifest["camseg_version"] == camseg_version()
    entries = {e["path"]: e for e in manifest["files"]}
    assert entries["classifier-resnet18.pt"]["sha256"] == hashlib.sha256(b"fake checkpoint 0" * 100).hexdigest()
    assert entries["classifier-resnet18.pt"]["size"] == 1700 and B.PROFILE in entries
    assert not any(".partial" in p or "lock" in p for p in entries)


def test_settings_round_trip_through_env(tmp_path, monkeypatch):
    from camseg.build.artifacts import Backend, Settings

    work = make_workdir(tmp_path)
    settings = Settings(seed=0, arch="resnet18", sizes=(("train", 1), ("val", 1), ("test", 2)), epochs=1, seeds=2,
                        suite_size=2)
    out = B.write_bundle(work, tmp_path / "b.tar.gz", settings=settings,
                         backend=Backend("regiongrow", "no SAM here", "auto"), device="cpu")
    info = B.fetch_bundle(out, tmp_path / "dest")
    for key, value in B.bundle_env(info).items():
        monkeypatch.setenv(key, value)
    again = Settings.from_env()
    assert again == Settings(seed=0, arch="resnet18", segmenter="regiongrow", device="cpu",
                             sizes=settings.sizes, epochs=1, seeds=2, suite_size=2)
    assert "no SAM here" in B.bundle_env(info)["CAMSEG_SEGMENTER_REASON"]
    assert "CAMSEG_DEVICE" not in B.bundle_env(info, keep={"CAMSEG_DEVICE"})


def test_write_refuses_an_unfinished_or_stale_build(tmp_path):
    work = make_workdir(tmp_path)
    (work / "eval" / "cam-study.json").unlink()
    with pytest.raises(B.BundleError, match="missing eval/cam-study.json"):
        B.write_bundle(work, tmp_path / "b.tar.gz")
    stale = make_workdir(tmp_path / "old", version="0.1.0+src.000000000000")
    with pytest.raises(B.BundleError, match=r"made by camseg 0\.1\.0\+src\.000000000000"):
        B.write_bundle(stale, tmp_path / "b.tar.gz")
    assert not (tmp_path / "b.tar.gz").exists()


@pytest.fixture()
def server(tmp_path):
    """Serves ``tmp_path/www`` on 127.0.0.1; ``requests`` lists the paths asked for."""
    folder = tmp_path / "www"
    folder.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args) -> None:
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.base_url, httpd.folder, httpd.requests = f"http://127.0.0.1:{httpd.server_address[1]}/", folder, requests
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_fetch_from_http_with_known_hash(built, server, tmp_path, monkeypatch):
    monkeypatch.setenv("CAMSEG_CACHE", str(tmp_path / "cache"))
    _, out = built
    (server.folder / out.name).write_bytes(out.read_bytes())
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    url = server.base_url + out.name
    info = B.fetch_bundle(url, tmp_path / "dest", known_hash=digest)
    assert info.path.parent == tmp_path / "cache" / "bundles" and info.sha256 == digest
    assert (tmp_path / "dest" / "classifier-resnet18.pt").is_file()
    n = len(server.requests)
    B.fetch_bundle(url, tmp_path / "dest2", known_hash=f"sha256:{digest}")  # cached: not downloaded again
    assert len(server.requests) == n and (tmp_path / "dest2" / "eval" / "test-clean.json").is_file()


def test_fetch_from_http_refuses_a_wrong_hash(built, server, tmp_path, monkeypatch):
    monkeypatch.setenv("CAMSEG_CACHE", str(tmp_path / "cache"))
    _, out = built
    (server.folder / out.name).write_bytes(out.read_bytes())
    with pytest.raises(B.BundleCorruptError, match="does not match its known hash") as exc:
        B.fetch_bundle(server.base_url + out.name, tmp_path / "dest", known_hash="ab" * 32)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "dest").exists()
    assert not any((tmp_path / "cache" / "bundles").glob("*.tar.gz"))  # pooch deleted the download
    with pytest.raises(B.BundleError, match="cannot download bundle"):
        B.fetch_bundle(server.base_url + "missing.tar.gz", tmp_path / "dest")
    with pytest.raises(B.BundleError, match="not a SHA-256"):
        B.fetch_bundle(out, tmp_path / "dest", known_hash="md5:abc")
    with pytest.raises(B.BundleCorruptError, match="does not match its known hash"):
        B.fetch_bundle(out, tmp_path / "dest", known_hash="ab" * 32)


def test_corrupt_file_is_refused_and_workdir_untouched(built, tmp_path):
    _, out = built
    dest = make_workdir(tmp_path / "dest")  # a work folder with content already
    (dest / "eval" / "test-clean.json").write_text("{}")  # differs: would be replaced with overwrite=True
    before = snapshot(dest)

    def flip(info, data):
        if info.name == "eval/cam-study.json":
            data = data.replace(b"rows", b"ROWS")
        return [(info, data)]

    bad = rewrite(out, tmp_path / "bad.tar.gz", flip)
    with pytest.raises(B.BundleCorruptError, match=r"eval/cam-study\.json differs from its manifest\.json") as exc:
        B.fetch_bundle(bad, dest, overwrite=True)
    assert "\n" not in str(exc.value) and str(bad) in str(exc.value)
    assert snapshot(dest) == before
    assert sorted(p.name for p in dest.parent.iterdir()) == [".data.lock", "work"]  # no temporary folder left

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(B.BundleCorruptError, match="corrupt"):
        B.fetch_bundle(truncated, dest, overwrite=True)
    assert snapshot(dest) == before
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(B.BundleCorruptError, match="not a readable .tar.gz"):
        B.fetch_bundle(tmp_path / "junk.tar.gz", dest)


def test_conflicting_workdir_refused_unless_overwrite(built, tmp_path):
    _, out = built
    dest = make_workdir(tmp_path / "dest")
    (dest / "eval" / "test-clean.json").write_text("{}")
    (dest / "data" / "images" / "train" / "00001.png").write_bytes(b"extra")  # a dataset folder is one unit
    before = snapshot(dest)
    with pytest.raises(B.BundleConflictError, match="already exist with other content") as exc:
        B.fetch_bundle(out, dest)
    assert "and 1 more" in str(exc.value) and "overwrite" in str(exc.value)
    assert snapshot(dest) == before
    info = B.fetch_bundle(out, dest, overwrite=True)
    assert not (dest / "data" / "images" / "train" / "00001.png").exists()
    assert (dest / "eval" / "test-clean.json").read_bytes() == (tmp_path / "src" / "work" / "eval" /
                                                                 "test-clean.json").read_bytes()
    assert info.installed == 8  # the 7 files of data/ and eval/test-clean.json; the rest was identical
    assert (dest / "eval" / ".test-clean.json.123@host.abc.partial").exists()  # not ours: left alone


def test_other_camseg_version_is_refused(built, tmp_path, monkeypatch):
    _, out = built
    made = camseg_version()
    monkeypatch.setattr(B, "camseg_version", lambda: "0.1.0+src.def")
    with pytest.raises(B.BundleVersionError) as exc:
        B.fetch_bundle(out, tmp_path / "dest")
    assert str(exc.value) == (f"bundle {out} was made by camseg {made}, this is 0.1.0+src.def: "
                              "rebuild it or install that version")
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_escaping_member_is_refused(built, tmp_path, kind):
    _, out = built

    def add_evil(info, data):
        if info.name != B.MANIFEST:
            return [(info, data)]
        manifest = json.loads(data)
        evil = tarfile.TarInfo({"dotdot": "eval/../../evil.txt", "absolute": "/tmp/evil.txt"}.get(kind, "eval/x"))
        payload = b"evil"
        if kind in ("symlink", "hardlink"):
            evil.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            evil.linkname = "/etc/passwd" if kind == "symlink" else "../../x"
            payload = None
        manifest["files"].append({"path": evil.name, "size": 4, "sha256": hashlib.sha256(b"evil").hexdigest()})
        return [(info, json.dumps(manifest).encode()), (evil, payload)]

    bad = rewrite(out, tmp_path / "evil.tar.gz", add_evil)
    with pytest.raises(B.BundleUnsafeError, match="refusing it") as exc:
        B.fetch_bundle(bad, tmp_path / "dest")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "dest").exists() and not (tmp_path / "evil.txt").exists()


def test_unlisted_member_is_refused(built, tmp_path):
    _, out = built

    def extra(info, data):
        out = [(info, data)]
        if info.name == B.MANIFEST:
            out.append((tarfile.TarInfo("eval/extra.json"), b"{}"))
        return out

    with pytest.raises(B.BundleCorruptError, match="unlisted eval/extra.json"):
        B.fetch_bundle(rewrite(out, tmp_path / "x.tar.gz", extra), tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_cli_from_bundle_missing_path(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    (book / "_config.yml").write_text("")
    missing = tmp_path / "nope.tar.gz"
    code = main(["build", "--book", str(book), "--no-book", "--workdir", str(tmp_path / "w"),
                 "--report", str(tmp_path / "r.pdf"), "--from-bundle", str(missing)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [f"camseg: error: bundle {missing} does not exist; expected a "
                                        f"{B.BUNDLE_NAME} file or an http(s):// URL"]
    assert not (tmp_path / "w").exists()


def test_cli_bundle_option_needs_a_tar_gz(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    (book / "_config.yml").write_text("")
    code = main(["build", "--book", str(book), "--no-book", "--report", str(tmp_path / "r.pdf"),
                 "--bundle", str(tmp_path / "results.zip")])
    assert code == 2
    assert "expected a .tar.gz file name" in capsys.readouterr().err


def test_bundle_is_current_only_while_the_work_folder_is_unchanged(built, tmp_path):
    work, out = built
    assert B.bundle_is_current(out, work)  # the build profile is not a result: not compared
    assert not B.bundle_is_current(tmp_path / "missing.tar.gz", work)
    (tmp_path / "broken.tar.gz").write_bytes(b"not a bundle")
    assert not B.bundle_is_current(tmp_path / "broken.tar.gz", work)
    (work / "eval" / "seeds" / "plain-seed1.json").write_text(json.dumps({"set": "plain", "iou": 0.5}))  # same name
    assert not B.bundle_is_current(out, work)
    fresh = B.write_bundle(work, tmp_path / "fresh.tar.gz")
    assert B.bundle_is_current(fresh, work)
    (work / "eval" / "seeds" / "small-seed1.json").write_text("{}")  # a new file
    assert not B.bundle_is_current(fresh, work)


def test_bundle_from_another_version_is_not_current(built, monkeypatch):
    work, out = built
    monkeypatch.setattr(B, "camseg_version", lambda: "0.0.0+other")
    assert not B.bundle_is_current(out, work)
