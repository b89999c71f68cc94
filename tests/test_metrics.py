import math
import warnings

import numpy as np
import pytest
import torch

from steerlib.measures.divergences import entropy, kl_categorical, kl_gaussian, squared_distance
from steerlib.measures.statistics import spearman


def test_kl_categorical_hand_cases():
    p = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    assert torch.allclose(kl_categorical(p[:1], p[0]), torch.zeros(1, dtype=torch.float64))
    u = torch.full((3,), 1 / 3)
    assert kl_categorical(p[1], u).item() == pytest.approx(math.log(3))
    assert kl_categorical(torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])).item() == pytest.approx(
        0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    )


def test_kl_gaussian_matches_torch_distributions():
    mu, var = torch.tensor([0.0, 1.5, -2.0]), torch.tensor([1.0, 0.25, 4.0])
    ours = kl_gaussian(mu, var, 0.5, 2.0)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, var.sqrt()), torch.distributions.Normal(0.5, 2.0**0.5)
    )
    assert torch.allclose(ours.float(), ref, atol=1e-6)
    assert kl_gaussian(torch.tensor(3.0), torch.tensor(2.0), 3.0, 2.0).item() == pytest.approx(0.0)


def test_entropy_and_squared_distance():
    assert entropy(torch.full((4,), 0.25)).item() == pytest.approx(math.log(4))
    assert entropy(torch.tensor([1.0, 0.0])).item() == 0.0
    assert squared_distance(torch.tensor([[1.0, 2.0]]), torch.tensor([0.0, 0.0])).item() == 5.0


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_spearman_of_a_constant_is_nan_without_a_warning():
    """Undefined, and said quietly: a warning would print on the book's page."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(spearman([1, 1, 1], [1, 2, 3])) and np.isnan(spearman([1, 2, 3], [0.5, 0.5, 0.5]))
