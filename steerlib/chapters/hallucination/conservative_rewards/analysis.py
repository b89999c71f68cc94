"""Per-person and per-bin statistics, the chapter's claims (C6-C13 and their prerequisites) and the numbers kept in
metrics.json.

A response's *facts* are its clauses; *true* facts state the person's value, *false* facts another value or do not
parse (both cost -3 in the true reward), and its *length* is its number of clauses. Every statistic is computed from
per-person means over the held-out people of one replicate (:func:`statistics`); a claim's value is its mean over
the replicates, with a prediction interval for the mean of a rerun
(:func:`~steerlib.measures.statistics.over_replicates`). Bins are in ``Results.bins`` order: ``lo`` is the least
mentioned bin (never mentioned), ``hi`` the most mentioned.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from steerlib.chapters.hallucination.conservative_rewards.experiment import (
    FACT_REWARD,
    POLICIES,
    REWARD_MODELS,
    Results,
)
from steerlib.core.claims import Claim, Spec, make_claims
from steerlib.measures.statistics import over_replicates
from steerlib.worlds.knowledge import FALSE, TRUE

Z_MOVED = 2.0  # an RL run moved the policy: its reward gain over SFT and its KL at least this many standard errors


@dataclasses.dataclass
class PerPerson:
    """Per held-out person (first-appearance order): mention count and the mean of each quantity over the person's
    responses, keyed ``(policy, quantity)`` with quantities true, false, length, length2 (squared length), reward;
    ``("rm-<name>", "bias")`` = a reward model's predicted minus true reward of the SFT responses, and
    ``("rm-<name>", "balanced")`` its accuracy on the balanced per-fact test."""

    mentions: np.ndarray
    values: dict[tuple[str, str], np.ndarray]


def per_response(r: Results) -> dict[tuple[str, str], np.ndarray]:
    """Per held-out response: true and false facts, length, squared length and true reward of every policy, and
    each reward model's bias on the SFT responses."""
    out = {}
    for name, p in r.policies.items():
        false = p.n_false + p.n_invalid
        out[name, "true"], out[name, "false"] = p.n_true.astype(float), false.astype(float)
        out[name, "length"] = (p.n_true + false).astype(float)
        out[name, "length2"] = out[name, "length"] ** 2
        out[name, "reward"] = FACT_REWARD[TRUE] * p.n_true + FACT_REWARD[FALSE] * false
    for name, rm in r.reward_models.items():
        out[f"rm-{name}", "bias"] = rm.predicted - out["sft", "reward"]
    return out


def per_person(r: Results) -> PerPerson:
    """:class:`PerPerson` from :func:`per_response` and the balanced per-fact test (2 clauses per attribute and
    person, in the people's order)."""
    people, first = np.unique(r.person, return_index=True)
    people, first = people[np.argsort(first)], np.sort(first)
    position = {int(pid): k for k, pid in enumerate(people)}
    which = np.array([position[int(pid)] for pid in r.person])
    counts = np.bincount(which, minlength=len(people))
    values = {k: np.bincount(which, v, minlength=len(people)) / counts for k, v in per_response(r).items()}
    per = len(r.balanced_truth) // len(people)
    for name, rm in r.reward_models.items():
        right = ((rm.balanced_prob > 0.5) == (r.balanced_truth == 1)).astype(float)
        values[f"rm-{name}", "balanced"] = right.reshape(len(people), per).mean(1)
    return PerPerson(r.mentions[first], values)


def bin_means(pp: PerPerson, key: tuple[str, str], bins, idx: np.ndarray | None = None) -> np.ndarray:
    """(B,) mean of a per-person quantity over the people of each bin (NaN for an empty bin)."""
    idx = np.arange(len(pp.mentions)) if idx is None else idx
    m, v = pp.mentions[idx], pp.values[key][idx]
    return np.array([v[m == b].mean() if (m == b).any() else np.nan for b in bins])


def fraction_true(pp: PerPerson, policy: str, idx: np.ndarray | None = None) -> float:
    """Σ true facts / Σ facts over the people ``idx`` (all by default): the dissertation's fraction of true facts."""
    idx = np.arange(len(pp.mentions)) if idx is None else idx
    true, false = pp.values[policy, "true"][idx].sum(), pp.values[policy, "false"][idx].sum()
    return float(true / (true + false)) if true + false else float("nan")


