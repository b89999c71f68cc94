import dataclasses
import math
import time

import numpy as np
import pytest

from steerlib.book import execute
from steerlib.chapters.reasoning import robustness_and_curation as C
from steerlib.chapters.reasoning.robustness_and_curation import experiment, figures
from steerlib.core.jobs import run_stages
from steerlib.measures import curation
from steerlib.measures.statistics import spearman
from steerlib.worlds import running_totals as task

# The cpu verdicts at seed 0, pinned only where they are firm (a fragile verdict's interval reaches across its
# threshold, so floating-point order alone can flip it). H6, H6b and H6c do not reproduce (the forced opening breaks
# nearly every example whatever its pre-memorization accuracy) and read "does not hold (fragile)" in the cold builds
# of 2026-12-07, so they are not pinned; H6d, the overall drop, holds firmly. Since the curation problems tell the
# pool's verbs (ledger, 2026-12-07), H7pre holds firmly (0.333 [0.24, 0.43]) and H7 and H7b are judged; both hold
# only fragilely (the curves barely rise).
FIRM_CPU_VERDICTS = {"H6pre": "holds", "H6d": "holds", "H7pre": "holds"}
FRAGILE_AT_CPU = ("H6", "H6b", "H6c", "H7", "H7b")
IDS = ["H6pre", "H6", "H6b", "H6c", "H6d", "H7pre", "H7", "H7b"]


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


# --------------------------------------------------------------------------------------- statistics by hand


def _results(replicate: int, premem_acc, drop, curves, flagged=0.5) -> C.Results:
    """One replicate's results made by hand: one robustness run whose examples have pre-memorization accuracy
    ``premem_acc`` (perplexity never below p, accuracy constant over two checkpoints) and accuracy ``drop`` under the
    forced opening (from 1), and curation curves (method -> test accuracy per round)."""
    acc = np.asarray(premem_acc, dtype=float)
    n = len(acc)
    log = experiment.RobustLog(
        acc=np.stack([acc, acc]),
        perp=np.full((2, n), 2.0),
        final_acc=np.ones(n),
        perturbed_acc=1 - np.asarray(drop, dtype=float),
        has_opening=np.ones(n, dtype=bool),
        events=np.full(n, 3),
    )
    rounds = len(next(iter(curves.values())))
    return C.Results(
        replicate,
        1.145,
        0.75,
        [C.RobustSpec(1e-3, 8)],
        [log],
        np.arange(rounds) * 10,
        {m: np.asarray(v, dtype=float) for m, v in curves.items()},
        np.full(rounds - 1, flagged),
        {m: np.full(10 * (rounds - 1), 3) for m in curves},
        {},
    )


CURVES = {"premem": [0.1, 0.3, 0.4], "iid": [0.1, 0.2, 0.3], "ifd": [0.1, 0.25, 0.3], "heuristic": [0.1, 0.2, 0.35]}


def test_statistics_by_hand():
    """H6: ρ(pre-memorization acc., drop) = -1 when the drop falls with it; H6b: lowest bin minus highest; H7: the
    method reaches the baseline's final 0.3 at 10 added examples, the baseline at 20 (ratio 2); H7b: the mean over
    rounds 1, 2 of premem minus the better rival (0.3 - 0.25, 0.4 - 0.35)."""
    x = np.array([0.0, 0.1, 0.3, 0.6, 0.8, 1.0])
    r = _results(0, x, 1 - x, CURVES, flagged=0.8)
    s = C.statistics(r)
    assert s["H6pre"] == 1.0 and s["H6"] == pytest.approx(-1.0)
    assert s["H6b"] == pytest.approx(np.mean([1.0, 0.9]) - np.mean([0.2, 0.0]))
    assert s["H6c"] == pytest.approx(0.0)  # train accuracy is the pre-memorization accuracy here: no better
    assert s["H6d"] == pytest.approx(np.mean(1 - x))  # the mean drop over the examples
    assert s["H7"] == pytest.approx(2.0) and s["H7b"] == pytest.approx(0.05)
    assert s["H7pre"] == pytest.approx(0.2) and s["share_below_t"] == pytest.approx(0.8)


