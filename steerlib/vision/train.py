"""Train an :class:`~steerlib.vision.ensemble.Ensemble` of replicates together, with caching, resuming and a progress
bar; and :func:`train_separately`, the one-model-per-replicate loop that the ensemble's training must equal. Member
``i`` draws its initial weights and its data order from replicate ``i``'s ``init`` and ``order`` streams."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from steerlib.core.cache import RunCache
from steerlib.core.checks import check_choice, check_nonempty, check_range, check_shape, check_tensor, check_type
from steerlib.core.runtime import in_phase, pick_device, progress_bar
from steerlib.core.seeds import Replicate, epoch_order
from steerlib.vision.data import ImageData
from steerlib.vision.ensemble import FORMAT, Ensemble
from steerlib.vision.losses import targets
from steerlib.vision.models import make_model

OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training recipe: epochs, batch size, the optimiser (Adam, or SGD with momentum) with its learning rate,
    weight decay and decay, warm-up epochs."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0  # the optimiser's L2 penalty
    lr_decay: float = 1.0  # the learning rate of epoch e is lr * lr_decay**e (a per-epoch step schedule)
    warmup_epochs: int = 0  # epochs with the loss's warm-up form (the Gaussian NLL's MSE warm-up)
    optimizer: str = "adam"  # "adam" or "sgd"
    momentum: float = 0.0  # SGD's momentum

    def __post_init__(self):
        check_range("epochs", self.epochs, 1, integer=True)
        check_range("batch_size", self.batch_size, 1, integer=True)
        check_range("lr", self.lr, 0, open_low=True)
        check_range("weight_decay", self.weight_decay, 0)
        check_range("lr_decay", self.lr_decay, 0, 1, open_low=True)
        check_range("warmup_epochs", self.warmup_epochs, 0, self.epochs, integer=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_range("momentum", self.momentum, 0, 1, open_high=True)
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"momentum={self.momentum} is SGD's; with optimizer={self.optimizer!r} leave it 0")

    def optimiser(self, params) -> torch.optim.Optimizer:
        """The recipe's optimiser over ``params`` (its weight decay an L2 penalty in the gradient, for both)."""
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)


def _check_training(loss: Callable, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> None:
    """A loss (a callable with an ``out_dim``, e.g. from make_loss), one target per input, at least a batch of them."""
    if not callable(loss) or not hasattr(loss, "out_dim"):
        raise TypeError(f"loss={loss!r} is a {type(loss).__name__}; loss must be a loss from make_loss")
    check_tensor("x", x)
    check_tensor("y", y)
    check_shape("y", y, (len(x), *y.shape[1:]), "one target per input of x")
    check_type("cfg", cfg, TrainConfig, "a TrainConfig")
    if cfg.batch_size > len(y):
        raise ValueError(
            f"cfg.batch_size={cfg.batch_size} is larger than the {len(y)} training examples; the last "
            "partial batch is dropped, so nothing would be trained"
        )


@in_phase("training")
def train_ensemble(
    make: Callable[[], nn.Module],
    members: tuple[Replicate, ...],
    loss: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    device: torch.device,
    cache: RunCache | None = None,
    key: dict | None = None,
    desc: str = "train",
    after_epoch: Callable[[int, Ensemble], None] | None = None,
) -> Ensemble:
    """Train one model per replicate on (x, y), all at once. Each member sees its own data order.

    With a ``cache`` and a ``key`` (the run's full description; the replicates and ``cfg`` are added), a finished
    run is loaded instead of retrained and an interrupted one resumes from its last epoch. ``after_epoch(epoch,
    ensemble)`` is called, in evaluation mode, after every epoch this call trains (epochs counted from 1; none for a
    run loaded from the cache), e.g. to record a learning curve.
    """
    _check_training(loss, x, y, cfg)
    check_type("after_epoch", after_epoch, (Callable, type(None)), "a function after_epoch(epoch, ensemble) or None")
    check_type("cache", cache, (RunCache, type(None)), "a RunCache or None")
    check_type("key", key, (dict, type(None)), "a dict describing the run or None")
    device = (
        pick_device(device)
        if isinstance(device, str)
        else check_type("device", device, torch.device, "a torch.device or its name")
    )
    ensemble = Ensemble(make, members).to(device)
    opt = cfg.optimiser(ensemble.parameters())
    full_key = {"key": key, "members": members, "train": cfg, "format": FORMAT}
    if cache is not None and key is not None:
        done = cache.load("ensemble", full_key)
        if done is not None:
            ensemble.load_state_dict(done)
            return ensemble.eval()
        with cache.claim("ensemble", full_key) as done:  # another chapter training it now: wait, then load it
            if done is not None:
                ensemble.load_state_dict(done)
                return ensemble.eval()
            return _train(ensemble, opt, loss, x, y, cfg, device, cache, full_key, desc, members, after_epoch)
    return _train(ensemble, opt, loss, x, y, cfg, device, cache, None, desc, members, after_epoch)


def _train(
    ensemble: Ensemble,
    opt,
    loss: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    device: torch.device,
    cache: RunCache | None,
    full_key: dict | None,
    desc: str,
    members: tuple[Replicate, ...],
    after_epoch: Callable[[int, Ensemble], None] | None = None,
) -> Ensemble:
    """The training loop of :func:`train_ensemble`, resuming from the run's checkpoint when the cache has one."""
    start = 0
    if cache is not None and full_key is not None:
        ckpt = cache.load_checkpoint("ensemble", full_key)
        if ckpt is not None:
            ensemble.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["opt"])
            start = ckpt["epoch"]
    n, orders = len(y), [m.stream("order") for m in members]
    steps = n // cfg.batch_size  # drop the last partial batch so every member's batch has the same size
    x, y = x.to(device), y.to(device)
    ensemble.train()
    bar = progress_bar(range(start, cfg.epochs), desc=desc, initial=start, total=cfg.epochs, leave=False)
    for epoch in bar:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * cfg.lr_decay**epoch
        order = torch.stack([epoch_order(s, epoch, n) for s in orders]).to(device)  # (E, N)
        total = 0.0
        for b in range(steps):
            idx = order[:, b * cfg.batch_size : (b + 1) * cfg.batch_size]
            out = ensemble(x[idx], per_member=True)  # (E, B, out)
            per_member = loss(out, y[idx], warmup=epoch < cfg.warmup_epochs).mean(-1)  # (E,)
            opt.zero_grad(set_to_none=True)
            per_member.sum().backward()
            opt.step()
            total += per_member.detach().mean().item()
        bar.set_postfix(loss=f"{total / max(steps, 1):.3f}")
        if after_epoch is not None:
            with torch.no_grad():
                after_epoch(epoch + 1, ensemble.eval())
            ensemble.train()
        if cache is not None and full_key is not None:
            cache.save_checkpoint(
                "ensemble", full_key, {"model": ensemble.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1}
            )
    if cache is not None and full_key is not None:
        cache.save("ensemble", full_key, ensemble.state_dict())
    return ensemble.eval()


