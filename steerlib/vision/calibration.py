"""Temperature scaling: recalibrate a classifier's probabilities as softmax(z / T) with T fitted on labelled data.

``fit_temperature`` fits one temperature per class (vector scaling without bias, p = softmax(z_c / T_c)), as the
dissertation's oracle does, or a single shared one. T = exp(tau) keeps it positive; tau minimises the mean negative
log-likelihood of the labels with L-BFGS. Leading dimensions (e.g. ensemble members) are fitted independently.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def scale(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """z / T, with T of shape (..., K) or (..., 1) broadcast over the samples of ``logits`` (..., N, K)."""
    return logits / temperature.unsqueeze(-2)


def fit_temperature(logits: torch.Tensor, y: torch.Tensor, per_class: bool = True, max_iter: int = 50) -> torch.Tensor:
    """argmin_T (1/N) sum_i -log softmax(z_i / T)_{y_i} for ``logits`` (..., N, K) and labels ``y`` (N,).

    Returns T of shape (..., K) if ``per_class`` else (..., 1). Members along leading dimensions share nothing, so
    minimising the sum of their losses fits each one separately. On a shifted set a class's temperature may run off
    to infinity (its logit is best ignored); the NLL still converges, within ~50 L-BFGS iterations on our sets.
    """
    z = logits.detach().to(torch.float64)
    target = y.long().expand(z.shape[:-1])
    tau = torch.zeros(*z.shape[:-2], z.shape[-1] if per_class else 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([tau], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        opt.zero_grad()
        out = scale(z, tau.exp())
        loss = F.cross_entropy(out.reshape(-1, z.shape[-1]), target.reshape(-1), reduction="none")
        loss = loss.view(target.shape).mean(-1).sum()
        loss.backward()
        return loss

    opt.step(nll)
    return tau.detach().exp().to(logits.dtype)
