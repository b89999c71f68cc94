"""The experiment: settings, the runs of each stage (:func:`stage_jobs`), one cached run per job (:func:`run_job`),
the choice of new examples per method (:func:`select`), :func:`run`.

Stages, run in order; the jobs of one stage are independent and go through :func:`steerlib.core.jobs.run_jobs`:

- stage 0: the robustness runs (one :class:`RobustSpec` each) and the curation loop's first run on D alone
  (a :class:`CurationJob` of round 0, shared by every method);
- stage r = 1..rounds: one :class:`CurationJob` per method, training on D and the examples that method added in
  rounds 1..r, which :func:`select` chose from the method's run of round r - 1.

The IFD scorer (one finetune on a split disjoint from D) is trained once, before stage 1, in the parent process.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from typing import Any

import numpy as np
import torch
from datasets import Dataset

from steerlib.chapters.reasoning import common
from steerlib.chapters.reasoning.common import N_PRETRAIN, PRETRAIN, PRETRAINING, TASK, TINY
from steerlib.core.chapter import Run, check_run, replicated
from steerlib.core.checks import check_choices, check_range, check_ranges, check_type
from steerlib.core.jobs import Job, Stage, at_replicates, per_replicate, results_stage, run_jobs
from steerlib.core.seeds import substream
from steerlib.lm.base import BaseModelConfig, corpus_digest
from steerlib.lm.reasoning import sampled_correct
from steerlib.lm.sampling import SAMPLER
from steerlib.lm.scoring import score_ids
from steerlib.lm.sft import SFTConfig, train_sft
from steerlib.lm.tokenizer import encode_prompts, encode_responses, pad_id, tokenize_sft
from steerlib.measures import curation, premem
from steerlib.worlds.running_totals import (
    GAINS,
    LOSSES,
    NEW_GAINS,
    NEW_LOSSES,
    Problem,
    TaskConfig,
    forced_opening,
    problems,
    random_trace,
    similar_problem,
)

METHODS = ("premem", "iid", "ifd", "heuristic")  # pre-memorization curation (Algorithm 1) and its three baselines

VERSIONS = {"sampler": SAMPLER}  # the results hold sampled tokens: a new sampler recomputes them


@dataclasses.dataclass(frozen=True)
class Settings:
    task: TaskConfig = TASK  # as the pre-memorization chapter (its pretraining is reused: common.setup)
    base: BaseModelConfig = TINY
    n_pretrain: int = N_PRETRAIN
    pretrain: SFTConfig = PRETRAIN
    n_test: int = 512  # test problems (drawn after the finetuning problems, so not the pre-memorization chapter's)
    batch_size: int = 8
    warmup: float = 0.1  # linear warm-up, then linear decay (AdamW), as in the pre-memorization chapter
    grad_clip: float = 2.0
    p: float = 1.145  # memorization threshold: the pre-memorization chapter's calibrated p (cpu, before the streams)
    checkpoints: tuple[float, ...] = (0.07, 0.15, 0.3, 0.5, 0.75, 1.0)  # where Acc_m and Perp_m are logged
    k: int = 4  # samples per problem and checkpoint
    temperature: float = 0.8
    max_new_tokens: int = 30
    sample_batch: int = 1024
    # robustness (Figs 4.6-4.7)
    n_robust: int = 128  # finetuning problems of each robustness run
    robust_lrs: tuple[float, ...] = (5e-4, 1e-3)
    robust_epochs: float = 48  # enough passes to end with train accuracy near 1
    k_final: int = 8  # samples per problem, unperturbed and perturbed, at the end of a robustness run
    # curation (Algorithm 1, Fig 4.8)
    n_initial: int = 64  # D; the IFD scorer trains on the next n_initial problems (a disjoint split)
    rounds: int = 5  # n
    per_round: int = 32  # examples every method adds per round
    t: float = 0.75  # Algorithm 1's threshold on pre-memorization accuracy
    # Both experiments' problems (the robustness set; D, the IFD scorer's split, every method's additions and the
    # curation test set) tell gains and losses with the pretraining pool's verbs, so the pretrained model solves some
    # of them before it memorises them, as a pretrained LLM already solves some GSM8K problems. With the finetuning
    # verbs (True), 92-98% of D fell below t at every seed of the 2026-12-07 cold build (H7pre failed: no problem
    # could be solved before the new verbs were learnt, by which time its target was memorised), and 11% of the
    # robustness examples reached pre-memorization accuracy 0.75 against 34% with the pool's verbs (ledger).
    new_verbs: bool = False
    methods: tuple[str, ...] = METHODS
    lr: float = 1e-3  # every curation run (and the IFD scorer) trains from the pretrained model
    epochs: float = 24
    replicates: int = 3  # independent replicates of both experiments, pretraining included

    def __post_init__(self):
        common.check_shared(self)
        for name in ("k_final", "rounds", "per_round"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_range("k", self.k, 1, integer=True)
        for name in ("n_robust", "n_initial"):
            check_range(name, getattr(self, name), self.batch_size, integer=True)
        check_range("p", self.p, 1, open_low=True)
        check_ranges("robust_lrs", self.robust_lrs, 0, open_low=True)
        check_range("robust_epochs", self.robust_epochs, 0, open_low=True)
        check_range("t", self.t, 0, 1, open_low=True)
        check_type("new_verbs", self.new_verbs, bool, "True or False")
        check_choices("methods", self.methods, METHODS)
        if "iid" not in self.methods:
            raise ValueError(f"methods={self.methods} must include 'iid', the baseline of the efficiency ratio")
        check_range("lr", self.lr, 0, open_low=True)
        check_range("epochs", self.epochs, 0, open_low=True)

    @property
    def n_train(self) -> int:
        """Problems drawn with fixed targets: the robustness set, and D followed by the IFD scorer's split."""
        return max(self.n_robust, 2 * self.n_initial)


