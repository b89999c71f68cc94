import dataclasses
import hashlib
import json

import matplotlib
import numpy as np
import pytest
import torch

from steerlib.book import execute
from steerlib.chapters.hallucination import conservative_rewards as cr
from steerlib.chapters.hallucination.conservative_rewards import analysis, experiment, figures
from steerlib.chapters.hallucination.conservative_rewards.experiment import (
    FactLabels,
    OwnReward,
    PolicyEval,
    Results,
    RewardModelEval,
)
from steerlib.lm.models import build_model, tiny_config
from steerlib.lm.reward import FactHead, encode_facts, fact_probs
from steerlib.lm.tokenizer import IGNORE, collate, word_tokenizer
from steerlib.worlds.knowledge import (
    FALSE,
    INVALID,
    LONG_ATTRIBUTES,
    TRUE,
    WorldConfig,
    decompose,
    make_world,
    profile_examples,
    verify,
    vocabulary,
)

matplotlib.use("Agg")
SMALL = WorldConfig(mention_bins=(0, 2, 6), people_per_bin=(12, 8, 8), test_per_bin=3, n_first=12, n_last=12)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj).encode()).hexdigest()[:16]


def test_the_default_world_is_unchanged():
    """The unfamiliar-examples chapter's world (and so its cache keys and pretrained models) is what it was before
    long-form profiles: digests recorded on main before the change."""
    world = make_world(WorldConfig(), 0)
    assert world.people.column_names == ["id", "name", "city", "job", "hobby", "mentions", "split"]
    assert _digest(world.people.to_dict()) == "3c3fa527a35aeac1"
    assert _digest(world.corpus.to_dict()) == "6481f87212d57a3d"
    assert _digest(vocabulary(world)) == "e30588a661b8407a"


def test_the_long_world_adds_attributes_after_the_default_draws():
    short, long = make_world(SMALL, 4), make_world(SMALL, 4, LONG_ATTRIBUTES)
    assert long.attributes == LONG_ATTRIBUTES and set(LONG_ATTRIBUTES) <= set(long.people.column_names)
    for column in ("name", "city", "job", "hobby"):  # the same draws come first
        assert long.people[column] == short.people[column]
    people = {p["id"]: p for p in long.people}
    for doc in long.corpus:
        sentences = [s for s in doc["text"].split(".") if s.strip()]
        person = people[doc["person"]]
        assert len(sentences) == len(LONG_ATTRIBUTES) and all(person["name"] in s for s in sentences)
        assert [verify(decompose(doc["text"]), person).tolist()] == [[TRUE] * len(LONG_ATTRIBUTES)]
    tok = word_tokenizer(vocabulary(long))
    assert tok.unk_token_id not in tok(" ".join(long.corpus["text"]) + " Write a profile of")["input_ids"]
    with pytest.raises(ValueError, match="attributes"):
        make_world(SMALL, 0, ("city", "age"))
    with pytest.raises(ValueError, match="attributes"):
        make_world(SMALL, 0, ("city", "city"))


def test_profile_examples_hold_the_first_facts_in_order():
    people = make_world(SMALL, 1, LONG_ATTRIBUTES).people.select([0, 1])
    ex = profile_examples(people, [3, 1], LONG_ATTRIBUTES)
    p = people[0]
    assert ex[0]["prompt"] == f"Write a profile of {p['name']}."
    assert ex[0]["response"] == (
        f" {p['name']} lives in {p['city']}. {p['name']} works as a {p['job']}. {p['name']} enjoys {p['hobby']}."
    )
    assert ex[1]["n_facts"] == 1 and ex[1]["response"].count(".") == 1
    with pytest.raises(ValueError, match="n_facts"):
        profile_examples(people, [7, 1], LONG_ATTRIBUTES)


