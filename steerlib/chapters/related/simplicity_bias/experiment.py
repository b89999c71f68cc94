"""The simplicity-bias experiment: LMS-5 data, a cross-entropy classifier and a reward model, four test sets.

Every replicate is one member of two ensembles trained at once (:func:`~steerlib.vision.train.train_ensemble`): a
cross-entropy MLP and an MSE reward model over "answer 0", "answer 1" and "abstain" (Part I's losses), both with
the authors' recipe (SGD, lr 0.1, weight decay 5e-5, batch 256). Member ``i`` draws its initial weights and data
order from replicate ``i``'s streams; the data and the rotation come from the run's ``data`` stream, the test sets'
permutations and redraws from its ``shift`` stream, the OOD scores' splits from its ``eval`` stream. The test sets
(:data:`SETS`), all made in the unrotated basis and rotated back:

- ``clean``: the test split;
- ``Sc-randomized``: the 49 slab coordinates (S^c) permuted across the test points;
- ``S-randomized``: the linear coordinate (S) permuted across the test points;
- ``margin-band``: the linear coordinate redrawn in its unseen gap (|z| < m), the slabs untouched.

The experiment is cached as a whole (:func:`~steerlib.core.chapter.replicate_results`), learning curves included.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from steerlib.core.chapter import Run, check_run, replicate_results
from steerlib.core.checks import check_range, check_type
from steerlib.core.jobs import Job, Stage
from steerlib.measures.decisions import RewardTable, abstain_ratio, greedy_policy, mean_reward
from steerlib.measures.ood import ood_score
from steerlib.vision.ensemble import Ensemble
from steerlib.vision.losses import make_loss
from steerlib.vision.models import make_model
from steerlib.vision.slabs import (
    SlabData,
    margin_band,
    permute_coordinates,
    random_rotation,
    sample_slabs,
    slab_rule,
)
from steerlib.vision.train import TrainConfig, train_ensemble

KIND = "simplicity-bias"  # the run-cache kind of the chapter's whole results
SETS = ("clean", "Sc-randomized", "S-randomized", "margin-band")
LABELS = {  # how the figures name the sets
    "clean": "clean",
    "Sc-randomized": "S$^c$-randomized",
    "S-randomized": "S-randomized",
    "margin-band": "margin band",
}
MODELS = ("ce", "reward")  # the cross-entropy classifier and the reward model (Part I's loss names: ce, mse_reward)
DISCRIMINATORS = {"linear": 0, "random features": 256}  # the OOD score's random ReLU features per discriminator
# The authors' recipe (harshays/simplicitybiaspitfalls, 01_extremeSB_slab_data.ipynb): SGD, lr 0.1, weight decay
# 5e-5, batch 256.
RECIPE = TrainConfig(epochs=30, batch_size=256, lr=0.1, weight_decay=5e-5, optimizer="sgd")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The data, the models, the recipe, the reward table and the evaluation."""

    data: SlabData = SlabData()  # LMS-5 in the authors' parameterisation
    n_train: int = 20_000
    n_test: int = 5_000
    hidden: int = 100  # the (100, 2)-FCN: two hidden layers of 100 ReLUs
    train: TrainConfig = RECIPE
    rewards: RewardTable = RewardTable(1.0, -4.0, 0.0)  # the dissertation's table; its OCS abstains (section 2.5)
    replicates: int = 5  # members of each ensemble: independently seeded nets
    ood_splits: int = 5  # the OOD score's train/test splits per set

    def __post_init__(self):
        check_type("data", self.data, SlabData, "a SlabData")
        check_type("train", self.train, TrainConfig, "a TrainConfig")
        check_type("rewards", self.rewards, RewardTable, "a RewardTable")
        for name in ("n_train", "n_test", "hidden", "ood_splits"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_range("replicates", self.replicates, 2, integer=True)  # the ensemble's jackknife needs two
        check_range("train.batch_size", self.train.batch_size, 1, self.n_train, integer=True)
        check_range("n_test", self.n_test, 20, integer=True)  # the OOD score holds a tenth of the set out


# smoke: seconds (tests, the smoke book); cpu: the spec's 20k / 5k, 5 members, 30 epochs; paper: the authors' sizes.
PROFILES = {
    "smoke": Settings(
        n_train=2_048,
        n_test=1_000,
        train=dataclasses.replace(RECIPE, epochs=3),
        replicates=2,
        ood_splits=2,
    ),
    "cpu": Settings(),
    "paper": Settings(n_train=100_000, n_test=10_000, replicates=5, ood_splits=10),
}


@dataclasses.dataclass
class Results:
    """``table``: one row per (model, set, member) with ``accuracy``, ``auc``, ``distance`` (to the model's OCS:
    KL for the classifier, squared error for the reward model), ``abstain`` and ``reward`` (its greedy policy under
    the reward table). ``margins``: the classifier's logit margins z_1 - z_0 per set, (sets, members, N), and
    ``y_test`` their labels (for the logit-averaged ensemble). ``curves``: accuracy per (model, epoch, set, member).
    ``ood``: the OOD score per (set, discriminator). ``rule_accuracy``: per signal coordinate, the accuracy of its
    own rule (the sign for S, the slab rule for S^c) on the clean test inputs rotated back."""

    table: pd.DataFrame
    margins: torch.Tensor
    y_test: torch.Tensor
    curves: pd.DataFrame
    ood: pd.DataFrame
    rule_accuracy: np.ndarray


@dataclasses.dataclass(frozen=True)
class Sets:
    """The training inputs and labels, and every test set's inputs (rotated; (N, 1, dim)) with the test labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x: dict[str, torch.Tensor]
    y_test: torch.Tensor
    rule_accuracy: np.ndarray


def make_sets(s: Settings, run: Run) -> Sets:
    """The data (``data`` stream: points, then the rotation) and the shifted test sets (``shift`` stream)."""
    data = run.rng("data")
    z_train, y_train = sample_slabs(s.data, s.n_train, data)
    z_test, y_test = sample_slabs(s.data, s.n_test, data)
    rotation = random_rotation(s.data.dim, data)
    shift = run.rng("shift")
    unrotated = {
        "clean": z_test,
        "Sc-randomized": permute_coordinates(z_test, s.data.slab_coords, shift),
        "S-randomized": permute_coordinates(z_test, s.data.linear_coords, shift),
        "margin-band": margin_band(z_test, s.data, shift),
    }

    def inputs(z: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(z @ rotation, dtype=torch.float32)[:, None, :]

    x = {name: inputs(z) for name, z in unrotated.items()}
    back = x["clean"][:, 0].double().numpy() @ rotation.T  # what the models see, rotated back
    rules = [(back[:, c] > 0).astype(int) for c in s.data.linear_coords]
    rules += [slab_rule(back[:, c], s.data) for c in s.data.slab_coords]
    rule_accuracy = np.array([float((r == y_test).mean()) for r in rules])
    return Sets(inputs(z_train), torch.as_tensor(y_train), x, torch.as_tensor(y_test), rule_accuracy)


def class_1_score(out: torch.Tensor) -> torch.Tensor:
    """Each member's score for class 1, (E, N), from outputs (E, N, outputs): the logit margin z_1 - z_0, or the
    reward model's predicted reward of answering 1 less that of answering 0."""
    return out[..., 1] - out[..., 0]


def evaluate(model: str, ensemble: Ensemble, sets: Sets, s: Settings, loss) -> tuple[list[dict], torch.Tensor]:
    """One row per (set, member) of ``ensemble`` and the score of class 1 per set, (sets, E, N)."""
    y, ocs = sets.y_test, loss.ocs(sets.y_train)
    rows, margins = [], []
    for name in SETS:
        out = ensemble.predict(sets.x[name])  # (E, N, outputs)
        score = class_1_score(out)
        actions = greedy_policy(out)  # the reward model may abstain (action 2); the classifier never does
        accuracy = ((score > 0).long() == y).float().mean(-1)
        distance = loss.distance(out, ocs).mean(-1)
        abstain, reward = abstain_ratio(actions, 2), mean_reward(actions, y, s.rewards, 2)
        for e in range(len(ensemble)):
            rows.append(
                {
                    "model": model,
                    "set": name,
                    "member": e,
                    "accuracy": float(accuracy[e]),
                    "auc": float(roc_auc_score(y.numpy(), score[e].numpy())),
                    "distance": float(distance[e]),
                    "abstain": float(abstain[e]),
                    "reward": float(reward[e]),
                }
            )
        margins.append(score)
    return rows, torch.stack(margins)


def ood_scores(sets: Sets, s: Settings, run: Run) -> pd.DataFrame:
    """The OOD score of every test set against the training inputs, by both discriminators (one row each)."""
    seed = run.stream("eval")
    return pd.DataFrame(
        [
            {
                "set": name,
                "discriminator": d,
                "score": ood_score(sets.x_train, sets.x[name], s.ood_splits, 0.001, f, seed),
            }
            for name in SETS
            for d, f in DISCRIMINATORS.items()
        ]
    )


def _experiment(s: Settings, run: Run) -> Results:
    """Both ensembles trained (accuracy on every set logged after each epoch), evaluated and OOD-scored."""
    sets = make_sets(s, run)
    members = run.replicates(s.replicates)
    rows, curves, margins = [], [], None
    for model in MODELS:
        loss = make_loss("ce" if model == "ce" else "mse_reward", 2, s.rewards)

        def log(epoch: int, ensemble: Ensemble, model: str = model) -> None:
            for name in SETS:
                correct = (class_1_score(ensemble.predict(sets.x[name])) > 0).long() == sets.y_test
                curves.extend(
                    {"model": model, "epoch": epoch, "set": name, "member": e, "accuracy": float(a)}
                    for e, a in enumerate(correct.float().mean(-1))
                )

        ensemble = train_ensemble(
            functools.partial(make_model, "mlp", (1, s.data.dim), loss.out_dim, hidden=s.hidden),
            members,
            loss,
            sets.x_train,
            sets.y_train,
            s.train,
            run.device,
            desc=f"LMS-5 {model}",
            after_epoch=log,
        )
        model_rows, model_margins = evaluate(model, ensemble, sets, s, loss)
        rows += model_rows
        margins = model_margins if model == "ce" else margins
    return Results(
        pd.DataFrame(rows), margins, sets.y_test, pd.DataFrame(curves), ood_scores(sets, s, run), sets.rule_accuracy
    )


def run(settings: Settings, run: Run) -> Results:
    """The whole experiment, cached as one entry: one job (each ensemble trains its members at once)."""
    check_run(settings, Settings, run)
    return replicate_results(run, settings, KIND, _experiment, Results)


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """One job: both ensembles and their evaluation (the entry ``run`` reads)."""
    return [Stage("results", (Job("ensembles", replicate_results, (run, settings, KIND, _experiment, Results)),))]
