"""The cautious-decisions chapter's figures: Fig 2.5 (actions under shift), Figs 2.6-2.7 (methods) and steering."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from steerlib.chapters.extrapolation.cautious_decisions.analysis import curves
from steerlib.chapters.extrapolation.cautious_decisions.experiment import METHODS, FocusKey, Results
from steerlib.measures.decisions import greedy_policy
from steerlib.vision.shifts import with_clean

METHOD_LABELS = {
    "reward": "reward prediction (MSE)",
    "ce": "standard classification (CE)",
    "calibrated": "CE + temperature fit on clean data",
    "oracle": "oracle: CE + temperature fit on the evaluation set",
}
COLORS = {"reward": "C0", "ce": "C3", "calibrated": "C2", "oracle": "0.3"}


def plot_actions(results: Results, dataset: str, rewards: str) -> plt.Figure:
    """Fig 2.5: mean predicted reward per action (top) and the chosen actions (bottom) per severity, then the OCS."""
    f = results.focus[FocusKey(dataset, rewards)]
    pred = f.predictions  # (E, L, N, K+1)
    n_levels, n_actions = pred.shape[1], pred.shape[-1]
    names = [str(c) for c in range(n_actions - 1)] + ["A"]
    fig, axes = plt.subplots(2, n_levels + 1, figsize=(2.1 * (n_levels + 1), 4.4), sharey="row")
    panels = [
        (
            f"level {lv}\n(severity {s:g})",
            pred[:, lv].mean((0, 1)),
            torch.bincount(greedy_policy(pred[:, lv]).flatten(), minlength=n_actions) / pred[:, lv, :, 0].numel(),
        )
        for lv, s in enumerate(f.severities)
    ]
    panels.append(("OCS", f.ocs, torch.nn.functional.one_hot(torch.tensor(f.ocs_action), n_actions).float()))
    for j, (title, mean_pred, hist) in enumerate(panels):
        color = "k" if title == "OCS" else "C0"
        axes[0, j].bar(names, mean_pred.numpy(), color=color)
        axes[0, j].axhline(0, color="0.5", lw=0.6)
        axes[0, j].set_title(title, fontsize=9)
        axes[1, j].bar(names, hist.numpy(), color=color)
        for ax in axes[:, j]:
            ax.tick_params(axis="x", labelsize=6)
        axes[1, j].set_xlabel("action")
    axes[0, 0].set_ylabel("mean predicted reward")
    axes[1, 0].set_ylabel("fraction of actions")
    axes[1, 0].set_ylim(0, 1)
    fig.suptitle(f"{dataset}, class {f.focus_class} under {f.shift}: reward model with rewards {rewards}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_methods(results: Results, metric: str, rewards: str) -> plt.Figure:
    """Figs 2.6-2.7: ``metric`` ("abstain" or "reward") per severity level, one panel per (dataset, shift)."""
    c = curves(results.table)
    c = c[c["rewards"] == rewards]
    datasets, shifts = list(c["dataset"].unique()), list(c["shift"].unique())
    fig, axes = plt.subplots(
        len(datasets), len(shifts), figsize=(3.2 * len(shifts), 2.8 * len(datasets)), squeeze=False, sharex=True
    )
    for i, d in enumerate(datasets):
        for j, s in enumerate(shifts):
            ax = axes[i, j]
            for m in METHODS:
                g = c[(c["dataset"] == d) & (c["shift"] == s) & (c["method"] == m)]
                ax.errorbar(
                    g["level"],
                    g[(metric, "mean")],
                    yerr=g[(metric, "std")].fillna(0),
                    marker="o",
                    ms=3,
                    capsize=2,
                    color=COLORS[m],
                    label=METHOD_LABELS[m],
                )
            ax.set_title(f"{d} / {s}", fontsize=9)
            ax.set_xticks(range(6), ["0 (t)", "1", "2", "3", "4", "5"])
            if i == len(datasets) - 1:
                ax.set_xlabel("shift severity level")
            if j == 0:
                ax.set_ylabel("abstain ratio" if metric == "abstain" else "mean reward")
    fig.suptitle(
        f"rewards {rewards}; error bars: std over replicates; (t) = held-out training distribution", fontsize=10
    )
    fig.tight_layout()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4 if len(shifts) > 2 else 2, fontsize=8
    )
    return fig


def plot_steering(results: Results) -> plt.Figure:
    """The reward model's abstain ratio per severity level (mean over shifts; std over replicates), one line per
    table."""
    t = with_clean(results.table[results.table["method"] == "reward"])
    per_replicate = t.groupby(["dataset", "rewards", "level", "replicate"])["abstain"].mean().reset_index()
    datasets = list(per_replicate["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        for k, label in enumerate(results.tables):
            g = per_replicate[(per_replicate["dataset"] == d) & (per_replicate["rewards"] == label)]
            stats = g.groupby("level")["abstain"].agg(["mean", "std"])
            ax.errorbar(
                stats.index,
                stats["mean"],
                yerr=stats["std"].fillna(0),
                marker="o",
                ms=3,
                capsize=2,
                color=f"C{k}",
                label=f"rewards {label} (threshold {results.tables[label].threshold:.2f})",
            )
        ax.set_title(d, fontsize=9)
        ax.set_xlabel("shift severity level (mean over shifts)")
        ax.set_ylabel("abstain ratio of reward prediction")
        ax.set_ylim(-0.03, 1.03)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
