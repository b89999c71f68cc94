"""The analysis of the grid (:func:`analyse`, computed once per Results): the calibrated threshold p, one row per run
and checkpoint, the transfer tests of p and the prior metrics; then the claims and metrics.json's numbers."""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd

from steerlib.chapters.reasoning.pre_memorization.experiment import Results
from steerlib.core.claims import Claim
from steerlib.measures import premem

P_GRID = np.round(np.arange(1.005, 1.3 + 1e-9, 0.005), 3)  # memorization thresholds swept (perplexity > 1)
STATES = ("incorrect", "correct, not memorized", "memorized")
USES_P = ("H2", "H3", "H4a", "H4b", "H4c", "H5", "H8", "H8b")  # the claims whose statistic depends on p
PRIORS = {"premem": "pre-memorization train acc.", "train_acc": "train accuracy", "grad_var": "gradient variance",
          "dist_init": "distance from init.", "atc": "ATC"}


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
        frames.append(pd.DataFrame({
            "run": i, "lr": spec.lr, "epochs": spec.epochs, "fraction": spec.fraction,
            "checkpoint": np.arange(len(acc)), "train_acc": acc.mean(1),
            "premem": premem.premem_accuracy(acc, perp, p).mean(1), "test_acc": log.test_acc.mean(1),
            "memorized": premem.memorized(perp, p).mean(1), "min_binds": premem.min_binds(acc, perp, p).mean(1),
            "grad_var": log.grad_var, "dist_init": log.dist_init}))
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
    earlier checkpoint (the path "correct with another trace → memorized"), and how many examples were memorized."""
    st = states(acc, perp, p)
    done = st[:, -1] == 2
    if not done.any():
        return 0.0, 0
    first_memo = np.argmax(st == 2, axis=1)
    before = np.array([(row[:m] == 1).any() for row, m in zip(st, first_memo)])
    return float(before[done].mean()), int(done.sum())


def _calibrated(runs: list[premem.Run]) -> float:
    """:func:`premem.calibrate_p` on ``runs``, NaN where p is not identified on them."""
    try:
        return premem.calibrate_p(runs, P_GRID)
    except premem.PNotIdentified:
        return float("nan")


def _r2_at(curve: np.ndarray, p: float) -> float:
    """The R² of ``curve`` (over P_GRID) at p; NaN for a p that is NaN."""
    return float("nan") if np.isnan(p) else curve[np.searchsorted(P_GRID, p)]


def transfer_runs(r: Results, n_cal: int, repeats: int = 20, seed: int = 0) -> np.ndarray:
    """(repeats, 2): R² on the held-out runs at p calibrated on ``n_cal`` random runs (NaN where p is not
    identified on them), and at their own best p."""
    rng, n = np.random.default_rng(seed), len(r.logs)
    out = []
    for _ in range(repeats):
        cal = rng.choice(n, n_cal, replace=False)
        curve = premem.r2_curve(r.triples(np.setdiff1d(np.arange(n), cal)), P_GRID)
        out.append((_r2_at(curve, _calibrated(r.triples(cal))), curve.max()))
    return np.array(out)


def transfer_halves(r: Results, repeats: int = 20, seed: int = 0) -> np.ndarray:
    """(repeats, 3): p calibrated on a random half A of the test problems (NaN where not identified), R² on half B
    at that p, and at half B's own best p."""
    rng, out = np.random.default_rng(seed), []
    n_test = r.logs[0].test_acc.shape[1]
    for _ in range(repeats):
        half = rng.permutation(n_test) < n_test // 2
        runs = {h: [(log.train_acc, log.train_perp, log.test_acc[:, m].mean(1)) for log in r.logs]
                for h, m in (("A", half), ("B", ~half))}
        p_a = _calibrated(runs["A"])
        curve_b = premem.r2_curve(runs["B"], P_GRID)
        out.append((p_a, _r2_at(curve_b, p_a), curve_b.max()))
    return np.array(out)


