"""Familiarity bins, answer rates, the hedge's answer distributions, the chapter's claims and metrics.json's numbers.

Test questions are binned by the base model's few-shot NLL of the right answer into equal-count bins, bin 0 the
least familiar (highest NLL). Grades are 0 false, 1 correct, 2 "I don't know" (:func:`steerlib.worlds.geography.grade`).
The kinds of question are read from the results (:func:`kinds`); a source without a population (TriviaQA, MMLU)
leaves it out of the correlations and the examples, and a source without kinds whose answers repeat leaves the hedge
(S1, S1b) not judged.

The claims (:data:`SPECS`) are judged on each statistic's mean over the experiment's independent replicates
(:func:`statistics` of each, :func:`measured`), with a prediction interval for the mean a rerun would give.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from steerlib.chapters.hallucination.common import selective_accuracy, selective_floor
from steerlib.chapters.hallucination.real_facts.experiment import STAGES, Results
from steerlib.core.claims import Claim, Measured, Spec, make_claims
from steerlib.measures.statistics import bootstrap_interval, over_replicates, spearman
from steerlib.worlds.geography import COUNTRY_ALIASES, LETTERS, normalize

GRADES = ("false", "correct", "I don't know")
CATEGORICAL = ("country", "continent")  # geography's kinds whose answers repeat across questions: a hedge
N_BOOT = 300  # bootstrap resamples of the test questions (the multiple-choice table)
CANONICAL = {normalize(alias): normalize(name) for name, aliases in COUNTRY_ALIASES.items() for alias in aliases}


def kinds(r: Results) -> list[str]:
    """The kinds of question in ``r``, in order of first appearance (geography: capital, country, continent)."""
    return list(dict.fromkeys(r.kind))


def hedge_kinds(r: Results) -> list[str]:
    """The kinds of :data:`CATEGORICAL` in ``r``: those whose answers repeat, so that the unfamiliar finetuning
    examples' answers form a distribution to hedge towards (none in TriviaQA or MMLU, whose answers rarely repeat)."""
    return [k for k in CATEGORICAL if (r.kind == k).any()]


def has_population(r: Results) -> bool:
    """Whether the source gave every question a population (geography does; TriviaQA and MMLU do not: NaN)."""
    return bool(np.isfinite(np.asarray(r.population, dtype=float)).all())


def familiarity_levels(nll: np.ndarray, bins: int) -> np.ndarray:
    """Equal-count bins of ``nll`` as integers 0..bins-1, 0 holding the highest NLL (least familiar)."""
    nll = np.asarray(nll, dtype=float)
    ranks = np.empty(len(nll), dtype=np.int64)
    ranks[np.argsort(-nll, kind="stable")] = np.arange(len(nll))
    return ranks * bins // len(nll)


def rates(grades: np.ndarray, level: np.ndarray, bins: int) -> np.ndarray:
    """(bins, 3) fraction of false, correct and "I don't know" answers in each bin (NaN for an empty bin)."""
    out = np.full((bins, 3), np.nan)
    for b in range(bins):
        if (level == b).any():
            out[b] = np.bincount(grades[level == b], minlength=3)[:3] / (level == b).sum()
    return out


def distribution(texts) -> dict[str, float]:
    """The empirical distribution of answers, normalised (and country aliases mapped to the country's name)."""
    keys = [CANONICAL.get(normalize(str(t)), normalize(str(t))) for t in texts]
    values, counts = np.unique(keys, return_counts=True) if keys else ([], [])
    return {v: c / len(keys) for v, c in zip(values, counts)}


def tv(p: dict[str, float], q: dict[str, float]) -> float:
    """Total-variation distance ``½ Σ_a |p(a) - q(a)|`` between two answer distributions (NaN if one is empty)."""
    if not p or not q:
        return float("nan")
    return 0.5 * sum(abs(p.get(a, 0.0) - q.get(a, 0.0)) for a in set(p) | set(q))