def test_the_checker_by_hand():
    person = {"name": "Ab Cd", "city": "Oslo", "job": "pilot", "pet": "cat"}
    text = (
        "Ab Cd lives in Oslo . In free time , Ab Cd likes chess . Ab Cd works as a baker . Ab Cd lives in Lima ."
        " Ab Cd lives in chess . Ab Cd is tall . Ab Cd owns a cat . Ab Cd plays the"
    )
    facts = decompose(text)
    assert [(f.attribute, f.value) for f in facts] == [
        ("city", "Oslo"),
        ("hobby", "chess"),
        ("job", "baker"),
        ("city", "Lima"),
        ("city", "chess"),
        (None, None),
        ("pet", "cat"),
        (None, None),
    ]
    assert facts[1].clause == "In free time, Ab Cd likes chess."
    # true; an attribute the person lacks; false; a repeated attribute (twice); unparsed; true; cut off
    assert verify(facts, person).tolist() == [TRUE, INVALID, FALSE, INVALID, INVALID, INVALID, TRUE, INVALID]
    assert decompose("") == [] and verify([], person).tolist() == []
    assert verify(decompose("Zz Yy lives in Oslo."), person).tolist() == [TRUE]  # the name is not checked


def test_reward_arithmetic():
    verdicts = np.array([TRUE, TRUE, FALSE, INVALID])
    assert experiment.true_reward(verdicts) == 2 + 2 - 3 - 3
    assert experiment.count_reward(verdicts) == 2
    assert experiment.true_reward(np.array([], dtype=int)) == 0
    assert experiment.model_reward(np.array([1.0, 0.0, 0.5]), 1) == pytest.approx(2 - 3 + (1 - 1.5) - 3)
    truth = np.array([1.0, 1.0, 0.0])  # a reward model that knows the truth gives the true reward
    assert experiment.model_reward(truth, 1) == experiment.true_reward(verdicts)
    person = {"name": "Ab Cd", "city": "Oslo", "job": "pilot"}
    texts = ["Ab Cd lives in Oslo. Ab Cd works as a baker.", "Ab Cd lives in Oslo. Ab Cd works as a pilot.", ""]
    assert experiment.checker_reward("oracle", texts, [person] * 3).tolist() == [-1, 4, 0]
    assert experiment.checker_reward("count", texts, [person] * 3).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="name"):
        experiment.checker_reward("standard", texts, [person] * 3)


def test_reward_model_data_differ_only_in_the_generator():
    people = list(make_world(SMALL, 2, LONG_ATTRIBUTES).people.select(range(10)))
    rng = np.random.default_rng(0)
    standard = experiment.reward_model_data(
        people, lambda prompts: experiment.standard_responses(people, LONG_ATTRIBUTES, 6, 0.8, rng)
    )
    truthful = profile_examples(
        make_world(SMALL, 2, LONG_ATTRIBUTES).people.select(range(10)), [6] * 10, LONG_ATTRIBUTES
    )["response"]
    own = experiment.reward_model_data(people, lambda prompts: truthful)
    assert standard.prompts == own.prompts and len(standard.responses) == len(own.responses) == 10
    assert all(ls == [1] * 6 for ls in own.labels)  # the labels are the checker's
    for texts, clauses, labels, p in zip(standard.responses, standard.clauses, standard.labels, people):
        assert labels == [int(v) for v in verify(decompose(texts), p)] and len(clauses) == len(labels)
    with pytest.raises(ValueError, match="people, generated responses"):
        experiment.reward_model_data(people, lambda prompts: truthful[:3])


def test_the_standard_generator_knows_everyone_alike():
    world = make_world(WorldConfig(mention_bins=(0, 5), people_per_bin=(300, 300), test_per_bin=1), 0, LONG_ATTRIBUTES)
    people = list(world.people)
    rng = np.random.default_rng(1)
    for accuracy in (0.0, 1.0):
        data = experiment.reward_model_data(
            people,
            lambda prompts, accuracy=accuracy: experiment.standard_responses(people, LONG_ATTRIBUTES, 4, accuracy, rng),
        )
        assert {y for ls in data.labels for y in ls} == {int(accuracy)}
        assert {len(ls) for ls in data.labels} == {1, 2, 3, 4}
    data = experiment.reward_model_data(
        people, lambda prompts: experiment.standard_responses(people, LONG_ATTRIBUTES, 6, 0.8, rng)
    )
    by_bin = [np.mean([y for p, ls in zip(people, data.labels) for y in ls if p["mentions"] == m]) for m in (0, 5)]
    assert by_bin == pytest.approx([0.8, 0.8], abs=0.04)