PROFILES = {
    "smoke": Settings(
        **PRETRAINING["smoke"],
        n_test=64,
        checkpoints=(0.5, 1.0),
        k=2,
        n_robust=32,
        robust_lrs=(1e-3,),
        robust_epochs=8,
        k_final=4,
        n_initial=16,
        rounds=2,
        per_round=8,
        epochs=4,
        replicates=1,
    ),
    "cpu": Settings(**PRETRAINING["cpu"]),
    "paper": Settings(
        **PRETRAINING["paper"],
        n_test=1024,
        batch_size=32,
        k=8,
        n_robust=1024,
        robust_lrs=(1e-4, 3e-4),
        robust_epochs=6,
        k_final=16,
        n_initial=512,
        per_round=256,
        lr=1e-4,
        epochs=3,
        replicates=3,
    ),
}

# Every claim along Part III's scale axis (the pretraining's model and steps; both chapters share it at each factor).
SCALE = common.scale(("H*",))


@dataclasses.dataclass(frozen=True)
class RobustSpec:
    """A robustness run: finetune on the first ``n_robust`` problems at peak ``lr`` for ``epochs`` passes."""

    lr: float
    epochs: float


@dataclasses.dataclass(frozen=True)
class Example:
    problem: Problem
    response: str  # its target trace (with the leading space)


@dataclasses.dataclass(frozen=True)
class CurationJob:
    """A curation run: ``method``'s data at ``round`` (D and ``added``, the examples the method added so far)."""

    method: str  # "" for round 0, shared by every method
    round: int
    added: tuple[Example, ...]


@dataclasses.dataclass
class RobustLog:
    """One robustness run; C checkpoints, N = n_robust problems."""

    acc: np.ndarray  # (C, N) sampled accuracy (k samples)
    perp: np.ndarray  # (C, N) perplexity of the target trace
    final_acc: np.ndarray  # (N,) accuracy of k_final samples at the end
    perturbed_acc: np.ndarray  # (N,) ... with the response forced to open with a valid non-target line
    has_opening: np.ndarray  # (N,) whether the problem has such a line (else perturbed_acc is NaN)
    events: np.ndarray  # (N,)


