"""Iterated FGSM on a linear model, where each round's step is known in closed form."""

from collections import OrderedDict

import torch
from torch import nn

from steerlib.core.seeds import replicates
from steerlib.vision.adversarial import iterated_fgsm, random_sign_like
from steerlib.vision.ensemble import Ensemble
from steerlib.vision.losses import make_loss

W = torch.tensor([[1.0, -2.0, 0.5, 0.0], [-1.0, 1.0, 1.5, 3.0]])


def linear() -> nn.Sequential:
    net = nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc=nn.Linear(4, 2)))
    with torch.no_grad():
        net.fc.weight.copy_(W)
        net.fc.bias.zero_()
    return net


def test_fgsm_on_a_linear_model_steps_along_the_sign_of_the_weight_difference():
    """For 2-class CE on logits W x, grad_x = p_other (w_other - w_y): every round adds eps sign(w_other - w_y)."""
    ens = Ensemble(linear, replicates(0, 2))
    x = torch.zeros(3, 1, 4)
    y = torch.tensor([0, 1, 0])
    adv = iterated_fgsm(ens, make_loss("ce", 2), x, y, eps=0.1, steps=3)
    assert adv.shape == (2, 3, 1, 4)
    step = torch.sign(W[1] - W[0])  # for y = 0; the negative for y = 1
    expected = torch.stack([step, -step, step])[:, None] * 0.3
    assert torch.allclose(adv[0], expected) and torch.allclose(adv[1], expected)


def test_fgsm_raises_the_loss_and_respects_the_value_range():
    ens = Ensemble(linear, replicates(0, 1))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(20, 1, 4, generator=g), torch.randint(0, 2, (20,), generator=g)
    loss = make_loss("ce", 2)
    adv = iterated_fgsm(ens, loss, x, y, eps=0.05, steps=4, value_range=(0.0, 1.0))
    assert adv.min() >= 0 and adv.max() <= 1
    assert (adv - x).abs().max() <= 0.2 + 1e-6
    with torch.no_grad():
        assert loss(ens(adv[0]), y).mean() > loss(ens(x), y).mean()


def test_random_sign_control_has_the_same_size_per_entry():
    x = torch.rand(2, 5, 1, 4)
    adv = x + torch.randn(2, 5, 1, 4)
    rand = random_sign_like(x, adv, seed=1)
    assert torch.allclose((rand - x).abs(), (adv - x).abs())
    assert not torch.allclose(rand, adv)
    assert random_sign_like(x, adv, value_range=(0.0, 1.0)).max() <= 1


def test_fgsm_in_batches_equals_fgsm_in_one_batch():
    """Each input's gradient is its own (eval mode), so the batch size changes nothing but speed."""
    ens = Ensemble(
        lambda: nn.Sequential(
            OrderedDict(flatten=nn.Flatten(), fc1=nn.Linear(4, 8), relu=nn.ReLU(), fc2=nn.Linear(8, 3))
        ),
        replicates(0, 2),
    )
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(7, 1, 4, generator=g), torch.randint(0, 3, (7,), generator=g)
    loss = make_loss("ce", 3)
    one = iterated_fgsm(ens, loss, x, y, eps=0.05, steps=3, batch_size=len(x))
    assert torch.allclose(iterated_fgsm(ens, loss, x, y, eps=0.05, steps=3, batch_size=2), one)
    assert not torch.allclose(one, x.expand_as(one))  # the attack moved the inputs
