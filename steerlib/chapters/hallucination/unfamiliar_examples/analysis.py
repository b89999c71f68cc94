"""Statistics per mention bin, the chapter's claims (C1–C5 and the gate check) and the numbers kept in metrics.json.

Bins are in ``Results.bins`` order: the least mentioned (least familiar) bin first."""
from __future__ import annotations

import dataclasses

import numpy as np

from steerlib.chapters.hallucination.unfamiliar_examples.experiment import REWARDS
from steerlib.chapters.hallucination.unfamiliar_examples.results import E1, E2, E3, Results
from steerlib.core.claims import Claim
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


def claims(results: Results) -> list[Claim]:
    """C1–C5 (and the gate check) from the per-example results; the least familiar bin is the first one."""
    r, b = results, binned(results)
    bins, e1, e2 = r.bins, r.e1, r.e2
    chance = float(np.mean([1 / len(v) for v in ATTRIBUTES.values()]))
    accuracy = b.gate_accuracy
    dist = {m: tv_distance(label_means(p, e1.label, e1.mentions, bins), HEDGES[m]).mean(1)
            for m, p in e1_probs(e1).items()}
    bc_0 = bin_stats(e1.probs_ii[:, 1:3].sum(1), e1.mentions, bins)[0][0]
    agree = bin_stats(tv_distance(e1.probs_i, e1.probs_ii), e1.mentions, bins)[0][-1]
    narrow = {m: spread(p, e1.mentions, bins) for m, p in e1_probs(e1).items()}
    abstain = b.e2_abstain
    right = {n: bin_stats(e2.rl[n].probs[np.arange(len(e2.label)), e2.label], e2.mentions, bins)[0]
             for n in REWARDS}
    std, idk = b.e3_rates["standard"], b.e3_rates["relabelled"]
    lo, hi = f"{bins[0]} mentions", f"{bins[-1]} mentions"
    return [
        Claim("gate", f"standard SFT answers held-out questions about people with {hi} far above chance",
              f"QA accuracy at {hi} (chance {chance:.2f})", accuracy[-1], ">", 0.6, "Fig 3.1 setting"),
        Claim("gate-0", f"... and near chance for people with {lo}", f"QA accuracy at {lo} minus chance",
              accuracy[0] - chance, "<", 0.1, "Fig 3.1 setting"),
        Claim("C1", "E1: predictions approach the hedge P_hedged as inputs grow unfamiliar",
              f"max over models (i),(ii) of TV(mean prediction per true answer, P_hedged) at {lo} / at {hi}",
              max(d[0] / d[-1] for d in dist.values()), "<", 0.5, "Fig 3.3"),
        Claim("C2", "E1: model (ii)'s unfamiliar limit is the B/C mix of its unfamiliar examples, "
              "not its overall finetuning marginal",
              f"P(B or C) of model (ii) at {lo} minus its finetuning marginal P(B or C) "
              f"({e1.marginal_ii[1:3].sum():.2f})", bc_0 - e1.marginal_ii[1:3].sum(), ">", 0.05, "Fig 3.3"),
        Claim("C2b", "E1: models (i) and (ii) agree on familiar inputs",
              f"mean TV(model (i), model (ii)) at {hi}", agree, "<", 0.2, "Fig 3.3"),
        Claim("C3", "E1: the spread of predictions across inputs narrows in unfamiliar bins",
              f"max over models of spread at {lo} / at {hi}", max(s[0] / s[-1] for s in narrow.values()), "<", 0.5,
              "Fig 3.3"),
        Claim("C4", "E2: at the least familiar bin R2 (abstain 0) abstains and R1 (abstain -3) does not",
              f"P(E) under R2 minus P(E) under R1 at {lo}", abstain["R2"][0] - abstain["R1"][0], ">", 0.4,
              "Fig 3.4"),
        Claim("C4b", "E2: both RL models answer familiar inputs correctly",
              f"min over R1, R2 of P(correct option) at {hi} (chance 0.2)", min(v[-1] for v in right.values()),
              ">", 0.5, "Fig 3.4"),
        Claim("C5", "E3: standard SFT gives more false answers as inputs grow unfamiliar",
              f"false-answer rate at {lo} minus at {hi}", std[0, 0] - std[-1, 0], ">", 0.3, "Fig 3.1"),
        Claim("C5b", "E3: relabelled SFT says \"I don't know\" more as inputs grow unfamiliar",
              f"\"I don't know\" rate at {lo} minus at {hi}", idk[0, 2] - idk[-1, 2], ">", 0.3, "Fig 3.1"),
        Claim("C5c", "E3: relabelling raises the accuracy among answers that are not \"I don't know\"",
              "selective accuracy, relabelled minus standard (all test questions)",
              b.e3_selective["relabelled"] - b.e3_selective["standard"], ">", 0.0, "Fig 3.1"),
    ]


def extra(results: Results) -> dict:
    """Per-bin numbers worth keeping in metrics.json (accuracy, hedges, abstention, answer rates)."""
    r, b = results, binned(results)
    bins, f = r.bins, r.familiarity
    return {
        "bins": list(bins),
        "pretrain_final_loss": round(float(np.mean(r.pretrain_loss[-20:])), 4),
        "gate_accuracy": b.gate_accuracy.round(3).tolist(),
        "unfamiliar_fraction_b": bin_stats(f.unfamiliar, f.mentions, bins)[0].round(3).tolist(),
        "relabelled_fraction_c": bin_stats(f.relabelled, f.qa_mentions, bins)[0].round(3).tolist(),
        "e1_marginal_ii": r.e1.marginal_ii.round(3).tolist(),
        **{f"e1_mean_probs_{m}": p.round(3).tolist() for m, p in b.e1_mean_probs.items()},
        **{f"e2_abstain_{n}": p.round(3).tolist() for n, p in b.e2_abstain.items()},
        **{f"e3_rates_{m}": rates.round(3).tolist() for m, rates in b.e3_rates.items()},
        "seconds": {k: round(v, 1) for k, v in r.seconds.items()},
    }
