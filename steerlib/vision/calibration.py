"""Temperature scaling: recalibrate a classifier's probabilities as softmax(z / T) with T fitted on labelled data.

``fit_temperature`` fits one temperature per class (vector scaling without bias, p = softmax(z_c / T_c)), as the
dissertation's oracle does, or a single shared one. T = exp(tau) keeps it positive; tau minimises the mean negative
log-likelihood of the labels with L-BFGS. Leading dimensions (e.g. ensemble members) are fitted independently.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from steerlib.core.checks import check_range, check_shape, check_tensor, check_type


def scale(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """z / T, with T of shape (..., K) or (..., 1) broadcast over the samples of ``logits`` (..., N, K)."""
    if check_tensor("logits", logits).dim() < 2:
        raise ValueError(f"logits has shape {tuple(logits.shape)}; it must be (..., N, K)")
    check_tensor("temperature", temperature, 0, open_low=True, allow_inf=True)
    check_shape("temperature", temperature, (*logits.shape[:-2], None), "(..., K) or (..., 1) for logits (..., N, K)")
    if temperature.shape[-1] not in (1, logits.shape[-1]):
        raise ValueError(f"temperature has {temperature.shape[-1]} entries per member; give 1 or K={logits.shape[-1]}")
    return _scale(logits, temperature)


def _scale(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    return logits / temperature.unsqueeze(-2)


def fit_temperature(logits: torch.Tensor, y: torch.Tensor, per_class: bool = True, max_iter: int = 50) -> torch.Tensor:
    """argmin_T (1/N) sum_i -log softmax(z_i / T)_{y_i} for ``logits`` (..., N, K) and labels ``y`` (N,).

    Returns T of shape (..., K) if ``per_class`` else (..., 1). Members along leading dimensions share nothing, so
    minimising the sum of their losses fits each one separately. On a shifted set a class's temperature may run off
    to infinity (its logit is best ignored); the NLL still converges, within ~50 L-BFGS iterations on our sets.
    """
    if check_tensor("logits", logits).dim() < 2:
        raise ValueError(f"logits has shape {tuple(logits.shape)}; it must be (..., N, K)")
    check_tensor("y", y, 0, logits.shape[-1] - 1, integer=True, ndim=1)
    check_shape("y", y, (logits.shape[-2],), "one label per sample of logits (..., N, K)")
    check_type("per_class", per_class, bool, "True or False")
    check_range("max_iter", max_iter, 1, integer=True)
    z = logits.detach().to(torch.float64)
    target = y.long().expand(z.shape[:-1])
    tau = torch.zeros(*z.shape[:-2], z.shape[-1] if per_class else 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([tau], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        opt.zero_grad()
        out = _scale(z, tau.exp())
        loss = F.cross_entropy(out.reshape(-1, z.shape[-1]), target.reshape(-1), reduction="none")
        loss = loss.view(target.shape).mean(-1).sum()
        loss.backward()
        return loss

    opt.step(nll)
    return tau.detach().exp().to(logits.dtype)
