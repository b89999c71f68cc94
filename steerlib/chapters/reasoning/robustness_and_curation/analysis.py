"""The analysis: per-example robustness against pre-memorization accuracy (H6), test accuracy against added examples
per curation method (H7); then the claims (:data:`SPECS`, judged on the mean over replicates of each replicate's
:func:`statistics`) and metrics.json's numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from steerlib.chapters.reasoning.robustness_and_curation.experiment import Results
from steerlib.core.claims import Claim, Measured, Spec, make_claims
from steerlib.measures import curation, premem
from steerlib.measures.statistics import over_replicates, spearman

EDGES = np.array([0.0, 0.25, 0.5, 0.75, 1.0])  # bins of pre-memorization (or train) accuracy, Fig 4.7
NEAR_ONE = 0.9  # "train accuracy near 1"


def robust_table(r: Results) -> pd.DataFrame:
    """One row per (robustness run, train example) with a forced opening: pre-memorization accuracy and plain train
    accuracy at the last checkpoint, unperturbed and perturbed accuracy (k_final samples), their difference (drop),
    and the number of events."""
    frames = []
    for i, (spec, log) in enumerate(zip(r.robust_specs, r.robust)):
        keep = log.has_opening
        frames.append(
            pd.DataFrame(
                {
                    "run": i,
                    "lr": spec.lr,
                    "premem": premem.premem_accuracy(log.acc, log.perp, r.p)[-1][keep],
                    "train_acc": log.acc[-1][keep],
                    "final_acc": log.final_acc[keep],
                    "perturbed": log.perturbed_acc[keep],
                    "drop": (log.final_acc - log.perturbed_acc)[keep],
                    "events": log.events[keep],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def low_minus_high(score, drop) -> float:
    """Mean drop in the lowest non-empty bin of ``score`` (EDGES) minus that in the highest one."""
    means = curation.bin_means(score, drop, EDGES)
    means = means[np.isfinite(means)]
    return float(means[0] - means[-1]) if len(means) >= 2 else float("nan")


def _h6c(x, control, drop) -> float:
    return -spearman(x, drop) - abs(spearman(control, drop))


def curves(r: Results) -> dict[str, np.ndarray]:
    """Method -> (replicates, rounds + 1) test accuracy at each replicate of ``r`` (its own and its ``others``)."""
    every = [r, *r.others]
    return {m: np.stack([o.test_acc[m] for o in every]) for m in r.test_acc}


def _rivals(acc: dict[str, np.ndarray]) -> np.ndarray:
    """Round-by-round best of the IFD and heuristic curves (NaN if neither ran)."""
    rivals = [acc[m] for m in ("ifd", "heuristic") if m in acc]
    return np.max(rivals, axis=0) if rivals else np.full_like(acc["iid"], np.nan)


def h7_stats(added: np.ndarray, acc: dict[str, np.ndarray]) -> tuple[float, float]:
    """(H7, H7b) of one set of curves (method -> (rounds + 1,)): the efficiency ratio of premem over iid, and the
    mean over rounds 1..n of premem minus the better of IFD and the heuristic."""
    ratio = curation.efficiency_ratio(added, acc["premem"], acc["iid"]) if "premem" in acc else float("nan")
    ahead = float(np.mean((acc["premem"] - _rivals(acc))[1:])) if "premem" in acc else float("nan")
    return ratio, ahead


def statistics(r: Results) -> dict[str, float]:
    """H6pre, H6, H6b, H6c, H6d on this replicate's robustness runs and H7pre, H7, H7b on its curation curves (see
    :data:`SPECS`), and the share of D below t in round 0."""
    t = robust_table(r)
    ratio, ahead = h7_stats(r.added, r.test_acc)
    share = float(r.flagged[0]) if len(r.flagged) else float("nan")
    return {
        "H6pre": float(np.mean([log.final_acc.mean() for log in r.robust])),
        "H6": spearman(t["premem"], t["drop"]),
        "H6b": low_minus_high(t["premem"], t["drop"]),
        "H6c": _h6c(t["premem"], t["train_acc"], t["drop"]),
        "H6d": float(t["drop"].mean()),
        "H7pre": min(share, 1 - share),
        "H7": ratio,
        "H7b": ahead,
        "share_below_t": share,
    }


def noise_floors(r: Results) -> tuple[float, float]:
    """H6's and H6b's noise floors on this replicate's robustness runs: the 95th percentile of |statistic| with the
    pre-memorization accuracies shuffled (:func:`~steerlib.measures.curation.shuffle_floor`)."""
    t = robust_table(r)
    x, drop = t["premem"].to_numpy(), t["drop"].to_numpy()
    return curation.shuffle_floor(spearman, x, drop), curation.shuffle_floor(low_minus_high, x, drop)


SPECS = (  # each prerequisite gates its own experiment's claims
    Spec(
        id="H6pre",
        kind="prerequisite",
        statement="the robustness runs end with train accuracy near 1",
        statistic="mean unperturbed train accuracy at the end",
        op=">=",
        threshold=NEAR_ONE,
        why="the dissertation perturbs models whose unperturbed train accuracy is near-perfect (Fig 4.6)",
        gates=("H6", "H6b", "H6c", "H6d"),
        dissertation="Fig 4.6",
    ),
    Spec(
        id="H6",
        statement="the accuracy drop under a forced valid opening falls as pre-memorization accuracy rises",
        statistic="Spearman ρ(pre-memorization acc., drop) over train examples",
        op="<",
        threshold="minus the noise floor",
        why="below minus the noise floor {floor}: the 95th percentile of |ρ| "
        "with shuffled pre-memorization accuracies (mean over replicates)",
        dissertation="Fig 4.7: drop far larger at low pre-memorization accuracy",
    ),
    Spec(
        id="H6b",
        statement="examples with low pre-memorization accuracy drop more than those with high",
        statistic="mean drop in the lowest minus the highest occupied bin of pre-memorization acc. (edges "
        "0/.25/.5/.75/1)",
        op=">",
        threshold="the noise floor",
        why="above the noise floor {floor}: the 95th "
        "percentile of that difference with shuffled accuracies (mean over replicates)",
        dissertation="Fig 4.7 (bin means)",
    ),
    Spec(
        id="H6c",
        statement="pre-memorization accuracy orders the drop better than plain train accuracy does",
        statistic="-ρ(pre-memorization acc., drop) - |ρ(train acc., drop)|",
        op=">",
        threshold=0.0,
        why="the rival (plain train accuracy explains the drop as well) predicts at most 0",
        dissertation="section 4.5",
    ),
    Spec(
        id="H6d",
        statement="a forced valid opening lowers the train accuracy of near-perfect models overall",
        statistic="mean drop (unperturbed - perturbed accuracy) over the train examples with an opening",
        op=">",
        threshold=0.1,
        why="the spec's own bar for 'significantly degrades': a tenth of accuracy, against the rival that a model "
        "which solves its training problems does not mind a valid opening (a drop of 0); the mean over hundreds of "
        "examples has a sampling noise of a few hundredths",
        dissertation="Fig 4.7: near-perfect on the original prompts, much lower with perturbations",
    ),
    Spec(
        id="H7pre",
        kind="prerequisite",
        statement="in the first round enough examples fall below t for curation to differ from i.i.d. sampling",
        statistic="min(share below t, share above) of D in round 0 (share below t: {share}, mean over replicates)",
        op=">=",
        threshold=0.1,
        why="at least a tenth of D flagged, and a tenth not: otherwise the method adds examples like all or none of D",
        gates=("H7", "H7b"),
        dissertation="Algorithm 1, t = 0.75",
    ),
    Spec(
        id="H7",
        statement="curation by pre-memorization accuracy needs fewer added examples than i.i.d. sampling "
        "to reach the same test accuracy",
        statistic="sample-efficiency ratio (i.i.d. / curation) at equal test accuracy",
        op=">=",
        threshold=1.5,
        why="the dissertation's lower figure (1.5x on MATH; 2x on GSM8K)",
        dissertation="about 2x (GSM8K), 1.5x (MATH)",
    ),
    Spec(
        id="H7b",
        statement="curation by pre-memorization accuracy is ahead of IFD and the step-count heuristic",
        statistic="mean over rounds 1..n of test acc. (curation - better of IFD and heuristic)",
        op=">",
        threshold=0.0,
        why="the rivals select as well if the difference is at most 0",
        dissertation="Fig 4.8",
    ),
)
UNDEFINED = {"H7": "neither curve rises above round 0's accuracy at the common level, so no ratio is defined"}


def measured(results: Results) -> dict[str, Measured]:
    """Every claim's value: the mean over the replicates (``results`` and its ``others``) of :func:`statistics`, with
    a prediction interval for a rerun (:func:`~steerlib.measures.statistics.over_replicates`); H6's and H6b's
    thresholds are the mean over replicates of :func:`noise_floors`. A claim whose statistic is undefined at every
    replicate is not judged."""
    every = [results, *results.others]
    per = [statistics(o) for o in every]
    out = over_replicates([{k: v for k, v in values.items() if k != "share_below_t"} for values in per])
    rho, bins = (round(float(v), 3) for v in np.nanmean([noise_floors(o) for o in every], axis=0))
    thresholds = {"H6": (-rho, rho), "H6b": (bins, bins)}
    for cid, m in out.items():
        judged = bool(np.isfinite(m.value))
        threshold, floor = thresholds.get(cid, (None, None))
        out[cid] = dataclasses.replace(
            m,
            judged=judged,
            threshold=threshold,
            context={"floor": floor},
            note=m.note if judged else UNDEFINED.get(cid, "the statistic is undefined here"),
        )
    return out


def claims(results: Results) -> list[Claim]:
    """H6 (robustness) and H7 (curation): each the mean over replicates of its statistic on that replicate, with a
    prediction interval; each prerequisite gates its own experiment's claims."""
    share = float(np.nanmean([statistics(o)["share_below_t"] for o in (results, *results.others)]))
    return make_claims(SPECS, measured(results), context={"share": f"{share:.2f}"})


