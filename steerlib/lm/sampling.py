"""Batched sampling with a KV cache: temperature, a token budget, and a stop at the end token.

Prompts are left-padded so every row's next token sits in the last column, with positions counted from each row's
first real token. Temperature τ samples from softmax(logits / τ) (no top-k or top-p truncation) by inverting its
cumulative sum at a uniform draw; τ = 0 is greedy decoding. A row stops after its end token; the returned response
ids include it.

The decoding loop is our own, around the model's forward pass (any Hugging Face causal LM, peft-wrapped or not),
because at the chapters' shapes (a tiny model, ~1000 rows, k samples of each prompt) it beats ``generate`` by doing
less work:

- identical prompts of a batch are encoded once and their cache copied to each copy's row;
- the KV cache is preallocated for the prompt and the token budget: a step writes its column in place and attention
  reads the columns written so far (a ``DynamicCache`` copies the whole cache at every step to append one column);
- a new token attends through two batched matmuls, softmax(q kᵀ · scale + mask) v, with the query heads that share
  a key/value head stacked as rows (SDPA's CPU kernel is slow for one query; the prompt still goes through SDPA);
- rows that have emitted the end token leave the batch once they are a quarter of it, so the last steps only run the
  rows still writing.

``benchmarks/bench_lm.py`` measures it against ``generate`` (with its dynamic and static caches);
tests/test_lm_sampling.py checks that greedy output equals ``generate``'s and that sampled tokens follow
softmax(logits / τ).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence

import torch
from transformers import AttentionInterface, Cache, PreTrainedModel, PreTrainedTokenizerBase
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from steerlib.core.checks import check_range, check_seed, check_type
from steerlib.core.runtime import in_phase, progress_bar
from steerlib.lm.tokenizer import encode_prompts, pad, pad_id

SAMPLER = "steerlib-2"  # the sampler's version: chapters that cache sampled results put it in their cache keys
_ATTENTION = "steerlib-decode"  # the attention implementation the sampler registers and switches models to


@dataclasses.dataclass
class Samples:
    """Sampled responses, as text and as token ids."""

    texts: list[str]  # decoded responses without special tokens
    ids: list[list[int]]  # response token ids, ending with the end token when the model emitted it


def _draw(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """One token per row: ``argmax`` if τ = 0, else the first token whose cumulative softmax(logits / τ) exceeds a
    uniform draw (torch's global generator)."""
    if temperature == 0:
        return logits.argmax(-1)
    cdf = torch.softmax(logits.float() / temperature, -1).cumsum(-1)
    u = torch.rand(len(cdf), 1, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True)[:, 0].clamp(max=cdf.shape[1] - 1)


def _attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """softmax(q kᵀ · scaling + mask) v for one new query per row: query [B, H, 1, d], key and value [B, H_kv, L, d],
    the boolean mask [B, 1, 1, L] (True: attend); the H / H_kv query heads of each key/value head are stacked as
    rows of one matmul, so the cache is neither copied nor repeated. Longer queries, and models whose attention
    does more (soft-capped scores, attention sinks), go to SDPA."""
    if query.shape[2] > 1 or kwargs.get("softcap") is not None or kwargs.get("s_aux") is not None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    b, h, _, d = query.shape
    scores = query.reshape(b, key.shape[1], -1, d) @ key.transpose(2, 3) * (d**-0.5 if scaling is None else scaling)
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, float("-inf"))
    out = torch.softmax(scores, -1, dtype=torch.float32).to(value.dtype) @ value  # [B, H_kv, H / H_kv, d]
    return out.reshape(b, 1, h, d), None


AttentionInterface.register(_ATTENTION, _attention)
AttentionMaskInterface.register(_ATTENTION, sdpa_mask)


@contextlib.contextmanager
def _decoding(model: PreTrainedModel) -> Iterator[None]:
    """Switch ``model`` to the sampler's attention for the duration, then back to its own."""
    own = model.config._attn_implementation
    model.set_attn_implementation(_ATTENTION)
    try:
        yield
    finally:
        model.set_attn_implementation(own)