def unfamiliar(r: Results) -> np.ndarray:
    """Questions the base model answered correctly in fewer than ``r.unfamiliar_accuracy`` of its k samples (the
    rule that picked the relabelled finetuning questions)."""
    return r.base_accuracy < r.unfamiliar_accuracy


def hedges(r: Results, kind: str) -> dict[str, dict[str, float]]:
    """The answer distributions of one kind's finetuning questions: all of them, the relabelled (unfamiliar) ones
    (the hedge P_hedged of standard SFT) and the others (familiar)."""
    ft = (~r.test) & (r.kind == kind)
    return {
        "all": distribution(r.answer[ft]),
        "unfamiliar": distribution(r.answer[ft & r.relabelled]),
        "familiar": distribution(r.answer[ft & ~r.relabelled]),
    }


def hedge_answers(r: Results, kind: str, idx: np.ndarray) -> dict[str, np.ndarray]:
    """False answers to the unfamiliar test questions of ``kind`` among ``idx``: the base model's (greedy,
    few-shot) and the standard SFT model's."""
    sel = idx[(r.kind[idx] == kind) & unfamiliar(r)[idx]]
    return {
        "base": r.base_answer[sel][r.base_grade[sel] == 0],
        "standard": r.answers["standard"][sel][r.grades["standard"][sel] == 0],
    }


def _weighted(pairs: list[tuple[float, int]]) -> float:
    """Mean of values weighted by counts, NaN values and zero counts left out."""
    kept = [(v, n) for v, n in pairs if n and np.isfinite(v)]
    return float(sum(v * n for v, n in kept) / sum(n for _, n in kept)) if kept else float("nan")


def relabelled_idk(r: Results) -> np.ndarray:
    """Whether the relabelled model answers "I don't know" to each finetuning question it was taught to."""
    return r.grades["relabelled"][r.relabelled] == 2


def statistics(r: Results) -> dict[str, float]:
    """Every claim's statistic in one replicate ``r``, by claim id: S0b on its relabelled finetuning questions, the
    others on its test questions binned by familiarity (:func:`levels`, bin 0 the least familiar)."""
    level = levels(r, r.bins)
    idx = np.flatnonzero(r.test)
    lv = level[idx]
    top = int(lv.max())

    def at(values: np.ndarray, b: int) -> float:
        sel = lv == b
        return float(values[sel].mean()) if sel.any() else float("nan")

    std, rel = r.grades["standard"][idx], r.grades["relabelled"][idx]
    closer, drift = [], []
    for kind in hedge_kinds(r):
        h, said = hedges(r, kind), hedge_answers(r, kind, idx)
        q_std, q_base = distribution(said["standard"]), distribution(said["base"])
        closer.append((tv(q_std, h["familiar"]) - tv(q_std, h["unfamiliar"]), len(said["standard"])))
        drift.append((tv(q_base, h["unfamiliar"]) - tv(q_std, h["unfamiliar"]), len(said["standard"])))
    idk = relabelled_idk(r)
    return {
        "S0a": at(r.base_accuracy[idx], top) - at(r.base_accuracy[idx], 0),
        "S0b": float(idk.mean()) if idk.size else float("nan"),
        "S1": _weighted(closer),
        "S1b": _weighted(drift),
        "S5": at(std == 0, 0) - at(std == 0, top),
        "S5b": at(rel == 2, 0) - at(rel == 2, top),
        "S5c": selective_accuracy(rel) - selective_accuracy(std),
    }


def s5c_floor(replicates: Sequence[Results]) -> float:
    """S5c's threshold: the mean over the replicates of each one's noise floor of (selective accuracy relabelled -
    standard) on its test questions (:func:`~steerlib.chapters.hallucination.common.selective_floor`: the 97.5% point
    of the difference when the two models' grades are swapped at random per question), as unfamiliar examples' C5c."""
    return float(
        np.mean([selective_floor(r.grades["relabelled"][r.test], r.grades["standard"][r.test]) for r in replicates])
    )


