"""The base model every LM chapter starts from: a tiny model on a synthetic world's vocabulary, or a pretrained causal
LM, then pretrained (cached) on the world's corpus.

At the cpu profile a chapter builds a tiny model whose vocabulary is its world's words; at ``paper`` it names any
Hugging Face causal LM (``"smollm2-135m-instruct"``, a folder or a hub id) and keeps that model's tokenizer. Either
way the model is then pretrained on the world's corpus with :func:`~steerlib.lm.sft.train_sft`, cached under a key
of the base model, the corpus and the seed, so every chapter and worker process that asks for the same base model
reads it from the run cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from typing import Any

import torch
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from steerlib.core.cache import RunCache
from steerlib.core.checks import (
    RUN_SEED_MAX,
    check_choice,
    check_nonempty,
    check_range,
    check_seed,
    check_strings,
    check_type,
)
from steerlib.core.scale import Scale, cube_root_times
from steerlib.lm.models import ARCHS, PRETRAINED, build_model, load_causal_lm, tiny_config
from steerlib.lm.sft import SFTConfig, train_sft
from steerlib.lm.tokenizer import pad_id, tokenize_sft, word_tokenizer


@dataclasses.dataclass(frozen=True)
class BaseModelConfig:
    """``model="tiny"`` builds a ``arch`` model of ``n_layers`` x ``d_model`` with ``n_heads`` heads and positions up
    to ``max_len``; any other ``model`` is a pretrained causal LM's name, folder or hub id (the rest is ignored)."""

    model: str = "tiny"
    arch: str = "llama"
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    max_len: int = 256

    def __post_init__(self):
        check_nonempty("model", check_type("model", self.model, str, "'tiny', a model folder or a hub id"))
        check_choice("arch", self.arch, ARCHS)
        for name in ("d_model", "n_layers", "n_heads", "max_len"):
            check_range(name, getattr(self, name), 1, integer=True)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}")


