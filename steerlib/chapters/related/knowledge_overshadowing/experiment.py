"""The knowledge-overshadowing experiment: a causal LM finetuned on groups of made-up facts at several imbalance
ratios and shared-condition lengths (:mod:`steerlib.worlds.overshadowing`), with an exact argmax over the answers.

Each replicate draws its world (the groups' words) from its ``world`` stream, its model's initial weights from
``init`` and the batch order from ``order``; every run of the replicate starts from the same weights and draws its
batches with the same seed, so runs differ only in their data (paired). Every run trains the same number of steps
(``epochs`` over ``groups x slots`` sequences) and sees each rare fact ``rare x epochs`` times, whatever the ratio:
filler facts take the popular copies' place. At each checkpoint it records, for every group, the answer the model
ranks first (over every answer of the world) to the group's rare query and to its popular query. Each run's log is
cached on its own, each replicate's results as a whole.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from transformers import PreTrainedModel

from steerlib.core.chapter import Run, check_run, replicated
from steerlib.core.checks import check_range, check_ranges
from steerlib.core.jobs import Job, Stage, per_replicate_runs, results_stage
from steerlib.lm.base import BaseModelConfig, build_base
from steerlib.lm.models import load_tokenizer
from steerlib.lm.scoring import choice_logprobs, next_token_choice
from steerlib.lm.sft import SFTConfig, train_sft
from steerlib.lm.tokenizer import encode_responses, pad_id, tokenize_sft, word_tokenizer
from steerlib.worlds.overshadowing import Groups, facts, make_groups

KIND, RUN_KIND = "knowledge-overshadowing", "knowledge-overshadowing-run"
HUB_MODEL = "HuggingFaceTB/SmolLM2-1.7B"  # the paper profile's pretrained model (a Llama; the paper's are 7B Llamas)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One finetuning run: imbalance ratio r, shared-condition length L, rare copies n and sequences per group."""

    ratio: float
    length: int
    rare: int
    slots: int

    @property
    def name(self) -> str:
        """The run's name, e.g. ``"r=10 L=4 n=2"`` (its key in :attr:`Results.logs`)."""
        return f"r={self.ratio:g} L={self.length} n={self.rare}"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The world's size, the ratio and length sweeps, the training budget and the model."""

    groups: int = 32
    ratios: tuple[float, ...] = (1, 3, 10, 30)  # the claimed ratio sweep (at L = length)
    lengths: tuple[int, ...] = (1, 2, 4, 8)  # the length sweep (at r = ratio)
    length: int = 4  # L of the ratio sweep
    ratio: float = 10  # r of the length sweep, of the error breakdown and of the doubled rare exposures
    rare: int = 2  # n: copies of each rare fact
    slots: int = 64  # sequences per group in every claimed run: popular, rare and filler copies
    extra_ratio: float = 100  # one more ratio, reported and not claimed (its run has no fillers: its own steps)
    epochs: float = 8  # chosen by the gate pilot (the chapter's first table)
    pilot_epochs: tuple[float, ...] = (3, 4, 5, 6, 8, 10)  # the gate pilot's budgets: r = 1 runs, replicate 0
    batch_size: int = 64
    lr: float = 1e-3
    base: BaseModelConfig = BaseModelConfig(max_len=32)
    checkpoints: tuple[float, ...] = (1 / 8, 1 / 4, 1 / 2, 3 / 4, 1.0)  # fractions of each run's steps
    replicates: int = 3

    def __post_init__(self):
        for name in ("groups", "length", "rare", "slots", "batch_size", "replicates"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_ranges("ratios", self.ratios, 1)
        check_ranges("lengths", self.lengths, 1, integer=True)
        check_range("ratio", self.ratio, 1)
        check_range("extra_ratio", self.extra_ratio, 1)
        check_range("epochs", self.epochs, 0, open_low=True)
        check_ranges("pilot_epochs", self.pilot_epochs, 0, open_low=True)
        check_range("lr", self.lr, 0, open_low=True)
        check_ranges("checkpoints", self.checkpoints, 0, 1, open_low=True)
        for name in ("ratios", "lengths"):
            if list(getattr(self, name)) != sorted(set(getattr(self, name))):
                raise ValueError(f"{name}={getattr(self, name)} must be increasing: the claims read its ends")
        if self.ratios[0] != 1:
            raise ValueError(f"ratios={self.ratios} must start at 1: the balanced control (the gate and R3a's rise)")
        if self.extra_ratio in self.ratios:
            raise ValueError(
                f"extra_ratio={self.extra_ratio} is one of ratios={self.ratios}: it is the run not claimed"
            )
        if self.length not in self.lengths or self.ratio not in self.ratios:
            raise ValueError(
                f"length={self.length} must be one of lengths={self.lengths} and ratio={self.ratio} one of "
                f"ratios={self.ratios}: the two sweeps share that run"
            )
        needed = max(round(p.ratio * p.rare) + p.rare for p in (*self.ratio_sweep, self.doubled))
        if self.slots < needed:
            raise ValueError(
                f"slots={self.slots} cannot hold the popular and rare copies of every run: at least {needed}"
            )

    @property
    def ratio_sweep(self) -> list[RunSpec]:
        """The runs of the ratio sweep, at L = ``length``."""
        return [RunSpec(r, self.length, self.rare, self.slots) for r in self.ratios]

    @property
    def length_sweep(self) -> list[RunSpec]:
        """The runs of the length sweep, at r = ``ratio``."""
        return [RunSpec(self.ratio, n, self.rare, self.slots) for n in self.lengths]

    @property
    def main(self) -> RunSpec:
        """The run both sweeps share (r = ``ratio``, L = ``length``): the error breakdown's."""
        return RunSpec(self.ratio, self.length, self.rare, self.slots)

    @property
    def doubled(self) -> RunSpec:
        """The main run with twice the rare copies (and so twice the popular ones)."""
        return RunSpec(self.ratio, self.length, 2 * self.rare, self.slots)

    @property
    def extra_run(self) -> RunSpec:
        """r = ``extra_ratio`` with no fillers: the popular and rare copies alone, so its own number of steps."""
        return RunSpec(self.extra_ratio, self.length, self.rare, round(self.extra_ratio * self.rare) + self.rare)

    @property
    def runs(self) -> tuple[RunSpec, ...]:
        """Every run of a replicate, each once: the two sweeps, the doubled rare exposures, the extra ratio."""
        return tuple(dict.fromkeys([*self.ratio_sweep, *self.length_sweep, self.doubled, self.extra_run]))

    def steps(self, spec: RunSpec, epochs: float | None = None) -> int:
        """Optimizer steps of a run: ``ceil(epochs · groups · slots / batch_size)`` (``epochs``: the settings')."""
        return math.ceil((epochs or self.epochs) * self.groups * spec.slots / self.batch_size)


# smoke: seconds; cpu: 32 groups, 3 replicates, every claimed run 256 steps (r = 100: 808); paper: the hub model,
# 64 groups and the spec's 15 epochs.
PROFILES = {
    "smoke": Settings(
        groups=6,
        ratios=(1, 3),
        ratio=3,
        lengths=(2, 4),
        slots=24,
        extra_ratio=10,
        epochs=4,
        checkpoints=(0.5, 1.0),
        pilot_epochs=(2, 4),
        replicates=2,
        base=BaseModelConfig(d_model=32, n_layers=1, n_heads=2, max_len=32),
    ),
    "cpu": Settings(),
    "paper": Settings(
        groups=64,
        epochs=15,
        pilot_epochs=(3, 5, 10, 15),
        lr=1e-5,
        batch_size=32,
        base=BaseModelConfig(model=HUB_MODEL),
    ),
}


@dataclasses.dataclass
class RunLog:
    """One run at its C checkpoints: ``step`` (C,); ``rare`` and ``popular`` (C, G), the index of the answer ranked
    first for each group's rare and popular query (answers in :attr:`Groups.answers` order: group g's popular answer
    is g, its rare answer G + g, its filler answer 2G + g); ``loss`` (C,), the mean training loss since the previous
    checkpoint."""

    step: np.ndarray
    rare: np.ndarray
    popular: np.ndarray
    loss: np.ndarray


@dataclasses.dataclass
class Results:
    """One replicate's runs by :attr:`RunSpec.name`, the number of groups G, and the settings' runs of each role
    (:class:`Settings`); replicate 0's ``others`` holds replicates 1, 2, ... (their own empty)."""

    replicate: int
    groups: int
    logs: dict[str, RunLog]
    ratio_sweep: list[RunSpec]
    length_sweep: list[RunSpec]
    main: RunSpec
    doubled: RunSpec
    extra_run: RunSpec
    pilot: dict[str, RunLog]  # the gate pilot's r = 1 runs by budget ("8 epochs"), replicate 0 only
    others: list[Results] = dataclasses.field(default_factory=list)


class Experiment:
    """A replicate's world and tokenizer, and the model every run starts from."""

    def __init__(self, settings: Settings, run: Run):
        self.s, self.run = settings, run
        self.world: Groups = make_groups(settings.groups, max(settings.lengths), run.rng("world"))
        tiny = settings.base.model == "tiny"
        self.tok = word_tokenizer(self.world.vocabulary()) if tiny else load_tokenizer(settings.base.model, run.cache)
        self.answers = [" " + a for a in self.world.answers]

    def fresh_model(self) -> PreTrainedModel:
        """The initial model: a tiny one from the ``init`` stream, or the pretrained one loaded afresh."""
        return build_base(self.s.base, self.world.vocabulary(), self.run.stream("init"), self.run.cache)[0]

    def run_key(self, spec: RunSpec, epochs: float | None = None) -> dict:
        """What a run's log depends on: the settings but the replicate count and the pilot's budgets, the spec,
        the streams, and a pilot run's budget."""
        streams = {name: self.run.stream(name) for name in ("world", "init", "order")}
        settings = {**dataclasses.asdict(self.s), "replicates": 1}
        del settings["pilot_epochs"]
        return {"settings": settings, "spec": spec, "streams": streams, **({"epochs": epochs} if epochs else {})}

    def first_answers(self, model: PreTrainedModel, kind: str, length: int) -> np.ndarray:
        """(G,) index of the answer ``model`` ranks first for each group's ``kind`` query with ``length`` words."""
        prompts = [self.world.query(kind, g, length) for g in range(self.world.n)]
        if all(len(ids) == 1 for ids in encode_responses(self.tok, self.answers, eos=False)):
            logp = next_token_choice(model, self.tok, prompts, self.answers)
        else:  # a pretrained tokenizer splits some answers: score each answer whole
            logp = choice_logprobs(model, self.tok, prompts, [self.answers] * len(prompts), eos=False)
        return logp.argmax(1).numpy()


def _finetune(ex: Experiment, spec: RunSpec, epochs: float | None) -> RunLog:
    s = ex.s
    steps = s.steps(spec, epochs)
    marks = sorted({max(1, round(f * steps)) for f in s.checkpoints})
    data = facts(ex.world, spec.length, spec.ratio, spec.rare, spec.slots)
    model = ex.fresh_model().to(ex.run.device)
    rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def log(step: int, model) -> None:
        if step in marks:
            model.eval()
            with torch.no_grad():
                rows[step] = tuple(ex.first_answers(model, kind, spec.length) for kind in ("rare", "popular"))

    cfg = SFTConfig(steps=steps, batch_size=s.batch_size, lr=s.lr, seed=ex.run.stream("order"))
    losses = train_sft(
        model,
        tokenize_sft(data.select_columns(["prompt", "response"]), ex.tok),
        cfg,
        pad_id(ex.tok),
        ex.run.device,
        desc=spec.name,
        on_step=log,
    )
    return RunLog(
        step=np.array(marks),
        rare=np.stack([rows[m][0] for m in marks]),
        popular=np.stack([rows[m][1] for m in marks]),
        loss=np.array([float(np.mean(losses[a:b])) for a, b in zip([0, *marks[:-1]], marks)]),
    )


def train_run(ex: Experiment, spec: RunSpec, epochs: float | None = None) -> RunLog:
    """One run from the replicate's initial weights (for ``epochs``, default the settings': a pilot budget equal to
    them is the same run), evaluated at the checkpoints and cached as a whole."""
    epochs = None if epochs == ex.s.epochs else epochs
    return ex.run.cache.cached(RUN_KIND, ex.run_key(spec, epochs), lambda: _finetune(ex, spec, epochs), as_type=RunLog)


def pilot_spec(s: Settings) -> RunSpec:
    """The gate pilot's run: the balanced control, r = 1 (at L = ``length``)."""
    return RunSpec(1, s.length, s.rare, s.slots)


def _pilot(settings: Settings, run: Run) -> dict[str, RunLog]:
    """The gate pilot at replicate 0: the balanced control trained for each budget of ``pilot_epochs``."""
    if run.replicate:
        return {}
    ex = Experiment(settings, run)
    return {f"{e:g} epochs": train_run(ex, pilot_spec(settings), e) for e in settings.pilot_epochs}


def _train_spec(settings: Settings, run: Run, spec: RunSpec) -> RunLog:
    """One job: run ``spec`` of a replicate."""
    return train_run(Experiment(settings, run), spec)


def _experiment(settings: Settings, run: Run) -> Results:
    ex = Experiment(settings, run)
    s = settings
    logs = {spec.name: train_run(ex, spec) for spec in s.runs}
    runs = (s.ratio_sweep, s.length_sweep, s.main, s.doubled, s.extra_run)
    return Results(run.replicate, s.groups, logs, *runs, _pilot(settings, run))


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """The gate pilot, every run of every replicate, then each replicate's assembled results."""
    one = dataclasses.replace(settings, replicates=1)
    return [
        Stage("pilot", (Job("replicate 0", _pilot, (one, run.at(0))),)),
        per_replicate_runs("finetune", _train_spec, settings, run, lambda s: s.runs),
        results_stage(settings, run, KIND, _experiment, Results),
    ]


def run(settings: Settings, run: Run) -> Results:
    """Every run at each of ``settings.replicates`` independent replicates, each run and each replicate cached."""
    check_run(settings, Settings, run)
    return replicated(run, settings, KIND, _experiment, Results)
