"""Divergences and distances between predictions (and entropy), pure functions on tensors. Each reduces over the last dimension and keeps leading ones."""
from __future__ import annotations

import numpy as np
import torch


def kl_categorical(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_c p_c (log p_c - log q_c), with 0 log 0 = 0."""
    p = p.to(torch.float64)
    q = q.to(torch.float64).expand_as(p)
    return torch.where(p > 0, p * (p.log() - q.log()), torch.zeros_like(p)).sum(-1)


def kl_gaussian(mu: torch.Tensor, var: torch.Tensor, mu0: float, var0: float) -> torch.Tensor:
    """KL(N(mu, var) || N(mu0, var0)) = log(s0/s) + (var + (mu - mu0)^2) / (2 var0) - 1/2."""
    mu, var = mu.to(torch.float64), var.to(torch.float64)
    return 0.5 * np.log(var0) - 0.5 * var.log() + (var + (mu - mu0) ** 2) / (2 * var0) - 0.5


def squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b||^2 over the last dimension."""
    return ((a.to(torch.float64) - b.to(torch.float64)) ** 2).sum(-1)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum_c p_c log p_c (nats)."""
    p = p.to(torch.float64)
    return -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(-1)
