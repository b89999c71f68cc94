"""What the chapters of Part III share, so that they start from the same pretrained model through the run cache.

Pre-memorization and robustness-and-curation work on the running-totals task (:mod:`steerlib.worlds.running_totals`)
with one tiny model (:data:`TINY`), pretrained on a pool of problems with random traces (:data:`PRETRAINING` per
profile; :data:`PRETRAIN` at ``cpu``). Each replicate of either chapter starts from :func:`setup`: the problems of
:func:`~steerlib.worlds.running_totals.splits` drawn from the run's ``data`` stream, and the model pretrained on the
pool (:func:`pretrained_on_task`).

How the cache is shared: the pretraining's cache key holds the task, the pool (by digest), the base model, the
pretraining recipe and its two seeds, the ``init`` stream (initial weights) and the ``order`` stream (batch order).
Every one of these depends only on (seed, replicate, stream name) (:func:`steerlib.core.seeds.stream_seed`), never
on which chapter asks, and the pool is the first thing ``splits`` draws from the ``data`` stream, so it does not
depend on how many finetuning problems a chapter draws after it. So replicate r of robustness-and-curation at seed s
finds the pretraining of replicate r of pre-memorization at seed s (the same key), whichever chapter runs first.
Keep chapter names out of these keys, and give the two chapters the same task and :data:`PRETRAINING`.

Within a run every other draw comes from a substream of one of its streams (:func:`steerlib.core.seeds.substream`:
the stream, a purpose and indices, e.g. the sampling at checkpoint ``step`` is ``substream(run.stream("sampling"),
"checkpoint", step)``), so no two draws share a stream and no seed is computed by arithmetic on another.
"""

from __future__ import annotations

import dataclasses

from datasets import Dataset

from steerlib.core.chapter import Run
from steerlib.core.checks import check_range, check_ranges, check_type
from steerlib.core.scale import Scale
from steerlib.core.seeds import substream
from steerlib.lm.base import BaseModel, BaseModelConfig, corpus_digest, pretrained_base, pretraining_scale
from steerlib.lm.models import SMOLLM2
from steerlib.lm.sft import SFTConfig
from steerlib.worlds.running_totals import Problem, TaskConfig, splits, vocabulary

TASK = TaskConfig(events=(3, 4))  # finetuning and test problems: many traces, perplexity well above 1
TINY = BaseModelConfig(d_model=64, max_len=128)  # a 2-layer Llama on the task's words
PRETRAIN = SFTConfig(steps=4000, batch_size=64, lr=3e-3)  # the cpu pretraining of both chapters
N_PRETRAIN = 30000  # problems with random traces in the cpu pretraining pool
PRETRAINING = {  # profile -> the Settings fields of the pretraining, the same in both chapters (so they share it)
    "smoke": {
        "base": TINY,
        "n_pretrain": 6000,
        "pretrain": SFTConfig(steps=250, batch_size=64, lr=3e-3, checkpoint_every=50),
    },
    "cpu": {"base": TINY, "n_pretrain": N_PRETRAIN, "pretrain": PRETRAIN},
    "paper": {
        "base": dataclasses.replace(TINY, model=SMOLLM2),
        "n_pretrain": 50000,
        "pretrain": SFTConfig(steps=2000, batch_size=64, lr=1e-4),
    },
}


PRETRAIN_TOKENS = 53  # words of a pretraining example (prompt and trace), as the language-model benchmark measures


def scale(claims: tuple[str, ...]) -> Scale:
    """Part III's scale axis tracking ``claims``: :func:`~steerlib.lm.base.pretraining_scale` of the shared
    pretraining (:data:`PRETRAIN_TOKENS` a sequence); both chapters at one factor share its pretraining."""
    return pretraining_scale(claims, PRETRAIN_TOKENS, "the pretraining shared by both chapters")


SHARED_COUNTS = ("n_pretrain", "n_test", "batch_size", "max_new_tokens", "sample_batch", "replicates")


def check_shared(settings) -> None:
    """The Settings fields both chapters have: the task, the base model and its pretraining, the counts of
    :data:`SHARED_COUNTS` (positive integers), the finetuning schedule (warm-up, gradient clip, checkpoints) and the
    sampling temperature."""
    for name, cls in (("task", TaskConfig), ("base", BaseModelConfig), ("pretrain", SFTConfig)):
        check_type(name, getattr(settings, name), cls, f"a {cls.__name__}")
    for name in SHARED_COUNTS:
        check_range(name, getattr(settings, name), 1, integer=True)
    check_range("warmup", settings.warmup, 0, 1)
    check_range("grad_clip", settings.grad_clip, 0, open_low=True)
    check_ranges("checkpoints", settings.checkpoints, 0, 1, open_low=True)
    check_range("temperature", settings.temperature, 0)


