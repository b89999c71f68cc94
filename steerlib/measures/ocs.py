"""Closed-form optimal constant solutions (OCS): f* = argmin_f (1/N) sum_i L(f, y_i), independent of the input."""
from __future__ import annotations

import torch

from steerlib.measures.decisions import DEFAULT_REWARDS, RewardTable


def ocs_cross_entropy(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Cross-entropy: softmax(f*) = the empirical label marginal p(y) (logits are unique only up to a constant)."""
    return torch.bincount(y.long(), minlength=num_classes).to(torch.float32) / len(y)


def ocs_reward(y: torch.Tensor, num_classes: int, table: RewardTable = DEFAULT_REWARDS) -> torch.Tensor:
    """MSE reward prediction over K+1 actions: f*_c = wrong + (correct - wrong) p(c), f*_abstain = abstain.

    For the default table and balanced 10 classes that is -3.5 for every class and 0 for abstain.
    """
    return table.expected_rewards(ocs_cross_entropy(y, num_classes))


def ocs_gaussian(t: torch.Tensor) -> tuple[float, float]:
    """Gaussian NLL, log s^2 + (t - m)^2 / s^2: m* = mean(t), s*^2 = mean((t - m*)^2) (the biased variance)."""
    t = t.to(torch.float64)
    mu = t.mean()
    return float(mu), float(((t - mu) ** 2).mean())
