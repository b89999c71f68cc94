"""Statistics per mention bin, the chapter's claims (C1–C5 and the gate check) and the numbers kept in metrics.json.

Bins are in ``Results.bins`` order: the least mentioned (least familiar) bin first."""
from __future__ import annotations

import dataclasses

import numpy as np

from steerlib.chapters.hallucination.unfamiliar_examples.experiment import REWARDS
from steerlib.chapters.hallucination.unfamiliar_examples.results import E1, E2, E3, Results
from steerlib.core.claims import Claim, with_seeds
from steerlib.measures.statistics import percentile_interval
from steerlib.worlds.knowledge import ATTRIBUTES

GRADES = ("false", "correct", "I don't know")  # the codes 0, 1, 2 of steerlib.worlds.knowledge.grade
HEDGES = {"i": np.full(4, 0.25), "ii": np.array([0.0, 0.5, 0.5, 0.0])}  # E1's P_hedged for models (i) and (ii)


def bin_stats(values: np.ndarray, mentions: np.ndarray, bins) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``values`` (N, ...) over the examples of each mention bin: two (B, ...).

    A bin without examples gets NaN."""
    values = np.asarray(values, dtype=float)
    groups = [values[np.asarray(mentions) == b] for b in bins]
    empty = np.full(values.shape[1:], np.nan)
    return (np.stack([g.mean(0) if len(g) else empty for g in groups]),
            np.stack([g.std(0) if len(g) else empty for g in groups]))


def tv_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance ``½ Σ_k |p_k - q_k|`` over the last axis."""
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(-1)


def grade_rates(grades: np.ndarray, mentions: np.ndarray, bins) -> np.ndarray:
    """(B, 3) fraction of false, correct and "I don't know" answers in each mention bin."""
    return bin_stats(np.eye(3)[grades], mentions, bins)[0]


def selective_accuracy(grades: np.ndarray) -> float:
    """Accuracy among the answers that are not "I don't know": correct / (correct + false)."""
    answered = grades != 2
    return float((grades[answered] == 1).mean()) if answered.any() else float("nan")


def label_means(probs: np.ndarray, labels: np.ndarray, mentions: np.ndarray, bins) -> np.ndarray:
    """(B, 4, K) mean predicted distribution in each mention bin for each true answer A–D (a panel of Fig 3.3)."""
    return np.stack([bin_stats(probs[labels == j], mentions[labels == j], bins)[0] for j in range(4)], 1)


def spread(probs: np.ndarray, mentions: np.ndarray, bins) -> np.ndarray:
    """(B,) standard deviation across the inputs of a bin of each option's probability, averaged over options."""
    return bin_stats(probs, mentions, bins)[1].mean(-1)


def namesake_cue(probs: np.ndarray, votes: np.ndarray, attribute: np.ndarray) -> float:
    """How much a model follows name fragments, over the questions that have namesakes (rows of ``votes`` > 0):

    ``mean_i p_i·v_i - Σ_a (n_a / n) mean_{i in a} p_i · mean_{i in a} v_i``, the probability the model puts on its
    namesakes' values minus the same with the votes shuffled among the questions about the same attribute ``a`` (the
    shuffled-attribute baseline, in expectation). 0 for a model blind to names; 0.75 for one that copies the value
    of a single namesake. NaN without namesakes."""
    has = votes.sum(-1) > 0
    p, v, a = probs[has], votes[has], np.asarray(attribute)[has]
    if not has.any():
        return float("nan")
    baseline = sum((a == g).mean() * p[a == g].mean(0) @ v[a == g].mean(0) for g in np.unique(a))
    return float(np.mean(np.sum(p * v, -1)) - baseline)


def e1_probs(e1: E1) -> dict[str, np.ndarray]:
    """E1's (N, 4) option probabilities by model: "i" and "ii" (the keys of :data:`HEDGES`)."""
    return {"i": e1.probs_i, "ii": e1.probs_ii}


def e2_probs(e2: E2) -> dict[str, np.ndarray]:
    """E2's (N, 5) option probabilities by model: "sft", then each reward of :data:`REWARDS`."""
    return {"sft": e2.probs_sft, **{name: e2.rl[name].probs for name in REWARDS}}


def e3_grades(e3: E3) -> dict[str, np.ndarray]:
    """E3's grades by model: "standard" and "relabelled"."""
    return {"standard": e3.grade_standard, "relabelled": e3.grade_relabelled}


