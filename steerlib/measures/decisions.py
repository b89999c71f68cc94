"""Decision problems defined by a reward table: answer with a class or abstain.

With K classes the actions are 0..K-1 (predict that class) and K (abstain). A :class:`RewardTable` gives the reward
of a correct answer, a wrong answer and abstaining; the default is the dissertation's (+1, -4, 0). From the table
follows everything section 2.5 needs: the reward-regression targets, the expected reward of each action under class
probabilities (at the label marginal: the OCS of the reward model), the action that OCS picks, and the Bayes-optimal
rule for a calibrated classifier, answer iff max_c p_c >= threshold. Policies and metrics are pure functions.
"""

from __future__ import annotations

import dataclasses

import torch

from steerlib.core.checks import check_range, check_shape, check_tensor, check_type


@dataclasses.dataclass(frozen=True)
class RewardTable:
    """The reward of a correct answer, a wrong answer and abstaining (wrong < abstain < correct)."""

    correct: float = 1.0
    wrong: float = -4.0
    abstain: float = 0.0

    def __post_init__(self):
        for name in ("correct", "wrong", "abstain"):
            check_range(name, getattr(self, name))
        if not self.wrong < self.abstain < self.correct:
            raise ValueError(f"reward table needs wrong < abstain < correct, got {self}")

    @property
    def label(self) -> str:
        """Short name for plots and tables: correct/wrong/abstain, e.g. ``+1/-4/0``."""
        return f"{self.correct:+g}/{self.wrong:g}/{self.abstain:g}"

    def targets(self, y: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Reward of every action for true labels ``y``: shape (..., K+1); ``correct`` at y, ``wrong`` elsewhere."""
        check_range("num_classes", num_classes, 1, integer=True)
        check_tensor("y", y, 0, num_classes - 1, integer=True)
        onehot = torch.nn.functional.one_hot(y.long(), num_classes).to(torch.float32)
        rewards = self.wrong + (self.correct - self.wrong) * onehot
        return torch.cat([rewards, torch.full_like(rewards[..., :1], self.abstain)], dim=-1)

    def expected_rewards(self, probs: torch.Tensor) -> torch.Tensor:
        """E[reward | action] under class probabilities p: ``wrong + (correct - wrong) p_c`` per class, then abstain.

        At the label marginal this is the OCS of reward regression (5 p_c - 4 for the default table).
        """
        check_tensor("probs", probs, 0, 1)
        answer = self.wrong + (self.correct - self.wrong) * probs
        return torch.cat([answer, torch.full_like(answer[..., :1], self.abstain)], dim=-1)

    @property
    def threshold(self) -> float:
        """Answer with the top class only if its probability exceeds (abstain - wrong) / (correct - wrong)."""
        return (self.abstain - self.wrong) / (self.correct - self.wrong)

    def bayes_policy(self, probs: torch.Tensor) -> torch.Tensor:
        """The reward-maximising action under calibrated ``probs`` (..., K): :func:`threshold_policy` at ``threshold``.

        Same as argmax_a of :meth:`expected_rewards`, since ``wrong + (correct - wrong) p >= abstain`` iff
        ``p >= threshold``.
        """
        return threshold_policy(probs, self.threshold)

    def ocs_action(self, label_marginal: torch.Tensor) -> int:
        """The action the reward model's OCS picks: the Bayes action at the label marginal.

        It abstains iff max_c p(c) < threshold; for K balanced classes, iff threshold > 1/K.
        """
        check_shape("label_marginal", label_marginal, (None,), "one probability per class")
        return int(self.bayes_policy(label_marginal))

    def rewards(self, actions: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Reward of each taken action: ``abstain`` if it is K, ``correct`` if it equals the label y, else ``wrong``."""
        check_range("num_classes", num_classes, 1, integer=True)
        check_tensor("actions", actions, 0, num_classes, integer=True)
        check_tensor("y", y, 0, num_classes - 1, integer=True)
        if actions.shape[-y.dim() :] != y.shape:
            raise ValueError(
                f"actions has shape {tuple(actions.shape)} and y {tuple(y.shape)}; the last dimensions of "
                "actions must be y's (one action per label)"
            )
        answered = torch.where(actions == y, self.correct, self.wrong)
        return torch.where(actions == num_classes, self.abstain, answered).to(torch.float32)


DEFAULT_REWARDS = RewardTable()


def greedy_policy(scores: torch.Tensor) -> torch.Tensor:
    """pi(x) = argmax_a f(x)_a: for a reward model the action with the highest predicted reward.

    A classifier with K outputs and no abstain output never abstains under this policy.
    """
    if check_tensor("scores", scores, allow_inf=True).dim() == 0:
        raise ValueError("scores is a scalar; it needs a last dimension of actions")
    return scores.argmax(-1)


def threshold_policy(probs: torch.Tensor, threshold: float) -> torch.Tensor:
    """Answer argmax_c p_c if max_c p_c >= ``threshold``, else abstain (action K)."""
    if check_tensor("probs", probs, 0, 1).dim() == 0:
        raise ValueError("probs is a scalar; it needs a last dimension of classes")
    check_range("threshold", threshold, 0, 1)
    top, cls = probs.max(-1)
    return torch.where(top >= threshold, cls, probs.shape[-1])


def abstain_ratio(actions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Fraction of decisions that abstain: mean over the last dimension of [a == K]."""
    check_range("num_classes", num_classes, 1, integer=True)
    check_tensor("actions", actions, 0, num_classes, integer=True)
    return (actions == num_classes).to(torch.float32).mean(-1)


def mean_reward(actions: torch.Tensor, y: torch.Tensor, table: RewardTable, num_classes: int) -> torch.Tensor:
    """Average reward over the last dimension: (1/N) sum_i r(a_i, y_i)."""
    check_type("table", table, RewardTable, "a RewardTable")
    return table.rewards(actions, y, num_classes).mean(-1)
