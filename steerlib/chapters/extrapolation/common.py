"""What the chapters of Part I share, so that they judge the same trained models through the run cache.

Reversion, mechanism and cautious decisions train every model of a dataset with one recipe (:data:`RECIPES`), start
from one set-up (:func:`setup`: the training split less a held-out part, the cross-entropy ensemble, and the severity
ladders fixed on the held-out part) and score each evaluation set once (:func:`ood_score`). Every random draw comes
from the run's streams (:mod:`steerlib.core.seeds`), never from the chapter, so at the same seed the three chapters
hit the same cache entries: mechanism and cautious decisions find reversion's ensembles, ladders and OOD scores.

``cpu`` recipe: Adam at lr 3e-3 for 10 epochs, no decay. Measured on MNIST-5k (3,500 training images, width-16 CNN,
one thread): 8 epochs at lr 1e-3 leave the cross-entropy CNN at 0.956-0.960 test accuracy, too close to the 0.95
that Part I requires, and the +1/-4/0 reward model abstaining on 40-55% of the clean test digits; 10 epochs at 3e-3
give 0.971-0.976 and 23-28% (the same recipe gives mnist1d 0.85-0.88). About 14 s per replicate and model on
MNIST-5k. The dissertation's MNIST recipe (lr decayed by 0.7 per epoch, weight decay 0.01) is kept for ``paper``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from steerlib.core.chapter import Run
from steerlib.core.checks import check_nonempty, check_range, check_type
from steerlib.core.scale import Scale, cube_root_times
from steerlib.core.seeds import substream
from steerlib.measures import ood
from steerlib.vision.data import ImageData, held_out, load_dataset
from steerlib.vision.ensemble import FORMAT, Ensemble
from steerlib.vision.ladders import GRID_POINTS, LOSS_FRACTIONS, severity_ladders
from steerlib.vision.losses import make_loss
from steerlib.vision.models import make_model
from steerlib.vision.shifts import SHIFTS, EvalSet, evaluation_sets, focus_sets
from steerlib.vision.train import TrainConfig, fit

S = TypeVar("S")  # a Part I chapter's Settings (with ``width`` and ``train``)
LADDERS, TEST_SETS, FOCUS_SETS = 0, 1, 2  # the substreams of the run's shift stream (steerlib.core.seeds.substream)
RECIPES = {
    "smoke": TrainConfig(epochs=15, batch_size=64, lr=3e-3, warmup_epochs=2),
    "cpu": TrainConfig(epochs=10, batch_size=64, lr=3e-3, warmup_epochs=2),
    "paper": TrainConfig(epochs=14, batch_size=64, lr=1e-3, weight_decay=0.01, lr_decay=0.7, warmup_epochs=3),
}


@dataclasses.dataclass
class Setup:
    """What every chapter of Part I starts from: the data its models train on (the training split less the
    held-out examples), the cross-entropy ensemble, and the ladders of every shift."""

    data: ImageData
    classifier: Ensemble
    ladders: dict[str, tuple[float, ...]]


def setup(dataset: str, held_out_n: int, arch: str, width: int, replicates: int, train: TrainConfig, run: Run) -> Setup:
    """Hold ``held_out_n`` training examples of ``dataset`` out (the run's ``data`` stream), train (or load) the
    cross-entropy ensemble of ``replicates`` members on the rest, and fix the ladders of every shift
    (:data:`~steerlib.vision.shifts.SHIFTS`) on the held-out examples (shift noise from the ``shift`` stream); the
    ladders are cached next to the ensemble, so every chapter reads the same ones."""
    check_range("held_out_n", held_out_n, 1, integer=True)
    rest, x_val, y_val = held_out(load_dataset(dataset), held_out_n, seed=run.stream("data"))
    classifier = ensemble(rest, "ce", arch, width, replicates, train, run)
    shift_seed = substream(run.stream("shift"), LADDERS)

    def ladders() -> dict[str, tuple[float, ...]]:
        return severity_ladders(classifier, x_val, y_val, SHIFTS, rest.value_range, shift_seed)

    key = {
        "data": rest.name,
        "seed": run.seed,
        "arch": arch,
        "width": width,
        "replicates": replicates,
        "train": train,
        "format": FORMAT,
        "shifts": SHIFTS,
        "fractions": LOSS_FRACTIONS,
        "grid_points": GRID_POINTS,
    }
    found = run.cache.cached("ladders", key, ladders)
    return Setup(rest, classifier, {s: tuple(v) for s, v in found.items()})


def ensemble(
    data: ImageData, loss, arch: str, width: int, replicates: int, train: TrainConfig, run: Run, norm: str = "none"
) -> Ensemble:
    """The ensemble of ``loss`` (a name or a loss from make_loss) on ``data``, one member per replicate of ``run``
    (trained, or loaded from the run cache by its full configuration)."""
    loss = make_loss(loss, data.num_classes) if isinstance(loss, str) else loss
    return fit(data, loss, arch, run.replicates(replicates), train, run.device, run.cache, width, norm)


def shifted_sets(
    data: ImageData, shifts: tuple[str, ...], ladders: dict[str, tuple[float, ...]], run: Run
) -> list[EvalSet]:
    """The clean test split and every shift at its ladder's five levels (noise from the run's ``shift`` stream)."""
    return evaluation_sets(
        data.x_test, data.y_test, shifts, data.value_range, substream(run.stream("shift"), TEST_SETS), ladders
    )


def focus_inputs(
    data: ImageData, focus_class: int, shift: str, ladders: dict[str, tuple[float, ...]], run: Run
) -> tuple[list[float], list[torch.Tensor]]:
    """Fig 2.2's sets: the test inputs of ``focus_class``, clean and at ``shift``'s five levels (severities,
    inputs), noise from the run's ``shift`` stream."""
    return focus_sets(
        data.x_test[data.y_test == focus_class],
        shift,
        data.value_range,
        substream(run.stream("shift"), FOCUS_SETS),
        ladders,
    )