def test_split_people_halves_every_bin():
    mentions = np.repeat([0, 1, 10], [9, 4, 6])
    sft = experiment.split_people(mentions, np.random.default_rng(0))
    assert [int(sft[mentions == m].sum()) for m in (0, 1, 10)] == [4, 2, 3]


def test_the_fact_head_reads_the_last_token_of_each_clause():
    tok = word_tokenizer(["Write a profile of Ab Cd .", "Ab Cd lives in Oslo Lima .", "works as a pilot"])
    ids, labels = encode_facts(
        tok, ["Write a profile of Ab Cd."], [["Ab Cd lives in Oslo.", "Ab Cd works as a pilot."]], [[1, 0]]
    )
    words = tok.convert_ids_to_tokens(ids[0])
    assert [w for w, y in zip(words, labels[0]) if y != IGNORE] == [".", "."]
    assert [y for y in labels[0] if y != IGNORE] == [1, 0] and words.count(".") == 3
    model = FactHead(build_model(tiny_config(tok, "llama", 16, 1, 2, 64), 0))
    batch = collate(ids, labels, 0)
    out = model(**batch)
    z = out.logits[0][torch.tensor(labels[0]) != IGNORE]
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z, torch.tensor([1.0, 0.0]))
    assert out.loss.item() == pytest.approx(expected.item())
    probs = fact_probs(
        model,
        tok,
        ["Write a profile of Ab Cd.", "Write a profile of Ab Cd."],
        [["Ab Cd lives in Oslo.", "Ab Cd works as a pilot."], []],
    )
    assert probs[0] == pytest.approx(torch.sigmoid(z).detach().numpy(), abs=1e-5) and len(probs[1]) == 0


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("max_facts", 7, "max_facts"),
        ("attributes", 7, "attributes"),
        ("rm_samples", -1, "rm_samples"),
        ("eval_samples", 0, "eval_samples"),
        ("rewards", ("oracle", "ppo"), "rewards"),
        ("rewards", (), "rewards"),
        ("generator_accuracy", 1.5, "generator_accuracy"),
        ("world", WorldConfig(mention_bins=(0, 1), people_per_bin=(4, 4), test_per_bin=3), "people_per_bin"),
    ],
)
def test_bad_settings_name_the_setting(field, value, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(cr.PROFILES["cpu"], **{field: value})


# ------------------------------------------------------------------------------------------------- analysis


def _toy(n_true: dict[str, list[int]], n_false: dict[str, list[int]], mentions: list[int]) -> Results:
    """Hand-made results: one response per person, the numbers of true and false facts given per policy."""
    n = len(mentions)
    policies = {
        k: PolicyEval(np.array(n_true[k]), np.array(n_false[k]), np.zeros(n, dtype=int), [""] * n) for k in n_true
    }
    sft_reward = 2 * np.array(n_true["sft"]) - 3 * np.array(n_false["sft"])
    rms = {
        "standard": RewardModelEval(sft_reward + 3.0 * (np.array(mentions) == 0), np.tile([0.9, 0.1], n)),
        "conservative": RewardModelEval(sft_reward - 1.0, np.tile([0.4, 0.6], n)),
    }
    labels = FactLabels(np.array(mentions), np.ones(n, dtype=int))
    rising = [{"reward": float(i), "kl": 0.1 * i + 0.01 * (i % 3)} for i in range(40)]
    return Results(
        replicate=0,
        bins=tuple(sorted(set(mentions))),
        max_facts=4,
        pretrain_loss=[1.0],
        person=np.arange(n),
        mentions=np.array(mentions),
        prompts=[f"p{i}" for i in range(n)],
        policies=policies,
        reward_models=rms,
        balanced_mentions=np.repeat(mentions, 2),
        balanced_truth=np.tile([1, 0], n),
        rm_data={"standard": labels, "conservative": labels},
        rl_history={"oracle": rising},
        own_reward={"oracle": OwnReward(np.arange(n), sft_reward + 1.0 + 0.1 * np.arange(n), sft_reward)},
        seconds={},
    )


def test_statistics_by_hand():
    mentions = [0, 0, 9, 9]
    r = _toy(
        {
            "sft": [0, 1, 3, 3],
            "standard": [1, 1, 3, 3],
            "conservative": [0, 0, 3, 4],
            "oracle": [0] * 4,
            "count": [0] * 4,
        },
        {
            "sft": [3, 2, 0, 1],
            "standard": [2, 2, 1, 0],
            "conservative": [1, 0, 0, 0],
            "oracle": [1, 0, 0, 0],
            "count": [2, 2, 2, 2],
        },
        mentions,
    )
    pp = analysis.per_person(r)
    assert analysis.bin_means(pp, ("sft", "true"), r.bins).tolist() == [0.5, 3.0]
    assert analysis.fraction_true(pp, "sft") == pytest.approx(7 / 13)
    s = analysis.statistics(r)
    assert s["C6"] == pytest.approx((2 * 3 - 3 * 0.5) - (2 * 0.5 - 3 * 2.5))
    assert s["C7"] == pytest.approx(3.0) and s["C7b"] == pytest.approx(-1.0)
    assert s["C8"] == 2.5 and s["C8b"] == 2.0 and s["C8c"] == 0.5  # lengths: 3 at 0, 3.5 at 9 mentions
    assert s["C9"] == pytest.approx(-0.5) and s["C9b"] == pytest.approx(-0.5)  # bins: true -0.5, +0.5; false -2, -0.5
    assert s["C10"] == pytest.approx(0.25) and s["C10b"] == pytest.approx(1 / 5)
    assert s["C11"] == pytest.approx(min(7 / 8 - 8 / 13, 8 / 13 - 7 / 13))
    assert s["C12"] == pytest.approx(3.5 - 0.5) and s["C13"] == pytest.approx(1 / 8)
    assert s["C14"] == pytest.approx(3.0 - 0.5)  # at 0 mentions: standard RL states 3 facts, conservative RL 0.5
    assert s["gate/rm-standard"] == 1.0 and s["gate/rm-conservative"] == 0.0
    assert s["gate/lengths"] == pytest.approx(np.std([3, 3, 3, 4]))
    assert s["gate/generator"] == 0.0  # every labelled fact is true, in every bin
    assert s["gate/rl-oracle"] == pytest.approx(
        analysis.rl_moved(r.rl_history["oracle"], r.own_reward["oracle"].rl, r.own_reward["oracle"].sft, np.arange(4))
    )


def test_balanced_auroc_ranks_without_a_threshold():
    """Hand-worked: at 9 mentions the true clauses get 0.9 and 0.6, the false ones 0.7 and 0.55, so 3 of the 4
    (true, false) pairs are ordered right (AUROC 0.75) while every clause reads "true" at p = 0.5 (accuracy 0.5); at 0
    mentions every probability ties (0.5 both)."""
    r = _toy({k: [1] * 4 for k in ("sft", "standard")}, {k: [0] * 4 for k in ("sft", "standard")}, [0, 0, 9, 9])
    r.reward_models["standard"].balanced_prob = np.array([0.6] * 4 + [0.9, 0.7, 0.6, 0.55])
    assert analysis.balanced_auroc(r, "standard").tolist() == [0.5, 0.75]
    assert analysis.bin_means(analysis.per_person(r), ("rm-standard", "balanced"), r.bins).tolist() == [0.5, 0.5]
    assert analysis.statistics(r)["gate/rm-standard"] == 0.75


def test_rl_moved_separates_a_moving_run_from_noise():
    rng = np.random.default_rng(0)
    person = np.repeat(np.arange(50), 4)
    flat = [{"reward": float(rng.normal()), "kl": float(rng.normal())} for _ in range(100)]
    rising = [
        {"reward": 0.05 * i + float(rng.normal()), "kl": 0.02 * i + 0.1 * float(rng.normal())} for i in range(100)
    ]
    sft, same, better = rng.normal(size=200), rng.normal(size=200), rng.normal(size=200) + 1.0
    assert (
        analysis.rl_moved(flat, same, sft, person) < analysis.Z_MOVED < analysis.rl_moved(rising, better, sft, person)
    )
    assert analysis.rl_moved(rising, sft, better, person) < analysis.Z_MOVED  # KL up, reward down: not a gain
    assert np.isnan(analysis.rl_moved(rising[:5], better, sft, person))


def _first_vs_last_quarter(history: list[dict[str, float]]) -> float:
    """The statistic rl_moved replaced: the reward change from the first to the last quarter (and the final KL)."""
    q = len(history) // 4
    r, kl = np.array([h["reward"] for h in history]), np.array([h["kl"] for h in history])[-q:]
    z_r = (r[-q:].mean() - r[:q].mean()) / np.sqrt(r[:q].var(ddof=1) / q + r[-q:].var(ddof=1) / q)
    return float(min(z_r, kl.mean() / (kl.std(ddof=1) / np.sqrt(q))))


def test_rl_moved_sees_a_run_that_moved_early():
    """A run whose training reward jumps from 0 (SFT, step 0) to about 5 after its first update and stays there
    (per-step noise 1, KL about 2), and whose held-out responses gain 1 reward per person over SFT's, moved; the
    first-vs-last-quarter comparison of its log reads it as still. A run that never moves (noise around its start,
    KL noise around 0, held-out rewards no better than SFT's) fails both."""
    noise = np.resize([0.8, -1.1, 0.3, 1.2, -0.6, -0.9, 0.5, -0.2], 40)
    early = [
        {"reward": 0.0 if i == 0 else 5.0 + noise[i], "kl": 0.0 if i == 0 else 2.0 + 0.3 * noise[i - 1]}
        for i in range(40)
    ]
    still = [{"reward": float(noise[i]), "kl": 0.01 * float(noise[i])} for i in range(40)]
    person = np.repeat(np.arange(20), 2)  # 20 held-out people, 2 responses each
    sft = np.resize([1.0, -2.0, 3.0, 0.0, 2.0], 40)
    assert _first_vs_last_quarter(early) < analysis.Z_MOVED < analysis.rl_moved(early, sft + 1 + noise, sft, person)
    assert analysis.rl_moved(still, sft + noise, sft, person) < analysis.Z_MOVED
    assert _first_vs_last_quarter(still) < analysis.Z_MOVED


def test_claims_are_explained_and_judged():
    mentions = [0, 0, 9, 9]
    counts = {k: [1, 1, 1, 1] for k in experiment.POLICIES}
    claims = analysis.claims(_toy(counts, counts, mentions))
    ids = [c.id for c in claims]
    assert {"C6", "C7", "C7b", "C8", "C8b", "C8c", "C9", "C9b", "C10", "C10b", "C11", "C12", "C13", "C14"} <= set(ids)
    assert {"gate/sft", "gate/lengths", "gate/generator", "gate/rl-oracle"} <= set(ids)
    assert len(ids) == len(set(ids)) and all(c.why and c.uncertainty for c in claims)
    assert not [c for c in claims if c.id == "C8"][0].holds  # no familiarity effect: C8 cannot hold
    lengths = [c for c in claims if c.id == "gate/lengths"][0]
    assert lengths.threshold == pytest.approx(np.sqrt((4**2 - 1) / 12) / 2, abs=1e-3) and "1.12" in lengths.why
    assert "9 mentions" in [c for c in claims if c.id == "gate/sft"][0].statement


def test_claims_are_means_over_replicates_with_a_prediction_interval():
    """A claim's value is the mean of its statistic over the replicates, with a prediction interval for a rerun's
    mean; a statistic undefined at one replicate takes the others' mean and names that replicate."""
    mentions = [0, 0, 9, 9]
    reps = []
    for k in range(3):  # SFT states k + 1 more true facts about familiar people than about unfamiliar ones
        counts = {p: [1, 1, 1 + k, 1 + k] for p in experiment.POLICIES}
        false = {p: [0] * 4 if p == "count" and k == 0 else [1] * 4 for p in experiment.POLICIES}
        rep = _toy(counts, false, mentions)
        rep.replicate = k
        reps.append(rep)
    reps[0].others = reps[1:]
    per = [analysis.statistics(o) for o in reps]
    assert [p["C8"] for p in per] == [0.0, 1.0, 2.0]
    assert np.isnan(per[0]["C13"]) and per[1]["C13"] == 1.0  # replicate 0's count run states no false fact
    claims = {c.id: c for c in cr.claims(reps[0])}
    assert claims["C8"].value == pytest.approx(1.0) and claims["C8"].interval[0] < 1.0 < claims["C8"].interval[1]
    assert "3 new independent replicates" in claims["C8"].uncertainty
    assert claims["C13"].undefined_at == (0,) and claims["C13"].value == 1.0 and claims["C13"].fragile
    assert set(cr.extra(reps[0])["replicate_values"]) == {0, 1, 2}


# ----------------------------------------------------------------------------------------------- the chapter


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The chapter at smoke on the cpu, with the session's cache (shared with the notebook tests)."""
    return execute("conservative-rewards", "smoke", device="cpu", out_dir=tmp_path_factory.mktemp("conservative"))


def test_smoke_run(smoke, tmp_path):
    """Every policy, reward model and claim is there with the schema (no verdict is asserted: at smoke it would test
    the machine's floating-point order), the figures draw, and a run without the cache samples the same texts."""
    r = smoke.results
    n = len(r.prompts)
    assert set(r.policies) == set(experiment.POLICIES) and set(r.reward_models) == {"standard", "conservative"}
    assert all(len(p.texts) == n == len(p.n_true) for p in r.policies.values())
    assert all(len(m.predicted) == n for m in r.reward_models.values())
    assert all(len(h) == cr.PROFILES["smoke"].rl.steps for h in r.rl_history.values())
    claims = smoke.claims
    assert {c.id for c in claims} == {s.id for s in cr.SPECS if "{" not in s.id} | {
        f"gate/rl-{name}" for name in experiment.REWARDS
    }
    assert all(c.why and c.uncertainty and c.interval is None for c in claims)  # one replicate: no interval
    assert set(smoke.table().index) == {c.id for c in claims} and (smoke.run.out_dir / "metrics.json").exists()
    for plot in (
        figures.plot_method,
        figures.plot_rm_bias,
        figures.plot_fraction_true,
        figures.plot_facts,
        figures.plot_training,
    ):
        assert plot(r).axes
    assert len(cr.examples(r)) == 3 * len(experiment.POLICIES)
    again = execute("conservative-rewards", "smoke", device="cpu", out_dir=tmp_path, cache=False, record=False)
    assert [p.texts for p in again.results.policies.values()] == [p.texts for p in r.policies.values()]


@pytest.mark.slow
def test_cpu_verdicts(tmp_path):
    """The cpu profile's firm verdicts at seed 0 (three replicates), as the notebook's prose describes them: every
    prerequisite holds, so the evidence is judged."""
    claims = {c.id: c for c in execute("conservative-rewards", "cpu", device="cpu", out_dir=tmp_path).claims}
    for cid, verdict in FIRM_CPU_VERDICTS.items():
        assert claims[cid].verdict == verdict, (cid, claims[cid].value, claims[cid].interval)
    # a failed reward-model prerequisite leaves every evidence claim unjudged
    if not claims["gate/rm-conservative"].verdict.startswith("holds"):
        assert all(c.verdict == "not judged" for c in claims.values() if c.kind == "evidence")


# Seed 0, three replicates. Only firm verdicts are pinned (a fragile one can flip with the machine's floating-point
# order). The reward-model gates first asked for accuracy at p = 0.5 and failed (0.719 and 0.634); since they ask for
# the AUROC (2026-12-07) they read 0.879 [0.76, 1.00] and 0.897 [0.79, 1.01], and the evidence is judged. Fragile
# then: C7b, C8c, C9, C11 and C13.
FIRM_CPU_VERDICTS = {
    "gate/lengths": "holds",
    "gate/sft": "holds",
    "gate/rm-standard": "holds",
    "gate/rm-conservative": "holds",
    "gate/generator": "holds",
    "gate/rl-standard": "holds",
    "gate/rl-conservative": "holds",
    "gate/rl-oracle": "holds",
    "gate/rl-count": "holds",
    "C6": "holds",
    "C7": "holds",
    "C8": "holds",
    "C8b": "holds",
    "C9b": "holds",
    "C10": "does not hold",
    "C10b": "holds",
    "C12": "does not hold",
    "C14": "holds",
}