@dataclasses.dataclass
class RoundLog:
    """One curation run; N = its training problems (D, then the added ones in order)."""

    test_acc: np.ndarray  # (n_test,) sampled accuracy at the end
    premem: np.ndarray  # (N,) pre-memorization accuracy at the end (empty when the method does not need it)
    train_acc: np.ndarray  # (N,) sampled accuracy at the end (empty likewise)


@dataclasses.dataclass(eq=False)
class Results:
    """One replicate; replicate 0's ``others`` holds the same experiment at replicates 1, 2, ..."""

    replicate: int
    p: float  # the memorization threshold and Algorithm 1's t the run used
    t: float
    robust_specs: list[RobustSpec]
    robust: list[RobustLog]
    added: np.ndarray  # (rounds + 1,) examples added by each round: 0, m, 2m, ...
    test_acc: dict[str, np.ndarray]  # method -> (rounds + 1,) mean test accuracy (round 0 shared)
    flagged: np.ndarray  # (rounds,) share of the premem method's training examples below t, rounds 0..rounds-1
    added_events: dict[str, np.ndarray]  # method -> (rounds * per_round,) events of the added problems
    seconds: dict[str, float]  # wall-clock seconds of each stage
    others: list[Results] = dataclasses.field(default_factory=list)


class Experiment:
    """The data, tokenizer and pretrained model every run starts from (:func:`~steerlib.chapters.reasoning.common.
    setup`: the pretraining is the pre-memorization chapter's cache entry at the same seed and replicate)."""

    def __init__(self, settings: Settings, run: Run):
        s, self.run = settings, run
        self.s, self.device, self.cache = s, run.device, run.cache
        part = common.setup(s, run)
        self.base = part.base
        self.tok = self.base.tokenizer
        examples = [Example(p, r) for p, r in zip(part.train_problems, part.train["response"])]
        self.curation_test = part.test
        if not s.new_verbs:  # the problems and the test set drawn again with the pool's verbs
            # (the stream's name is from when it drew the curation problems alone: kept, so they are unchanged)
            rng = np.random.default_rng(substream(run.stream("data"), "curation-set"))
            drawn = problems(s.n_train + s.n_test, s.task.events, s.task, rng, verbs(s))
            examples = [Example(q, " " + random_trace(q, s.task.max_value, rng)) for q in drawn]
            tests = drawn[s.n_train :]
            self.curation_test = Dataset.from_dict(
                {"prompt": [q.prompt for q in tests], "answer": [q.answer for q in tests]}
            )
        self.robust_set = examples[: s.n_robust]
        self.initial = examples[: s.n_initial]
        self.scorer_set = examples[s.n_initial : 2 * s.n_initial]

    def key(self, job: RobustSpec | CurationJob) -> dict[str, Any]:
        """What a run depends on: the pretraining, the settings that shape a run, its data (by digest), the streams
        its batch order, samples and perturbations come from, and the sampler (its logs hold sampled accuracies)."""
        shared = {
            k: v
            for k, v in dataclasses.asdict(self.s).items()
            if k not in ("robust_lrs", "rounds", "methods", "replicates", "per_round")
        }
        streams = {name: self.run.stream(name) for name in ("order", "sampling", "eval")}
        examples = self.robust_set if isinstance(job, RobustSpec) else self.initial + list(job.added)
        data = corpus_digest([f"{e.problem.prompt}{e.response}" for e in examples])
        if isinstance(job, RobustSpec):
            return {
                "pretrain": self.base.key,
                "settings": shared,
                "spec": job,
                "data": data,
                "streams": streams,
                **VERSIONS,
            }
        return {
            "pretrain": self.base.key,
            "settings": shared,
            "method": job.method,
            "round": job.round,
            "data": data,
            "streams": streams,
            **VERSIONS,
        }


