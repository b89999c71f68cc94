"""The budget of the book's planned additions (steerlib.performance): a cold build's costs read from its
metrics.json, and the budget, the wall-time bound and the shrink factor on a hand-worked table."""

from __future__ import annotations

import math

import pandas as pd

from steerlib import performance
from steerlib.core.claims import Claim
from steerlib.core.record import write_metrics


def costs() -> pd.DataFrame:
    """Three chapters: A (300 s at 3 replicates: 100 s each), B (60 s at 3: 20 s each), C (50 s at 5)."""
    return pd.DataFrame(
        {"part": ["x", "x", "y"], "cpu_s": [300.0, 60.0, 50.0], "wall_s": [0.0] * 3, "replicates": [3, 3, 5]},
        index=pd.Index(["A", "B", "C"], name="chapter"),
    )


def test_budget_prices_sweeps_by_compute_and_adds_replicates_cheapest_first_within_the_cap():
    table = performance.budget(costs(), {"A": (0.5, 0.25)}, cap_s=700, replicates=5)
    # measured 410 s, A's sweep 300 * 0.75 = 225 s: 635 s. B's 2 more replicates (40 s) fit (675 s); A's (200 s)
    # would not (875 s); C has 5 already.
    assert table["sweep (s)"].tolist() == [225.0, 0.0, 0.0]
    assert table["more replicates (s)"].tolist() == [0.0, 40.0, 0.0]
    assert table["replicates"].tolist() == [3, 5, 5]
    assert table["total (s)"].tolist() == [525.0, 100.0, 50.0]
    assert performance.wall_bound(table, cores=2) == 525.0  # A alone outlasts half of 675 s
    assert performance.wall_bound(table, cores=1) == 675.0
    roomy = performance.budget(costs(), {"A": (0.5, 0.25)}, cap_s=1e4, replicates=5)
    assert roomy["replicates"].tolist() == [5, 5, 5] and roomy["total (s)"].sum() == 635 + 240


def test_budget_takes_a_recorded_sweep_cost_over_the_compute_model():
    recorded = costs().assign(sweep_cpu_s=[400.0, 0.0, 0.0])  # A's points cost more than their compute
    table = performance.budget(recorded, {"A": (0.5, 0.25), "B": (0.5,)}, cap_s=1e4)
    assert table["sweep (s)"].tolist() == [400.0, 30.0, 0.0]  # A: as recorded; B: 60 s x 0.5


def test_shrink_needed_is_the_measured_cost_of_the_parts_over_the_target():
    assert performance.shrink_needed(costs(), 120.0, ("x",)) == 3.0
    assert performance.shrink_needed(costs(), 100.0, ("y",)) == 0.5
    assert math.isnan(performance.shrink_needed(costs(), 100.0, ("z",)))


def test_cold_costs_reads_each_chapters_cpu_seconds_and_replicates(tmp_path):
    claim = [Claim("T1", "toy", "x", 1.0, ">", 0.5, why="toy", uncertainty="toy")]
    write_metrics(
        tmp_path / "pre-memorization",
        "pre-memorization",
        {"profile": "cpu", "settings": {"replicates": 3}},
        claim,
        0,
        {},
    )
    write_metrics(tmp_path / "reversion", "reversion", {"profile": "cpu", "settings": {}}, claim, 0, {})
    table = performance.cold_costs(tmp_path)
    assert table.index.tolist() == ["reversion", "pre-memorization"]  # the book's order
    assert table["part"].tolist() == ["extrapolation", "reasoning"]
    assert table["replicates"].tolist() == [1, 3]
    assert (table["cpu_s"] > 0).all()


def test_the_book_sweeps_are_the_chapters_ladders_and_span_16x_with_the_cpu_point():
    from steerlib.book import CHAPTERS, chapter

    found = performance.book_sweeps()
    assert set(found) == {"reversion", "mechanism", "cautious-decisions"}  # Part III's points run as jobs
    for name, ladder in found.items():
        points = (*ladder, 1.0)
        assert name in CHAPTERS and len(points) >= 5 and max(points) / min(points) >= 16
        assert set(ladder) < set(chapter(name).scale.factors["cpu"])
