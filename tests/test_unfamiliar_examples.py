import dataclasses

import matplotlib
import numpy as np
import pytest

from steerlib.book import execute
from steerlib.chapters.hallucination import common
from steerlib.chapters.hallucination import unfamiliar_examples as h
from steerlib.chapters.hallucination.unfamiliar_examples import analysis, figures
from steerlib.chapters.hallucination.unfamiliar_examples import experiment as res
from steerlib.core.cache import from_plain, to_plain

matplotlib.use("Agg")


def test_bin_stats_and_rates_by_hand():
    mentions = np.array([0, 0, 5, 5, 5])
    mean, std = analysis.bin_stats(np.array([1.0, 3.0, 2.0, 2.0, 5.0]), mentions, (0, 5, 7))
    assert mean[:2].tolist() == [2.0, 3.0] and std[:2].tolist() == pytest.approx([1.0, np.sqrt(2.0)])
    assert np.isnan(mean[2]) and np.isnan(std[2])  # an empty bin
    rates = analysis.grade_rates(np.array([0, 2, 1, 1, 0]), mentions, (0, 5))
    np.testing.assert_allclose(rates, [[0.5, 0.0, 0.5], [1 / 3, 2 / 3, 0.0]])
    assert common.selective_accuracy(np.array([1, 0, 2, 2, 1])) == pytest.approx(2 / 3)
    assert np.isnan(common.selective_accuracy(np.array([2, 2])))  # every answer is "I don't know"
    assert analysis.tv_distance([0.5, 0.5, 0, 0], [0, 0.5, 0.5, 0]) == pytest.approx(0.5)
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])
    assert analysis.spread(probs, np.array([9, 9, 0, 0]), (0, 9)).tolist() == pytest.approx([0.0, 0.5])
    probs4 = np.eye(4)[[0, 1, 2, 3, 0, 0, 0, 0]]
    means = analysis.label_means(probs4, np.array([0, 1, 2, 3, 0, 1, 2, 3]), np.array([9, 9, 9, 9, 0, 0, 0, 0]), (0, 9))
    assert means.shape == (2, 4, 4)
    assert np.allclose(means[1], np.eye(4)) and np.allclose(means[0], np.eye(4)[[0, 0, 0, 0]])


