"""The pass@N chapter: its statistics on hand-made logs, bad settings, the smoke run's structure and seeding, and
(slow) the cpu verdicts."""

import numpy as np
import pytest

from steerlib.book import execute
from steerlib.chapters.related.passn_overconfidence import analysis, experiment
from steerlib.measures.coverage import pass_at_k


def _log(correct: list[list[int]], memorized: list[float], modal: list[list[float]] | None = None) -> experiment.RunLog:
    """A run at len(correct) checkpoints over test problems with the given right-answer counts (of 4 samples)."""
    correct = np.array(correct)
    modal = np.array(modal) if modal is not None else np.full(correct.shape, 0.5)
    steps = np.arange(1, len(correct) + 1)
    return experiment.RunLog(steps, correct, modal, np.array(memorized), np.zeros(len(correct)))


def _results() -> experiment.Results:
    """CE: pass@2 peaks at checkpoint 0 and falls, pass@1 peaks at checkpoint 1; problem 1 stays wrong and its
    modal share rises. DCO keeps coverage."""
    ce = _log([[1, 2], [2, 0], [2, 0]], [0.1, 0.6, 0.9], modal=[[0.5, 0.25], [0.5, 0.5], [0.5, 1.0]])
    dco = _log([[1, 2], [2, 1], [2, 2]], [0.1, 0.3, 0.4])
    return experiment.Results(0, {"ce": ce, "dco": dco, "ce-control": dco}, samples=4, k_max=2)


def test_statistics_by_hand():
    stats = analysis.statistics(_results())
    one = [pass_at_k(4, np.array(c), 1).mean() for c in ([1, 2], [2, 0], [2, 0])]  # 0.375, 0.25, 0.25
    two = [pass_at_k(4, np.array(c), 2).mean() for c in ([1, 2], [2, 0], [2, 0])]
    assert one == pytest.approx([0.375, 0.25, 0.25]) and two[0] > two[1]
    assert stats["R4a/earlier"] == 0.0  # both peak at checkpoint 0 here
    assert stats["R4a/drop"] == pytest.approx((two[0] - two[2]) - (one[0] - one[2]))
    assert stats["R4b"] == pytest.approx(1.0)  # problem 1 ends wrong; its modal share 0.25, 0.5, 1.0
    assert stats["R4d/rho"] == pytest.approx(-1.0, abs=0.2) and stats["R4d/dco"] == pytest.approx(0.5)
    assert stats["R4p/memorizes"] == 0.9
    dco_two = pass_at_k(4, np.array([2, 2]), 2).mean()
    assert stats["R4c/coverage"] == pytest.approx(dco_two - two[2])


def test_claims_fill_k_and_name_the_replicates():
    results = _results()
    results.others = [experiment.Results(1, results.logs, 4, 2)]
    claims = {c.id: c for c in analysis.claims(results)}
    assert list(claims) == [s.id for s in analysis.SPECS]
    assert "pass@2" in claims["R4a/earlier"].statement and claims["R4c/coverage"].interval is not None


@pytest.mark.parametrize(
    "override, error",
    [({"k_max": 20}, ValueError), ({"dco_n": 0}, ValueError), ({"p": 1.0}, ValueError), ({"lr": 0.0}, ValueError)],
)
def test_bad_settings_are_refused(override, error):
    with pytest.raises(error, match=next(iter(override))):
        experiment.Settings(**override)


def test_run_spec_refuses_an_unknown_loss():
    with pytest.raises(ValueError, match="loss='mse'"):
        experiment.RunSpec("x", "mse", 1e-3)


def test_smoke_run_logs_every_run_and_is_deterministic(tmp_path):
    ex = execute("passn-overconfidence", "smoke", seed=0, out_dir=tmp_path)
    s = ex.settings
    assert [c.id for c in ex.claims] == [x.id for x in analysis.SPECS]
    assert set(ex.results.logs) == {"ce", "dco", "ce-control"}
    log = ex.results.logs["ce"]
    assert log.correct.shape == (len(s.checkpoints), s.n_test) and (log.correct <= s.samples).all()
    assert ((0 <= log.modal) & (log.modal <= 1)).all() and ((0 <= log.memorized) & (log.memorized <= 1)).all()
    assert not np.array_equal(ex.results.logs["dco"].correct, log.correct), "DCO trains another model"
    again = execute("passn-overconfidence", "smoke", seed=0, out_dir=tmp_path / "again", cache=False)
    assert np.array_equal(again.results.logs["ce"].correct, log.correct), "the same seed gives the same samples"


@pytest.mark.slow
def test_cpu_claims(tmp_path):
    """At cpu every claim is judged (the CE run memorizes: R4p/memorizes holds)."""
    ex = execute("passn-overconfidence", "cpu", seed=0, out_dir=tmp_path)
    assert ex.claim("R4p/memorizes").holds, ex.table()
    assert all(c.verdict != "not judged" for c in ex.claims), ex.table()
