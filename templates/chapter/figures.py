"""The figures of the chapter "Template chapter title"."""

from __future__ import annotations

import matplotlib.pyplot as plt

from steerlib.chapters.template_part.template_chapter.experiment import Results


def plot_accuracy(results: Results) -> plt.Figure:
    """Test accuracy against the scale of the noise added to the inputs: a thin line per replicate, their mean in
    black."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2), constrained_layout=True)
    replicates = [results, *results.others]
    for r in replicates:
        ax.plot(r.table["noise"], r.table["accuracy"], color="tab:blue", alpha=0.4, lw=1)
    mean = sum(r.table["accuracy"] for r in replicates) / len(replicates)
    ax.plot(results.table["noise"], mean, color="black", marker="o", label=f"mean of {len(replicates)} replicates")
    ax.set(xlabel="noise scale (standard deviation)", ylabel="test accuracy")
    ax.legend(frameon=False)
    return fig
