"""Closed-form optimal constant solutions (OCS): f* = argmin_f (1/N) sum_i L(f, y_i), independent of the input."""

from __future__ import annotations

import torch

from steerlib.core.checks import check_array, check_range, check_type
from steerlib.measures.decisions import DEFAULT_REWARDS, RewardTable


def ocs_cross_entropy(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Cross-entropy: softmax(f*) = the empirical label marginal p(y) (logits are unique only up to a constant).

    ``y`` holds at least one label, each in 0..num_classes-1."""
    check_range("num_classes", num_classes, 1, integer=True)
    y = torch.as_tensor(check_array("y", y, 0, num_classes - 1, integer=True, ndim=1))
    return torch.bincount(y.long(), minlength=num_classes).to(torch.float32) / len(y)


def ocs_reward(y: torch.Tensor, num_classes: int, table: RewardTable = DEFAULT_REWARDS) -> torch.Tensor:
    """MSE reward prediction over K+1 actions: f*_c = wrong + (correct - wrong) p(c), f*_abstain = abstain.

    For the default table and balanced 10 classes that is -3.5 for every class and 0 for abstain.
    """
    check_type("table", table, RewardTable, "a RewardTable")
    return table.expected_rewards(ocs_cross_entropy(y, num_classes))


def ocs_gaussian(t: torch.Tensor) -> tuple[float, float]:
    """Gaussian NLL, log s^2 + (t - m)^2 / s^2: m* = mean(t), s*^2 = mean((t - m*)^2) (the biased variance)."""
    t = torch.as_tensor(check_array("t", t), dtype=torch.float64)
    mu = t.mean()
    return float(mu), float(((t - mu) ** 2).mean())
