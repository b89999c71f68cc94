import dataclasses
import json
import math
import time

import numpy as np
import pytest
import torch

from steerlib.chapters.reasoning import robustness_and_curation as C
from steerlib.chapters.reasoning.robustness_and_curation import experiment, figures
from steerlib.core.cache import RunCache
from steerlib.core.chapter import Run
from steerlib.core.claims import judge
from steerlib.core.jobs import run_stages
from steerlib.core.profiles import get_profile
from steerlib.measures import curation
from steerlib.measures.statistics import spearman
from steerlib.worlds import running_totals as task

# The cpu verdicts (measured at seed 0 with seeds 0-2, and the same at seed 1 alone); a claim that changes side fails
# the slow test. H6 does not reproduce (the forced opening breaks nearly every example whatever its pre-memorization
# accuracy); H7's prerequisite fails (nearly all of D falls below t = 0.75), so H7 is not judged.
CPU_VERDICTS = {"H6pre": "holds", "H6": "does not hold", "H6b": "does not hold", "H6c": "holds (fragile)",
                "H7pre": "does not hold", "H7": "not judged", "H7b": "not judged"}
IDS = ["H6pre", "H6", "H6b", "H6c", "H7pre", "H7", "H7b"]


def chapter_run(cache: RunCache, seed: int = 0) -> Run:
    return Run(chapter="robustness-and-curation", profile="smoke", seed=seed, device=torch.device("cpu"),
               out_dir=cache.root, cache=cache, started=time.time())


# ------------------------------------------------------------------------------------ the task's new pieces


def test_the_forced_opening_is_valid_and_not_the_targets():
    cfg, rng = task.TaskConfig(events=(3, 4)), np.random.default_rng(0)
    for p in task.problems(200, (3, 4), cfg, rng):
        target = task.random_trace(p, cfg.max_value, rng)
        opening = task.forced_opening(p, target, cfg.max_value, rng)
        assert opening is not None
        first = task.steps_of(target)[0]
        assert opening != first
        # valid: some complete valid trace of the problem starts with it
        assert any(task.steps_of(t)[0] == opening for t in task.all_traces(p, cfg.max_value))
        # a different combination, not the target's line with its operands swapped (always possible with 3+ events)
        assert sorted(opening.split(" = ")[0].split(" ")) != sorted(first.split(" = ")[0].split(" "))


def test_the_forced_opening_by_hand():
    p = task.Problem("kim", 3, (2,), ("finds",))  # one line only: 3 + 2 = 5 or 2 + 3 = 5
    assert task.opening_lines(p, 20) == ["2 + 3 = 5", "3 + 2 = 5"]
    rng = np.random.default_rng(0)
    assert task.forced_opening(p, "3 + 2 = 5 . answer is 5", 20, rng) == "2 + 3 = 5"  # only the commuted line
    same = task.Problem("kim", 3, (3,), ("finds",))  # 3 + 3 = 6 reads the same either way
    assert task.forced_opening(same, "3 + 3 = 6 . answer is 6", 20, rng) is None


def test_similar_problems_keep_the_structure_and_change_the_values():
    cfg, rng = task.TaskConfig(events=(3, 4)), np.random.default_rng(1)
    for p in task.problems(200, (3, 4), cfg, rng, (task.NEW_GAINS, task.NEW_LOSSES)):
        q = task.similar_problem(p, cfg, rng)
        assert q.verbs == p.verbs and len(q.deltas) == len(p.deltas)
        assert [d > 0 for d in q.deltas] == [d > 0 for d in p.deltas]
        assert q.name != p.name and (q.start, q.deltas) != (p.start, p.deltas)
        totals = np.cumsum([q.start, *q.deltas])
        assert totals.min() >= 0 and totals.max() <= cfg.max_value and max(map(abs, q.deltas)) <= cfg.max_delta


# ------------------------------------------------------------------------------------------ the measures


def test_ifd_by_hand():
    # NLL(y|x) = 1.0, NLL(y) = 0.5: PPL ratio e^1 / e^0.5 = e^0.5; a question that does not help gives 1
    assert curation.ifd([1.0, 0.5], [0.5, 0.5]) == pytest.approx([math.exp(0.5), 1.0])


def test_efficiency_ratio_by_hand():
    added = [0, 10, 20]
    # level min(0.4, 0.3) = 0.3: the method reaches it at 10, the baseline at 20
    assert curation.efficiency_ratio(added, [0.1, 0.3, 0.4], [0.1, 0.2, 0.3]) == pytest.approx(2.0)
    assert curation.added_to_reach(added, [0.1, 0.2, 0.4], 0.3) == pytest.approx(15.0)  # halfway from 0.2 to 0.4
    assert curation.added_to_reach(added, [0.1, 0.2, 0.25], 0.3) == math.inf
    assert curation.efficiency_ratio(added, [0.1, 0.3, 0.4], [0.1, 0.3, 0.4]) == pytest.approx(1.0)
    assert math.isnan(curation.efficiency_ratio(added, [0.3, 0.2, 0.2], [0.3, 0.1, 0.2]))  # nothing gained


def test_bin_means_and_shuffle_floor():
    score, drop = np.array([0.0, 0.1, 0.5, 1.0]), np.array([1.0, 0.5, 0.0, -0.5])
    means = curation.bin_means(score, drop, [0.0, 0.25, 0.5, 0.75, 1.0])
    assert means[[0, 2, 3]] == pytest.approx([0.75, 0.0, -0.5]) and np.isnan(means[1])
    assert C.analysis.low_minus_high(score, drop) == pytest.approx(1.25)
    rng = np.random.default_rng(0)
    x, y = rng.random(200), rng.random(200)
    floor = curation.shuffle_floor(spearman, x, y)
    assert 0.05 < floor < 0.25  # about 1.96 / sqrt(200) = 0.14 for unrelated samples