def test_claims_are_means_over_replicates_and_prerequisites_gate_their_own_experiment():
    x = np.linspace(0, 1, 12)
    reps = [
        _results(0, x, 1 - x, CURVES, 0.5),
        _results(1, x, 1 - x**2, {**CURVES, "premem": [0.1, 0.25, 0.3]}, 0.4),
        _results(2, x, (1 - x) / 2, {**CURVES, "premem": [0.1, 0.2, 0.3]}, 0.97),
    ]
    per = [C.statistics(r) for r in reps]
    first = dataclasses.replace(reps[0], others=reps[1:])
    claims = {c.id: c for c in C.claims(first)}
    assert list(claims) == IDS
    for cid, c in claims.items():
        assert c.value == pytest.approx(np.mean([p[cid] for p in per])), cid
        assert c.interval is not None and "3 new independent replicates" in c.uncertainty
    floors = np.mean([C.noise_floors(r) for r in reps], axis=0)
    assert claims["H6"].threshold == pytest.approx(-round(floors[0], 3))
    assert claims["H6b"].threshold == pytest.approx(round(floors[1], 3))
    assert str(round(floors[0], 3)) in claims["H6"].why
    assert claims["H6pre"].gates == ("H6", "H6b", "H6c", "H6d") and claims["H7pre"].gates == ("H7", "H7b")
    assert f"{np.mean([0.5, 0.4, 0.97]):.2f}" in claims["H7pre"].statistic
    one = {c.id: c for c in C.claims(reps[0])}
    assert all(c.interval is None and "single replicate" in c.uncertainty for c in one.values())
    assert sorted(C.extra(first)["replicate_values"]) == [0, 1, 2]


def test_an_undefined_ratio_is_not_judged():
    flat = {m: [0.3, 0.2, 0.2] for m in CURVES}  # no curve rises above round 0's accuracy
    x = np.linspace(0, 1, 8)
    claims = {c.id: c for c in C.claims(_results(0, x, 1 - x, flat))}
    assert not claims["H7"].judged and "no ratio is defined" in claims["H7"].note
    mixed = dataclasses.replace(_results(0, x, 1 - x, flat), others=[_results(1, x, 1 - x, CURVES)])
    h7 = {c.id: c for c in C.claims(mixed)}["H7"]
    assert h7.judged and h7.value == pytest.approx(2.0) and h7.undefined_at == (0,) and "fragile" in h7.verdict


# ---------------------------------------------------------------------------------------------- smoke run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    t = time.time()
    ex = execute("robustness-and-curation", "smoke", device="cpu", out_dir=tmp_path_factory.mktemp("out"))
    return ex, time.time() - t


def test_smoke_run(smoke):
    ex, seconds = smoke
    r, s = ex.results, ex.settings
    assert seconds < 120
    assert set(r.test_acc) == set(s.methods) and all(len(v) == s.rounds + 1 for v in r.test_acc.values())
    assert len({float(v[0]) for v in r.test_acc.values()}) == 1  # round 0 is one run, shared by every method
    assert r.added.tolist() == [i * s.per_round for i in range(s.rounds + 1)]
    assert len(r.robust) == len(s.robust_lrs) and r.robust[0].acc.shape == (len(s.checkpoints), s.n_robust)
    assert len(r.flagged) == s.rounds and ((0 <= r.flagged) & (r.flagged <= 1)).all()
    assert [c.id for c in ex.claims] == IDS and set(ex.table().index) == set(IDS)
    assert all(c.why and c.uncertainty and c.fingerprint for c in ex.claims)
    assert all(c.judged or c.note for c in ex.claims)
    extra = ex.extra
    assert extra["robust_examples"] == int(r.robust[0].has_opening.sum())
    assert list(extra["replicate_values"]) == [0]
    table = C.drop_table(r)
    assert table.index.tolist() == ["[0, 0.25)", "[0.25, 0.5)", "[0.5, 0.75)", "[0.75, 1]"]
    assert table["examples (pre-mem. bins)"].sum() == extra["robust_examples"]
    two = dataclasses.replace(r, others=[r])  # the cpu profile's figures pool several replicates
    for fig in (figures.plot_drop(r), figures.plot_curation(r), figures.plot_drop(two), figures.plot_curation(two)):
        assert fig.axes and all(ax.get_xlabel() for ax in fig.axes)


def test_equal_budgets_across_methods(smoke):
    r, s = smoke[0].results, smoke[0].settings
    assert {m: len(v) for m, v in r.added_events.items()} == {m: s.rounds * s.per_round for m in s.methods}
    assert (r.added_events["heuristic"] == max(s.task.events)).mean() > 0.5  # it asks for the longest problems