class _Preallocated(DynamicLayer):
    """One layer's keys and values in buffers with room for the prompt and the token budget: each step writes its
    column in place, and attention reads a view of the columns written so far."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length = capacity, 0

    def update(self, keys: torch.Tensor, values: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.device, self.is_initialized = keys.device, True
            self._keys = keys.new_empty(*keys.shape[:2], self.capacity, keys.shape[-1])
            self._values = values.new_empty(*values.shape[:2], self.capacity, values.shape[-1])
        n = keys.shape[-2]
        self._keys[:, :, self.length : self.length + n] = keys
        self._values[:, :, self.length : self.length + n] = values
        self.length += n
        self.keys, self.values = self._keys[:, :, : self.length], self._values[:, :, : self.length]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys, self._values = self._keys[indices], self._values[indices]
        self.keys, self.values = self._keys[:, :, : self.length], self._values[:, :, : self.length]


@torch.no_grad()
def _decode(
    model: PreTrainedModel,
    prompt_ids: Sequence[Sequence[int]],
    max_new_tokens: int,
    temperature: float,
    eos: int,
    pad_token: int,
    use_cache: bool = True,
) -> list[list[int]]:
    """Response ids of one batch of tokenised prompts (see the module docstring for how)."""
    device = next(model.parameters()).device
    unique = list(dict.fromkeys(map(tuple, prompt_ids)))  # each distinct prompt once, in order of appearance
    where = {p: i for i, p in enumerate(unique)}
    copies = torch.tensor([where[tuple(p)] for p in prompt_ids], device=device)
    ids = pad(unique, pad_token, side="left").to(device)
    mask = pad([[1] * len(p) for p in unique], 0, side="left").to(device)
    positions = (mask.cumsum(1) - 1).clamp(min=0)  # RoPE and learned positions count from the first real token
    cache = None
    if use_cache:
        cache = Cache(
            layers=[_Preallocated(ids.shape[1] + max_new_tokens) for _ in range(model.config.num_hidden_layers)]
        )
    logits = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=use_cache, logits_to_keep=1
    ).logits[:, -1]
    logits, ids, mask, positions = logits[copies], ids[copies], mask[copies], positions[copies]
    if use_cache:
        cache.batch_select_indices(copies)
    rows = torch.arange(len(prompt_ids), device=device)  # each batch row's original index
    done = torch.zeros(len(prompt_ids), dtype=torch.bool, device=device)  # rows that have emitted the end token
    out = torch.full((len(prompt_ids), max_new_tokens), pad_token, dtype=torch.long, device=device)
    for t in range(max_new_tokens):
        token = _draw(logits, temperature)
        out[rows, t] = token.masked_fill(done, pad_token)
        done |= token == eos
        if t == max_new_tokens - 1 or done.all():
            break
        if 4 * done.sum() >= len(done):  # finished rows leave the batch once they are a quarter of it
            keep = (~done).nonzero()[:, 0]
            rows, token, ids, mask, positions, done = (x[keep] for x in (rows, token, ids, mask, positions, done))
            if use_cache:
                cache.batch_select_indices(keep)
        ids = torch.cat([ids, token[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(token)[:, None]], 1)
        positions = torch.cat([positions, positions[:, -1:] + 1], 1)
        step = slice(-1, None) if use_cache else slice(None)  # with a cache, only the new token goes in
        logits = model(
            input_ids=ids[:, step],
            attention_mask=mask,
            position_ids=positions[:, step],
            cache=cache,
            use_cache=use_cache,
            logits_to_keep=1,
        ).logits[:, -1]
    responses = []
    for row in out.tolist():
        responses.append(row[: row.index(eos) + 1] if eos in row else row)
    return responses


@torch.no_grad()
@in_phase("sampling")
def sample(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int = 16,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
    use_cache: bool = True,
    progress: bool = False,
) -> Samples:
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
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), _decoding(model):
        torch.manual_seed(seed)
        for i in progress_bar(range(0, len(prompt_ids), batch_size), desc="sample", leave=False, disable=not progress):
            ids += _decode(
                model, prompt_ids[i : i + batch_size], max_new_tokens, temperature, eos, pad_token, use_cache
            )
    return Samples([tokenizer.decode(r, skip_special_tokens=True).strip() for r in ids], ids)
