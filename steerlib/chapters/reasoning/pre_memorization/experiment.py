"""The experiment: settings, the grid of finetuning runs, one cached, resumable job per run (:func:`train_run`),
the chapter's jobs (:func:`jobs`) and :func:`run`."""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from typing import Any

import numpy as np
import torch

from steerlib.chapters.reasoning import common
from steerlib.chapters.reasoning.common import N_PRETRAIN, PRETRAIN, PRETRAINING, TASK, TINY
from steerlib.core.chapter import Run, check_run, replicated
from steerlib.core.checks import check_range, check_ranges, check_type
from steerlib.core.jobs import Stage, per_replicate, per_replicate_runs, results_stage, run_jobs
from steerlib.core.seeds import substream
from steerlib.lm.base import BaseModelConfig
from steerlib.lm.sampling import SAMPLER, sample
from steerlib.lm.scoring import score_ids
from steerlib.lm.sft import SFTConfig, batch_indices, train_sft
from steerlib.lm.tokenizer import collate, encode_prompts, encode_responses, pad_id, tokenize_sft
from steerlib.measures import premem
from steerlib.worlds.running_totals import TaskConfig, answers_match, same_trace

VERSIONS = {"sampler": SAMPLER}  # the results hold sampled tokens: a new sampler recomputes them


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One finetuning run: peak learning rate, passes over its data, and the fraction of the finetuning set used."""

    lr: float
    epochs: float
    fraction: float = 1.0

    @property
    def name(self) -> str:
        return f"lr={self.lr:g} ep={self.epochs:g} frac={self.fraction:g}"

    def size(self, n_train: int, batch_size: int) -> int:
        """Finetuning problems used: the first ``fraction · n_train`` (at least one batch)."""
        return max(int(round(self.fraction * n_train)), batch_size)

    def steps(self, n_train: int, batch_size: int) -> int:
        """Optimizer steps: ``ceil(epochs · size / batch_size)``."""
        return math.ceil(self.epochs * self.size(n_train, batch_size) / batch_size)


@dataclasses.dataclass(frozen=True)
class Settings:
    task: TaskConfig = TASK  # finetuning and test problems: many traces, perplexity well above 1
    base: BaseModelConfig = TINY  # the model pretrained on the task (paper: a pretrained causal LM)
    n_pretrain: int = N_PRETRAIN  # pretraining pool: problems with random traces
    pretrain: SFTConfig = PRETRAIN
    n_train: int = 256  # finetuning problems (one fixed target trace each)
    n_test: int = 512
    lrs: tuple[float, ...] = (1e-5, 1e-4, 3e-4, 1e-3)
    epochs: tuple[float, ...] = (4, 12, 24)  # passes over the full finetuning set (the dissertation's 1, 3, 6 × 4)
    fractions: tuple[float, ...] = (0.5, 0.25)  # smaller sets, steps matched to matched_epochs full passes
    matched_epochs: float = 12
    batch_size: int = 8
    warmup: float = 0.1  # fraction of steps of linear warm-up, then linear decay to 0 (AdamW, as in C.2)
    grad_clip: float = 2.0
    checkpoints: tuple[float, ...] = (0.07, 0.15, 0.3, 0.5, 0.75, 1.0)  # fractions of each run's steps
    k: int = 4  # samples per problem and checkpoint
    temperature: float = 0.8
    max_new_tokens: int = 30
    grad_var_batches: int = 5
    sample_batch: int = 1024  # sequences sampled at once (1024 is fastest on 2 CPU cores for the tiny model)
    replicates: int = 3  # independent replicates of the whole grid, pretraining included (common.setup)

    def __post_init__(self):
        common.check_shared(self)
        check_range("grad_var_batches", self.grad_var_batches, 1, integer=True)
        check_range("k", self.k, 2, integer=True)  # two halves of the samples give H2's noise floor
        check_range("n_train", self.n_train, self.batch_size, integer=True)
        check_ranges("lrs", self.lrs, 0, open_low=True)
        check_ranges("epochs", self.epochs, 0, open_low=True)
        check_type("fractions", self.fractions, tuple, "a tuple of fractions (may be empty)")
        for i, f in enumerate(self.fractions):
            check_range(f"fractions[{i}]", f, 0, 1, open_low=True)
        check_range("matched_epochs", self.matched_epochs, 0, open_low=True)
        if len(self.lrs) * (len(self.epochs) + len(self.fractions)) < 2:  # the size of grid(self)
            raise ValueError(
                f"lrs={self.lrs}, epochs={self.epochs} and fractions={self.fractions} make one run; "
                "the grid needs at least 2 (p is calibrated on some runs and tested on others)"
            )


PROFILES = {
    "smoke": Settings(
        **PRETRAINING["smoke"],
        n_train=48,
        n_test=64,
        lrs=(1e-4, 1e-3),
        epochs=(2, 8),
        fractions=(0.5,),
        matched_epochs=4,
        checkpoints=(0.25, 0.5, 1.0),
        k=2,
        replicates=1,
    ),
    "cpu": Settings(**PRETRAINING["cpu"]),
    "paper": Settings(
        **PRETRAINING["paper"],
        n_train=1024,
        n_test=1024,
        lrs=(1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4),
        epochs=(1, 3, 6),
        matched_epochs=3,
        batch_size=32,
        k=8,
    ),
}

# Every claim along Part III's scale axis (the pretraining's model and steps; both chapters share it at each factor).
SCALE = common.scale(("H*",))


@dataclasses.dataclass
class RunLog:
    """One finetuning run's log at its C checkpoints; N is the run's number of train problems."""

    step: np.ndarray  # (C,) optimizer step
    loss: np.ndarray  # (C,) mean training loss since the previous checkpoint
    grad_var: np.ndarray  # (C,) premem.gradient_variance over grad_var_batches fixed minibatches
    dist_init: np.ndarray  # (C,) squared distance of the weights from the pretrained ones
    train_acc: np.ndarray  # (C, N) accuracy of k samples at temperature T
    train_half: np.ndarray  # (C, N) accuracy of the first k // 2 of them (the rest: 2·train_acc - train_half)
    train_other: np.ndarray  # (C, N) share of samples that are correct with a trace other than the target
    train_perp: np.ndarray  # (C, N) perplexity of the target trace
    train_conf: np.ndarray  # (C, N) mean token log-likelihood of the greedy response (ATC's confidence)
    test_acc: np.ndarray  # (C, n_test) accuracy of k samples of each test problem


@dataclasses.dataclass(eq=False)  # compared by identity, so that analysis.analyse keeps one Analysis per Results
class Results:
    """One replicate's grid; replicate 0's ``others`` holds the grid at replicates 1, 2, ... (their own ``others``
    empty): the claims are means over all of them."""

    replicate: int
    specs: list[RunSpec]
    logs: list[RunLog]  # one per spec
    pretrain_loss: list[float]
    seconds: dict[str, float]  # wall-clock seconds of "pretrain" and of each run (by RunSpec.name)
    others: list[Results] = dataclasses.field(default_factory=list)

    def triples(self, idx=None) -> list[premem.Run]:
        """(train Acc, train Perp, test accuracy) of each run (or of runs ``idx``), as :mod:`steerlib.measures.premem`
        takes them."""
        idx = range(len(self.logs)) if idx is None else idx
        return [(self.logs[i].train_acc, self.logs[i].train_perp, self.logs[i].test_acc.mean(1)) for i in idx]


def grid(settings: Settings) -> list[RunSpec]:
    """Full-data runs for every (lr, epochs), then smaller-data runs at matched steps (epochs = matched / fraction)."""
    return [RunSpec(lr, e) for lr in settings.lrs for e in settings.epochs] + [
        RunSpec(lr, settings.matched_epochs / f, f) for lr in settings.lrs for f in settings.fractions
    ]


class Experiment:
    """The data, tokenizer and pretrained model every run of the grid starts from (:func:`~steerlib.chapters.
    reasoning.common.setup`: the pretraining is cached and shared with robustness-and-curation)."""

    def __init__(self, settings: Settings, run: Run):
        s, self.run = settings, run
        self.s, self.device, self.cache = s, run.device, run.cache
        part = common.setup(s, run)
        self.base, self.train, self.test = part.base, part.train, part.test
        self.tok = self.base.tokenizer
        self.prompt_ids = {
            n: encode_prompts(self.tok, d["prompt"]) for n, d in (("train", self.train), ("test", self.test))
        }
        self.target_ids = encode_responses(self.tok, self.train["response"])

    def run_key(self, spec: RunSpec) -> dict[str, Any]:
        """What a run's result depends on: pretraining, finetuning/evaluation settings, the spec and the streams its
        batch order and samples come from, not the rest of the grid (``sample_batch`` stays in: it changes which
        random numbers each sample draws, and so does the sampler's version)."""
        finetune = {**dataclasses.asdict(self.s), "lrs": (), "epochs": (), "fractions": (), "replicates": 1}
        streams = {name: self.run.stream(name) for name in ("order", "sampling")}
        return {"pretrain": self.base.key, "settings": finetune, "spec": spec, "streams": streams, "sampler": SAMPLER}


def _flat_grad(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def _flat_params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _gradient_variance(model, ids: list, labels: list, ex: Experiment) -> float:
    """premem.gradient_variance over ``grad_var_batches`` fixed minibatches of the run's data (drawn from the
    ``order`` stream's sub-stream "gradient variance")."""
    grads, order = [], substream(ex.run.stream("order"), "gradient variance")
    for j in range(ex.s.grad_var_batches):
        idx = batch_indices(order, j, len(ids), ex.s.batch_size)
        batch = collate([ids[i] for i in idx], [labels[i] for i in idx], pad_id(ex.tok))
        model.zero_grad(set_to_none=True)
        model(**{k: v.to(ex.device) for k, v in batch.items()}).loss.backward()
        grads.append(_flat_grad(model).cpu().numpy())
    model.zero_grad(set_to_none=True)
    return premem.gradient_variance(np.stack(grads))


@torch.no_grad()
def evaluate(model, ex: Experiment, n_train: int, seed: int) -> dict[str, np.ndarray]:
    """One checkpoint's per-example fields of :class:`RunLog`: sampled accuracy (k samples at T) of the first
    ``n_train`` train problems and of all test problems, the share of samples correct with a trace other than the
    target, target-trace perplexity, and the mean token log-likelihood of the greedy response (ATC's confidence).
    ``seed`` draws the samples (greedy decoding draws nothing)."""
    s, train = ex.s, ex.train.select(range(n_train))
    prompts = list(train["prompt"]) + list(ex.test["prompt"])
    answers = list(train["answer"]) + list(ex.test["answer"])
    out = sample(
        model, ex.tok, [p for p in prompts for _ in range(s.k)], s.max_new_tokens, s.temperature, seed, s.sample_batch
    )
    correct = np.array([answers_match(t, answers[i // s.k]) for i, t in enumerate(out.texts)]).reshape(-1, s.k)
    targets = list(train["response"])
    other = np.array(
        [
            c and not same_trace(t, targets[i // s.k])
            for i, (t, c) in enumerate(zip(out.texts[: n_train * s.k], correct[:n_train].flat))
        ]
    )
    pad = pad_id(ex.tok)
    prompt_ids = ex.prompt_ids["train"][:n_train]
    perp = score_ids(model, prompt_ids, ex.target_ids[:n_train], pad, batch_size=512).mean_nll.exp()
    greedy = sample(model, ex.tok, list(train["prompt"]), s.max_new_tokens, 0.0, seed, s.sample_batch)
    confidence = -score_ids(model, prompt_ids, greedy.ids, pad, batch_size=512).mean_nll
    return {
        "train_acc": correct[:n_train].mean(1),
        "train_half": correct[:n_train, : s.k // 2].mean(1),
        "test_acc": correct[n_train:].mean(1),
        "train_other": other.reshape(-1, s.k).mean(1),
        "train_perp": perp.numpy(),
        "train_conf": confidence.numpy(),
    }


RUN_KIND = "pre-memorization-run"  # the cache's folder of the grid's runs
SAVES_PER_RUN = 10  # resumable checkpoints per finetuning run


def _finetune(ex: Experiment, spec: RunSpec, progress: bool) -> RunLog:
    s, key = ex.s, ex.run_key(spec)
    n, steps = spec.size(s.n_train, s.batch_size), spec.steps(s.n_train, s.batch_size)
    data = tokenize_sft(ex.train.select(range(n)).select_columns(["prompt", "response"]), ex.tok)
    ids, labels = list(data["input_ids"]), list(data["labels"])
    checkpoints = common.checkpoint_steps(s.checkpoints, steps)
    model = copy.deepcopy(ex.base.model).to(ex.device)
    theta0 = _flat_params(model)
    rows: dict[int, dict] = ex.cache.load_checkpoint(RUN_KIND, key) or {}  # step -> RunLog's fields there, kept
    # across an interruption (a resumed run evaluates again, identically, the checkpoints after its last save)

    def log_checkpoint(step: int, model) -> None:
        if step not in checkpoints:
            return
        model.eval()
        row = evaluate(model, ex, n, seed=common.checkpoint_sampling(ex.run, step))
        rows[step] = {
            **row,
            "grad_var": _gradient_variance(model, ids, labels, ex),
            "dist_init": premem.distance_from_init(_flat_params(model).cpu(), theta0.cpu()),
            "step": step,
        }
        ex.cache.save_checkpoint(RUN_KIND, key, rows)

    cfg = common.finetune_config(s, ex.run, steps, spec.lr, checkpoint_every=max(steps // SAVES_PER_RUN, 1))
    sft_key = {"run": key}  # train_sft's checkpoints (weights, optimizer, schedule, losses), so a killed run resumes
    losses = train_sft(
        model,
        data,
        cfg,
        pad_id(ex.tok),
        ex.device,
        ex.cache,
        sft_key,
        desc=spec.name,
        on_step=log_checkpoint,
        progress=progress,
    )
    log = {name: np.array([rows[step][name] for step in checkpoints]) for name in rows[checkpoints[0]]}
    log["loss"] = np.array([float(np.mean(losses[a:b])) for a, b in zip([0, *checkpoints[:-1]], checkpoints)])
    ex.cache.discard("sft", {"key": sft_key, "sft": cfg})  # the finished weights: the run's log is what is kept
    return RunLog(**log)


def train_run(ex: Experiment, spec: RunSpec, progress: bool = True) -> RunLog:
    """One finetuning run from the pretrained model, cached under :meth:`Experiment.run_key`; a killed run resumes
    from its last checkpoint (one every tenth of its steps).

    :func:`~steerlib.lm.sft.train_sft` (on ``accelerate``) with AdamW at peak ``spec.lr``, linear warm-up and linear
    decay, and gradient-norm clipping, as in appendix C.2, evaluated at the checkpoints of ``settings.checkpoints``.
    """
    return ex.cache.cached(RUN_KIND, ex.run_key(spec), lambda: _finetune(ex, spec, progress), as_type=RunLog)


def _train_spec(settings: Settings, run: Run, spec: RunSpec) -> RunLog:
    """One job: the run ``spec`` of the grid (after the pretraining, from the cache)."""
    return train_run(Experiment(settings, run), spec)


def _run_grid(settings: Settings, run: Run) -> Results:
    t0 = time.time()
    ex = Experiment(settings, run)
    seconds = {"pretrain": time.time() - t0}
    specs = grid(settings)
    workers = torch.get_num_threads() if run.device.type == "cpu" and run.cache.enabled else 1
    done = run_jobs(train_run, specs, ex, functools.partial(Experiment, settings, run), workers, desc="runs")
    seconds.update({spec.name: t for spec, (_, t) in zip(specs, done)})
    return Results(run.replicate, specs, [log for log, _ in done], ex.base.losses, seconds)


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """Each replicate's pretraining, then every run of :func:`grid` at every replicate, then each replicate's
    assembled results."""
    return [
        per_replicate("pretrain", Experiment, settings, run),
        per_replicate_runs("finetune", _train_spec, settings, run, grid),
        results_stage(settings, run, "pre-memorization", _run_grid, Results, VERSIONS),
    ]


def run(settings: Settings, run: Run) -> Results:
    """Pretrain (cached), then every run of :func:`grid`, each cached on its own (so an interrupted grid resumes),
    at each of ``settings.replicates`` independent replicates of ``run`` (each drawing every random stream from
    (seed, replicate), :mod:`steerlib.core.seeds`); each replicate's assembled results are cached too.

    On a CPU the runs go to as many worker processes of one thread each as torch has threads (a tiny model keeps
    only one core busy; ``$STEERLIB_THREADS=1`` runs them back to back), which read the pretrained model from the
    run's cache; on a GPU, or without a cache, they go back to back. Every run depends on its spec and streams alone,
    so both ways give the same results.
    """
    check_run(settings, Settings, run)
    return replicated(run, settings, "pre-memorization", _run_grid, Results, VERSIONS)
