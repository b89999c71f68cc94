"""The knowledge-overshadowing chapter: the group world (unique answers, exactly L shared condition words, disjoint
fillers, the copies of each fact), its statistics on hand-made logs, bad settings, the smoke run's structure and
seeding, and (slow) the cpu verdicts."""

import numpy as np
import pytest

from steerlib.book import execute
from steerlib.chapters.related.knowledge_overshadowing import analysis, experiment
from steerlib.worlds.overshadowing import facts, make_groups, max_groups


def _words(prompt: str) -> set[str]:
    return set(prompt.split())


def test_groups_share_exactly_l_condition_words_and_answers_are_unique():
    world = make_groups(20, 8, np.random.default_rng(0))
    answers = world.answers
    assert len(answers) == 3 * 20 and len(set(answers)) == len(answers), "every answer names one fact of one group"
    prompt_words = {
        w for g in range(20) for kind in ("popular", "rare", "filler") for w in _words(world.query(kind, g, 8))
    }
    assert not prompt_words & set(answers), "no answer is a prompt word"
    for length in (1, 4, 8):
        for g in range(20):
            popular, rare = _words(world.query("popular", g, length)), _words(world.query("rare", g, length))
            assert popular & rare == set(world.condition[g][:length]) | {"is"}
            assert len(popular) == length + 2
            filler = _words(world.query("filler", g, length))
            others = {w for h in range(20) for k in ("popular", "rare") for w in _words(world.query(k, h, 8))}
            assert filler & others == {"is"}, "filler facts share no word with the groups' facts"
            if g:
                assert not _words(world.query("popular", g - 1, 8)) & popular - {"is"}, "groups share no word"


def test_facts_hold_the_stated_copies_and_every_ratio_the_same_count():
    world = make_groups(5, 4, np.random.default_rng(1))
    for ratio, rare in ((1, 2), (10, 2), (30, 2), (10, 4)):
        data = facts(world, 4, ratio, rare, 64)
        assert len(data) == 5 * 64, "every ratio trains on the same number of sequences"
        kinds = np.array(data["kind"])
        group = np.array(data["group"])
        for g in range(5):
            counts = {k: int(((kinds == k) & (group == g)).sum()) for k in ("popular", "rare", "filler")}
            assert counts == {"popular": ratio * rare, "rare": rare, "filler": 64 - ratio * rare - rare}
    row = facts(world, 2, 1, 1, 3)[1]
    assert row["prompt"] == world.query("rare", 0, 2) and row["response"] == " " + world.answer("rare", 0)


def test_the_world_refuses_what_cannot_be_built():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n="):
        make_groups(max_groups(8) + 1, 8, rng)
    with pytest.raises(ValueError, match="ratio=0.5"):
        facts(make_groups(2, 2, rng), 2, 0.5, 2, 8)
    with pytest.raises(ValueError, match="length=0"):
        facts(make_groups(2, 2, rng), 0, 1, 2, 8)


def _log(rare: list[int], popular: list[int] | None = None) -> experiment.RunLog:
    """A run with one checkpoint: the first-ranked answer of each group's rare (and popular) query."""
    popular = popular if popular is not None else list(range(len(rare)))
    return experiment.RunLog(np.array([10]), np.array([rare]), np.array([popular]), np.array([0.1]))


def test_h_accuracy_and_the_error_breakdown_by_hand():
    # 5 groups: answers 0-4 popular, 5-9 rare, 10-14 filler. Group 0 right (5); 1 and 2 their own popular (1, 2);
    # groups 3 and 4 the same answer, group 0's filler answer 10: the global mode.
    log = _log([5, 1, 2, 10, 10])
    assert analysis.overshadowed(log, 5)[-1] == 0.4 and analysis.rare_accuracy(log, 5)[-1] == 0.2
    assert analysis.popular_accuracy(log, 5)[-1] == 1.0
    errors = analysis.error_breakdown(log, 5)
    assert errors["errors"] == 4 and errors["own popular"] == 0.5 and errors["global mode"] == 0.5
    assert errors["other"] == 0.0 and errors["top answer"] == 0.5
    once = analysis.error_breakdown(_log([5, 1, 2, 10, 11]), 5)  # no other answer given twice: no global mode
    assert once["global mode"] == 0.0 and once["other"] == 0.5 and once["top answer"] == 0.25
    hedge = analysis.error_breakdown(_log([9, 9, 9, 9]), 4)  # one answer for every rare query: a hedge
    assert hedge["own popular"] == 0.0 and hedge["top answer"] == 1.0 and hedge["global mode"] == 1.0
    assert np.isnan(analysis.error_breakdown(_log([4, 5, 6, 7]), 4)["own popular"]), "no error, no breakdown"


def _results(h_by_ratio: dict[float, int], s: experiment.Settings, replicate: int = 0) -> experiment.Results:
    """Hand-made results on 4 groups: in every run, the first ``h`` groups answer their rare query with their
    popular answer, the rest rightly."""
    logs = {}
    for spec in s.runs:
        h = h_by_ratio.get(spec.ratio, 0) if spec.length == s.length and spec.rare == s.rare else spec.length - 1
        logs[spec.name] = _log([g if g < h else 4 + g for g in range(4)])
    return experiment.Results(replicate, 4, logs, s.ratio_sweep, s.length_sweep, s.main, s.doubled, s.extra_run, {})


