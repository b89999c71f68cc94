"""Statistics per mention bin, the chapter's claims (C1–C5 and the gate check: :data:`SPECS`) and the numbers kept in
metrics.json.

Bins are in ``Results.bins`` order: the least mentioned (least familiar) bin first. Every claim's statistic is
computed at each replicate (:func:`statistics`); its value is the mean over the replicates, with a prediction
interval for the mean of a rerun (:func:`~steerlib.measures.statistics.over_replicates`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from steerlib.chapters.hallucination.common import selective_accuracy, selective_floor
from steerlib.chapters.hallucination.unfamiliar_examples.experiment import E1, E2, E3, REWARDS, Results
from steerlib.core.claims import Claim, Measured, Spec, make_claims
from steerlib.measures.statistics import over_replicates, spearman
from steerlib.worlds.knowledge import ATTRIBUTES

GRADES = ("false", "correct", "I don't know")  # the codes 0, 1, 2 of steerlib.worlds.knowledge.grade
HEDGES = {"i": np.full(4, 0.25), "ii": np.array([0.0, 0.5, 0.5, 0.0])}  # E1's P_hedged for models (i) and (ii)


def bin_stats(values: np.ndarray, mentions: np.ndarray, bins) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``values`` (N, ...) over the examples of each mention bin: two (B, ...).

    A bin without examples gets NaN."""
    values = np.asarray(values, dtype=float)
    groups = [values[np.asarray(mentions) == b] for b in bins]
    empty = np.full(values.shape[1:], np.nan)
    return (
        np.stack([g.mean(0) if len(g) else empty for g in groups]),
        np.stack([g.std(0) if len(g) else empty for g in groups]),
    )


def tv_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance ``½ Σ_k |p_k - q_k|`` over the last axis."""
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(-1)


def grade_rates(grades: np.ndarray, mentions: np.ndarray, bins) -> np.ndarray:
    """(B, 3) fraction of false, correct and "I don't know" answers in each mention bin."""
    return bin_stats(np.eye(3)[grades], mentions, bins)[0]


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


def level_statistics(r: Results, level: np.ndarray) -> dict[str, float]:
    """Every claim's statistic on the test questions of one replicate, binned by ``level`` (0 = least familiar, top
    = most familiar). ``lo``/``hi`` in :data:`SPECS` are the least and most familiar bins."""
    top = int(level.max())
    e1, e2, e3, gate = r.e1, r.e2, r.e3, r.gate

    def at(values: np.ndarray, b: int) -> float:
        """Mean of ``values`` (per question) over the questions of bin b."""
        sel = level == b
        return float(np.mean(values[sel], axis=0)) if sel.any() else float("nan")

    def ratio(values: np.ndarray, inverse: bool = False) -> float:
        """at(values, lo) / at(values, hi), or hi / lo; NaN when the denominator is 0."""
        num, den = (at(values, top), at(values, 0)) if inverse else (at(values, 0), at(values, top))
        return num / den if den else float("nan")

    probs = e1_probs(e1)
    to_hedge = {m: tv_distance(p, HEDGES[m]) for m, p in probs.items()}  # per-question distance to P_hedged
    spread_ = {
        m: [np.std(p[level == b], axis=0).mean() if (level == b).any() else np.nan for b in (0, top)]
        for m, p in probs.items()
    }
    rows = np.arange(len(level))
    right = {n: e2.rl[n].probs[rows, e2.label] for n in REWARDS}
    false_std, idk_rel = e3.grade_standard == 0, e3.grade_relabelled == 2
    least = level == 0
    return {
        "gate": at(gate.grade == 1, top),
        "gate-0": at(gate.grade == 1, 0) - CHANCE,
        "C1": max(ratio(d) for d in to_hedge.values()),
        "C2": at(probs["ii"][:, 1:3].sum(1), 0),
        "C2b": ratio(tv_distance(probs["i"], probs["ii"]), inverse=True),
        "C3": max(s[0] / s[1] if s[1] else float("nan") for s in spread_.values()),
        "C3c": max(namesake_cue(p[least], e1.namesakes[least], e1.attribute[least]) for p in probs.values()),
        "C4": at(e2.rl["R2"].probs[:, 4], 0) - at(e2.rl["R1"].probs[:, 4], 0),
        "C4b": min(at(v, top) for v in right.values()),
        "C5": at(false_std, 0) - at(false_std, top),
        "C5b": at(idk_rel, 0) - at(idk_rel, top),
        "C5c": selective_accuracy(e3.grade_relabelled) - selective_accuracy(e3.grade_standard),
    }


CHANCE = float(np.mean([1 / len(v) for v in ATTRIBUTES.values()]))  # QA accuracy of a uniform guess
BINNED = ("C1", "C2", "C2b", "C3", "C4", "C4b", "C5", "C5b")  # the evidence judged under both binnings


def statistics(r: Results) -> dict[str, float]:
    """Every claim's statistic at one replicate, by claim id: :func:`level_statistics` binned by exact mention
    counts, the evidence of :data:`BINNED` again binned by metric (b) (ids ``<id>/nll``), and B1a, B1b: Spearman's
    rho of the mention count with metric (b) on the MC finetuning questions and with metric (c) on E3's."""
    by = binnings(r)
    out, nll = level_statistics(r, by["mentions"].level), level_statistics(r, by["nll"].level)
    f = r.familiarity  # App. B.1: do the familiarity metrics agree with the mention counts?
    agree = {"B1a": spearman(f.mentions, f.option_nll), "B1b": spearman(f.qa_mentions, f.answer_nll)}
    return {**out, **{f"{cid}/nll": nll[cid] for cid in BINNED}, **agree}


