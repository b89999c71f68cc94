"""The figures of the chapter "Fitting before generalising: benign overfitting and grokking on XOR clusters"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from steerlib.chapters.related.xor_grokking.analysis import P_GRID, curve, points, runs
from steerlib.chapters.related.xor_grokking.experiment import Results
from steerlib.measures.premem import r2_curve

SERIES = {
    "clean": ("train, clean labels", "tab:blue"),
    "flipped": ("train, flipped labels", "tab:orange"),
    "test": ("test (clean labels)", "black"),
}


def plot_phases(results: Results) -> plt.Figure:
    """The paper's figure at the main grid point, one panel per step size: accuracy on the clean and the flipped
    training labels and clean test accuracy against step + 1 (log axis; step 0 is the initialisation), the mean over
    the replicates (a line) and each replicate (faint)."""
    d, signal, _ = results.main
    fig, axes = plt.subplots(
        1,
        len(results.step_sizes),
        figsize=(4.5 * len(results.step_sizes), 3.3),
        sharey=True,
        constrained_layout=True,
        squeeze=False,
    )
    for ax, alpha in zip(axes[0], results.step_sizes):
        c = curve(results, d, signal, alpha)
        for column, (label, colour) in SERIES.items():
            for _, one in c.groupby("replicate"):
                ax.plot(one["step"] + 1, one[column], color=colour, alpha=0.2, lw=0.8)
            mean = c.groupby("step")[column].mean()
            ax.plot(mean.index + 1, mean.values, color=colour, lw=2, label=label)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set(xscale="log", xlabel="step + 1", title=f"step size {alpha:g}", ylim=(0.3, 1.03))
    axes[0, 0].set_ylabel("accuracy")
    axes[0, -1].legend(frameon=False, fontsize=8, loc="lower right")
    fig.suptitle(rf"$d$ = {d:g}, $n\|\mu\|^2/d$ = {signal:g}", fontsize=10)
    return fig


def plot_share(results: Results) -> plt.Figure:
    """The share of the first layer's squared norm in span(mu_1, mu_2) against step + 1, for every grid point
    (colour: signal level; line style: dimension) at each step size (panels); means over the replicates."""
    c = results.curves
    dims, signals = sorted(c["d"].unique()), sorted(c["signal"].unique(), reverse=True)
    fig, axes = plt.subplots(
        1,
        len(results.step_sizes),
        figsize=(4.5 * len(results.step_sizes), 3.2),
        sharey=True,
        constrained_layout=True,
        squeeze=False,
    )
    colours = dict(zip(signals, ("tab:green", "tab:purple", "tab:brown", "tab:pink")))
    styles = dict(zip(dims, ("--", "-", ":", "-.")))
    for ax, alpha in zip(axes[0], results.step_sizes):
        for d in dims:
            for g in signals:
                mean = curve(results, d, g, alpha).groupby("step")["share"].mean()
                ax.plot(
                    mean.index + 1, mean.values, color=colours[g], ls=styles[d], label=f"d={d:g}, n||mu||^2/d={g:g}"
                )
        ax.set(xscale="log", yscale="log", xlabel="step + 1", title=f"step size {alpha:g}")
    axes[0, 0].set_ylabel(r"share of the first layer in span($\mu_1, \mu_2$)")
    axes[0, -1].legend(frameon=False, fontsize=7)
    return fig


def plot_premem(results: Results) -> plt.Figure:
    """Pre-memorization train accuracy against test accuracy at every checkpoint of every replicate, at the p of the
    grid with the best R^2 on y = x (pooled over the replicates), one panel per step size: sampled accuracy at T = 1
    (filled) and argmax accuracy (open), with the line y = x."""
    fig, axes = plt.subplots(
        1, len(results.step_sizes), figsize=(4.2 * len(results.step_sizes), 3.6), constrained_layout=True, squeeze=False
    )
    n = len(next(iter(results.examples.values()))["test"])
    for ax, alpha in zip(axes[0], results.step_sizes):
        for accuracy, fill in (("sampled", "tab:red"), ("argmax", "none")):
            pooled = [run for r in range(n) for run in runs(results, alpha, r, accuracy)]
            p = P_GRID[int(np.nanargmax(r2_curve(pooled, P_GRID)))]
            x = np.concatenate([points(results, alpha, r, accuracy, p)[0] for r in range(n)])
            y = np.concatenate([points(results, alpha, r, accuracy, p)[1] for r in range(n)])
            ax.scatter(x, y, s=18, facecolor=fill, edgecolor="tab:red", label=f"{accuracy} (p = {p:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="y = x")
        ax.set(
            xlim=(-0.02, 1.02), ylim=(0.3, 1.02), xlabel="pre-memorization train accuracy", title=f"step size {alpha:g}"
        )
        ax.legend(frameon=False, fontsize=8, loc="lower right")
    axes[0, 0].set_ylabel("test accuracy")
    return fig
