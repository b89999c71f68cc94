"""Supervised finetuning of a causal LM with Hugging Face ``accelerate``: CPU, one GPU, or several processes.

The loss is the mean next-token cross-entropy over response tokens (labels of prompt and padding tokens are -100):
``L = -(1/|R|) Σ_{t∈R} log p(x_t | x_<t)``. Pretraining is the same loop with empty prompts. A per-sequence loss
(``loss``, e.g. :class:`DCOLoss`) replaces it with the mean over a batch's sequences of a function of each
sequence's summed response NLL (:func:`~steerlib.lm.scoring.label_logprobs`).

Each step's global batch is a function of (seed, step) only (:func:`batch_indices`), and every process trains on its
share ``batch[rank::world]`` while ``accelerate`` averages the gradients, so one process and several give the same
data, and a run interrupted mid-way resumes exactly from its last checkpoint in the
:class:`~steerlib.core.cache.RunCache`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from datasets import Dataset
from transformers import PreTrainedModel, get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

from steerlib.core.cache import RunCache
from steerlib.core.checks import (
    RUN_SEED_MAX,
    check_choice,
    check_columns,
    check_nonempty,
    check_range,
    check_seed,
    check_tensor,
    check_type,
)
from steerlib.core.runtime import in_phase, pick_device, progress_bar
from steerlib.core.seeds import epoch_order
from steerlib.lm.scoring import label_logprobs
from steerlib.lm.tokenizer import collate

SCHEDULES = {"cosine": get_cosine_schedule_with_warmup, "linear": get_linear_schedule_with_warmup}


@dataclasses.dataclass(frozen=True)
class SFTConfig:
    """One SFT run: steps, global batch, optimiser, learning-rate schedule, seed and checkpoints."""

    steps: int = 500
    batch_size: int = 64  # global batch, summed over processes
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: float = 0.05  # fraction of steps with a linear warm-up; then decay to 0 at the last step
    schedule: str = "cosine"  # shape of that decay: cosine or linear
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 250  # steps between resumable checkpoints (with a cache)

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_range("lr", self.lr, 0, open_low=True)
        check_range("weight_decay", self.weight_decay, 0)
        check_range("warmup", self.warmup, 0, 1)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_range("grad_clip", self.grad_clip, 0, open_low=True)
        check_seed("seed", self.seed, RUN_SEED_MAX)


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(-x)) for x >= 0, accurate at both ends (Mächler's log1mexp: expm1 below log 2, log1p above).
    Each branch sees only inputs of its own side, so the branch not taken adds no 0 * inf to the gradient."""
    small = x < np.log(2)
    below, above = torch.where(small, x, np.log(2)), torch.where(small, np.log(2), x)
    return torch.where(small, torch.log(-torch.expm1(-below)), torch.log1p(-torch.exp(-above)))


def dco_weight(nll: torch.Tensor, n: int) -> torch.Tensor:
    """DCO's weight F(N, p) = N p (1-p)^(N-1) / (1 - (1-p)^N) of a sequence whose probability is p = exp(-nll):
    the factor by which DCO scales the sequence's cross-entropy gradient (1 as p -> 0, 0 as p -> 1 for N > 1;
    identically 1 for N = 1). Computed in logs, with log(1-p) = log1mexp(nll), so no value is NaN."""
    check_range("n", n, 1, integer=True)
    nll = check_tensor("nll", nll, 0, allow_inf=True).double()
    if n == 1:
        return torch.ones_like(nll)
    log_q = _log1mexp(nll)  # log(1 - p); -inf at p = 1
    log_f = np.log(n) - nll + (n - 1) * log_q - _log1mexp(-n * log_q)
    return torch.exp(log_f)


@dataclasses.dataclass(frozen=True)
class DCOLoss:
    """Direct Coverage Optimization (Chen et al., 2025, arXiv:2502.07154): per sequence, ``-log(1 - (1 - p)^N)`` with
    p the probability of its target response, the chance that N samples miss it; its gradient is
    :func:`dco_weight` times the gradient of the sequence's NLL. Computed in float64: a long trace's p = exp(-nll)
    underflows in float32 (nll above about 87 nats), where the loss is nll - log N. The NLL is clamped to
    [1e-9, 700] (the slope at p = 1 is 0 times infinity; exp(-700) is near float64's smallest)."""

    n: int = 16

    def __post_init__(self):
        check_range("n", self.n, 1, integer=True)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        nll = (-label_logprobs(logits, labels).sum(-1)).double().clamp(1e-9, 700.0)
        return -_log1mexp(-self.n * _log1mexp(nll)).mean().to(logits.dtype)  # -log(1 - (1 - p)^N)


def make_accelerator(device: torch.device | str = "auto") -> Accelerator:
    """An Accelerator on ``device``: "cpu" forces the CPU; otherwise accelerate uses the launched device."""
    check_type("device", device, (str, torch.device), "'auto', 'cpu', 'cuda' or a torch.device")
    if device != "auto":
        device = pick_device(str(device))
    return Accelerator(cpu=device != "auto" and torch.device(device).type == "cpu")


