"""The theory of section 2.4 (appendix A.4) as a simulation on bias-free deep ReLU networks.

The dissertation studies homogeneous nets f(W; x) = W_L sigma(W_{L-1} ... sigma(W_1 x)) trained on binary data with
||x|| <= 1 under the logistic/exponential loss, whose gradient flow converges in direction to a KKT point of the
min-norm max-margin problem  min sum_i ||W_i||_F^2  s.t.  y_n f(W; x_n) >= 1. Its results:

- Prop 2.4.1: training inputs keep large features at every layer (the margin forces it);
- Lemma A.4.4: deep, wide min-norm solutions are nearly rank one in every layer;
- Thm 2.4.1: an input whose layer-j features have a small rank-one projection ``||A_j f_j(x)||`` has a small ``|f(x)|``;
- Prop 2.4.2: with an output bias, b -> sum of y over the margin points: the OCS direction when they mirror the labels.

Simulation. Data: 2-D points at radius in [0.5, 1] labelled by the quadrant, y = sign(x_1 x_2) (an XOR that a
bias-free ReLU net can fit), with a 5 degree angular margin, embedded in R^dim with small isotropic noise in the other
coordinates. OOD inputs turn each test point out of the data plane by an angle, keeping its norm.

Gradient flow reaches its limit direction only as t -> infinity, and from a standard initialisation a deep net stays
close to its random init for very long (lazy regime). We therefore run full-batch gradient descent on the logistic
loss plus a small weight decay lambda/2 sum ||W_i||^2: its minimiser converges in direction to the same max-margin
solutions as lambda -> 0 (Wei, Lee, Liu & Ma 2019), and gradient descent reaches it in about 1 / (lr lambda) steps.

All depths and seeds train at once: a depth-L net is stored as a depth-L_max net whose last L_max - L hidden layers
are frozen identities (ReLU(I h) = h for h >= 0, so the function and its gradients are exactly those of depth L).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from steerlib.core.checks import (
    RUN_SEED_MAX,
    check_choice,
    check_range,
    check_ranges,
    check_seed,
    check_shape,
    check_tensor,
    check_type,
)
from steerlib.core.runtime import in_phase, progress_bar
from steerlib.core.seeds import substream

LOSSES = ("logistic", "exponential")


def binary_data(n: int, dim: int, p_pos: float = 0.5, noise: float = 0.05, seed: int = 0):
    """n points in R^dim with ||x|| <= 1 and labels y = sign(x_1 x_2) in {-1, +1}, P(y = +1) = ``p_pos``.

    The first two coordinates carry the signal (radius ~ U[0.5, 1], angle at least 5 degrees from the axes);
    the others hold N(0, noise^2) noise; points are rescaled onto the unit ball where needed.
    """
    check_range("n", n, 1, integer=True)
    check_range("dim", dim, 2, integer=True)
    check_range("p_pos", p_pos, 0.0, 1.0)
    check_range("noise", noise, 0)
    check_seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    y = torch.where(torch.rand(n, generator=g) < p_pos, 1.0, -1.0)
    quadrant = torch.randint(0, 2, (n,), generator=g) * 2 + (y < 0).long()  # 0, 2: x1 x2 > 0; 1, 3: x1 x2 < 0
    angle = (5 + 80 * torch.rand(n, generator=g) + 90 * quadrant) * math.pi / 180
    radius = 0.5 + 0.5 * torch.rand(n, generator=g)
    x = noise * torch.randn(n, dim, generator=g)
    x[:, 0], x[:, 1] = radius * angle.cos(), radius * angle.sin()
    return x / x.norm(dim=1, keepdim=True).clamp_min(1.0), y


def off_plane(x: torch.Tensor, degrees: float, seed: int = 0) -> torch.Tensor:
    """Turn each x out of the data plane (coordinates 1-2) by ``degrees``, towards a random unit direction u in the
    other coordinates: cos(a) x + sin(a) ||x|| u. Norms are kept; 0 degrees returns x. ``x`` is (N, dim >= 3)
    and ``degrees`` lies in [0, 180]."""
    check_tensor("x", x, ndim=2)
    check_range("x.shape[1] (dim)", x.shape[1], 3, integer=True)
    check_range("degrees", degrees, 0, 180)
    check_seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    u = torch.zeros_like(x)
    u[:, 2:] = torch.randn(len(x), x.shape[1] - 2, generator=g)
    u = u / u.norm(dim=1, keepdim=True)
    a = math.radians(degrees)
    return math.cos(a) * x + math.sin(a) * x.norm(dim=1, keepdim=True) * u


def ocs_logit(p_pos: torch.Tensor, loss: str = "logistic") -> torch.Tensor:
    """The OCS of a binary margin loss with P(y = +1) = p: log(p / (1 - p)), halved for the exponential loss
    (``p_pos`` in (0, 1): at 0 or 1 the OCS is infinite)."""
    check_tensor("p_pos", p_pos, 0, 1, open_low=True)
    if (p_pos >= 1).any():
        raise ValueError("p_pos holds 1.0; allowed values lie in (0, 1) (the OCS of a single-class set is infinite)")
    check_choice("loss", loss, LOSSES)
    return torch.log(p_pos / (1 - p_pos)) * (0.5 if loss == "exponential" else 1.0)


def margin_points(margins: torch.Tensor, tol: float = 0.05) -> torch.Tensor:
    """Mask of the points whose margin y f(x) is within a relative ``tol`` of the smallest (last dimension)."""
    if check_tensor("margins", margins).dim() == 0:
        raise ValueError("margins is a scalar; it needs a last dimension of points")
    check_range("tol", tol, 0)
    low = margins.min(-1, keepdim=True).values
    return margins <= low + tol * low.abs()


def stable_rank(w: torch.Tensor) -> torch.Tensor:
    """||W||_F^2 / ||W||_2^2 over the last two dimensions: 1 for a rank-one matrix, at most rank(W); W is not
    zero."""
    if check_tensor("w", w).dim() < 2:
        raise ValueError(f"w has shape {tuple(w.shape)}; it must be a matrix (or a stack of them)")
    s = torch.linalg.svdvals(w)
    return s.pow(2).sum(-1) / s[..., 0].pow(2)


def hidden_stable_rank(stable_rank: torch.Tensor, depths: tuple[int, ...]) -> torch.Tensor:
    """Mean stable rank of the hidden layers W_2..W_{L-1} of every net: ``stable_rank`` is (depths, seeds, layer)
    with W_1..W_L of a depth-L net in layers 0..L-1 (NaN-padded to the deepest net), ``depths`` the nets' L in the
    first axis' order; returns (depths, seeds). The input layer W_1 (d -> m) and the output layer W_L (m -> 1, rank
    exactly one) are left out wherever they sit."""
    check_tensor("stable_rank", stable_rank, allow_nan=True, ndim=3)
    depths = tuple(check_ranges("depths", depths, 3, stable_rank.shape[-1], integer=True))
    check_shape("depths", depths, (stable_rank.shape[0],), "one depth per row of stable_rank")
    return torch.stack([stable_rank[i, :, 1 : d - 1].mean(-1) for i, d in enumerate(depths)])


def normalised_margin(out: torch.Tensor, y: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
    """min_n y_n f(x_n) / prod_i ||W_i||_F: the margin of an L-homogeneous net divided by the product of its layers'
    norms, invariant to rescaling the layers, so its convergence says the direction has converged. ``out`` is (B, N)
    (without any output bias), ``y`` (N,) or (B, N), ``weights`` the L stacks (B, ., .) of W_1..W_L."""
    check_tensor("out", out, ndim=2)
    _check_labels(y)
    norms = torch.stack([check_tensor("weights", w).flatten(1).norm(dim=1) for w in weights]).prod(0)
    return (y * out).min(-1).values / norms


class DeepReLUStack:
    """B bias-free ReLU MLPs of width m, member b of depth ``depths[b]`` (>= 2), optionally with an output bias.

    Parameters: ``w_in`` (B, m, dim), ``w_hidden`` (L_max - 2, B, m, m), ``w_out`` (B, 1, m), ``bias`` (B,).
    Hidden slot l of member b is trained when l < depths[b] - 2, else it is a frozen identity.
    """

    def __init__(self, depths: list[int], width: int, dim: int, seed: int = 0, output_bias: bool = False):
        depths = list(check_ranges("depths", depths, 2, integer=True))
        check_range("width", width, 1, integer=True)
        check_range("dim", dim, 1, integer=True)
        check_seed("seed", seed)
        check_type("output_bias", output_bias, bool, "True or False")
        g = torch.Generator().manual_seed(seed)
        b, m, lmax = len(depths), width, max(depths)
        self.depths = torch.tensor(depths)
        self.active = torch.stack([self.depths - 2 > layer for layer in range(lmax - 2)]).float()  # (L_max - 2, B)
        he = torch.randn(lmax - 2, b, m, m, generator=g) * math.sqrt(2 / m)
        self.w_in = torch.randn(b, m, dim, generator=g) * math.sqrt(2 / dim)
        self.w_hidden = torch.where(self.active[..., None, None].bool(), he, torch.eye(m).expand_as(he))
        self.w_out = torch.randn(b, 1, m, generator=g) * math.sqrt(1 / m)
        self.bias = torch.zeros(b) if output_bias else None

    def parameters(self) -> list[torch.Tensor]:
        """The trained tensors: ``w_in``, ``w_hidden``, ``w_out`` and, with an output bias, ``bias``."""
        return [self.w_in, self.w_hidden, self.w_out] + ([self.bias] if self.bias is not None else [])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Outputs (B, N) and the post-ReLU features f_1..f_{L_max - 1}, each (B, N, m); x is (N, dim) or (B, N, dim).

        For a member of depth L, feature j < L is its layer-j representation (later ones repeat f_{L-1})."""
        h = torch.relu(x @ self.w_in.transpose(1, 2))
        feats = [h]
        for w in self.w_hidden:
            h = torch.relu(h @ w.transpose(1, 2))
            feats.append(h)
        out = (h @ self.w_out.transpose(1, 2)).squeeze(-1)
        return (out if self.bias is None else out + self.bias[:, None]), feats

    def weights(self, member: int) -> list[torch.Tensor]:
        """The L weight matrices W_1..W_L of one member."""
        check_range("member", member, 0, len(self.depths) - 1, integer=True)
        depth = int(self.depths[member])
        return [self.w_in[member], *[w[member] for w in self.w_hidden[: depth - 2]], self.w_out[member]]