def ood_score(
    run: Run, dataset: str, x_ref: torch.Tensor, shift: str, severity: float, x_eval: torch.Tensor, n_splits: int
) -> float:
    """:func:`steerlib.measures.ood.ood_score` of one evaluation set (``dataset``'s test split under ``shift`` at
    ``severity``; splits and features from the run's ``eval`` stream), cached under one key so every chapter that
    scores the same set shares the score."""
    check_type("run", run, Run, "the Run from chapter.start")
    check_nonempty("dataset", check_type("dataset", dataset, str, "the dataset's name"))
    check_nonempty("shift", check_type("shift", shift, str, "the shift's name ('none' for the clean set)"))
    check_range("severity", severity, 0)
    seed = run.stream("eval")
    key = {"data": dataset, "shift": shift, "severity": severity, "splits": n_splits, "seed": seed}
    return run.cache.cached("ood_score", key, lambda: ood.ood_score(x_ref, x_eval, n_splits, seed=seed))


# ------------------------------------------------------------------------------------------- the scale axis


def scaled(settings: S, factor: float) -> S:
    """Part I's scale knob: the CNN's ``width`` and the recipe's epochs each times ``factor``^(1/3) (rounded; at least
    2 channels and the recipe's warm-up epochs), so that training compute, which grows as width^2 x epochs, grows
    about ``factor``-fold."""
    check_range("factor", factor, 0.0, open_low=True)
    train = settings.train
    epochs = max(train.warmup_epochs, cube_root_times(train.epochs, factor))
    width = max(2, cube_root_times(settings.width, factor))
    return dataclasses.replace(settings, width=width, train=dataclasses.replace(train, epochs=epochs))


def scale(
    claims: tuple[str, ...],
    dataset: Callable[[Any], str],
    also: str = "",
    beyond: tuple[float, ...] = (2.0, 4.0, 8.0),
    **extra: Callable[[Any, float], Any],
) -> Scale:
    """Part I's scale axis (:mod:`steerlib.core.scale`) tracking ``claims``: the knob :func:`scaled`, then each of
    ``extra``'s functions setting the field it names (e.g. the mechanism's simulation; ``also`` says what they
    scale, in words); compute: the training FLOPs
    of one member of the cross-entropy CNN on ``dataset(settings)`` (:func:`training_flops`). The book runs factors
    1/32 to 1 at cpu (about 22x in compute: width and epochs round to integers) and 1/4, 1 at smoke;
    ``make sweeps`` adds ``beyond``."""

    def apply(settings: Any, factor: float) -> Any:
        out = scaled(settings, factor)
        return dataclasses.replace(out, **{name: fn(out, factor) for name, fn in extra.items()})

    def compute(settings: Any) -> float:
        return training_flops(dataset(settings), "cnn", settings.width, settings.train.epochs, settings.held_out)

    return Scale(
        knob="the CNN's width and every model's epochs, each x factor^(1/3)" + (f"; {also}" if also else ""),
        apply=apply,
        compute=compute,
        claims=claims,
        factors={"smoke": (0.25, 1.0), "cpu": (1 / 32, 1 / 8, 1 / 4, 1 / 2, 1.0)},  # paper: shown beside them
        beyond=beyond,
    )


def training_flops(dataset: str, arch: str, width: int, epochs: int, held_out_n: int) -> float:
    """FLOPs of training one member of the cross-entropy ``arch`` on ``dataset`` less ``held_out_n`` examples: 3 x
    its forward FLOPs per example (its convolutions and matrix products, torch's FlopCounterMode) x examples x
    epochs."""
    from torch.utils.flop_counter import FlopCounterMode

    data = load_dataset(dataset)
    model = make_model(arch, data.input_shape, data.num_classes, width=width)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(data.x_train[:1])
    return 3.0 * counter.get_total_flops() * (len(data.x_train) - held_out_n) * epochs