@dataclasses.dataclass
class Binned:
    """The per-bin statistics that claims, :func:`extra` and the figures share."""

    gate_accuracy: np.ndarray  # (B,) held-out QA accuracy after standard SFT
    e1_mean_probs: dict[str, np.ndarray]  # model (i), (ii) -> (B, 4) mean option probabilities
    e2_abstain: dict[str, np.ndarray]  # SFT start, R1, R2 -> (B,) mean P(E)
    e3_rates: dict[str, np.ndarray]  # standard, relabelled -> (B, 3) rates of the GRADES
    e3_selective: dict[str, float]  # standard, relabelled -> selective accuracy over all test questions


def binned(r: Results) -> Binned:
    bins = r.bins
    grades = e3_grades(r.e3)
    return Binned(
        gate_accuracy=bin_stats(r.gate.grade == 1, r.gate.mentions, bins)[0],
        e1_mean_probs={m: bin_stats(p, r.e1.mentions, bins)[0] for m, p in e1_probs(r.e1).items()},
        e2_abstain={n: bin_stats(p[:, 4], r.e2.mentions, bins)[0] for n, p in e2_probs(r.e2).items()},
        e3_rates={m: grade_rates(g, r.e3.mentions, bins) for m, g in grades.items()},
        e3_selective={m: selective_accuracy(g) for m, g in grades.items()},
    )


@dataclasses.dataclass
class Binning:
    """Test questions grouped by familiarity: ``level[n]`` is question n's bin, 0 the least familiar."""

    name: str  # "mentions" (exact counts) or "nll" (the pretrained model's NLL of the correct option, metric (b))
    level: np.ndarray
    labels: list[str]  # one per bin, least familiar first


def binnings(r: Results) -> dict[str, Binning]:
    """The two familiarity measures of the test questions: exact mention counts, and metric (b) cut at quantiles
    into as many equal-count bins (the highest NLL first: least familiar). Every test array (gate, E1, E2, E3) lists
    the same (person, attribute) questions in the same order, so one ``level`` serves them all."""
    mentions = Binning("mentions", np.searchsorted(r.bins, r.e1.mentions), [f"{b} mentions" for b in r.bins])
    nll = r.e1.option_nll
    edges = np.quantile(nll, np.linspace(0, 1, len(r.bins) + 1))
    level = len(r.bins) - 1 - np.clip(np.searchsorted(edges, nll, side="right") - 1, 0, len(r.bins) - 1)
    labels = [f"NLL {edges[len(r.bins) - k - 1]:.2g}-{edges[len(r.bins) - k]:.2g}" for k in range(len(r.bins))]
    return {"mentions": mentions, "nll": Binning("nll", level, labels)}


def statistics(r: Results, level: np.ndarray, idx: np.ndarray | None = None) -> dict[str, float]:
    """Every claim's statistic on the test questions ``idx`` (default: all), binned by ``level`` (0 = least
    familiar, top = most familiar). ``lo``/``hi`` below are the least and most familiar bins."""
    idx = np.arange(len(level)) if idx is None else idx
    lv, top = level[idx], int(level.max())
    e1, e2, e3, gate = r.e1, r.e2, r.e3, r.gate

    def at(values: np.ndarray, b: int) -> float:
        """Mean of ``values`` (per question in idx) over the questions of bin b."""
        sel = lv == b
        return float(np.mean(values[sel], axis=0)) if sel.any() else float("nan")

    def ratio(values: np.ndarray, inverse: bool = False) -> float:
        """at(values, lo) / at(values, hi), or hi / lo; NaN when the denominator is 0."""
        num, den = (at(values, top), at(values, 0)) if inverse else (at(values, 0), at(values, top))
        return num / den if den else float("nan")

    probs = {m: p[idx] for m, p in e1_probs(e1).items()}
    to_hedge = {m: tv_distance(p, HEDGES[m]) for m, p in probs.items()}  # per-question distance to P_hedged
    spread_ = {m: [np.std(p[lv == b], axis=0).mean() if (lv == b).any() else np.nan for b in (0, top)]
               for m, p in probs.items()}
    rows = np.arange(len(idx))
    right = {n: e2.rl[n].probs[idx][rows, e2.label[idx]] for n in REWARDS}
    false_std, idk_rel = e3.grade_standard[idx] == 0, e3.grade_relabelled[idx] == 2
    return {
        "gate": at(gate.grade[idx] == 1, top),
        "gate-0": at(gate.grade[idx] == 1, 0) - CHANCE,
        "C1": max(ratio(d) for d in to_hedge.values()),
        "C2": at(probs["ii"][:, 1:3].sum(1), 0),
        "C2b": ratio(tv_distance(probs["i"], probs["ii"]), inverse=True),
        "C3": max(s[0] / s[1] if s[1] else float("nan") for s in spread_.values()),
        "C3c": max(namesake_cue(p[lv == 0], e1.namesakes[idx][lv == 0], e1.attribute[idx][lv == 0])
                   for p in probs.values()),
        "C4": at(e2.rl["R2"].probs[idx][:, 4], 0) - at(e2.rl["R1"].probs[idx][:, 4], 0),
        "C4b": min(at(v, top) for v in right.values()),
        "C5": at(false_std, 0) - at(false_std, top),
        "C5b": at(idk_rel, 0) - at(idk_rel, top),
        "C5c": selective_accuracy(e3.grade_relabelled[idx]) - selective_accuracy(e3.grade_standard[idx]),
    }