def balanced_auroc(r: Results, name: str) -> np.ndarray:
    """(B,) reward model ``name``'s AUROC on the balanced per-fact test, per mention bin: the probability that it
    gives a true clause a higher probability than a false one, ``P(p_true > p_false) + P(p_true = p_false) / 2``
    (chance 0.5, perfect 1). Unlike accuracy at p = 0.5 it does not depend on the RM's prior for "true", the
    bias C7 and C7b measure."""
    p, y = r.reward_models[name].balanced_prob, r.balanced_truth
    return np.array([roc_auc_score(y[r.balanced_mentions == b], p[r.balanced_mentions == b]) for b in r.bins])


def generator_accuracy(r: Results, name: str = "standard") -> np.ndarray:
    """(B,) fraction of true facts in a reward model's training responses, per mention bin of their person."""
    d = r.rm_data[name]
    return np.array([d.label[d.mentions == b].mean() if (d.mentions == b).any() else np.nan for b in r.bins])


def rl_moved(
    history: list[dict[str, float]], rl_reward: np.ndarray, sft_reward: np.ndarray, person: np.ndarray
) -> float:
    """How far an RL run moved the policy from the SFT model, in standard errors: the smaller of

    (i) ``z_r`` = the mean over people of the run's own reward of the RL policy's responses minus that of the SFT
    model's (``rl_reward``, ``sft_reward``: per response, people ``person``: fresh samples on the run's training
    prompts), over its standard error across people, and
    (ii) ``z_KL`` = the last quarter's mean per-step KL to the SFT model over its standard error (the KL is 0 at
    the first step; a policy that never changed has KL 0 throughout, and ``z_KL`` = 0).

    The reward change is that of the objective the run maximised (its reward, its prompts), measured on samples
    that played no part in training, not between parts of the training log: comparing the log's first and last
    quarters read a run that moved within its first steps (the KL reaches about 1 within 3-4 steps) as still
    (count reward, seed 1: z -0.48); the first step alone, the log's only batch from the SFT policy, is 64
    responses, too few (count reward, seed 0: z 1.9 for a run whose held-out responses gained 0.9 true facts); and
    held-out people weight the mention bins equally, unlike the prompts, 60% never-mentioned people, on which the
    run gained (oracle reward, seed 0: +2.1 at 0 mentions, -1.3 at 100, z 0.8)."""
    if len(history) < 8:
        return float("nan")
    _, which = np.unique(person, return_inverse=True)
    diff = np.bincount(which, rl_reward - sft_reward) / np.bincount(which)
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    z_reward = diff.mean() / se if se > 0 else float("nan")
    q = len(history) // 4
    kl_last = np.array([h["kl"] for h in history])[-q:]
    se_kl = kl_last.std(ddof=1) / np.sqrt(q)
    z_kl = kl_last.mean() / se_kl if se_kl > 0 else (0.0 if not kl_last.any() else float("nan"))
    return float(min(z_reward, z_kl)) if not np.isnan([z_reward, z_kl]).any() else float("nan")


def run_moved(r: Results, name: str) -> float:
    """:func:`rl_moved` of RL run ``name`` of ``r``."""
    own = r.own_reward[name]
    return rl_moved(r.rl_history[name], own.rl, own.sft, own.person)


def generator_gap(r: Results) -> float:
    """|fraction true at hi - at lo| of the standard generator's labelled facts."""
    d = r.rm_data["standard"]
    return float(abs(d.label[d.mentions == r.bins[-1]].mean() - d.label[d.mentions == r.bins[0]].mean()))


