"""Pre-memorization train accuracy (dissertation chapter 4) and the prior metrics it is compared with (appendix C.3).

Notation, for training example i at checkpoint m: ``Acc_m`` is the fraction of sampled responses whose final answer
is right, ``Perp_m = exp(-(1/n_i) log f(y_i | x_i))`` the perplexity of the example's *target* trace. The example is
memorized when ``Perp_m ≤ p``. Arrays are numpy, shaped (checkpoints, examples) unless said otherwise.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Run = tuple[np.ndarray, np.ndarray, np.ndarray]  # (Acc (C, N), Perp (C, N), test accuracy (C,)) of one training run


def threshold_from_loglog(p_loglog: float | np.ndarray) -> float | np.ndarray:
    """The perplexity threshold ``exp(exp(p'))`` of a threshold p' given, as in the original code, in
    log(log(perplexity)) units (e.g. p' = -2.4 → 1.095)."""
    return np.exp(np.exp(p_loglog))


def loglog(perplexity: float | np.ndarray) -> float | np.ndarray:
    """``log(log(perplexity))``, the original code's units (the inverse of :func:`threshold_from_loglog`)."""
    return np.log(np.log(perplexity))


def memorized(perplexity: np.ndarray, p: float) -> np.ndarray:
    """``Perp ≤ p``."""
    return np.asarray(perplexity) <= p


def best_masked_accuracy(acc: np.ndarray, perplexity: np.ndarray, p: float) -> np.ndarray:
    """``max_{m' ≤ m} MaskedAcc_{m'}`` along axis 0, with ``MaskedAcc = Acc · 1[Perp > p]``."""
    return np.maximum.accumulate(np.asarray(acc, dtype=float) * ~memorized(perplexity, p), axis=0)


def premem_accuracy(acc: np.ndarray, perplexity: np.ndarray, p: float) -> np.ndarray:
    """Pre-memorization accuracy ``min(max_{m' ≤ m} Acc_{m'} · 1[Perp_{m'} > p], Acc_m)`` along axis 0."""
    return np.minimum(best_masked_accuracy(acc, perplexity, p), np.asarray(acc, dtype=float))


def min_binds(acc: np.ndarray, perplexity: np.ndarray, p: float) -> np.ndarray:
    """Where the ``Acc_m`` term of :func:`premem_accuracy` is the smaller one:
    ``Acc_m < max_{m'≤m} MaskedAcc_{m'}``."""
    return np.asarray(acc, dtype=float) < best_masked_accuracy(acc, perplexity, p)


def r2_identity(x: np.ndarray, y: np.ndarray) -> float:
    """R² of the prediction x of y on the line y = x: ``1 - Σ(x - y)² / Σ(y - ȳ)²`` (negative when worse than
    predicting ȳ)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(1 - ((x - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def r2_fit(x: np.ndarray, y: np.ndarray) -> float:
    """R² of the least-squares line y ≈ a x + b, which is Pearson's r²."""
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def premem_points(runs: Sequence[Run], p: float) -> tuple[np.ndarray, np.ndarray]:
    """Average pre-memorization train accuracy and test accuracy at every checkpoint of every run: two (Σ C,)."""
    x = np.concatenate([premem_accuracy(acc, perp, p).mean(1) for acc, perp, _ in runs])
    return x, np.concatenate([np.asarray(test, dtype=float) for *_, test in runs])


def r2_curve(runs: Sequence[Run], p_grid: Sequence[float]) -> np.ndarray:
    """:func:`r2_identity` of pre-memorization vs test accuracy, over all runs and checkpoints, for each p."""
    return np.array([r2_identity(*premem_points(runs, p)) for p in p_grid])


def calibrate_p(runs: Sequence[Run], p_grid: Sequence[float]) -> float:
    """The p of ``p_grid`` that maximises :func:`r2_curve` on ``runs`` (the first one on ties)."""
    return float(p_grid[int(np.argmax(r2_curve(runs, p_grid)))])


def gradient_variance(grads: np.ndarray) -> float:
    """Per-weight variance of the gradient over B minibatches, averaged over the weights: grads is (B, P);
    ``(1/P) Σ_j Var_b g_bj`` (population variance)."""
    return float(np.var(np.asarray(grads, dtype=float), axis=0).mean())


def distance_from_init(theta: np.ndarray, theta0: np.ndarray) -> float:
    """Squared L2 distance ``‖θ - θ_0‖²`` between flattened weights."""
    return float(((np.asarray(theta, dtype=float) - np.asarray(theta0, dtype=float)) ** 2).sum())


def atc_threshold(confidence: np.ndarray, accuracy: float) -> float:
    """Average Thresholded Confidence: the threshold t for which the fraction of a reference run's examples with
    confidence above t equals its accuracy, i.e. the (1 - accuracy) quantile of the confidences."""
    return float(np.quantile(np.asarray(confidence, dtype=float), 1 - accuracy))


def atc_predict(confidence: np.ndarray, threshold: float) -> float:
    """ATC's accuracy estimate: the fraction of examples whose confidence exceeds the threshold."""
    return float((np.asarray(confidence) > threshold).mean())