def bin_labels() -> list[str]:
    """The bins of :data:`EDGES` as intervals: ``[0, 0.25)`` .. ``[0.75, 1]``."""
    return [f"[{a:.2g}, {b:.2g}{']' if b == EDGES[-1] else ')'}" for a, b in zip(EDGES[:-1], EDGES[1:])]


def drop_table(r: Results) -> pd.DataFrame:
    """Mean drop per bin of pre-memorization accuracy and of plain train accuracy, and the examples per
    pre-memorization bin, at ``r``'s replicate (NaN for an empty bin)."""
    tab = robust_table(r)
    return pd.DataFrame(
        {
            "pre-memorization acc.": curation.bin_means(tab["premem"], tab["drop"], EDGES),
            "train acc.": curation.bin_means(tab["train_acc"], tab["drop"], EDGES),
            "examples (pre-mem. bins)": np.histogram(tab["premem"], EDGES)[0],
        },
        index=bin_labels(),
    ).rename_axis("mean drop by bin")


def extra(results: Results) -> dict:
    """Numbers for metrics.json: bin means of the drop and correlations (replicate 0), curves per method (mean and
    per replicate), efficiency ratios per replicate, shares below t per round, events of added problems (replicate
    0), every replicate's statistics, timings."""
    r = results
    tab, bins = robust_table(r), drop_table(r)
    acc = curves(r)
    return {
        "robust_examples": len(tab),
        "drop_by_premem_bin": bins["pre-memorization acc."].round(3).tolist(),
        "drop_by_train_bin": bins["train acc."].round(3).tolist(),
        "examples_by_premem_bin": bins["examples (pre-mem. bins)"].tolist(),
        "mean_drop": round(float(tab["drop"].mean()), 3),
        "spearman_premem_drop": round(spearman(tab["premem"], tab["drop"]), 3),
        "spearman_train_drop": round(spearman(tab["train_acc"], tab["drop"]), 3),
        "added": r.added.tolist(),
        "test_acc_mean": {m: np.round(a.mean(0), 4).tolist() for m, a in acc.items()},
        "test_acc_by_replicate": {m: np.round(a, 4).tolist() for m, a in acc.items()},
        "efficiency_ratio_by_replicate": [round(h7_stats(o.added, o.test_acc)[0], 3) for o in [r, *r.others]],
        "share_below_t_by_round": {o.replicate: np.round(o.flagged, 3).tolist() for o in [r, *r.others]},
        "mean_events_added": {m: round(float(v.mean()), 3) for m, v in r.added_events.items()},
        "replicate_values": {o.replicate: {k: round(v, 3) for k, v in statistics(o).items()} for o in [r, *r.others]},
        "seconds": {k: round(v, 1) for k, v in r.seconds.items()},
    }