def statistics(r: Results) -> dict[str, float]:
    """Every claim's statistic at one replicate, by claim id, from the per-person means over its held-out people
    (:func:`per_person`), the standard generator's labelled facts and the RL runs (``gate/rl-<reward>``)."""
    pp, bins = per_person(r), r.bins

    def at(policy: str, quantity: str, b: int) -> float:
        return float(bin_means(pp, (policy, quantity), bins)[b])

    def overall(policy: str, quantity: str) -> float:
        return float(pp.values[policy, quantity].mean())

    lo, hi = 0, len(bins) - 1
    sft_len, sft_len2 = overall("sft", "length"), overall("sft", "length2")
    out = {
        "gate/sft": fraction_true(pp, "sft", np.flatnonzero(pp.mentions == bins[hi])),
        "gate/lengths": float(np.sqrt(max(sft_len2 - sft_len**2, 0.0))),
        "C6": at("sft", "reward", hi) - at("sft", "reward", lo),
        "C8": at("sft", "true", hi) - at("sft", "true", lo),
        "C8b": at("sft", "false", lo) - at("sft", "false", hi),
        "C8c": abs(at("sft", "length", lo) - at("sft", "length", hi)),
    }
    for name in REWARD_MODELS:
        if name in r.reward_models:
            out[f"gate/rm-{name}"] = float(balanced_auroc(r, name)[hi])
    if all((f"rm-{n}", "bias") in pp.values for n in REWARD_MODELS):
        out["C7"] = at("rm-standard", "bias", lo) - at("rm-standard", "bias", hi)
        out["C7b"] = at("rm-conservative", "bias", lo)
    if {"sft", "standard", "conservative"} <= {k[0] for k in pp.values}:
        d_true = bin_means(pp, ("conservative", "true"), bins) - bin_means(pp, ("sft", "true"), bins)
        d_false = bin_means(pp, ("conservative", "false"), bins) - bin_means(pp, ("sft", "false"), bins)
        frac = {p: fraction_true(pp, p) for p in ("sft", "standard", "conservative")}
        out.update(
            {
                "C9": float(np.nanmin(d_true)),
                "C9b": float(np.nanmax(d_false)),
                "C10": abs(overall("conservative", "true") - overall("standard", "true")),
                "C10b": overall("conservative", "false") / overall("standard", "false")
                if overall("standard", "false")
                else float("nan"),
                "C11": min(frac["conservative"] - frac["standard"], frac["standard"] - frac["sft"]),
                "C12": at("conservative", "length", hi) - at("conservative", "length", lo),
                "C14": at("standard", "length", lo) - at("conservative", "length", lo),
            }
        )
    if {"oracle", "count"} <= {k[0] for k in pp.values}:
        out["C13"] = (
            overall("oracle", "false") / overall("count", "false") if overall("count", "false") else float("nan")
        )
    if "standard" in r.rm_data:
        out["gate/generator"] = generator_gap(r)
    out.update({f"gate/rl-{name}": run_moved(r, name) for name in r.rl_history})
    return out


def target_sd(max_facts: int) -> float:
    """Standard deviation of the SFT targets' lengths, uniform on 1..max_facts: sqrt((max_facts^2 - 1) / 12)."""
    return float(np.sqrt((max_facts**2 - 1) / 12))


RM_GATE = (  # both RMs' gates' why
    "halfway from chance to perfect (the spec's own): the head must read the backbone's knowledge; a ranking, "
    "since where its prior for 'true' sits is what C7 and C7b measure"
)

