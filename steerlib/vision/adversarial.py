"""Iterated FGSM (Goodfellow et al. 2014): the dissertation's counterexample to reversion (appendix A.1).

Each round takes one signed-gradient step that increases the training loss, starting from the previous round's
output: x_{t+1} = clip(x_t + eps * sign(grad_x L(f(x_t), y))). Every ensemble member attacks itself (white box).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from steerlib.core.checks import check_range, check_seed, check_shape, check_tensor, check_type, check_value_range
from steerlib.core.runtime import progress_bar
from steerlib.vision.ensemble import Ensemble


def _step(ensemble: Ensemble, loss, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """One FGSM round of every member on its own inputs x (E, B, ...): x + eps sign(grad_x L)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(ensemble(x, per_member=True), y).sum(), x)
    return (x + eps * grad.sign()).detach()


def iterated_fgsm(
    ensemble: Ensemble,
    loss,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    value_range: tuple[float, float] | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """Adversarial inputs (E, N, ...) after ``steps`` FGSM rounds of size ``eps`` per member, clipped to
    ``value_range`` if given. The ensemble is evaluated in eval mode, on ``batch_size`` inputs at a time (each
    input's gradient is its own, so the batches change nothing but speed)."""
    check_type("ensemble", ensemble, Ensemble, "an Ensemble")
    check_type("loss", loss, Callable, "a loss from make_loss")
    check_tensor("x", x)
    check_tensor("y", y)
    check_shape("y", y, (len(x), *y.shape[1:]), "one target per input of x")
    check_range("eps", eps, 0)
    check_range("steps", steps, 1, integer=True)
    check_range("batch_size", batch_size, 1, integer=True)
    if value_range is not None:
        check_value_range(value_range)
    was_training = ensemble.training
    ensemble.eval()
    device = next(ensemble.parameters()).device
    e = len(ensemble)
    x_adv = x.to(device).expand(e, *x.shape).clone()
    y = y.to(device).expand(e, *y.shape)
    for _ in progress_bar(range(steps), desc="fgsm", leave=False):
        x_adv = torch.cat(
            [
                _step(ensemble, loss, x_adv[:, i : i + batch_size], y[:, i : i + batch_size], eps)
                for i in range(0, x_adv.shape[1], batch_size)
            ],
            dim=1,
        )
        if value_range is not None:
            x_adv = x_adv.clamp(*value_range)
    ensemble.train(was_training)
    return x_adv.cpu()


def random_sign_like(
    x: torch.Tensor, x_adv: torch.Tensor, value_range: tuple[float, float] | None = None, seed: int = 0
) -> torch.Tensor:
    """A control for ``x_adv``: the same perturbation size per entry, ``|x_adv - x|``, with random signs; ``x_adv``
    has ``x``'s shape, or ``(E, *x.shape)`` with one perturbed copy per ensemble member."""
    check_tensor("x", x)
    check_tensor("x_adv", x_adv)
    if x_adv.shape[-x.dim() :] != x.shape:
        raise ValueError(f"x_adv has shape {tuple(x_adv.shape)} and x {tuple(x.shape)}; x_adv must end with x's shape")
    if value_range is not None:
        check_value_range(value_range)
    check_seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, x_adv.shape, generator=g).to(x_adv.dtype) * 2 - 1
    out = x + signs * (x_adv - x).abs()
    return out.clamp(*value_range) if value_range is not None else out
