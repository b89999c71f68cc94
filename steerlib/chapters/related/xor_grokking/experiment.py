"""The XOR-grokking experiment: two-layer ReLU networks trained by full-batch gradient descent on XOR clusters with
flipped labels (:mod:`steerlib.vision.xor`), as Xu et al. (ICLR 2024) train them.

For every data point of a grid (``dims`` x ``signal``: the dimension d and n||mu||^2/d) and every step size of
``step_sizes``, one :class:`~steerlib.vision.ensemble.Ensemble` holds a network per replicate, each on its own data
(replicate r draws its means and points from its ``data`` stream, a substream per grid point; its initial weights
from its ``init`` stream); one optimiser takes the gradient steps of all of them (the sum of their mean losses:
their gradients stay apart). The same data serve every step size, so step sizes are compared on paired runs.

At each checkpoint (steps 0, 1, 2, 3, 5, ... on a log scale) the experiment records, per replicate: accuracy on the
training labels of the clean and the flipped training points, clean-label test accuracy, the share of the first
layer in span(mu_1, mu_2) (:func:`~steerlib.vision.xor.signal_share`); and, per training example, the sampled
accuracy at temperature 1 (the probability sigmoid(y f(x)) of the training label: the expected accuracy of one
sample, computed exactly), the argmax accuracy and the perplexity of the label, exp(loss) = 1 + exp(-y f(x)) (for
Part III's pre-memorization accuracy). The experiment is cached as a whole.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd
import torch

from steerlib.core.chapter import Run, check_run, replicate_results
from steerlib.core.checks import check_nonempty, check_range, check_ranges
from steerlib.core.jobs import Job, Stage
from steerlib.core.runtime import progress_bar
from steerlib.core.seeds import substream
from steerlib.vision.ensemble import Ensemble
from steerlib.vision.xor import TwoLayerReLU, XorClusters, sample_xor, signal_share, xor_means

KIND = "xor-grokking"  # the run-cache kind of the chapter's whole results


@dataclasses.dataclass(frozen=True)
class Settings:
    """The data grid, the network, the step sizes and the checkpoints.

    The paper's experiment (its appendix A.7): d = 40,000, n = 200, ||mu|| = 2.5 sqrt(d/n) (n||mu||^2/d = 6.25),
    m = 1,000, flip rate 0.05, initial scale 1e-15, step sizes 1e-12 and 1e-16, the mean logistic loss."""

    n: int = 200  # training points
    n_test: int = 1_000
    dims: tuple[int, ...] = (5_000, 20_000)
    signal: tuple[float, ...] = (
        6.25,
        0.3,
    )  # n ||mu||^2 / d: the paper's experiment, and inside its theorem's d >> n||mu||^2
    flip: float = 0.1  # the spec's rate (the paper's experiment: 0.05)
    width: int = 256  # m, the hidden neurons
    init: float = 1e-15  # the first layer's initial scale (the paper's)
    step_sizes: tuple[float, ...] = (1e-12, 1e-3)  # the paper's, and one at which the loss leaves log 2
    steps: int = 100
    replicates: int = 5  # independently seeded networks, each on its own data

    def __post_init__(self):
        for name in ("n", "n_test", "width", "steps"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_range("replicates", self.replicates, 2, integer=True)
        check_ranges("dims", check_nonempty("dims", self.dims), 2, integer=True)
        check_ranges("signal", check_nonempty("signal", self.signal), 0, open_low=True)
        check_ranges("step_sizes", check_nonempty("step_sizes", self.step_sizes), 0, open_low=True)
        check_range("flip", self.flip, 0, 0.5, open_high=True)
        check_range("init", self.init, 0, open_low=True)
        if round(self.flip * self.n) < 1:
            raise ValueError(f"flip={self.flip} flips no label of n={self.n} points; raise either")

    @property
    def main(self) -> tuple[int, float, float]:
        """The grid point and step size the claims read: the largest d, the first signal, the first step size."""
        return max(self.dims), self.signal[0], self.step_sizes[0]

    def data(self, d: int, signal: float) -> XorClusters:
        """The data at grid point (d, n||mu||^2/d)."""
        return XorClusters(d=d, mu_norm=float(np.sqrt(signal * d / self.n)), flip=self.flip)


# smoke: seconds; cpu: the spec's grid (2 dimensions x 2 signal levels, 5 replicates) in about a minute; paper: the
# paper's sizes (A.7), on a GPU.
PROFILES = {
    "smoke": Settings(n=60, n_test=200, dims=(500, 2_000), width=32, steps=10, replicates=2),
    "cpu": Settings(),
    "paper": Settings(
        dims=(40_000,), signal=(6.25, 0.3), flip=0.05, width=1_000, step_sizes=(1e-12, 1e-16), steps=5_000
    ),
}


def checkpoints(steps: int) -> tuple[int, ...]:
    """0, then 1, 2, 3, 5, 7 times powers of ten up to ``steps`` (and ``steps`` itself)."""
    check_range("steps", steps, 1, integer=True)
    marks = {s * 10**k for k in range(int(np.log10(steps)) + 1) for s in (1, 2, 3, 5, 7)}
    return tuple(sorted({0, steps, *(s for s in marks if s <= steps)}))


@dataclasses.dataclass
class Results:
    """``curves``: one row per (d, signal, step_size, replicate, step) with ``clean``, ``flipped`` (accuracy on the
    training labels of each subset), ``test`` (clean-label test accuracy), ``share`` and ``loss``. ``examples``: per
    step size at the main grid point, the per-example arrays (replicates, checkpoints, n) ``sampled``, ``argmax``
    and ``perplexity``, with ``test`` (replicates, checkpoints). ``bayes``: the Bayes classifier's clean test accuracy
    per (d, signal, replicate). ``main``: the grid point and step size the claims read, (d, signal, step size);
    ``step_sizes``: every step size, in the settings' order."""

    curves: pd.DataFrame
    examples: dict[str, dict[str, torch.Tensor]]
    bayes: pd.DataFrame
    main: tuple[float, float, float]
    step_sizes: tuple[float, ...]