@dataclasses.dataclass
class Analysis:
    """What the claims, metrics.json and the figures share; p is calibrated on all runs."""

    p: float  # the p of P_GRID with the best R² on y = x of pre-memorization vs test accuracy (premem.calibrate_p)
    p_note: str  # why p is not identified ("" when it is; p is then P_GRID[0], a stand-in for the figures)
    curve: np.ndarray  # (len(P_GRID),) that R² at each p; its maximum is the R² at p
    r2_train: float  # R² on y = x of train accuracy vs test accuracy
    points: pd.DataFrame  # points(results, p)
    final: pd.DataFrame  # its rows at the last checkpoint of each run
    correlations: dict[str, float]  # Pearson r with test accuracy of each metric of PRIORS
    map_runs: list[int]  # map_runs(results)
    correct_first: dict[str, tuple[float, int]]  # run name -> correct_first_share, for the map runs
    transfer_runs: dict[int, np.ndarray]  # n -> transfer_runs(results, n) for n = 1, 2, 3 (at most all runs but one)
    transfer_halves: np.ndarray  # transfer_halves(results)


@functools.lru_cache(maxsize=1)
def analyse(r: Results) -> Analysis:
    """The :class:`Analysis` of ``r``, computed once per Results (the last one analysed is kept)."""
    curve = premem.r2_curve(r.triples(), P_GRID)
    try:
        p, p_note = premem.calibrate_p(r.triples(), P_GRID), ""
    except premem.PNotIdentified as err:
        p, p_note = float(P_GRID[0]), f"{err}, so the claims that use p are not judged"
    pts = points(r, p)
    maps = map_runs(r)
    return Analysis(
        p=p, p_note=p_note, curve=curve, r2_train=premem.r2_identity(pts["train_acc"], pts["test_acc"]), points=pts,
        final=pts.groupby("run").tail(1), correlations={k: premem.pearson(pts[k], pts["test_acc"]) for k in PRIORS},
        map_runs=maps,
        correct_first={r.specs[i].name: correct_first_share(r.logs[i].train_acc, r.logs[i].train_perp, p)
                       for i in maps},
        transfer_runs={n: transfer_runs(r, min(n, len(r.logs) - 1)) for n in (1, 2, 3)},
        transfer_halves=transfer_halves(r))


