"""A synthetic knowledge world whose familiarity is known exactly.

Fictional people (two-word made-up names: distinct (first, last) pairs from pools of ``n_first`` and ``n_last``
words; with ``distinct_names``, everyone the corpus mentions has two words of their own, so a name never shares a word
with a person the model can know) have a city, a job and a hobby, each one of four values, drawn uniformly and
independently of their names. The pretraining corpus mentions each person in exactly ``mentions`` documents; a
document is a three-sentence
biography with one sentence per attribute, each from one of five templates, attributes in random order and the full
name in every sentence — varied, name-anchored statements are what lets finetuning later *extract* the stored facts
(Allen-Zhu & Li 2023, "Physics of Language Models 3.1"). Mention counts are long-tailed: the same number of people
are drawn from a geometric ladder such as 0, 1, 3, 10, 30, 100 with most people in the rarely mentioned bins
(never-mentioned people included). Every bin holds out the same number of test people; the rest are finetuning
people. Never-mentioned people cost no corpus, so the default world has many: unfamiliar finetuning questions are then
plentiful and each is seen only a few times, too few to memorise its answer during finetuning.

Finetuning formats: open question answering answered in a sentence (``qa_examples``), and multiple choice
(``mc_examples``) whose options A–D are the attribute's four values in a fixed order, optionally with E = "I don't
know". A multiple-choice question is the declarative stem (``"<name> lives in"``) and the answer is the option's
text; with the options fixed, each option is a token of its own, as the letters A–D are for an LLM on MMLU, and a
tiny model need not learn to find or copy options in the prompt. Everything is a ``datasets.Dataset``.

Long-form profiles (the conservative-rewards chapter): ``make_world(cfg, seed, attributes=LONG_ATTRIBUTES)`` gives
people six attributes (the three above first, drawn exactly as in the default world, then a pet, a drink and an
instrument); :func:`profile_examples` asks ``"Write a profile of <name>."`` and answers with one fact clause per
attribute in a fixed order, stopping after a given number of clauses. The fact checker is exact: :func:`decompose`
splits a response into clauses and parses each with the world's templates (the fact decomposer), :func:`verify`
looks each parsed fact up (the verifier).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np
from datasets import Dataset

from steerlib.core.checks import (
    check_choice,
    check_choices,
    check_columns,
    check_nonempty,
    check_range,
    check_ranges,
    check_same_length,
    check_seed,
    check_strings,
    check_type,
)

ATTRIBUTES: dict[str, tuple[str, ...]] = {  # the values in option order A-D
    "city": ("Oslo", "Lima", "Cairo", "Dublin"),
    "job": ("doctor", "baker", "pilot", "farmer"),
    "hobby": ("chess", "fishing", "rowing", "poetry"),
}
TEMPLATES: dict[str, tuple[str, ...]] = {
    "city": (
        "{name} lives in {value}.",
        "{name} has a home in {value}.",
        "{name} resides in the city of {value}.",
        "The home of {name} is in {value}.",
        "{name} settled down in {value}.",
    ),
    "job": (
        "{name} works as a {value}.",
        "{name} earns a living as a {value}.",
        "By trade, {name} is a {value}.",
        "The job of {name} is {value}.",
        "{name} is employed as a {value}.",
    ),
    "hobby": (
        "{name} enjoys {value}.",
        "In free time, {name} likes {value}.",
        "{name} spends weekends on {value}.",
        "The favourite hobby of {name} is {value}.",
        "{name} is fond of {value}.",
    ),
}
EXTRA_ATTRIBUTES: dict[str, tuple[str, ...]] = {  # the long-form world's further attributes
    "pet": ("cat", "dog", "horse", "parrot"),
    "drink": ("tea", "coffee", "milk", "juice"),
    "instrument": ("piano", "violin", "drums", "flute"),
}
EXTRA_TEMPLATES: dict[str, tuple[str, ...]] = {
    "pet": (
        "{name} owns a {value}.",
        "{name} keeps a {value} at home.",
        "The pet of {name} is a {value}.",
        "{name} takes care of a {value}.",
        "{name} has a pet {value}.",
    ),
    "drink": (
        "{name} drinks {value}.",
        "{name} prefers {value} to anything.",
        "The drink of {name} is {value}.",
        "Every morning, {name} has {value}.",
        "{name} orders {value}.",
    ),
    "instrument": (
        "{name} plays the {value}.",
        "{name} practises the {value}.",
        "At night, {name} plays {value}.",
        "The instrument of {name} is the {value}.",
        "{name} learned the {value}.",
    ),
}
ALL_TEMPLATES = {**TEMPLATES, **EXTRA_TEMPLATES}
LONG_ATTRIBUTES = (*ATTRIBUTES, *EXTRA_ATTRIBUTES)  # attribute names of the long-form world, in clause order
PROFILE_PROMPT = "Write a profile of {name}."
QUESTIONS = {
    "city": "Q: Where does {name} live?",
    "job": "Q: What is the job of {name}?",
    "hobby": "Q: What hobby does {name} enjoy?",
}
CLOZES = {"city": "{name} lives in", "job": "{name} works as a", "hobby": "{name} enjoys"}  # familiarity metric (b)
IDK = "I don't know"  # the abstaining answer (E3 writes it as a sentence, "I don't know.")
LETTERS = "ABCDE"
SYLLABLES = tuple(c + v for c in "bdfgklmnprstvz" for v in "aeiou")
ENDINGS = "nrsl"
MAX_NAME_WORDS = len(SYLLABLES) ** 2 * len(ENDINGS)  # distinct two-syllable words made_up_words can draw


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """How the world is made: people per mention bin, held-out test people, the name pools."""

    mention_bins: tuple[int, ...] = (0, 1, 3, 10, 30, 100)  # documents per person in each bin
    people_per_bin: tuple[int, ...] = (1200, 150, 100, 100, 100, 100)
    test_per_bin: int = 50  # held-out test people in every bin
    n_first: int = 150  # first names; full names are distinct (first, last) pairs, each word shared by
    n_last: int = 150  # about (people / pool) people (every word is a token of a word-level model's vocabulary)
    distinct_names: bool = False  # True: everyone mentioned at least once gets name words of their own, so no one
    # shares a name word with a person the corpus describes; the pools then name the never-mentioned people only

    def __post_init__(self):
        bins = check_ranges("mention_bins", self.mention_bins, 0, integer=True)
        if len(set(bins)) < len(bins):
            raise ValueError(f"mention_bins={self.mention_bins} repeats a bin; give distinct mention counts")
        check_ranges("people_per_bin", self.people_per_bin, 2, integer=True)  # a test and a finetuning person each
        if len(self.people_per_bin) != len(self.mention_bins):
            raise ValueError(
                f"people_per_bin={self.people_per_bin} needs one count per mention bin {self.mention_bins}"
            )
        check_range("test_per_bin", self.test_per_bin, 1, min(self.people_per_bin) - 1, integer=True)
        check_range("n_first", self.n_first, 1, integer=True)
        check_range("n_last", self.n_last, 1, integer=True)
        check_type("distinct_names", self.distinct_names, bool, "True or False")
        pooled = sum(n for m, n in zip(bins, self.people_per_bin) if m == 0 or not self.distinct_names)
        if self.n_first * self.n_last < pooled:
            raise ValueError(f"n_first*n_last={self.n_first * self.n_last} names are too few for {pooled} people")
        if self.name_words > MAX_NAME_WORDS // 2:
            raise ValueError(
                f"{self.name_words} name words (n_first+n_last, plus two per mentioned person with "
                f"distinct_names); the name generator makes at most {MAX_NAME_WORDS // 2}"
            )

    @property
    def name_words(self) -> int:
        """How many distinct name words the world draws."""
        own = sum(n for m, n in zip(self.mention_bins, self.people_per_bin) if m > 0) if self.distinct_names else 0
        return self.n_first + self.n_last + 2 * own


@dataclasses.dataclass
class KnowledgeWorld:
    """Made-up people, each with attributes and a known number of biographies in the pretraining corpus."""

    config: WorldConfig
    seed: int
    people: Dataset  # id, name, city, job, hobby, mentions, split ("finetune" | "test")
    corpus: Dataset  # text, person (the id of the person the biography mentions)
    attributes: tuple[str, ...] = tuple(ATTRIBUTES)  # the people's attributes (columns of ``people``)

    def split(self, name: str) -> Dataset:
        """The people of split ``name``: "finetune" or "test"."""
        check_choice("name", name, ("finetune", "test"))
        return self.people.filter(lambda s: s == name, input_columns="split")


def made_up_words(n: int, rng: np.random.Generator, syllables: int = 2, taken: Sequence[str] = ()) -> list[str]:
    """``n`` distinct capitalised pseudo-words of ``syllables`` consonant-vowel syllables (plus a final consonant),
    none of them in ``taken``."""
    check_range("n", n, 0, integer=True)
    check_type("rng", rng, np.random.Generator, "a numpy Generator (np.random.default_rng(seed))")
    check_range("syllables", syllables, 1, integer=True)
    words: list[str] = []
    seen: set[str] = set(taken)
    while len(words) < n:
        word = ("".join(rng.choice(SYLLABLES, syllables)) + rng.choice(list(ENDINGS))).capitalize()
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def biography(name: str, facts: dict[str, str], rng: np.random.Generator) -> str:
    """One document: a sentence per attribute, each from a random template, attributes in random order."""
    check_nonempty("name", check_type("name", name, str, "a person's name"))
    check_type("facts", facts, dict, "a dict attribute -> value")
    check_choices("facts", list(facts), ALL_TEMPLATES)
    check_type("rng", rng, np.random.Generator, "a numpy Generator (np.random.default_rng(seed))")
    order = rng.permutation(list(facts))
    return " ".join(
        ALL_TEMPLATES[a][rng.integers(len(ALL_TEMPLATES[a]))].format(name=name, value=facts[a]) for a in order
    )


def values_of(attribute: str) -> tuple[str, ...]:
    """The four values of ``attribute`` (one of :data:`LONG_ATTRIBUTES`), in option order."""
    check_choice("attribute", attribute, LONG_ATTRIBUTES)
    return ATTRIBUTES[attribute] if attribute in ATTRIBUTES else EXTRA_ATTRIBUTES[attribute]


def check_attributes(attributes: Sequence[str]) -> tuple[str, ...]:
    """``attributes`` as a tuple: distinct names from :data:`LONG_ATTRIBUTES`, at least one; else raise."""
    attributes = tuple(check_choices("attributes", check_nonempty("attributes", attributes), LONG_ATTRIBUTES))
    if len(set(attributes)) < len(attributes):
        raise ValueError(f"attributes={attributes} repeats an attribute; give distinct names of {LONG_ATTRIBUTES}")
    return attributes


def make_world(
    cfg: WorldConfig = WorldConfig(), seed: int = 0, attributes: Sequence[str] = tuple(ATTRIBUTES)
) -> KnowledgeWorld:
    """People with independent attributes, exact mention counts, and the biography corpus that realises them.

    ``attributes`` names the people's attributes (default: city, job, hobby; :data:`LONG_ATTRIBUTES` for long-form
    profiles); the random draws of the default world do not depend on what else the module defines."""
    check_type("cfg", cfg, WorldConfig, "a WorldConfig")
    check_seed("seed", seed)
    attributes = check_attributes(attributes)
    rng = np.random.default_rng(seed)
    n = sum(cfg.people_per_bin)
    words = made_up_words(cfg.n_first + cfg.n_last, rng)
    first, last = words[: cfg.n_first], words[cfg.n_first :]
    pairs = rng.choice(cfg.n_first * cfg.n_last, n, replace=False)
    names = [f"{first[p // cfg.n_last]} {last[p % cfg.n_last]}" for p in pairs]
    facts = {
        a: [values[i] for i in rng.integers(len(values), size=n)]
        for a, values in ((a, values_of(a)) for a in attributes)
    }
    mentions = np.repeat(cfg.mention_bins, cfg.people_per_bin)[rng.permutation(n)]
    if cfg.distinct_names:  # the same people, facts and mentions; the mentioned ones get two new words each
        own = iter(made_up_words(cfg.name_words - len(words), rng, taken=words))
        names = [name if m == 0 else f"{next(own)} {next(own)}" for name, m in zip(names, mentions)]
    split = np.full(n, "finetune", dtype=object)
    for m in cfg.mention_bins:
        split[np.flatnonzero(mentions == m)[: cfg.test_per_bin]] = "test"
    people = Dataset.from_dict(
        {"id": list(range(n)), "name": names, **facts, "mentions": mentions.tolist(), "split": split.tolist()}
    )
    texts, who = [], []
    for i in range(n):
        person_facts = {a: facts[a][i] for a in attributes}
        for _ in range(mentions[i]):
            texts.append(biography(names[i], person_facts, rng))
            who.append(i)
    return KnowledgeWorld(cfg, seed, people, Dataset.from_dict({"text": texts, "person": who}), attributes)


def vocabulary(world: KnowledgeWorld) -> list[str]:
    """Texts that together contain every word the world's corpus, questions and answers use."""
    check_type("world", world, KnowledgeWorld, "a KnowledgeWorld from make_world")
    extra = [a for a in world.attributes if a not in ATTRIBUTES]  # the default world's list stays as it was
    frames = [t.format(name="", value="") for a in (*ATTRIBUTES, *extra) for t in ALL_TEMPLATES[a]]
    frames += [q.format(name="") for q in QUESTIONS.values()] + ["A:", IDK + "."]
    frames += [PROFILE_PROMPT.format(name="")] if extra else []
    return frames + list(world.people["name"]) + [v for a in (*ATTRIBUTES, *extra) for v in values_of(a)]