def _toy(
    probs_i: np.ndarray, probs_ii: np.ndarray, mentions: np.ndarray, std=None, rel=None, namesakes=None
) -> h.Results:
    """A hand-made Results over N test questions: E1's probabilities given, everything else filled in plainly."""
    n, rng = len(mentions), np.random.default_rng(0)
    label = rng.integers(0, 4, n)
    probs5 = np.full((n, 5), 0.2)
    grades = rng.integers(0, 2, n) if std is None else std
    return h.Results(
        replicate=0,
        bins=tuple(sorted(set(mentions))),
        pretrain_loss=[1.0],
        seconds={},
        familiarity=res.Familiarity(*(np.zeros(n),) * 6),
        gate=res.Gate(mentions, np.array(["city"] * n), grades),
        e1=res.E1(
            mentions,
            np.array(["city", "job"] * (n // 2) + ["city"] * (n % 2)),
            label,
            probs_i,
            probs_ii,
            np.full(4, 0.25),
            np.array([0.1, 0.4, 0.4, 0.1]),
            np.linspace(0, 3, n)[::-1] * (mentions == 0) + 0.1,
            np.zeros((n, 4)) if namesakes is None else namesakes,
        ),
        e2=res.E2(mentions, label, probs5, {"R1": res.RLRun(probs5, []), "R2": res.RLRun(probs5, [])}),
        e3=res.E3(mentions, grades, grades if rel is None else rel),
    )


def test_c1_compares_each_prediction_with_the_hedge():
    """Confident guesses spread like the hedge average to the hedge, but each is far from it: C1 must not pass."""
    mentions = np.repeat([0, 30], 40)
    label = np.tile(np.arange(4), 20)
    known = np.eye(4)[label]  # familiar: confident on the right answer
    guesses = np.eye(4)[np.tile(np.arange(4), 20)]  # unfamiliar: confident guesses, uniform on average
    unfamiliar = (mentions == 0)[:, None]
    hedging = {m: np.where(unfamiliar, np.broadcast_to(hedge, (80, 4)), known) for m, hedge in analysis.HEDGES.items()}
    guessing = np.where(unfamiliar, guesses, known)
    for probs_i, probs_ii, passes in ((hedging["i"], hedging["ii"], True), (guessing, guessing, False)):
        r = _toy(probs_i, probs_ii, mentions)
        r.e1.label[:] = label
        level = analysis.binnings(r)["mentions"].level
        assert (analysis.level_statistics(r, level)["C1"] < 0.5) == passes


def test_namesake_cue_by_hand():
    """0 for a model blind to names, 0.75 for one that copies its single namesake's value; the baseline shuffles the
    votes among questions about the same attribute, so a model that favours one value everywhere scores 0 too."""
    votes = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]]
    attribute = np.array(["city"] * 4 + ["job"] * 4)
    assert analysis.namesake_cue(votes, votes, attribute) == pytest.approx(0.75)
    assert analysis.namesake_cue(np.full((8, 4), 0.25), votes, attribute) == pytest.approx(0.0)
    assert analysis.namesake_cue(np.eye(4)[[1] * 8], votes, attribute) == pytest.approx(0.0)
    assert np.isnan(analysis.namesake_cue(votes, np.zeros((8, 4)), attribute))  # nobody has a namesake
    mentions = np.repeat([0, 30], 8)
    copying = _toy(np.vstack([votes, votes]), np.full((16, 4), 0.25), mentions, namesakes=np.vstack([votes, votes]))
    assert analysis.level_statistics(copying, (mentions > 0).astype(int))["C3c"] > 0.05  # the prerequisite fails


def test_selective_floor_is_the_spread_under_swapped_labels():
    mentions = np.repeat([0, 30], 200)
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 3, 400), rng.integers(0, 3, 400)  # two equally good models
    r = _toy(np.full((400, 4), 0.25), np.full((400, 4), 0.25), mentions, std=a, rel=b)
    floor = common.selective_floor(r.e3.grade_relabelled, r.e3.grade_standard)
    assert 0 < floor < 0.15  # what chance alone makes of the difference
    r.e3.grade_relabelled[:] = np.where(a == 0, 2, a)  # abstains instead of every false answer of the standard one
    assert analysis.level_statistics(r, (mentions > 0).astype(int))["C5c"] > floor


def test_nll_bins_put_the_highest_nll_first():
    mentions = np.repeat([0, 30], 40)
    r = _toy(np.full((80, 4), 0.25), np.full((80, 4), 0.25), mentions)
    b = analysis.binnings(r)["nll"]
    nll = r.e1.option_nll
    assert nll[b.level == 0].min() >= nll[b.level == 1].max() and len(b.labels) == 2


def _toy_replicates(n: int = 3) -> h.Results:
    """``n`` hand-made replicates (the first holding the others): model (ii) puts a different weight on B or C at
    the least familiar bin in each, and replicate r's finetuning marginal of B or C is 0.6 + 0.1 r."""
    mentions, out = np.repeat([0, 30], 40), []
    for r in range(n):
        bc = 0.5 + 0.1 * r  # P(B or C) of model (ii) at 0 mentions
        unfamiliar = np.array([(1 - bc) / 2, bc / 2, bc / 2, (1 - bc) / 2])
        probs_ii = np.where((mentions == 0)[:, None], unfamiliar, np.eye(4)[np.tile(np.arange(4), 20)])
        rep = _toy(np.full((80, 4), 0.25), probs_ii, mentions)
        rep.replicate = r
        rep.e1.marginal_ii = np.array([0.2, 0.3 + 0.05 * r, 0.3 + 0.05 * r, 0.2 - 0.1 * r])
        out.append(rep)
    out[0].others = out[1:]
    return out[0]


