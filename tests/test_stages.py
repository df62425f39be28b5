"""StageLog: per-stage wall time and peak memory, children included."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from camseg.stages import StageLog, tree_rss


def test_each_stage_gets_its_own_peak():
    log = StageLog(echo=None, interval=0.01)
    with log.stage("big"):
        block = np.ones(200 * 2**20, np.uint8)  # 200 MiB, touched
        time.sleep(0.1)
        del block
    with log.stage("small", note="cached"):
        time.sleep(0.05)
    big, small = log.rows
    assert big["seconds"] >= 0.1 and small["seconds"] >= 0.05
    assert big["peak_rss_mib"] - small["peak_rss_mib"] > 150  # the 200 MiB array belongs to stage "big" only
    assert small["note"] == "cached"
    assert log.total_seconds == pytest.approx(big["seconds"] + small["seconds"])


def test_children_are_counted():
    log = StageLog(echo=None, interval=0.01)
    code = "import numpy as np, time; a = np.ones(300 * 2**20, np.uint8); time.sleep(0.5)"
    base = tree_rss() / 2**20
    with log.stage("child"):
        subprocess.run([sys.executable, "-c", code], check=True)
    assert log.rows[0]["peak_rss_mib"] - base > 250


def test_a_failing_stage_is_recorded_and_the_error_passes(tmp_path):
    lines = []
    log = StageLog(echo=lines.append)
    with pytest.raises(RuntimeError, match="boom"), log.stage("fails"):
        raise RuntimeError("boom")
    assert [r["stage"] for r in log.rows] == ["fails"] and "fails:" in lines[0]
    table = log.table()
    assert table.splitlines()[0].startswith("| stage | wall (s)") and "**total**" in table.splitlines()[-1]
    path = log.write_json(tmp_path / "profile.json")
    assert json.loads(path.read_text())["stages"][0]["stage"] == "fails"


def test_bad_interval():
    with pytest.raises(ValueError, match="interval must be > 0"):
        StageLog(interval=0)
