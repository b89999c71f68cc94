"""TriviaQA and MMLU in the real-facts chapter (steerlib.worlds.hub_qa): loading from tiny local files in the hub
datasets' schemas (nothing downloads), grading with aliases, the split by familiarity, the multiple-choice options,
and a smoke run of the chapter's experiment on TriviaQA-format questions with the tiny model."""

import dataclasses
import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from datasets import Dataset

from steerlib.book import execute
from steerlib.chapters.hallucination import real_facts as rf
from steerlib.core.cache import from_plain, to_plain
from steerlib.lm.models import build_model, tiny_config
from steerlib.lm.scoring import next_token_choice
from steerlib.lm.tokenizer import word_tokenizer
from steerlib.worlds import hub_qa
from steerlib.worlds.geography import LETTERS, choice_prompt, grade, normalize, one_test_per_run

matplotlib.use("Agg")

FACTS = [  # question, value, aliases, type: answers with aliases, numbers and free-form answers
    ("Which planet is known as the Red Planet?", "Mars", ["Planet Mars", "Fourth planet"], "WikipediaEntity"),
    ("Who wrote Hamlet?", "William Shakespeare", ["Shakespeare", "The Bard"], "WikipediaEntity"),
    ("What is the largest ocean on Earth?", "Pacific Ocean", ["Pacific", "The Pacific"], "WikipediaEntity"),
    ("Which metal has the chemical symbol Fe?", "Iron", ["Fe"], "WikipediaEntity"),
    ("In which city is the Colosseum?", "Rome", ["Roma"], "WikipediaEntity"),
    ("Which composer wrote the Moonlight Sonata?", "Ludwig van Beethoven", ["Beethoven"], "WikipediaEntity"),
    ("What is the capital of Japan?", "Tokyo", ["Tokio"], "WikipediaEntity"),
    ("Which animal is the largest mammal?", "Blue whale", ["Balaenoptera musculus"], "WikipediaEntity"),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", ["Leonardo", "Da Vinci"], "WikipediaEntity"),
    ("Which gas do plants absorb?", "Carbon dioxide", ["CO2"], "FreeForm"),
    ("What colour is a ripe banana?", "Yellow", [], "FreeForm"),
    ("What do bees make?", "Honey", [], "FreeForm"),
] + [(f"How many legs do {n} spiders have?", str(8 * n), [], "Numerical") for n in range(1, 19)]


def trivia_row(question: str, value: str, aliases: list[str], kind: str, i: int) -> dict:
    """One row of ``mandarjoshi/trivia_qa`` (config rc.nocontext), contexts empty as in that config."""
    names = [value, *aliases]
    return {
        "question": question,
        "question_id": f"tc_{i}",
        "question_source": "http://www.triviacountry.com/",
        "entity_pages": {"doc_source": [], "filename": [], "title": [], "wiki_context": []},
        "search_results": {"description": [], "filename": [], "rank": [], "title": [], "url": [], "search_context": []},
        "answer": {
            "aliases": names,
            "normalized_aliases": [normalize(a) for a in names],
            "matched_wiki_entity_name": "",
            "normalized_matched_wiki_entity_name": "",
            "normalized_value": normalize(value),
            "type": kind,
            "value": value,
        },
    }


@pytest.fixture
def trivia_file(tmp_path):
    path = tmp_path / "trivia_qa.jsonl"
    path.write_text("".join(json.dumps(trivia_row(*fact, i)) + "\n" for i, fact in enumerate(FACTS)))
    return str(path)


MMLU = [
    {
        "question": f"What is {a} + {b}?",
        "subject": "elementary_mathematics",
        "choices": [str(a + b + d) for d in (-1, 0, 1, 2)][:: (-1) ** a],
        "answer": 1 + a % 2,
    }
    for a in range(4)
    for b in range(3)
]  # rows of cais/mmlu (config all); the right index 1 or 2


@pytest.fixture
def mmlu_file(tmp_path):
    path = tmp_path / "mmlu.parquet"
    pd.DataFrame(MMLU).to_parquet(path)
    return str(path)


def test_trivia_qa_rows_become_questions_with_every_alias(trivia_file):
    cfg = hub_qa.HubQAConfig("trivia_qa", path=trivia_file, split="validation", questions=20, shots=2)
    data = hub_qa.questions(cfg, seed=0)
    assert len(data) == 20 and set(data["split"]) == {""} and np.isnan(data["population"]).all()
    facts = {q: (v, aliases, kind) for q, v, aliases, kind in FACTS}
    for row in data:
        value, aliases, kind = facts[row["question"]]
        assert row["answer"] == value and row["aliases"][0] == value and row["kind"] == kind
        assert set(aliases) | {normalize(value)} <= set(row["aliases"])  # aliases and normalized aliases
    shots = hub_qa.few_shot_examples(cfg, seed=0)
    assert len(shots) == 2 and not {q for q, _ in shots} & set(data["question"])
    asked = {normalize(a) for row in data["aliases"] for a in row}
    assert not {normalize(a) for _, a in shots} & asked  # no question is answered by a few-shot example
    assert hub_qa.questions(cfg, seed=0)["question"] == data["question"]
    assert hub_qa.questions(cfg, seed=1)["question"] != data["question"]
    text = hub_qa.few_shot_prompt(shots, data[0]["question"])
    assert (
        text == f"Q: {shots[0][0]}\nA: {shots[0][1]}\n\nQ: {shots[1][0]}\nA: {shots[1][1]}\n\n"
        f"Q: {data[0]['question']}\nA:"
    )


