"""Statistics the chapters' claims are judged with."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from steerlib.core.checks import (
    check_array,
    check_columns,
    check_nonempty,
    check_range,
    check_same_length,
    check_seed,
    check_type,
)


def spearman(x, y) -> float:
    """Spearman rank correlation of two sequences of numbers (NaN if either is constant or holds a NaN)."""
    x, y = (check_array(name, v, allow_nan=True, ndim=1) for name, v in (("x", x), ("y", y)))
    check_same_length("x, y", x, y)
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # undefined: said as NaN, without scipy's warning on the page
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def bootstrap_interval(statistic: Callable[..., float], *samples: np.ndarray, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*samples)``: the rows (first axis) of all ``samples`` are
    resampled together with replacement ``n_boot`` times; returns the (1-level)/2 and (1+level)/2 quantiles.

    Rows are the unit of independence: evaluation examples, or seeds when each row holds one seed's results.
    Resamples whose statistic is NaN (e.g. an empty bin) are dropped."""
    check_type("statistic", statistic, Callable, "a function of the samples returning a number")
    check_nonempty("samples", samples)
    n = check_same_length("samples", *(check_nonempty("samples", np.asarray(s)) for s in samples))
    check_range("n_boot", n_boot, 1, integer=True)
    check_range("level", level, 0, 1, open_low=True, open_high=True)
    check_seed("seed", seed)
    rng = np.random.default_rng(seed)
    values = np.array([statistic(*(np.asarray(s)[idx] for s in samples))
                       for idx in rng.integers(0, n, size=(n_boot, n))], dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def seed_draws(n_seeds: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """``n_boot`` bootstrap resamples of ``n_seeds`` seeds: rows of seed positions (0..n_seeds-1) drawn with
    replacement, each row sorted (a seed-mean statistic does not depend on the order of its seeds).

    The same (n_seeds, n_boot, seed) give the same draws, so statistics of ensembles trained on the same seeds are
    resampled jointly (a seed is one replicate of the whole experiment)."""
    check_range("n_seeds", n_seeds, 1, integer=True)
    check_range("n_boot", n_boot, 1, integer=True)
    check_seed("seed", seed)
    draws = np.random.default_rng(seed).integers(0, n_seeds, size=(n_boot, n_seeds))
    draws.sort(axis=1)
    return draws


def seed_bootstrap(statistic: Callable[[np.ndarray], float | dict[str, float]], n_seeds: int, n_boot: int = 1000,
                   seed: int = 0) -> np.ndarray | dict[str, np.ndarray]:
    """Bootstrap replicates over seeds: ``statistic(draw)`` recomputed on each resample of :func:`seed_draws`,
    where ``draw`` holds the positions of the seeds that enter it (a seed drawn twice counts twice).

    ``statistic`` may return one number or a dict of numbers (one per claim); the replicates have the same shape,
    an array of ``n_boot`` values each. Each distinct resample is evaluated once (with n seeds there are at most
    C(2n-1, n) of them: 126 for five seeds), so an expensive statistic stays cheap. Turn the replicates into an
    interval with :func:`percentile_interval`."""
    check_type("statistic", statistic, Callable, "a function of a draw of seed positions")
    draws = seed_draws(n_seeds, n_boot, seed)
    unique, inverse = np.unique(draws, axis=0, return_inverse=True)
    values = [statistic(u) for u in unique]
    inverse = inverse.reshape(-1)
    if isinstance(values[0], dict):
        return {k: np.array([float(v[k]) for v in values])[inverse] for k in values[0]}
    return np.array([float(v) for v in values])[inverse]


def percentile_interval(replicates, level: float = 0.95) -> tuple[float, float]:
    """The (1-level)/2 and (1+level)/2 quantiles of bootstrap ``replicates``, NaNs dropped (NaN, NaN if none is
    left)."""
    check_range("level", level, 0, 1, open_low=True, open_high=True)
    values = check_array("replicates", replicates, allow_nan=True, allow_inf=True).astype(float).ravel()
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def seed_matrix(table, keys: list[str], value: str, column: str = "seed"):
    """One column of a long table (a pandas DataFrame with one row per key and seed) as a DataFrame with a row per
    key (sorted) and a column per seed (sorted): ``m.to_numpy()[:, draw].mean(1)`` are the seed means of a
    :func:`seed_draws` row."""
    check_type("table", table, pd.DataFrame, "a pandas DataFrame")
    check_columns("table", table.columns, [*keys, value, column])
    return table.set_index([*keys, column])[value].unstack(column)


def spearman_rows(x, y) -> np.ndarray:
    """Spearman's rho along the last axis of ``x`` and ``y`` (broadcast against each other): Pearson's correlation of
    average ranks, as :func:`spearman` computes it; NaN where a row is constant or holds a NaN."""
    x, y = (check_array(n, v, allow_nan=True, allow_inf=True).astype(float) for n, v in (("x", x), ("y", y)))
    try:
        x, y = np.broadcast_arrays(x, y)
    except ValueError:
        raise ValueError(f"x, y have shapes {x.shape} and {y.shape}, which do not broadcast against each other") from None
    rx, ry = (stats.rankdata(v, axis=-1) for v in (x, y))
    rx, ry = rx - rx.mean(-1, keepdims=True), ry - ry.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(-1) / np.sqrt((rx**2).sum(-1) * (ry**2).sum(-1))


def bootstrap_note(n: int, n_boot: int, unit: str = "seed", of: str = "") -> str:
    """How a :func:`seed_bootstrap` interval over ``n`` units was measured, for a claim's ``uncertainty``: e.g.
    '95% bootstrap over the 5 seeds of the CE CNN (1000 resamples)', or why it has zero width when ``n`` is 1."""
    check_range("n", n, 1, integer=True)
    check_range("n_boot", n_boot, 1, integer=True)
    if n == 1:
        return f"zero width: a single {unit}{of} at this profile, so there is nothing to resample"
    return f"95% bootstrap over the {n} {unit}s{of} ({n_boot} resamples)"
