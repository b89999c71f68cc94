"""Pre-memorization train accuracy (dissertation chapter 4) and the prior metrics it is compared with (appendix C.3).

Notation, for training example i at checkpoint m: ``Acc_m`` is the fraction of sampled responses whose final answer
is right, ``Perp_m = exp(-(1/n_i) log f(y_i | x_i))`` the perplexity of the example's *target* trace. The example is
memorized when ``Perp_m ≤ p``. Arrays are numpy, shaped (checkpoints, examples) unless said otherwise. Every input is
checked: accuracies lie in [0, 1], perplexities in [1, inf], and a threshold p is a finite number above 1 (every
perplexity is at least 1, so p ≤ 1 would call nothing, or only perfect recall, memorized).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from steerlib.core.checks import check_array, check_nonempty, check_range, check_same_length, check_shape, check_type

Run = tuple[np.ndarray, np.ndarray, np.ndarray]  # (Acc (C, N), Perp (C, N), test accuracy (C,)) of one training run


def _check_p(p: float) -> float:
    """A memorization threshold: a finite number above 1."""
    return check_range("p", p, 1, open_low=True)


def _check_p_grid(p_grid: Sequence[float]) -> np.ndarray:
    """Thresholds to sweep: a non-empty 1-D sequence of finite numbers above 1, as an array."""
    return check_array("p_grid", p_grid, 1, open_low=True, ndim=1)


def _check_perplexity(perplexity: np.ndarray) -> np.ndarray:
    """Perplexities: a non-empty array of numbers in [1, inf] (no NaN)."""
    return check_array("perplexity", perplexity, 1, allow_inf=True)


def _check_run(acc: np.ndarray, perplexity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracies in [0, 1] (as floats) and perplexities in [1, inf], both (checkpoints, examples)."""
    perplexity = _check_perplexity(perplexity)
    acc = check_array("acc", acc, 0, 1, ndim=2).astype(float)
    check_shape("perplexity", perplexity, acc.shape, "acc's: (checkpoints, examples)")
    return acc, perplexity


