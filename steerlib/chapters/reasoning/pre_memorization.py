"""Chapter 4: pre-memorization train accuracy predicts test accuracy.

A small causal LM is "pretrained" on running-total word problems (:mod:`~steerlib.reasoning_task`) whose
chain-of-thought traces are drawn at random, then finetuned in a grid of runs on a small set whose targets fix one
trace per problem: learning rates over three orders of magnitude, a number of passes over the data, and data
fractions with the step count matched to ``matched_epochs`` full passes (appendix C.2). At log-spaced checkpoints
every run logs, per example, the sampled accuracy (k samples at temperature T) of train and test problems, the
perplexity of each train example's target trace, and whether correct samples used another trace; plus the prior
metrics of appendix C.3 (gradient variance, distance from initialisation, greedy-response confidence for ATC).

Each run is an independent cached job (:func:`train_run`), so a cluster could dispatch the grid and a re-run resumes
where it stopped; :func:`run` runs the grid back to back. The analysis is in :mod:`~steerlib.premem`.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from steerlib.core.cache import RunCache
from steerlib.core.checks import check_range
from steerlib.core.claims import Claim
from steerlib.core.runtime import pick_device
from steerlib.lm.models import SMOLLM2, build_model, load_causal_lm, tiny_config
from steerlib.lm.sampling import sample
from steerlib.lm.scoring import score_ids
from steerlib.lm.sft import SFTConfig, batch_indices, train_sft
from steerlib.lm.tokenizer import collate, encode_prompts, encode_responses, pad_id, tokenize_sft, word_tokenizer
from steerlib.measures import premem
from steerlib.worlds.running_totals import TaskConfig, answers_match, same_trace, splits, vocabulary

P_GRID = np.round(np.arange(1.005, 1.3 + 1e-9, 0.005), 3)  # memorization thresholds swept (perplexity > 1)
STATES = ("incorrect", "correct, not memorized", "memorized")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One finetuning run: peak learning rate, passes over its data, and the fraction of the finetuning set used."""

    lr: float
    epochs: float
    fraction: float = 1.0

    @property
    def name(self) -> str:
        return f"lr={self.lr:g} ep={self.epochs:g} frac={self.fraction:g}"

    def size(self, n_train: int, batch_size: int) -> int:
        """Finetuning problems used: the first ``fraction · n_train`` (at least one batch)."""
        return max(int(round(self.fraction * n_train)), batch_size)

    def steps(self, n_train: int, batch_size: int) -> int:
        """Optimizer steps: ``ceil(epochs · size / batch_size)``."""
        return math.ceil(self.epochs * self.size(n_train, batch_size) / batch_size)


@dataclasses.dataclass(frozen=True)
class Settings:
    task: TaskConfig = TaskConfig(events=(3, 4))  # finetuning and test problems: many traces, perplexity well above 1
    model: str = "tiny"  # "tiny" (built from a config) or a pretrained causal LM name, folder or hub id
    arch: str = "llama"
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_pretrain: int = 30000  # pretraining pool: problems with random traces
    pretrain: SFTConfig = SFTConfig(steps=4000, batch_size=64, lr=3e-3)
    n_train: int = 256  # finetuning problems (one fixed target trace each)
    n_test: int = 512
    lrs: tuple[float, ...] = (1e-5, 1e-4, 3e-4, 1e-3)
    epochs: tuple[float, ...] = (4, 12, 24)  # passes over the full finetuning set (the dissertation's 1, 3, 6 × 4)
    fractions: tuple[float, ...] = (0.5, 0.25)  # smaller sets, steps matched to matched_epochs full passes
    matched_epochs: float = 12
    batch_size: int = 8
    warmup: float = 0.1  # fraction of steps of linear warm-up, then linear decay to 0 (AdamW, as in C.2)
    grad_clip: float = 2.0
    checkpoints: tuple[float, ...] = (0.07, 0.15, 0.3, 0.5, 0.75, 1.0)  # fractions of each run's steps
    k: int = 4  # samples per problem and checkpoint
    temperature: float = 0.8
    max_new_tokens: int = 30
    grad_var_batches: int = 5
    sample_batch: int = 1024  # sequences sampled at once (1024 is fastest on 2 CPU cores for the tiny model)

    def __post_init__(self):
        check_range("k", self.k, 1)
        check_range("n_train", self.n_train, self.batch_size)
        for f in self.fractions:
            check_range("fraction", f, 0, 1)