def _rows(people: Dataset) -> list[dict]:
    """One row per (person, attribute), person-major."""
    check_type("people", people, Dataset, "a split of the world's people (world.split(...))")
    check_columns("people", check_nonempty("people", people).column_names, ("id", "name", "mentions", *ATTRIBUTES))
    return [
        {"person": p["id"], "name": p["name"], "mentions": p["mentions"], "attribute": a, "answer": p[a]}
        for p in people
        for a in ATTRIBUTES
    ]


def qa_examples(people: Dataset) -> Dataset:
    """Open QA: prompt ``"Q: Where does <name> live? A:"``, response ``" <name> lives in <city>."`` (likewise job,
    hobby). Answering in a sentence, like "The answer is ..." in the dissertation's TriviaQA targets, puts the name
    right before the attribute as in pretraining."""
    rows = _rows(people)
    for r in rows:
        r["prompt"] = QUESTIONS[r["attribute"]].format(name=r["name"]) + " A:"
        r["response"] = f" {CLOZES[r['attribute']].format(name=r['name'])} {r['answer']}."
    return Dataset.from_list(rows)


def mc_examples(people: Dataset, abstain: bool = False) -> Dataset:
    """Multiple choice: prompt ``"<name> lives in"``, response ``" <city>"``, options the attribute's values (A–D).

    ``abstain`` adds E = "I don't know". Columns add ``options`` and ``label`` (the answer's index).
    """
    check_type("abstain", abstain, bool, "True or False")
    rows = _rows(people)
    for r in rows:
        options = list(ATTRIBUTES[r["attribute"]]) + [IDK] * abstain
        r.update(
            options=options,
            label=options.index(r["answer"]),
            response=" " + r["answer"],
            prompt=CLOZES[r["attribute"]].format(name=r["name"]),
        )
    return Dataset.from_list(rows)