def test_claims_read_the_sweeps_of_the_results():
    s = experiment.PROFILES["cpu"]
    one = _results({1: 0, 3: 1, 10: 2, 30: 4}, s)
    one.others = [_results({1: 0, 3: 1, 10: 3, 30: 4}, s, 1), _results({1: 0, 3: 2, 10: 2, 30: 4}, s, 2)]
    stats = analysis.statistics(one)
    assert stats["R3p/gate"] == 1.0 and stats["R3a/rise"] == 1.0
    assert stats["R3c/own"] == 1.0, "two errors, each its own group's answer"
    assert np.isnan(stats["R3c/spread"]), "two errors cannot spread below one answer in ten"
    claims = {c.id: c for c in analysis.claims(one)}
    assert claims["R3a/rho"].value == pytest.approx(1.0) and claims["R3b"].value == pytest.approx(1.0)
    assert claims["R3d"].value == pytest.approx(np.mean([2 - 3, 3 - 3, 2 - 3]) / 4), "H(n) - H(2n): 3 of 4 at 2n"


def test_every_claimed_run_trains_the_same_steps():
    s = experiment.PROFILES["cpu"]
    claimed = [*s.ratio_sweep, *s.length_sweep, s.doubled]
    assert {s.steps(p) for p in claimed} == {256}
    assert s.steps(s.extra_run) > 256 and len(s.runs) == 9


@pytest.mark.parametrize(
    "override, error",
    [({"ratios": (0.5, 1)}, ValueError), ({"length": 3}, ValueError), ({"slots": 8}, ValueError)],
)
def test_bad_settings_are_refused(override, error):
    with pytest.raises(error, match=next(iter(override))):
        experiment.Settings(**override)


def test_smoke_run_judges_every_claim_and_replicates_differ(tmp_path):
    ex = execute("knowledge-overshadowing", "smoke", seed=0, out_dir=tmp_path)
    assert [c.id for c in ex.claims] == [s.id for s in analysis.SPECS]
    replicates = [ex.results, *ex.results.others]
    assert len(replicates) == ex.settings.replicates and (tmp_path / "metrics.json").is_file()
    assert set(replicates[0].logs) == {p.name for p in ex.settings.runs}
    first = [r.logs[ex.settings.main.name].loss for r in replicates]
    assert not np.array_equal(*first), "each replicate draws its own world, weights and batches"
    again = execute("knowledge-overshadowing", "smoke", seed=0, out_dir=tmp_path / "again", cache=False)
    assert np.array_equal(again.results.logs[ex.settings.main.name].loss, first[0]), "the same seed, the same run"


@pytest.mark.slow
def test_cpu_claims(tmp_path):
    """At cpu the balanced control learns its rare facts (the gate), so every evidence claim is judged."""
    ex = execute("knowledge-overshadowing", "cpu", seed=0, out_dir=tmp_path)
    assert ex.claim("R3p/gate").holds, ex.table()


def test_claims_with_nothing_to_measure_are_not_judged():
    s = experiment.PROFILES["cpu"]
    flat = _results({}, s)  # no group overshadowed in any run of the ratio sweep: H = 0 everywhere
    for spec in [*s.length_sweep, s.doubled]:
        flat.logs[spec.name] = _log([4, 5, 6, 7])
    flat.others = [_results({}, s, 1)]
    flat.others[0].logs = dict(flat.logs)
    claims = {c.id: c for c in analysis.claims(flat)}
    for cid in ("R3a/rho", "R3b", "R3c/own", "R3c/spread"):
        assert claims[cid].verdict == "not judged" and claims[cid].note, cid
    assert claims["R3d"].verdict == "not judged", "H = 0 with n and 2n copies: nothing to lower"
    assert claims["R3a/rise"].verdict == "does not hold"


def test_early_claims_read_the_first_checkpoint():
    s = experiment.PROFILES["cpu"]
    results = _results({1: 0, 3: 1, 10: 2, 30: 4}, s)
    for name, log in results.logs.items():  # a first checkpoint where every group answers its popular answer
        results.logs[name] = experiment.RunLog(
            np.array([1, 10]), np.vstack([np.arange(4), log.rare[0]]), np.vstack([log.popular] * 2), np.zeros(2)
        )
    stats = analysis.statistics(results)
    assert stats["R3a/early-rise"] == 0.0 and stats["R3c/early-own"] == 1.0
    assert stats["R3a/rise"] == 1.0 and stats["R3c/own"] == 1.0, "the end-of-training claims read the last one"


def test_r3d_reads_the_end_of_the_runs():
    s = experiment.PROFILES["cpu"]
    results = _results({10: 2}, s)  # at the end: H = 2/4 with n copies, 3/4 with 2n (L = 4 gives 3)
    for name, log in results.logs.items():  # a first checkpoint where no rare query is overshadowed
        results.logs[name] = experiment.RunLog(
            np.array([1, 10]), np.vstack([4 + np.arange(4), log.rare[0]]), np.vstack([log.popular] * 2), np.zeros(2)
        )
    assert analysis.statistics(results)["R3d"] == pytest.approx(-0.25)


def test_pooled_errors_weigh_each_replicate_by_its_errors():
    s = experiment.PROFILES["cpu"]
    one = _results({10: 2}, s)  # r = 10: two errors, both the group's own popular answer
    other = _results({10: 0}, s, 1)
    other.logs[s.main.name] = _log([8, 5, 6, 7])  # one error: group 0 gives group 0's filler answer
    one.others = [other]
    pooled = analysis.pooled_errors(one, s.main.name)
    assert pooled["errors"] == 3 and pooled["own popular"] == pytest.approx(2 / 3)
    assert pooled["other"] == pytest.approx(1 / 3)
    assert pooled["top answer"] == pytest.approx((2 * 0.5 + 1 * 1.0) / 3), "each replicate's share, weighted"
    assert analysis.mean_curve(one, s.main.name, analysis.overshadowed) == pytest.approx([0.25])
