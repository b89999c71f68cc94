"""The one figure helper a chapter notebook needs: save a figure with the run's results, then show it."""
from __future__ import annotations

import matplotlib.pyplot as plt

from steerlib.core.chapter import Run


def show(fig: plt.Figure, run: Run, name: str) -> None:
    """Save ``fig`` as ``<out_dir>/<name>.png`` and ``.pdf``, and show it in the notebook."""
    path = run.out_dir / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    plt.show()
