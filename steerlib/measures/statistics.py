"""Statistics the chapters' claims are judged with."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats


def spearman(x, y) -> float:
    """Spearman rank correlation of two sequences (NaN if either is constant)."""
    return float(stats.spearmanr(np.asarray(x), np.asarray(y)).statistic)


def bootstrap_interval(statistic: Callable[..., float], *samples: np.ndarray, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*samples)``: the rows (first axis) of all ``samples`` are
    resampled together with replacement ``n_boot`` times; returns the (1-level)/2 and (1+level)/2 quantiles.

    Rows are the unit of independence: evaluation examples, or seeds when each row holds one seed's results.
    Resamples whose statistic is NaN (e.g. an empty bin) are dropped."""
    n = len(samples[0])
    if any(len(s) != n for s in samples):
        raise ValueError(f"samples must share their first dimension; got lengths {[len(s) for s in samples]}")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(*(np.asarray(s)[idx] for s in samples))
                       for idx in rng.integers(0, n, size=(n_boot, n))], dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))
