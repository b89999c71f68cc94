"""The reversion chapter's figures: Fig 2.2 (average predictions under shift, as a static slider and a live widget)
and Fig 2.3."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from steerlib.chapters.extrapolation.reversion.analysis import average_prediction, curves, gaussian_mixture_density
from steerlib.chapters.extrapolation.reversion.experiment import FocusKey, Results, Settings
from steerlib.core.figures import frame_slider

LOSS_LABELS = {
    "ce": "cross-entropy: KL to label marginal",
    "mse_reward": "MSE reward: squared distance to OCS",
    "gaussian_nll": "Gaussian NLL: KL to OCS Gaussian",
}


def plot_reversion(results: Results) -> plt.Figure:
    """Fig 2.3 analogue: OOD score (x) vs distance to the OCS (y), one panel per loss x dataset, a line per shift.

    Points are replicate means with one-standard-deviation bars; the star is the clean held-out test split.
    """
    c = curves(results.table)
    losses, datasets = list(dict.fromkeys(c["loss"])), list(dict.fromkeys(c["dataset"]))
    fig, axes = plt.subplots(
        len(losses),
        len(datasets),
        figsize=(4.2 * len(datasets), 3.2 * len(losses)),
        squeeze=False,
        constrained_layout=True,
    )
    for i, loss in enumerate(losses):
        for j, name in enumerate(datasets):
            ax = axes[i, j]
            sub = c[(c["loss"] == loss) & (c["dataset"] == name)]
            for shift, g in sub.groupby("shift", sort=False):
                ax.errorbar(
                    g[("ood_score", "mean")],
                    g[("distance", "mean")],
                    yerr=g[("distance", "std")],
                    marker="o",
                    ms=4,
                    capsize=2,
                    label=shift,
                )
            clean = sub[sub["level"] == 0].iloc[0]
            ax.plot(
                clean[("ood_score", "mean")], clean[("distance", "mean")], "r*", ms=14, label="held-out train dist."
            )
            ax.set_xlabel("OOD score")
            ax.set_ylabel(LOSS_LABELS[loss].split(": ")[1])
            ax.set_title(f"{name} - {loss}")
    axes[0, -1].legend(fontsize=8)
    return fig


def _draw_focus_column(ax_ce, ax_g, results: Results, dataset: str, shift: str, level: int | None) -> None:
    """Draw level ``level``'s average prediction (or the OCS when level is None) on two axes."""
    grid = torch.linspace(-5, 5, 300)  # the slant target, standardised: its OCS is close to N(0, 1)
    f = results.focus.get(FocusKey(dataset, "ce", shift))
    if f is not None:
        probs = f.ocs if level is None else average_prediction(f.predictions[:, level])
        ax_ce.bar(range(len(probs)), probs.numpy(), color="tab:orange" if level is None else "tab:blue")
        ax_ce.set_ylim(0, 1)
        ax_ce.set_xticks(range(len(probs)))
        ax_ce.set_xlabel("class")
    f = results.focus.get(FocusKey(dataset, "gaussian_nll", shift))
    if f is not None:
        if level is None:
            mu, var = f.ocs
            dens = torch.exp(-((grid - mu) ** 2) / (2 * var)) / (2 * torch.pi * var) ** 0.5
        else:
            dens = gaussian_mixture_density(f.predictions[:, level], grid)
        ax_g.plot(grid.numpy(), dens.numpy(), color="tab:orange" if level is None else "tab:blue")
        ax_g.set_xlabel("predicted slant t (standardised)")


def _severities(results: Results, dataset: str, shift: str) -> tuple[float, ...]:
    return next(f.severities for k, f in results.focus.items() if k.dataset == dataset and k.shift == shift)


def plot_focus(results: Results, dataset: str, shift: str, settings: Settings) -> plt.Figure:
    """Fig 2.2 analogue: the average prediction on the single-class set at each level of ``shift``, then the OCS."""
    sevs = _severities(results, dataset, shift)
    n = len(sevs) + 1
    fig, axes = plt.subplots(2, n, figsize=(2.1 * n, 4.6), sharey="row", constrained_layout=True)
    for j in range(n):
        level = j if j < len(sevs) else None
        _draw_focus_column(axes[0, j], axes[1, j], results, dataset, shift, level)
        axes[0, j].set_title("OCS" if level is None else f"{shift} {sevs[j]:g}")
    axes[0, 0].set_ylabel("avg. predicted prob.")
    axes[1, 0].set_ylabel("avg. predicted density")
    fig.suptitle(f"{dataset}: class {settings.focus_class} under increasing {shift} (blue: model, orange: OCS)")
    return fig


def plot_focus_level(results: Results, dataset: str, shift: str, level: int) -> plt.Figure:
    """One level of ``shift``: the average prediction on the single-class set (left) next to the OCS (right)."""
    sevs = _severities(results, dataset, shift)
    fig, axes = plt.subplots(2, 2, figsize=(7, 4.6), sharey="row", constrained_layout=True)
    _draw_focus_column(axes[0, 0], axes[1, 0], results, dataset, shift, level)
    _draw_focus_column(axes[0, 1], axes[1, 1], results, dataset, shift, None)
    axes[0, 0].set_title(f"model, {shift} {sevs[level]:g}")
    axes[0, 1].set_title("OCS")
    axes[0, 0].set_ylabel("avg. predicted prob.")
    axes[1, 0].set_ylabel("avg. predicted density")
    return fig


def focus_slider(results: Results, dataset: str, settings: Settings):
    """Fig 2.2 for every shift, as a static slider: a shift menu and a severity slider over pre-drawn frames of
    :func:`plot_focus_level`, which move in the static book without a kernel (an ``IPython.display.HTML``)."""
    frames = {
        shift: [
            (f"level {level}: {shift} {sev:g}", plot_focus_level(results, dataset, shift, level))
            for level, sev in enumerate(_severities(results, dataset, shift))
        ]
        for shift in settings.shifts
    }
    return frame_slider(frames, menu="shift", slider="severity level")


def focus_widget(results: Results, dataset: str, settings: Settings):
    """The same figure as an ipywidgets widget that redraws live (Jupyter and Colab; the static book shows
    :func:`focus_slider`)."""
    import ipywidgets as widgets  # the book's extra, needed only by this interactive figure

    def draw(shift: str, level: int = 0):
        plot_focus_level(results, dataset, shift, level)
        plt.show()

    levels = len(_severities(results, dataset, settings.shifts[0]))
    return widgets.interactive(
        draw,
        shift=widgets.Dropdown(options=list(settings.shifts), description="shift"),
        level=widgets.IntSlider(value=0, min=0, max=levels - 1, description="severity level"),
    )
