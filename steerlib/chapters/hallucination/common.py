"""What the chapters of Part II share: the made-up world and its pretrained model, replayed pretraining documents,
and the selective accuracy of answers that may be "I don't know".

Unfamiliar examples and conservative rewards pretrain a model on a :mod:`~steerlib.worlds.knowledge` world
(:func:`pretrained_world`) and mix pretraining documents into finetuning (:func:`replay`); unfamiliar examples and
real facts compare the selective accuracy of a standard and a relabelled model against a noise floor
(:func:`selective_accuracy`, :func:`selective_floor`). Every random draw comes from the run's streams
(:mod:`steerlib.core.seeds`), never from the chapter: the world from ``world``, the model's initialisation from
``init``, and the pretraining's cache key names no chapter, so two chapters with the same world and base model at
the same seed and replicate share the pretrained model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from datasets import Dataset

from steerlib.core.chapter import Run
from steerlib.core.checks import check_range, check_seed, check_type
from steerlib.lm.base import BaseModel, BaseModelConfig, corpus_digest, pretrained_base
from steerlib.lm.sft import SFTConfig
from steerlib.worlds.knowledge import ATTRIBUTES, KnowledgeWorld, WorldConfig, make_world, vocabulary

DOCUMENT_WORDS = 21  # words of a pretraining document of the cpu world (its mean, measured 2026-12-07)


def rows(prompts: Sequence[str], responses: Sequence[str]) -> Dataset:
    """SFT examples: columns ``prompt`` and ``response``."""
    return Dataset.from_dict({"prompt": list(prompts), "response": list(responses)})


def documents(texts: Sequence[str]) -> Dataset:
    """Pretraining documents as SFT examples: an empty prompt, so the loss covers the whole (space-led) text."""
    return rows([""] * len(texts), [" " + t for t in texts])


def world(cfg: WorldConfig, run: Run, attributes: Sequence[str] = tuple(ATTRIBUTES)) -> KnowledgeWorld:
    """The world of ``run`` (its replicate's ``world`` stream)."""
    check_type("run", run, Run, "the Run from chapter.start")
    return make_world(cfg, run.stream("world"), attributes)


def pretrained_world(
    cfg: WorldConfig, attributes: Sequence[str], base: BaseModelConfig, pretrain: SFTConfig, run: Run
) -> tuple[KnowledgeWorld, BaseModel]:
    """The run's :func:`world` and the base model ``base`` pretrained on its corpus (cached; initialised from the
    run's ``init`` stream). The cache key holds the world's configuration, attributes and corpus, never a chapter's
    name."""
    w = world(cfg, run, attributes)
    texts = list(w.corpus["text"])
    key = {"world": cfg, "attributes": tuple(w.attributes), "corpus": corpus_digest(texts)}
    pretrain = dataclasses.replace(pretrain, seed=run.stream("order"))  # its batch order
    return w, pretrained_base(
        base, vocabulary(w), documents(texts), pretrain, run.stream("init"), run.device, run.cache, key=key
    )


def replay(texts: Sequence[str], n: int, seed: int) -> Dataset:
    """``n`` pretraining documents drawn with replacement from ``texts`` (a generator seeded with ``seed``: the
    run's ``order`` stream), as SFT examples (:func:`documents`)."""
    check_range("n", n, 0, integer=True)
    check_seed("seed", seed)
    idx = np.random.default_rng(seed).integers(len(texts), size=n)
    return documents([texts[i] for i in idx])


def selective_accuracy(grades: np.ndarray) -> float:
    """correct / (correct + false): accuracy among the answers (grades 0 false, 1 correct, 2 "I don't know") that are
    not "I don't know" (NaN if none)."""
    counts = np.bincount(np.asarray(grades, dtype=int).ravel(), minlength=3)
    return float(counts[1] / (counts[0] + counts[1])) if counts[0] + counts[1] else float("nan")


def selective_floor(relabelled: np.ndarray, standard: np.ndarray, n: int = 500, seed: int = 0) -> float:
    """Noise floor of (selective accuracy of ``relabelled`` - of ``standard``), two models' grades of the same
    questions: the 97.5% point of the difference when their grades are swapped at random per question, so that
    neither model is better (``n`` swaps drawn with a fixed generator: analysis, not an experiment's draw)."""
    a, b = np.asarray(relabelled), np.asarray(standard)
    check_range("n", n, 1, integer=True)
    rng = np.random.default_rng(seed)
    diffs = [
        selective_accuracy(np.where(s, b, a)) - selective_accuracy(np.where(s, a, b))
        for s in (rng.random(len(a)) < 0.5 for _ in range(n))
    ]
    return float(np.nanquantile(diffs, 0.975))
