"""Batched sampling with a KV cache: temperature, a token budget, and a stop at the end token.

Prompts are left-padded so every row's next token sits in the last column; Hugging Face ``generate`` keeps the
key/value cache and the positions of padded rows. Temperature τ samples from softmax(logits / τ) (no top-k or top-p
truncation); τ = 0 is greedy decoding. A row stops after its end token; the returned response ids include it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from steerlib.core.checks import check_range, check_seed, check_type
from steerlib.core.runtime import progress_bar
from steerlib.lm.tokenizer import encode_prompts, pad, pad_id


@dataclasses.dataclass
class Samples:
    texts: list[str]  # decoded responses without special tokens
    ids: list[list[int]]  # response token ids, ending with the end token when the model emitted it


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
    gen = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=temperature > 0,
                           temperature=temperature if temperature > 0 else None, top_k=None, top_p=None,
                           eos_token_id=eos, pad_token_id=pad_token, use_cache=use_cache)
    prompt_ids = encode_prompts(tokenizer, prompts)
    texts, ids = [], []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in progress_bar(range(0, len(prompt_ids), batch_size), desc="sample", leave=False, disable=not progress):
            chunk = prompt_ids[i:i + batch_size]
            input_ids = pad(chunk, pad_token, side="left").to(device)
            mask = pad([[1] * len(p) for p in chunk], 0, side="left").to(device)
            out = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=gen)
            for row in out[:, input_ids.shape[1]:].tolist():
                response = row[:row.index(eos) + 1] if eos in row else row
                ids.append(response)
                texts.append(tokenizer.decode(response, skip_special_tokens=True).strip())
    return Samples(texts, ids)
