"""Figure helpers for chapter notebooks: save a figure with the run's results and show it; a slider of pre-drawn
frames that moves without a kernel (static HTML, Jupyter and Colab alike); the scorecard's picture."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import uuid
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from steerlib.core.chapter import Run
from steerlib.core.checks import check_columns, check_nonempty, check_range, check_type


def show(fig: plt.Figure, run: Run, name: str) -> None:
    """Save ``fig`` as ``<out_dir>/<name>.png`` and ``.pdf`` (making the folder; each written whole, then renamed),
    and show it in the notebook."""
    check_type("name", name, str, "a file name without extension")
    if not name or "/" in name:
        raise ValueError(f"name={name!r} is not a file name; give e.g. 'fig2_2'")
    run.out_dir.mkdir(parents=True, exist_ok=True)
    for suffix, options in ((".png", {"dpi": 150}), (".pdf", {})):
        path = run.out_dir / f"{name}{suffix}"
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{suffix}")  # a killed run leaves no half a figure
        fig.savefig(tmp, bbox_inches="tight", **options)
        os.replace(tmp, path)
    plt.show()


def png_data_uri(fig: plt.Figure, dpi: int = 80) -> str:
    """``fig`` as a ``data:image/png;base64,...`` URI; the figure is closed."""
    check_type("fig", fig, plt.Figure, "a matplotlib Figure")
    check_range("dpi", dpi, 1, integer=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def frame_slider(frames: Mapping[str, Sequence[tuple[str, plt.Figure]]], menu: str, slider: str, dpi: int = 80):
    """A figure that moves without a kernel: ``frames[choice]`` is a list of ``(label, figure)``; a ``menu`` picks the
    choice and a ``slider`` steps through its frames, pre-drawn as PNG and swapped by a few lines of JavaScript.

    Returns an ``IPython.display.HTML`` holding every frame (the figures are closed): it moves in a static page,
    offline, as in a notebook."""
    from IPython.display import HTML  # the book's extra (ipykernel), as in a notebook

    check_type("frames", frames, Mapping, "a dict: menu choice -> list of (label, figure)")
    check_nonempty("frames", frames)
    for choice, steps in frames.items():
        check_nonempty(
            f"frames[{choice!r}]", check_type(f"frames[{choice!r}]", steps, Sequence, "a list of (label, figure)")
        )
    data = {choice: [(label, png_data_uri(fig, dpi)) for label, fig in steps] for choice, steps in frames.items()}
    first, steps = next(iter(data.items()))
    script_data = json.dumps(data).replace("</", "<\\/")  # nothing in it can close the script
    uid = f"steerlib-slider-{uuid.uuid4().hex[:12]}"
    options = "".join(f'<option value="{html.escape(c)}">{html.escape(c)}</option>' for c in data)
    return HTML(f"""<div class="steerlib-slider" id="{uid}">
