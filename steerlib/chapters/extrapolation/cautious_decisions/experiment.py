"""The cautious-decisions experiment: a classifier and one reward model per table, four policies on every set (Part
I's shared set-up and models: :mod:`steerlib.chapters.extrapolation.common`)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pandas as pd
import torch

from steerlib.chapters.extrapolation import common
from steerlib.core.chapter import Run, check_run
from steerlib.core.checks import check_choice, check_choices, check_nonempty, check_range, check_type
from steerlib.core.jobs import Job, Stage
from steerlib.core.runtime import progress_bar
from steerlib.measures.decisions import RewardTable, abstain_ratio, greedy_policy, mean_reward
from steerlib.measures.ocs import ocs_cross_entropy
from steerlib.vision.calibration import fit_temperature, scale
from steerlib.vision.data import DATASETS, ImageData
from steerlib.vision.ensemble import Ensemble
from steerlib.vision.losses import make_loss
from steerlib.vision.models import ARCHS
from steerlib.vision.shifts import SHIFTS
from steerlib.vision.train import TrainConfig

METHODS = ("reward", "ce", "calibrated", "oracle")


@dataclasses.dataclass(frozen=True)
class Settings:
    datasets: tuple[str, ...] = ("mnist5k", "mnist1d")
    shifts: tuple[str, ...] = SHIFTS
    arch: str = "cnn"
    width: int = 16
    replicates: int = 3  # independently seeded members of every ensemble
    # Part I's recipe: the classifier and the +1/-4/0 reward model are the reversion chapter's (from the run cache)
    train: TrainConfig = common.RECIPES["cpu"]
    held_out: int = 500  # as the reversion chapter: the ladders' held-out training examples
    # The first table is the dissertation's; the second has so mild a penalty that its OCS answers (threshold < 1/K).
    tables: tuple[RewardTable, ...] = (RewardTable(1.0, -4.0, 0.0), RewardTable(1.0, -0.05, 0.0))
    focus_class: int = 6  # Fig 2.5's single-class evaluation set ...
    focus_shift: str = "rotate"  # ... under increasing rotation: the previous chapter's Fig 2.2 sets

    def __post_init__(self):
        check_choices("datasets", self.datasets, DATASETS)
        check_choices("shifts", self.shifts, SHIFTS)
        check_choice("arch", self.arch, ARCHS)
        check_choice("focus_shift", self.focus_shift, SHIFTS)
        for name in ("width", "replicates", "held_out"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_type("train", self.train, TrainConfig, "a TrainConfig")
        check_type("tables", self.tables, tuple, "a tuple of RewardTables")
        for table in check_nonempty("tables", self.tables):
            check_type("tables", table, RewardTable, "a tuple of RewardTables")
        if len({t.label for t in self.tables}) < len(self.tables):
            raise ValueError(f"tables={[t.label for t in self.tables]} repeats a table; give distinct ones")
        check_range("focus_class", self.focus_class, 0, 9, integer=True)


PROFILES = {
    "smoke": Settings(
        datasets=("digits",),
        shifts=("rotate", "blur"),
        width=16,
        replicates=2,
        held_out=200,
        train=common.RECIPES["smoke"],
    ),
    "cpu": Settings(),
    "paper": Settings(
        datasets=("mnist", "cifar10"), width=64, replicates=5, held_out=5000, train=common.RECIPES["paper"]
    ),
}

# Every evidence claim along Part I's scale axis: the models at each point are the reversion chapter's sweep's.
SCALE = common.scale(("A6a", "A6c", "A6d", "A7a", "A7b", "A7c", "A7e", "A7f"), lambda s: s.datasets[0])


class FocusKey(NamedTuple):
    dataset: str
    rewards: str  # a RewardTable's label, e.g. "+1/-4/0"


@dataclasses.dataclass(frozen=True)
class Focus:
    """Fig 2.5's data for one (dataset, rewards): the reward model on ``focus_class`` under ``shift``, levels 0-5."""

    focus_class: int
    shift: str
    severities: tuple[float, ...]  # level 0 (clean) first
    predictions: torch.Tensor  # predicted reward of every action: (E, levels, N, K+1)
    ocs: torch.Tensor  # the reward model's OCS: mean reward of every action, (K+1,)
    ocs_action: int  # the action the OCS picks (K: abstain)


@dataclasses.dataclass
class Results:
    """``table``: one row per (dataset, rewards, method, shift, level, replicate) with ``abstain`` and ``reward``.

    ``focus``: Fig 2.5's data per (dataset, rewards). ``tables``: the reward tables by label, in order.
    ``decision_problems``: :func:`decision_problems` of each dataset's training labels, indexed by (dataset, rewards).
    """

    table: pd.DataFrame
    focus: dict[FocusKey, Focus]
    tables: dict[str, RewardTable]
    decision_problems: pd.DataFrame