def test_no_question_shares_an_answer_with_a_few_shot_example(tmp_path):
    """Every fact asked twice: the twins of the two few-shot examples are left out (a model copies its prompt)."""
    twice = [*FACTS, *((f"{q} (again)", *rest) for q, *rest in FACTS)]
    path = tmp_path / "twice.jsonl"
    path.write_text("".join(json.dumps(trivia_row(*fact, i)) + "\n" for i, fact in enumerate(twice)))
    cfg = hub_qa.HubQAConfig(path=str(path), questions=100, shots=2)
    data, shots = hub_qa.questions(cfg, seed=3), hub_qa.few_shot_examples(cfg, seed=3)
    assert len(data) == len(twice) - 4
    assert not {a for _, a in shots} & set(data["answer"])


def test_trivia_qa_grading_takes_aliases_but_not_prefixes(trivia_file):
    data = hub_qa.questions(hub_qa.HubQAConfig(path=trivia_file, questions=30, shots=0), seed=0)
    aliases = dict(zip(data["question"], data["aliases"]))
    mars, bard = aliases[FACTS[0][0]], aliases[FACTS[1][0]]
    said = ["Planet Mars", "the Mars.", "Mar", "Mars bar", " Shakespeare\nQ: next", "William", "fourth planet"]
    assert grade(said, [mars, mars, mars, mars, bard, bard, mars]).tolist() == [1, 1, 0, 0, 1, 0, 1]


def test_a_copy_saved_under_steerlib_data_is_read_offline(trivia_file, tmp_path, monkeypatch):
    """The README's way to prepare a machine without a network: save_to_disk into $STEERLIB_DATA/<source>."""
    saved = Dataset.from_json(trivia_file)
    saved.save_to_disk(str(tmp_path / "data" / "trivia_qa"))
    monkeypatch.setenv("STEERLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = hub_qa.questions(hub_qa.HubQAConfig(questions=30, shots=0), seed=0)
    assert sorted(data["question"]) == sorted(saved["question"])


def test_a_split_without_answers_is_refused(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(trivia_row(q, "", [], "", i)) + "\n" for i, (q, *_) in enumerate(FACTS)))
    with pytest.raises(ValueError, match="split='test'.*0 answered questions.*'validation'"):
        hub_qa.questions(hub_qa.HubQAConfig(path=str(path), split="test"))


def test_mmlu_rows_feed_the_multiple_choice_measurement(mmlu_file):
    cfg = hub_qa.HubQAConfig("mmlu", path=mmlu_file, split="test", questions=8, shots=1)
    data = hub_qa.questions(cfg, seed=0)
    assert set(data["kind"]) == {"mmlu"} and set(data["subject"]) == {"elementary_mathematics"}
    options, right = hub_qa.choices(data, seed=0)
    assert options == data["options"] and right.tolist() == data["right"]
    assert [o[r] for o, r in zip(options, right)] == data["answer"]  # the open-QA answer is the right option
    rows = {row["question"]: row for row in MMLU}
    assert [rows[q]["answer"] for q in data["question"]] == right.tolist()
    assert [rows[q]["choices"] for q in data["question"]] == options
    tok = word_tokenizer(["What is 0 1 2 3 4 5 6 7 + ? A B C D . Answer with the letter of right option : Q"])
    model = build_model(tiny_config(tok, d_model=16, n_layers=1, n_heads=2), seed=0).eval()
    logp = next_token_choice(
        model, tok, [choice_prompt(q, o) for q, o in zip(data["question"], options)], [f" {x}" for x in LETTERS]
    )
    assert logp.shape == (8, len(LETTERS))


def test_trivia_qa_options_are_other_answers_of_the_same_kind(trivia_file):
    data = hub_qa.questions(hub_qa.HubQAConfig(path=trivia_file, questions=30, shots=0), seed=0)
    options, right = hub_qa.choices(data, seed=0)
    by_kind = {}
    for kind, answer in zip(data["kind"], data["answer"]):
        by_kind.setdefault(kind, set()).add(answer)
    assert sorted(len(v) for v in by_kind.values()) == [3, 9, 18]  # FreeForm has too few answers of its own
    for row, opts, r in zip(data, options, right):
        assert opts[r] == row["answer"] and len(set(opts)) == len(LETTERS)
        pool = by_kind[row["kind"]] if len(by_kind[row["kind"]]) >= len(LETTERS) else set(data["answer"])
        assert set(opts) <= pool
    assert hub_qa.choices(data, seed=0)[1].tolist() == right.tolist()


