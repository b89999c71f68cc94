"""The figures of the chapter "Hedge or overshadowing? Where wrong answers about rare facts come from"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from steerlib.chapters.related.knowledge_overshadowing.analysis import (
    SPECS,
    mean_curve,
    overshadowed,
    pooled_errors,
    rare_accuracy,
)
from steerlib.chapters.related.knowledge_overshadowing.experiment import Results, RunSpec

PAPER_H = {10: 0.785, 25: 0.862, 50: 0.963, 100: 1.0}  # the paper's Table 3 (Llama-2-7B), as the spec quotes it


def _finals(results: Results, specs: list[RunSpec], fn) -> np.ndarray:
    """(replicates, runs) ``fn(log, G)`` at the end of each run of ``specs``."""
    return np.array([[fn(r.logs[p.name], r.groups)[-1] for p in specs] for r in [results, *results.others]])


def _sweep(ax, x, values: np.ndarray, label: str) -> None:
    """Each replicate's points and the replicates' mean."""
    for row in values:
        ax.plot(x, row, "o", color="0.6", ms=4, alpha=0.7)
    ax.plot(x, values.mean(0), "o-", color="C3", lw=2, label=label)


def plot_sweeps(results: Results) -> plt.Figure:
    """H against the imbalance ratio (with the extra ratio and the paper's values) and against the shared-condition
    length, at the end of each run: replicates in grey, their mean in red."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True, constrained_layout=True)
    ratios = [*results.ratio_sweep, results.extra_run]
    _sweep(left, [p.ratio for p in ratios], _finals(results, ratios, overshadowed), "this chapter (mean)")
    left.plot(list(PAPER_H), list(PAPER_H.values()), "s--", color="k", mfc="none", label="paper, Llama-2-7B")
    left.set(
        xscale="log",
        xlabel="imbalance ratio r (popular : rare copies)",
        ylabel="H (rare queries answered\nwith the group's popular answer)",
        title=f"L = {results.ratio_sweep[0].length}",
    )
    left.legend(frameon=False, fontsize=8)
    lengths = results.length_sweep
    _sweep(right, [p.length for p in lengths], _finals(results, lengths, overshadowed), "mean")
    right.set(xscale="log", xlabel="shared-condition length L (words)", title=f"r = {lengths[0].ratio:g}")
    right.set_xticks([p.length for p in lengths], [str(p.length) for p in lengths])
    right.xaxis.set_minor_formatter(plt.NullFormatter())
    left.set_ylim(-0.05, 1.05)
    return fig


def plot_over_training(results: Results) -> plt.Figure:
    """H and rare-fact accuracy against the step of each run of the ratio sweep (means over the replicates)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharex=True, constrained_layout=True)
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(results.ratio_sweep)))
    for spec, colour in zip(results.ratio_sweep, colours):
        for ax, fn in zip(axes, (overshadowed, rare_accuracy)):
            ax.plot(
                results.logs[spec.name].step,
                mean_curve(results, spec.name, fn),
                "o-",
                color=colour,
                label=f"r = {spec.ratio:g}",
            )
    axes[0].set_ylabel("H")
    axes[1].set_ylabel("rare-fact accuracy")
    gate = next(s.threshold for s in SPECS if s.id == "R3p/gate")
    axes[1].axhline(gate, color="k", ls=":", lw=1, label="gate (r = 1)")
    for ax in axes:
        ax.set_xlabel("optimizer step")
        ax.set_ylim(-0.05, 1.05)
    axes[1].legend(frameon=False, fontsize=8)
    return fig


def plot_errors(results: Results) -> plt.Figure:
    """Where the wrong rare answers go, at the first checkpoint and at the end of each run of the ratio sweep: the
    group's own popular answer, the most frequent wrong answer (the global mode: what a hedge gives) or another
    answer, pooled over the replicates (above each bar: the number of errors)."""
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.3), sharey=True, constrained_layout=True)
    parts = ("own popular", "global mode", "other")
    specs = [*results.ratio_sweep, results.extra_run]
    for ax, at in zip(axes, (0, -1)):
        for i, spec in enumerate(specs):
            pooled = pooled_errors(results, spec.name, at)
            bottom = 0.0
            for part, colour in zip(parts, ("C3", "C0", "0.7")):
                ax.bar(i, pooled[part], bottom=bottom, color=colour, label=part if i == 0 else None)
                bottom += pooled[part]
            ax.text(i, 1.02, f"{pooled['errors']}", ha="center", fontsize=8)
        ax.set_xticks(range(len(specs)), [f"r = {p.ratio:g}" for p in specs])
        ax.set_title("first checkpoint" if at == 0 else "end of training")
    axes[0].set(ylabel="share of wrong rare answers", ylim=(0, 1.12))
    axes[1].legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    return fig
