"""The analysis: per-example robustness against pre-memorization accuracy (H6), test accuracy against added examples
per curation method (H7); then the claims and metrics.json's numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd

from steerlib.chapters.reasoning.robustness_and_curation.experiment import Results
from steerlib.core.claims import Claim, with_seeds
from steerlib.measures import curation, premem
from steerlib.measures.statistics import bootstrap_interval, spearman

EDGES = np.array([0.0, 0.25, 0.5, 0.75, 1.0])  # bins of pre-memorization (or train) accuracy, Fig 4.7
N_BOOT = 300
NEAR_ONE = 0.9  # "train accuracy near 1"


def robust_table(r: Results) -> pd.DataFrame:
    """One row per (robustness run, train example) with a forced opening: pre-memorization accuracy and plain train
    accuracy at the last checkpoint, unperturbed and perturbed accuracy (k_final samples), their difference (drop),
    and the number of events."""
    frames = []
    for i, (spec, log) in enumerate(zip(r.robust_specs, r.robust)):
        keep = log.has_opening
        frames.append(pd.DataFrame({
            "run": i, "lr": spec.lr, "premem": premem.premem_accuracy(log.acc, log.perp, r.p)[-1][keep],
            "train_acc": log.acc[-1][keep], "final_acc": log.final_acc[keep], "perturbed": log.perturbed_acc[keep],
            "drop": (log.final_acc - log.perturbed_acc)[keep], "events": log.events[keep]}))
    return pd.concat(frames, ignore_index=True)


def low_minus_high(score, drop) -> float:
    """Mean drop in the lowest non-empty bin of ``score`` (EDGES) minus that in the highest one."""
    means = curation.bin_means(score, drop, EDGES)
    means = means[np.isfinite(means)]
    return float(means[0] - means[-1]) if len(means) >= 2 else float("nan")


def _h6c(x, control, drop) -> float:
    return -spearman(x, drop) - abs(spearman(control, drop))


def curves(r: Results) -> dict[str, np.ndarray]:
    """Method -> (seeds, rounds + 1) test accuracy at each seed of ``r`` (its own and its ``others``)."""
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
    """H6pre, H6, H6b, H6c at this seed (robustness) and H7pre, H7, H7b on this seed's curves."""
    t = robust_table(r)
    ratio, ahead = h7_stats(r.added, r.test_acc)
    share = float(r.flagged[0]) if len(r.flagged) else float("nan")
    return {"H6pre": float(np.mean([log.final_acc.mean() for log in r.robust])),
            "H6": spearman(t["premem"], t["drop"]), "H6b": low_minus_high(t["premem"], t["drop"]),
            "H6c": _h6c(t["premem"], t["train_acc"], t["drop"]),
            "H7pre": min(share, 1 - share), "H7": ratio, "H7b": ahead, "share_below_t": share}


def _range(values) -> tuple[float, float] | None:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if len(v) else None