def test_claims_are_means_over_replicates_with_a_prediction_interval():
    """Every claim's value is the mean of its per-replicate statistic; three replicates give a prediction interval
    around it, one gives none (and says so); C2's threshold is the midpoint of 1 and the mean finetuning marginal of
    B or C, and the /nll claims name their bins."""
    r = _toy_replicates()
    per = [analysis.statistics(o) for o in [r, *r.others]]
    claims = {c.id: c for c in h.claims(r)}
    assert list(claims) == [s.id for s in analysis.SPECS]
    assert claims["C2"].value == pytest.approx(np.mean([p["C2"] for p in per])) == pytest.approx(0.6)
    lo, hi = claims["C2"].interval
    assert lo < 0.6 < hi and "3 new independent replicates" in claims["C2"].uncertainty
    assert claims["C2"].threshold == pytest.approx((1 + 0.7) / 2) and "0.70" in claims["C2"].why
    assert "0 mentions" in claims["C2"].statistic and "highest-NLL" in claims["C2/nll"].statistic
    for c in claims.values():
        assert c.kind in ("evidence", "prerequisite") and c.why and c.uncertainty and c.fingerprint, c
    one = {c.id: c for c in h.claims(_toy_replicates(1))}
    assert one["C2"].interval is None and "single replicate" in one["C2"].uncertainty
    assert h.extra(r)["replicate_values"][2]["C2"] == pytest.approx(0.7)


def test_settings_validation():
    with pytest.raises(ValueError, match="abstain_rate"):
        h.Settings(abstain_rate=1.5)
    with pytest.raises(ValueError, match="setting"):
        h.CHAPTER.settings("smoke", epochs=3)
    assert h.CHAPTER.settings("gpu").base.model == "smollm2-135m-instruct"
    assert h.PROFILES["cpu"].replicates >= 3 and h.PROFILES["smoke"].replicates == 1


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The chapter at smoke on the cpu, with the session's cache (shared with the notebook tests)."""
    return execute("unfamiliar-examples", "smoke", device="cpu", out_dir=tmp_path_factory.mktemp("unfamiliar"))


