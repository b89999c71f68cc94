"""The chapter's figures: the accuracy drop per bin (Fig 4.7) and test accuracy against added examples (Fig 4.8)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from steerlib.chapters.reasoning.robustness_and_curation.analysis import EDGES, bin_labels, curves, robust_table
from steerlib.chapters.reasoning.robustness_and_curation.experiment import Results

LABELS = {"premem": "pre-memorization (Alg. 1)", "iid": "i.i.d.", "ifd": "IFD", "heuristic": "most events"}


def plot_drop(r: Results):
    """Fig 4.7: the per-example accuracy drop under a forced opening, in bins of pre-memorization accuracy (left)
    and, as a control, of plain train accuracy (right); boxes over examples, every replicate pooled."""
    tab = pd.concat([robust_table(x) for x in (r, *r.others)], ignore_index=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    names = bin_labels()
    for ax, key, title in zip(axes, ("premem", "train_acc"), ("pre-memorization accuracy", "train accuracy")):
        which = np.clip(np.searchsorted(EDGES, tab[key], side="right") - 1, 0, len(EDGES) - 2)
        groups = [tab["drop"][which == b].to_numpy() for b in range(len(EDGES) - 1)]
        ax.boxplot([g if len(g) else [np.nan] for g in groups], showmeans=True)
        ax.set_xticks(range(1, len(names) + 1), [f"{n}\nn={len(g)}" for n, g in zip(names, groups)], fontsize=8)
        ax.axhline(0, color="k", lw=0.8)
        ax.set(xlabel=f"{title} (bin)", title=f"drop by {title}")
    axes[0].set_ylabel("accuracy drop (unperturbed - perturbed)")
    fig.tight_layout()
    return fig


def plot_curation(r: Results):
    """Fig 4.8: mean test accuracy against the number of added examples for each method; the band spans the
    replicates' values."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, acc in curves(r).items():
        (line,) = ax.plot(r.added, acc.mean(0), marker="o", label=LABELS[method])
        ax.fill_between(r.added, acc.min(0), acc.max(0), color=line.get_color(), alpha=0.15)
    ax.set(xlabel="added training examples", ylabel="test accuracy", title=f"{len(r.others) + 1} replicate(s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
