"""The book's performance page: what each chapter cost (from its ``metrics.json``), how fast the language-model
stack runs (from ``benchmarks/bench_lm.py``'s ``--json`` record, ``<results>/benchmarks/lm.json``), and the budget
of the book's planned additions, priced from a cold build's measured costs (:func:`cold_costs`, :func:`budget`)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd

from steerlib import book
from steerlib.core.chapter import results_root
from steerlib.core.checks import check_range, check_type
from steerlib.core.profiles import resolve_profile
from steerlib.core.record import read_metrics

BENCHMARK = Path("benchmarks") / "lm.json"  # under the results folder; written by make bench


def _root(root: str | os.PathLike | None) -> Path:
    check_type("results_dir", root, (str, os.PathLike, type(None)), "a folder path or None")
    root = Path(root) if root is not None else results_root()
    if not root.is_dir():
        raise FileNotFoundError(
            f"results_dir={str(root)!r} does not exist; run the chapters first (make book) "
            "or name the folder that holds <chapter>/metrics.json"
        )
    return root


SHARES = ("training", "sampling", "evaluation and data", "worker processes")  # shares of a chapter's CPU time


def _phase_shares(used: dict) -> dict[str, float | None]:
    """Each phase's share of the chapter's CPU time (:func:`steerlib.core.record._resources`); None before records
    said so."""
    phases, total = used.get("phases"), used.get("cpu_s")
    if not phases or not total:
        return dict.fromkeys(SHARES)
    return {name: phases.get(name, 0.0) / total for name in SHARES}


def chapter_costs(root: str | os.PathLike | None = None, profile: str | None = None) -> pd.DataFrame:
    """One row per chapter run at ``profile`` under ``root``: wall time, threads, CPU seconds and CPU use
    (cpu_s / wall_time_s: ~1 is one busy core), the shares of its CPU time spent training, sampling, evaluating and
    in worker processes, and the share of the wall time of each stage the chapter timed (its ``extra["seconds"]``,
    when it records one), largest first."""
    root, profile = _root(root), resolve_profile(profile)
    rows = []
    for path in sorted(root.glob("*/metrics.json")):
        record = read_metrics(path)
        if record["config"].get("profile") != profile:
            continue
        wall, used = record["wall_time_s"], record.get("resources", {})
        stages = record["extra"].get("seconds")
        stages = (
            {k: v for k, v in stages.items() if isinstance(v, (int, float)) and k != "total"}
            if isinstance(stages, dict)
            else {}
        )
        top = sorted(stages.items(), key=lambda kv: -kv[1])[:4]
        rows.append(
            {
                "chapter": record["chapter"],
                "profile": profile,
                "wall time (min)": wall / 60,
                "threads": used.get("threads"),
                "CPU (min)": used["cpu_s"] / 60 if "cpu_s" in used else None,
                "cores busy": used["cpu_s"] / wall if "cpu_s" in used and wall else None,
                **_phase_shares(used),
                "where the time goes": ", ".join(f"{k} {v / 60:.1f} min" for k, v in top) or "not recorded",
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "chapter",
            "profile",
            "wall time (min)",
            "threads",
            "CPU (min)",
            "cores busy",
            *SHARES,
            "where the time goes",
        ],
    )
    return table.sort_values("wall time (min)", ascending=False).set_index("chapter")


def benchmark(root: str | os.PathLike | None = None) -> dict | None:
    """The language-model benchmark's record, or None if ``make bench`` has not written it."""
    path = _root(root) / BENCHMARK
    return json.loads(path.read_text()) if path.is_file() else None


def batching_table(record: dict) -> pd.DataFrame | None:
    """Per language-model chapter's training shape: ms per step at its batch b, K runs merged into one step of
    batch K·b, and the ceiling K·t(b) / t(K·b) of any batched trainer over a loop (None if the record has none)."""
    if not record.get("batching"):
        return None
    table = pd.DataFrame(record["batching"]).set_index("chapter")
    return table[["model", "batch", "seq", "k", "ms_per_step", "ms_per_merged_step", "ceiling"]].rename(
        columns={"k": "K runs", "ms_per_step": "ms/step", "ms_per_merged_step": "ms/step of K·b"}
    )


def sampling_table(record: dict) -> pd.DataFrame:
    """Tokens/s of each sampler and its ratio to ``generate`` (medians over interleaved repeats)."""
    s = record["sampling"]
    return pd.DataFrame({"tokens/s": s["tokens_per_s"], "x generate": s["ratio_to_generate"]}).rename_axis("sampler")


def book_sweeps() -> dict[str, tuple[float, ...]]:
    """The points below 1 that the book runs on each chapter's scale axis at cpu (``SCALE``,
    :mod:`steerlib.core.scale`), as fractions of the cpu profile's training compute; chapters whose points run as
    jobs outside the book (``make sweeps``) have none here. Imports every chapter."""
    out = {}
    for name in book.CHAPTERS:
        scale = book.chapter(name).scale
        ladder = tuple(f for f in scale.factors.get("cpu", ()) if f < 1) if scale else ()
        if ladder:
            out[name] = ladder
    return out