# ---------------------------------------------------------------------------------------------- smoke run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    cache = RunCache(tmp_path_factory.mktemp("cache"))
    t = time.time()
    results = C.run(get_profile(C.PROFILES, "smoke"), chapter_run(cache))
    return results, cache, time.time() - t


def test_smoke_run(smoke):
    r, _, seconds = smoke
    s = C.PROFILES["smoke"]
    assert seconds < 90
    assert set(r.test_acc) == set(s.methods) and all(len(v) == s.rounds + 1 for v in r.test_acc.values())
    assert len({float(v[0]) for v in r.test_acc.values()}) == 1  # round 0 is one run, shared by every method
    assert r.added.tolist() == [i * s.per_round for i in range(s.rounds + 1)]
    assert len(r.robust) == len(s.robust_lrs) and r.robust[0].acc.shape == (len(s.checkpoints), s.n_robust)
    assert len(r.flagged) == s.rounds and ((0 <= r.flagged) & (r.flagged <= 1)).all()
    claims = judge(C.claims(r))
    assert [c.id for c in claims] == IDS
    assert all(c.why and c.uncertainty for c in claims)
    extra = C.extra(r)
    assert extra["robust_examples"] == int(r.robust[0].has_opening.sum())
    table = C.drop_table(r)
    assert table.index.tolist() == ["[0, 0.25)", "[0.25, 0.5)", "[0.5, 0.75)", "[0.75, 1]"]
    assert table["examples (pre-mem. bins)"].sum() == extra["robust_examples"]
    two_seeds = dataclasses.replace(r, others=[r])  # the cpu profile's figures pool several seeds
    for fig in (figures.plot_drop(r), figures.plot_curation(r), figures.plot_drop(two_seeds),
                figures.plot_curation(two_seeds)):
        assert fig.axes


def test_equal_budgets_across_methods(smoke):
    r, *_ = smoke
    s = C.PROFILES["smoke"]
    assert {m: len(v) for m, v in r.added_events.items()} == {m: s.rounds * s.per_round for m in s.methods}
    assert (r.added_events["heuristic"] == max(s.task.events)).mean() > 0.5  # it asks for the longest problems


def test_every_run_is_cached_and_the_pretraining_is_the_pre_memorization_chapters(smoke):
    _, cache, _ = smoke
    s = C.PROFILES["smoke"]
    rounds = list((cache.root / "robustness-and-curation-round").iterdir())
    assert len(rounds) == 1 + s.rounds * len(s.methods)
    assert len(list((cache.root / "robustness-and-curation-robust").iterdir())) == len(s.robust_lrs)
    # the same base model as the pre-memorization chapter at the same task, pool and pretraining: one cache entry
    ex = experiment.Experiment(s, chapter_run(cache))
    from steerlib.chapters.reasoning import pre_memorization
    other = pre_memorization.experiment.Experiment(
        dataclasses.replace(pre_memorization.PROFILES["smoke"], task=s.task, n_pretrain=s.n_pretrain,
                            pretrain=s.pretrain, base=s.base), chapter_run(cache))
    assert other.base.key == ex.base.key
    keys = [json.loads((p / "config.json").read_text())["key"] for p in (cache.root / "sft").iterdir()]
    assert sum(k.get("stage") == "pretrain" for k in keys) == 1  # the other entry is the IFD scorer


def test_stage_jobs_list_the_runs_of_each_stage(smoke):
    _, cache, _ = smoke
    s = C.PROFILES["smoke"]
    ex = experiment.Experiment(s, chapter_run(cache))
    jobs, shares = C.stage_jobs(ex, 0)
    assert [type(j) for j in jobs] == [C.RobustSpec] * len(s.robust_lrs) + [C.CurationJob] and shares == []
    first = C.run_job(ex, jobs[-1])  # a cache hit
    done, logs = {m: jobs[-1] for m in s.methods}, {m: first for m in s.methods}
    jobs1, shares1 = C.stage_jobs(ex, 1, done, logs, experiment.ifd_scorer(ex))
    assert [j.method for j in jobs1] == list(s.methods) and all(len(j.added) == s.per_round for j in jobs1)
    assert shares1 == [float((first.premem < s.t).mean())]


def test_the_jobs_are_the_notebooks_runs(smoke):
    """Every stage's jobs, run after the notebook's run, find all their runs in its cache (same keys, rounds rebuilt
    in order): jobs run first would leave the notebook nothing to train."""
    _, cache, _ = smoke
    s = C.PROFILES["smoke"]
    stages = C.jobs(s, chapter_run(cache))
    assert [st.name for st in stages] == ["pretrain", "stage-0", *[f"round-{k}" for k in range(1, s.rounds + 1)],
                                          "results"]
    cache.misses.clear()
    run_stages(stages)
    assert sum(cache.misses.values()) == 0, dict(cache.misses)
    assert cache.hits["robustness-and-curation-round"] >= 1 + s.rounds * len(s.methods)


# ------------------------------------------------------------------------------------------------ cpu verdict


@pytest.mark.slow
def test_cpu_verdicts():
    cache = RunCache()
    run = dataclasses.replace(chapter_run(cache), profile="cpu")
    r = C.run(get_profile(C.PROFILES, "cpu"), run)
    verdicts = {c.id: c.verdict for c in judge(C.claims(r))}
    assert verdicts == CPU_VERDICTS