@dataclasses.dataclass
class BaseModel:
    """The pretrained base model (eval mode, on the run's device), its tokenizer, pretraining losses and cache key."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    losses: list[float]
    key: dict[str, Any]


def scaled_base(cfg: BaseModelConfig, factor: float) -> BaseModelConfig:
    """The tiny model of ``cfg`` with ``d_model`` x ``factor``^(1/3), rounded to a multiple of twice its heads (rotary
    embeddings need an even head width): with the steps times the same, the training compute
    (:func:`training_flops`) grows about ``factor``-fold."""
    check_type("cfg", cfg, BaseModelConfig, "a BaseModelConfig")
    if cfg.model != "tiny":
        raise ValueError(f"cfg.model={cfg.model!r} is a pretrained model, whose width is fixed; scale the tiny model")
    return dataclasses.replace(cfg, d_model=cube_root_times(cfg.d_model, factor, 2 * cfg.n_heads))


def training_flops(cfg: BaseModelConfig, steps: int, batch_size: int, seq_len: int) -> float:
    """6 N T of training the model of ``cfg``, T = steps x batch_size x seq_len tokens. The tiny model: N =
    n_layers d_model^2 times 16 for a llama block (attention 4 d^2, a SwiGLU MLP of width 4 d 12 d^2) or 12 for a
    gpt2 block (a plain MLP, 8 d^2), embeddings left out. A pretrained model of
    :data:`~steerlib.lm.models.PRETRAINED`: N its parameters, and its own pretraining's tokens added to T; NaN for
    another hub model, whose pretraining is not known here."""
    check_type("cfg", cfg, BaseModelConfig, "a BaseModelConfig")
    for name, n in (("steps", steps), ("batch_size", batch_size), ("seq_len", seq_len)):
        check_range(name, n, 1, integer=True)
    tokens = steps * batch_size * seq_len
    if cfg.model != "tiny":
        parameters, pretraining = PRETRAINED.get(cfg.model, (math.nan, math.nan))
        return 6.0 * parameters * (pretraining + tokens)
    per_block = 16 if cfg.arch == "llama" else 12
    return 6.0 * per_block * cfg.n_layers * cfg.d_model**2 * tokens


BEYOND = (1 / 32, 1 / 8, 1 / 4, 1 / 2, 2.0, 4.0, 8.0)  # make sweeps' factors of a language-model axis by default


def pretraining_scale(
    claims: tuple[str, ...], seq_len: int, knob: str = "", beyond: tuple[float, ...] = BEYOND
) -> Scale:
    """A language-model chapter's scale axis (:mod:`steerlib.core.scale`) tracking ``claims``: the tiny model's width
    (:func:`scaled_base`) and its pretraining's steps each x ``factor``^(1/3), the finetuning as it is (the chapter's
    Settings have ``base`` and ``pretrain``); compute: the pretraining's FLOPs (:func:`training_flops`, ``seq_len``
    tokens a sequence). ``knob`` adds to the knob's description. A point costs about half the chapter even at 1/32 of
    its compute, since sampling and finetuning do not shrink with the model (pre-memorization at 1/32: 506 CPU s
    against 1,138 at cpu, measured 2026-12-07), so the book runs the profile's point alone at cpu (1/4 and 1 at
    smoke, to exercise the path) and ``make sweeps`` runs ``beyond`` (by default ``BEYOND``: 1/32 to 1/2 and 2, 4
    and 8)."""
    check_range("seq_len", seq_len, 1, integer=True)

    def apply(settings: Any, factor: float) -> Any:
        pretrain = dataclasses.replace(settings.pretrain, steps=cube_root_times(settings.pretrain.steps, factor))
        return dataclasses.replace(settings, base=scaled_base(settings.base, factor), pretrain=pretrain)

    def compute(settings: Any) -> float:
        return training_flops(settings.base, settings.pretrain.steps, settings.pretrain.batch_size, seq_len)

    return Scale(
        knob="the tiny model's width and its pretraining steps, each x factor^(1/3)" + (f"; {knob}" if knob else ""),
        apply=apply,
        compute=compute,
        claims=claims,
        factors={"smoke": (0.25, 1.0), "cpu": (1.0,)},  # paper: a pretrained model, whose width is fixed
        beyond=beyond,
    )


def corpus_digest(texts: Sequence[str]) -> str:
    """First 16 hex digits of the SHA-256 of the texts, one per line."""
    texts = check_strings("texts", texts)
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]


def build_base(
    cfg: BaseModelConfig, vocabulary: Sequence[str], seed: int, cache: RunCache | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model of ``cfg`` before any training on the world, and its tokenizer: a tiny model on a word
    tokenizer of ``vocabulary`` (initial weights from ``seed``), or the pretrained causal LM ``cfg.model`` and its
    own tokenizer (``vocabulary`` and ``seed`` unused)."""
    check_type("cfg", cfg, BaseModelConfig, "a BaseModelConfig")
    if cfg.model != "tiny":
        return load_causal_lm(cfg.model, cache)
    tok = word_tokenizer(check_nonempty("vocabulary", check_strings("vocabulary", vocabulary)))
    return build_model(tiny_config(tok, cfg.arch, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.max_len), seed), tok


def pretrained_base(
    cfg: BaseModelConfig,
    vocabulary: Sequence[str],
    corpus: Dataset,
    pretrain: SFTConfig,
    seed: int,
    device: torch.device,
    cache: RunCache,
    key: dict[str, Any],
) -> BaseModel:
    """Build or load the base model of ``cfg`` and pretrain it on ``corpus`` (columns ``prompt``, ``response``).

    ``seed`` draws a tiny model's initial weights (a run's ``init`` stream); the pretraining's data order is
    ``pretrain.seed`` (its ``order`` stream). ``vocabulary`` is the world's words (for a tiny model's tokenizer);
    ``key`` describes the world. The returned ``BaseModel.key`` (``key`` plus ``cfg``, ``pretrain`` and ``seed``)
    identifies the pretrained weights, so later stages build their own cache keys on it."""
    check_type("cfg", cfg, BaseModelConfig, "a BaseModelConfig")
    check_type("pretrain", pretrain, SFTConfig, "an SFTConfig")
    check_type("corpus", corpus, Dataset, "a datasets.Dataset with columns prompt and response")
    check_nonempty("corpus", corpus)
    check_seed("seed", seed, RUN_SEED_MAX)
    check_type("cache", cache, RunCache, "a RunCache")
    check_type("key", key, dict, "a dict describing the world")
    model, tok = build_base(cfg, vocabulary, seed, cache)
    full_key = {**key, "base": cfg, "pretrain": pretrain, "seed": seed, "stage": "pretrain"}
    losses = train_sft(
        model, lambda: tokenize_sft(corpus, tok), pretrain, pad_id(tok), device, cache, full_key, desc="pretrain"
    )  # tokenized only if not in the cache
    return BaseModel(model.to(device).eval(), tok, losses, full_key)
