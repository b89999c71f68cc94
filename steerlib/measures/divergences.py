"""Divergences and distances between predictions (and entropy), pure functions on tensors. Each reduces over the
last dimension and keeps leading ones."""

from __future__ import annotations

import numpy as np
import torch

from steerlib.core.checks import check_range, check_shape, check_tensor


def _check_pair(
    name_p: str, p: torch.Tensor, name_q: str, q: torch.Tensor, low: float | None = 0.0, high: float | None = 1.0
) -> None:
    """Both are non-empty tensors of values in [low, high], and ``q``'s shape broadcasts to ``p``'s with the same
    last dimension (the classes or outputs)."""
    check_tensor(name_p, p, low, high)
    check_tensor(name_q, q, low, high)
    try:
        fits = p.dim() > 0 and q.shape[-1:] == p.shape[-1:] and torch.broadcast_shapes(p.shape, q.shape) == p.shape
    except RuntimeError:  # not broadcastable
        fits = False
    if not fits:
        raise ValueError(
            f"{name_q} has shape {tuple(q.shape)} and {name_p} {tuple(p.shape)}; {name_q} must broadcast "
            f"to {name_p}'s shape with the same last dimension"
        )


def kl_categorical(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_c p_c (log p_c - log q_c), with 0 log 0 = 0; ``q`` broadcasts to ``p``'s shape."""
    _check_pair("p", p, "q", q)
    p = p.to(torch.float64)
    q = q.to(torch.float64).expand_as(p)
    return torch.where(p > 0, p * (p.log() - q.log()), torch.zeros_like(p)).sum(-1)


def kl_gaussian(mu: torch.Tensor, var: torch.Tensor, mu0: float, var0: float) -> torch.Tensor:
    """KL(N(mu, var) || N(mu0, var0)) = log(s0/s) + (var + (mu - mu0)^2) / (2 var0) - 1/2."""
    check_tensor("mu", mu)
    check_shape("var", check_tensor("var", var, 0, allow_inf=True), tuple(mu.shape), "one variance per mean")
    check_range("mu0", mu0)
    check_range("var0", var0, 0, open_low=True)
    mu, var = mu.to(torch.float64), var.to(torch.float64)
    return 0.5 * np.log(var0) - 0.5 * var.log() + (var + (mu - mu0) ** 2) / (2 * var0) - 0.5


def squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b||^2 over the last dimension; ``b`` broadcasts to ``a``'s shape."""
    _check_pair("a", a, "b", b, low=None, high=None)
    return ((a.to(torch.float64) - b.to(torch.float64)) ** 2).sum(-1)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum_c p_c log p_c (nats)."""
    check_tensor("p", p, 0, 1)
    p = p.to(torch.float64)
    return -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(-1)