def margin_loss(out: torch.Tensor, y: torch.Tensor, loss: str = "logistic") -> torch.Tensor:
    """Mean over the last dimension of log(1 + exp(-y f)) (logistic) or exp(-y f) (exponential); labels y are
    -1 or +1."""
    check_tensor("out", out)
    _check_labels(y)
    check_choice("loss", loss, LOSSES)
    return _margin_loss(out, y, loss)


def _check_labels(y: torch.Tensor) -> None:
    if not torch.isin(check_tensor("y", y), torch.tensor([-1.0, 1.0], dtype=y.dtype)).all():
        raise ValueError("y holds values other than -1 and +1; labels of a binary margin loss are -1 or +1")


def _margin_loss(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    margin = y * out
    return (F.softplus(-margin) if loss == "logistic" else torch.exp(-margin)).mean(-1)


@in_phase("training")
def train(
    net: DeepReLUStack,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    weight_decay: float,
    loss: str = "logistic",
) -> list[torch.Tensor]:
    """Full-batch gradient descent on mean loss + weight_decay/2 sum ||W_i||_F^2 (the bias is not decayed).

    Frozen identity layers get no update. Returns the output bias after every step (empty without a bias).
    """
    check_type("net", net, DeepReLUStack, "a DeepReLUStack")
    check_tensor("x", x)
    _check_labels(y)
    if x.dim() not in (2, 3) or y.dim() not in (1, 2) or y.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"x has shape {tuple(x.shape)} and y {tuple(y.shape)}; give x (N, dim) or (B, N, dim) and "
            "y (N,) or (B, N), one label per input"
        )
    check_range("x.shape[-1] (dim)", x.shape[-1], net.w_in.shape[-1], net.w_in.shape[-1], integer=True)
    check_range("steps", steps, 1, integer=True)
    check_range("lr", lr, 0, open_low=True)
    check_range("weight_decay", weight_decay, 0)
    check_choice("loss", loss, LOSSES)
    params = net.parameters()
    for p in params:
        p.requires_grad_(True)
    mask = [None, net.active[..., None, None], None, None]
    trace = []
    for _ in progress_bar(range(steps), desc="gradient descent", leave=False):
        out, _ = net.forward(x)
        sq = (
            net.w_in.pow(2).sum((1, 2))
            + (net.w_hidden.pow(2).sum((2, 3)) * net.active).sum(0)
            + net.w_out.pow(2).sum((1, 2))
        )
        total = (_margin_loss(out, y, loss) + 0.5 * weight_decay * sq).sum()
        grads = torch.autograd.grad(total, params)
        with torch.no_grad():
            for p, g, m in zip(params, grads, mask):
                p -= lr * (g if m is None else g * m)
        if net.bias is not None:
            trace.append(net.bias.detach().clone())
    for p in params:
        p.requires_grad_(False)
    return trace


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """The simulation's networks, data, training and OOD angles, and the output-bias runs of Prop 2.4.2."""

    depths: tuple[int, ...] = (3, 4, 6, 8, 10)
    width: int = 32
    dim: int = 8
    n_train: int = 200
    n_test: int = 200
    noise: float = 0.05
    replicates: int = 2
    steps: int = 2000
    lr: float = 0.2
    weight_decay: float = 1e-2
    loss: str = "logistic"
    angles: tuple[float, ...] = (0, 15, 30, 45, 60, 75, 90)  # OOD: degrees out of the data plane
    bias_depth: int = 4  # Prop 2.4.2: a net with an output bias on imbalanced labels ...
    bias_p_pos: tuple[float, ...] = (0.7, 0.3)  # ... with these fractions of positive labels,
    bias_replicates: int = 4  # ... this many datasets each, trained without weight decay (Prop 2.4.2 is about
    # gradient flow on the unregularised loss, and the bias is free in its min-norm problem) ...
    bias_steps: int = 20000  # ... for this many steps, the normalised margin recorded at 50 checkpoints

    def __post_init__(self):
        check_choice("loss", self.loss, LOSSES)
        check_ranges("depths", self.depths, 3, integer=True)  # the measures read W_2, so every net has one
        for name in ("width", "n_train", "n_test", "replicates", "steps", "bias_replicates", "bias_steps"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_range("dim", self.dim, 3, integer=True)  # OOD inputs turn out of the data plane into the others
        check_range("noise", self.noise, 0)
        check_range("lr", self.lr, 0, open_low=True)
        check_range("weight_decay", self.weight_decay, 0)
        check_ranges("angles", self.angles, 0, 90)
        check_range("bias_depth", self.bias_depth, 2, integer=True)
        check_ranges("bias_p_pos", self.bias_p_pos, 0, 1, open_low=True, open_high=True)


def _per_member(values: torch.Tensor, n_depths: int, replicates: int) -> torch.Tensor:
    """(B, ...) with members ordered depth-major -> (depths, seeds, ...)."""
    return values.reshape(n_depths, replicates, *values.shape[1:])


@dataclasses.dataclass
class BiasRuns:
    """Prop 2.4.2's output-bias runs, one per (label fraction, seed)."""

    p_pos: torch.Tensor  # (R,) fraction of positive training labels
    ocs: torch.Tensor  # (R,) the OCS, log(p / (1 - p)) (halved for the exponential loss)
    final: torch.Tensor  # (R,) output bias at the end of training
    trace: torch.Tensor  # (R, steps) output bias after every step
    margin_label_sum: torch.Tensor  # (R,) sum of the labels of the margin points
    steps: torch.Tensor  # (steps,) 1, 2, ..., steps
    checkpoints: torch.Tensor  # (C,) the steps after which the normalised margin was recorded
    margin_trace: torch.Tensor  # (R, C) normalised margin (:func:`normalised_margin`, bias left out) at each

    def margin_change(self, tail: float = 0.1) -> torch.Tensor:
        """Per run, ``|m(T) - m((1 - tail) T)| / |m(T)|``: the relative change of the normalised margin over the last
        ``tail`` of training (small once the direction has converged)."""
        check_range("tail", tail, 0, 1, open_low=True, open_high=True)
        start = int(torch.searchsorted(self.checkpoints, (1 - tail) * self.checkpoints[-1]))
        end = self.margin_trace[:, -1]
        return (end - self.margin_trace[:, start]).abs() / end.abs()


@dataclasses.dataclass
class Simulation:
    """What :func:`simulate` measures; nets are indexed (depth, seed) and OOD sets by angle, in the config's order."""

    stable_rank: torch.Tensor  # (depths, seeds, layer): W_1..W_L, NaN past a net's depth
    init_stable_rank: float  # of a hidden layer at random initialisation
    norm_ratio: torch.Tensor  # (depths, seeds, angle, layer): E_OOD / E_train ||f_j(x)||, j = 1..L_max - 1
    abs_out: torch.Tensor  # (depths, seeds, angle, N): |f(x)| on the turned test points
    rank_one_proj: torch.Tensor  # (depths, seeds, angle, N): ||A_1 f_1(x)||
    train_margin: torch.Tensor  # (depths, seeds): min_n y_n f(x_n)
    bias: BiasRuns


@torch.no_grad()
def _measure(net: DeepReLUStack, cfg: SimConfig, x_train: torch.Tensor, x_test: torch.Tensor) -> dict:
    """Stable ranks, feature norms by layer and angle, and (|f|, ||A_1 f_1||) pairs for the deepest nets."""
    nd, ns = len(cfg.depths), cfg.replicates
    lmax = max(cfg.depths)
    srank = torch.full((lmax, len(net.depths)), float("nan"))  # layer W_1..W_L (padded) x member
    for b in range(len(net.depths)):
        for i, w in enumerate(net.weights(b)):
            srank[i, b] = stable_rank(w)
    init_srank = stable_rank(DeepReLUStack([lmax], cfg.width, cfg.dim, seed=1).w_hidden[0, 0])
    _, f_train = net.forward(x_train)
    train_norm = torch.stack([f.norm(dim=-1).mean(-1) for f in f_train])  # (L_max - 1, B)
    ratios, outs, proj = [], [], []
    # A_1 = v v^T with v the top right singular vector of W_2 (the first hidden layer's next weight)
    v = torch.linalg.svd(net.w_hidden[0])[2][:, 0]  # (B, m); W_2 is w_hidden[0] for every depth >= 3
    for a in cfg.angles:
        out, feats = net.forward(off_plane(x_test, a, seed=1))
        ratios.append(torch.stack([f.norm(dim=-1).mean(-1) for f in feats]) / train_norm)
        outs.append(out.abs())
        proj.append((feats[0] @ v[:, :, None]).squeeze(-1).abs())  # ||A_1 f_1(x)|| = |v^T f_1(x)|
    return {
        "stable_rank": _per_member(srank.T, nd, ns),  # (depths, seeds, layer)
        "init_stable_rank": float(init_srank),
        "norm_ratio": _per_member(torch.stack(ratios).permute(2, 0, 1), nd, ns),  # (depths, seeds, angle, layer)
        "abs_out": _per_member(torch.stack(outs).permute(1, 0, 2), nd, ns),  # (depths, seeds, angle, N)
        "rank_one_proj": _per_member(torch.stack(proj).permute(1, 0, 2), nd, ns),
    }


def simulate(cfg: SimConfig, seed: int = 0) -> Simulation:
    """Train every depth x seed on one dataset and measure it; then the output-bias runs of Prop 2.4.2. Every draw
    comes from ``seed``: the training data itself, the test data, the output-bias runs' data and weights from
    independent substreams of it (:func:`~steerlib.core.seeds.substream`)."""
    check_type("cfg", cfg, SimConfig, "a SimConfig")
    check_seed("seed", seed, RUN_SEED_MAX)
    x, y = binary_data(cfg.n_train, cfg.dim, 0.5, cfg.noise, seed)
    x_test, _ = binary_data(cfg.n_test, cfg.dim, 0.5, cfg.noise, substream(seed, 1))
    members = [d for d in cfg.depths for _ in range(cfg.replicates)]
    net = DeepReLUStack(members, cfg.width, cfg.dim, seed=seed)
    train(net, x, y, cfg.steps, cfg.lr, cfg.weight_decay, cfg.loss)
    out, _ = net.forward(x)
    measured = _measure(net, cfg, x, x_test)
    train_margin = _per_member((y * out).min(-1).values, len(cfg.depths), cfg.replicates)

    # Prop 2.4.2: one net per (label fraction, seed), each on its own imbalanced dataset
    data = [
        binary_data(cfg.n_train, cfg.dim, p, cfg.noise, substream(seed, 2, i, s))
        for i, p in enumerate(cfg.bias_p_pos)
        for s in range(cfg.bias_replicates)
    ]
    xb, yb = torch.stack([d[0] for d in data]), torch.stack([d[1] for d in data])
    bnet = DeepReLUStack([cfg.bias_depth] * len(data), cfg.width, cfg.dim, seed=substream(seed, 3), output_bias=True)
    n_checks = min(50, cfg.bias_steps)
    ends = [round(cfg.bias_steps * (c + 1) / n_checks) for c in range(n_checks)]
    trace, margin_trace, done = [], [], 0
    for end in ends:  # plain gradient descent, so training in chunks is training in one go
        trace += train(bnet, xb, yb, end - done, cfg.lr, 0.0, cfg.loss)
        done = end
        with torch.no_grad():
            out = bnet.forward(xb)[0] - bnet.bias[:, None]  # y f(W; x) without the bias, as in Prop 2.4.2
        margin_trace.append(normalised_margin(out, yb, [bnet.w_in, *bnet.w_hidden[: cfg.bias_depth - 2], bnet.w_out]))
    p_hat = (yb > 0).float().mean(-1)
    bias = BiasRuns(
        p_pos=p_hat,
        ocs=ocs_logit(p_hat, cfg.loss),
        final=bnet.bias.clone(),
        trace=torch.stack(trace, dim=1),
        margin_label_sum=(yb * margin_points(yb * out)).sum(-1),
        steps=torch.arange(1, cfg.bias_steps + 1),
        checkpoints=torch.tensor(ends),
        margin_trace=torch.stack(margin_trace, dim=1),
    )
    return Simulation(**measured, train_margin=train_margin, bias=bias)
