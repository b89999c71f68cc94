"""Familiarity metrics of the dissertation's appendix B.1, for queries with a known answer.

- (a) **mentions**: how many pretraining documents mention the query's entity. Exact in a synthetic world (the
  dissertation uses entity-linked document counts of The Pile).
- (b) **option NLL**: the pretrained model's NLL of the correct option, normalised over the answer options,
  ``-log p(correct | x)`` (:func:`~steerlib.lm.scoring.choice_logprobs`); MMLU examples with NLL > 0.7 count
  as unfamiliar.
- (b') **sampled accuracy** (the research code's TriviaQA metric): the fraction of k answers sampled from the
  pretrained model's few-shot prompt at temperature T that are correct, ``(1/k) Σ_j 1[ŷ_j correct]``,
  ``ŷ_j ~ p_T(·|x)``; the code samples k = 12 at T = 0.8 and calls questions below the 40th percentile unfamiliar.
- (c) **top-answer NLL**: a finetuned model's NLL of its own greedy answer, averaged over the answer's tokens,
  ``(1/T) Σ_t -log p(ŷ_t | x, ŷ_<t)``; TriviaQA finetuning examples above 0.045 count as unfamiliar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from steerlib.core.checks import (
    check_array,
    check_nonempty,
    check_range,
    check_same_length,
    check_seed,
    check_strings,
    check_type,
)
from steerlib.lm.sampling import Samples, sample
from steerlib.lm.scoring import choice_logprobs, score_ids
from steerlib.lm.tokenizer import encode_prompts, pad_id


def mention_counts(mentioned: Sequence[int], n_entities: int) -> np.ndarray:
    """(n_entities,) number of documents mentioning each entity, from the entity id of every document."""
    check_range("n_entities", n_entities, 1, integer=True)
    return np.bincount(
        check_array("mentioned", mentioned, 0, n_entities - 1, integer=True, ndim=1), minlength=n_entities
    )


def option_nll(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    options: Sequence[Sequence[str]],
    labels: Sequence[int],
    eos: bool = True,
) -> torch.Tensor:
    """(N,) metric (b): ``-log p(options[label] | prompt)`` with p normalised over the options."""
    check_same_length(
        "prompts, options, labels", check_strings("prompts", prompts), check_nonempty("options", options), labels
    )
    check_array("labels", labels, 0, len(options[0]) - 1, integer=True, ndim=1)
    logp = choice_logprobs(model, tokenizer, prompts, options, eos=eos)
    return -logp[torch.arange(len(prompts)), torch.as_tensor(labels)]


def top_answer_nll(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], max_new_tokens: int = 16
) -> tuple[Samples, torch.Tensor]:
    """Metric (c): the greedy answers and (N,) their per-token NLL (end token included) under ``model``."""
    answers = sample(model, tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=0.0)
    scores = score_ids(model, encode_prompts(tokenizer, prompts), answers.ids, pad_id(tokenizer))
    return answers, scores.mean_nll


def sampled_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    correct: Callable[[int, str], bool],
    k: int = 12,
    temperature: float = 0.8,
    max_new_tokens: int = 16,
    seed: int = 0,
) -> tuple[np.ndarray, list[list[str]]]:
    """Metric (b'): (N,) fraction of ``k`` sampled answers to each prompt for which ``correct(i, text)`` holds
    (i: the prompt's index), and the (N, k) sampled texts."""
    prompts = check_strings("prompts", prompts)
    check_type("correct", correct, Callable, "a function correct(index, text) -> bool")
    check_range("k", k, 1, integer=True)
    check_range("temperature", temperature, 0, open_low=True)
    check_seed("seed", seed)
    texts = sample(
        model,
        tokenizer,
        [p for p in prompts for _ in range(k)],
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
    ).texts
    rows = [texts[i * k : (i + 1) * k] for i in range(len(prompts))]
    return np.array([np.mean([bool(correct(i, t)) for t in row]) for i, row in enumerate(rows)]), rows
