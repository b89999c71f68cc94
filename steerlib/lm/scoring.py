"""Batched teacher-forced scoring: sequence log-probabilities, per-token NLL, perplexity and choice probabilities.

For a prompt x and a response y = (y_1..y_T) (followed by the end token unless ``eos=False``):
``log p(y | x) = Σ_t log p(y_t | x, y_<t)``, per-token NLL ``-log p(y_t | x, y_<t)``, and over a set of responses
``perplexity = exp(Σ NLL / Σ T)``. Multiple-choice options are compared by their sequence log-probabilities,
normalised over the options: ``log p(option k | x) = log p(y_k | x) - logsumexp_j log p(y_j | x)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from steerlib.core.checks import (
    check_columns,
    check_nonempty,
    check_range,
    check_same_length,
    check_shape,
    check_strings,
    check_type,
)
from steerlib.lm.tokenizer import IGNORE, collate, encode_prompts, encode_responses, join, pad_id


@dataclasses.dataclass
class Scores:
    """Teacher-forced scores of responses: sequence log-probabilities, token counts and per-token NLLs."""

    logprob: torch.Tensor  # (N,) sequence log-probability of each response
    n_tokens: torch.Tensor  # (N,) scored tokens per response
    token_nll: list[torch.Tensor]  # per-token NLL of each response

    @property
    def mean_nll(self) -> torch.Tensor:
        """Per-response NLL averaged over its tokens."""
        return -self.logprob / self.n_tokens

    @property
    def perplexity(self) -> float:
        """Perplexity over every scored token of every response."""
        return math.exp(float(-self.logprob.sum() / self.n_tokens.sum()))


def label_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T) log-probability of each label token given the tokens before it; 0 where the label is -100.

    Position t's logits predict token t+1, so logits[:, :-1] are matched with labels[:, 1:] (position 0 gets 0).
    """
    check_type("logits", logits, torch.Tensor, "a (B, T, vocabulary) tensor")
    check_type("labels", labels, torch.Tensor, "a (B, T) tensor of token ids")
    check_shape("logits", logits, (*labels.shape, None), "labels' (B, T) and the vocabulary")
    target = labels[:, 1:]
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return torch.nn.functional.pad(picked.masked_fill(target == IGNORE, 0.0), (1, 0))


def batch_logprobs(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, T) label log-probabilities of a :func:`~steerlib.lm.tokenizer.collate` batch (differentiable)."""
    check_type("batch", batch, dict, "a dict from tokenizer.collate")
    check_columns("batch", batch, ("input_ids", "attention_mask", "labels"), "build it with tokenizer.collate")
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return label_logprobs(logits, batch["labels"])


@torch.no_grad()
def score_ids(
    model: PreTrainedModel,
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    pad_token_id: int,
    batch_size: int = 64,
) -> Scores:
    """Teacher-forced :class:`Scores` of token-id responses after token-id prompts."""
    check_type("model", model, torch.nn.Module, "a causal LM")
    check_range("pad_token_id", pad_token_id, 0, integer=True)
    check_range("batch_size", batch_size, 1, integer=True)
    device = next(model.parameters()).device
    ids, labels = join(prompt_ids, response_ids)
    logprob, n_tokens, token_nll = [], [], []
    for i in range(0, len(ids), batch_size):
        batch = {
            k: v.to(device)
            for k, v in collate(ids[i : i + batch_size], labels[i : i + batch_size], pad_token_id).items()
        }
        lp = batch_logprobs(model, batch).cpu()
        keep = batch["labels"].cpu() != IGNORE
        logprob.append(lp.sum(1))
        n_tokens.append(keep.sum(1))
        token_nll += [-row[m] for row, m in zip(lp, keep)]
    return Scores(torch.cat(logprob), torch.cat(n_tokens), token_nll)


def score(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    eos: bool = True,
    batch_size: int = 64,
) -> Scores:
    """Teacher-forced :class:`Scores` of ``responses`` after ``prompts`` (response + end token if ``eos``)."""
    check_same_length("prompts, responses", check_strings("prompts", prompts), check_strings("responses", responses))
    return score_ids(
        model,
        encode_prompts(tokenizer, prompts),
        encode_responses(tokenizer, responses, eos=eos),
        pad_id(tokenizer),
        batch_size,
    )


def choice_logprobs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    choices: Sequence[Sequence[str]],
    eos: bool = True,
    batch_size: int = 64,
) -> torch.Tensor:
    """(N, K) log-probabilities of the K choices of each prompt, normalised over the choices."""
    check_same_length("prompts, choices", check_strings("prompts", prompts), check_nonempty("choices", choices))
    k = len(check_strings("choices", choices[0]))
    if any(len(check_strings("choices", c)) != k for c in choices):
        raise ValueError("choices must give every prompt the same number of options")
    flat = score(
        model,
        tokenizer,
        [p for p in prompts for _ in range(k)],
        [c for cs in choices for c in cs],
        eos=eos,
        batch_size=batch_size,
    )
    return torch.log_softmax(flat.logprob.view(len(prompts), k), dim=-1)


@torch.no_grad()
def next_token_choice(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    options: Sequence[str],
    batch_size: int = 64,
) -> torch.Tensor:
    """(N, K) log-probabilities of K single-token ``options`` (e.g. ``" A"`` .. ``" D"``) as the next token of each
    prompt, normalised over the options: ``log p(o_k | x) - logsumexp_j log p(o_j | x)``. One forward pass per
    prompt (:func:`choice_logprobs` gives multi-token options, at K passes)."""
    check_strings("prompts", prompts)
    ids = encode_responses(tokenizer, check_strings("options", options), eos=False)
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"options must each be one token of the tokenizer; got {list(options)!r} -> {ids}")
    check_range("batch_size", batch_size, 1, integer=True)
    option_ids = torch.tensor([i[0] for i in ids])
    encoded = encode_prompts(tokenizer, prompts)
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(encoded), batch_size):
        rows = encoded[i : i + batch_size]
        batch = collate(rows, rows, pad_id(tokenizer))
        logits = model(
            input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
        ).logits
        last = torch.tensor([len(r) - 1 for r in rows], device=device)
        picked = logits[torch.arange(len(rows), device=device), last].float().cpu()[:, option_ids]
        out.append(torch.log_softmax(picked, dim=-1))
    return torch.cat(out)