def cold_costs(folder: str | os.PathLike) -> pd.DataFrame:
    """Per chapter, from the ``<chapter>/metrics.json`` of a build at the cpu profile from an empty run cache: its
    part, CPU seconds, wall seconds, replicates (1 for a chapter without them) and the CPU seconds of its scale sweep
    (0 where the build recorded none), in the book's order."""
    check_type("folder", folder, (str, os.PathLike), "the folder of a cold build's <chapter>/metrics.json")
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"folder={str(folder)!r} does not exist; it should hold <chapter>/metrics.json")
    rows = []
    for name in book.CHAPTERS:
        path = Path(folder) / name / "metrics.json"
        if not path.is_file():
            continue
        record = read_metrics(path)
        rows.append(
            {
                "chapter": name,
                "part": book.part_of(name),
                "cpu_s": record["resources"]["cpu_s"],
                "wall_s": record["wall_time_s"],
                "replicates": record["config"].get("settings", {}).get("replicates", 1),
                "sweep_cpu_s": record.get("sweep", {}).get("cpu_s", 0.0),
            }
        )
    columns = ["chapter", "part", "cpu_s", "wall_s", "replicates", "sweep_cpu_s"]
    return pd.DataFrame(rows, columns=columns).set_index("chapter")


def budget(
    costs: pd.DataFrame,
    sweeps: dict[str, tuple[float, ...]] | None = None,
    cap_s: float = 7200.0,
    replicates: int = 5,
) -> pd.DataFrame:
    """Price the planned additions from measured costs (:func:`cold_costs`). A chapter measured at C CPU seconds with R
    replicates costs C / R a replicate (every stage scales with the replicates: an upper bound where a model
    load is shared); its sweep costs what the build recorded (``sweep_cpu_s``), else, for points f_1..f_n
    (fractions of the cpu profile's compute, each at R replicates), C · Σ f_i (cost proportional to compute: an
    underestimate where evaluation does not shrink with the model). Then, cheapest first, each chapter goes up
    to ``replicates`` replicates ((replicates - R) · C / R more) while the whole, C + sweep + replicates summed
    over the chapters, stays within ``cap_s``. Columns: measured, sweep, more replicates, replicates and the
    chapter's total."""
    check_type("costs", costs, pd.DataFrame, "the table of cold_costs")
    sweeps = (
        book_sweeps() if sweeps is None else check_type("sweeps", sweeps, dict, "a dict chapter -> compute fractions")
    )
    check_range("cap_s", cap_s, 0, open_low=True)
    check_range("replicates", replicates, 1, integer=True)
    missing = {"cpu_s", "replicates"} - set(costs.columns)
    if missing:
        raise ValueError(f"costs lacks columns {sorted(missing)}; build it with cold_costs")
    for name, points in sweeps.items():
        check_type(f"sweeps[{name!r}]", points, tuple, "a tuple of compute fractions")
        for i, f in enumerate(points):
            check_range(f"sweeps[{name!r}][{i}]", f, 0, 1, open_low=True)
    table = pd.DataFrame(index=costs.index)
    table["measured (s)"] = costs["cpu_s"]
    recorded = costs["sweep_cpu_s"] if "sweep_cpu_s" in costs else pd.Series(0.0, index=costs.index)
    table["sweep (s)"] = [
        recorded[name] if recorded[name] > 0 else c * sum(sweeps.get(name, ())) for name, c in costs["cpu_s"].items()
    ]
    per_replicate = costs["cpu_s"] / costs["replicates"]
    more = (replicates - costs["replicates"]).clip(lower=0) * per_replicate
    spent = table["measured (s)"].sum() + table["sweep (s)"].sum()
    table["more replicates (s)"] = 0.0
    table["replicates"] = costs["replicates"]
    for name in more[more > 0].sort_values().index:
        if spent + more[name] <= cap_s:
            spent += more[name]
            table.loc[name, "more replicates (s)"] = more[name]
            table.loc[name, "replicates"] = replicates
    table["total (s)"] = table["measured (s)"] + table["sweep (s)"] + table["more replicates (s)"]
    return table


def wall_bound(table: pd.DataFrame, cores: int) -> float:
    """The least wall time of a build that runs ``table``'s chapters on ``cores`` cores, one core a chapter:
    max(Σ total / cores, the longest chapter's total), in seconds (chapters never split across cores)."""
    check_type("table", table, pd.DataFrame, "the table of budget")
    check_range("cores", cores, 1, integer=True)
    if "total (s)" not in table.columns:
        raise ValueError("table lacks the column 'total (s)'; build it with budget")
    totals = table["total (s)"]
    return max(totals.sum() / cores, totals.max()) if len(totals) else 0.0


def shrink_needed(costs: pd.DataFrame, target_s: float, parts: tuple[str, ...]) -> float:
    """The factor by which the chapters of ``parts`` must shrink for their measured CPU seconds to meet ``target_s``
    (Σ cpu_s / target_s; at most 1 means they already fit)."""
    check_type("costs", costs, pd.DataFrame, "the table of cold_costs")
    check_range("target_s", target_s, 0, open_low=True)
    check_type("parts", parts, tuple, "a tuple of part names, e.g. ('extrapolation',)")
    chosen = costs[costs["part"].isin(parts)]["cpu_s"].sum()
    return chosen / target_s if chosen else math.nan