def _check_runs(runs: Sequence[Run]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """At least one run, each (Acc (C, N), Perp (C, N), test accuracy (C,)) with accuracies in [0, 1]; as arrays."""
    what = "a list of (acc, perplexity, test_acc) triples"
    out = []
    for run in check_nonempty("runs", check_type("runs", runs, (list, tuple), what)):
        if len(check_type("runs", run, (list, tuple), what)) != 3:
            raise ValueError(f"runs holds a run of {len(run)} arrays; each run is (acc, perplexity, test_acc)")
        acc, perplexity = _check_run(run[0], run[1])
        test = check_array("test_acc", run[2], 0, 1).astype(float)
        out.append((acc, perplexity, check_shape("test_acc", test, acc.shape[:1], "one per checkpoint of acc")))
    return out


def _pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two finite 1-D arrays of the same length, as floats."""
    x, y = check_array("x", x, ndim=1).astype(float), check_array("y", y, ndim=1).astype(float)
    check_same_length("x, y", x, y)
    return x, y


def threshold_from_loglog(p_loglog: float | np.ndarray) -> float | np.ndarray:
    """The perplexity threshold ``exp(exp(p'))`` of a threshold p' given, as in the original code, in
    log(log(perplexity)) units (e.g. p' = -2.4 → 1.095)."""
    check_array("p_loglog", p_loglog)
    return np.exp(np.exp(p_loglog))


def loglog(perplexity: float | np.ndarray) -> float | np.ndarray:
    """``log(log(perplexity))``, the original code's units (the inverse of :func:`threshold_from_loglog`)."""
    check_array("perplexity", perplexity, 1, open_low=True)
    return np.log(np.log(perplexity))


def memorized(perplexity: np.ndarray, p: float) -> np.ndarray:
    """``Perp ≤ p``."""
    return _check_perplexity(perplexity) <= _check_p(p)


def _best_masked(acc: np.ndarray, perplexity: np.ndarray, p: float) -> np.ndarray:
    return np.maximum.accumulate(acc * (perplexity > p), axis=0)


def best_masked_accuracy(acc: np.ndarray, perplexity: np.ndarray, p: float) -> np.ndarray:
    """``max_{m' ≤ m} MaskedAcc_{m'}`` along axis 0, with ``MaskedAcc = Acc · 1[Perp > p]``."""
    return _best_masked(*_check_run(acc, perplexity), _check_p(p))


def premem_accuracy(acc: np.ndarray, perplexity: np.ndarray, p: float) -> np.ndarray:
    """Pre-memorization accuracy ``min(max_{m' ≤ m} Acc_{m'} · 1[Perp_{m'} > p], Acc_m)`` along axis 0."""
    acc, perplexity = _check_run(acc, perplexity)
    return np.minimum(_best_masked(acc, perplexity, _check_p(p)), acc)


def min_binds(acc: np.ndarray, perplexity: np.ndarray, p: float) -> np.ndarray:
    """Where the ``Acc_m`` term of :func:`premem_accuracy` is the smaller one:
    ``Acc_m < max_{m'≤m} MaskedAcc_{m'}``."""
    acc, perplexity = _check_run(acc, perplexity)
    return acc < _best_masked(acc, perplexity, _check_p(p))


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    spread = ((y - y.mean()) ** 2).sum()
    return float(1 - ((x - y) ** 2).sum() / spread) if spread > 0 else float("nan")


def r2_identity(x: np.ndarray, y: np.ndarray) -> float:
    """R² of the prediction x of y on the line y = x: ``1 - Σ(x - y)² / Σ(y - ȳ)²`` (negative when worse than
    predicting ȳ; NaN when y is constant, where R² is undefined)."""
    return _r2(*_pair(x, y))


def r2_fit(x: np.ndarray, y: np.ndarray) -> float:
    """R² of the least-squares line y ≈ a x + b, which is Pearson's r² (NaN when x or y is constant)."""
    return pearson(x, y) ** 2


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r of two sequences of the same length (NaN when either is constant)."""
    x, y = _pair(x, y)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _points(runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], p: float) -> tuple[np.ndarray, np.ndarray]:
    x = [np.minimum(_best_masked(acc, perp, p), acc).mean(1) for acc, perp, _ in runs]
    return np.concatenate(x), np.concatenate([test for *_, test in runs])


def premem_points(runs: Sequence[Run], p: float) -> tuple[np.ndarray, np.ndarray]:
    """Average pre-memorization train accuracy and test accuracy at every checkpoint of every run: two (Σ C,)."""
    return _points(_check_runs(runs), _check_p(p))


def r2_curve(runs: Sequence[Run], p_grid: Sequence[float]) -> np.ndarray:
    """:func:`r2_identity` of pre-memorization vs test accuracy, over all runs and checkpoints, for each p."""
    runs = _check_runs(runs)
    return np.array([_r2(*_points(runs, p)) for p in _check_p_grid(p_grid)])


class PNotIdentified(ValueError):
    """:func:`calibrate_p` cannot tell the thresholds of the grid apart: R² is the same (or undefined) at every p."""


def calibrate_p(runs: Sequence[Run], p_grid: Sequence[float]) -> float:
    """The p of ``p_grid`` that maximises :func:`r2_curve` on ``runs`` (the first one on ties; NaN values skipped).

    Raises :class:`PNotIdentified` (a ValueError) when the curve is flat or undefined over the whole grid (e.g. no
    perplexity of any run lies between the grid's ends, or test accuracy never varies): every p then fits equally
    and none is calibrated."""
    p_grid = _check_p_grid(p_grid)
    curve = r2_curve(runs, p_grid)
    where = f"every p of p_grid [{p_grid[0]:g}, {p_grid[-1]:g}]"
    if np.isnan(curve).all():
        raise PNotIdentified(f"p is not identified: R² is undefined at {where} (test accuracy is constant)")
    if np.nanmax(curve) - np.nanmin(curve) <= 1e-12:
        raise PNotIdentified(
            f"p is not identified: R² is {np.nanmax(curve):.4g} at {where}; every p gives the same "
            "pre-memorization accuracies (no target perplexity lies between the grid's ends)"
        )
    return float(p_grid[int(np.nanargmax(curve))])


def gradient_variance(grads: np.ndarray) -> float:
    """Per-weight variance of the gradient over B minibatches, averaged over the weights: grads is (B, P);
    ``(1/P) Σ_j Var_b g_bj`` (population variance)."""
    return float(np.var(check_array("grads", grads, ndim=2), axis=0).mean())


def distance_from_init(theta: np.ndarray, theta0: np.ndarray) -> float:
    """Squared L2 distance ``‖θ - θ_0‖²`` between flattened weights."""
    theta, theta0 = check_array("theta", theta), check_array("theta0", theta0)
    check_shape("theta0", theta0, theta.shape, "theta's")
    return float(((theta.astype(float) - theta0) ** 2).sum())


def atc_threshold(confidence: np.ndarray, accuracy: float) -> float:
    """Average Thresholded Confidence: the threshold t for which the fraction of a reference run's examples with
    confidence above t equals its accuracy, i.e. the (1 - accuracy) quantile of the confidences."""
    check_range("accuracy", accuracy, 0, 1)
    return float(np.quantile(check_array("confidence", confidence), 1 - accuracy))


def atc_predict(confidence: np.ndarray, threshold: float) -> float:
    """ATC's accuracy estimate: the fraction of examples whose confidence exceeds the threshold."""
    check_range("threshold", threshold)
    return float((check_array("confidence", confidence) > threshold).mean())
