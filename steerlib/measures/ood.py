"""OOD score: how well a low-capacity discriminator tells evaluation inputs from training inputs.

The dissertation featurises with a frozen ImageNet ResNet18, which is not available offline. We use a fixed random
ReLU feature map instead: phi(x) = ReLU(W vec(x) + b) with W, b ~ N(0, 1/d) drawn from a fixed seed, concatenated with
vec(x). On top: StandardScaler + L2-regularised logistic regression, refit on ``n_splits`` balanced 90/10 splits.

score = exp(mean log p(eval | x)) over the held-out evaluation points of every split: 0.5 when the two sets cannot be
told apart (slightly below, by Jensen), 1 when they are perfectly separable.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from steerlib.core.checks import check_range, check_seed, check_shape, check_tensor


def random_relu_features(x: torch.Tensor, dim: int = 256, seed: int = 0) -> np.ndarray:
    """[vec(x), ReLU(W vec(x) + b)] with a fixed Gaussian W (dim x d) and b, both scaled by 1/sqrt(d); with
    ``dim`` = 0, vec(x) alone (a discriminator on these features is then linear in the raw input)."""
    check_tensor("x", x)
    if x.dim() < 2:
        raise ValueError(f"x has shape {tuple(x.shape)}; it must be (N, ...) with one input per row")
    check_range("dim", dim, 0, integer=True)
    check_seed("seed", seed)
    flat = x.reshape(len(x), -1).to(torch.float32)
    if dim == 0:
        return flat.numpy()
    d = flat.shape[1]
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, dim, generator=g) / d**0.5
    b = torch.randn(dim, generator=g) / d**0.5
    return torch.cat([flat, torch.relu(flat @ w + b)], dim=1).numpy()


def ood_score(
    x_ref: torch.Tensor,
    x_eval: torch.Tensor,
    n_splits: int = 10,
    C: float = 0.001,
    feature_dim: int = 256,
    seed: int = 0,
) -> float:
    """OOD score of ``x_eval`` relative to the training-distribution inputs ``x_ref`` (see the module docstring);
    each set holds at least two inputs of the same shape. ``feature_dim`` = 0 scores with a linear discriminator
    on the raw inputs."""
    for name, x in (("x_ref", x_ref), ("x_eval", x_eval)):
        if len(check_tensor(name, x)) < 2:
            raise ValueError(f"{name} holds {len(x)} input(s); the score needs at least 2")
    check_shape("x_eval", x_eval, (None, *x_ref.shape[1:]), "inputs shaped as x_ref's")
    check_range("n_splits", n_splits, 1, integer=True)
    check_range("C", C, 0, open_low=True)
    check_seed("seed", seed)
    rng = np.random.default_rng(seed)
    f_ref = random_relu_features(x_ref, feature_dim, seed)
    f_eval = random_relu_features(x_eval, feature_dim, seed)
    n = min(len(f_ref), len(f_eval))
    log_p = []
    for _ in range(n_splits):
        ref = f_ref[rng.choice(len(f_ref), n, replace=False)]
        ev_idx = rng.permutation(len(f_eval))[:n]
        n_test = max(1, n // 10)
        test, train = ev_idx[:n_test], ev_idx[n_test:]
        xs = np.concatenate([ref[n_test:], f_eval[train]])
        ys = np.concatenate([np.zeros(n - n_test), np.ones(len(train))])
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500))
        clf.fit(xs, ys)
        log_p.append(np.log(np.clip(clf.predict_proba(f_eval[test])[:, 1], 1e-12, 1.0)))
    return float(np.exp(np.concatenate(log_p).mean()))
