"""The three training losses of chapter 2, each with its OCS and its distance to the OCS.

- ``ce``: cross-entropy over K classes. OCS: the label marginal. Distance: KL(softmax(f(x)) || p(y)).
- ``mse_reward``: regress the reward of all K+1 actions (answer each class, abstain) with MSE.
  OCS: the mean reward vector. Distance: squared error ||f(x) - f*||^2.
- ``gaussian_nll``: heads (mu, s = log sigma^2) for a continuous target t, loss exp(-s)(t - mu)^2 + s, after an
  MSE warm-up on mu. Here t is the input's slant (:func:`steerlib.vision.data.slant`, standardised on the training
  split): a continuous property of the image, as age is of a face in the dissertation. OCS: N(mean t, var t).
  Distance: KL(N(mu, sigma^2) || N(mu*, sigma*^2)).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from steerlib.core.checks import check_choice, check_range, check_type
from steerlib.measures.decisions import DEFAULT_REWARDS, RewardTable
from steerlib.measures.divergences import kl_categorical, kl_gaussian, squared_distance
from steerlib.measures.ocs import ocs_cross_entropy, ocs_gaussian, ocs_reward
from steerlib.vision.data import ImageData

LOSSES = ("ce", "mse_reward", "gaussian_nll")


@dataclasses.dataclass(frozen=True)
class CrossEntropy:
    """Cross-entropy over ``num_classes`` classes; its OCS is the training label marginal."""

    num_classes: int
    name: str = "ce"

    def __post_init__(self):
        check_range("num_classes", self.num_classes, 2, integer=True)
        check_choice("name", self.name, ("ce",))

    @property
    def out_dim(self) -> int:
        """Outputs per input."""
        return self.num_classes

    def __call__(self, out: torch.Tensor, y: torch.Tensor, warmup: bool = False) -> torch.Tensor:
        return F.cross_entropy(out.flatten(0, -2), y.flatten().long(), reduction="none").view(y.shape)

    def ocs(self, y: torch.Tensor) -> torch.Tensor:
        """The optimal constant solution for training targets ``y``."""
        return ocs_cross_entropy(y, self.num_classes)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """Class probabilities."""
        return out.softmax(-1)

    def distance(self, out: torch.Tensor, ocs: torch.Tensor) -> torch.Tensor:
        """Per input, the distance between the predictions of ``out`` and ``ocs``."""
        return kl_categorical(self.predict(out), ocs)


@dataclasses.dataclass(frozen=True)
class RewardMSE:
    """MSE regression of every action's reward (each class, then abstain) under ``table``; its OCS is the mean
    reward vector."""

    num_classes: int
    table: RewardTable = DEFAULT_REWARDS
    name: str = "mse_reward"

    def __post_init__(self):
        check_range("num_classes", self.num_classes, 2, integer=True)
        check_type("table", self.table, RewardTable, "a RewardTable")
        check_choice("name", self.name, ("mse_reward",))

    @property
    def out_dim(self) -> int:
        """Outputs per input."""
        return self.num_classes + 1

    def __call__(self, out: torch.Tensor, y: torch.Tensor, warmup: bool = False) -> torch.Tensor:
        return ((out - self.table.targets(y, self.num_classes)) ** 2).mean(-1)

    def ocs(self, y: torch.Tensor) -> torch.Tensor:
        """The optimal constant solution for training targets ``y``."""
        return ocs_reward(y, self.num_classes, self.table)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """Predicted reward of each action."""
        return out

    def distance(self, out: torch.Tensor, ocs: torch.Tensor) -> torch.Tensor:
        """Per input, the distance between the predictions of ``out`` and ``ocs``."""
        return squared_distance(out, ocs)


@dataclasses.dataclass(frozen=True)
class GaussianNLL:
    """Gaussian NLL of a mean and a log-variance head, after an MSE warm-up; its OCS is N(mean t, var t)."""

    name: str = "gaussian_nll"
    out_dim: int = 2
    target: str = "slant"  # what t is (part of the run cache's key)

    def __post_init__(self):
        check_choice("name", self.name, ("gaussian_nll",))
        check_choice("out_dim", self.out_dim, (2,))
        check_choice("target", self.target, ("slant",))

    def __call__(self, out: torch.Tensor, y: torch.Tensor, warmup: bool = False) -> torch.Tensor:
        mu, s = out[..., 0], out[..., 1]
        t = y.to(out.dtype)
        if warmup:
            return (t - mu) ** 2
        return torch.exp(-s) * (t - mu) ** 2 + s

    def ocs(self, y: torch.Tensor) -> tuple[float, float]:
        """The optimal constant solution (mu*, sigma*^2) for training targets ``y``."""
        return ocs_gaussian(y)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """(mu, sigma^2) in the last dimension."""
        return torch.stack([out[..., 0], out[..., 1].exp()], dim=-1)

    def distance(self, out: torch.Tensor, ocs: tuple[float, float]) -> torch.Tensor:
        """Per input, the KL divergence from the predicted Gaussian of ``out`` to the OCS Gaussian."""
        pred = self.predict(out)
        return kl_gaussian(pred[..., 0], pred[..., 1], *ocs)


def targets(loss, data: ImageData, split: str = "train") -> torch.Tensor:
    """What ``loss`` regresses on ``split`` of ``data``: the labels, or for the Gaussian NLL the slant target
    (:meth:`~steerlib.vision.data.ImageData.slant_target`); the OCS is ``loss.ocs(targets(loss, data))``."""
    check_type("loss", loss, (CrossEntropy, RewardMSE, GaussianNLL), "a loss from make_loss")
    check_type("data", data, ImageData, "an ImageData from load_dataset")
    check_choice("split", split, ("train", "test"))
    return data.slant_target(split) if isinstance(loss, GaussianNLL) else getattr(data, f"y_{split}")


def make_loss(name: str, num_classes: int, table: RewardTable = DEFAULT_REWARDS):
    """The loss called ``name`` (one of :data:`LOSSES`) for a K-class problem (K >= 2; the Gaussian NLL regresses
    the slant, see :func:`targets`)."""
    check_choice("loss", name, LOSSES)
    check_range("num_classes", num_classes, 2, integer=True)
    check_type("table", table, RewardTable, "a RewardTable")
    if name == "ce":
        return CrossEntropy(num_classes)
    if name == "mse_reward":
        return RewardMSE(num_classes, table)
    return GaussianNLL()
