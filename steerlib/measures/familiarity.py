"""Familiarity metrics of the dissertation's appendix B.1, for queries with a known answer.

(a) **mentions**: how many pretraining documents mention the query's entity. Exact in a synthetic world (the
    dissertation uses entity-linked document counts of The Pile).
(b) **option NLL**: the pretrained model's NLL of the correct option, normalised over the answer options,
    ``-log p(correct | x)`` (:func:`~steerlib.lm.scoring.choice_logprobs`); MMLU examples with NLL > 0.7 count
    as unfamiliar.
(c) **top-answer NLL**: a finetuned model's NLL of its own greedy answer, averaged over the answer's tokens,
    ``(1/T) Σ_t -log p(ŷ_t | x, ŷ_<t)``; TriviaQA finetuning examples above 0.045 count as unfamiliar.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from steerlib.core.checks import check_array, check_nonempty, check_range, check_same_length, check_strings
from steerlib.lm.sampling import Samples, sample
from steerlib.lm.scoring import choice_logprobs, score_ids
from steerlib.lm.tokenizer import encode_prompts, pad_id


def mention_counts(mentioned: Sequence[int], n_entities: int) -> np.ndarray:
    """(n_entities,) number of documents mentioning each entity, from the entity id of every document."""
    check_range("n_entities", n_entities, 1, integer=True)
    return np.bincount(check_array("mentioned", mentioned, 0, n_entities - 1, integer=True, ndim=1),
                       minlength=n_entities)


def option_nll(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
               options: Sequence[Sequence[str]], labels: Sequence[int], eos: bool = True) -> torch.Tensor:
    """(N,) metric (b): ``-log p(options[label] | prompt)`` with p normalised over the options."""
    check_same_length("prompts, options, labels", check_strings("prompts", prompts), check_nonempty("options", options),
                      labels)
    check_array("labels", labels, 0, len(options[0]) - 1, integer=True, ndim=1)
    logp = choice_logprobs(model, tokenizer, prompts, options, eos=eos)
    return -logp[torch.arange(len(prompts)), torch.as_tensor(labels)]


def top_answer_nll(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                   max_new_tokens: int = 16) -> tuple[Samples, torch.Tensor]:
    """Metric (c): the greedy answers and (N,) their per-token NLL (end token included) under ``model``."""
    answers = sample(model, tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=0.0)
    scores = score_ids(model, encode_prompts(tokenizer, prompts), answers.ids, pad_id(tokenizer))
    return answers, scores.mean_nll