def as_dataset(examples: list[Example]) -> Dataset:
    return Dataset.from_dict(
        {"prompt": [e.problem.prompt for e in examples], "response": [e.response for e in examples]}
    )


def _finetune(
    ex: Experiment, examples: list[Example], lr: float, epochs: float, on_checkpoint, desc: str, progress: bool
):
    """A copy of the pretrained model finetuned on ``examples``; ``on_checkpoint(model, step)`` at the
    checkpoints of ``settings.checkpoints``."""
    s = ex.s
    steps = math.ceil(epochs * len(examples) / s.batch_size)
    checkpoints = common.checkpoint_steps(s.checkpoints, steps)
    model = copy.deepcopy(ex.base.model).to(ex.device)

    def on_step(step: int, m) -> None:
        if step in checkpoints:
            m.eval()
            on_checkpoint(m, step)

    cfg = common.finetune_config(s, ex.run, steps, lr)
    train_sft(
        model,
        tokenize_sft(as_dataset(examples), ex.tok),
        cfg,
        pad_id(ex.tok),
        ex.device,
        desc=desc,
        on_step=on_step,
        progress=progress,
    )
    return model.eval()


@torch.no_grad()
def accuracy_and_perplexity(model, ex: Experiment, examples: list[Example], seed: int) -> tuple[np.ndarray, ...]:
    """Sampled accuracy (k samples at T, drawn with ``seed``) and target-trace perplexity of each example."""
    s = ex.s
    prompts = [e.problem.prompt for e in examples]
    acc = sampled_correct(
        model,
        ex.tok,
        prompts,
        [e.problem.answer for e in examples],
        s.k,
        s.max_new_tokens,
        s.temperature,
        seed,
        s.sample_batch,
    ).correct.mean(1)
    scores = score_ids(
        model,
        encode_prompts(ex.tok, prompts),
        encode_responses(ex.tok, [e.response for e in examples]),
        pad_id(ex.tok),
        batch_size=512,
    )
    return acc, scores.mean_nll.exp().numpy()


def _log_checkpoints(ex: Experiment, examples: list[Example], rows: list) -> Any:
    def log(model, step: int) -> None:
        rows.append(accuracy_and_perplexity(model, ex, examples, common.checkpoint_sampling(ex.run, step)))

    return log


def _robust(ex: Experiment, spec: RobustSpec, progress: bool) -> RobustLog:
    s, examples, rows = ex.s, ex.robust_set, []
    model = _finetune(ex, examples, spec.lr, spec.epochs, _log_checkpoints(ex, examples, rows), "robust", progress)
    rng = ex.run.rng("eval")  # the forced openings
    openings = [forced_opening(e.problem, e.response, s.task.max_value, rng) for e in examples]
    has = np.array([o is not None for o in openings])
    prompts = [e.problem.prompt for e in examples]
    forced = [f"{p} {o} ." for p, o in zip(prompts, openings) if o is not None]
    answers = [e.problem.answer for e in examples]
    sample = functools.partial(
        sampled_correct,
        model,
        ex.tok,
        k=s.k_final,
        max_new_tokens=s.max_new_tokens,
        temperature=s.temperature,
        seed=substream(ex.run.stream("sampling"), "final"),
        batch_size=s.sample_batch,
    )
    perturbed = np.full(len(examples), np.nan)
    perturbed[has] = sample(forced, [a for a, h in zip(answers, has) if h]).correct.mean(1)
    return RobustLog(
        acc=np.stack([a for a, _ in rows]),
        perp=np.stack([p for _, p in rows]),
        final_acc=sample(prompts, answers).correct.mean(1),
        perturbed_acc=perturbed,
        has_opening=has,
        events=np.array([len(e.problem.deltas) for e in examples]),
    )


