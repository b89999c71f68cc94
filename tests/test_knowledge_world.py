import re
from collections import Counter

import numpy as np
import pytest

from steerlib.lm.tokenizer import word_tokenizer
from steerlib.measures.familiarity import mention_counts
from steerlib.worlds.knowledge import (
    ATTRIBUTES,
    IDK,
    TEMPLATES,
    WorldConfig,
    cloze_prompts,
    grade,
    make_world,
    mc_examples,
    namesake_votes,
    normalize,
    qa_examples,
    vocabulary,
)

CFG = WorldConfig(mention_bins=(0, 1, 5, 20), people_per_bin=(20, 10, 10, 10), test_per_bin=4)


@pytest.fixture(scope="module")
def world():
    return make_world(CFG, seed=3)


def test_mention_counts_are_exact(world):
    names = world.people["name"]
    full_name = re.compile(r"[A-Z][a-z]+ [A-Z][a-z]+")
    docs_naming = Counter(n for text in world.corpus["text"] for n in set(full_name.findall(text)))
    assert [docs_naming.get(n, 0) for n in names] == list(world.people["mentions"])
    assert mention_counts(world.corpus["person"], len(names)).tolist() == list(world.people["mentions"])
    assert Counter(world.people["mentions"]) == dict(zip(CFG.mention_bins, CFG.people_per_bin))
    assert len(set(names)) == len(names)


def test_each_bin_holds_out_the_same_number_of_test_people(world):
    for m, n in zip(CFG.mention_bins, CFG.people_per_bin):
        splits = Counter(s for s, k in zip(world.people["split"], world.people["mentions"]) if k == m)
        assert splits == {"finetune": n - CFG.test_per_bin, "test": CFG.test_per_bin}


def test_biographies_name_the_person_in_every_sentence(world):
    people = {p["id"]: p for p in world.people}
    for doc in world.corpus.select(range(50)):
        p = people[doc["person"]]
        sentences = [s for s in doc["text"].split(".") if s.strip()]
        assert len(sentences) == 3 and all(p["name"] in s for s in sentences)
        assert all(p[a] in doc["text"] for a in ATTRIBUTES)
    used = {t for t in (tt.format(name="X", value="Y") for ts in TEMPLATES.values() for tt in ts)}
    seen = {
        re.sub(r"[A-Z][a-z]+ [A-Z][a-z]+", "X", s.strip() + ".")
        for d in world.corpus["text"]
        for s in d.split(".")
        if s.strip()
    }
    seen = {re.sub(r"\b(" + "|".join(v for vs in ATTRIBUTES.values() for v in vs) + r")\b", "Y", s) for s in seen}
    assert seen == used  # every template is used, and nothing else


def test_attributes_do_not_depend_on_names():
    big = make_world(WorldConfig(mention_bins=(0, 1), people_per_bin=(300, 300)), seed=0)
    words = [w for n in big.people["name"] for w in n.split()]
    assert max(words.count(w) for w in set(words)) <= 20  # each name word names only a few people (600 / 150 = 4)
    initial = np.array([n[0] for n in big.people["name"]])
    city = np.array(big.people["city"])
    # people whose names share an initial live in as many different cities as random groups of the same size
    by_name = np.mean([len(set(city[initial == f])) for f in set(initial)])
    rng = np.random.default_rng(0)
    shuffled = np.mean([len(set(rng.permutation(city)[initial == f])) for f in set(initial)])
    assert abs(by_name - shuffled) < 0.5
    assert make_world(CFG, seed=3).people["city"] == make_world(CFG, seed=3).people["city"]


