"""What the chapter's :func:`~steerlib.chapters.hallucination.unfamiliar_examples.experiment.run` returns: the
per-example results of the gate check, the familiarity metrics and E1–E3, as typed records of arrays."""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Familiarity:
    """The finetuning questions' familiarity: the MC questions' mention counts, metric (b) and whether (b) calls them
    unfamiliar; E3's QA questions' mention counts, metric (c) and whether (c) relabelled them."""

    mentions: np.ndarray
    option_nll: np.ndarray
    unfamiliar: np.ndarray
    qa_mentions: np.ndarray
    answer_nll: np.ndarray
    relabelled: np.ndarray


@dataclasses.dataclass
class Gate:
    """Held-out QA after standard SFT: each question's mention count, attribute and grade (0 false, 1 correct, 2
    "I don't know")."""

    mentions: np.ndarray
    attribute: np.ndarray
    grade: np.ndarray


@dataclasses.dataclass
class E1:
    """Held-out MC questions (mentions, attribute, true label) with (N, 4) option probabilities of models (i) and
    (ii), the label marginals of their finetuning sets, metric (b) of the pretrained model and the (N, 4) votes of
    each question's namesakes (:func:`~steerlib.worlds.knowledge.namesake_votes`)."""

    mentions: np.ndarray
    attribute: np.ndarray
    label: np.ndarray
    probs_i: np.ndarray
    probs_ii: np.ndarray
    marginal_i: np.ndarray
    marginal_ii: np.ndarray
    option_nll: np.ndarray
    namesakes: np.ndarray


@dataclasses.dataclass
class RLRun:
    """One RL model of E2: (N, 5) option probabilities on the held-out questions and the per-step training log."""

    probs: np.ndarray
    history: list[dict[str, float]]


@dataclasses.dataclass
class E2:
    """Held-out MC questions with E = "I don't know": (N, 5) option probabilities of the SFT start, and the RL model
    of each reward by its name ("R1", "R2")."""

    mentions: np.ndarray
    label: np.ndarray
    probs_sft: np.ndarray
    rl: dict[str, RLRun]


@dataclasses.dataclass
class E3:
    """Held-out QA: each question's mention count and its grade under standard and relabelled SFT."""

    mentions: np.ndarray
    grade_standard: np.ndarray
    grade_relabelled: np.ndarray


@dataclasses.dataclass
class Results:
    """One seed's results; ``others`` holds the same experiment at the next seeds (their own ``others`` empty),
    whose values widen the claims' intervals to the seed-to-seed spread."""

    seed: int
    bins: tuple[int, ...]
    pretrain_loss: list[float]
    familiarity: Familiarity
    gate: Gate
    e1: E1
    e2: E2
    e3: E3
    seconds: dict[str, float]
    others: list[Results] = dataclasses.field(default_factory=list)