def step_label(alpha: float) -> str:
    """A step size as a key, e.g. ``"1e-12"``."""
    return f"{alpha:g}"


@dataclasses.dataclass(frozen=True)
class Data:
    """One grid point's data for every replicate: inputs (E, n, d), training labels and clean labels (E, n),
    test inputs and labels, the means (E, 2, d)."""

    x: torch.Tensor
    y: torch.Tensor
    clean: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    means: torch.Tensor


def make_data(s: Settings, run: Run, point: int, d: int, signal: float) -> Data:
    """Grid point ``point``'s data: replicate r draws from a substream of its ``data`` stream."""
    parts = []
    for r in range(s.replicates):
        rng = np.random.default_rng(substream(run.at(r).stream("data"), point))
        means = xor_means(s.data(d, signal), rng)
        x, clean, noisy = sample_xor(means, s.n, s.flip, rng)
        x_test, y_test, _ = sample_xor(means, s.n_test, 0.0, rng)
        parts.append((x, noisy, clean, x_test, y_test, means))
    return Data(*(torch.as_tensor(np.stack(p), dtype=torch.float32) for p in zip(*parts)))


def bayes_accuracy(data: Data) -> torch.Tensor:
    """The Bayes classifier sign(|<x, mu_1>| - |<x, mu_2>|) on the test points, per replicate (E,)."""
    proj = torch.einsum("end,ekd->enk", data.x_test, data.means).abs()
    return (torch.where(proj[..., 0] > proj[..., 1], 1.0, -1.0) == data.y_test).float().mean(1)


def _record(ensemble: Ensemble, data: Data) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-replicate summaries and per-example (sampled, argmax, perplexity) at one checkpoint."""
    out = ensemble(data.x, per_member=True).double()  # (E, n): margins are tiny in the paper's regime
    margin = data.y * out
    flipped = data.y != data.clean
    right = (margin > 0).double()
    summary = {
        "clean": (right * ~flipped).sum(1) / (~flipped).sum(1),
        "flipped": (right * flipped).sum(1) / flipped.sum(1),
        "test": (torch.sign(ensemble(data.x_test, per_member=True)) == data.y_test).double().mean(1),
        "share": torch.stack([signal_share(m.w, data.means[e]) for e, m in enumerate(ensemble.members)]).double(),
        "loss": torch.nn.functional.softplus(-margin).mean(1),
    }
    per_example = torch.stack([torch.sigmoid(margin), right, 1 + torch.exp(-margin)])
    return summary, per_example


def train(s: Settings, run: Run, data: Data, d: int, alpha: float, desc: str) -> tuple[list[dict], torch.Tensor]:
    """Full-batch gradient descent at step size ``alpha`` on every replicate's data: its checkpoint rows and the
    per-example records (3, E, checkpoints, n)."""
    ensemble = Ensemble(functools.partial(TwoLayerReLU, d, s.width, s.init), run.replicates(s.replicates))
    optimiser = torch.optim.SGD(ensemble.parameters(), lr=alpha)
    marks, rows, records = checkpoints(s.steps), [], []
    for step in progress_bar(range(s.steps + 1), desc=desc, leave=False):
        if step in marks:
            with torch.no_grad():
                summary, per_example = _record(ensemble, data)
            records.append(per_example)
            rows += [
                {"replicate": r, "step": step, **{k: float(v[r]) for k, v in summary.items()}}
                for r in range(s.replicates)
            ]
        if step < s.steps:
            losses = torch.nn.functional.softplus(-data.y * ensemble(data.x, per_member=True)).mean(1)
            optimiser.zero_grad(set_to_none=True)
            losses.sum().backward()  # the sum of the replicates' mean losses: each gets its own gradient
            optimiser.step()
    return rows, torch.stack(records, dim=2)


def _experiment(s: Settings, run: Run) -> Results:
    """Every grid point at every step size, trained and recorded."""
    main = s.main
    curves, examples, bayes = [], {}, []
    for point, (d, signal) in enumerate((d, g) for d in s.dims for g in s.signal):
        data = make_data(s, run, point, d, signal)
        bayes += [
            {"d": d, "signal": signal, "replicate": r, "bayes": float(a)} for r, a in enumerate(bayes_accuracy(data))
        ]
        for alpha in s.step_sizes:
            rows, records = train(s, run, data, d, alpha, f"d={d} signal={signal:g} step={alpha:g}")
            curves += [{"d": d, "signal": signal, "step_size": alpha, **row} for row in rows]
            if (d, signal) == main[:2]:
                test = torch.tensor(
                    [[row["test"] for row in rows if row["replicate"] == r] for r in range(s.replicates)]
                )
                examples[step_label(alpha)] = {
                    "sampled": records[0].float(),
                    "argmax": records[1].float(),
                    "perplexity": records[2],
                    "test": test,
                }
    return Results(pd.DataFrame(curves), examples, pd.DataFrame(bayes), main, tuple(s.step_sizes))


def run(settings: Settings, run: Run) -> Results:
    """The whole experiment, cached as one entry (one job)."""
    check_run(settings, Settings, run)
    return replicate_results(run, settings, KIND, _experiment, Results)


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """One job: every grid point at every step size (the entry ``run`` reads)."""
    return [Stage("results", (Job("grid", replicate_results, (run, settings, KIND, _experiment, Results)),))]
