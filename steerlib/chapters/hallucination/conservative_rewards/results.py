"""What the chapter's :func:`~steerlib.chapters.hallucination.conservative_rewards.experiment.run` returns: each
policy's responses to the held-out people with their checked facts, each reward model's predictions, the reward
models' training labels and the RL training logs, as typed records of arrays."""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class PolicyEval:
    """One policy's sampled responses to the held-out prompts (``Results.prompts`` order) and, per response, its
    numbers of true, false and unparsed clauses by the exact checker."""

    n_true: np.ndarray
    n_false: np.ndarray
    n_invalid: np.ndarray
    texts: list[str]


@dataclasses.dataclass
class RewardModelEval:
    """One reward model: its predicted reward of each SFT response to the held-out prompts, and its probability
    that each clause of the balanced per-fact test is true (``Results.balanced_truth`` order)."""

    predicted: np.ndarray
    balanced_prob: np.ndarray


@dataclasses.dataclass
class OwnReward:
    """An RL run's own reward of fresh samples on its training prompts (``eval_samples`` per person): per response,
    the person's id, the reward of the RL policy's response and of the SFT model's."""

    person: np.ndarray
    rl: np.ndarray
    sft: np.ndarray


@dataclasses.dataclass
class FactLabels:
    """A reward model's training facts: each fact's person's mention count and its label (1 true, 0 false)."""

    mentions: np.ndarray
    label: np.ndarray


@dataclasses.dataclass
class Results:
    """One seed's results; ``others`` holds the same experiment at the next seeds (their own ``others`` empty)."""

    seed: int
    bins: tuple[int, ...]
    max_facts: int
    pretrain_loss: list[float]
    person: np.ndarray  # per held-out response: the person's id
    mentions: np.ndarray  # ... and mention count
    prompts: list[str]
    policies: dict[str, PolicyEval]  # "sft" and each RL reward
    reward_models: dict[str, RewardModelEval]  # "standard", "conservative"
    balanced_mentions: np.ndarray  # the balanced per-fact test: each clause's person's mention count
    balanced_truth: np.ndarray  # ... and whether the clause is true
    rm_data: dict[str, FactLabels]  # each reward model's training labels
    rl_history: dict[str, list[dict[str, float]]]  # per RL reward: per-step mean reward and KL
    own_reward: dict[str, OwnReward]  # per RL reward: its reward of the RL policy's and SFT's fresh samples
    seconds: dict[str, float]
    others: list[Results] = dataclasses.field(default_factory=list)
