"""The experiment of the chapter "Template chapter title".

What it trains, what it evaluates, and which random streams it draws from. Template: a logistic-regression
classifier, trained by full-batch gradient descent on two Gaussian classes in ``dim`` dimensions, then tested on its
test inputs with Gaussian noise of each scale in ``noise`` added. Each replicate draws its data, its initialisation
and its test noise from its own streams of the run (:mod:`steerlib.core.seeds`), and its whole results are cached
under the chapter's name (:func:`~steerlib.core.chapter.replicated`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from steerlib.core.chapter import Run, check_run, replicated
from steerlib.core.checks import check_range, check_ranges
from steerlib.core.jobs import Stage, results_stage

KIND = "template-chapter"  # the run-cache kind of the chapter's whole results: the chapter's name


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a run depends on, checked when the settings are made (a bad value fails before anything runs)."""

    dim: int = 20  # input dimensions
    separation: float = 3.0  # distance between the two class means, in units of the classes' standard deviation
    n_train: int = 500
    n_test: int = 1000
    steps: int = 200  # full-batch gradient steps
    lr: float = 0.5
    noise: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # standard deviations of the noise added to the test inputs
    replicates: int = 3  # independent replicates every claim is judged over (at least 3 at cpu)

    def __post_init__(self):
        for name in ("dim", "n_train", "n_test", "steps", "replicates"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_range("separation", self.separation, 0, open_low=True)
        check_range("lr", self.lr, 0, open_low=True)
        check_ranges("noise", self.noise, 0, open_low=True)


# smoke: seconds, for the tests and the smoke book; cpu: where the claims are judged (seconds here too); paper: the
# scale of the work reproduced.
PROFILES = {
    "smoke": Settings(dim=10, n_train=200, n_test=400, steps=50, noise=(1.0, 4.0), replicates=2),
    "cpu": Settings(),
    "paper": Settings(dim=100, n_train=20_000, n_test=20_000, steps=1000, replicates=5),
}


@dataclasses.dataclass
class Results:
    """One replicate's results: ``table`` holds one row per noise scale (0 for the clean test inputs) with the test
    accuracy. ``others`` holds replicates 1, 2, ... (their own ``others`` empty)."""

    replicate: int
    table: pd.DataFrame  # columns: noise, accuracy
    others: list[Results] = dataclasses.field(default_factory=list)


def gaussian_classes(s: Settings, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` inputs of two equally likely classes, N(+m, I) and N(-m, I) with ``|2m|`` = ``s.separation``, and their
    labels (0 or 1)."""
    y = rng.integers(0, 2, n)
    mean = np.zeros(s.dim)
    mean[0] = s.separation / 2
    x = rng.standard_normal((n, s.dim)) + np.where(y[:, None] == 1, mean, -mean)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)


def train(s: Settings, x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.nn.Linear:
    """A logistic-regression classifier fitted to ``(x, y)`` by full-batch gradient descent, initialised from
    ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torch.nn.Linear(s.dim, 1)
    optimiser = torch.optim.SGD(model.parameters(), lr=s.lr)
    for _ in range(s.steps):
        optimiser.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], y).backward()
        optimiser.step()
    return model


def _experiment(s: Settings, run: Run) -> Results:
    """One replicate: data from the run's ``data`` stream, initialisation from ``init``, test noise from ``shift``."""
    data = run.rng("data")
    x_train, y_train = gaussian_classes(s, s.n_train, data)
    x_test, y_test = gaussian_classes(s, s.n_test, data)
    model = train(s, x_train, y_train, run.stream("init"))
    noise = run.rng("shift")
    rows = []
    with torch.no_grad():
        for scale in (0.0, *s.noise):
            x = x_test + scale * torch.as_tensor(noise.standard_normal(x_test.shape), dtype=torch.float32)
            accuracy = float(((model(x)[:, 0] > 0).float() == y_test).float().mean())
            rows.append({"noise": scale, "accuracy": accuracy})
    return Results(replicate=run.replicate, table=pd.DataFrame(rows))


def run(settings: Settings, run: Run) -> Results:
    """The experiment at replicates 0 .. ``settings.replicates - 1`` of ``run``, each cached as a whole."""
    check_run(settings, Settings, run)
    return replicated(run, settings, KIND, _experiment, Results)


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """Every training run as a job: here one stage, each replicate's whole results (the entries ``run`` reads).
    A chapter with long trainings lists them as earlier stages (e.g. a pretraining before its finetunings)."""
    return [results_stage(settings, run, KIND, _experiment, Results)]