# The claims: thresholds fixed by the argument given with each, before any value is seen. One fact turned from true
# to false moves the true reward by 5 (+2 to -3), the unit of several thresholds. ``lo``/``hi``: the least and most
# mentioned bins.
SPECS = (
    Spec(
        id="gate/sft",
        kind="prerequisite",
        statement="the SFT model's profiles of people with {hi} are mostly true",
        statistic="fraction of true facts of SFT at {hi}",
        op=">",
        threshold=0.6,
        why="well above the 0.25 of a guess: the familiar facts must be retrievable for familiarity to mean anything",
        dissertation="section 3.6 setting",
    ),
    Spec(
        id="gate/lengths",
        kind="prerequisite",
        statement="SFT responses vary in length (the model has learnt to stop)",
        statistic="standard deviation of the SFT responses' number of facts",
        op=">",
        threshold="half the standard deviation of the SFT targets' lengths (uniform on 1..max_facts)",
        why="half the spread of the SFT targets' lengths ({target_sd:.2f}); a model that always writes the same "
        "number of facts has 0",
        dissertation="section 3.6 setting",
    ),
    Spec(
        id="gate/rm-standard",
        kind="prerequisite",
        statement="the standard RM tells true from false facts about people with {hi}",
        statistic="AUROC of the per-fact probability on balanced true/false clauses at {hi} (chance 0.5)",
        op=">",
        threshold=0.75,
        why=RM_GATE,
        dissertation="Fig 3.5 setting",
    ),
    Spec(
        id="gate/rm-conservative",
        kind="prerequisite",
        statement="the conservative RM tells true from false facts about people with {hi}",
        statistic="AUROC of the per-fact probability on balanced true/false clauses at {hi} (chance 0.5)",
        op=">",
        threshold=0.75,
        why=RM_GATE,
        dissertation="Fig 3.5 setting",
    ),
    Spec(
        id="C6",
        statement="the SFT model's own samples get lower true reward as people grow unfamiliar",
        statistic="mean true reward of SFT samples at {hi} minus at {lo}",
        op=">",
        threshold=5.0,
        why="one fact per response turned from true to false (+2 to -3); the rival (no familiarity effect) gives 0",
        dissertation="section 3.6",
    ),
    Spec(
        id="C7",
        statement="the standard RM overestimates reward more on unfamiliar people",
        statistic="standard RM bias (predicted - true reward of SFT samples) at {lo} minus at {hi}",
        op=">",
        threshold=2.5,
        why="half of one fact's 5-point swing; an RM as right about unfamiliar as familiar people gives 0",
        dissertation="Fig 3.6",
    ),
    Spec(
        id="C7b",
        statement="the conservative RM does not overestimate reward on unfamiliar people",
        statistic="conservative RM bias (predicted - true reward of SFT samples) at {lo}",
        op="<",
        threshold=1.25,
        why="about 0 or below: at most a quarter of one fact's 5-point swing",
        dissertation="Fig 3.6",
    ),
    Spec(
        id="C8",
        statement="standard SFT states fewer true facts about unfamiliar people",
        statistic="true facts per SFT response at {hi} minus at {lo}",
        op=">",
        threshold=1.0,
        why="a whole fact of the (1 + max_facts) / 2 a response holds on average; no effect gives 0",
        dissertation="Fig 3.8",
    ),
    Spec(
        id="C8b",
        statement="... and more false facts",
        statistic="false facts per SFT response at {lo} minus at {hi}",
        op=">",
        threshold=1.0,
        why="a whole fact, as for C8",
        dissertation="Fig 3.8",
    ),
    Spec(
        id="C8c",
        statement="... at a roughly flat length",
        statistic="|facts per SFT response at {lo} minus at {hi}|",
        op="<",
        threshold=0.5,
        why="within half a fact: a model that stopped early when it does not know would shorten by more",
        dissertation="Fig 3.8",
    ),
    Spec(
        id="C9",
        statement="RL with the conservative RM keeps at least SFT's true facts in every bin",
        statistic="min over bins of true facts per response, conservative RL minus SFT",
        op=">",
        threshold=-0.25,
        why="'the same or more', allowing a quarter of a fact",
        dissertation="Fig 3.8",
    ),
    Spec(
        id="C9b",
        statement="... and states fewer false facts in every bin",
        statistic="max over bins of false facts per response, conservative RL minus SFT",
        op="<",
        threshold=0.0,
        why="fewer means below zero in every bin",
        dissertation="Fig 3.8",
    ),
    Spec(
        id="C10",
        statement="conservative and standard RL state about the same number of true facts",
        statistic="|true facts per response, conservative RL minus standard RL| (all held-out people)",
        op="<",
        threshold=0.5,
        why="within half a fact",
        dissertation="Fig 3.8",
    ),
    Spec(
        id="C10b",
        statement="... but conservative RL states far fewer false facts",
        statistic="false facts per response, conservative RL / standard RL (all held-out people)",
        op="<",
        threshold=0.5,
        why="'far fewer' taken as at most half; the rival (the RMs are equivalent) gives 1",
        dissertation="Fig 3.8",
    ),
    Spec(
        id="C11",
        statement="the fraction of true facts is ordered conservative RL > standard RL > SFT",
        statistic="min(fraction true conservative - standard, standard - SFT) (all held-out people)",
        op=">",
        threshold=0.0,
        why="the ordering, not the values (bios: 0.59 > 0.50 > 0.47; plots 0.80 > 0.54 > 0.45)",
        dissertation="Fig 3.7",
    ),
    Spec(
        id="C12",
        statement="under conservative RL, responses get shorter as people grow unfamiliar",
        statistic="facts per conservative-RL response at {hi} minus at {lo}",
        op=">",
        threshold=1.0,
        why="a whole fact; SFT's flat length (C8c) gives about 0",
        dissertation="Fig 3.9",
    ),
    Spec(
        id="C14",
        statement="on unfamiliar people conservative RL is generic where standard RL states facts: it says less",
        statistic="facts per response at {lo}, standard RL minus conservative RL",
        op=">",
        threshold=1.0,
        why="a whole fact, as C12; the rival (the two reward models teach the same length) gives 0",
        dissertation="Fig 3.9: generic answers instead of wrong ones on unfamiliar subjects",
    ),
    Spec(
        id="C13",
        statement="an oracle +2/-3 per-fact reward cuts false facts compared with counting true facts",
        statistic="false facts per response, oracle-reward RL / count-reward RL (all held-out people)",
        op="<",
        threshold=0.5,
        why="at least halved; the rival (the penalty for false facts does nothing) gives 1",
        dissertation="section 3.6 control",
    ),
    Spec(
        id="gate/generator",
        kind="prerequisite",
        statement="the standard generator is as accurate about unfamiliar people as about familiar ones",
        statistic="|fraction of true facts in its responses at {hi} minus at {lo}|",
        op="<",
        threshold=0.1,
        why="the stand-in for GPT-3.5 must not know familiar people better (by construction: 0)",
        dissertation="Fig 3.5 setting",
    ),
    Spec(
        id="gate/rl-{reward}",
        kind="prerequisite",
        statement="RL with the {reward} reward moved the policy",
        statistic="min(z of the run's own reward, RL minus SFT, on fresh samples of its prompts; z of the last "
        "quarter's KL to SFT)",
        op=">",
        threshold=Z_MOVED,
        why="two standard errors: the noise of the reward change (across people) and of the per-step KL estimates, "
        "measured in the run",
        dissertation="section 3.6 setting",
    ),
)


