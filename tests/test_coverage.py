"""pass@k against enumeration of every k-subset, its limits, and the modal-answer share by hand."""

import itertools

import numpy as np
import pytest

from steerlib.measures.coverage import modal_share, pass_at_k


@pytest.mark.parametrize("n, c, k", [(5, 0, 2), (5, 1, 2), (6, 2, 3), (6, 5, 1), (7, 3, 7), (4, 4, 2), (8, 1, 8)])
def test_pass_at_k_equals_the_share_of_k_subsets_holding_a_right_sample(n, c, k):
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    expected = np.mean([any(samples[i] for i in s) for s in subsets])
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_limits_and_arrays():
    assert pass_at_k(32, 0, 16) == 0.0 and pass_at_k(32, 32, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the share of right samples
    curve = [float(pass_at_k(32, 2, k)) for k in range(1, 17)]
    assert all(a <= b for a, b in zip(curve, curve[1:])), "pass@k rises with k"
    assert pass_at_k(4, np.array([[0, 1], [2, 4]]), 2).shape == (2, 2)


@pytest.mark.parametrize(
    "n, c, k, match", [(4, 1, 5, "k=5"), (4, -1, 2, "c"), (4, 5, 2, "c"), (0, 0, 1, "n=0"), (4, 1, 0, "k=0")]
)
def test_pass_at_k_refuses_impossible_counts(n, c, k, match):
    with pytest.raises(ValueError, match=match):
        pass_at_k(n, c, k)


def test_modal_share_by_hand():
    assert modal_share([3, 3, 5, None]) == 0.5
    assert modal_share([None, None]) == 0.0
    assert modal_share([7]) == 1.0
    with pytest.raises(ValueError, match="answers"):
        modal_share([])
