"""benchmarks/gpu.py, the GPU run as one script: its refusal without a GPU, its budgets, its table, and a
CPU smoke run of every part."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"


@pytest.fixture(scope="module")
def gpu():
    spec = importlib.util.spec_from_file_location("camseg_benchmark_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_refuses_without_a_gpu_in_one_line():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU" in lines[0] and "--cpu-smoke" in lines[0], proc.stderr


def test_table_format(gpu):
    rows = [{"part": "evaluation", "figure": "throughput", "value": 12.3456, "unit": "images/s"},
            {"part": "evaluation", "figure": "IoU, oracle", "value": "n/a (random weights)", "unit": ""},
            {"part": "tests", "figure": "passed", "value": 2, "unit": "tests"},
            {"part": "training", "figure": "a|b", "value": 0.0, "unit": ""},
            {"part": "decoding", "figure": "x", "value": True, "unit": ""},
            {"part": "data", "figure": "y", "value": None, "unit": "s"}]
    table = gpu.format_table("NVIDIA X: torch 2, CUDA 12", rows).splitlines()
    assert table[:4] == ["### NVIDIA X: torch 2, CUDA 12", "", "| part | figure | value | unit |",
                         "| --- | --- | ---: | --- |"]
    assert table[4:] == ["| evaluation | throughput | 12.3 | images/s |",
                         "| evaluation | IoU, oracle | n/a (random weights) |  |",
                         "| tests | passed | 2 | tests |",
                         "| training | a\\|b | 0.000 |  |",
                         "| decoding | x | yes |  |",
                         "| data | y | n/a | s |"]
    assert [gpu.fmt(v) for v in (1234.5, 0.25, 3.14159, 0.0004, float("nan"))] == ["1234", "0.250", "3.14",
                                                                                   "4.00e-04", "n/a"]


def test_pytest_summary(gpu):
    assert gpu.parse_pytest_summary("..\nSKIPPED [2] tests/x.py:3: needs CUDA\n2 skipped, 724 deselected in 9s\n") \
        == {"skipped": 2, "deselected": 724}
    assert gpu.parse_pytest_summary("1 failed, 1 passed, 2 errors in 1.0s") == {"failed": 1, "passed": 1, "error": 2}
    assert gpu.parse_pytest_summary("no tests ran in 0.1s") == {}


def test_parts_get_their_budget_then_are_stopped_or_skipped(gpu):
    report = gpu.Report()
    seen = {}

    def quick(ctx, rep, limit):
        seen["quick"] = limit
        rep.add("quick", "figure", 1.0, "s")

    def slow(ctx, rep, limit):
        time.sleep(5)  # cut by its 0.3 s limit

    def broken(ctx, rep, limit):
        raise ValueError("no luck\nsecond line")

    def missing(ctx, rep, limit):
        raise gpu.Skip("no dataset")

    def says_failed(ctx, rep, limit):
        return "failed: 1 test failed"

    parts = [("quick", quick, 50.0), ("slow", slow, 0.3), ("broken", broken, 5.0), ("missing", missing, 5.0),
             ("says_failed", says_failed, 5.0), ("late", quick, 5.0)]
    t0 = time.monotonic()
    gpu.run_parts(parts, SimpleNamespace(), report, deadline=t0 + 10.0)
    assert time.monotonic() - t0 < 5
    status = {name: p["status"] for name, p in report.parts.items()}
    assert status == {"quick": "done", "slow": "stopped", "broken": "failed", "missing": "skipped",
                      "says_failed": "failed", "late": "done"}
    assert seen["quick"] <= 10.0  # the overall deadline caps a part's own budget
    assert report.parts["broken"]["note"] == "failed: ValueError: no luck"
    assert report.parts["missing"]["note"] == "skipped: no dataset"
    # nothing left before the deadline: every part is skipped with a note, none runs
    report = gpu.Report()
    gpu.run_parts([("quick", quick, 5.0)], SimpleNamespace(), report, deadline=time.monotonic() + 1.0)
    assert report.parts["quick"]["status"] == "skipped"
    assert report.rows[0]["figure"].startswith("skipped: overall budget exhausted")


def test_noise_backgrounds_read_as_a_cifar10_copy(gpu, tmp_path):
    from camseg.data.cifar import TarSource

    source = TarSource(gpu.noise_cifar10(tmp_path, 30, 12))
    assert source.count(True) == 30 and source.count(False) == 12
    assert source.load(False, [0, 11]).shape == (2, 32, 32, 3)


def test_cuda_test_selection_leaves_this_file_out(gpu):
    names = [p.name for p in gpu.cuda_test_files()]
    assert "test_sam.py" in names and "test_gpu_script.py" not in names


@pytest.mark.slow
def test_cpu_smoke_runs_every_part(tmp_path, fake_cifar):
    """About 25-40 s on 2 CPU cores: toy dataset, one epoch, vit_b at 224 px with random weights."""
    out = tmp_path / "smoke.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--out", str(out), "--cifar10", str(fake_cifar)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "cpu-smoke"
    assert {name: p["status"] for name, p in result["parts"].items()} == dict.fromkeys(
        ("data", "training", "evaluation", "decoding", "tests"), "done")
    assert result["table"] in proc.stdout
    assert proc.stdout.count("| part | figure | value | unit |") == 1
    figures = {(r["part"], r["figure"]): r["value"] for r in result["rows"]}
    assert figures["training", "epochs completed"] == "1 of 1"
    assert figures["evaluation", "IoU, oracle"] == "n/a (random weights)"
    assert figures["decoding", "masks identical, batched vs one-by-one"] == "32 of 32"
    assert figures["tests", "skipped"] == 2 and figures["tests", "failed"] == 0
    assert figures["evaluation", "throughput"] > 0