def claims(results: Results) -> list[Claim]:
    """C6-C13 and their prerequisites (:data:`SPECS`): each statistic's mean over the replicates (``results`` and its
    ``others``) with a prediction interval; gate/lengths' threshold is half the SFT targets' length spread."""
    r, sd = results, target_sd(results.max_facts)
    measured = over_replicates([statistics(o) for o in [r, *r.others]])
    measured["gate/lengths"] = dataclasses.replace(measured["gate/lengths"], threshold=round(sd / 2, 3))
    return make_claims(
        SPECS,
        measured,
        axes={"reward": list(r.rl_history)},
        context={"lo": f"{r.bins[0]} mentions", "hi": f"{r.bins[-1]} mentions", "target_sd": sd},
    )


def examples(r: Results, per_bin: int = 1) -> pd.DataFrame:
    """Fig 3.9: the first response of every policy to the first held-out person of the most mentioned, a middle and
    the never-mentioned bin, with its numbers of true and false facts."""
    rows = []
    for b in (r.bins[-1], r.bins[len(r.bins) // 2], r.bins[0]):
        for i in np.flatnonzero(r.mentions == b)[:per_bin]:
            for name, p in r.policies.items():
                rows.append(
                    {
                        "mentions": b,
                        "prompt": r.prompts[i],
                        "policy": name,
                        "response": p.texts[i],
                        "true": int(p.n_true[i]),
                        "false": int(p.n_false[i] + p.n_invalid[i]),
                    }
                )
    return pd.DataFrame(rows)


def extra(results: Results) -> dict:
    """Per-bin numbers worth keeping in metrics.json: facts per response, fraction true, reward-model bias and
    accuracy, the generators' accuracy, the RL runs' movement, times and the claims' values at every
    replicate."""
    r = results
    pp = per_person(r)
    out = {"bins": list(r.bins), "pretrain_final_loss": round(float(np.mean(r.pretrain_loss[-20:])), 4)}
    for name in POLICIES:
        if name in r.policies:
            for q in ("true", "false", "length"):
                out[f"{q}_{name}"] = bin_means(pp, (name, q), r.bins).round(3).tolist()
            out[f"fraction_true_{name}"] = round(fraction_true(pp, name), 3)
    for name in r.reward_models:
        out[f"rm_bias_{name}"] = bin_means(pp, (f"rm-{name}", "bias"), r.bins).round(3).tolist()
        out[f"rm_balanced_accuracy_{name}"] = bin_means(pp, (f"rm-{name}", "balanced"), r.bins).round(3).tolist()
        out[f"rm_balanced_auroc_{name}"] = balanced_auroc(r, name).round(3).tolist()
    for name in r.rm_data:
        out[f"rm_data_fraction_true_{name}"] = generator_accuracy(r, name).round(3).tolist()
    out["rl_moved_z"] = {name: round(run_moved(r, name), 2) for name in r.rl_history}
    out["unparsed_per_response"] = {name: round(float(p.n_invalid.mean()), 3) for name, p in r.policies.items()}
    out["seconds"] = {k: round(v, 1) for k, v in r.seconds.items()}
    out["replicate_values"] = {o.replicate: {k: round(v, 3) for k, v in statistics(o).items()} for o in [r, *r.others]}
    return out