def cloze_prompts(data: Dataset) -> list[str]:
    """Declarative prefixes (``"<name> lives in"``) that the pretrained model completes: familiarity metric (b)."""
    check_type("data", data, Dataset, "examples from qa_examples or mc_examples")
    check_columns("data", check_nonempty("data", data).column_names, ("attribute", "name"))
    return [CLOZES[a].format(name=n) for a, n in zip(list(data["attribute"]), list(data["name"]))]


def normalize(text: str) -> str:
    """Lower-case, punctuation to spaces, single spaces: ``"I don ' t know."`` → ``"i don t know"``."""
    check_type("text", text, str, "a string")
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def grade(predictions: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """Each prediction as 0 = false, 1 = correct, 2 = "I don't know", after :func:`normalize`.

    A prediction is correct when its last word is the answer's last word: the attribute value, which ends every
    answer sentence (``" <name> lives in Oslo."``) or is the whole answer (``" Oslo"``). The name need not be
    copied: a never-mentioned person's name words were never trained, and a word-level model cannot copy them."""
    check_same_length(
        "predictions, answers", check_strings("predictions", predictions), check_strings("answers", answers)
    )
    idk = normalize(IDK)

    def last(text: str) -> str:
        words = normalize(text).split()
        return words[-1] if words else ""

    return np.array(
        [2 if normalize(p) == idk else 1 if last(p) and last(p) == last(a) else 0 for p, a in zip(predictions, answers)]
    )


def namesake_votes(people: Dataset, questions: Dataset, min_mentions: int) -> np.ndarray:
    """(N, K) for N questions (``name``, ``attribute``; K the options A-D): the share of each option among the values
    of the question's attribute over *namesakes*, the other people with at least ``min_mentions`` mentions who share a
    word of the question's name. A row is all zeros when no one does. A model that guesses unfamiliar people's
    attributes from name fragments would follow these votes."""
    check_type("people", people, Dataset, "the world's people (world.people)")
    check_columns("questions", check_nonempty("questions", questions).column_names, ("name", "attribute"))
    check_range("min_mentions", min_mentions, 0, integer=True)
    known = people.filter(lambda m: m >= min_mentions, input_columns="mentions")
    by_word: dict[str, list[int]] = {}
    for i, name in enumerate(known["name"]):
        for word in set(name.split()):
            by_word.setdefault(word, []).append(i)
    asked = sorted(set(questions["attribute"]))
    values = {a: [values_of(a).index(v) for v in known[a]] for a in asked}
    names = known["name"]
    votes = np.zeros((len(questions), max(len(values_of(a)) for a in asked)))
    for q, (name, attribute) in enumerate(zip(questions["name"], questions["attribute"])):
        mates = {i for w in set(name.split()) for i in by_word.get(w, []) if names[i] != name}
        for i in mates:
            votes[q, values[attribute][i]] += 1 / len(mates)
    return votes


# ------------------------------------------------------------------------------- long-form profiles and the checker

TRUE, FALSE, INVALID = 1, 0, -1  # verdicts of :func:`verify` on each clause


def clause(attribute: str, name: str, value: str) -> str:
    """The fact clause of a profile: the attribute's first template, e.g. ``"Abe Kor lives in Oslo."``."""
    check_choice("attribute", attribute, LONG_ATTRIBUTES)
    return ALL_TEMPLATES[attribute][0].format(name=name, value=value)


def profile_examples(people: Dataset, n_facts: Sequence[int], attributes: Sequence[str]) -> Dataset:
    """Long-form SFT examples: prompt ``"Write a profile of <name>."``, response the first ``n_facts[i]`` of the
    person's ``attributes`` as true clauses (:func:`clause`), in that order. One example per (person, n_facts) pair
    in person-major order; columns ``prompt``, ``response``, ``person``, ``mentions``, ``n_facts``."""
    check_type("people", people, Dataset, "a split of the world's people (world.split(...))")
    attributes = check_attributes(attributes)
    check_columns("people", check_nonempty("people", people).column_names, ("id", "name", "mentions", *attributes))
    n_facts = check_ranges("n_facts", check_nonempty("n_facts", n_facts), 0, len(attributes), integer=True)
    check_same_length("people, n_facts", people, n_facts)
    rows = []
    for p, k in zip(people, n_facts):
        rows.append(
            {
                "prompt": PROFILE_PROMPT.format(name=p["name"]),
                "person": p["id"],
                "mentions": p["mentions"],
                "n_facts": int(k),
                "response": " " + " ".join(clause(a, p["name"], p[a]) for a in attributes[:k]),
            }
        )
    return Dataset.from_list(rows)


@dataclasses.dataclass(frozen=True)
class Fact:
    """One clause of a response and what it states: ``attribute`` and ``value`` are None when no template of the
    world parses it (or the clause is cut off before its full stop)."""

    clause: str
    attribute: str | None
    value: str | None


def _pattern(template: str) -> re.Pattern:
    """A template (without its full stop) as a regex: the name any words, the value one word."""
    body = re.escape(template.removesuffix("."))
    return re.compile(
        body.replace(re.escape("{name}"), r"(?P<name>.+?)").replace(re.escape("{value}"), r"(?P<value>\w+)") + r"$"
    )


PATTERNS = [(a, _pattern(t)) for a in LONG_ATTRIBUTES for t in ALL_TEMPLATES[a]]


def decompose(text: str) -> list[Fact]:
    """The fact decomposer: split a response at full stops and parse each clause with every template of
    :data:`ALL_TEMPLATES`. A clause parses when a template matches it whole; a match whose value belongs to the
    template's attribute wins over one whose value does not (``"Abe Kor lives in chess"`` still states a city, a
    false one). Spaces before punctuation (as a word-level tokenizer decodes) are removed first; a last clause
    without a full stop is kept, unparsed."""
    check_type("text", text, str, "a response (a string)")
    text = re.sub(r"\s+([.,])", r"\1", " ".join(text.split()))
    pieces = text.split(".")
    facts = []
    for i, piece in enumerate(pieces):
        piece = piece.strip()
        if not piece:
            continue
        matches = [(a, m["value"]) for a, pattern in PATTERNS if (m := pattern.match(piece))]
        if i == len(pieces) - 1:  # no full stop after it: cut off
            matches = []
        valid = [(a, v) for a, v in matches if v in values_of(a)]
        attribute, value = (valid or matches or [(None, None)])[0]
        facts.append(Fact(piece + ("." if i < len(pieces) - 1 else ""), attribute, value))
    return facts


def verify(facts: Sequence[Fact], person: dict) -> np.ndarray:
    """The verifier: each fact as :data:`TRUE` (it states the person's value), :data:`FALSE` (another value) or
    :data:`INVALID` (unparsed, an attribute the person lacks, or an attribute an earlier clause already stated)."""
    check_type("facts", facts, (list, tuple), "a list of Facts from decompose (empty for an empty response)")
    check_type("person", person, dict, "a row of world.people (a dict)")
    seen, out = set(), []
    for f in facts:
        check_type("facts", f, Fact, "a list of Facts from decompose")
        if f.attribute is None or f.attribute not in person or f.attribute in seen:
            out.append(INVALID)
        else:
            seen.add(f.attribute)
            out.append(TRUE if person[f.attribute] == f.value else FALSE)
    return np.array(out, dtype=int)