CHANCE = float(np.mean([1 / len(v) for v in ATTRIBUTES.values()]))  # QA accuracy of a uniform guess
N_BOOT = 300  # bootstrap resamples of the test questions


def selective_floor(e3: E3, n: int = 500, seed: int = 0) -> float:
    """Noise floor of C5c: the 97.5% point of (selective accuracy relabelled - standard) when the two models'
    grades are swapped at random per question, so that neither model is better."""
    rng = np.random.default_rng(seed)
    a, b = e3.grade_relabelled, e3.grade_standard
    diffs = []
    for _ in range(n):
        swap = rng.random(len(a)) < 0.5
        diffs.append(selective_accuracy(np.where(swap, b, a)) - selective_accuracy(np.where(swap, a, b)))
    return float(np.quantile(diffs, 0.975))


def _intervals(r: Results, level: np.ndarray) -> dict[str, tuple[float, float]]:
    """95% percentile bootstrap of every statistic over test questions (resampled together)."""
    rng = np.random.default_rng(0)
    boot = [statistics(r, level, rng.integers(0, len(level), len(level))) for _ in range(N_BOOT)]
    return {k: percentile_interval([b[k] for b in boot]) for k in boot[0]}


def _specs(r: Results, binning: Binning) -> list[tuple]:
    """(id, kind, statement, statistic, op, threshold, why, dissertation) of each claim under one binning; the
    thresholds are fixed by the argument given with each, before any value is seen."""
    lo, hi = binning.labels[0], binning.labels[-1]
    bc = float(r.e1.marginal_ii[1:3].sum())
    midpoint = (1 + bc) / 2
    return [
        ("gate", "prerequisite", f"standard SFT answers held-out questions at {hi} far above chance",
         f"QA accuracy at {hi} (chance {CHANCE:.2f})", ">", 0.6,
         "well above twice chance: familiar facts must be retrievable for familiarity to mean anything",
         "Fig 3.1 setting"),
        ("gate-0", "prerequisite", f"... and near chance at {lo}", f"QA accuracy at {lo} minus chance", "<", 0.1,
         "unfamiliar questions must carry (almost) no knowledge; an untrained model also passes", "Fig 3.1 setting"),
        ("C1", "evidence", "E1: each prediction approaches the hedge P_hedged as inputs grow unfamiliar",
         f"max over models (i), (ii) of mean per-question TV(prediction, P_hedged) at {lo} / at {hi}", "<", 0.5,
         "half: per-question distances, so confident guesses spread like the hedge (ratio about 1) cannot pass",
         "Fig 3.3"),
        ("C2", "evidence", "E1: model (ii)'s unfamiliar limit is the B/C mix of its unfamiliar examples, "
         "not its overall finetuning marginal", f"P(B or C) of model (ii) at {lo}", ">", round(midpoint, 3),
         f"midway between the two accounts: unfamiliar examples predict 1, the finetuning marginal {bc:.2f}",
         "Fig 3.3"),
        ("C2b", "evidence", "E1: models (i) and (ii) agree on familiar inputs, unlike on unfamiliar ones",
         f"mean TV(model (i), model (ii)) at {hi} / at {lo}", "<", 0.5,
         "the models' disagreement on familiar inputs at most half of their disagreement where they hedge",
         "Fig 3.3"),
        ("C3", "evidence", "E1: the spread of predictions across inputs narrows in unfamiliar bins",
         f"max over models of the spread across questions at {lo} / at {hi}", "<", 0.5,
         "at least twice as uniform across inputs as where the model knows the answer", "Fig 3.3"),
        ("C4", "evidence", f"E2: at {lo} R2 (abstain 0) abstains and R1 (abstain -3) does not",
         f"P(E) under R2 minus P(E) under R1 at {lo}", ">", 0.5,
         "midway between no effect (0) and the ideal hedges (R2 always E, R1 never: 1)", "Fig 3.4"),
        ("C4b", "evidence", "E2: both RL models answer familiar inputs correctly",
         f"min over R1, R2 of P(correct option) at {hi} (chance 0.2)", ">", 0.5,
         "a majority on the right option, 2.5x chance: RL keeps what the model knows", "Fig 3.4"),
        ("C5", "evidence", "E3: standard SFT gives more false answers as inputs grow unfamiliar",
         f"false-answer rate at {lo} minus at {hi}", ">", 0.3,
         "the dissertation's false-answer rate rises by about 0.5 from familiar to unfamiliar", "Fig 3.1"),
        ("C5b", "evidence", "E3: relabelled SFT says \"I don't know\" more as inputs grow unfamiliar",
         f"\"I don't know\" rate at {lo} minus at {hi}", ">", 0.3,
         "the dissertation's abstention rate rises by about as much as false answers do", "Fig 3.1"),
    ]


