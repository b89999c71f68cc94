"""The figures of the chapter "When predictions do not revert: simplicity bias meets the OCS"."""

from __future__ import annotations

import matplotlib.pyplot as plt

from steerlib.chapters.related.simplicity_bias.experiment import DISCRIMINATORS, LABELS, SETS, Results
from steerlib.measures.decisions import DEFAULT_REWARDS, RewardTable

COLOURS = dict(zip(SETS, ("black", "tab:green", "tab:red", "tab:blue")))
STYLES = dict(zip(SETS, ("-", "--", "-", "-")))  # S^c-randomized dashed: it lies on the clean curve when S is all


def plot_curves(results: Results) -> plt.Figure:
    """Test accuracy on every set after each epoch, one panel per model: the mean over the members (a line) and
    each member (faint)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True, constrained_layout=True)
    titles = {"ce": "cross-entropy classifier", "reward": "reward model (its best answer)"}
    for ax, (model, title) in zip(axes, titles.items()):
        curves = results.curves[results.curves["model"] == model]
        for name in SETS:
            one = curves[curves["set"] == name]
            for _, member in one.groupby("member"):
                ax.plot(member["epoch"], member["accuracy"], color=COLOURS[name], alpha=0.25, lw=0.8)
            mean = one.groupby("epoch")["accuracy"].mean()
            ax.plot(mean.index, mean.values, color=COLOURS[name], ls=STYLES[name], lw=2, label=LABELS[name])
        ax.set(title=title, xlabel="epoch", ylim=(0.4, 1.02))
    axes[0].set_ylabel("test accuracy")
    axes[1].legend(frameon=False, loc="center right")
    return fig


def plot_ood_vs_ocs(results: Results) -> plt.Figure:
    """Fig 2.3's axes for the four test sets: the classifier's mean KL to the OCS against the set's OOD score, one
    panel per discriminator; a small point per member, a large one for their mean."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True, constrained_layout=True)
    ce = results.table[results.table["model"] == "ce"]
    for ax, discriminator in zip(axes, DISCRIMINATORS):
        scores = results.ood[results.ood["discriminator"] == discriminator].set_index("set")["score"]
        for name in SETS:
            kl = ce.loc[ce["set"] == name, "distance"]
            ax.scatter([scores[name]] * len(kl), kl, color=COLOURS[name], s=10, alpha=0.4)
            ax.scatter(scores[name], kl.mean(), color=COLOURS[name], s=60, edgecolor="white", label=LABELS[name])
        ax.axvline(0.5, color="grey", lw=0.8, ls=":")
        ax.set(title=f"OOD score: {discriminator} discriminator", xlabel="OOD score (0.5: indistinguishable)")
        ax.set_xlim(min(0.45, scores.min() - 0.02), max(0.65, scores.max() + 0.02))  # room to see how near 0.5
    axes[0].set_ylabel("KL(prediction || OCS)")
    axes[0].legend(frameon=False, fontsize=8)
    return fig


def plot_decisions(results: Results, rewards: RewardTable = DEFAULT_REWARDS) -> plt.Figure:
    """The reward model's greedy policy on every set: abstain ratio and mean reward (bars: the mean over the members;
    points: each member), with the reward of answering at chance on two balanced classes and of always abstaining
    under ``rewards`` (the settings' table) marked."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    reward = results.table[results.table["model"] == "reward"]
    positions = range(len(SETS))
    for ax, column, label in zip(axes, ("abstain", "reward"), ("abstain ratio", f"mean reward ({rewards.label})")):
        for i, name in enumerate(SETS):
            values = reward.loc[reward["set"] == name, column]
            ax.bar(i, values.mean(), color=COLOURS[name], alpha=0.7)
            ax.scatter([i] * len(values), values, color="black", s=8, zorder=3)
        ax.set_xticks(list(positions), [LABELS[s] for s in SETS], rotation=15)
        ax.set_ylabel(label)
    axes[0].set_ylim(0, 1)
    chance = (rewards.correct + rewards.wrong) / 2
    axes[1].axhline(rewards.abstain, color="grey", lw=0.8, ls=":", label=f"always abstain ({rewards.abstain:g})")
    axes[1].axhline(chance, color="tab:red", lw=0.8, ls="--", label=f"answer at chance ({chance:g})")
    axes[1].legend(frameon=False, fontsize=8)
    return fig
