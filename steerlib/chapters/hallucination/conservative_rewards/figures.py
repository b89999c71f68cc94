"""The chapter's figures: the method and the reward models' training data (Fig 3.5), reward-model bias (3.6),
fraction of true facts per policy (3.7), true and false facts by familiarity (3.8) and the RL training curves. Bins
are drawn from most to least mentioned: people grow unfamiliar to the right."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from steerlib.chapters.hallucination.conservative_rewards.analysis import (
    balanced_auroc,
    bin_means,
    fraction_true,
    generator_accuracy,
    per_person,
)
from steerlib.chapters.hallucination.conservative_rewards.experiment import Results

LABELS = {
    "sft": "SFT",
    "standard": "RL + standard RM",
    "conservative": "RL + conservative RM",
    "oracle": "RL + oracle reward",
    "count": "RL + count-true reward",
}


def _bin_axis(ax, bins) -> None:
    ax.set_xticks(range(len(bins)), [str(b) for b in bins[::-1]])
    ax.set_xlabel("mentions in pretraining corpus (→ unfamiliar)")


def plot_method(r: Results) -> plt.Figure:
    """Fig 3.5: the recipe as a diagram, and the fraction of true facts in each reward model's training data."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [1.5, 1]})
    ax = axes[0]
    ax.set_axis_off()
    boxes = {
        "pre": (0.08, 0.5, "pretrained LM"),
        "sft": (0.3, 0.5, "SFT model"),
        "gen": (0.3, 0.9, "independent generator\n(right about everyone)"),
        "own": (0.3, 0.1, "SFT model's own\nsamples"),
        "std": (0.72, 0.9, "standard RM"),
        "con": (0.72, 0.1, "conservative RM"),
        "rl": (0.92, 0.5, "RL from SFT"),
    }
    for x, y, text in boxes.values():
        ax.text(
            x, y, text, ha="center", va="center", fontsize=9, bbox={"boxstyle": "round", "fc": "#eef", "ec": "#557"}
        )
    arrows = (
        ("pre", "sft", ""),
        ("sft", "own", ""),
        ("gen", "std", "labels: exact checker"),
        ("own", "con", "labels: exact checker"),
        ("std", "rl", "reward"),
        ("con", "rl", "reward"),
        ("sft", "rl", "init"),
    )
    for a, b, label in arrows:
        (x0, y0, _), (x1, y1, _) = boxes[a], boxes[b]
        ax.annotate(
            "", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "->", "color": "#557", "shrinkA": 28, "shrinkB": 28}
        )
        if label:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.04, label, ha="center", fontsize=7, color="#557")
    ax.set_title("reward = Σ over facts of +2·p(true) − 3·(1 − p(true))", fontsize=10)
    x = np.arange(len(r.bins))
    for name, color in (("standard", "C0"), ("conservative", "C1")):
        if name in r.rm_data:
            axes[1].plot(
                x,
                generator_accuracy(r, name)[::-1],
                marker="o",
                color=color,
                label=f"{name} RM data" + (" (generator)" if name == "standard" else " (SFT samples)"),
            )
    axes[1].set(ylim=(0, 1.02), ylabel="fraction of true facts", title="What each reward model learns from")
    _bin_axis(axes[1], r.bins)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_rm_bias(r: Results) -> plt.Figure:
    """Fig 3.6: each reward model's predicted minus true reward of the SFT model's samples (±95% CI over people),
    and on balanced true/false clauses its AUROC and its accuracy at p = 0.5, by familiarity."""
    pp, x = per_person(r), np.arange(len(r.bins))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, color in (("standard", "C0"), ("conservative", "C1")):
        if name not in r.reward_models:
            continue
        bias = pp.values[f"rm-{name}", "bias"]
        mean = bin_means(pp, (f"rm-{name}", "bias"), r.bins)
        se = np.array([bias[pp.mentions == b].std(ddof=1) / np.sqrt((pp.mentions == b).sum()) for b in r.bins])
        axes[0].errorbar(x, mean[::-1], 1.96 * se[::-1], marker="o", capsize=3, color=color, label=f"{name} RM")
        axes[1].plot(x, balanced_auroc(r, name)[::-1], marker="o", color=color, label=f"{name} RM: AUROC")
        accuracy = bin_means(pp, (f"rm-{name}", "balanced"), r.bins)
        axes[1].plot(x, accuracy[::-1], marker=".", ls="--", color=color, alpha=0.6, label=f"{name} RM: accuracy")
    axes[0].axhline(0, color="k", lw=0.8)
    axes[0].set(ylabel="predicted − true reward", title="Reward-model bias on SFT samples (±95% CI)")
    axes[1].axhline(0.5, color="k", lw=0.8, ls=":")
    axes[1].set(
        ylabel="AUROC / accuracy at p = 0.5",
        ylim=(0.3, 1.02),
        title="Balanced true/false clauses (dotted: chance)",
    )
    for ax in axes:
        _bin_axis(ax, r.bins)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_fraction_true(r: Results) -> plt.Figure:
    """Fig 3.7: the fraction of true facts of every policy over all held-out people."""
    pp = per_person(r)
    names = list(r.policies)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    values = [fraction_true(pp, n) for n in names]
    ax.bar(range(len(names)), values, color=[f"C{i}" for i in range(len(names))])
    for i, v in enumerate(values):
        ax.text(i, v + 0.01, f"{v:.2f}", ha="center", fontsize=9)
    ax.set_xticks(range(len(names)), [LABELS[n] for n in names], rotation=20, ha="right", fontsize=8)
    ax.set(ylim=(0, 1), ylabel="fraction of true facts", title="Fraction of true facts (all held-out people)")
    fig.tight_layout()
    return fig


def plot_facts(r: Results) -> plt.Figure:
    """Fig 3.8: true facts, false facts and facts per response by familiarity, for every policy."""
    pp, x = per_person(r), np.arange(len(r.bins))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), sharey=True)
    for i, name in enumerate(r.policies):
        for ax, quantity in zip(axes, ("true", "false", "length")):
            ax.plot(
                x,
                bin_means(pp, (name, quantity), r.bins)[::-1],
                marker="o",
                color=f"C{i}",
                ls="--" if name in ("oracle", "count") else "-",
                label=LABELS[name],
            )
    for ax, title in zip(axes, ("true facts per response", "false facts per response", "facts per response")):
        ax.set_title(title)
        _bin_axis(ax, r.bins)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_training(r: Results) -> plt.Figure:
    """Each RL run's mean reward (its own reward) and KL to the SFT model per step."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for i, (name, history) in enumerate(r.rl_history.items()):
        for ax, key in zip(axes, ("reward", "kl")):
            ax.plot([h[key] for h in history], color=f"C{i + 1}", label=LABELS[name], lw=1)
    axes[0].set(xlabel="RL step", ylabel="mean reward (each run's own)", title="RL reward")
    axes[1].set(xlabel="RL step", ylabel="KL to SFT (nats per response)", title="KL")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
