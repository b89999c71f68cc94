"""The chapter's figures: accuracy against three familiarity measures (two where the source has no population),
answer rates of the two finetuned models (Fig 3.1) and the answer distributions behind the hedge (where answers
repeat). Familiarity bins run from familiar (left) to unfamiliar (right), as in the dissertation."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from steerlib.chapters.hallucination.real_facts.analysis import (
    GRADES,
    bin_labels,
    distribution,
    has_population,
    hedge_answers,
    hedge_kinds,
    hedges,
    kinds,
    levels,
    rates,
    selective_accuracy,
)
from steerlib.chapters.hallucination.real_facts.experiment import STAGES, Results


def _quantile_means(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean x and mean y in ``n`` equal-count bins of x."""
    order = np.argsort(x, kind="stable")
    groups = [g for g in np.array_split(order, min(n, len(x))) if len(g)]
    return np.array([x[g].mean() for g in groups]), np.array([y[g].mean() for g in groups])


def plot_familiarity(r: Results, n_bins: int = 4) -> plt.Figure:
    """Held-out accuracy after standard SFT (solid) and the base model's few-shot accuracy (dashed) against each
    familiarity measure (population only where the source has one), one line per kind of question."""
    measures = ((("population (log10)", np.log10(r.population)),) if has_population(r) else ()) + (
        ("base sampled accuracy", r.base_accuracy),
        ("base NLL of the answer", r.base_nll),
    )
    fig, axes = plt.subplots(1, len(measures), figsize=(13 * len(measures) / 3, 3.6), sharey=True)
    for ax, (label, x) in zip(axes, measures):
        for kind in kinds(r):
            sel = r.test & (r.kind == kind)
            xs, acc = _quantile_means(x[sel], (r.grades["standard"][sel] == 1).astype(float), n_bins)
            (line,) = ax.plot(xs, acc, marker="o", label=f"{kind}: after SFT")
            xs, acc = _quantile_means(x[sel], (r.base_grade[sel] == 1).astype(float), n_bins)
            ax.plot(xs, acc, ls="--", marker=".", color=line.get_color(), label=f"{kind}: base, few-shot")
        ax.set(xlabel=label)
    axes[-1].invert_xaxis()
    axes[0].set(ylabel="accuracy on test questions", ylim=(-0.02, 1.02))
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"What the base model knows, by {len(measures)} familiarity measures (means over equal-count bins per "
        f"kind){'' if has_population(r) else '; population: not available for this source'}"
    )
    fig.tight_layout()
    return fig


def plot_relabelling(r: Results) -> plt.Figure:
    """Rates of correct, false and "I don't know" answers to test questions by familiarity bin, standard vs
    relabelled SFT (the dissertation's Fig 3.1)."""
    bins, level = r.bins, levels(r, r.bins)
    labels, x = bin_labels(r, bins), np.arange(bins)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, m in zip(axes, STAGES):
        rr = rates(r.grades[m][r.test], level[r.test], bins)
        for k in (1, 0, 2):
            ax.plot(x, rr[::-1, k], marker="o", label=GRADES[k])
        ax.set(title=f"{m} SFT (selective accuracy {selective_accuracy(r.grades[m][r.test]):.2f})", ylim=(0, 1.02))
        ax.set_xticks(x, labels[::-1], fontsize=8)
        ax.set_xlabel("base model's NLL of the answer (→ unfamiliar)")
    axes[0].set_ylabel("fraction of test answers")
    axes[0].legend()
    fig.tight_layout()
    return fig


def plot_hedge(r: Results, top: int = 8) -> plt.Figure:
    """For each kind with repeated answers: the answer distributions of the familiar and the unfamiliar finetuning
    questions (the hedge), and of the false answers to unfamiliar test questions before and after standard SFT. A
    source without such kinds gets a figure that says so."""
    if not hedge_kinds(r):
        fig, ax = plt.subplots(figsize=(8, 1.2))
        ax.text(
            0.5,
            0.5,
            "No hedge to plot: no kind of question in this source has answers that repeat.",
            ha="center",
            va="center",
        )
        ax.axis("off")
        return fig
    fig, axes = plt.subplots(1, len(hedge_kinds(r)), figsize=(13, 3.8))
    test = np.flatnonzero(r.test)
    for ax, kind in zip(np.atleast_1d(axes), hedge_kinds(r)):
        h, said = hedges(r, kind), hedge_answers(r, kind, test)
        dists = {
            "familiar finetuning answers": h["familiar"],
            "unfamiliar finetuning answers (hedge)": h["unfamiliar"],
            f"base model's false answers (n={len(said['base'])})": distribution(said["base"]),
            f"SFT model's false answers (n={len(said['standard'])})": distribution(said["standard"]),
        }
        mass: dict[str, float] = {}
        for d in dists.values():
            for a, p in d.items():
                mass[a] = mass.get(a, 0.0) + p
        names = sorted(mass, key=lambda a: -mass[a])[:top]
        width = 0.8 / len(dists)
        for j, (label, d) in enumerate(dists.items()):
            values = [d.get(a, 0.0) for a in names] + [1 - sum(d.get(a, 0.0) for a in names) if d else 0.0]
            ax.bar(np.arange(len(names) + 1) + j * width, values, width, label=label)
        ax.set_xticks(
            np.arange(len(names) + 1) + 0.4 - width / 2, [*names, "other"], rotation=40, ha="right", fontsize=8
        )
        ax.set(title=f"{kind} questions", xlabel="answer", ylabel="share of answers")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