def levels(r: Results, bins: int) -> np.ndarray:
    """Every question's familiarity bin, cut on the test questions' NLL (finetuning questions: by the same edges)."""
    test_nll = r.base_nll[r.test]
    edges = np.quantile(test_nll, np.linspace(0, 1, bins + 1))[1:-1]
    out = bins - 1 - np.searchsorted(edges, r.base_nll, side="right")
    out[r.test] = familiarity_levels(test_nll, bins)
    return out


def bin_labels(r: Results, bins: int) -> list[str]:
    """One label per bin, least familiar first: the range of the base model's NLL of the answer."""
    lv, nll = levels(r, bins)[r.test], r.base_nll[r.test]
    return [f"NLL {nll[lv == b].min():.1f}-{nll[lv == b].max():.1f}" for b in range(bins)]


NO_HEDGE = (
    "not available for this source: no kind of question has answers that repeat, so the unfamiliar "
    "finetuning examples' answers form no distribution to hedge towards"
)

SPECS = (
    Spec(
        id="S0a",
        kind="prerequisite",
        statement="the base model's accuracy spans the familiarity bins",
        statistic="mean sampled accuracy of the base model in the most familiar of {bins} equal-count bins of its "
        "NLL of the answer minus in the least familiar (replicate 0: {hi} and {lo})",
        op=">",
        threshold=0.5,
        why="half the accuracy scale: the bins must separate what the model knows from what it does not",
        dissertation="Fig 3.1 setting",
    ),
    Spec(
        id="S0b",
        kind="prerequisite",
        statement='the relabelled model answers "I don\'t know" to most finetuning questions relabelled so',
        statistic='"I don\'t know" rate on the relabelled finetuning questions ({relabelled} in replicate 0)',
        op=">",
        threshold=0.5,
        why="a majority: otherwise the relabelling did not take and its effect cannot be judged",
        dissertation="Fig 3.1 setting",
    ),
    Spec(
        id="S1",
        statement="after standard SFT, false answers to unfamiliar questions follow the answers of the "
        "unfamiliar finetuning examples more than those of the familiar ones",
        statistic="TV(false answers, familiar examples' answers) - TV(false answers, unfamiliar examples' answers), "
        "pooled over {hedge_kinds} questions",
        op=">",
        threshold=0.0,
        why="0 is the rival account: the finetuning answers as a whole, familiar or not, set the default",
        dissertation="§3.4, Fig 3.3",
    ),
    Spec(
        id="S1b",
        statement="standard SFT moves the false answers to unfamiliar questions towards the unfamiliar "
        "finetuning examples' answers",
        statistic="TV(base model's false answers, unfamiliar examples' answers) - TV(SFT model's false answers, "
        "the same)",
        op=">",
        threshold=0.0,
        why="0: finetuning leaves the pretrained model's guesses as they were",
        dissertation="§3.4",
    ),
    Spec(
        id="S5",
        statement="standard SFT gives more false answers as questions grow unfamiliar",
        statistic="false-answer rate in the least familiar bin minus in the most familiar (replicate 0: {lo} and {hi})",
        op=">",
        threshold=0.3,
        why="the dissertation's false-answer rate rises by about 0.5 from familiar to unfamiliar",
        dissertation="Fig 3.1",
    ),
    Spec(
        id="S5b",
        statement='relabelled SFT says "I don\'t know" more as questions grow unfamiliar',
        statistic='"I don\'t know" rate in the least familiar bin minus in the most familiar (replicate 0: {lo} '
        "and {hi})",
        op=">",
        threshold=0.3,
        why="the dissertation's abstention rate rises by about as much as false answers do",
        dissertation="Fig 3.1",
    ),
    Spec(
        id="S5c",
        statement='relabelling raises the accuracy among answers that are not "I don\'t know"',
        statistic="selective accuracy relabelled minus standard, all test questions",
        op=">",
        threshold="the 97.5% point of the difference when the two models' grades are swapped at random per "
        "question (mean over the replicates)",
        why="the 97.5% point of the difference when the two models' grades are swapped at random per question",
        dissertation="Fig 3.1",
    ),
)


