"""The book's performance page: what each chapter cost (from its ``metrics.json``) and how fast the language-model
stack runs (from ``benchmarks/bench_lm.py``'s ``--json`` record, ``<results>/benchmarks/lm.json``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from steerlib.core.chapter import results_root
from steerlib.core.checks import check_type
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
