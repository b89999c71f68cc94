"""XOR cluster data with flipped labels (Xu, Wang, Frei, Vardi and Hu, ICLR 2024), and the two-layer ReLU network
their theory trains on it.

Two orthogonal means mu_1, mu_2 of equal norm: a point is +-mu_1 (clean label +1) or +-mu_2 (clean label -1), each
of the four clusters equally likely, plus N(0, I_d) noise; then a fraction ``flip`` of the training labels is
flipped. No linear classifier beats chance on the clean labels (each class sits on both sides of the origin); the
Bayes classifier, sign(abs(<x, mu_1>) - abs(<x, mu_2>)), is near-perfect when the means' norm is large.

The network is f(x) = sum_j a_j ReLU(<w_j, x>) with the second layer fixed at a_j = +-1/sqrt(m) (half of each
sign) and the first layer trained; :func:`signal_share` measures how much of the first layer lies in span(mu_1, mu_2).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from steerlib.core.checks import check_array, check_range, check_shape, check_tensor, check_type


@dataclasses.dataclass(frozen=True)
class XorClusters:
    """The data's parameters: dimension, the means' norm and the rate at which training labels are flipped."""

    d: int = 2000
    mu_norm: float = 10.0  # ||mu_1|| = ||mu_2||
    flip: float = 0.1  # fraction of training labels flipped, in [0, 0.5)

    def __post_init__(self):
        check_range("d", self.d, 2, integer=True)
        check_range("mu_norm", self.mu_norm, 0, open_low=True)
        check_range("flip", self.flip, 0, 0.5, open_high=True)


def xor_means(data: XorClusters, rng: np.random.Generator) -> np.ndarray:
    """Two orthogonal means of norm ``data.mu_norm`` in random directions, shape (2, d) (a QR factor of a Gaussian
    matrix: orthogonal up to rounding)."""
    check_type("data", data, XorClusters, "an XorClusters")
    q, _ = np.linalg.qr(rng.standard_normal((data.d, 2)))
    return data.mu_norm * q.T


def check_means(means: np.ndarray) -> np.ndarray:
    """Two nonzero, orthogonal means of equal norm, shape (2, d), as an array."""
    means = check_array("means", means, ndim=2)
    check_shape("means", means, (2, None), "(2, d): mu_1 and mu_2")
    norms = np.linalg.norm(means, axis=1)
    if (norms == 0).any():
        raise ValueError("means holds a zero mean; mu_1 and mu_2 must be nonzero")
    if abs(means[0] @ means[1]) > 1e-8 * norms[0] * norms[1]:
        raise ValueError(
            f"means are not orthogonal (cosine {means[0] @ means[1] / norms.prod():.3g}); XOR needs mu_1 ⟂ mu_2"
        )
    if abs(norms[0] - norms[1]) > 1e-8 * norms.max():
        raise ValueError(f"means have norms {norms[0]:.6g} and {norms[1]:.6g}; they must be equal")
    return means


def sample_xor(
    means: np.ndarray, n: int, flip: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` points around ``means`` (2, d): inputs (n, d), clean labels in {-1, +1} (n,), and the labels with
    exactly round(flip * n) of them flipped (n,) (the test set takes ``flip`` = 0)."""
    means = check_means(means)
    check_range("n", n, 1, integer=True)
    check_range("flip", flip, 0, 0.5, open_high=True)
    cluster = rng.integers(0, 2, n)  # 0: mu_1 (label +1), 1: mu_2 (label -1)
    sign = rng.choice([-1.0, 1.0], size=n)
    x = sign[:, None] * means[cluster] + rng.standard_normal((n, means.shape[1]))
    clean = np.where(cluster == 0, 1.0, -1.0)
    noisy = clean.copy()
    noisy[rng.choice(n, int(round(flip * n)), replace=False)] *= -1
    return x, clean, noisy


class TwoLayerReLU(nn.Module):
    """f(x) = sum_j a_j ReLU(<w_j, x>): ``width`` neurons, w_j ~ N(0, init^2 I_d) (from torch's generator), the
    second layer a fixed buffer, +1/sqrt(m) for the first half of the neurons and -1/sqrt(m) for the rest."""

    def __init__(self, d: int, width: int, init: float):
        check_range("d", d, 1, integer=True)
        check_range("width", width, 2, integer=True)
        check_range("init", init, 0, open_low=True)
        super().__init__()
        self.w = nn.Parameter(init * torch.randn(width, d))
        a = torch.ones(width) / width**0.5
        a[width // 2 :] *= -1
        self.register_buffer("a", a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output per input, shape (N,)."""
        return torch.relu(x @ self.w.T) @ self.a


def signal_share(w: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """The share of the first layer's squared Frobenius norm in span(mu_1, mu_2): norm(W P)^2 / norm(W)^2 with P the
    projection onto the span. ``w`` is (..., m, d), ``means`` (2, d) orthogonal; returns shape (...)."""
    check_tensor("w", w)
    check_tensor("means", means)
    check_shape("means", means, (2, w.shape[-1]), "(2, d), d as w's last dimension")
    basis = means / means.norm(dim=1, keepdim=True)  # orthonormal: the means are orthogonal
    along = ((w @ basis.T) ** 2).sum((-1, -2))
    return along / (w**2).sum((-1, -2))
