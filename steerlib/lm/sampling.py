"""Batched sampling with a KV cache: temperature, a token budget, and a stop at the end token.

Prompts are left-padded so every row's next token sits in the last column, with positions counted from each row's
first real token. Temperature τ samples from softmax(logits / τ) (no top-k or top-p truncation); τ = 0 is greedy
decoding. A row stops after its end token; the returned response ids include it.

The decoding loop is our own, around the model's forward pass and a ``transformers`` ``DynamicCache`` (any Hugging
Face causal LM works), because at the chapters' shapes (a tiny model, ~1000 rows, k samples of each prompt) it
beats ``generate`` by doing less work: identical prompts of a batch are encoded once and their cache copied to each
copy's row, and rows that have emitted the end token leave the batch (their cache rows are dropped), so the last
steps only run the rows still writing. ``benchmarks/bench_lm.py`` measures it against ``generate`` (with its dynamic
and static caches); tests/test_lm_sampling.py checks that greedy output equals ``generate``'s and that sampled
tokens follow softmax(logits / τ).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from steerlib.core.checks import check_range, check_seed, check_type
from steerlib.core.runtime import progress_bar
from steerlib.lm.tokenizer import encode_prompts, pad, pad_id

SAMPLER = "steerlib-1"  # the sampler's version: chapters that cache sampled results put it in their cache keys


@dataclasses.dataclass
class Samples:
    texts: list[str]  # decoded responses without special tokens
    ids: list[list[int]]  # response token ids, ending with the end token when the model emitted it


def _draw(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """One token per row: ``argmax`` if τ = 0, else a draw from softmax(logits / τ) (torch's global generator)."""
    if temperature == 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits.float() / temperature, -1), 1)[:, 0]


@torch.no_grad()
def _decode(model: PreTrainedModel, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int, temperature: float,
           eos: int, pad_token: int, use_cache: bool = True) -> list[list[int]]:
    """Response ids of one batch of tokenised prompts (see the module docstring for how)."""
    device = next(model.parameters()).device
    unique = list(dict.fromkeys(map(tuple, prompt_ids)))  # each distinct prompt once, in order of appearance
    where = {p: i for i, p in enumerate(unique)}
    copies = torch.tensor([where[tuple(p)] for p in prompt_ids], device=device)
    ids = pad(unique, pad_token, side="left").to(device)
    mask = pad([[1] * len(p) for p in unique], 0, side="left").to(device)
    positions = (mask.cumsum(1) - 1).clamp(min=0)  # RoPE and learned positions count from the first real token
    cache = DynamicCache(config=model.config) if use_cache else None
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                   use_cache=use_cache, logits_to_keep=1).logits[:, -1]
    logits, ids, mask, positions = logits[copies], ids[copies], mask[copies], positions[copies]
    if use_cache:
        cache.batch_select_indices(copies)
    rows = torch.arange(len(prompt_ids), device=device)  # the batch's rows still writing, by original index
    out = torch.full((len(prompt_ids), max_new_tokens), pad_token, dtype=torch.long, device=device)
    for t in range(max_new_tokens):
        token = _draw(logits, temperature)
        out[rows, t] = token
        live = token != eos
        if t == max_new_tokens - 1 or not live.any():
            break
        if not live.all():  # finished rows leave the batch
            keep = live.nonzero()[:, 0]
            rows, token, ids, mask, positions = rows[keep], token[keep], ids[keep], mask[keep], positions[keep]
            if use_cache:
                cache.batch_select_indices(keep)
        ids = torch.cat([ids, token[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(token)[:, None]], 1)
        positions = torch.cat([positions, positions[:, -1:] + 1], 1)
        step = slice(-1, None) if use_cache else slice(None)  # with a cache, only the new token goes in
        logits = model(input_ids=ids[:, step], attention_mask=mask, position_ids=positions[:, step],
                       cache=cache, use_cache=use_cache, logits_to_keep=1).logits[:, -1]
    responses = []
    for row in out.tolist():
        responses.append(row[:row.index(eos) + 1] if eos in row else row)
    return responses


@torch.no_grad()
def sample(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
           max_new_tokens: int = 16, temperature: float = 1.0, seed: int = 0, batch_size: int = 256,
           use_cache: bool = True, progress: bool = False) -> Samples:
    """Sample one response per prompt; the same seed gives the same responses."""
    check_type("model", model, torch.nn.Module, "a causal LM (a transformers or peft model)")
    check_range("temperature", temperature, 0)
    check_range("max_new_tokens", max_new_tokens, 1, integer=True)
    check_seed("seed", seed)
    check_range("batch_size", batch_size, 1, integer=True)
    device = next(model.parameters()).device
    eos, pad_token = tokenizer.eos_token_id, pad_id(tokenizer)
    prompt_ids = encode_prompts(tokenizer, prompts)
    ids = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in progress_bar(range(0, len(prompt_ids), batch_size), desc="sample", leave=False, disable=not progress):
            ids += _decode(model, prompt_ids[i:i + batch_size], max_new_tokens, temperature, eos, pad_token, use_cache)
    return Samples([tokenizer.decode(r, skip_special_tokens=True).strip() for r in ids], ids)
