"""The template chapter: its statistics on hand-made results, its settings' checks, the smoke run's structure and
seeding, and (slow) the cpu verdicts."""

import math

import pandas as pd
import pytest

from steerlib.book import execute
from steerlib.chapters.template_part.template_chapter import analysis, experiment


def _results(accuracies: list[float], replicate: int = 0) -> experiment.Results:
    """Hand-made results: the accuracy at noise scales 0, 0.5, 1 and 2."""
    return experiment.Results(replicate, pd.DataFrame({"noise": [0.0, 0.5, 1.0, 2.0], "accuracy": accuracies}))


def test_statistics_by_hand():
    assert analysis.statistics(_results([0.9, 0.8, 0.7, 0.6])) == {"Z0": 0.9, "Z1": pytest.approx(-1.0)}
    assert math.isnan(analysis.statistics(_results([0.9] * 4))["Z1"])  # a flat curve has no rank correlation


def test_claims_are_means_over_the_replicates_with_an_interval():
    results = _results([0.9, 0.8, 0.7, 0.6])
    results.others = [_results([0.7, 0.8, 0.6, 0.5], replicate=1)]
    claims = {c.id: c for c in analysis.claims(results)}
    assert claims["Z0"].value == pytest.approx(0.8) and claims["Z0"].interval is not None
    assert claims["Z1"].value == pytest.approx((-1.0 - 0.8) / 2)


@pytest.mark.parametrize(
    "override, error", [({"dim": 2.5}, TypeError), ({"noise": (0.0,)}, ValueError), ({"replicates": 0}, ValueError)]
)
def test_bad_settings_are_refused(override, error):
    with pytest.raises(error, match=next(iter(override))):
        experiment.Settings(**override)


def test_smoke_run_judges_every_claim_and_replicates_differ(tmp_path):
    ex = execute("template-chapter", "smoke", seed=0, out_dir=tmp_path)
    assert [c.id for c in ex.claims] == [s.id for s in analysis.SPECS]
    replicates = [ex.results, *ex.results.others]
    assert len(replicates) == ex.settings.replicates and (tmp_path / "metrics.json").is_file()
    assert not replicates[0].table.equals(replicates[1].table), "each replicate draws its own streams"
    again = execute("template-chapter", "smoke", seed=0, out_dir=tmp_path / "again", cache=False)
    assert again.results.table.equals(ex.results.table), "the same seed gives the same numbers"


@pytest.mark.slow
def test_cpu_claims_hold(tmp_path):
    ex = execute("template-chapter", "cpu", seed=0, out_dir=tmp_path)
    assert all(c.verdict in ("holds", "holds (fragile)") for c in ex.claims), ex.table()