def test_question_formats(world):
    ft = world.split("finetune")
    qa = qa_examples(ft)
    assert len(qa) == 3 * len(ft)
    row = qa[0]
    assert row["prompt"] == f"Q: Where does {ft[0]['name']} live? A:"
    assert row["response"] == f" {ft[0]['name']} lives in {ft[0]['city']}." and row["answer"] == ft[0]["city"]
    mc, abstain = mc_examples(ft), mc_examples(ft, abstain=True)
    for a, b in zip(mc.select(range(12)), abstain.select(range(12))):
        assert a["options"] == list(ATTRIBUTES[a["attribute"]])  # A-D: the values in a fixed order
        assert a["options"][a["label"]] == a["answer"] == b["options"][b["label"]]
        assert b["options"] == a["options"] + [IDK] and a["response"] == " " + a["answer"]
    assert cloze_prompts(mc)[:3] == [
        f"{ft[0]['name']} lives in",
        f"{ft[0]['name']} works as a",
        f"{ft[0]['name']} enjoys",
    ]
    assert all(p.endswith(c) for p, c in zip(mc["prompt"], cloze_prompts(mc)))


def test_word_vocabulary_covers_the_world(world):
    tok = word_tokenizer(vocabulary(world))
    texts = list(world.corpus["text"]) + list(mc_examples(world.people, abstain=True)["prompt"]) + [IDK]
    assert all(tok.unk_token_id not in ids for ids in tok(texts)["input_ids"])


def test_distinct_names_change_only_the_names_of_mentioned_people():
    import dataclasses

    pooled, distinct = make_world(CFG, seed=3), make_world(dataclasses.replace(CFG, distinct_names=True), seed=3)
    a, b = pooled.people.to_pandas(), distinct.people.to_pandas()
    assert a.drop(columns="name").equals(b.drop(columns="name"))  # same people, facts, mentions and splits
    never = a["mentions"] == 0
    assert (a["name"][never] == b["name"][never]).all() and not (a["name"][~never] == b["name"][~never]).any()
    words = b["name"].str.split()
    counts = Counter(w for ws in words for w in ws)
    assert all(counts[w] == 1 for ws in words[~never] for w in ws)  # no namesakes for anyone mentioned
    assert not set(w for ws in words[~never] for w in ws) & set(w for ws in words[never] for w in ws)
    with pytest.raises(TypeError, match="distinct_names"):
        WorldConfig(distinct_names="yes")


def test_namesake_votes_by_hand():
    """Votes over the other well-mentioned people sharing a name word; the person themself and rare namesakes not."""
    from datasets import Dataset

    people = Dataset.from_dict(
        {
            "name": ["Ba Ko", "Ba Lu", "Di Ko", "Fe Ne", "Ba Mo"],
            "city": ["Oslo", "Lima", "Cairo", "Oslo", "Dublin"],
            "job": ["doctor"] * 5,
            "hobby": ["chess"] * 5,
            "mentions": [10, 10, 30, 30, 1],
        }
    )
    questions = Dataset.from_dict({"name": ["Ba Ko", "Fe Ne", "Zo Ko"], "attribute": ["city", "city", "job"]})
    votes = namesake_votes(people, questions, min_mentions=10)
    np.testing.assert_allclose(votes, [[0, 0.5, 0.5, 0], [0, 0, 0, 0], [1, 0, 0, 0]])


def test_grading():
    assert normalize("I don ' t know .") == normalize(IDK) == "i don t know"
    assert grade(["Oslo", " oslo.", "Lima", "I don't know", ""], ["Oslo"] * 5).tolist() == [1, 1, 0, 2, 0]
    answer = " Kesan Dobul lives in Oslo."  # a sentence: the value decides, the copied name does not
    assert grade([answer, " Kesan lives in Oslo.", " Kesan Dobul lives in Lima."], [answer] * 3).tolist() == [1, 1, 0]


def test_bad_world_config():
    with pytest.raises(ValueError, match="names"):
        WorldConfig(n_first=5, n_last=5)
    with pytest.raises(ValueError, match="name words"):
        WorldConfig(n_first=9000, n_last=9000)
    with pytest.raises(ValueError, match="people_per_bin"):
        WorldConfig(mention_bins=(0, 1), people_per_bin=(10, 10, 10))
    with pytest.raises(ValueError, match="test_per_bin"):
        WorldConfig(test_per_bin=100)