def claims(results: Results) -> list[Claim]:
    """H6 (robustness) with 95% bootstrap intervals over train examples widened to the other seeds' values, and
    H7 (curation) on the curves averaged over seeds with their spread over seeds."""
    r = results
    tab = robust_table(r)
    x, ctrl, drop = (tab[c].to_numpy() for c in ("premem", "train_acc", "drop"))
    values = statistics(r)
    others = {o.seed: statistics(o) for o in r.others}
    floor_rho = round(curation.shuffle_floor(spearman, x, drop), 3)
    floor_bins = round(curation.shuffle_floor(low_minus_high, x, drop), 3)
    boot = {"H6": bootstrap_interval(spearman, x, drop, n_boot=N_BOOT),
            "H6b": bootstrap_interval(low_minus_high, x, drop, n_boot=N_BOOT),
            "H6c": bootstrap_interval(_h6c, x, ctrl, drop, n_boot=N_BOOT)}
    examples = f"95% bootstrap over the {len(tab)} train examples of the robustness runs ({N_BOOT} resamples)"
    runs_note = f"mean over the {len(r.robust)} robustness runs; zero width (a set-up check)"
    mean = {m: a.mean(0) for m, a in curves(r).items()}
    ratio, ahead = h7_stats(r.added, mean)
    seeds = [r, *r.others]
    per_seed = [h7_stats(o.added, o.test_acc) for o in seeds]
    share = float(np.mean([o.flagged[0] for o in seeds]))
    spread = f"range over the {len(seeds)} seeds' own values (curves averaged over seeds for the value)"
    specs = [
        ("H6pre", "prerequisite", "the robustness runs end with train accuracy near 1",
         "mean unperturbed train accuracy at the end", ">=", NEAR_ONE, values["H6pre"], None, runs_note,
         "the dissertation perturbs models whose unperturbed train accuracy is near-perfect (Fig 4.6)", "Fig 4.6"),
        ("H6", "evidence", "the accuracy drop under a forced valid opening falls as pre-memorization accuracy rises",
         "Spearman ρ(pre-memorization acc., drop) over train examples", "<", -floor_rho, values["H6"], boot["H6"],
         examples, f"below minus the noise floor {floor_rho}: the 95th percentile of |ρ| with shuffled "
         "pre-memorization accuracies", "Fig 4.7: drop far larger at low pre-memorization accuracy"),
        ("H6b", "evidence", "examples with low pre-memorization accuracy drop more than those with high",
         "mean drop in the lowest minus the highest occupied bin of pre-memorization acc. (edges 0/.25/.5/.75/1)",
         ">", floor_bins, values["H6b"], boot["H6b"], examples,
         f"above the noise floor {floor_bins}: the 95th percentile of that difference with shuffled accuracies",
         "Fig 4.7 (bin means)"),
        ("H6c", "evidence", "pre-memorization accuracy orders the drop better than plain train accuracy does",
         "-ρ(pre-memorization acc., drop) - |ρ(train acc., drop)|", ">", 0.0, values["H6c"], boot["H6c"], examples,
         "the rival (plain train accuracy explains the drop as well) predicts at most 0", "section 4.5"),
        ("H7pre", "prerequisite", "in the first round enough examples fall below t for curation to differ from "
         "i.i.d. sampling", f"min(share below t, share above) of D in round 0 (share below t: {share:.2f}, mean "
         "over seeds)", ">=", 0.1, min(share, 1 - share), _range([min(v, 1 - v) for v in
                                                                  (o.flagged[0] for o in seeds)]), spread,
         "at least a tenth of D flagged, and a tenth not: otherwise the method adds examples like all or none of D",
         "Algorithm 1, t = 0.75"),
        ("H7", "evidence", "curation by pre-memorization accuracy needs fewer added examples than i.i.d. sampling to "
         "reach the same test accuracy", "sample-efficiency ratio (i.i.d. / curation) at equal test accuracy", ">=",
         1.5, ratio, _range([v for v, _ in per_seed]), spread,
         "the dissertation's lower figure (1.5x on MATH; 2x on GSM8K)", "about 2x (GSM8K), 1.5x (MATH)"),
        ("H7b", "evidence", "curation by pre-memorization accuracy is ahead of IFD and the step-count heuristic",
         "mean over rounds 1..n of test acc. (curation - better of IFD and heuristic)", ">", 0.0, ahead,
         _range([v for _, v in per_seed]), spread, "the rivals select as well if the difference is at most 0",
         "Fig 4.8"),
    ]
    out = []
    for cid, kind, statement, statistic, op, threshold, value, interval, how, why, paper in specs:
        judged = bool(np.isfinite(value))
        note = "" if judged else ("neither curve rises above round 0's accuracy at the common level, so no ratio "
                                  "is defined" if cid == "H7" else "the statistic is undefined here")
        gates = tuple(c[0] for c in specs if c[1] == "evidence" and c[0][:2] == cid[:2]) if kind == "prerequisite" else ()
        claim = Claim(cid, statement, statistic, value, op, threshold, paper, kind, why, interval, how, judged, note,
                      gates=gates)  # each prerequisite gates its own experiment's claims
        out.append(with_seeds(claim, {s: v[cid] for s, v in others.items()}) if cid.startswith("H6") else claim)
    return out


def bin_labels() -> list[str]:
    """The bins of :data:`EDGES` as intervals: ``[0, 0.25)`` .. ``[0.75, 1]``."""
    return [f"[{a:.2g}, {b:.2g}{']' if b == EDGES[-1] else ')'}" for a, b in zip(EDGES[:-1], EDGES[1:])]


def drop_table(r: Results) -> pd.DataFrame:
    """Mean drop per bin of pre-memorization accuracy and of plain train accuracy, and the examples per
    pre-memorization bin, at ``r``'s seed (NaN for an empty bin)."""
    tab = robust_table(r)
    return pd.DataFrame({"pre-memorization acc.": curation.bin_means(tab["premem"], tab["drop"], EDGES),
                         "train acc.": curation.bin_means(tab["train_acc"], tab["drop"], EDGES),
                         "examples (pre-mem. bins)": np.histogram(tab["premem"], EDGES)[0]},
                        index=bin_labels()).rename_axis("mean drop by bin")


def extra(results: Results) -> dict:
    """Numbers for metrics.json: bin means of the drop, correlations, curves per method (mean and per seed),
    efficiency ratios per seed, shares below t per round, events of added problems, timings."""
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
        "test_acc_by_seed": {m: np.round(a, 4).tolist() for m, a in acc.items()},
        "efficiency_ratio_by_seed": [round(h7_stats(o.added, o.test_acc)[0], 3) for o in [r, *r.others]],
        "share_below_t_by_round": {o.seed: np.round(o.flagged, 3).tolist() for o in [r, *r.others]},
        "mean_events_added": {m: round(float(v.mean()), 3) for m, v in r.added_events.items()},
        "seed_values": {o.seed: {k: round(v, 3) for k, v in statistics(o).items()} for o in [r, *r.others]},
        "seconds": {k: round(v, 1) for k, v in r.seconds.items()},
    }