@in_phase("training")
def train_separately(
    make: Callable[[], nn.Module],
    members: tuple[Replicate, ...],
    loss: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
) -> list[nn.Module]:
    """An ordinary training loop once per replicate with the ensemble's data order: the reference that
    :func:`train_ensemble` must equal (and the baseline it is timed against).

    Model ``i`` starts from ``torch.manual_seed(members[i].stream("init")); make()`` and sees
    ``epoch_order(members[i].stream("order"), epoch, N)``, as member ``i`` of the ensemble does; same optimiser,
    schedule, warm-up and dropped last batch. On the CPU.
    """
    check_type("make", make, Callable, "a function of no arguments building the model")
    check_type("members", members, (tuple, list), "a sequence of Replicates (steerlib.core.seeds.replicates)")
    for member in check_nonempty("members", members):
        check_type("members", member, Replicate, "a sequence of Replicates (steerlib.core.seeds.replicates)")
    _check_training(loss, x, y, cfg)
    models = []
    steps = len(y) // cfg.batch_size
    for member in members:
        torch.manual_seed(member.stream("init"))
        model = make().train()
        opt = cfg.optimiser(model.parameters())
        for epoch in range(cfg.epochs):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * cfg.lr_decay**epoch
            order = epoch_order(member.stream("order"), epoch, len(y))
            for b in range(steps):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                batch_loss = loss(model(x[idx]), y[idx], warmup=epoch < cfg.warmup_epochs).mean()
                opt.zero_grad(set_to_none=True)
                batch_loss.backward()
                opt.step()
        models.append(model.eval())
    return models


def fit(
    data: ImageData,
    loss,
    arch: str,
    members: tuple[Replicate, ...],
    cfg: TrainConfig,
    device: torch.device,
    cache: RunCache | None = None,
    width: int = 32,
    norm: str = "none",
) -> Ensemble:
    """Train ``arch`` with ``loss`` on ``data``'s training split (its :func:`~steerlib.vision.losses.targets`), one
    member per replicate (cached by the full configuration)."""
    check_type("data", data, ImageData, "an ImageData from load_dataset")
    key = {"data": data.name, "loss": repr(loss), "arch": arch, "width": width, "norm": norm}
    return train_ensemble(
        lambda: make_model(arch, data.input_shape, loss.out_dim, width=width, norm=norm),
        members,
        loss,
        data.x_train,
        targets(loss, data),
        cfg,
        device,
        cache,
        key,
        desc=f"{data.name}/{loss.name}/{arch}",
    )
