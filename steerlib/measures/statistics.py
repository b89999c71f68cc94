"""Statistics the chapters' claims are judged with: rank correlations, bootstrap intervals over units or clusters,
and prediction intervals over independent replicates (:func:`prediction_interval`, :func:`over_replicates`,
:func:`jackknife`), the intervals every claim carries."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

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
from steerlib.core.claims import Measured


def spearman(x, y) -> float:
    """Spearman rank correlation of two sequences of numbers (NaN if either is constant or holds a NaN)."""
    x, y = (check_array(name, v, allow_nan=True, ndim=1) for name, v in (("x", x), ("y", y)))
    check_same_length("x, y", x, y)
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # undefined: said as NaN, without scipy's warning on the page
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def bootstrap_interval(
    statistic: Callable[..., float],
    *samples: np.ndarray,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    clusters=None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*samples)``: the rows (first axis) of all ``samples`` are
    resampled together with replacement ``n_boot`` times; returns the (1-level)/2 and (1+level)/2 quantiles.

    Rows are the unit of independence, unless ``clusters`` (one label per row) groups them: then whole clusters are
    drawn (e.g. every question about one person), so that rows that share a cluster are not counted as independent.
    Resamples whose statistic is NaN (e.g. an empty bin) are dropped."""
    check_type("statistic", statistic, Callable, "a function of the samples returning a number")
    check_nonempty("samples", samples)
    n = check_same_length("samples", *(check_nonempty("samples", np.asarray(s)) for s in samples))
    check_range("n_boot", n_boot, 1, integer=True)
    check_range("level", level, 0, 1, open_low=True, open_high=True)
    check_seed("seed", seed)
    rng = np.random.default_rng(seed)
    if clusters is None:
        draws = rng.integers(0, n, size=(n_boot, n))
    else:
        labels = np.asarray(clusters)
        check_same_length("samples, clusters", np.asarray(samples[0]), labels)
        members = [np.flatnonzero(labels == u) for u in np.unique(labels)]
        draws = [
            np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))]) for _ in range(n_boot)
        ]
    values = np.array([statistic(*(np.asarray(s)[idx] for s in samples)) for idx in draws], dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def replicate_matrix(table, keys: list[str], value: str, column: str = "replicate"):
    """One column of a long table (a pandas DataFrame with one row per key and replicate) as a DataFrame with a row
    per key (sorted) and a column per replicate (sorted): ``m.to_numpy()[:, draw].mean(1)`` are the replicate means
    of a draw of replicate positions."""
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
        raise ValueError(
            f"x, y have shapes {x.shape} and {y.shape}, which do not broadcast against each other"
        ) from None
    rx, ry = (stats.rankdata(v, axis=-1) for v in (x, y))
    rx, ry = rx - rx.mean(-1, keepdims=True), ry - ry.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(-1) / np.sqrt((rx**2).sum(-1) * (ry**2).sum(-1))


# ------------------------------------------------------------------------------------------- over replicates

WIDEN = 1.1  # prediction intervals are widened by this factor (see prediction_interval)


def prediction_half_width(pseudo, level: float = 0.95):
    """Half the width of a ``level`` prediction interval for the mean of ``n`` new replicates, from ``n`` values (or
    jackknife pseudo-values) of the current ones along the last axis: ``WIDEN · t_{n-1, (1+level)/2} · s ·
    sqrt(2/n)``; NaN for fewer than two.

    The current mean and a rerun's are independent with variance sigma^2/n each, so their difference has standard
    deviation sigma·sqrt(2/n): for normal replicates the t interval covers a rerun's mean exactly ``level`` of the
    time. For skewed replicates the standard deviation of three or five values is too often small, and coverage
    falls (0.93 at a gamma(2)'s skewness 1.4, 0.90 at an exponential's 2); widening by 10% restores 93-97% up to
    the skewness of a gamma(2) or a lognormal(0, 0.5) at 3 and 5 replicates (tests/test_statistics.py simulates it)."""
    check_range("level", level, 0, 1, open_low=True, open_high=True)
    values = np.asarray(pseudo, dtype=float)
    n = values.shape[-1]
    if n < 2:
        return np.full(values.shape[:-1], np.nan) if values.ndim > 1 else float("nan")
    half = WIDEN * stats.t.ppf((1 + level) / 2, n - 1) * values.std(axis=-1, ddof=1) * np.sqrt(2 / n)
    return half if values.ndim > 1 else float(half)


def prediction_interval(values, level: float = 0.95) -> tuple[float, float]:
    """A ``level`` prediction interval for the mean of as many new independent replicates as ``values`` holds:
    mean ± :func:`prediction_half_width` (NaNs dropped; (NaN, NaN) with fewer than two values left)."""
    x = check_array("values", values, allow_nan=True, ndim=1).astype(float)
    x = x[~np.isnan(x)]
    half = prediction_half_width(x, level)
    return (float("nan"), float("nan")) if np.isnan(half) else (float(x.mean() - half), float(x.mean() + half))


def _note(n: int, unit: str, how: str) -> str:
    if n < 2:
        return f"no interval: a single {unit} at this profile, so nothing says how far a rerun would move"
    return (
        f"95% prediction interval for a rerun with {n} new independent {unit}s ({how}, widened by "
        f"{WIDEN:g}; tests/test_statistics.py checks its coverage)"
    )


def over_replicates(per_replicate: Sequence[Mapping[str, float]], unit: str = "replicate") -> dict[str, Measured]:
    """Each statistic's mean over independent replicates (one dict of statistic id -> value per replicate) with
    its :func:`prediction_interval`. A statistic undefined (NaN) at some replicates takes the mean of the others,
    and names the replicates where it is undefined (``undefined_at``: the verdict is fragile)."""
    check_nonempty("per_replicate", check_type("per_replicate", per_replicate, (list, tuple), "a list of dicts"))
    out = {}
    for key in dict.fromkeys(k for values in per_replicate for k in values):
        x = np.array([float(values.get(key, np.nan)) for values in per_replicate])
        finite = ~np.isnan(x)
        undefined = tuple(int(i) for i in np.flatnonzero(~finite))
        value = float(x[finite].mean()) if finite.any() else float("nan")
        interval = prediction_interval(x) if finite.sum() >= 2 else None
        out[key] = Measured(
            value,
            interval,
            _note(int(finite.sum()), unit, "mean ± t · s · sqrt(2/n)"),
            undefined_at=undefined if finite.any() else (),
        )
    return out


def jackknife(
    statistic: Callable[[np.ndarray], Mapping[str, float]], n: int, unit: str = "replicate"
) -> dict[str, Measured]:
    """Each statistic of ``statistic(draw)`` (``draw``: the positions of the replicates that enter it) at every
    replicate, with a prediction interval from the jackknife: pseudo-values ``n·θ - (n-1)·θ_(-i)`` (θ_(-i) leaves
    replicate i out) stand in for replicate values in :func:`prediction_half_width`. For a mean they are the
    replicate values themselves; for a statistic of replicate means (a rank correlation of mean curves) they carry
    its replicate-to-replicate spread."""
    check_type("statistic", statistic, Callable, "a function of a draw of replicate positions")
    check_range("n", n, 1, integer=True)
    full = statistic(np.arange(n))
    left_out = [statistic(np.delete(np.arange(n), i)) for i in range(n)] if n > 1 else []
    out = {}
    for key, value in full.items():
        value = float(value)
        pseudo = np.array([n * value - (n - 1) * float(loo[key]) for loo in left_out])
        half = prediction_half_width(pseudo[~np.isnan(pseudo)]) if n > 1 and not np.isnan(value) else float("nan")
        interval = None if np.isnan(half) else (value - half, value + half)
        how = _note(n, unit, "jackknife pseudo-values") if interval or n < 2 else "no interval: undefined here"
        if interval and half == 0:
            how += (
                f"; zero width: leaving out any one {unit} gives the same value (e.g. a rank statistic whose "
                f"ranks no {unit} moves), which says the {unit}s agree, not that a rerun could not differ"
            )
        out[key] = Measured(value, interval, how)
    return out
