"""The chapter's figures, drawn from the :class:`~.analysis.Analysis` of the results."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from steerlib.chapters.reasoning.pre_memorization.analysis import P_GRID, PRIORS, STATES, Analysis, states
from steerlib.chapters.reasoning.pre_memorization.experiment import Results


def _lr_colors(a: Analysis) -> dict[float, Any]:
    lrs = sorted(a.points["lr"].unique())
    return dict(zip(lrs, plt.cm.viridis(np.linspace(0, 0.9, len(lrs)))))


def _scatter_by_lr(ax: plt.Axes, a: Analysis, key: str, size: int) -> None:
    """Test accuracy against column ``key`` of the points, one colour per learning rate."""
    pts = a.points
    for lr, c in _lr_colors(a).items():
        sel = pts["lr"] == lr
        ax.scatter(pts[key][sel], pts["test_acc"][sel], s=size, color=c, label=f"lr {lr:g}")


def plot_accuracy(a: Analysis):
    """Fig 4.1: train accuracy and pre-memorization train accuracy vs test accuracy, every run and checkpoint."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    for ax, key, r2 in zip(axes, ("train_acc", "premem"), (a.r2_train, a.curve.max())):
        _scatter_by_lr(ax, a, key, 14)
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set(
            xlabel=f"{PRIORS[key]}" + (f" (p = {a.p:.3f})" if key == "premem" else ""),
            xlim=(-0.02, 1.02),
            ylim=(-0.02, 1.02),
            title=f"R² on y = x: {r2:.2f}",
        )
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_state_maps(r: Results, a: Analysis):
    """Figs 4.2/4.3: per-example state over checkpoints for one run per learning rate (examples sorted by the
    checkpoint at which they are first memorized, then by their first correct checkpoint)."""
    fig, axes = plt.subplots(1, len(a.map_runs), figsize=(3.6 * len(a.map_runs), 4), squeeze=False)
    cmap = plt.matplotlib.colors.ListedColormap(["#d62728", "#2ca02c", "#1f77b4"])
    for ax, i in zip(axes[0], a.map_runs):
        st = states(r.logs[i].train_acc, r.logs[i].train_perp, a.p)
        never = st.shape[1]
        first_memo = np.where((st == 2).any(1), np.argmax(st == 2, 1), never)
        first_ok = np.where((st >= 1).any(1), np.argmax(st >= 1, 1), never)
        order = np.lexsort((first_ok, first_memo))
        ax.imshow(st[order], aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=2)
        ax.set(title=f"lr {r.specs[i].lr:g}", xlabel="checkpoint (step)")
        ax.set_xticks(range(never), r.logs[i].step, fontsize=7, rotation=90)
    axes[0, 0].set_ylabel("train example")
    handles = [plt.matplotlib.patches.Patch(color=cmap(k), label=name) for k, name in enumerate(STATES)]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_r2_vs_p(a: Analysis):
    """Fig C.1: R² on y = x of pre-memorization accuracy against the threshold p (train accuracy for reference)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(P_GRID, a.curve, marker=".", label="pre-memorization train acc.")
    ax.axhline(a.r2_train, color="gray", ls=":", label=f"train acc. (R² {a.r2_train:.2f}, may lie below the axis)")
    ax.set(
        xlabel="memorization threshold p (target perplexity)",
        ylabel="R² on y = x",
        ylim=(max(-1.0, min(a.curve.min(), 0) - 0.05), 1.0),
        title="R² vs p",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_transfer(a: Analysis):
    """Figs C.2/C.3: R² on held-out runs at p calibrated on 1–3 runs, and on half the test set at p from the
    other half, each against the held-out data's own best R²."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for n, t in a.transfer_runs.items():
        axes[0].scatter(np.full(len(t), n) + np.linspace(-0.15, 0.15, len(t)), t[:, 0], s=12, label=f"{n} run(s)")
        axes[0].scatter([n], [t[:, 1].mean()], marker="_", s=400, color="k")
    axes[0].set(
        xticks=(1, 2, 3),
        xlabel="runs used to calibrate p",
        ylabel="R² on held-out runs (clipped at -1)",
        ylim=(-1.05, 1.0),
        title="p from a few runs (bar: held-out best)",
    )
    h = a.transfer_halves
    axes[1].scatter(h[:, 2], h[:, 1], s=14)
    lo = min(h[:, 1:].min(), 0)
    axes[1].plot([lo, 1], [lo, 1], "k--", lw=1)
    axes[1].set(
        xlabel="R² on half B at its own best p", ylabel="R² on half B at half A's p", title="p from half the test set"
    )
    fig.tight_layout()
    return fig


def plot_prior_metrics(a: Analysis):
    """Fig 4.5: test accuracy against each metric over all runs and checkpoints, with Pearson r."""
    keys = ("premem", "grad_var", "dist_init", "atc")
    fig, axes = plt.subplots(1, len(keys), figsize=(14, 3.6), sharey=True)
    for ax, key in zip(axes, keys):
        _scatter_by_lr(ax, a, key, 12)
        ax.set(xlabel=PRIORS[key], title=f"r = {a.correlations[key]:.2f}")
        if key in ("grad_var", "dist_init"):
            ax.set_xscale("log")
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
