"""Statistics the chapters' claims are judged with."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from steerlib.core.checks import (
    check_array,
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
