"""The analysis of the grid (:func:`analyse`, computed once per Results): the calibrated threshold p, one row per run
and checkpoint, the transfer tests of p and the prior metrics; then the claims (:data:`SPECS`, judged on the mean over
replicates of each replicate's :func:`statistics`) and metrics.json's numbers (replicate 0's, and every replicate's
statistics)."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd

from steerlib.chapters.reasoning.pre_memorization.experiment import Results
from steerlib.core.claims import Claim, Measured, Spec, make_claims
from steerlib.measures import premem
from steerlib.measures.statistics import over_replicates

P_GRID = np.round(np.arange(1.005, 1.3 + 1e-9, 0.005), 3)  # memorization thresholds swept (perplexity > 1)
STATES = ("incorrect", "correct, not memorized", "memorized")
P_DEPENDENT = ("H2", "H2b", "H3", "H4a", "H4b", "H4c", "H5", "H5b", "H8b")  # the claims whose statistic depends on p
NOT_IDENTIFIED = "p is not identified: R² on y = x does not depend on p (nothing is memorized)"
PRIORS = {
    "premem": "pre-memorization train acc.",
    "train_acc": "train accuracy",
    "grad_var": "gradient variance",
    "dist_init": "distance from init.",
    "atc": "ATC",
}


def reference_run(r: Results) -> int:
    """ATC's reference run: the full-data run with the middle learning rate and the middle number of epochs."""
    full = [i for i, s in enumerate(r.specs) if s.fraction == 1.0]
    lrs, epochs = sorted({r.specs[i].lr for i in full}), sorted({r.specs[i].epochs for i in full})
    mid = (lrs[len(lrs) // 2], epochs[len(epochs) // 2])
    return next(i for i in full if (r.specs[i].lr, r.specs[i].epochs) == mid)


def map_runs(r: Results) -> list[int]:
    """The runs shown as state maps: full data, most epochs, one per learning rate."""
    most = max(s.epochs for s in r.specs if s.fraction == 1.0)
    return [i for i, s in enumerate(r.specs) if s.fraction == 1.0 and s.epochs == most]


def points(r: Results, p: float) -> pd.DataFrame:
    """One row per (run, checkpoint): run index, spec, train / pre-memorization / test accuracy, memorized
    fraction, where the min term binds, and the prior metrics (ATC thresholded on the reference run)."""
    frames = []
    for i, (spec, log) in enumerate(zip(r.specs, r.logs)):
        acc, perp = log.train_acc, log.train_perp
        frames.append(
            pd.DataFrame(
                {
                    "run": i,
                    "lr": spec.lr,
                    "epochs": spec.epochs,
                    "fraction": spec.fraction,
                    "checkpoint": np.arange(len(acc)),
                    "train_acc": acc.mean(1),
                    "premem": premem.premem_accuracy(acc, perp, p).mean(1),
                    "test_acc": log.test_acc.mean(1),
                    "memorized": premem.memorized(perp, p).mean(1),
                    "min_binds": premem.min_binds(acc, perp, p).mean(1),
                    "grad_var": log.grad_var,
                    "dist_init": log.dist_init,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    ref = r.logs[reference_run(r)]
    threshold = premem.atc_threshold(ref.train_conf[-1], ref.test_acc[-1].mean())
    out["atc"] = np.concatenate([[premem.atc_predict(c, threshold) for c in log.train_conf] for log in r.logs])
    return out


def states(acc: np.ndarray, perp: np.ndarray, p: float) -> np.ndarray:
    """(N, C) state of each train example at each checkpoint, from its (C, N) accuracy and target perplexity:
    2 memorized (Perp ≤ p), else 1 if at least half of its samples are correct, else 0 (indices into STATES)."""
    return np.where(premem.memorized(perp, p), 2, (acc >= 0.5).astype(int)).T


def correct_first_share(acc: np.ndarray, perp: np.ndarray, p: float) -> tuple[float, int]:
    """Among examples memorized at the last checkpoint, the share that were correct but not memorized at an
    earlier checkpoint (the path "correct with another trace → memorized", :func:`progressions`), and how many
    examples were memorized."""
    _, direct, solved_first = progressions(acc, perp, p).T
    done = direct | solved_first
    return (float(solved_first[done].mean()), int(done.sum())) if done.any() else (0.0, 0)


def progressions(acc: np.ndarray, perp: np.ndarray, p: float) -> np.ndarray:
    """(N, 3) one-hot path of each train example through Fig 4.2's states by the last checkpoint: not memorized;
    memorized without having been correct before (incorrect -> memorized); correct with another trace, then
    memorized (the path of :func:`correct_first_share`)."""
    st = states(acc, perp, p)
    done = st[:, -1] == 2
    first_memo = np.argmax(st == 2, axis=1)
    before = np.array([(row[:m] == 1).any() for row, m in zip(st, first_memo)])
    return np.stack([~done, done & ~before, done & before], axis=1)


def premem_table(r: Results) -> np.ndarray:
    """(P, R, C) mean pre-memorization accuracy of every run R at every checkpoint C, for each p of P_GRID."""
    return np.array(
        [[premem.premem_accuracy(log.train_acc, log.train_perp, p).mean(1) for log in r.logs] for p in P_GRID]
    )


def r2_rows(table: np.ndarray, test: np.ndarray) -> np.ndarray:
    """R² on y = x of ``table`` (P, R, C) against ``test`` (R, C), over all runs and checkpoints, for each p."""
    x, y = table.reshape(len(table), -1), test.ravel()
    return 1 - ((x - y) ** 2).sum(1) / ((y - y.mean()) ** 2).sum()


def calibration_runs(final_test: np.ndarray, memorizing: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` runs to calibrate p on, as appendix C prescribes: runs that memorise, one from each of ``n`` strata of
    final test accuracy (so they spread in test accuracy); any runs if fewer than ``n`` memorise."""
    pool = np.flatnonzero(memorizing) if memorizing.sum() >= n else np.arange(len(final_test))
    strata = np.array_split(pool[np.argsort(final_test[pool], kind="stable")], n)
    return np.array([rng.choice(s) for s in strata])


def transfer_runs(
    r: Results, table: np.ndarray, final: pd.DataFrame, n_cal: int, repeats: int = 20, seed: int = 0
) -> np.ndarray:
    """(repeats, 2): R² on the held-out runs at p calibrated on ``n_cal`` runs (:func:`calibration_runs`), and at
    the held-out runs' own best p."""
    rng, n = np.random.default_rng(seed), len(r.logs)
    test = np.stack([log.test_acc.mean(1) for log in r.logs])
    memorizing = final["memorized"].to_numpy() >= 0.5
    out = []
    for _ in range(repeats):
        cal = calibration_runs(final["test_acc"].to_numpy(), memorizing, n_cal, rng)
        rest = np.setdiff1d(np.arange(n), cal)
        p_hat = int(np.argmax(r2_rows(table[:, cal], test[cal])))
        curve = r2_rows(table[:, rest], test[rest])
        out.append((curve[p_hat], curve.max()))
    return np.array(out)


def transfer_halves(r: Results, table: np.ndarray, repeats: int = 20, seed: int = 0) -> np.ndarray:
    """(repeats, 3): p calibrated on a random half A of the test problems, R² on half B at that p, and at half B's
    own best p."""
    rng, out = np.random.default_rng(seed), []
    n_test = r.logs[0].test_acc.shape[1]
    for _ in range(repeats):
        half = rng.permutation(n_test) < n_test // 2
        test_a, test_b = (np.stack([log.test_acc[:, m].mean(1) for log in r.logs]) for m in (half, ~half))
        p_a = int(np.argmax(r2_rows(table, test_a)))
        curve_b = r2_rows(table, test_b)
        out.append((P_GRID[p_a], curve_b[p_a], curve_b.max()))
    return np.array(out)


def plateau_width(curve: np.ndarray, drop: float = 0.05) -> float:
    """Width, in log-log units of p (Fig C.1's axis), of the run of neighbouring grid points around the best p where
    R² stays within ``drop`` of its maximum: a single noisy grid point cannot decide it, a plateau can."""
    best = int(np.argmax(curve))
    inside = curve >= curve[best] - drop
    lo, hi = best, best
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    while hi < len(curve) - 1 and inside[hi + 1]:
        hi += 1
    return float(premem.loglog(P_GRID[hi]) - premem.loglog(P_GRID[lo]))


@dataclasses.dataclass
class Analysis:
    """What the claims, metrics.json and the figures share; p is calibrated on all runs."""

    p: float  # the p of P_GRID with the best R² on y = x of pre-memorization vs test accuracy
    identified: bool  # False when R² does not depend on p (nothing memorised: p is not identified)
    p_note: str  # why p is not identified ("" when it is; p is then P_GRID[0], a stand-in for the figures)
    table: np.ndarray  # premem_table(results)
    curve: np.ndarray  # (len(P_GRID),) that R² at each p; its maximum is the R² at p
    r2_train: float  # R² on y = x of train accuracy vs test accuracy
    points: pd.DataFrame  # points(results, p)
    final: pd.DataFrame  # its rows at the last checkpoint of each run
    correlations: dict[str, float]  # Pearson r with test accuracy of each metric of PRIORS
    gap_correlations: dict[str, float]  # Pearson r with the generalisation gap (train - test accuracy), Fig 4.5
    map_runs: list[int]  # map_runs(results)
    correct_first: dict[str, tuple[float, int]]  # run name -> correct_first_share, for the map runs
    transfer_runs: dict[int, np.ndarray]  # n -> transfer_runs(results, n) for n = 1, 2, 3 (at most all runs but one)
    transfer_halves: np.ndarray  # transfer_halves(results)


def _gap_predictors(pts: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each metric as a predictor of the generalisation gap: ours is train - pre-memorization accuracy (the gap it
    predicts); the prior metrics are taken as they are (Fig 4.5 plots them against the gap)."""
    return {
        k: (pts["train_acc"] - pts["premem"] if k == "premem" else pts[k]).to_numpy()
        for k in PRIORS
        if k != "train_acc"
    }


@functools.lru_cache(maxsize=4)
def analyse(r: Results) -> Analysis:
    """The :class:`Analysis` of ``r``, computed once per Results (the last few analysed are kept)."""
    table = premem_table(r)
    test = np.stack([log.test_acc.mean(1) for log in r.logs])
    curve = r2_rows(table, test)
    identified = bool(np.isfinite(curve).all() and np.ptp(curve) > 1e-9)
    p = float(P_GRID[int(np.argmax(curve))]) if identified else float(P_GRID[0])
    pts = points(r, p)
    final = pts.groupby("run").tail(1)
    maps = map_runs(r)
    gap = (pts["train_acc"] - pts["test_acc"]).to_numpy()
    return Analysis(
        p=p,
        identified=identified,
        p_note="" if identified else NOT_IDENTIFIED,
        table=table,
        curve=curve,
        r2_train=premem.r2_identity(pts["train_acc"], pts["test_acc"]),
        points=pts,
        final=final,
        correlations={k: premem.pearson(pts[k], pts["test_acc"]) for k in PRIORS},
        gap_correlations={k: premem.pearson(v, gap) for k, v in _gap_predictors(pts).items()},
        map_runs=maps,
        correct_first={
            r.specs[i].name: correct_first_share(r.logs[i].train_acc, r.logs[i].train_perp, p) for i in maps
        },
        transfer_runs={n: transfer_runs(r, table, final, min(n, len(r.logs) - 1)) for n in (1, 2, 3)},
        transfer_halves=transfer_halves(r, table),
    )


# ------------------------------------------------------------------------------------------------------ claims

SPECS = (
    Spec(
        id="H1",
        statement="train accuracy does not predict test accuracy",
        statistic="R² of (train acc., test acc.) on y = x",
        op="<",
        threshold=0.5,
        why="at most half the variance explained, far from the ~0.9 of pre-memorization accuracy (Fig 4.1)",
        dissertation="Fig 4.1: train acc. ≈ 1, R² low",
    ),
    Spec(
        id="H1b",
        statement="runs that fit the train set (final train acc. ≥ 0.9) differ widely in test accuracy",
        statistic="range of final test acc. over such runs (by replicate: {n_fitted})",
        op=">=",
        threshold=0.1,
        why="about nine standard errors of one run's test accuracy (512 problems × 4 samples)",
        dissertation="Fig 4.1",
    ),
    Spec(
        id="H2",
        statement="the share of examples that are correct (not memorized) before being memorized depends on "
        "the learning rate",
        statistic="max - min of that share over learning rates (full data, most epochs; runs "
        "with ≥ 10 memorized examples)",
        op=">=",
        threshold="the larger of 0.1 and the noise floor",
        why="at least 0.1, and above the noise floor: how far the share moves between two halves of each "
        "example's samples (mean over replicates)",
        dissertation="Fig 4.3",
    ),
    Spec(
        id="H2b",
        statement="the three learning progressions of Figs 4.2-4.3 all occur: examples that stay unmemorized, "
        "examples memorized without being solved first, and examples solved with another trace before memorized",
        statistic="smallest share of train examples on one of the three paths (the map runs pooled)",
        op=">=",
        threshold=0.05,
        why="the spec's own bar: a path one example in twenty takes is a progression, not a stray; the rival, a "
        "model that only recites its targets, leaves the solved-first path near 0",
        dissertation="Figs 4.2-4.3",
    ),
    Spec(
        id="H3",
        statement="one threshold p gives pre-memorization accuracy ≈ test accuracy across runs and checkpoints",
        statistic="R² on y = x at the calibrated p (by replicate: {p})",
        op=">=",
        threshold=0.85,
        why="just below the dissertation's lowest R² (0.88, Gemma2-9B on MATH)",
        dissertation="R² 0.94 GSM8K / 0.95 MATH (Llama3-8B), 0.97 / 0.88 (Gemma2-9B)",
    ),
    Spec(
        id="H4a",
        statement="R² is smooth in p: a plateau, not a spike",
        statistic="width (log-log units of p) of the plateau around the best p where R² stays within 0.05 of its "
        "maximum",
        op=">=",
        threshold=0.5,
        why="p can be off by half a log-log unit at a cost of ≤ 0.05 R² (GSM8K's and MATH's p differ by 0.7)",
        dissertation="Fig C.1",
    ),
    Spec(
        id="H4b",
        statement="p calibrated on 3 runs (that memorise, spread in test accuracy) transfers to the held-out runs",
        statistic="mean R² loss on held-out runs vs their own best p (20 draws)",
        op="<=",
        threshold=0.1,
        why="at most a tenth of the variance lost (Fig C.2: 1-3 runs give a robust p)",
        dissertation="Fig C.2",
    ),
    Spec(
        id="H4c",
        statement="p calibrated on half the test set transfers to the other half",
        statistic="mean R² loss on half B at half A's p vs half B's best p (20 splits)",
        op="<=",
        threshold=0.05,
        why="the two halves differ only by test-set noise; half the H4b allowance",
        dissertation="Fig C.3",
    ),
    Spec(
        id="H5",
        statement="pre-memorization accuracy tracks test accuracy better than gradient variance, distance "
        "from initialisation and ATC",
        statistic="Pearson r (ours) minus the largest |r| of the three prior metrics",
        op=">",
        threshold=0.1,
        why="a clear margin; the dissertation's is 0.26 (0.98 vs 0.72)",
        dissertation="Fig 4.5: 0.98 vs -0.72, 0.59, -0.04",
    ),
    Spec(
        id="H5b",
        statement="... and predicts the generalisation gap better than they do",
        statistic="Pearson r of (train - pre-memorization acc.) with the gap (train - test acc.), minus the largest "
        "|r| of the prior metrics with the gap",
        op=">",
        threshold=0.1,
        why="the same margin against Fig 4.5's own target, the gap",
        dissertation="Fig 4.5 (generalisation gap)",
    ),
    Spec(
        id="H8",
        kind="prerequisite",
        statement="examples get memorized: some run ends with most train examples memorized",
        statistic="largest final memorized fraction over runs",
        op=">=",
        threshold=0.5,
        why="without memorization pre-memorization accuracy is just train accuracy",
        dissertation="section 4.3",
    ),
    Spec(
        id="H8b",
        statement="the min(·, Acc_m) term rarely binds",
        statistic="fraction of (example, checkpoint) pairs where it binds",
        op="<",
        threshold=0.1,
        why="'uncommon' in section 4.3: at most one pair in ten",
        dissertation="section 4.3",
    ),
)


def _h2(r: Results, a: Analysis, rows: dict[int, np.ndarray] | None = None, half: int | None = None) -> float:
    """H2's statistic: the range over learning rates of the correct-first share of the map runs with >= 10 memorized
    examples, on train examples ``rows[run]`` (default all) and, with ``half`` 0 or 1, on that half of the samples."""
    shares = []
    for i in a.map_runs:
        log = r.logs[i]
        acc = log.train_acc if half is None else (log.train_half if half == 0 else 2 * log.train_acc - log.train_half)
        idx = slice(None) if rows is None else rows[i]
        share, n = correct_first_share(acc[:, idx], log.train_perp[:, idx], a.p)
        if n >= 10:
            shares.append(share)
    return float(np.ptp(shares)) if len(shares) >= 2 else float("nan")


def statistics(r: Results) -> dict[str, float]:
    """Every claim's statistic on one replicate's grid (see :data:`SPECS`), pooling its runs and checkpoints; NaN
    where it is undefined: the claims that need p (:data:`P_DEPENDENT`) when p is not identified, H1b with fewer
    than two fitted runs, H2 with fewer than two map runs that memorise ten examples."""
    a = analyse(r)
    final, pts = a.final, a.points
    fitted = final["train_acc"].to_numpy() >= 0.9
    prior = max(abs(a.correlations[k]) for k in ("grad_var", "dist_init", "atc"))
    prior_gap = max(abs(a.gap_correlations[k]) for k in ("grad_var", "dist_init", "atc"))
    out = {
        "H1": a.r2_train,
        "H1b": float(np.ptp(final["test_acc"].to_numpy()[fitted])) if fitted.sum() >= 2 else float("nan"),
        "H2": _h2(r, a),
        "H2b": float(np.concatenate([progressions(*r.triples([i])[0][:2], a.p) for i in a.map_runs]).mean(0).min()),
        "H3": float(a.curve.max()),
        "H4a": plateau_width(a.curve),
        "H4b": float((a.transfer_runs[3][:, 1] - a.transfer_runs[3][:, 0]).mean()),
        "H4c": float((a.transfer_halves[:, 2] - a.transfer_halves[:, 1]).mean()),
        "H5": a.correlations["premem"] - prior,
        "H5b": a.gap_correlations["premem"] - prior_gap,
        "H8": float(final["memorized"].to_numpy().max()),
        "H8b": float(pts["min_binds"].to_numpy().mean()),
    }
    return {k: float("nan") if k in P_DEPENDENT and not a.identified else v for k, v in out.items()}


def h2_floor(r: Results) -> float:
    """H2's noise floor: how far the correct-first share moves between the two halves of each example's samples,
    averaged over the map runs with >= 10 memorized examples (two halves of k/2 samples each)."""
    a = analyse(r)
    gaps = []
    for i in a.map_runs:
        log = r.logs[i]
        halves = [
            correct_first_share(acc, log.train_perp, a.p)
            for acc in (log.train_half, 2 * log.train_acc - log.train_half)
        ]
        if min(n for _, n in halves) >= 10:
            gaps.append(abs(halves[0][0] - halves[1][0]))
    return float(np.mean(gaps)) if gaps else 0.0


def measured(results: Results) -> dict[str, Measured]:
    """Every claim's value: the mean over the replicates (``results`` and its ``others``) of :func:`statistics`, with
    a prediction interval for a rerun (:func:`~steerlib.measures.statistics.over_replicates`); H2's threshold is the
    larger of 0.1 and the mean over replicates of :func:`h2_floor`. A claim is not judged where its statistic is
    undefined at every replicate (the claims that need p: where p is not identified)."""
    every = [results, *results.others]
    out = over_replicates([statistics(o) for o in every])
    lost = [i for i, o in enumerate(every) if not analyse(o).identified]  # replicates where p is not identified
    floor = max(0.1, round(float(np.mean([h2_floor(o) for o in every])), 3))
    for cid, m in out.items():
        judged, note = bool(np.isfinite(m.value)), m.note
        if cid in P_DEPENDENT and lost:
            note = (
                NOT_IDENTIFIED
                if len(lost) == len(every)
                else (f"p is not identified at replicate(s) {', '.join(map(str, lost))}, which the value leaves out")
            )
        elif not judged:
            note = "the statistic is undefined here (too few runs)"
        out[cid] = dataclasses.replace(m, judged=judged, note=note, threshold=floor if cid == "H2" else None)
    return out


def context(results: Results) -> dict[str, str]:
    """The values the claims' texts name, one per replicate: the calibrated p and the number of fitted runs."""
    every = [analyse(o) for o in (results, *results.others)]
    return {
        "p": ", ".join(f"{a.p:.3f}" if a.identified else "not identified" for a in every),
        "n_fitted": ", ".join(str(int((a.final["train_acc"] >= 0.9).sum())) for a in every),
    }


def claims(results: Results) -> list[Claim]:
    """H1–H5 and H8 (see the research note): each the mean over replicates of its statistic on that replicate's
    grid, with a prediction interval; p is calibrated on all runs of a replicate unless a claim says otherwise."""
    return make_claims(SPECS, measured(results), context=context(results))


def extra(results: Results) -> dict:
    """Numbers for metrics.json: calibrated p (also in log-log units), R² (identity and fitted line), per-run final
    accuracies and memorized fractions, correlations, transfer results, timings."""
    a, r = analyse(results), results
    pts, final = a.points, a.final
    return {
        "p": a.p,
        "p_loglog": round(float(premem.loglog(a.p)), 3),
        "p_note": a.p_note,
        "r2_identity_premem": round(float(a.curve.max()), 3),
        "r2_fit_premem": round(premem.r2_fit(pts["premem"], pts["test_acc"]), 3),
        "r2_identity_train": round(a.r2_train, 3),
        "r2_fit_train": round(premem.r2_fit(pts["train_acc"], pts["test_acc"]), 3),
        "runs": [
            {
                "run": s.name,
                "lr": s.lr,
                "epochs": s.epochs,
                "fraction": s.fraction,
                "train_acc": round(float(acc), 3),
                "test_acc": round(float(test), 3),
                "premem": round(float(pm), 3),
                "memorized": round(float(mem), 3),
            }
            for s, acc, test, pm, mem in zip(
                r.specs, final["train_acc"], final["test_acc"], final["premem"], final["memorized"]
            )
        ],
        "p_identified": a.identified,
        "correlations": {k: round(v, 3) for k, v in a.correlations.items()},
        "gap_correlations": {k: round(v, 3) for k, v in a.gap_correlations.items()},
        "h2_noise_floor": round(h2_floor(r), 3),
        "replicate_values": {o.replicate: {k: round(v, 3) for k, v in statistics(o).items()} for o in [r, *r.others]},
        "p_by_replicate": {o.replicate: analyse(o).p if analyse(o).identified else None for o in [r, *r.others]},
        "correct_first_share": a.correct_first,
        "other_trace_share": round(
            float(np.mean([log.train_other.sum() / max(log.train_acc.sum(), 1e-9) for log in r.logs])), 3
        ),
        "transfer_runs": {n: t.mean(0).round(3).tolist() for n, t in a.transfer_runs.items() if n < len(r.logs)},
        "transfer_halves": a.transfer_halves.mean(0).round(3).tolist(),
        "pretrain_final_loss": round(float(np.mean(r.pretrain_loss[-20:])), 4),
        "seconds": {k: round(v, 1) for k, v in r.seconds.items()},
    }
