"""The chapter's figures: the gate check and familiarity metrics, option distributions (Figs 3.3, 3.4) and E3's
answer rates (Fig 3.1). Bins are drawn from most to least mentioned: inputs grow unfamiliar to the right."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from steerlib.chapters.hallucination.unfamiliar_examples.analysis import GRADES, bin_stats, binned
from steerlib.chapters.hallucination.unfamiliar_examples.experiment import Results
from steerlib.worlds.knowledge import ATTRIBUTES, LETTERS


def _bin_axis(ax, bins, xlabel: bool = True) -> None:
    """Bins left to right from most to least mentioned: inputs grow unfamiliar to the right (as in the thesis)."""
    ax.set_xticks(range(len(bins)), [str(b) for b in bins[::-1]])
    if xlabel:
        ax.set_xlabel("mentions in pretraining corpus (→ unfamiliar)")


def plot_familiarity(r: Results) -> plt.Figure:
    """Gate check (QA accuracy per attribute vs mentions) and familiarity metrics (b), (c) vs mentions."""
    bins, x = r.bins, np.arange(len(r.bins))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for a, values in ATTRIBUTES.items():
        sel = r.gate.attribute == a
        acc = bin_stats(r.gate.grade[sel] == 1, r.gate.mentions[sel], bins)[0]
        (line,) = axes[0].plot(x, acc[::-1], marker="o", label=a)
        axes[0].axhline(1 / len(values), color=line.get_color(), ls=":", lw=1)
    axes[0].set(ylabel="held-out QA accuracy", ylim=(0, 1.02), title="Gate: standard SFT (dotted: chance)")
    axes[0].legend()
    f = r.familiarity
    for values, mentions, label in (
        (f.option_nll, f.mentions, "(b) pretrained NLL of correct option"),
        (f.answer_nll, f.qa_mentions, "(c) SFT NLL of its top answer"),
    ):
        mean, std = bin_stats(values, mentions, bins)
        axes[1].errorbar(x, mean[::-1], std[::-1], marker="o", capsize=3, label=label)
    axes[1].set(ylabel="NLL (finetuning questions)", yscale="symlog", title="Familiarity metrics (appendix B.1)")
    axes[1].legend(fontsize=8)
    for ax in axes:
        _bin_axis(ax, bins)
    fig.tight_layout()
    return fig


def plot_option_distributions(
    probs: dict[str, np.ndarray], labels: np.ndarray, mentions: np.ndarray, bins, title: str
) -> plt.Figure:
    """Rows: models; columns: true label A–D; lines: mean predicted probability of each option ± std vs mentions."""
    rows = list(probs)
    n_options = next(iter(probs.values())).shape[1]
    fig, axes = plt.subplots(len(rows), 4, figsize=(13, 2.7 * len(rows)), sharey=True, squeeze=False)
    x = np.arange(len(bins))
    for i, name in enumerate(rows):
        for j in range(4):
            ax, sel = axes[i, j], labels == j
            mean, std = bin_stats(probs[name][sel], mentions[sel], bins)
            for k in range(n_options):
                ax.errorbar(x, mean[::-1, k], std[::-1, k], marker="o", ms=3, capsize=2, label=LETTERS[k])
            ax.set_ylim(0, 1)
            _bin_axis(ax, bins, xlabel=False)
            if i == 0:
                ax.set_title(f"true answer {LETTERS[j]}")
        axes[i, 0].set_ylabel(f"{name}\npredicted probability")
    axes[0, -1].legend(title="option", fontsize=8)
    fig.suptitle(title)
    fig.supxlabel("mentions in pretraining corpus (→ unfamiliar)")
    fig.tight_layout()
    return fig


def plot_idk(r: Results) -> plt.Figure:
    """E3: rates of correct, false and "I don't know" answers vs mentions, standard vs relabelled SFT."""
    b, x = binned(r), np.arange(len(r.bins))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, m in zip(axes, ("standard", "relabelled")):
        rates = b.e3_rates[m]
        for k in (1, 0, 2):
            ax.plot(x, rates[::-1, k], marker="o", label=GRADES[k])
        ax.set(title=f"{m} SFT (selective accuracy {b.e3_selective[m]:.2f})", ylim=(0, 1.02))
        _bin_axis(ax, r.bins)
    axes[0].set_ylabel("fraction of held-out answers")
    axes[0].legend()
    fig.tight_layout()
    return fig