def decision_problems(tables: tuple[RewardTable, ...], y: torch.Tensor, num_classes: int) -> pd.DataFrame:
    """Per table: the Bayes threshold, the reward model's OCS at the label marginal of ``y``, and the OCS's action."""
    marginal = ocs_cross_entropy(y, num_classes)
    rows = []
    for t in tables:
        ocs, action = t.expected_rewards(marginal), t.ocs_action(marginal)
        rows.append(
            {
                "rewards": t.label,
                "threshold": t.threshold,
                "OCS, best class": float(ocs[:-1].max()),
                "OCS, abstain": float(ocs[-1]),
                "OCS policy": "abstain" if action == num_classes else f"answer class {action}",
            }
        )
    return pd.DataFrame(rows).set_index("rewards")


def classifier_probs(logits: list[torch.Tensor], ys: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
    """Calibrated probabilities per evaluation set (the first is the clean one), logits (E, N, K) per set.

    ``calibrated``: temperatures fitted on the clean set, reused on every set. ``oracle``: fitted on each set.
    """
    t_clean = fit_temperature(logits[0], ys[0])
    return {
        "calibrated": [scale(z, t_clean).softmax(-1) for z in logits],
        "oracle": [scale(z, fit_temperature(z, y)).softmax(-1) for z, y in zip(logits, ys)],
    }


def _setup(settings: Settings, run: Run, dataset: str) -> common.Setup:
    """``dataset``'s training data less the held-out examples, the classifier (the reversion chapter's, from the
    run cache) and the ladders (:func:`~steerlib.chapters.extrapolation.common.setup`)."""
    return common.setup(
        dataset, settings.held_out, settings.arch, settings.width, settings.replicates, settings.train, run
    )


def _reward_model(settings: Settings, run: Run, data: ImageData, table: RewardTable) -> Ensemble:
    """The reward model of ``table`` on ``data`` (for +1/-4/0 the reversion chapter's MSE-reward ensemble: the same
    loss, so the same cache entry)."""
    return common.ensemble(
        data,
        make_loss("mse_reward", data.num_classes, table),
        settings.arch,
        settings.width,
        settings.replicates,
        settings.train,
        run,
    )


def _train_reward_model(settings: Settings, run: Run, dataset: str, table: RewardTable) -> Ensemble:
    """One job: the reward model of ``table`` on ``dataset`` (after its set-up, from the cache)."""
    return _reward_model(settings, run, _setup(settings, run, dataset).data, table)


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """Each dataset's set-up (the classifier and the ladders), then one reward model per table; at the same
    settings these are the reversion chapter's jobs "classifiers" and "ensembles" (same cache entries)."""
    return [
        Stage("classifiers", tuple(Job(f"{name}/ce", _setup, (settings, run, name)) for name in settings.datasets)),
        Stage(
            "reward-models",
            tuple(
                Job(f"{name}/{t.label}", _train_reward_model, (settings, run, name, t))
                for name in settings.datasets
                for t in settings.tables
            ),
        ),
    ]


def run(settings: Settings, run: Run) -> Results:
    """Train the classifier and one reward model per table for each dataset, then score every method on every set."""
    check_run(settings, Settings, run)
    rows, focus, problems = [], {}, {}
    for name in settings.datasets:
        setup = _setup(settings, run, name)
        data, classifier = setup.data, setup.classifier
        k = data.num_classes
        problems[name] = decision_problems(settings.tables, data.y_train, k)
        sets = common.shifted_sets(data, settings.shifts, setup.ladders, run)
        logits = [classifier.predict(s.x) for s in sets]
        probs = classifier_probs(logits, [s.y for s in sets])
        focus_sevs, focus_xs = common.focus_inputs(data, settings.focus_class, settings.focus_shift, setup.ladders, run)
        marginal = ocs_cross_entropy(data.y_train, k)
        for table in settings.tables:
            loss = make_loss("mse_reward", k, table)
            model = _reward_model(settings, run, data, table)
            for i, s in enumerate(progress_bar(sets, desc=f"{name} {table.label}", leave=False)):
                actions = {
                    "reward": greedy_policy(model.predict(s.x)),
                    "ce": greedy_policy(logits[i]),
                    "calibrated": table.bayes_policy(probs["calibrated"][i]),
                    "oracle": table.bayes_policy(probs["oracle"][i]),
                }
                for method, a in actions.items():
                    ab, rew = abstain_ratio(a, k), mean_reward(a, s.y, table, k)
                    rows += [
                        {
                            "dataset": name,
                            "rewards": table.label,
                            "method": method,
                            "shift": s.shift,
                            "level": s.level,
                            "severity": s.severity,
                            "replicate": e,
                            "abstain": float(ab[e]),
                            "reward": float(rew[e]),
                        }
                        for e in range(len(model))
                    ]
            focus[FocusKey(name, table.label)] = Focus(
                settings.focus_class,
                settings.focus_shift,
                tuple(focus_sevs),
                torch.stack([model.predict(x) for x in focus_xs], dim=1),
                loss.ocs(data.y_train),
                table.ocs_action(marginal),
            )
    return Results(
        pd.DataFrame(rows), focus, {t.label: t for t in settings.tables}, pd.concat(problems, names=["dataset"])
    )
