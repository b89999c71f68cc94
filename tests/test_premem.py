import numpy as np
import pytest

from steerlib.measures import premem


def test_loglog_units():
    assert premem.threshold_from_loglog(-2.4) == pytest.approx(1.0950, abs=1e-4)  # GSM8K in the original code
    assert premem.threshold_from_loglog(-1.7) == pytest.approx(1.2000, abs=1e-3)  # MATH
    assert premem.loglog(premem.threshold_from_loglog(-2.0)) == pytest.approx(-2.0)


def test_premem_accuracy_by_hand():
    """Three checkpoints (rows), three examples (columns), p = 1.1."""
    acc = np.array([[0.5, 0.0, 1.0], [1.0, 1.0, 1.0], [0.25, 1.0, 1.0]])
    perp = np.array([[1.5, 2.0, 1.0], [1.05, 1.5, 1.0], [1.01, 1.0, 1.0]])
    # example 0: masked (0.5, 0, 0) → running max 0.5 → min with Acc: (0.5, 0.5, 0.25), the min term binds last
    # example 1: masked (0, 1, 0) → (0, 1, 1); example 2: memorized from the start → 0 throughout
    expected = np.array([[0.5, 0.0, 0.0], [0.5, 1.0, 0.0], [0.25, 1.0, 0.0]])
    np.testing.assert_allclose(premem.premem_accuracy(acc, perp, 1.1), expected)
    assert premem.min_binds(acc, perp, 1.1).tolist() == [[False] * 3, [False] * 3, [True, False, False]]
    assert premem.memorized(perp, 1.1)[:, 2].all() and not premem.memorized(perp, 1.1)[0, :2].any()
    # with p below every perplexity nothing is memorized and pre-memorization accuracy is min(running max, Acc) = Acc
    np.testing.assert_allclose(premem.premem_accuracy(acc, perp + 0.5, 1.1), acc)


def test_r2_closed_forms():
    y = np.array([0.0, 0.5, 1.0])
    assert premem.r2_identity(y, y) == 1.0
    assert premem.r2_identity(np.full(3, y.mean()), y) == pytest.approx(0.0)  # predicting the mean
    assert premem.r2_identity(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1 - 2 / 0.5)
    assert premem.r2_identity(y + 0.1, y) == pytest.approx(1 - 3 * 0.01 / 0.5)
    assert premem.r2_fit(2 * y + 1, y) == pytest.approx(1.0)  # a line fits exactly; the identity does not
    assert premem.r2_identity(2 * y + 1, y) < 0
    assert premem.pearson(y, -y) == pytest.approx(-1.0)


def test_calibrate_p_finds_the_threshold():
    """Each run has one example whose perplexity falls to 1.05 after the first checkpoint; test accuracy equals
    pre-memorization accuracy exactly when the threshold sits between 1.05 and 1.2."""
    acc = np.array([[0.6], [1.0]])
    perp = np.array([[1.2], [1.05]])
    runs = [(acc, perp, np.array([0.6, 0.6])), (acc * 0.5, perp, np.array([0.3, 0.3]))]
    grid = np.round(np.arange(1.0, 1.31, 0.05), 2)[1:]
    curve = premem.r2_curve(runs, grid)
    assert curve[(grid >= 1.05) & (grid < 1.2)] == pytest.approx(1.0)
    assert (curve[(grid < 1.05) | (grid >= 1.2)] < 1).all()
    assert premem.calibrate_p(runs, grid) == pytest.approx(1.05)
    x, y = premem.premem_points(runs, 1.1)
    np.testing.assert_allclose(x, [0.6, 0.6, 0.3, 0.3])
    np.testing.assert_allclose(y, x)


def test_prior_metrics_by_hand():
    assert premem.gradient_variance(np.array([[1.0, 2.0], [3.0, 2.0]])) == pytest.approx(0.5)
    assert premem.distance_from_init(np.array([1.0, 2.0]), np.zeros(2)) == pytest.approx(5.0)
    conf = np.linspace(0, 1, 101)
    t = premem.atc_threshold(conf, 0.3)
    assert t == pytest.approx(0.7)
    assert premem.atc_predict(conf, t) == pytest.approx(0.3, abs=0.01)
    assert premem.atc_predict(conf + 0.1, t) > 0.3


def test_calibrate_p_on_a_flat_curve_says_p_is_not_identified():
    """No perplexity lies inside the grid: every p gives the same R², so no p is calibrated (nor the first one)."""
    acc = np.array([[0.6], [1.0]])
    runs = [(acc, np.array([[2.0], [1.5]]), np.array([0.5, 0.7])), (acc / 2, np.array([[2.0], [1.5]]), [0.2, 0.4])]
    grid = np.round(np.arange(1.005, 1.3, 0.005), 3)
    assert np.ptp(premem.r2_curve(runs, grid)) == 0
    with pytest.raises(premem.PNotIdentified, match="p is not identified.*every p of p_grid"):
        premem.calibrate_p(runs, grid)
    with pytest.raises(ValueError, match="R² is undefined.*test accuracy is constant"):
        premem.calibrate_p([(acc, np.array([[1.2], [1.1]]), np.array([0.5, 0.5]))], grid)