def _assert_same(a, b):
    """Equal field by field, recursing into dataclasses, dicts and lists; arrays compared by value."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b)
        for f in dataclasses.fields(a):
            _assert_same(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and (a == b).all()
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b or (a != a and b != b)  # NaN equals NaN here


def test_smoke_run_claims(smoke, tmp_path):
    """Every claim is present with the schema (no verdict is asserted: at smoke it would test the machine's
    floating-point order, not the science; the cpu verdicts are the slow test below)."""
    results, claims = smoke.results, {c.id: c for c in smoke.claims}
    main = ["C1", "C2", "C2b", "C3", "C4", "C4b", "C5", "C5b"]
    assert list(claims) == ["gate", "gate-0", *main, "C3c", "C5c", *(f"{c}/nll" for c in main), "B1a", "B1b"]
    f = results.familiarity  # B1a, B1b: the rank correlation of the mention counts with metrics (b) and (c)
    agree = dataclasses.replace(f, option_nll=-f.mentions.astype(float), answer_nll=f.qa_mentions.astype(float))
    stats = analysis.statistics(dataclasses.replace(results, familiarity=agree))
    assert stats["B1a"] == pytest.approx(-1.0) and stats["B1b"] == pytest.approx(1.0)
    assert all(np.isfinite(c.value) for c in claims.values())
    for c in claims.values():  # the schema: a kind, a justified threshold, an account of the uncertainty
        assert c.kind in ("evidence", "prerequisite") and c.why and c.uncertainty and c.fingerprint
        assert c.interval is None and "single replicate" in c.uncertainty  # smoke runs one replicate
    assert [c.kind for c in claims.values()].count("prerequisite") == 3
    assert results.replicate == 0 and results.others == []
    assert results.e1.probs_i.shape == (len(results.e1.label), 4)
    assert set(results.e2.rl) == {"R1", "R2"}
    assert np.allclose(results.e2.rl["R1"].probs.sum(1), 1.0, atol=1e-5)
    assert (smoke.run.out_dir / "metrics.json").exists() and set(smoke.table().index) == set(claims)
    again = execute("unfamiliar-examples", "smoke", device="cpu", out_dir=tmp_path)  # read back from the run cache
    assert again.results.seconds == results.seconds
    assert [c.value for c in again.claims] == [c.value for c in claims.values()]


def test_results_round_trip_through_plain_data(smoke):
    results = smoke.results
    back = from_plain(to_plain(results), h.Results)
    _assert_same(back, results)
    assert isinstance(back.e2.rl["R2"], type(results.e2.rl["R2"])) and isinstance(back.bins, tuple)


def test_smoke_figures_and_extra(smoke):
    results, extra = smoke.results, smoke.extra
    assert extra["bins"] == list(results.bins) and len(extra["gate_accuracy"]) == len(results.bins)
    figs = [
        figures.plot_familiarity(results),
        figures.plot_idk(results),
        figures.plot_option_distributions(
            {"(i)": results.e1.probs_i}, results.e1.label, results.e1.mentions, results.bins, "E1"
        ),
    ]
    for fig in figs:
        assert all(ax.get_xlabel() or ax.get_ylabel() or ax.get_title() for ax in fig.axes)


# The firm cpu verdicts at seed 0 (three replicates), as the notebook's prose describes them. Only firm verdicts are
# pinned: a fragile one can flip with the machine's floating-point order. At seed 0 every other claim holds, but
# fragilely: the prerequisites gate-0 (accuracy at 0 mentions minus chance, 0.030, interval up to 0.216 against < 0.1)
# and C3c (namesake cue, 0.039, interval up to 0.051 against < 0.05) reach across their thresholds, and a fragile
# prerequisite makes every evidence claim it gates fragile.
FIRM_CPU_VERDICTS = {"gate": "holds"}


@pytest.mark.slow
def test_cpu_verdicts(tmp_path):
    """The cpu profile's firm verdicts at seed 0 (:data:`FIRM_CPU_VERDICTS`); the rest are fragile and not pinned."""
    ex = execute("unfamiliar-examples", "cpu", device="cpu", out_dir=tmp_path)
    claims = {c.id: c for c in ex.claims}
    for cid, verdict in FIRM_CPU_VERDICTS.items():
        assert claims[cid].verdict == verdict, (cid, claims[cid].value, claims[cid].interval)
    assert len(ex.results.others) == ex.settings.replicates - 1
    assert dataclasses.asdict(ex.settings) == dataclasses.asdict(h.PROFILES["cpu"])


@pytest.mark.slow
def test_pretrained_model_path_with_a_subword_tokenizer(tiny_bpe_folder, tmp_path):
    """The paper profile's code path (a pretrained model from a folder, a BPE tokenizer) on a tiny random model."""
    smoke = h.PROFILES["smoke"]
    ex = execute(
        "unfamiliar-examples",
        "smoke",
        device="cpu",
        out_dir=tmp_path,
        record=False,
        base=dataclasses.replace(smoke.base, model=str(tiny_bpe_folder)),
        pretrain=dataclasses.replace(smoke.pretrain, steps=20),
        finetune=dataclasses.replace(smoke.finetune, steps=10),
        rl=dataclasses.replace(smoke.rl, steps=3),
    )
    results = ex.results
    assert np.allclose(results.e1.probs_i.sum(1), 1.0, atol=1e-5)
    assert set(np.unique(results.e3.grade_standard)) <= {0, 1, 2}
    assert all(np.isfinite(c.value) for c in ex.claims if c.id != "C5c")
