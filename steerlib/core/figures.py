"""The one figure helper a chapter notebook needs: save a figure with the run's results, then show it."""
from __future__ import annotations

import matplotlib.pyplot as plt

from steerlib.core.chapter import Run
from steerlib.core.checks import check_type


def show(fig: plt.Figure, run: Run, name: str) -> None:
    """Save ``fig`` as ``<out_dir>/<name>.png`` and ``.pdf`` (making the folder), and show it in the notebook."""
    check_type("name", name, str, "a file name without extension")
    if not name or "/" in name:
        raise ValueError(f"name={name!r} is not a file name; give e.g. 'fig2_2'")
    run.out_dir.mkdir(parents=True, exist_ok=True)
    path = run.out_dir / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    plt.show()
