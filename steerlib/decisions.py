"""Decision problems defined by a reward table: answer with a class or abstain.

With K classes the actions are 0..K-1 (predict that class) and K (abstain). A :class:`RewardTable` gives the reward
of a correct answer, a wrong answer and abstaining; the default is the dissertation's (+1, -4, 0).
"""
from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class RewardTable:
    correct: float = 1.0
    wrong: float = -4.0
    abstain: float = 0.0

    def __post_init__(self):
        if not self.wrong < self.abstain < self.correct:
            raise ValueError(f"reward table needs wrong < abstain < correct, got {self}")

    def targets(self, y: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Reward of every action for true labels ``y``: shape (..., K+1); ``correct`` at y, ``wrong`` elsewhere."""
        onehot = torch.nn.functional.one_hot(y.long(), num_classes).to(torch.float32)
        rewards = self.wrong + (self.correct - self.wrong) * onehot
        return torch.cat([rewards, torch.full_like(rewards[..., :1], self.abstain)], dim=-1)

    def expected_rewards(self, probs: torch.Tensor) -> torch.Tensor:
        """E[reward | action] under class probabilities p: ``wrong + (correct - wrong) p_c`` per class, then abstain.

        At the label marginal this is the OCS of reward regression (5 p_c - 4 for the default table).
        """
        answer = self.wrong + (self.correct - self.wrong) * probs
        return torch.cat([answer, torch.full_like(answer[..., :1], self.abstain)], dim=-1)

    @property
    def threshold(self) -> float:
        """Answer with the top class only if its probability exceeds (abstain - wrong) / (correct - wrong)."""
        return (self.abstain - self.wrong) / (self.correct - self.wrong)


DEFAULT_REWARDS = RewardTable()
