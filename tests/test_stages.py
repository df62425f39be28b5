"""StageLog: per-stage wall time and peak memory, children included.

The peak logic is tested with a scripted memory probe (known answers); the real
memory readings are tested in a fresh interpreter, so what the rest of the test
session has allocated, freed or started (child processes, a browser) cannot
change the figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import pytest

from camseg.build.stages import MIB, StageLog, tree_rss


class ScriptedProbe:
    """A memory probe whose reading (bytes) the test sets; counts its calls."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.value


def test_each_stage_gets_its_own_peak():
    probe = ScriptedProbe(100 * MIB)
    log = StageLog(echo=None, interval=60, probe=probe)  # no background sample: every reading is explicit
    with log.stage("big"):
        probe.value = 300 * MIB
        log.sample()
        probe.value = 100 * MIB
    with log.stage("small", note="cached"):
        probe.value = 120 * MIB
    big, small = log.rows
    assert big["peak_rss_mib"] == 300 and small["peak_rss_mib"] == 120  # the end of "small" is read
    assert small["note"] == "cached"
    assert log.total_seconds == pytest.approx(big["seconds"] + small["seconds"])


def test_the_background_thread_samples_and_survives_a_failing_probe():
    calls = []
    enough = threading.Event()

    def probe() -> int:
        calls.append(1)
        if len(calls) >= 5:
            enough.set()
        if len(calls) == 2:
            raise OSError("process table changed")
        return len(calls) * MIB

    log = StageLog(echo=None, interval=0.001, probe=probe)
    with log.stage("work"):
        assert enough.wait(30), "the sampler never ran"
    assert log.rows[0]["peak_rss_mib"] >= 5  # readings after the failed one still counted


def test_nested_stages_each_count_the_inner_peak():
    probe = ScriptedProbe(10 * MIB)
    log = StageLog(echo=None, interval=60, probe=probe)
    with log.stage("outer"):
        with log.stage("inner"):
            probe.value = 50 * MIB
            log.sample()
        probe.value = 10 * MIB
    inner, outer = log.rows
    assert (inner["stage"], inner["peak_rss_mib"]) == ("inner", 50)
    assert (outer["stage"], outer["peak_rss_mib"]) == ("outer", 50)


def _in_fresh_interpreter(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_real_memory_peaks_in_a_fresh_process():
    rows = _in_fresh_interpreter("""
        import json, numpy as np
        from camseg.build.stages import StageLog
        log = StageLog(echo=None)
        with log.stage("big"):
            block = np.ones(200 * 2**20, np.uint8)  # 200 MiB, touched
            log.sample()
            del block
        with log.stage("small"):
            pass
        print(json.dumps(log.rows))
    """)
    big, small = rows
    assert big["peak_rss_mib"] - small["peak_rss_mib"] > 150  # the array belongs to stage "big" only


def test_children_are_counted():
    rows = _in_fresh_interpreter("""
        import json, subprocess, sys
        from camseg.build.stages import StageLog
        child_code = ("import numpy as np, sys; a = np.ones(300 * 2**20, np.uint8); "
                      "print('ready', flush=True); sys.stdin.read()")
        log = StageLog(echo=None)
        with log.stage("before"):
            pass
        with log.stage("child"):
            child = subprocess.Popen([sys.executable, "-c", child_code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
            assert child.stdout.readline().strip() == "ready"
            log.sample()  # the child holds its 300 MiB until its stdin closes
            child.communicate("")
        print(json.dumps(log.rows))
    """)
    before, child = rows
    assert child["peak_rss_mib"] - before["peak_rss_mib"] > 250


def test_tree_rss_counts_this_process():
    assert tree_rss() > 10 * MIB


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