def measured(results: Results) -> dict[str, Measured]:
    """Every claim's value: its :func:`statistics`' mean over the replicates (``results`` and ``results.others``)
    with a prediction interval (:func:`~steerlib.measures.statistics.over_replicates`); S5c's threshold from
    :func:`s5c_floor`; the hedge (S1, S1b) not judged where no kind of question has repeated answers."""
    replicates = [results, *results.others]
    out = over_replicates([statistics(r) for r in replicates])
    out["S5c"] = dataclasses.replace(out["S5c"], threshold=round(s5c_floor(replicates), 3))
    if not hedge_kinds(results):
        out.update({cid: dataclasses.replace(out[cid], judged=False, note=NO_HEDGE) for cid in ("S1", "S1b")})
    return out


def context(results: Results) -> dict:
    """What the claims' texts name: the bins (replicate 0's NLL ranges), the hedged kinds, the relabelled count."""
    labels = bin_labels(results, results.bins)
    return {
        "bins": results.bins,
        "lo": labels[0],
        "hi": labels[-1],
        "hedge_kinds": ", ".join(hedge_kinds(results)) or "no",
        "relabelled": int(results.relabelled.sum()),
    }


def claims(results: Results) -> list[Claim]:
    """Prerequisites S0a, S0b; relabelling S5, S5b, S5c (C5 of the synthetic chapter, Fig 3.1); the hedge S1, S1b
    (C1 in spirit): :data:`SPECS` judged on :func:`measured`."""
    return make_claims(SPECS, measured(results), context=context(results))


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's correlation, NaN without a warning when either side is constant (e.g. a smoke model never right)."""
    return spearman(x, y) if len(x) > 2 and np.ptp(x) > 0 and np.ptp(y) > 0 else float("nan")


def correlations(r: Results) -> pd.DataFrame:
    """Per kind (and all kinds), Spearman's correlation of the three familiarity measures (two where the source has
    no population) with each other and with the base model's greedy correctness, over every question."""
    rows = {}
    for kind in (*kinds(r), "all"):
        sel = r.kind == kind if kind != "all" else np.ones(len(r.kind), dtype=bool)
        acc, nll = r.base_accuracy[sel], -r.base_nll[sel]
        right = (r.base_grade[sel] == 1).astype(float)
        row = {"sampled accuracy~correct": _rho(acc, right), "-NLL~correct": _rho(nll, right)}
        if has_population(r):
            pop = np.log10(r.population[sel])
            row = {
                "population~correct": _rho(pop, right),
                **row,
                "population~sampled accuracy": _rho(pop, acc),
                "population~-NLL": _rho(pop, nll),
            }
        rows[kind] = {**row, "n": int(sel.sum())}
    return pd.DataFrame(rows).T


