"""What the reasoning chapters share on the running-totals task (:mod:`steerlib.worlds.running_totals`): the tiny
model, its pretraining on a pool of problems with random traces (cached under one key, so every chapter and worker
process reads the same weights), and sampled accuracy.

Sampled accuracy of a problem is the fraction of its k responses, sampled at temperature T, whose final answer is
right: ``Acc = (1/k) Σ_j 1[answer(y_j) = answer]``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from datasets import Dataset

from steerlib.core.cache import RunCache
from steerlib.core.checks import check_range, check_same_length, check_strings, check_type
from steerlib.lm.base import BaseModel, BaseModelConfig, pretrained_base
from steerlib.lm.sampling import sample
from steerlib.lm.sft import SFTConfig
from steerlib.worlds.running_totals import TaskConfig, answers_match, vocabulary

TINY = BaseModelConfig(d_model=64, max_len=128)  # a 2-layer Llama on the task's words
PRETRAIN = SFTConfig(steps=4000, batch_size=64, lr=3e-3)  # the cpu pretraining of both chapters


def pretrained_on_task(task: TaskConfig, n_pretrain: int, base: BaseModelConfig, pretrain: SFTConfig, pool: Dataset,
                       seed: int, device: torch.device, cache: RunCache) -> BaseModel:
    """:func:`~steerlib.lm.base.pretrained_base` on the task's pool (the first ``n_pretrain`` problems that
    :func:`~steerlib.worlds.running_totals.splits` draws at ``seed``), keyed by the task and the pool's size."""
    check_type("task", task, TaskConfig, "a TaskConfig")
    check_range("n_pretrain", n_pretrain, 1, integer=True)
    check_type("pool", pool, Dataset, "the pretraining pool from running_totals.splits")
    if len(pool) != n_pretrain:
        raise ValueError(f"pool holds {len(pool)} problems but n_pretrain={n_pretrain}; pass the pool of that size")
    return pretrained_base(base, vocabulary(task), pool, pretrain, seed, device, cache,
                           key={"task": task, "n_pretrain": n_pretrain})


@dataclasses.dataclass
class Sampled:
    correct: np.ndarray  # (N, k) whether each sample's final answer is right
    texts: list[list[str]]  # (N, k) the sampled responses


def sampled_correct(model: torch.nn.Module, tokenizer, prompts: Sequence[str], answers: Sequence[int], k: int,
                    max_new_tokens: int, temperature: float, seed: int, batch_size: int = 1024) -> Sampled:
    """k responses to each prompt (:func:`~steerlib.lm.sampling.sample`) and whether each one's answer is right;
    ``correct.mean(1)`` is the sampled accuracy of each problem."""
    prompts = check_strings("prompts", prompts)
    check_same_length("prompts, answers", prompts, answers)
    check_range("k", k, 1, integer=True)
    out = sample(model, tokenizer, [p for p in prompts for _ in range(k)], max_new_tokens, temperature, seed,
                 batch_size)
    correct = np.array([answers_match(t, int(answers[i // k])) for i, t in enumerate(out.texts)], dtype=bool)
    return Sampled(correct.reshape(len(prompts), k), [out.texts[i * k:(i + 1) * k] for i in range(len(prompts))])
