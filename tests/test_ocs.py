"""Closed-form OCS against numerical minimisation of the average training loss over constant predictions."""

import pytest
import torch

from steerlib.measures.decisions import RewardTable
from steerlib.measures.ocs import ocs_cross_entropy, ocs_gaussian, ocs_reward
from steerlib.vision.losses import make_loss


def minimise_constant(loss, y, dim, steps=300):
    f = torch.zeros(dim, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([f], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = loss(f.expand(len(y), dim), y).mean()
        value.backward()
        return value

    opt.step(closure)
    return f.detach()


@pytest.fixture
def labels():
    return torch.tensor([0, 0, 0, 1, 2, 2, 3, 3, 3, 3])


def test_cross_entropy_ocs_is_label_marginal(labels):
    assert torch.allclose(ocs_cross_entropy(labels, 5), torch.tensor([0.3, 0.1, 0.2, 0.4, 0.0]))
    loss = make_loss("ce", 4)
    f = minimise_constant(loss, labels, 4)
    assert torch.allclose(f.softmax(-1).float(), ocs_cross_entropy(labels, 4), atol=1e-4)


def test_reward_ocs_closed_form_and_numerical(labels):
    balanced = torch.arange(10).repeat(3)
    expected = torch.tensor([-3.5] * 10 + [0.0])
    assert torch.allclose(ocs_reward(balanced, 10), expected)
    table = RewardTable(correct=2.0, wrong=-1.0, abstain=0.5)
    loss = make_loss("mse_reward", 4, table)
    f = minimise_constant(loss, labels, 5)
    assert torch.allclose(f.float(), ocs_reward(labels, 4, table), atol=1e-4)
    # by hand: class 3 has p = 0.4, so -1 + 3 * 0.4 = 0.2; abstain is constant 0.5
    assert ocs_reward(labels, 4, table)[3].item() == pytest.approx(0.2)
    assert ocs_reward(labels, 4, table)[4].item() == pytest.approx(0.5)


def test_gaussian_ocs_is_mean_and_biased_variance():
    t = torch.tensor([1.0, 2.0, 4.0, 9.0])
    mu, var = ocs_gaussian(t)
    assert mu == pytest.approx(4.0) and var == pytest.approx((9 + 4 + 0 + 25) / 4)
    loss = make_loss("gaussian_nll", 10)
    f = minimise_constant(loss, t.double(), 2)
    assert f[0].item() == pytest.approx(mu, abs=1e-4)
    assert f[1].exp().item() == pytest.approx(var, rel=1e-4)  # the log-variance head