def _curation(ex: Experiment, job: CurationJob, progress: bool) -> RoundLog:
    s, examples, rows = ex.s, ex.initial + list(job.added), []
    needs_premem = job.method in ("", "premem")
    log = _log_checkpoints(ex, examples, rows) if needs_premem else (lambda model, step: None)
    model = _finetune(ex, examples, s.lr, s.epochs, log, f"{job.method or 'D'} r{job.round}", progress)
    test = sampled_correct(
        model,
        ex.tok,
        list(ex.curation_test["prompt"]),
        list(ex.curation_test["answer"]),
        s.k,
        s.max_new_tokens,
        s.temperature,
        substream(ex.run.stream("sampling"), "test"),
        s.sample_batch,
    ).correct.mean(1)
    if not needs_premem:
        return RoundLog(test, np.zeros(0), np.zeros(0))
    acc, perp = np.stack([a for a, _ in rows]), np.stack([p for _, p in rows])
    return RoundLog(test, premem.premem_accuracy(acc, perp, s.p)[-1], acc[-1])


def run_job(ex: Experiment, job: RobustSpec | CurationJob, progress: bool = True) -> RobustLog | RoundLog:
    """One training run, cached under :meth:`Experiment.key`: a robustness run or a curation run."""
    if isinstance(job, RobustSpec):
        return ex.cache.cached(
            "robustness-and-curation-robust", ex.key(job), lambda: _robust(ex, job, progress), as_type=RobustLog
        )
    return ex.cache.cached(
        "robustness-and-curation-round", ex.key(job), lambda: _curation(ex, job, progress), as_type=RoundLog
    )


# ------------------------------------------------------------------------------------------ choosing new data


def ifd_scorer(ex: Experiment):
    """The IFD scorer: the pretrained model finetuned on the split disjoint from D (its weights cached)."""
    s = ex.s
    model = copy.deepcopy(ex.base.model).to(ex.device)
    cfg = common.finetune_config(s, ex.run, math.ceil(s.epochs * len(ex.scorer_set) / s.batch_size), s.lr)
    key = {"pretrain": ex.base.key, "ifd-scorer": corpus_digest([e.response for e in ex.scorer_set])}
    train_sft(
        model,
        tokenize_sft(as_dataset(ex.scorer_set), ex.tok),
        cfg,
        pad_id(ex.tok),
        ex.device,
        ex.cache,
        key,
        desc="ifd scorer",
        progress=False,
    )
    return model.eval()


def ifd_scores(model, ex: Experiment, examples: list[Example]) -> np.ndarray:
    """:func:`~steerlib.measures.curation.ifd` of each example under ``model``: the answer's NLL after the question
    and after the start token alone."""
    responses = encode_responses(ex.tok, [e.response for e in examples])
    prompts = encode_prompts(ex.tok, [e.problem.prompt for e in examples])
    bare = encode_prompts(ex.tok, [""] * len(examples))
    cond, uncond = (
        score_ids(model, p, responses, pad_id(ex.tok), batch_size=512).mean_nll.numpy() for p in (prompts, bare)
    )
    return curation.ifd(cond, uncond)


def verbs(s: Settings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (gain, loss) verbs of the chapter's problems: the finetuning verbs with ``new_verbs`` (and the task's
    ``new_verbs``), else the pretraining pool's."""
    return (NEW_GAINS, NEW_LOSSES) if s.new_verbs and s.task.new_verbs else (GAINS, LOSSES)