def claims(results: Results) -> list[Claim]:
    """H1–H5 and H8 (see the research note); p is calibrated on all runs unless a claim says otherwise."""
    a = analyse(results)
    p, pts, final = a.p, a.points, a.final
    fitted = (final["train_acc"] >= 0.9).to_numpy()
    fitted_test = final["test_acc"].to_numpy()[fitted]
    spread = float(np.ptp(fitted_test)) if fitted.sum() >= 2 else 0.0
    shares = [share for share, n in a.correct_first.values() if n >= 10]
    near = np.abs(P_GRID - p) <= 0.05 + 1e-9
    runs3, halves = a.transfer_runs[3], a.transfer_halves
    prior_best = max(abs(a.correlations[k]) for k in ("grad_var", "dist_init", "atc"))
    out = [
        Claim("H1", "train accuracy does not predict test accuracy", "R² of (train acc., test acc.) on y = x",
              a.r2_train, "<", 0.5, "Fig 4.1: train acc. ≈ 1, R² low"),
        Claim("H1b", "runs that fit the train set (final train acc. ≥ 0.9) differ widely in test accuracy",
              f"range of final test acc. over the {int(fitted.sum())} such runs", spread, ">=", 0.1, "Fig 4.1"),
        Claim("H2", "the share of examples that are correct (not memorized) before being memorized depends on the "
              "learning rate", f"max - min of that share over learning rates (full data, most epochs; runs with "
              f"≥ 10 memorized examples: {len(shares)})", float(np.ptp(shares)) if len(shares) >= 2 else 0.0,
              ">=", 0.1, "Fig 4.3"),
        Claim("H3", "one threshold p gives pre-memorization accuracy ≈ test accuracy across runs and checkpoints",
              f"R² on y = x at the calibrated p = {p:.3f}", float(a.curve.max()), ">=", 0.85,
              "R² 0.94 GSM8K / 0.95 MATH (Llama3-8B), 0.97 / 0.88 (Gemma2-9B)"),
        Claim("H4a", "R² is smooth in p", "largest change of R² between neighbouring p (step 0.005) within "
              "±0.05 of the calibrated p", float(np.abs(np.diff(a.curve[near])).max()), "<=", 0.1, "Fig C.1"),
        Claim("H4b", "p calibrated on 3 runs transfers to the held-out runs",
              "mean R² loss on held-out runs vs their own best p (20 draws)",
              float((runs3[:, 1] - runs3[:, 0]).mean()), "<=", 0.1, "Fig C.2"),
        Claim("H4c", "p calibrated on half the test set transfers to the other half",
              "mean R² loss on half B at half A's p vs half B's best p (20 splits)",
              float((halves[:, 2] - halves[:, 1]).mean()), "<=", 0.05, "Fig C.3"),
        Claim("H5", "pre-memorization accuracy tracks test accuracy better than gradient variance, distance from "
              "initialisation and ATC", "Pearson r (ours) minus the largest |r| of the three prior metrics",
              a.correlations["premem"] - prior_best, ">", 0.0, "Fig 4.5: 0.98 vs -0.72, 0.59, -0.04"),
        Claim("H8", "examples get memorized: some run ends with most train examples memorized",
              "largest final memorized fraction over runs", float(final["memorized"].to_numpy().max()), ">=", 0.5,
              "section 4.3"),
        Claim("H8b", "the min(·, Acc_m) term binds: accuracy drops after a correct, unmemorized checkpoint",
              "fraction of (example, checkpoint) pairs where it binds", float(pts["min_binds"].to_numpy().mean()),
              ">", 0.0, "definition in section 4.3"),
    ]
    if a.p_note:  # p is not identified: the claims that use it say nothing
        out = [dataclasses.replace(c, judged=False, note=a.p_note) if c.id in USES_P else c for c in out]
    return out


def extra(results: Results) -> dict:
    """Numbers for metrics.json: calibrated p (also in log-log units), R² (identity and fitted line), per-run final
    accuracies and memorized fractions, correlations, transfer results, timings."""
    a, r = analyse(results), results
    pts, final = a.points, a.final
    return {
        "p": a.p, "p_loglog": round(float(premem.loglog(a.p)), 3), "p_note": a.p_note,
        "r2_identity_premem": round(float(a.curve.max()), 3),
        "r2_fit_premem": round(premem.r2_fit(pts["premem"], pts["test_acc"]), 3),
        "r2_identity_train": round(a.r2_train, 3),
        "r2_fit_train": round(premem.r2_fit(pts["train_acc"], pts["test_acc"]), 3),
        "runs": [{"run": s.name, "lr": s.lr, "epochs": s.epochs, "fraction": s.fraction,
                  "train_acc": round(float(acc), 3), "test_acc": round(float(test), 3),
                  "premem": round(float(pm), 3), "memorized": round(float(mem), 3)}
                 for s, acc, test, pm, mem in zip(r.specs, final["train_acc"], final["test_acc"], final["premem"],
                                                  final["memorized"])],
        "correlations": {k: round(v, 3) for k, v in a.correlations.items()},
        "correct_first_share": a.correct_first,
        "other_trace_share": round(float(np.mean([log.train_other.sum() / max(log.train_acc.sum(), 1e-9)
                                                  for log in r.logs])), 3),
        "transfer_runs": {n: t.mean(0).round(3).tolist() for n, t in a.transfer_runs.items() if n < len(r.logs)},
        "transfer_halves": a.transfer_halves.mean(0).round(3).tolist(),
        "pretrain_final_loss": round(float(np.mean(r.pretrain_loss[-20:])), 4),
        "seconds": {k: round(v, 1) for k, v in r.seconds.items()},
    }