def finetune_order(run: Run) -> int:
    """The batch order of every finetuning run of a replicate (``SFTConfig.seed``): the ``order`` stream's
    sub-stream "finetune" (the stream itself orders the pretraining)."""
    return substream(run.stream("order"), "finetune")


def finetune_config(settings, run: Run, steps: int, lr: float, **extra) -> SFTConfig:
    """The finetuning recipe of every Part III-style run: ``steps`` at peak rate ``lr`` with the settings' batch,
    warm-up and clipping, linear warm-up and decay, and the replicate's :func:`finetune_order` (``extra``: other
    :class:`~steerlib.lm.sft.SFTConfig` fields, e.g. ``checkpoint_every``)."""
    check_type("run", run, Run, "the Run from chapter.start")
    return SFTConfig(
        steps=steps,
        batch_size=settings.batch_size,
        lr=lr,
        warmup=settings.warmup,
        schedule="linear",
        grad_clip=settings.grad_clip,
        seed=finetune_order(run),
        **extra,
    )


def checkpoint_sampling(run: Run, step: int) -> int:
    """The seed of the responses sampled at checkpoint ``step`` of a finetuning run: the ``sampling`` stream's
    sub-stream ("checkpoint", step); every run of a replicate samples its step ``step`` with it."""
    return substream(run.stream("sampling"), "checkpoint", step)


def checkpoint_steps(fractions: tuple[float, ...], steps: int) -> list[int]:
    """The optimizer steps at the given fractions of a run of ``steps`` steps (at least step 1, no duplicates)."""
    check_range("steps", steps, 1, integer=True)
    return sorted({max(1, round(f * steps)) for f in fractions})


def pretrained_on_task(
    task: TaskConfig, n_pretrain: int, base: BaseModelConfig, pretrain: SFTConfig, pool: Dataset, run: Run
) -> BaseModel:
    """:func:`~steerlib.lm.base.pretrained_base` on the task's pool (the first ``n_pretrain`` problems that
    :func:`~steerlib.worlds.running_totals.splits` draws from the run's ``data`` stream): initial weights from the
    ``init`` stream, batch order from the ``order`` stream (``pretrain.seed``), cached under a key of the task, the
    pool's digest, the model, the recipe and those two seeds; nothing in it names a chapter (see the module
    docstring)."""
    check_type("task", task, TaskConfig, "a TaskConfig")
    check_range("n_pretrain", n_pretrain, 1, integer=True)
    check_type("pool", pool, Dataset, "the pretraining pool from running_totals.splits")
    check_type("run", run, Run, "the Run of the chapter (at its replicate)")
    if len(pool) != n_pretrain:
        raise ValueError(f"pool holds {len(pool)} problems but n_pretrain={n_pretrain}; pass the pool of that size")
    digest = corpus_digest([f"{p}{r}" for p, r in zip(pool["prompt"], pool["response"])])
    return pretrained_base(
        base,
        vocabulary(task),
        pool,
        dataclasses.replace(pretrain, seed=run.stream("order")),
        run.stream("init"),
        run.device,
        run.cache,
        key={"task": task, "n_pretrain": n_pretrain, "pool": digest},
    )


@dataclasses.dataclass
class Setup:
    """What every replicate of a Part III chapter starts from: the pretrained model and the finetuning and test
    problems (datasets with one fixed target trace each, and the problems themselves)."""

    base: BaseModel
    train: Dataset
    test: Dataset
    train_problems: list[Problem]
    test_problems: list[Problem]


def setup(settings, run: Run) -> Setup:
    """The problems of ``settings`` (its ``task``, ``n_pretrain``, ``n_train`` and ``n_test``) drawn from the run's
    ``data`` stream, and the model pretrained on the pool (:func:`pretrained_on_task`, cached and shared)."""
    check_type("run", run, Run, "the Run of the chapter (at its replicate)")
    pool, train, test, train_problems, test_problems = splits(
        settings.task, settings.n_pretrain, settings.n_train, settings.n_test, run.stream("data")
    )
    base = pretrained_on_task(settings.task, settings.n_pretrain, settings.base, settings.pretrain, pool, run)
    return Setup(base, train, test, train_problems, test_problems)
