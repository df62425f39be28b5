"""The command line, run in-process."""

from __future__ import annotations

from camseg.cli import main
from camseg.data.dataset import ShapesDataset


def test_data_build(tmp_path, fake_cifar, capsys):
    out = tmp_path / "ds"
    code = main(["data", "build", "--out", str(out), "--seed", "2", "--cifar10", str(fake_cifar),
                 "--train", "5", "--val", "5", "--test", "5"])
    assert code == 0
    assert "dataset ready" in capsys.readouterr().out
    assert len(ShapesDataset(out, "val")) == 5


def test_data_build_bad_cifar_path(tmp_path, capsys):
    code = main(["data", "build", "--out", str(tmp_path / "ds"), "--cifar10", str(tmp_path)])
    assert code == 2
    assert "holds neither train.tar" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_train(tmp_path, tiny_dataset, capsys):
    out = tmp_path / "c.pt"
    code = main(["train", "--data", str(tiny_dataset), "--arch", "resnet18", "--out", str(out), "--epochs", "1",
                 "--batch-size", "5", "--no-pretrained", "--input-scale", "1"])
    assert code == 0 and out.is_file()
    assert "test acc" in capsys.readouterr().out


def test_train_missing_data(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "c.pt")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_every_computing_command_takes_a_device():
    from camseg.cli import build_parser

    parser = build_parser()
    for argv in (["train", "--data", "d", "--out", "o"], ["evaluate", "--data", "d", "--checkpoint", "c"],
                 ["segment", "i.png", "--out", "m.png"], ["build"], ["report"]):
        assert parser.parse_args([*argv, "--device", "cpu"]).device == "cpu"
        assert parser.parse_args(argv).device == "auto"


def test_the_chapter_cache_is_dropped_when_the_artefacts_change(tmp_path):
    from camseg.cli import artefacts_fingerprint, forget_stale_chapters, remember_chapters

    work, build = tmp_path / "artifacts", tmp_path / "_build"
    (work / "eval" / "seeds").mkdir(parents=True)
    (work / "eval" / "test-clean.json").write_text('{"iou": 0.9}')
    (build / ".jupyter_cache").mkdir(parents=True)
    (build / "jupyter_execute").mkdir()
    first = artefacts_fingerprint(work)
    assert forget_stale_chapters(build, first)  # nothing says what the cache was made with: drop it
    assert not (build / ".jupyter_cache").exists() and not (build / "jupyter_execute").exists()
    (build / ".jupyter_cache").mkdir()
    remember_chapters(build, first)
    assert not forget_stale_chapters(build, artefacts_fingerprint(work))  # same artefacts: keep
    assert (build / ".jupyter_cache").is_dir()
    (work / "eval" / "seeds" / "plain-seed0.json").write_text('{"iou": 0.8}')  # a new evaluation
    assert artefacts_fingerprint(work) != first
    assert forget_stale_chapters(build, artefacts_fingerprint(work))
    assert not (build / ".jupyter_cache").exists() and not (build / "artefacts.sha256").exists()


def test_the_book_fingerprint_follows_its_sources_settings_and_artefacts(tmp_path):
    from camseg.cli import book_fingerprint

    root = tmp_path / "repo"
    (root / "book" / "reference" / "api").mkdir(parents=True)
    (root / "_static").mkdir()
    (root / "_config.yml").write_text("title: t\n")
    (root / "_toc.yml").write_text("root: book/intro\n")
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "_static" / "style.css").write_text("body {}\n")
    env = {"CAMSEG_WORKDIR": "/w", "HOME": "/home/x"}
    first = book_fingerprint(root, "a" * 64, env)
    assert book_fingerprint(root, "a" * 64, env) == first  # stable
    (root / "book" / "reference" / "api" / "index.rst").write_text("generated during a build\n")
    (root / "_build").mkdir()
    (root / "_build" / "index.html").write_text("output\n")
    assert book_fingerprint(root, "a" * 64, {**env, "HOME": "/elsewhere"}) == first  # outputs and others: ignored
    assert book_fingerprint(root, "b" * 64, env) != first  # the artefacts (camseg's source, evaluations)
    assert book_fingerprint(root, "a" * 64, {**env, "CAMSEG_SEEDS": "1"}) != first  # the chapters' settings
    for rel in ("_config.yml", "_toc.yml", "book/intro.md", "_static/style.css"):
        before = (root / rel).read_text()
        (root / rel).write_text(before + "changed\n")
        assert book_fingerprint(root, "a" * 64, env) != first, rel
        (root / rel).write_text(before)
    assert book_fingerprint(root, "a" * 64, env) == first
