"""The pass@N experiment: Part III's pretrained model finetuned on its task with cross-entropy and with DCO.

Every replicate starts from Part III's shared set-up (:func:`~steerlib.chapters.reasoning.common.setup`: the
problems from the ``data`` stream and the model pretrained on the task, cached and shared with the reasoning
chapters), then trains three runs (:data:`RUNS`) from the same pretrained weights with the same batch order: cross-
entropy (CE) and DCO at the learning rate of a memorizing run of the pre-memorization chapter's grid, and CE at a
lower rate as a control. At each checkpoint (log-spaced fractions of the run) it samples ``samples`` responses to
every test problem at temperature ``temperature`` (the ``sampling`` stream's substream of the checkpoint, the same
for every run: paired), counts the right ones and the share giving the modal answer, and scores the perplexity of
every training problem's target trace (memorized when at most ``p``, Part III's threshold). Each run's log is cached
on its own, each replicate's results as a whole.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np

from steerlib.chapters.reasoning import common
from steerlib.chapters.reasoning.common import N_PRETRAIN, PRETRAIN, PRETRAINING, TASK, TINY
from steerlib.core.chapter import Run, check_run, replicated
from steerlib.core.checks import check_choice, check_range
from steerlib.core.jobs import Stage, per_replicate, per_replicate_runs, results_stage
from steerlib.lm.base import BaseModelConfig
from steerlib.lm.sampling import SAMPLER, sample
from steerlib.lm.scoring import score_ids
from steerlib.lm.sft import DCOLoss, SFTConfig, train_sft
from steerlib.lm.tokenizer import encode_prompts, encode_responses, pad_id, tokenize_sft
from steerlib.measures.coverage import modal_share
from steerlib.worlds.running_totals import TaskConfig, extract_answer

KIND, RUN_KIND = "passn-overconfidence", "passn-overconfidence-run"
VERSIONS = {"sampler": SAMPLER}  # the logs hold sampled answers: a new sampler recomputes them
LOSSES = ("ce", "dco")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One finetuning run: its name, its loss (``ce`` or ``dco``) and peak learning rate."""

    name: str
    loss: str
    lr: float

    def __post_init__(self):
        check_choice("loss", self.loss, LOSSES)
        check_range("lr", self.lr, 0, open_low=True)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Part III's task, model and pretraining (shared through the cache), the three runs, and the evaluation."""

    n_pretrain: int = N_PRETRAIN
    pretrain: SFTConfig = PRETRAIN
    base: BaseModelConfig = TINY
    task: TaskConfig = TASK
    n_train: int = 256  # the pre-memorization chapter's finetuning set
    n_test: int = 128
    lr: float = 3e-4  # a memorizing run of the pre-memorization chapter's grid
    control_lr: float = 1e-4  # the CE control
    epochs: float = 24
    dco_n: int = 16  # DCO's N: the coverage it optimises
    samples: int = 32  # responses per test problem and checkpoint
    k_max: int = 16  # pass@k for k = 1 .. k_max (at most samples / 2: pass@n is noisy)
    batch_size: int = 8
    warmup: float = 0.1
    grad_clip: float = 2.0
    checkpoints: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)  # log-spaced fractions of the steps
    temperature: float = 1.0  # T < 1 exaggerates overconfidence (the spec's pitfall)
    max_new_tokens: int = 30
    sample_batch: int = 1024
    p: float = 1.145  # memorization threshold: the pre-memorization chapter's calibrated p, as robustness uses it
    replicates: int = 3

    def __post_init__(self):
        common.check_shared(self)
        for name in ("n_train", "dco_n", "samples", "k_max"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_range("n_train", self.n_train, self.batch_size, integer=True)
        check_range("k_max", self.k_max, 1, self.samples // 2, integer=True)
        for name in ("lr", "control_lr", "epochs"):
            check_range(name, getattr(self, name), 0, open_low=True)
        check_range("p", self.p, 1, open_low=True)

    @property
    def steps(self) -> int:
        """Optimizer steps of every run: ``ceil(epochs · n_train / batch_size)``."""
        return math.ceil(self.epochs * self.n_train / self.batch_size)

    @property
    def runs(self) -> tuple[RunSpec, ...]:
        """The three runs: CE and DCO at ``lr``, CE at ``control_lr``."""
        return (
            RunSpec("ce", "ce", self.lr),
            RunSpec("dco", "dco", self.lr),
            RunSpec("ce-control", "ce", self.control_lr),
        )


PROFILES = {
    "smoke": Settings(
        **PRETRAINING["smoke"],
        n_train=48,
        n_test=24,
        epochs=4,
        samples=8,
        k_max=4,
        checkpoints=(0.25, 0.5, 1.0),
        replicates=1,
    ),
    "cpu": Settings(**PRETRAINING["cpu"]),
    "paper": Settings(**PRETRAINING["paper"], n_train=1024, n_test=512, batch_size=32, epochs=6, samples=64, k_max=32),
}


@dataclasses.dataclass
class RunLog:
    """One run at its C checkpoints: ``step`` (C,); ``correct`` (C, n_test), right answers of ``samples`` responses per
    test problem; ``modal`` (C, n_test), the share of them giving the problem's most frequent answer; ``memorized``
    (C,), the share of training traces with perplexity at most p; ``loss`` (C,), the mean training loss since the
    previous checkpoint."""

    step: np.ndarray
    correct: np.ndarray
    modal: np.ndarray
    memorized: np.ndarray
    loss: np.ndarray


@dataclasses.dataclass
class Results:
    """One replicate's runs by name; replicate 0's ``others`` holds replicates 1, 2, ... (their own empty)."""

    replicate: int
    logs: dict[str, RunLog]
    samples: int  # responses per test problem and checkpoint
    k_max: int  # the large k of pass@k
    others: list[Results] = dataclasses.field(default_factory=list)


class Experiment:
    """A replicate's set-up (Part III's, shared through the cache), tokenized once."""

    def __init__(self, settings: Settings, run: Run):
        self.s, self.run = settings, run
        part = common.setup(settings, run)
        self.base, self.train, self.test = part.base, part.train, part.test
        self.tok = self.base.tokenizer
        self.train_prompts = encode_prompts(self.tok, self.train["prompt"])
        self.targets = encode_responses(self.tok, self.train["response"])

    def run_key(self, spec: RunSpec) -> dict:
        """What a run's log depends on: the pretraining, the settings but the replicate count, the spec, its streams
        and the sampler."""
        streams = {name: self.run.stream(name) for name in ("order", "sampling")}
        settings = {**dataclasses.asdict(self.s), "replicates": 1}
        return {"pretrain": self.base.key, "settings": settings, "spec": spec, "streams": streams, "sampler": SAMPLER}


def evaluate(model, ex: Experiment, seed: int) -> dict[str, np.ndarray | float]:
    """One checkpoint: right answers and the modal share of ``samples`` responses to each test problem (drawn with
    ``seed``), and the share of memorized training traces."""
    s = ex.s
    prompts = [p for p in ex.test["prompt"] for _ in range(s.samples)]
    out = sample(model, ex.tok, prompts, s.max_new_tokens, s.temperature, seed, s.sample_batch)
    answers = np.array([extract_answer(t) for t in out.texts], dtype=object).reshape(-1, s.samples)
    truth = np.array(ex.test["answer"])[:, None]
    perp = score_ids(model, ex.train_prompts, ex.targets, pad_id(ex.tok), batch_size=512).mean_nll.exp()
    return {
        "correct": (answers == truth).sum(1),
        "modal": np.array([modal_share(list(row)) for row in answers]),
        "memorized": float((perp.numpy() <= s.p).mean()),
    }


def _finetune(ex: Experiment, spec: RunSpec, progress: bool = True) -> RunLog:
    s = ex.s
    data = tokenize_sft(ex.train.select_columns(["prompt", "response"]), ex.tok)
    marks = common.checkpoint_steps(s.checkpoints, s.steps)
    model = copy.deepcopy(ex.base.model).to(ex.run.device)
    rows: dict[int, dict] = {}

    def log(step: int, model) -> None:
        if step in marks:
            model.eval()
            rows[step] = evaluate(model, ex, common.checkpoint_sampling(ex.run, step))

    cfg = common.finetune_config(s, ex.run, s.steps, spec.lr)
    loss = DCOLoss(s.dco_n) if spec.loss == "dco" else None
    losses = train_sft(
        model, data, cfg, pad_id(ex.tok), ex.run.device, desc=spec.name, on_step=log, progress=progress, loss=loss
    )
    return RunLog(
        step=np.array(marks),
        correct=np.stack([rows[m]["correct"] for m in marks]),
        modal=np.stack([rows[m]["modal"] for m in marks]),
        memorized=np.array([rows[m]["memorized"] for m in marks]),
        loss=np.array([float(np.mean(losses[a:b])) for a, b in zip([0, *marks[:-1]], marks)]),
    )


def train_run(ex: Experiment, spec: RunSpec, progress: bool = True) -> RunLog:
    """One run from the pretrained model (:func:`~steerlib.lm.sft.train_sft` on ``accelerate``, AdamW with linear
    warm-up and decay, DCO through its per-sequence loss), evaluated at the checkpoints and cached as a whole."""
    return ex.run.cache.cached(RUN_KIND, ex.run_key(spec), lambda: _finetune(ex, spec, progress), as_type=RunLog)


def _train_spec(settings: Settings, run: Run, spec: RunSpec) -> RunLog:
    """One job: run ``spec`` of a replicate (after its pretraining, from the cache)."""
    return train_run(Experiment(settings, run), spec)


def _experiment(settings: Settings, run: Run) -> Results:
    ex = Experiment(settings, run)
    return Results(
        run.replicate, {spec.name: train_run(ex, spec) for spec in settings.runs}, settings.samples, settings.k_max
    )


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """Each replicate's pretraining (Part III's), its three runs, then its assembled results."""
    return [
        per_replicate("pretrain", Experiment, settings, run),
        per_replicate_runs("finetune", _train_spec, settings, run, lambda s: s.runs),
        results_stage(settings, run, KIND, _experiment, Results, VERSIONS),
    ]


def run(settings: Settings, run: Run) -> Results:
    """The three runs at each of ``settings.replicates`` independent replicates, each run and each replicate's
    results cached."""
    check_run(settings, Settings, run)
    return replicated(run, settings, KIND, _experiment, Results, VERSIONS)