def examples(r: Results, n: int = 3) -> pd.DataFrame:
    """The ``n`` most and least familiar test questions of each kind (by the base model's NLL of the answer) with
    the base model's answer and both finetuned models' answers (and the population, where the source has one)."""
    rows = []
    population = has_population(r)
    for kind in kinds(r):
        idx = np.flatnonzero(r.test & (r.kind == kind))
        order, m = idx[np.argsort(r.base_nll[idx], kind="stable")], min(n, len(idx) // 2)
        for label, picks in (("familiar", order[:m]), ("unfamiliar", order[::-1][:m])):
            rows += [
                {
                    "familiarity": label,
                    "kind": kind,
                    "subject": r.subject[i],
                    "answer": r.answer[i],
                    **({"population": int(r.population[i])} if population else {}),
                    "sampled accuracy": r.base_accuracy[i],
                    "NLL": round(float(r.base_nll[i]), 1),
                    "base (few-shot)": r.base_answer[i],
                    **{f"after {m} SFT": r.answers[m][i] for m in STAGES},
                }
                for i in picks
            ]
    return pd.DataFrame(rows)


def debiased_choice(logprobs: np.ndarray) -> np.ndarray:
    """Each row's choice once the model's preference for some letters is removed: ``argmax_k (log p_ik - mean_j
    log p_jk)``, the log-probability of letter k relative to its mean over all the questions."""
    logprobs = np.asarray(logprobs, dtype=float)
    return np.argmax(logprobs - logprobs.mean(axis=0, keepdims=True), axis=1)


def entities(r: Results) -> np.ndarray:
    """What each question is about (its normalised subject): questions about one entity (the capital and the
    continent of one country) are one cluster of a bootstrap over questions, not independent draws."""
    return np.array([normalize(str(s)) for s in r.subject], dtype=object)


def multiple_choice(r: Results, seed: int = 0) -> pd.DataFrame:
    """The base model's multiple-choice skill on the test questions of one replicate, by kind: accuracy of its most
    likely letter (chance 0.25) with a 95% bootstrap interval over the questions (those about one entity resampled
    together, :func:`entities`), the share of its most chosen letter, and the accuracy of :func:`debiased_choice`
    (the signal left once the letter preference is removed)."""
    rows, about = {}, entities(r)
    for kind in (*kinds(r), "all"):
        idx = np.flatnonzero(r.test & ((r.kind == kind) if kind != "all" else True))
        lp, right = r.choice_logprobs[idx], r.choice_right[idx]
        hit, counts = lp.argmax(axis=1) == right, np.bincount(lp.argmax(axis=1), minlength=len(LETTERS))
        interval = (
            bootstrap_interval(np.mean, hit.astype(float), n_boot=N_BOOT, seed=seed, clusters=about[idx])
            if len(idx)
            else (float("nan"), float("nan"))
        )
        rows[kind] = {
            "questions": len(idx),
            "accuracy": hit.mean(),
            "interval": interval,
            "most chosen letter": LETTERS[counts.argmax()],
            "its share": counts.max() / len(idx),
            "debiased accuracy": (debiased_choice(lp) == right).mean(),
        }
    return pd.DataFrame(rows).T


def extra(results: Results) -> dict:
    """The numbers kept in metrics.json: rates by familiarity bin, familiarity correlations, sizes and times (of
    replicate 0) and every claim's statistic at every replicate."""
    r, bins = results, results.bins
    level = levels(r, bins)
    test = r.test
    base_acc = [float(r.base_accuracy[test & (level == b)].mean()) for b in range(bins)]
    return {
        "bins": bin_labels(r, bins),
        "questions": {
            k: {"finetune": int(((r.kind == k) & ~test).sum()), "test": int(((r.kind == k) & test).sum())}
            for k in kinds(r)
        },
        "relabelled_fraction": round(float(r.relabelled[~test].mean()), 3),
        "base_sampled_accuracy": np.round(base_acc, 3).tolist(),
        **{f"rates_{m}": rates(r.grades[m][test], level[test], bins).round(3).tolist() for m in STAGES},
        "base_rates": rates(r.base_grade[test], level[test], bins).round(3).tolist(),
        **{f"selective_accuracy_{m}": round(selective_accuracy(r.grades[m][test]), 3) for m in STAGES},
        "spearman": {k: {c: round(float(v), 3) for c, v in row.items()} for k, row in correlations(r).iterrows()},
        "final_loss": {m: round(float(np.mean(r.losses[m][-5:])), 4) for m in STAGES},
        "multiple_choice": {
            k: {
                "accuracy": round(float(row["accuracy"]), 3),
                "debiased_accuracy": round(float(row["debiased accuracy"]), 3),
                "most_chosen_share": round(float(row["its share"]), 3),
            }
            for k, row in multiple_choice(r).iterrows()
        },
        "seconds": {k: round(v, 1) for k, v in r.seconds.items()},
        "replicate_values": {o.replicate: {k: round(v, 3) for k, v in statistics(o).items()} for o in [r, *r.others]},
    }