PROFILES = {
    "smoke": Settings(n_pretrain=6000, pretrain=SFTConfig(steps=250, batch_size=64, lr=3e-3), n_train=48,
                      n_test=64, lrs=(1e-4, 1e-3), epochs=(2, 8), fractions=(0.5,), matched_epochs=4,
                      checkpoints=(0.25, 0.5, 1.0), k=2),
    "cpu": Settings(),
    "paper": Settings(model=SMOLLM2, n_pretrain=50000, pretrain=SFTConfig(steps=2000, batch_size=64, lr=1e-4),
                      n_train=1024, n_test=1024, lrs=(1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4), epochs=(1, 3, 6),
                      matched_epochs=3, batch_size=32, k=8),
}


@dataclasses.dataclass
class Results:
    specs: list[RunSpec]
    logs: list[dict[str, np.ndarray]]  # per run: arrays over checkpoints (C,) or (C, examples); see train_run
    pretrain_loss: list[float]
    seconds: dict[str, float]

    def triples(self, idx=None) -> list[premem.Run]:
        """(train Acc, train Perp, test accuracy) of each run (or of runs ``idx``) for :mod:`~steerlib.premem`."""
        idx = range(len(self.logs)) if idx is None else idx
        return [(self.logs[i]["train_acc"], self.logs[i]["train_perp"], self.logs[i]["test_acc"].mean(1))
                for i in idx]


def grid(settings: Settings) -> list[RunSpec]:
    """Full-data runs for every (lr, epochs), then smaller-data runs at matched steps (epochs = matched / fraction)."""
    return ([RunSpec(lr, e) for lr in settings.lrs for e in settings.epochs]
            + [RunSpec(lr, settings.matched_epochs / f, f) for lr in settings.lrs for f in settings.fractions])


# ----------------------------------------------------------------------------------------------- the experiment


class Experiment:
    """The data, tokenizer and pretrained model every run of the grid starts from (pretraining is cached)."""

    def __init__(self, settings: Settings, seed: int = 0, device: str | torch.device = "auto",
                 cache: RunCache | None = None):
        s = self.s = settings
        self.seed, self.cache = seed, cache
        self.device = pick_device(device) if isinstance(device, str) else device
        pool, self.train, self.test, _, _ = splits(s.task, s.n_pretrain, s.n_train, s.n_test, seed)
        if s.model == "tiny":
            self.tok = word_tokenizer(vocabulary(s.task))
            self.base = build_model(tiny_config(self.tok, s.arch, s.d_model, s.n_layers, s.n_heads, max_len=128),
                                    seed)
        else:
            self.base, self.tok = load_causal_lm(s.model, cache)
        self.key = {"task": s.task, "n_pretrain": s.n_pretrain, "seed": seed, "model": s.model, "arch": s.arch,
                    "d_model": s.d_model, "n_layers": s.n_layers, "n_heads": s.n_heads, "stage": "pretrain"}
        self.pretrain_loss = train_sft(self.base, tokenize_sft(pool, self.tok),
                                       dataclasses.replace(s.pretrain, seed=seed), pad_id(self.tok), self.device,
                                       cache, self.key, desc="pretrain")
        self.base.to(self.device).eval()
        self.prompt_ids = {n: encode_prompts(self.tok, d["prompt"]) for n, d in (("train", self.train),
                                                                                 ("test", self.test))}
        self.target_ids = encode_responses(self.tok, self.train["response"])

    def run_key(self, spec: RunSpec) -> dict[str, Any]:
        """What a run's result depends on: pretraining, finetuning/evaluation settings and the spec, not the rest of
        the grid (``sample_batch`` stays in: it changes which random numbers each sample draws)."""
        finetune = dataclasses.replace(self.s, lrs=(), epochs=(), fractions=())
        return {"pretrain": self.key, "settings": finetune, "spec": spec}


