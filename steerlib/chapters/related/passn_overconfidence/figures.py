"""The figures of the chapter "Overconfidence or memorisation? pass@N under cross-entropy and DCO"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from steerlib.chapters.related.passn_overconfidence.analysis import pass_curve
from steerlib.chapters.related.passn_overconfidence.experiment import Results


def _mean(results: Results, name: str, fn) -> tuple[np.ndarray, np.ndarray]:
    """Steps and the mean over the replicates of ``fn(log)`` for run ``name`` (NaN where every replicate is NaN)."""
    logs = [r.logs[name] for r in [results, *results.others]]
    values = np.array([fn(g) for g in logs], dtype=float)
    mean = np.full(values.shape[1], np.nan)
    seen = ~np.isnan(values).all(0)
    mean[seen] = np.nanmean(values[:, seen], axis=0)
    return logs[0].step, mean


def _step_axis(ax, steps: np.ndarray) -> None:
    """A log axis of optimizer steps labelled at the checkpoints."""
    ax.set_xscale("log")
    ax.set_xticks(steps, [str(int(s)) for s in steps])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("optimizer step")


def plot_pass_over_checkpoints(results: Results) -> plt.Figure:
    """The paper's headline plot: pass@k for k = 1 .. k_max against the step of each run (colour: k), means over
    the replicates."""
    names = list(results.logs)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.3), sharey=True, constrained_layout=True)
    colours = plt.cm.viridis(np.linspace(0, 0.9, results.k_max))
    for ax, name in zip(np.atleast_1d(axes), names):
        for k in range(1, results.k_max + 1):
            steps, curve = _mean(results, name, lambda g, k=k: pass_curve(g, results.samples, k))
            ax.plot(
                steps,
                curve,
                color=colours[k - 1],
                lw=2 if k in (1, results.k_max) else 0.8,
                label=f"k = {k}" if k in (1, results.k_max) else None,
            )
        _step_axis(ax, steps)
        ax.set_title(name)
        ax.legend(frameon=False, fontsize=8)
    np.atleast_1d(axes)[0].set_ylabel("test pass@k")
    return fig


def plot_final_pass(results: Results) -> plt.Figure:
    """pass@k against k at the end of each run (means over the replicates)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.3), constrained_layout=True)
    ks = np.arange(1, results.k_max + 1)
    for name in results.logs:
        finals = np.array(
            [[pass_curve(r.logs[name], results.samples, k)[-1] for k in ks] for r in [results, *results.others]]
        )
        ax.plot(ks, finals.mean(0), marker="o", ms=3, label=name)
    ax.set(xscale="log", xlabel="k (samples)", ylabel="test pass@k at the last step")
    ax.set_xticks(ks, [str(k) if k in (1, 2, 4, 8, 16, 32, 64) else "" for k in ks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.legend(frameon=False)
    return fig


def plot_modal_and_memorized(results: Results) -> plt.Figure:
    """Under CE: the modal answer's share on the test problems still wrong at the end, and the memorized fraction of
    the training traces, against the step (means over the replicates)."""
    fig, ax = plt.subplots(figsize=(4.8, 3.3), constrained_layout=True)

    def modal(g):
        wrong = g.correct[-1] == 0
        return g.modal[:, wrong].mean(1) if wrong.any() else np.full(len(g.step), np.nan)

    for name, style in (("ce", "-"), ("dco", "--")):
        steps, share = _mean(results, name, modal)
        ax.plot(steps, share, color="tab:red", ls=style, label=f"modal-answer share, wrong problems ({name})")
        steps, memorized = _mean(results, name, lambda g: g.memorized)
        ax.plot(steps, memorized, color="tab:blue", ls=style, label=f"memorized training traces ({name})")
    _step_axis(ax, steps)
    ax.set(ylabel="share", ylim=(0, 1.02))
    ax.legend(frameon=False, fontsize=7)
    return fig