def test_every_run_is_cached_and_the_pretraining_is_the_pre_memorization_chapters(smoke):
    """Both chapters' experiments at the same seed and replicate find one pretraining (the same cache key): its
    pool, initial weights and batch order come from streams of (seed, replicate, name) alone."""
    ex = smoke[0]
    s, cache = ex.settings, ex.run.cache
    rounds = list((cache.root / "robustness-and-curation-round").iterdir())
    assert len(rounds) >= 1 + s.rounds * len(s.methods)
    assert len(list((cache.root / "robustness-and-curation-robust").iterdir())) >= len(s.robust_lrs)
    from steerlib.chapters.reasoning import pre_memorization  # a test may read both chapters

    ours = experiment.Experiment(s, ex.run)
    theirs = pre_memorization.experiment.Experiment(pre_memorization.PROFILES["smoke"], ex.run)
    assert theirs.base.key == ours.base.key and theirs.base.key["seed"] == ex.run.stream("init")
    order = dataclasses.replace(ex.settings.pretrain, seed=ex.run.stream("order"))
    pretraining = {"key": ours.base.key, "sft": order}  # train_sft's key of the pretraining
    assert (cache.path("sft", pretraining) / "result.pt").exists()  # trained once, under that one key


def test_stage_jobs_list_the_runs_of_each_stage(smoke):
    ex0 = smoke[0]
    s = ex0.settings
    ex = experiment.Experiment(s, ex0.run)
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
    ex = smoke[0]
    s, cache = ex.settings, ex.run.cache
    stages = C.jobs(s, ex.run)
    assert [st.name for st in stages] == [
        "pretrain",
        "stage-0",
        *[f"round-{k}" for k in range(1, s.rounds + 1)],
        "results",
    ]
    cache.misses.clear()
    run_stages(stages)
    assert sum(cache.misses.values()) == 0, dict(cache.misses)
    assert cache.hits["robustness-and-curation-round"] >= 1 + s.rounds * len(s.methods)


# ------------------------------------------------------------------------------------------------ cpu verdict


@pytest.mark.slow
def test_cpu_verdicts():
    ex = execute("robustness-and-curation", "cpu", device="cpu")
    verdicts = {c.id: c.verdict for c in ex.claims}
    assert sorted([*FIRM_CPU_VERDICTS, *FRAGILE_AT_CPU]) == sorted(IDS) == sorted(verdicts)
    assert {cid: verdicts[cid] for cid in FIRM_CPU_VERDICTS} == FIRM_CPU_VERDICTS
    assert all(verdicts[cid] != "not judged" for cid in ("H7", "H7b")), verdicts  # the straddle judges curation


def test_both_experiments_tell_the_pools_verbs_unless_asked(smoke):
    """The set-up of H6 and H7 (ledger): the robustness set, D, the scorer's split, the additions and the curation
    test set use the pretraining pool's verbs; ``new_verbs`` restores the finetuning verbs (the pre-memorization
    chapter's problems and test set)."""
    from steerlib.worlds.running_totals import GAINS, LOSSES, NEW_GAINS, NEW_LOSSES

    ex0 = smoke[0]
    ours = experiment.Experiment(ex0.settings, ex0.run)
    told = {v for e in ours.robust_set + ours.initial + ours.scorer_set for v in e.problem.verbs}
    assert told <= {*GAINS, *LOSSES} and len(ours.curation_test) == ex0.settings.n_test
    assert len(ours.robust_set) == ex0.settings.n_robust and ours.initial == ours.robust_set[: len(ours.initial)]
    assert set(ours.curation_test["prompt"]).isdisjoint({e.problem.prompt for e in ours.initial})
    iid, _ = experiment.select(ours, "iid", C.CurationJob("", 0, ()), None, None, np.random.default_rng(0))
    assert {v for e in iid for v in e.problem.verbs} <= {*GAINS, *LOSSES}
    new = experiment.Experiment(dataclasses.replace(ex0.settings, new_verbs=True), ex0.run)
    assert {v for e in new.robust_set + new.initial for v in e.problem.verbs} <= {*NEW_GAINS, *NEW_LOSSES}
    words = {w for prompt in new.curation_test["prompt"] for w in prompt.split()}
    assert words & {*NEW_GAINS, *NEW_LOSSES} and not words & {*GAINS, *LOSSES}  # the pre-memorization test set
