"""Sampled accuracy on a task with checkable answers (:mod:`steerlib.worlds.running_totals`).

The sampled accuracy of a problem is the fraction of its k responses, sampled at temperature T, whose final answer
is right: ``Acc = (1/k) Σ_j 1[answer(y_j) = answer]``. (The reasoning chapters' tiny model and its shared
pretraining are in :mod:`steerlib.chapters.reasoning.common`.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from steerlib.core.checks import check_range, check_same_length, check_strings
from steerlib.lm.sampling import sample
from steerlib.worlds.running_totals import answers_match


@dataclasses.dataclass
class Sampled:
    """``k`` sampled responses per problem and whether each one's final answer is right."""

    correct: np.ndarray  # (N, k) whether each sample's final answer is right
    texts: list[list[str]]  # (N, k) the sampled responses


def sampled_correct(
    model: torch.nn.Module,
    tokenizer,
    prompts: Sequence[str],
    answers: Sequence[int],
    k: int,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    batch_size: int = 1024,
) -> Sampled:
    """k responses to each prompt (:func:`~steerlib.lm.sampling.sample`, drawn with ``seed``) and whether each one's
    answer is right; ``correct.mean(1)`` is the sampled accuracy of each problem."""
    prompts = check_strings("prompts", prompts)
    check_same_length("prompts, answers", prompts, answers)
    check_range("k", k, 1, integer=True)
    out = sample(
        model, tokenizer, [p for p in prompts for _ in range(k)], max_new_tokens, temperature, seed, batch_size
    )
    correct = np.array([answers_match(t, int(answers[i // k])) for i, t in enumerate(out.texts)], dtype=bool)
    return Sampled(correct.reshape(len(prompts), k), [out.texts[i * k : (i + 1) * k] for i in range(len(prompts))])
