"""Tokenisers: a word-level vocabulary for synthetic worlds, and the encoding shared with Hugging Face tokenisers.

Everything in :mod:`steerlib.lm` takes a Hugging Face tokenizer, so a synthetic world and a real pretrained model go
through the same code. :func:`word_tokenizer` wraps a ``tokenizers`` WordLevel model: text is split on whitespace
and punctuation, every word is one token, and ``<bos>`` is prepended to encoded text.

A finetuning example is ``prompt ids + response ids + [eos]``; its labels are ``-100`` (ignored by the loss) on the
prompt, so the SFT loss covers the response tokens and the end token only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from steerlib.core.checks import (
    check_choice,
    check_columns,
    check_nonempty,
    check_range,
    check_same_length,
    check_sequence,
    check_strings,
    check_type,
)

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
IGNORE = -100  # label of tokens the loss skips (Hugging Face's convention)


def word_tokenizer(texts: Sequence[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary is every word and punctuation mark in ``texts`` (sorted)."""
    texts = check_strings("texts", texts)
    split = pre_tokenizers.Whitespace()
    words = sorted({w for text in texts for w, _ in split.pre_tokenize_str(text)})
    if not words:
        raise ValueError(f"texts={texts[:3]!r} hold no words; give the texts whose words make the vocabulary")
    vocab = {w: i for i, w in enumerate(list(SPECIAL_TOKENS) + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = split
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>"
    )


def check_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """``tokenizer`` if it is a Hugging Face tokenizer with an end token (and so a padding id); else raise."""
    check_type("tokenizer", tokenizer, PreTrainedTokenizerBase, "a Hugging Face tokenizer")
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has no end token (eos_token); set tokenizer.eos_token")
    return tokenizer


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The padding id: the tokenizer's pad token, else its end token (padding is always masked out)."""
    check_tokenizer(tokenizer)
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of each prompt, with the tokenizer's own special tokens (e.g. ``<bos>``)."""
    return check_tokenizer(tokenizer)(check_strings("prompts", prompts))["input_ids"]


def encode_responses(tokenizer: PreTrainedTokenizerBase, responses: Sequence[str], eos: bool = True) -> list[list[int]]:
    """Token ids of each response without special tokens, followed by the end token if ``eos``."""
    check_type("eos", eos, bool, "True or False")
    ids = check_tokenizer(tokenizer)(check_strings("responses", responses), add_special_tokens=False)["input_ids"]
    return [r + [tokenizer.eos_token_id] for r in ids] if eos else ids


def join(
    prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]]
) -> tuple[list[list[int]], list[list[int]]]:
    """``input_ids = prompt + response`` and ``labels = [-100] * len(prompt) + response`` for each pair."""
    for name, ids in (("prompt_ids", prompt_ids), ("response_ids", response_ids)):
        check_sequence(name, ids, "a list of token-id lists")
    check_same_length("prompt_ids, response_ids", prompt_ids, response_ids)
    ids = [list(p) + list(r) for p, r in zip(prompt_ids, response_ids)]
    labels = [[IGNORE] * len(p) + list(r) for p, r in zip(prompt_ids, response_ids)]
    return ids, labels


def tokenize_sft(
    data: Dataset, tokenizer: PreTrainedTokenizerBase, prompt: str = "prompt", response: str = "response"
) -> Dataset:
    """Add ``input_ids`` and ``labels`` columns (see :func:`join`); responses end with the end token."""
    check_type("data", data, Dataset, "a datasets.Dataset")
    check_nonempty("data", data)
    check_columns("data", data.column_names, (prompt, response), "name its columns with prompt= and response=")
    check_tokenizer(tokenizer)

    def encode(batch):
        ids, labels = join(encode_prompts(tokenizer, batch[prompt]), encode_responses(tokenizer, batch[response]))
        return {"input_ids": ids, "labels": labels}

    return data.map(encode, batched=True, desc="tokenize")


def pad(seqs: Sequence[Sequence[int]], value: int, side: str = "right") -> torch.Tensor:
    """Stack sequences into a (N, max length) long tensor, padding with ``value`` on ``side`` (left for sampling)."""
    check_choice("side", side, ("left", "right"))
    check_range("value", value, integer=True)
    check_nonempty("seqs", seqs)
    tensors = [torch.tensor(s, dtype=torch.long) for s in seqs]
    return torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=value, padding_side=side)


def collate(
    input_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], pad_token_id: int
) -> dict[str, torch.Tensor]:
    """A right-padded batch: ``input_ids``, ``attention_mask`` (0 on padding) and ``labels`` (-100 on padding)."""
    for name, ids in (("input_ids", input_ids), ("labels", labels)):
        check_sequence(name, ids, "a list of token-id lists")
    check_same_length("input_ids, labels", input_ids, labels)
    if any(len(i) != len(t) for i, t in zip(input_ids, labels)):
        raise ValueError("input_ids and labels must have the same length in every row (labels -100 where ignored)")
    ids = pad(input_ids, pad_token_id)
    mask = pad([[1] * len(s) for s in input_ids], 0)
    return {"input_ids": ids, "attention_mask": mask, "labels": pad(labels, IGNORE)}
