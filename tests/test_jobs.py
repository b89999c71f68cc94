"""The jobs layer (:mod:`steerlib.core.jobs`, the command :mod:`steerlib.jobs`): stages in order, in worker
processes, and Part I's chapters sharing their models through the run cache. The pre-memorization chapter's jobs
(launched through submitit, a killed run resumed) are tested in ``tests/test_pre_memorization.py``; every chapter's
list in ``tests/test_contract.py``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from steerlib import jobs
from steerlib.book import execute
from steerlib.core.cache import CACHE_ENV
from steerlib.core.jobs import Job, Stage, run_stages


def test_stages_run_in_order_each_in_worker_processes(tmp_path):
    """A second stage's jobs read what the first one's wrote (a copy fails on a missing file)."""
    files = [tmp_path / name for name in "abc"]
    stages = [
        Stage("make", tuple(Job(f.name, Path.touch, (f,)) for f in files)),
        Stage("nothing", ()),
        Stage("copy", tuple(Job(f.name, shutil.copy, (f, f.with_suffix(".copy"))) for f in files)),
    ]
    seconds = run_stages(stages, workers=2)
    assert len(seconds) == 6 and all(f.with_suffix(".copy").exists() for f in files)


def test_part_one_chapters_share_their_models_and_then_train_nothing(tmp_path, monkeypatch):
    """Reversion's jobs train every ensemble; cautious decisions and mechanism find theirs among them (same cache
    entries) and train only their own; each chapter's run then trains nothing."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    names = ("reversion", "cautious-decisions", "mechanism")
    trained = {}
    for name in names:
        stages = jobs.stages(name, "smoke", device="cpu")
        cache = stages[0].jobs[0].args[1].cache  # every job's run shares one RunCache, whose counters we read
        run_stages(stages)
        trained[name] = cache.misses["ensemble"]
    # reversion: CE, MSE reward, Gaussian NLL; cautious decisions: the +1/-0.05/0 reward model; mechanism: the
    # batch-norm CNN and the imbalanced-label control (its CE, MSE-reward and NLL CNNs are reversion's)
    assert trained == {"reversion": 3, "cautious-decisions": 1, "mechanism": 2}
    for name in names:
        cache = execute(name, "smoke", device="cpu", out_dir=tmp_path / name).run.cache
        assert cache.misses["ensemble"] == cache.misses["ladders"] == cache.misses["homogeneous"] == 0, name
        assert cache.hits["ensemble"] > 0


def test_the_one_command_runs_as_a_module():
    """``python -m steerlib.jobs`` in a fresh process (what a cluster task or a shell runs)."""
    out = subprocess.run(
        [sys.executable, "-m", "steerlib.jobs", "mechanism", "--profile", "smoke", "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines()[:2] == ["setup\t0\tdigits cnn/ce", "models\t0\ttheory"]