def claims(results: Results) -> list[Claim]:
    """The gate check and C1–C5, binned by exact mention counts and again (ids ``/nll``) by the pretrained model's
    NLL of the correct option. Intervals: a 95% bootstrap over test questions, widened to the values at the other
    seeds of ``results.others``."""
    r, out = results, []
    for name, binning in binnings(r).items():
        values, intervals = statistics(r, binning.level), _intervals(r, binning.level)
        others = {o.seed: statistics(o, binnings(o)[name].level) for o in r.others}
        how = f"95% bootstrap over the {len(binning.level)} test questions ({N_BOOT} resamples)"
        specs = _specs(r, binning)
        if name == "mentions":  # C3c and C5c: one claim each, whatever the binning
            specs.append(("C3c", "prerequisite", f"E1: at {binning.labels[0]} the models do not guess from name "
                          "fragments", f"max over models (i), (ii) of the probability on namesakes' values "
                          f"minus a shuffled-attribute baseline, at {binning.labels[0]}", "<", 0.05,
                          "a fifteenth of what copying a namesake's value gives (0.75): names must not be a cue, or "
                          "C3's spread would measure name fragments, not familiarity", "Fig 3.3 setting"))
            specs.append(("C5c", "evidence", "E3: relabelling raises the accuracy among answers that are not "
                          "\"I don't know\"", "selective accuracy, relabelled minus standard (all test questions)",
                          ">", round(selective_floor(r.e3), 3), "the 97.5% point of the difference when the two "
                          "models' answers are swapped at random per question (a noise floor measured here)",
                          "Fig 3.1"))
        else:  # by metric (b): the evidence claims again, ids with /nll
            specs = [(f"{cid}/nll", *rest) for cid, *rest in specs if rest[0] == "evidence"]
        for cid, kind, statement, statistic, op, threshold, why, paper in specs:
            key = cid.removesuffix("/nll")
            claim = Claim(cid, statement, statistic, values[key], op, threshold, paper, kind, why, intervals[key],
                          how)
            out.append(with_seeds(claim, {seed: v[key] for seed, v in others.items()}))
    return out


def extra(results: Results) -> dict:
    """Per-bin numbers worth keeping in metrics.json (accuracy, hedges, abstention, answer rates)."""
    r, b = results, binned(results)
    bins, f = r.bins, r.familiarity
    return {
        "bins": list(bins),
        "pretrain_final_loss": round(float(np.mean(r.pretrain_loss[-20:])), 4),
        "gate_accuracy": b.gate_accuracy.round(3).tolist(),
        "namesake_share": bin_stats(r.e1.namesakes.sum(-1) > 0, r.e1.mentions, bins)[0].round(3).tolist(),
        "unfamiliar_fraction_b": bin_stats(f.unfamiliar, f.mentions, bins)[0].round(3).tolist(),
        "relabelled_fraction_c": bin_stats(f.relabelled, f.qa_mentions, bins)[0].round(3).tolist(),
        "e1_marginal_ii": r.e1.marginal_ii.round(3).tolist(),
        **{f"e1_mean_probs_{m}": p.round(3).tolist() for m, p in b.e1_mean_probs.items()},
        **{f"e2_abstain_{n}": p.round(3).tolist() for n, p in b.e2_abstain.items()},
        **{f"e3_rates_{m}": rates.round(3).tolist() for m, rates in b.e3_rates.items()},
        "seconds": {k: round(v, 1) for k, v in r.seconds.items()},
        "nll_bins": binnings(r)["nll"].labels,
        "seed_values": {o.seed: {k: round(v, 3) for k, v in statistics(o, binnings(o)["mentions"].level).items()}
                        for o in [r, *r.others]},
    }