<label>{html.escape(menu)} <select>{options}</select></label>
<label style="margin-left: 1em">{html.escape(slider)} <input type="range" min="0" max="{len(steps) - 1}" step="1"
value="0"></label> <output>{html.escape(steps[0][0])}</output><br>
<img alt="{html.escape(f"{first}, {steps[0][0]}")}" src="{steps[0][1]}" style="max-width: 100%">
</div>
<script>
(function () {{
  const root = document.getElementById("{uid}"), frames = {script_data};
  const menu = root.querySelector("select"), range = root.querySelector("input"),
        out = root.querySelector("output"), img = root.querySelector("img");
  function draw() {{
    const steps = frames[menu.value];
    range.max = steps.length - 1;
    const [label, src] = steps[Math.min(range.value, steps.length - 1)];
    out.textContent = label;
    img.src = src;
    img.alt = menu.value + ", " + label;
  }}
  menu.addEventListener("change", draw);
  range.addEventListener("input", draw);
}})();
</script>""")


VERDICT_COLOURS = {
    "holds": "#1b7837",
    "holds (fragile)": "#a6dba0",
    "does not hold (fragile)": "#f4a582",
    "does not hold": "#b2182b",
}


def plot_scorecard(margins, clip: float = 4.0) -> plt.Figure:
    """The scorecard at a glance: per chapter (a row), each evidence claim's signed distance from its threshold in
    units of its interval (``margins``: the table of :func:`steerlib.scorecard.margins`), coloured by verdict, a circle
    if it was registered before any result and a triangle if it was registered or revised after results."""
    import pandas as pd

    check_type("margins", margins, pd.DataFrame, "the table of steerlib.scorecard.margins")
    check_columns("margins", margins.columns, ["chapter", "margin", "verdict", "ledger"], "give scorecard.margins")
    check_range("clip", clip, 1)
    chapters = list(dict.fromkeys(margins["chapter"]))
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(chapters) + 1.6))
    for i, name in enumerate(chapters):
        rows = margins[margins["chapter"] == name].reset_index(drop=True)
        jitter = (np.arange(len(rows)) % 7 - 3) * 0.06  # spread claims with equal margins
        for late, marker in ((False, "o"), (True, "^")):
            pick = rows["ledger"].str.contains("after results") == late
            ax.scatter(
                rows.loc[pick, "margin"],
                i + jitter[pick.to_numpy()],
                marker=marker,
                s=28,
                linewidths=0.4,
                edgecolors="black",
                c=[VERDICT_COLOURS[v] for v in rows.loc[pick, "verdict"]],
            )
    for x, style in ((0, "-"), (-1, ":"), (1, ":")):
        ax.axvline(x, color="grey", linestyle=style, linewidth=0.8)
    ax.set_yticks(range(len(chapters)), chapters)
    ax.invert_yaxis()
    ax.set_xlim(-clip - 0.3, clip + 0.3)
    ax.set_xlabel(
        "signed distance from the threshold, in interval half-widths (> 0: holds; |x| < 1: fragile; "
        f"±{clip:g}: beyond, or no interval)"
    )
    handles = [plt.Line2D([], [], marker="s", linestyle="", color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    handles += [
        plt.Line2D([], [], marker=m, linestyle="", color="grey", label=label)
        for m, label in (("o", "registered before results"), ("^", "registered or revised after results"))
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=8, frameon=False)
    ax.set_title("Evidence claims: where each value sits against its threshold")
    fig.tight_layout()
    return fig


def plot_sweep(sweep, ids: Sequence[str] | None = None, columns: int = 4) -> plt.Figure:
    """A chapter's claims along its scale axis (:class:`~steerlib.core.scale.Sweep`), one panel per claim of ``ids``
    (default: every tracked claim): the value at each point with its interval against training FLOPs (log axis;
    open markers where the claim is not judged), the threshold (dashed), the least-squares line where the trend is
    judged, and the trend's verdict in the title; the dissertation's value is quoted under it. The runs beside the
    sweep (``Sweep.beside``: the paper profile, when the run cache holds it) are green stars, not fitted."""
    from steerlib.core.scale import Sweep

    check_type("sweep", sweep, Sweep, "a Sweep (steerlib.core.scale.sweep)")
    if not sweep.points:  # a profile without a ladder (paper: other models and data)
        fig, ax = plt.subplots(figsize=(6, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no scale sweep at this profile", ha="center", va="center")
        return fig
    ids = list(sweep.trends) if ids is None else list(check_type("ids", ids, (list, tuple), "a list of claim ids"))
    for cid in check_nonempty("ids", ids):
        if cid not in sweep.trends:
            raise ValueError(f"ids holds {cid!r}, which the sweep does not track; it tracks {sorted(sweep.trends)}")
    check_range("columns", columns, 1, integer=True)
    columns = min(columns, len(ids))
    rows = -(-len(ids) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.9 * rows), squeeze=False)
    reference = {c["id"]: c for p in sorted(sweep.points, key=lambda p: p.factor == 1.0) for c in p.claims}
    beside = {name: p for name, p in sweep.beside.items() if p and np.isfinite(p.compute)}
    computes = [p.compute for p in (*sweep.points, *beside.values())]
    lowest, highest = min(computes), max(computes)
    for ax, cid in zip(axes.flat, ids):
        series, trend, claim = sweep.series(cid), sweep.trends[cid], reference[cid]  # the profile's threshold
        for compute, value, interval, judged in series:
            if not np.isfinite(value):  # undefined at this point (listed in the table)
                continue
            low, high = interval if interval else (value, value)
            ax.errorbar(
                compute,
                value,
                yerr=[[value - low], [high - value]],
                fmt="o",
                color="C0",
                mfc="C0" if judged else "white",
                capsize=2,
            )
        for marker, (name, p) in zip("*Ds", beside.items()):  # another profile's run: shown, not fitted
            for c in (c for c in p.claims if c["id"] == cid and np.isfinite(c["value"])):
                low, high = c["interval"] or (c["value"], c["value"])
                ax.errorbar(
                    p.compute,
                    c["value"],
                    yerr=[[c["value"] - low], [high - c["value"]]],
                    fmt=marker,
                    ms=9,
                    color="C2",
                    mfc="C2" if c["judged"] else "white",
                    capsize=2,
                    label=f"{name} profile (not fitted)",
                )
        ax.axhline(
            claim["threshold"], color="C3", ls="--", lw=1, label=f"threshold {claim['op']} {claim['threshold']:g}"
        )
        judged = [(c, v) for c, v, _, j in series if j and np.isfinite(v)]
        if trend.verdict != "not judged" and judged:
            x = np.log10([c for c, _ in judged])
            mean_y = np.mean([v for _, v in judged])
            grid = np.linspace(x.min(), x.max(), 20)
            ax.plot(10**grid, mean_y + trend.slope * (grid - x.mean()), color="C1", lw=1, label="least squares")
        ax.set_xscale("log")
        ax.set_xlim(lowest / 1.5, highest * 1.5)  # every panel spans the sweep, points or none
        ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels collide
        ax.set_xlabel("training FLOPs")
        ax.set_ylabel("statistic")
        quote = claim.get("dissertation", "")
        quote = f"\ndissertation: {quote[:42]}{'...' if len(quote) > 42 else ''}" if quote else ""
        ax.set_title(f"{cid}: {trend.verdict}{quote}", fontsize=8)
    for ax in list(axes.flat)[len(ids) :]:
        ax.set_visible(False)
    labelled = dict(zip(*reversed(axes.flat[0].get_legend_handles_labels())))  # the first panel's, then a run
    for ax in axes.flat[1:]:  # beside the sweep drawn in other panels only
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label.endswith("(not fitted)"):
                labelled.setdefault(label, handle)
    axes.flat[0].legend(labelled.values(), labelled.keys(), fontsize=7, loc="best")
    fig.tight_layout()
    return fig