def test_one_test_per_run_and_the_familiarity_split_by_hand():
    rng = np.random.default_rng(0)
    mask = one_test_per_run(6, 0.5, rng)  # runs {0,1}, {2,3}, {4,5}: one test item each
    assert mask.reshape(3, 2).sum(axis=1).tolist() == [1, 1, 1]
    assert one_test_per_run(1, 0.5, rng).tolist() == [True]
    nll = np.array([5.0, 1.0, 3.0, 2.0, 4.0, 0.0, 9.0, 7.0])
    kinds = ["a"] * 6 + ["b"] * 2
    split = hub_qa.familiarity_split(nll, kinds, 0.5, seed=0)
    # kind a by NLL: (5, 1), (3, 2), (4, 0) -> indices {5, 1}, {3, 2}, {4, 0} hold one test question each
    for pair in ((5, 1), (3, 2), (4, 0), (7, 6)):
        assert sorted(split[list(pair)]) == ["finetune", "test"], pair
    assert hub_qa.familiarity_split(nll, kinds, 0.5, seed=0).tolist() == split.tolist()


@pytest.fixture(scope="module")
def trivia_smoke(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trivia")
    path = folder / "trivia_qa.jsonl"
    path.write_text("".join(json.dumps(trivia_row(*fact, i)) + "\n" for i, fact in enumerate(FACTS)))
    return execute(
        "real-facts", "smoke", 0, out_dir=folder / "out", data=hub_qa.HubQAConfig(path=str(path), questions=24, shots=2)
    )


def test_smoke_run_on_trivia_qa_questions(trivia_smoke):
    """The whole experiment on TriviaQA-format questions with the smoke profile's tiny model: split by the base
    model's NLL within each kind (drawn from the run's own stream), no population, the hedge not judged (TriviaQA's
    answers do not repeat)."""
    ex = trivia_smoke
    r, settings, figures = ex.results, ex.settings, ex.figures
    assert r.seconds["total"] - r.seconds["load"] < 30  # the tiny model's budget, less the tokenizer's one-off load
    assert np.isnan(r.population).all() and len(r.kind) == 24
    for kind in rf.kinds(r):  # half of each kind is held out, one of each pair of NLL neighbours
        sel = r.kind == kind
        assert r.test[sel].sum() == round(sel.sum() / 2)
    expected = hub_qa.familiarity_split(r.base_nll, list(r.kind), 0.5, rf.draw_seeds(ex.run)["split"]) == "test"
    np.testing.assert_array_equal(r.test, expected)
    np.testing.assert_array_equal(r.relabelled, ~r.test & (r.base_accuracy < settings.unfamiliar_accuracy))
    claims = {c.id: c for c in ex.claims}
    assert claims["S1"].verdict == "not judged" and "not available for this source" in claims["S1"].note
    assert claims["S1b"].verdict == "not judged"
    assert "population~correct" not in rf.correlations(r).columns
    assert "population" not in rf.examples(r, 1).columns
    assert len(figures.plot_familiarity(r).axes) == 2 and figures.plot_hedge(r).axes
    assert figures.plot_relabelling(r).axes
    json.dumps(ex.extra)
    assert {c["id"] for c in json.loads((ex.run.out_dir / "metrics.json").read_text())["claims"]} == set(claims)
    back = from_plain(to_plain(r), rf.Results)  # how the run cache keeps it
    assert np.isnan(back.population).all() and back.kind.tolist() == r.kind.tolist()


def test_smoke_run_on_mmlu_questions_measures_multiple_choice_with_their_own_options(mmlu_file):
    ex = execute(
        "real-facts",
        "smoke",
        0,
        record=False,
        data=hub_qa.HubQAConfig("mmlu", path=mmlu_file, split="test", questions=10, shots=1),
    )
    r = ex.results
    rows = {row["question"]: row for row in MMLU}
    questions, _ = rf.questions_of(ex.settings.data, ex.run.stream("data"))
    assert r.choice_right.tolist() == [rows[q]["answer"] for q in questions["question"]]
    assert np.isfinite(r.choice_logprobs[r.test]).all() and np.isnan(r.choice_logprobs[~r.test]).all()
    assert rf.multiple_choice(r).loc["mmlu", "questions"] == r.test.sum()


def test_the_paper_profile_asks_triviaqa_of_a_hub_model():
    paper = rf.PROFILES["paper"]
    assert isinstance(paper.data, hub_qa.HubQAConfig) and paper.data.source == "trivia_qa"
    assert paper.base.model == rf.PAPER_MODEL and paper.k == 12 and paper.replicates >= 3
    assert paper.finetune.steps > rf.PROFILES["cpu"].finetune.steps
    with pytest.raises(TypeError, match="data=.*GeographyConfig or a HubQAConfig"):
        dataclasses.replace(paper, data={"source": "trivia_qa"})
