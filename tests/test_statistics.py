"""The intervals every claim carries (:mod:`steerlib.measures.statistics`): prediction intervals over independent
replicates, checked by simulation, and the clustered bootstrap."""

import numpy as np
import pytest

from steerlib.measures import statistics as st

DISTRIBUTIONS = {  # replicate values: symmetric, and skewed as far as the interval is meant to cover (skewness)
    "normal": lambda rng, size: rng.normal(size=size),  # 0
    "gamma(2)": lambda rng, size: rng.gamma(2.0, size=size),  # 1.41
    "lognormal(0, 0.5)": lambda rng, size: rng.lognormal(0.0, 0.5, size=size),  # 1.75
}


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_the_prediction_interval_covers_a_reruns_mean_95_percent_of_the_time(name, n):
    """Draw n replicates, build the interval, draw n new ones (an independent rerun): its mean falls inside 93-97%
    of the time (200,000 simulated reruns: the Monte Carlo error is 0.05 percentage points)."""
    rng = np.random.default_rng(0)
    now, rerun = (DISTRIBUTIONS[name](rng, (200_000, n)) for _ in range(2))
    half = st.prediction_half_width(now)
    coverage = float(np.mean(np.abs(rerun.mean(1) - now.mean(1)) <= half))
    assert 0.93 <= coverage <= 0.97, coverage
    low, high = st.prediction_interval(now[0])  # the one-dimensional form is the same interval
    assert (low, high) == pytest.approx((now[0].mean() - half[0], now[0].mean() + half[0]))


def test_the_prediction_interval_by_hand():
    """Three replicates 1, 2, 3: mean 2, s = 1, half-width 1.1 · t(0.975, 2) · sqrt(2/3) = 1.1 · 4.3027 · 0.8165."""
    low, high = st.prediction_interval([1.0, 2.0, 3.0])
    assert (high - low) / 2 == pytest.approx(1.1 * 4.302653 * np.sqrt(2 / 3), rel=1e-5)
    assert (low + high) / 2 == pytest.approx(2.0)
    assert np.isnan(st.prediction_interval([1.0])).all() and np.isnan(st.prediction_interval([1.0, np.nan])).all()


def test_over_replicates_takes_the_mean_and_names_undefined_replicates():
    out = st.over_replicates([{"a": 1.0, "b": 1.0}, {"a": 2.0, "b": np.nan}, {"a": 3.0, "b": 3.0}])
    assert out["a"].value == 2.0 and out["a"].interval == pytest.approx(st.prediction_interval([1.0, 2.0, 3.0]))
    assert "3 new independent replicates" in out["a"].uncertainty
    assert out["b"].value == 2.0 and out["b"].undefined_at == (1,)
    one = st.over_replicates([{"a": 1.0}])["a"]
    assert one.value == 1.0 and one.interval is None and "single replicate" in one.uncertainty


def test_the_jackknife_of_a_mean_is_the_replicate_interval():
    """For a mean the jackknife pseudo-values are the replicate values, so the two intervals agree."""
    x = np.array([0.3, 0.9, 0.4, 0.7])
    m = st.jackknife(lambda draw: {"mean": x[draw].mean()}, len(x))["mean"]
    assert m.value == pytest.approx(x.mean()) and m.interval == pytest.approx(st.prediction_interval(x))


def test_the_jackknife_interval_covers_a_ratio_of_means():
    """A statistic of replicate means (a ratio), skewed replicates (gamma(4)), 3 replicates: 93-97% coverage."""
    rng = np.random.default_rng(1)
    hits, trials = 0, 4000
    for _ in range(trials):
        x, y = rng.gamma(4.0, size=(2, 2, 3))
        m = st.jackknife(lambda d, x=x: {"r": x[0, d].mean() / x[1, d].mean()}, 3)["r"]
        hits += m.interval[0] <= y[0].mean() / y[1].mean() <= m.interval[1]
    assert 0.93 <= hits / trials <= 0.97, hits / trials


def test_a_clustered_bootstrap_resamples_whole_clusters():
    """Ten clusters of ten identical rows: resampling rows as if independent gives a far narrower interval than
    resampling the clusters, which is the honest one (ten independent values)."""
    rng = np.random.default_rng(0)
    values = np.repeat(rng.normal(size=10), 10)
    clusters = np.repeat(np.arange(10), 10)
    rows = st.bootstrap_interval(np.mean, values, n_boot=2000)
    whole = st.bootstrap_interval(np.mean, values, n_boot=2000, clusters=clusters)
    assert (whole[1] - whole[0]) > 2 * (rows[1] - rows[0])
    assert (whole[1] - whole[0]) == pytest.approx(2 * 1.96 * values[::10].std() / np.sqrt(10), rel=0.25)


def test_the_jackknife_interval_covers_a_rank_correlation_of_mean_curves():
    """Part I's statistic: Spearman's rho between a six-point x and the mean over replicates of noisy rising curves.
    Its jackknife pseudo-values stray far outside [-1, 1], yet the interval covers a rerun's rho 93-97% of the time
    at 3 replicates (2,000 simulated reruns)."""
    from scipy import stats

    rng, x, hits, trials = np.random.default_rng(2), np.arange(6), 0, 2000
    for _ in range(trials):
        now, rerun = (x + 1.5 * rng.normal(size=(3, 6)) for _ in range(2))
        m = st.jackknife(lambda d, now=now: {"rho": stats.spearmanr(x, now[d].mean(0)).statistic}, 3)["rho"]
        low, high = m.clipped(-1.0, 1.0).interval
        hits += low - 1e-9 <= stats.spearmanr(x, rerun.mean(0)).statistic <= high + 1e-9
    assert 0.93 <= hits / trials <= 0.97, hits / trials