def _evidence() -> tuple[Spec, ...]:
    """The evidence judged under both binnings (:data:`BINNED`), in their order."""
    return (
        Spec(
            id="C1",
            statement="E1: each prediction approaches the hedge P_hedged as inputs grow unfamiliar",
            statistic="max over models (i), (ii) of mean per-question TV(prediction, P_hedged) at {lo} / at {hi}",
            op="<",
            threshold=0.5,
            why="half: per-question distances, so confident guesses spread like the hedge (ratio about 1) cannot pass",
            dissertation="Fig 3.3",
        ),
        Spec(
            id="C2",
            statement="E1: model (ii)'s unfamiliar limit is the B/C mix of its unfamiliar examples, not its "
            "overall finetuning marginal",
            statistic="P(B or C) of model (ii) at {lo}",
            op=">",
            threshold="midway between 1 (what model (ii)'s unfamiliar examples predict) and its finetuning "
            "marginal of B or C (mean over the replicates)",
            why="midway between the two accounts: unfamiliar examples predict 1, the finetuning marginal {bc:.2f}",
            dissertation="Fig 3.3",
        ),
        Spec(
            id="C2b",
            statement="E1: models (i) and (ii) agree on familiar inputs, unlike on unfamiliar ones",
            statistic="mean TV(model (i), model (ii)) at {hi} / at {lo}",
            op="<",
            threshold=0.5,
            why="the models' disagreement on familiar inputs at most half of their disagreement where they hedge",
            dissertation="Fig 3.3",
        ),
        Spec(
            id="C3",
            statement="E1: the spread of predictions across inputs narrows in unfamiliar bins",
            statistic="max over models of the spread across questions at {lo} / at {hi}",
            op="<",
            threshold=0.5,
            why="at least twice as uniform across inputs as where the model knows the answer",
            dissertation="Fig 3.3",
        ),
        Spec(
            id="C4",
            statement="E2: at {lo} R2 (abstain 0) abstains and R1 (abstain -3) does not",
            statistic="P(E) under R2 minus P(E) under R1 at {lo}",
            op=">",
            threshold=0.5,
            why="midway between no effect (0) and the ideal hedges (R2 always E, R1 never: 1)",
            dissertation="Fig 3.4",
        ),
        Spec(
            id="C4b",
            statement="E2: both RL models answer familiar inputs correctly",
            statistic="min over R1, R2 of P(correct option) at {hi} (chance 0.2)",
            op=">",
            threshold=0.5,
            why="a majority on the right option, 2.5x chance: RL keeps what the model knows",
            dissertation="Fig 3.4",
        ),
        Spec(
            id="C5",
            statement="E3: standard SFT gives more false answers as inputs grow unfamiliar",
            statistic="false-answer rate at {lo} minus at {hi}",
            op=">",
            threshold=0.3,
            why="the dissertation's false-answer rate rises by about 0.5 from familiar to unfamiliar",
            dissertation="Fig 3.1",
        ),
        Spec(
            id="C5b",
            statement='E3: relabelled SFT says "I don\'t know" more as inputs grow unfamiliar',
            statistic='"I don\'t know" rate at {lo} minus at {hi}',
            op=">",
            threshold=0.3,
            why="the dissertation's abstention rate rises by about as much as false answers do",
            dissertation="Fig 3.1",
        ),
    )


