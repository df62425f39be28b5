"""Two builds in one work folder at once: each stage is computed once, under its lock, and both succeed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time


from camseg.utils.paths import held_lock

BUILD = """
import sys
from camseg.build.artifacts import build_artifacts
res = build_artifacts(sys.argv[1], arch="resnet18", segmenter="floodfill", device="cpu", parts=("evaluations",))
print("checkpoint", res.key.checkpoint_sha256)
print("iou", res.clean.pipelines["foreground_background"].iou)
"""


def test_held_lock_serialises_and_says_it_waits(tmp_path):
    lock = tmp_path / "locks" / "stage.lock"
    order, lines = [], []

    def second():
        time.sleep(0.1)
        with held_lock(lock, "the stage", lines.append):
            order.append("second")

    t = threading.Thread(target=second)
    with held_lock(lock, "the stage", lines.append):
        t.start()
        time.sleep(0.4)
        order.append("first")
    t.join(5)
    assert order == ["first", "second"]
    assert lines and "another process is computing the stage" in lines[0]
    errors = []

    def impatient():
        try:
            with held_lock(lock, "the stage", timeout=0.05):
                errors.append(None)
        except TimeoutError as exc:
            errors.append(str(exc))

    with held_lock(lock, "the stage"):
        th = threading.Thread(target=impatient)
        th.start()
        th.join(5)
    assert len(errors) == 1 and errors[0] and "another process is still computing the stage after" in errors[0]


def test_two_builds_in_one_folder_compute_each_stage_once(tmp_path, fake_cifar):
    env = dict(os.environ, CAMSEG_CIFAR10=str(fake_cifar), CAMSEG_SIZES="train=10,val=5,test=5",
               CAMSEG_EPOCHS="1", CAMSEG_SUITE_SIZE="0", OMP_NUM_THREADS="1")
    work = tmp_path / "work"
    procs = []
    for delay in (0.0, 1.0):
        time.sleep(delay)
        procs.append(subprocess.Popen([sys.executable, "-c", BUILD, str(work)], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    results = [sorted(line for line in out.splitlines() if line.startswith(("checkpoint", "iou"))) for out in outs]
    assert results[0] == results[1] and len(results[0]) == 2  # the same checkpoint and the same numbers
    trained = sum(out.count("training resnet18 seed 0") for out in outs)
    assert trained == 1, outs  # one trained it, the other waited and reused it
    assert any("waiting for it to finish" in out for out in outs)