def _flat_grad(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def _flat_params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _gradient_variance(model, ids: list, labels: list, ex: Experiment) -> float:
    """premem.gradient_variance over ``grad_var_batches`` fixed minibatches of the run's data."""
    grads = []
    for j in range(ex.s.grad_var_batches):
        idx = batch_indices(ex.seed + 1, j, len(ids), ex.s.batch_size)
        batch = collate([ids[i] for i in idx], [labels[i] for i in idx], pad_id(ex.tok))
        model.zero_grad(set_to_none=True)
        model(**{k: v.to(ex.device) for k, v in batch.items()}).loss.backward()
        grads.append(_flat_grad(model).cpu().numpy())
    model.zero_grad(set_to_none=True)
    return premem.gradient_variance(np.stack(grads))


@torch.no_grad()
def evaluate(model, ex: Experiment, n_train: int, seed: int) -> dict[str, np.ndarray]:
    """One checkpoint: sampled accuracy (k samples at T) of the first ``n_train`` train problems and of all test
    problems, the share of samples correct with a trace other than the target, target-trace perplexity, and the mean
    token log-likelihood of the greedy response (ATC's confidence)."""
    s, train = ex.s, ex.train.select(range(n_train))
    prompts = list(train["prompt"]) + list(ex.test["prompt"])
    answers = list(train["answer"]) + list(ex.test["answer"])
    out = sample(model, ex.tok, [p for p in prompts for _ in range(s.k)], s.max_new_tokens, s.temperature, seed,
                 s.sample_batch)
    correct = np.array([answers_match(t, answers[i // s.k]) for i, t in enumerate(out.texts)]).reshape(-1, s.k)
    targets = list(train["response"])
    other = np.array([c and not same_trace(t, targets[i // s.k])
                      for i, (t, c) in enumerate(zip(out.texts[:n_train * s.k], correct[:n_train].flat))])
    pad = pad_id(ex.tok)
    prompt_ids = ex.prompt_ids["train"][:n_train]
    perp = score_ids(model, prompt_ids, ex.target_ids[:n_train], pad, batch_size=512).mean_nll.exp()
    greedy = sample(model, ex.tok, list(train["prompt"]), s.max_new_tokens, 0.0, seed, s.sample_batch)
    confidence = -score_ids(model, prompt_ids, greedy.ids, pad, batch_size=512).mean_nll
    return {"train_acc": correct[:n_train].mean(1), "test_acc": correct[n_train:].mean(1),
            "train_other": other.reshape(-1, s.k).mean(1), "train_perp": perp.numpy(),
            "train_conf": confidence.numpy()}


def train_run(ex: Experiment, spec: RunSpec, progress: bool = True) -> dict[str, np.ndarray]:
    """One finetuning run from the pretrained model, cached under :meth:`Experiment.run_key`.

    :func:`~steerlib.lm.sft.train_sft` (on ``accelerate``) with AdamW at peak ``spec.lr``, linear warm-up and linear
    decay, and gradient-norm clipping, as in appendix C.2. Returns arrays over the C checkpoints: ``step``,
    ``grad_var``, ``dist_init``, ``loss`` (mean training loss since the previous checkpoint), and (C, N) per-example
    ``train_acc``, ``train_other``, ``train_perp``, ``train_conf`` (N = the run's train problems) and ``test_acc``.
    """
    key = ex.run_key(spec)
    if ex.cache is not None and (done := ex.cache.load("reasoning-run", key)) is not None:
        return done
    s = ex.s
    n, steps = spec.size(s.n_train, s.batch_size), spec.steps(s.n_train, s.batch_size)
    data = tokenize_sft(ex.train.select(range(n)).select_columns(["prompt", "response"]), ex.tok)
    ids, labels = list(data["input_ids"]), list(data["labels"])
    checkpoints = sorted({max(1, round(f * steps)) for f in s.checkpoints})
    model = copy.deepcopy(ex.base).to(ex.device)
    theta0 = _flat_params(model)
    logs: dict[str, list] = {}

    def log_checkpoint(step: int, model) -> None:
        if step not in checkpoints:
            return
        model.eval()
        row = evaluate(model, ex, n, seed=ex.seed * 1000 + step)
        row.update(grad_var=_gradient_variance(model, ids, labels, ex),
                   dist_init=premem.distance_from_init(_flat_params(model).cpu(), theta0.cpu()), step=step)
        for name, value in row.items():
            logs.setdefault(name, []).append(value)

    cfg = SFTConfig(steps=steps, batch_size=s.batch_size, lr=spec.lr, warmup=s.warmup, schedule="linear",
                    grad_clip=s.grad_clip, seed=ex.seed)
    losses = train_sft(model, data, cfg, pad_id(ex.tok), ex.device, desc=spec.name, on_step=log_checkpoint,
                       progress=progress)
    logs["loss"] = [float(np.mean(losses[a:b])) for a, b in zip([0, *checkpoints[:-1]], checkpoints)]
    result = {k: np.array(v) for k, v in logs.items()}
    if ex.cache is not None:
        ex.cache.save("reasoning-run", key, result)
    return result


def _timed_run(ex: Experiment, spec: RunSpec, progress: bool = True) -> tuple[dict[str, np.ndarray], float]:
    t = time.time()
    return train_run(ex, spec, progress), time.time() - t


_WORKER: dict[str, Experiment] = {}  # the Experiment of a worker process of run(workers > 1)


def _start_worker(settings: Settings, seed: int, device: str, cache_root: str) -> None:
    torch.set_num_threads(1)
    _WORKER["ex"] = Experiment(settings, seed, device, RunCache(cache_root))  # pretraining comes from the cache


def _worker_run(spec: RunSpec) -> tuple[dict[str, np.ndarray], float]:
    return _timed_run(_WORKER["ex"], spec, progress=False)  # one bar, in the parent, counts the runs


def run(settings: Settings, seed: int = 0, device: str | torch.device = "auto",
        cache: RunCache | None = None, workers: int | None = None) -> Results:
    """Pretrain (cached), then every run of :func:`grid`, each cached on its own (so an interrupted grid resumes);
    the assembled results are cached too.

    The runs go back to back, or with ``workers`` > 1 (default on a CPU: torch's thread count; needs a cache, which
    hands the pretrained model to the workers) in that many processes of one thread each: a tiny model keeps only one
    core busy. Every run depends on its spec and seeds alone, so both ways give the same results. The workers are
    spawned, so a script that calls this needs the usual ``if __name__ == "__main__":`` guard.
    """
    full_key = {"settings": settings, "seed": seed}
    if cache is not None and (done := cache.load("reasoning", full_key)) is not None:
        return done
    t0 = time.time()
    ex = Experiment(settings, seed, device, cache)
    seconds = {"pretrain": time.time() - t0}
    specs = grid(settings)
    workers = workers or (torch.get_num_threads() if ex.device.type == "cpu" else 1)
    if workers > 1 and cache is not None and cache.enabled:
        context = multiprocessing.get_context("spawn")  # fork would copy the parent's OpenMP threads
        with ProcessPoolExecutor(min(workers, len(specs)), context, _start_worker,
                                 (settings, seed, str(ex.device), str(cache.root))) as pool:
            done = list(tqdm(pool.map(_worker_run, specs), total=len(specs), desc="runs", leave=False))
    else:
        done = [_timed_run(ex, spec) for spec in tqdm(specs, desc="runs", leave=False)]
    seconds.update({spec.name: t for spec, (_, t) in zip(specs, done)})
    results = Results(specs, [log for log, _ in done], ex.pretrain_loss, seconds)
    if cache is not None:
        cache.save("reasoning", full_key, results)
    return results


# ----------------------------------------------------------------------------------------------- analysis


def points(r: Results, p: float) -> dict[str, np.ndarray]:
    """One row per (run, checkpoint): run index, spec, train / pre-memorization / test accuracy, memorized
    fraction, where the min term binds, and the prior metrics (ATC thresholded on the reference run)."""
    rows: dict[str, list] = {}
    for i, (spec, log) in enumerate(zip(r.specs, r.logs)):
        acc, perp = log["train_acc"], log["train_perp"]
        cols = {"run": np.full(len(acc), i), "lr": np.full(len(acc), spec.lr),
                "epochs": np.full(len(acc), spec.epochs), "fraction": np.full(len(acc), spec.fraction),
                "checkpoint": np.arange(len(acc)), "train_acc": acc.mean(1),
                "premem": premem.premem_accuracy(acc, perp, p).mean(1), "test_acc": log["test_acc"].mean(1),
                "memorized": premem.memorized(perp, p).mean(1), "min_binds": premem.min_binds(acc, perp, p).mean(1),
                "grad_var": log["grad_var"], "dist_init": log["dist_init"]}
        for k, v in cols.items():
            rows.setdefault(k, []).append(v)
    out = {k: np.concatenate(v) for k, v in rows.items()}
    ref = r.logs[reference_run(r)]
    threshold = premem.atc_threshold(ref["train_conf"][-1], ref["test_acc"][-1].mean())
    out["atc"] = np.concatenate([[premem.atc_predict(c, threshold) for c in log["train_conf"]] for log in r.logs])
    return out


def reference_run(r: Results) -> int:
    """ATC's reference run: the full-data run with the middle learning rate and the middle number of epochs."""
    full = [i for i, s in enumerate(r.specs) if s.fraction == 1.0]
    lrs, epochs = sorted({r.specs[i].lr for i in full}), sorted({r.specs[i].epochs for i in full})
    mid = (lrs[len(lrs) // 2], epochs[len(epochs) // 2])
    return next(i for i in full if (r.specs[i].lr, r.specs[i].epochs) == mid)


def best_p(r: Results) -> float:
    return premem.calibrate_p(r.triples(), P_GRID)


def states(log: dict[str, np.ndarray], p: float) -> np.ndarray:
    """(N, C) state of each train example at each checkpoint: 2 memorized (Perp ≤ p), else 1 if at least half of
    its samples are correct, else 0 (indices into STATES)."""
    memo = premem.memorized(log["train_perp"], p)
    return np.where(memo, 2, (log["train_acc"] >= 0.5).astype(int)).T


def correct_first_share(log: dict[str, np.ndarray], p: float) -> tuple[float, int]:
    """Among examples memorized at the last checkpoint, the share that were correct but not memorized at an
    earlier checkpoint (the path "correct with another trace → memorized"), and how many examples were memorized."""
    st = states(log, p)
    done = st[:, -1] == 2
    if not done.any():
        return 0.0, 0
    first_memo = np.argmax(st == 2, axis=1)
    before = np.array([(row[:m] == 1).any() for row, m in zip(st, first_memo)])
    return float(before[done].mean()), int(done.sum())


def map_runs(r: Results) -> list[int]:
    """The runs shown as state maps: full data, most epochs, one per learning rate."""
    most = max(s.epochs for s in r.specs if s.fraction == 1.0)
    return [i for i, s in enumerate(r.specs) if s.fraction == 1.0 and s.epochs == most]


def transfer_runs(r: Results, n_cal: int, repeats: int = 20, seed: int = 0) -> np.ndarray:
    """(repeats, 2): R² on the held-out runs at p calibrated on ``n_cal`` random runs, and at their own best p."""
    rng, n = np.random.default_rng(seed), len(r.logs)
    out = []
    for _ in range(repeats):
        cal = rng.choice(n, n_cal, replace=False)
        rest = r.triples(np.setdiff1d(np.arange(n), cal))
        curve = premem.r2_curve(rest, P_GRID)
        p_hat = premem.calibrate_p(r.triples(cal), P_GRID)
        out.append((curve[np.searchsorted(P_GRID, p_hat)], curve.max()))
    return np.array(out)


def transfer_halves(r: Results, repeats: int = 20, seed: int = 0) -> np.ndarray:
    """(repeats, 3): p calibrated on a random half A of the test problems, R² on half B at that p, and at half B's
    own best p."""
    rng, out = np.random.default_rng(seed), []
    n_test = r.logs[0]["test_acc"].shape[1]
    for _ in range(repeats):
        half = rng.permutation(n_test) < n_test // 2
        runs = {h: [(log["train_acc"], log["train_perp"], log["test_acc"][:, m].mean(1)) for log in r.logs]
                for h, m in (("A", half), ("B", ~half))}
        p_a = premem.calibrate_p(runs["A"], P_GRID)
        curve_b = premem.r2_curve(runs["B"], P_GRID)
        out.append((p_a, curve_b[np.searchsorted(P_GRID, p_a)], curve_b.max()))
    return np.array(out)


PRIORS = {"premem": "pre-memorization train acc.", "train_acc": "train accuracy", "grad_var": "gradient variance",
          "dist_init": "distance from init.", "atc": "ATC"}


def correlations(r: Results, p: float) -> dict[str, float]:
    """Pearson r of each metric of :data:`PRIORS` with test accuracy over all runs and checkpoints."""
    pts = points(r, p)
    return {k: premem.pearson(pts[k], pts["test_acc"]) for k in PRIORS}


def _final(pts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    last = np.r_[pts["run"][1:] != pts["run"][:-1], True]
    return {k: v[last] for k, v in pts.items()}


def claims(r: Results) -> list[Claim]:
    """H1–H5 and H8 (see the research note); p is calibrated on all runs unless a claim says otherwise."""
    p = best_p(r)
    pts = points(r, p)
    final = _final(pts)
    fitted = final["train_acc"] >= 0.9
    spread = float(np.ptp(final["test_acc"][fitted])) if fitted.sum() >= 2 else 0.0
    shares = [correct_first_share(r.logs[i], p) for i in map_runs(r)]
    shares = [sh for sh, n in shares if n >= 10]
    curve = premem.r2_curve(r.triples(), P_GRID)
    near = np.abs(P_GRID - p) <= 0.05 + 1e-9
    runs3, halves = transfer_runs(r, min(3, len(r.logs) - 1)), transfer_halves(r)
    corr = correlations(r, p)
    prior_best = max(abs(corr[k]) for k in ("grad_var", "dist_init", "atc"))
    return [
        Claim("H1", "train accuracy does not predict test accuracy", "R² of (train acc., test acc.) on y = x",
              premem.r2_identity(pts["train_acc"], pts["test_acc"]), "<", 0.5, "Fig 4.1: train acc. ≈ 1, R² low"),
        Claim("H1b", "runs that fit the train set (final train acc. ≥ 0.9) differ widely in test accuracy",
              f"range of final test acc. over the {int(fitted.sum())} such runs", spread, ">=", 0.1, "Fig 4.1"),
        Claim("H2", "the share of examples that are correct (not memorized) before being memorized depends on the "
              "learning rate", f"max - min of that share over learning rates (full data, most epochs; runs with "
              f"≥ 10 memorized examples: {len(shares)})", float(np.ptp(shares)) if len(shares) >= 2 else 0.0,
              ">=", 0.1, "Fig 4.3"),
        Claim("H3", "one threshold p gives pre-memorization accuracy ≈ test accuracy across runs and checkpoints",
              f"R² on y = x at the calibrated p = {p:.3f}", curve.max(), ">=", 0.85,
              "R² 0.94 GSM8K / 0.95 MATH (Llama3-8B), 0.97 / 0.88 (Gemma2-9B)"),
        Claim("H4a", "R² is smooth in p", "largest change of R² between neighbouring p (step 0.005) within "
              "±0.05 of the calibrated p", float(np.abs(np.diff(curve[near])).max()), "<=", 0.1, "Fig C.1"),
        Claim("H4b", "p calibrated on 3 runs transfers to the held-out runs",
              "mean R² loss on held-out runs vs their own best p (20 draws)",
              float((runs3[:, 1] - runs3[:, 0]).mean()), "<=", 0.1, "Fig C.2"),
        Claim("H4c", "p calibrated on half the test set transfers to the other half",
              "mean R² loss on half B at half A's p vs half B's best p (20 splits)",
              float((halves[:, 2] - halves[:, 1]).mean()), "<=", 0.05, "Fig C.3"),
        Claim("H5", "pre-memorization accuracy tracks test accuracy better than gradient variance, distance from "
              "initialisation and ATC", "Pearson r (ours) minus the largest |r| of the three prior metrics",
              corr["premem"] - prior_best, ">", 0.0, "Fig 4.5: 0.98 vs -0.72, 0.59, -0.04"),
        Claim("H8", "examples get memorized: some run ends with most train examples memorized",
              "largest final memorized fraction over runs", float(final["memorized"].max()), ">=", 0.5,
              "section 4.3"),
        Claim("H8b", "the min(·, Acc_m) term binds: accuracy drops after a correct, unmemorized checkpoint",
              "fraction of (example, checkpoint) pairs where it binds", float(pts["min_binds"].mean()), ">", 0.0,
              "definition in section 4.3"),
    ]


def summary(r: Results) -> dict[str, Any]:
    """Numbers for metrics.json: calibrated p (also in log-log units), R² (identity and fitted line), per-run final
    accuracies and memorized fractions, correlations, transfer results, timings."""
    p = best_p(r)
    pts = points(r, p)
    final = _final(pts)
    return {
        "p": p, "p_loglog": round(float(premem.loglog(p)), 3),
        "r2_identity_premem": round(premem.r2_identity(pts["premem"], pts["test_acc"]), 3),
        "r2_fit_premem": round(premem.r2_fit(pts["premem"], pts["test_acc"]), 3),
        "r2_identity_train": round(premem.r2_identity(pts["train_acc"], pts["test_acc"]), 3),
        "r2_fit_train": round(premem.r2_fit(pts["train_acc"], pts["test_acc"]), 3),
        "runs": [{"run": s.name, "lr": s.lr, "epochs": s.epochs, "fraction": s.fraction,
                  "train_acc": round(float(a), 3), "test_acc": round(float(t), 3),
                  "premem": round(float(m), 3), "memorized": round(float(mm), 3)}
                 for s, a, t, m, mm in zip(r.specs, final["train_acc"], final["test_acc"], final["premem"],
                                           final["memorized"])],
        "correlations": {k: round(v, 3) for k, v in correlations(r, p).items()},
        "correct_first_share": {r.specs[i].name: correct_first_share(r.logs[i], p) for i in map_runs(r)},
        "other_trace_share": round(float(np.mean([log["train_other"].sum() / max(log["train_acc"].sum(), 1e-9)
                                                  for log in r.logs])), 3),
        "transfer_runs": {n: transfer_runs(r, n).mean(0).round(3).tolist() for n in (1, 2, 3) if n < len(r.logs)},
        "transfer_halves": transfer_halves(r).mean(0).round(3).tolist(),
        "pretrain_final_loss": round(float(np.mean(r.pretrain_loss[-20:])), 4),
        "seconds": {k: round(v, 1) for k, v in r.seconds.items()},
    }


# ----------------------------------------------------------------------------------------------- figures


def _lr_colors(r: Results) -> dict[float, Any]:
    lrs = sorted({s.lr for s in r.specs})
    return dict(zip(lrs, plt.cm.viridis(np.linspace(0, 0.9, len(lrs)))))


def plot_accuracy(r: Results, p: float):
    """Fig 4.1: train accuracy and pre-memorization train accuracy vs test accuracy, every run and checkpoint."""
    pts, colors = points(r, p), _lr_colors(r)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    for ax, key in zip(axes, ("train_acc", "premem")):
        for lr, c in colors.items():
            sel = pts["lr"] == lr
            ax.scatter(pts[key][sel], pts["test_acc"][sel], s=14, color=c, label=f"lr {lr:g}")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set(xlabel=f"{PRIORS[key]}" + (f" (p = {p:.3f})" if key == "premem" else ""), xlim=(-0.02, 1.02),
               ylim=(-0.02, 1.02), title=f"R² on y = x: {premem.r2_identity(pts[key], pts['test_acc']):.2f}")
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_state_maps(r: Results, p: float):
    """Figs 4.2/4.3: per-example state over checkpoints for one run per learning rate (examples sorted by the
    checkpoint at which they are first memorized, then by their first correct checkpoint)."""
    idx = map_runs(r)
    fig, axes = plt.subplots(1, len(idx), figsize=(3.6 * len(idx), 4), squeeze=False)
    cmap = plt.matplotlib.colors.ListedColormap(["#d62728", "#2ca02c", "#1f77b4"])
    for ax, i in zip(axes[0], idx):
        st = states(r.logs[i], p)
        never = st.shape[1]
        first_memo = np.where((st == 2).any(1), np.argmax(st == 2, 1), never)
        first_ok = np.where((st >= 1).any(1), np.argmax(st >= 1, 1), never)
        order = np.lexsort((first_ok, first_memo))
        ax.imshow(st[order], aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=2)
        ax.set(title=f"lr {r.specs[i].lr:g}", xlabel="checkpoint (step)")
        ax.set_xticks(range(never), r.logs[i]["step"], fontsize=7, rotation=90)
    axes[0, 0].set_ylabel("train example")
    handles = [plt.matplotlib.patches.Patch(color=cmap(k), label=name) for k, name in enumerate(STATES)]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_r2_vs_p(r: Results):
    """Fig C.1: R² on y = x of pre-memorization accuracy against the threshold p (train accuracy for reference)."""
    curve = premem.r2_curve(r.triples(), P_GRID)
    pts = points(r, best_p(r))
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(P_GRID, curve, marker=".", label="pre-memorization train acc.")
    train = premem.r2_identity(pts["train_acc"], pts["test_acc"])
    ax.axhline(train, color="gray", ls=":", label=f"train acc. (R² {train:.2f}, may lie below the axis)")
    ax.set(xlabel="memorization threshold p (target perplexity)", ylabel="R² on y = x",
           ylim=(max(-1.0, min(curve.min(), 0) - 0.05), 1.0), title="R² vs p")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_transfer(r: Results):
    """Figs C.2/C.3: R² on held-out runs at p calibrated on 1–3 runs, and on half the test set at p from the
    other half, each against the held-out data's own best R²."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for n in (1, 2, 3):
        t = transfer_runs(r, min(n, len(r.logs) - 1))
        axes[0].scatter(np.full(len(t), n) + np.linspace(-0.15, 0.15, len(t)), t[:, 0], s=12, label=f"{n} run(s)")
        axes[0].scatter([n], [t[:, 1].mean()], marker="_", s=400, color="k")
    axes[0].set(xticks=(1, 2, 3), xlabel="runs used to calibrate p", ylabel="R² on held-out runs (clipped at -1)",
                ylim=(-1.05, 1.0), title="p from a few runs (bar: held-out best)")
    h = transfer_halves(r)
    axes[1].scatter(h[:, 2], h[:, 1], s=14)
    lo = min(h[:, 1:].min(), 0)
    axes[1].plot([lo, 1], [lo, 1], "k--", lw=1)
    axes[1].set(xlabel="R² on half B at its own best p", ylabel="R² on half B at half A's p",
                title="p from half the test set")
    fig.tight_layout()
    return fig


def plot_prior_metrics(r: Results, p: float):
    """Fig 4.5: test accuracy against each metric over all runs and checkpoints, with Pearson r."""
    pts, colors = points(r, p), _lr_colors(r)
    keys = ("premem", "grad_var", "dist_init", "atc")
    fig, axes = plt.subplots(1, len(keys), figsize=(14, 3.6), sharey=True)
    for ax, key in zip(axes, keys):
        for lr, c in colors.items():
            sel = pts["lr"] == lr
            ax.scatter(pts[key][sel], pts["test_acc"][sel], s=12, color=c, label=f"lr {lr:g}")
        ax.set(xlabel=PRIORS[key], title=f"r = {premem.pearson(pts[key], pts['test_acc']):.2f}")
        if key in ("grad_var", "dist_init"):
            ax.set_xscale("log")
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    """Run the grid's jobs from a shell, e.g. as the array tasks of a cluster scheduler sharing one $STEERLIB_CACHE::

        python -m steerlib.reasoning --profile cpu --list       # the jobs, one line each
        python -m steerlib.reasoning --profile cpu --pretrain   # once, before the jobs: the shared pretraining
        python -m steerlib.reasoning --profile cpu --job 3      # one finetuning run (e.g. --job $SLURM_ARRAY_TASK_ID)
        python -m steerlib.reasoning --profile cpu              # every job back to back

    The chapter then finds every run in the cache.
    """
    import argparse

    from steerlib.core.profiles import get_profile
    from steerlib.core.runtime import set_threads

    parser = argparse.ArgumentParser(prog="python -m steerlib.reasoning", description=main.__doc__.split("::")[0])
    parser.add_argument("--profile", default=None, help="smoke | cpu | paper (gpu); default $STEERLIB_PROFILE or cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="print the jobs and exit")
    what.add_argument("--pretrain", action="store_true", help="only pretrain (cached)")
    what.add_argument("--job", type=int, default=None, help="index of the one run to train (see --list)")
    args = parser.parse_args(argv)
    settings = get_profile(PROFILES, args.profile)
    specs = grid(settings)
    if args.list:
        for i, spec in enumerate(specs):
            print(f"{i}\t{spec.name}\t{spec.steps(settings.n_train, settings.batch_size)} steps")
        return
    if args.job is not None and not 0 <= args.job < len(specs):
        parser.error(f"--job={args.job} is out of range; allowed values lie in [0, {len(specs) - 1}] (see --list)")
    set_threads()
    cache = RunCache()
    if args.pretrain or args.job is not None:
        ex = Experiment(settings, args.seed, args.device, cache)
        if args.job is not None:
            log = train_run(ex, specs[args.job])
            print(f"{specs[args.job].name}: final train acc {log['train_acc'][-1].mean():.3f}, "
                  f"test acc {log['test_acc'][-1].mean():.3f}")
        return
    r = run(settings, args.seed, args.device, cache)
    print(f"{len(r.logs)} runs; R² on y = x of pre-memorization accuracy at p = {best_p(r):.3f}: "
          f"{premem.r2_curve(r.triples(), [best_p(r)])[0]:.3f}")


if __name__ == "__main__":
    main()
