"""Per-example robustness and data curation (dissertation section 4.5): IFD, accuracy drop by bins, shuffled noise
floors, and the sample-efficiency ratio of two data-collection methods.

- IFD (instruction-following difficulty) of an example (x, y): ``PPL(y | x) / PPL(y) = exp(NLL(y | x) - NLL(y))``
  with NLL the mean per-token negative log-likelihood of the answer, with and without the question.
- The drop of an example under a perturbation: ``Acc(unperturbed) - Acc(perturbed)``.
- The sample-efficiency ratio of a method over a baseline at equal test accuracy: at the level ``A`` both curves
  reach (the lower of their last values), ``n_baseline(A) / n_method(A)``, where ``n(A)`` is the first number of
  added examples at which a curve, linearly interpolated between its points, reaches ``A``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from steerlib.core.checks import check_array, check_range, check_same_length, check_seed, check_type


def ifd(cond_nll, uncond_nll) -> np.ndarray:
    """``exp(cond_nll - uncond_nll)`` per example: PPL(answer | question) / PPL(answer)."""
    cond = check_array("cond_nll", cond_nll, 0, ndim=1).astype(float)
    uncond = check_array("uncond_nll", uncond_nll, 0, ndim=1).astype(float)
    check_same_length("cond_nll, uncond_nll", cond, uncond)
    return np.exp(cond - uncond)


def bin_means(score, values, edges) -> np.ndarray:
    """Mean of ``values`` over the examples whose ``score`` falls in each bin ``[edges[b], edges[b+1])`` (the last
    bin closed); NaN for an empty bin."""
    score, values = check_array("score", score, ndim=1), check_array("values", values, ndim=1)
    check_same_length("score, values", score, values)
    edges = check_array("edges", edges, ndim=1)
    if len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges={edges.tolist()} must hold at least two increasing numbers")
    which = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, len(edges) - 2)
    inside = (score >= edges[0]) & (score <= edges[-1])
    return np.array(
        [
            values[inside & (which == b)].mean() if (inside & (which == b)).any() else np.nan
            for b in range(len(edges) - 1)
        ]
    )


def shuffle_floor(
    statistic: Callable[[np.ndarray, np.ndarray], float], x, y, n: int = 200, level: float = 0.95, seed: int = 0
) -> float:
    """The ``level`` quantile of ``|statistic(shuffled x, y)|`` over ``n`` random permutations of ``x``: how large
    the statistic gets when x carries no information about y (a noise floor)."""
    check_type("statistic", statistic, Callable, "a function statistic(x, y) returning a number")
    x, y = check_array("x", x, ndim=1), check_array("y", y, ndim=1)
    check_same_length("x, y", x, y)
    check_range("n", n, 1, integer=True)
    check_range("level", level, 0, 1, open_low=True, open_high=True)
    rng = np.random.default_rng(check_seed("seed", seed))
    values = np.abs([statistic(rng.permutation(x), y) for _ in range(n)])
    values = values[np.isfinite(values)]
    return float(np.quantile(values, level)) if len(values) else float("nan")


def added_to_reach(added, accuracy, level: float) -> float:
    """The first number of added examples at which ``accuracy`` (one value per entry of ``added``, increasing),
    linearly interpolated, reaches ``level``; 0 when it starts there, inf when it never does."""
    added, accuracy = check_array("added", added, 0, ndim=1), check_array("accuracy", accuracy, 0, 1, ndim=1)
    check_same_length("added, accuracy", added, accuracy)
    if np.any(np.diff(added) <= 0):
        raise ValueError(f"added={added.tolist()} must increase")
    check_range("level", level)
    if accuracy[0] >= level:
        return float(added[0])
    for i in range(1, len(added)):
        if accuracy[i] >= level:
            a0, a1 = accuracy[i - 1], accuracy[i]
            return float(added[i - 1] + (level - a0) / (a1 - a0) * (added[i] - added[i - 1]))
    return float("inf")


def efficiency_ratio(added, method, baseline) -> float:
    """Sample-efficiency ratio of ``method`` over ``baseline`` (test accuracy at each entry of ``added``): at the
    level ``A = min(method[-1], baseline[-1])``, ``added_to_reach(baseline, A) / added_to_reach(method, A)``.
    NaN when neither curve rises above its start at that level (no added example is needed to reach it)."""
    added = check_array("added", added, 0, ndim=1)
    method, baseline = check_array("method", method, 0, 1, ndim=1), check_array("baseline", baseline, 0, 1, ndim=1)
    check_same_length("added, method, baseline", added, method, baseline)
    level = float(min(method[-1], baseline[-1]))
    n_method, n_base = added_to_reach(added, method, level), added_to_reach(added, baseline, level)
    if n_method <= added[0] or n_base <= added[0]:
        return float("nan")
    return float((n_base - added[0]) / (n_method - added[0]))