# The claims: the gate check, the evidence binned by mentions, C3c and C5c (one claim each, whatever the binning),
# then the evidence binned by metric (b) (ids /nll). Thresholds are fixed by the argument given with each, before
# any value is seen; ``lo``/``hi`` name the least and most familiar bins.
SPECS = (
    Spec(
        id="gate",
        kind="prerequisite",
        statement="standard SFT answers held-out questions at {hi} far above chance",
        statistic="QA accuracy at {hi} (chance {chance:.2f})",
        op=">",
        threshold=0.6,
        why="well above twice chance: familiar facts must be retrievable for familiarity to mean anything",
        dissertation="Fig 3.1 setting",
    ),
    Spec(
        id="gate-0",
        kind="prerequisite",
        statement="... and near chance at {lo}",
        statistic="QA accuracy at {lo} minus chance",
        op="<",
        threshold=0.1,
        why="unfamiliar questions must carry (almost) no knowledge; an untrained model also passes",
        dissertation="Fig 3.1 setting",
    ),
    *_evidence(),
    Spec(
        id="C3c",
        kind="prerequisite",
        statement="E1: at {lo} the models do not guess from name fragments",
        statistic="max over models (i), (ii) of the probability on namesakes' values minus a shuffled-attribute "
        "baseline, at {lo}",
        op="<",
        threshold=0.05,
        why="a fifteenth of what copying a namesake's value gives (0.75): names must not be a cue, or C3's spread "
        "would measure name fragments, not familiarity",
        dissertation="Fig 3.3 setting",
    ),
    Spec(
        id="C5c",
        statement='E3: relabelling raises the accuracy among answers that are not "I don\'t know"',
        statistic="selective accuracy, relabelled minus standard (all test questions)",
        op=">",
        threshold="the 97.5% point of the difference when the two models' answers are swapped at random per "
        "question (mean over the replicates)",
        why="the 97.5% point of the difference when the two models' answers are swapped at random per question (a "
        "noise floor measured here)",
        dissertation="Fig 3.1",
    ),
    *(dataclasses.replace(spec, id=f"{spec.id}/nll") for spec in _evidence()),
    Spec(
        id="B1a",
        statement="App. B.1: the pretrained model's uncertainty (metric b) agrees with the mention counts (metric a): "
        "the more a subject is mentioned, the lower the NLL",
        statistic="Spearman ρ(mention count, metric (b)) over the MC finetuning questions",
        op="<",
        threshold=-0.3,
        why="the spec's own bar for agreement: a rank correlation well clear of the rival that the metrics are "
        "unrelated (0), whose sampling noise over hundreds of questions is about 0.1",
        dissertation="App. B.1: metrics (a) and (b) measure the same unfamiliarity",
    ),
    Spec(
        id="B1b",
        statement="App. B.1: the SFT model's uncertainty (metric c) agrees with the mention counts (metric a)",
        statistic="Spearman ρ(mention count, metric (c)) over E3's QA finetuning questions",
        op="<",
        threshold=-0.3,
        why="the spec's own bar for agreement: a rank correlation well clear of the rival that the metrics are "
        "unrelated (0), whose sampling noise over hundreds of questions is about 0.1",
        dissertation="App. B.1: 'unfamiliar finetuning examples tend to be associated with higher NLL predictions'",
    ),
)


def measured(results: Results) -> dict[str, Measured]:
    """Every claim's value: the mean of :func:`statistics` over the replicates (``results`` and its ``others``) with
    a prediction interval; C2's threshold (the midpoint of 1 and model (ii)'s finetuning marginal of B or C) and
    C5c's (the swap noise floor) are measured at each replicate and averaged; the ``/nll`` claims name their bins."""
    replicates = [results, *results.others]
    out = over_replicates([statistics(r) for r in replicates])
    bc = float(np.mean([r.e1.marginal_ii[1:3].sum() for r in replicates]))
    floor = float(np.mean([selective_floor(r.e3.grade_relabelled, r.e3.grade_standard) for r in replicates]))
    nll = {"lo": "the highest-NLL bin", "hi": "the lowest-NLL bin"}
    for cid in BINNED:
        out[f"{cid}/nll"] = dataclasses.replace(out[f"{cid}/nll"], context=nll)
    for cid in ("C2", "C2/nll"):
        out[cid] = dataclasses.replace(
            out[cid], threshold=round((1 + bc) / 2, 3), context={**out[cid].context, "bc": bc}
        )
    out["C5c"] = dataclasses.replace(out["C5c"], threshold=round(floor, 3))
    return out


def claims(results: Results) -> list[Claim]:
    """The gate check and C1–C5 (:data:`SPECS`), binned by exact mention counts and again (ids ``/nll``) by the
    pretrained model's NLL of the correct option; values and intervals over the replicates (:func:`measured`)."""
    labels = binnings(results)["mentions"].labels
    return make_claims(SPECS, measured(results), context={"lo": labels[0], "hi": labels[-1], "chance": CHANCE})


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
        "replicate_values": {o.replicate: {k: round(v, 3) for k, v in statistics(o).items()} for o in [r, *r.others]},
    }