def batch_indices(seed: int, step: int, n: int, batch_size: int) -> torch.Tensor:
    """Example indices of global batch ``step``: consecutive slices of a fresh permutation of ``n`` per epoch."""
    check_range("step", step, 0, integer=True)
    check_range("batch_size", batch_size, 1, integer=True)
    per_epoch = max(n // batch_size, 1)
    epoch, j = divmod(step, per_epoch)
    order = epoch_order(seed, epoch, n)
    if n < batch_size:  # tiny datasets: draw with replacement from repeated permutations
        order = order.repeat(batch_size // n + 1)
    return order[j * batch_size : (j + 1) * batch_size]


def load_finished(model: PreTrainedModel, cache: RunCache, kind: str, key: Any) -> dict | None:
    """The cached record of a finished ``kind`` run, its weights loaded into ``model``; None if there is none."""
    check_type("cache", cache, RunCache, "a RunCache")
    done = cache.load(kind, key)
    if done is not None:
        model.load_state_dict(done["model"])
    return done


@in_phase("training")
def train_sft(
    model: PreTrainedModel,
    data: Dataset | Callable[[], Dataset],
    cfg: SFTConfig,
    pad_token_id: int,
    device: torch.device | str = "auto",
    cache: RunCache | None = None,
    key: Any = None,
    desc: str = "sft",
    on_step: Callable[[int, PreTrainedModel], None] | None = None,
    progress: bool = True,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> list[float]:
    """Finetune ``model`` in place on ``data`` (columns ``input_ids``, ``labels``); return the loss of every step.
    ``data`` may be a function that returns the dataset: it is called only when the run is not in the cache (so a
    worker that finds the trained weights does not tokenize a large corpus first).

    With a ``cache`` and a ``key`` describing the initial model and the data, a finished run is loaded instead of
    retrained and an unfinished one resumes from its last checkpoint. ``on_step(step, model)`` runs on every process
    after optimizer step ``step`` (1-based) with the unwrapped model, e.g. to evaluate checkpoints; it may switch the
    model to eval mode or compute gradients (the loop switches back and clears them). ``progress`` shows a bar on
    the main process. ``loss(logits, labels)``, if given, is the loss of a batch in place of the model's mean token
    cross-entropy (e.g. :class:`DCOLoss`); its repr joins the cache key.
    """
    check_type("model", model, torch.nn.Module, "a causal LM (a torch module)")
    check_type("cfg", cfg, SFTConfig, "an SFTConfig")
    check_type(
        "data",
        data,
        (Dataset, Callable),
        "a datasets.Dataset with input_ids and labels (tokenize_sft), or a function returning one",
    )
    check_range("pad_token_id", pad_token_id, 0, integer=True)
    check_type("cache", cache, (RunCache, type(None)), "a RunCache or None")
    check_type("on_step", on_step, (Callable, type(None)), "a function on_step(step, model) or None")
    check_type("loss", loss, (Callable, type(None)), "a function loss(logits, labels) -> a scalar, or None")
    full_key = {"key": key, "sft": cfg, **({"loss": repr(loss)} if loss is not None else {})}
    use_cache = cache is not None and key is not None
    if use_cache and (done := load_finished(model, cache, "sft", full_key)) is not None:
        return done["losses"]
    with cache.claim("sft", full_key) if use_cache else contextlib.nullcontext() as done:
        if done is not None:  # another process trained it while this one waited
            model.load_state_dict(done["model"])
            return done["losses"]
        if not isinstance(data, Dataset):
            data = check_type("data", data(), Dataset, "a datasets.Dataset with input_ids and labels (tokenize_sft)")
        check_nonempty("data", data)
        check_columns("data", data.column_names, ("input_ids", "labels"), "tokenize it with tokenize_sft")
        acc = make_accelerator(device)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = SCHEDULES[cfg.schedule](opt, int(cfg.warmup * cfg.steps), cfg.steps)
        start, losses = 0, []
        if use_cache and (ckpt := cache.load_checkpoint("sft", full_key)) is not None:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["opt"])
            sched.load_state_dict(ckpt["sched"])
            start, losses = ckpt["step"], ckpt["losses"]
        wrapped, opt = acc.prepare(model, opt)
        ids, labels = list(data["input_ids"]), list(data["labels"])
        bar = progress_bar(
            range(start, cfg.steps),
            desc=desc,
            initial=start,
            total=cfg.steps,
            leave=False,
            disable=not (progress and acc.is_main_process),
        )
        for step in bar:
            wrapped.train()
            idx = batch_indices(cfg.seed, step, len(ids), cfg.batch_size)[acc.process_index :: acc.num_processes]
            batch = collate([ids[i] for i in idx], [labels[i] for i in idx], pad_token_id)
            batch = {k: v.to(acc.device) for k, v in batch.items()}
            if loss is None:
                step_loss = wrapped(**batch).loss
            else:
                logits = wrapped(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                step_loss = loss(logits, batch["labels"])
            acc.backward(step_loss)
            acc.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(acc.reduce(step_loss.detach(), "mean").item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
            if on_step is not None:
                on_step(step + 1, acc.unwrap_model(wrapped))
                opt.zero_grad(set_to_none=True)
            if use_cache and acc.is_main_process and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
                cache.save_checkpoint(
                    "sft",
                    full_key,
                    {
                        "model": model.state_dict(),
                        "opt": opt.state_dict(),
                        "sched": sched.state_dict(),
                        "step": step + 1,
                        "losses": losses,
                    },
                )
        wrapped.eval()
        if use_cache and acc.is_main_process:
            cache.save("sft", full_key, {"model": model.state_dict(), "losses": losses})
        acc.wait_for_everyone()
        return losses