def _pick(candidates: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` of the candidate indices: without replacement while they last, then again from all of them."""
    return np.concatenate([rng.permutation(candidates) for _ in range(math.ceil(m / len(candidates)))])[:m]


def new_examples(ex: Experiment, sources: list[Problem], rng: np.random.Generator) -> tuple[Example, ...]:
    """One similar problem (same structure, fresh values) per source problem, each with a random target trace."""
    out = []
    for p in sources:
        q = similar_problem(p, ex.s.task, rng)
        out.append(Example(q, " " + random_trace(q, ex.s.task.max_value, rng)))
    return tuple(out)


def select(
    ex: Experiment, method: str, job: CurationJob, log: RoundLog, scorer, rng: np.random.Generator
) -> tuple[tuple[Example, ...], float]:
    """The ``per_round`` examples ``method`` adds after ``job`` (whose run gave ``log``), and the share of the
    job's training examples below t (NaN unless the method is premem):

    - premem: similar to examples whose pre-memorization accuracy is below t (any example if none is);
    - iid: fresh problems from the task's distribution;
    - ifd: similar to the examples with the highest IFD under ``scorer``;
    - heuristic: similar to examples in the top half by number of events (ties broken at random).
    """
    s, examples = ex.s, ex.initial + list(job.added)
    m, share = s.per_round, float("nan")
    if method == "iid":
        fresh = problems(m, s.task.events, s.task, rng, verbs(s))
        return tuple(Example(q, " " + random_trace(q, s.task.max_value, rng)) for q in fresh), share
    if method == "premem":
        low = log.premem < s.t
        share = float(low.mean())
        chosen = _pick(np.flatnonzero(low) if low.any() else np.arange(len(examples)), m, rng)
    elif method == "ifd":
        chosen = np.argsort(-ifd_scores(scorer, ex, examples), kind="stable")[:m]
        chosen = _pick(chosen, m, rng)
    else:
        events = np.array([len(e.problem.deltas) for e in examples])
        order = np.lexsort((rng.random(len(examples)), -events))  # most events first, ties at random
        chosen = _pick(order[: max(len(examples) // 2, 1)], m, rng)
    return new_examples(ex, [examples[i].problem for i in chosen], rng), share


# ------------------------------------------------------------------------------------------------ the stages


def first_jobs(s: Settings) -> list[RobustSpec | CurationJob]:
    """Stage 0's jobs: the robustness runs, then the curation loop's run on D alone."""
    return [RobustSpec(lr, s.robust_epochs) for lr in s.robust_lrs] + [CurationJob("", 0, ())]


def next_job(ex: Experiment, method: str, job: CurationJob, log: RoundLog, scorer) -> tuple[CurationJob, float]:
    """``method``'s job of the round after ``job`` (whose run gave ``log``), and :func:`select`'s share below t;
    its random draws come from the ``data`` stream's sub-stream ("curation", round, method's index in
    :data:`METHODS`): they depend on the replicate, the round and the method alone."""
    stage = job.round + 1
    rng = np.random.default_rng(substream(ex.run.stream("data"), "curation", stage, METHODS.index(method)))
    added, share = select(ex, method, job, log, scorer, rng)
    return CurationJob(method, stage, job.added + added), share


def stage_jobs(
    ex: Experiment,
    stage: int,
    done: dict[str, CurationJob] | None = None,
    logs: dict[str, RoundLog] | None = None,
    scorer=None,
) -> tuple[list, list[float]]:
    """The jobs of ``stage`` (see the module docstring) and, from stage 1 on, the share below t of the premem
    method's previous run. ``done`` and ``logs`` hold each method's job and log of the previous stage (round 0's
    under every method)."""
    if stage == 0:
        return first_jobs(ex.s), []
    jobs, shares = [], []
    for method in ex.s.methods:
        job, share = next_job(ex, method, done[method], logs[method], scorer)
        jobs.append(job)
        if method == "premem":
            shares.append(share)
    return jobs, shares


# -------------------------------------------------------------------------------------- the runs as jobs


def _first(settings: Settings, run: Run, index: int) -> None:
    """One job of stage 0 (:func:`first_jobs`), or the IFD scorer (index -1)."""
    ex = Experiment(settings, run)
    if index < 0:
        ifd_scorer(ex)
    else:
        run_job(ex, first_jobs(settings)[index])


def _round(settings: Settings, run: Run, stage: int, method: str) -> None:
    """``method``'s run of round ``stage``, its earlier rounds read from the cache (each rebuilt in order)."""
    ex = Experiment(settings, run)
    scorer = ifd_scorer(ex) if method == "ifd" else None
    job = first_jobs(settings)[-1]
    while job.round < stage:
        job, _ = next_job(ex, method, job, run_job(ex, job, progress=False), scorer)
    run_job(ex, job)


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """Each replicate's pretraining (the pre-memorization chapter's entry); stage 0 (the robustness runs, round 0 of
    curation and the IFD scorer); one stage per curation round (one job per replicate and method: a round starts
    from the method's previous round); then each replicate's results, which the notebook reads."""
    labels = [f"robust lr={j.lr:g}" if isinstance(j, RobustSpec) else "round 0" for j in first_jobs(settings)]
    first = [(i, label) for i, label in enumerate(labels)] + ([(-1, "ifd scorer")] if "ifd" in settings.methods else [])
    return [
        per_replicate("pretrain", Experiment, settings, run),
        Stage(
            "stage-0",
            tuple(
                Job(f"replicate {r.replicate} {label}", _first, (s, r, i))
                for s, r in at_replicates(settings, run)
                for i, label in first
            ),
        ),
        *[
            Stage(
                f"round-{k}",
                tuple(
                    Job(f"replicate {r.replicate} {m}", _round, (s, r, k, m))
                    for s, r in at_replicates(settings, run)
                    for m in s.methods
                ),
            )
            for k in range(1, settings.rounds + 1)
        ],
        results_stage(settings, run, "robustness-and-curation", _experiment, Results, VERSIONS),
    ]


def _experiment(settings: Settings, run: Run) -> Results:
    t0 = time.time()
    ex = Experiment(settings, run)
    seconds = {"pretrain": time.time() - t0}
    workers = torch.get_num_threads() if run.device.type == "cpu" and run.cache.enabled else 1
    go = functools.partial(
        run_jobs, run_job, state=ex, make_state=functools.partial(Experiment, settings, run), workers=workers
    )
    t = time.time()
    jobs, _ = stage_jobs(ex, 0)
    out = [log for log, _ in go(items=jobs, desc="stage 0")]
    robust, first = out[:-1], out[-1]
    seconds["stage 0"] = time.time() - t
    t = time.time()
    scorer = ifd_scorer(ex) if "ifd" in settings.methods else None
    seconds["ifd scorer"] = time.time() - t
    done = {m: jobs[-1] for m in settings.methods}
    logs = {m: first for m in settings.methods}
    test = {m: [first.test_acc.mean()] for m in settings.methods}
    flagged = []
    for stage in range(1, settings.rounds + 1):
        t = time.time()
        jobs, shares = stage_jobs(ex, stage, done, logs, scorer)
        flagged += shares
        results = [log for log, _ in go(items=jobs, desc=f"round {stage}")]
        for job, log in zip(jobs, results):
            done[job.method], logs[job.method] = job, log
            test[job.method].append(log.test_acc.mean())
        seconds[f"round {stage}"] = time.time() - t
    m = settings.per_round
    return Results(
        run.replicate,
        settings.p,
        settings.t,
        first_jobs(settings)[:-1],
        robust,
        np.arange(settings.rounds + 1) * m,
        {k: np.array(v) for k, v in test.items()},
        np.array(flagged),
        {k: np.array([len(e.problem.deltas) for e in done[k].added]) for k in settings.methods},
        seconds,
    )


def run(settings: Settings, run: Run) -> Results:
    """Every stage at each of ``settings.replicates`` independent replicates of ``run``, each run cached on its own
    and each replicate's results as a whole; on a CPU with a cache, a stage's runs go to worker processes (as the
    pre-memorization grid's do)."""
    check_run(settings, Settings, run)
    return replicated(run, settings, "robustness-and-curation", _experiment, Results, VERSIONS)
