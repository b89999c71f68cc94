"""Temperature scaling recovers known temperatures on synthetic logits."""

import pytest
import torch
import torch.nn.functional as F

from steerlib.vision.calibration import fit_temperature, scale


def _synthetic(n: int = 20000, k: int = 10, seed: int = 0):
    """Labels drawn from softmax(z): z are calibrated logits, so z * T is miscalibrated by exactly T."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g) * 2
    y = torch.multinomial(z.softmax(-1), 1, generator=g).squeeze(-1)
    return z, y


def test_recovers_a_shared_temperature_per_member():
    z, y = _synthetic()
    true = torch.tensor([0.5, 1.0, 2.5])
    t = fit_temperature(z * true[:, None, None], y, per_class=False)
    assert t.shape == (3, 1)
    assert t.squeeze(-1).tolist() == pytest.approx(true.tolist(), rel=0.03)


def test_recovers_per_class_temperatures():
    z, y = _synthetic()
    true = torch.linspace(0.5, 3.0, 10)
    t = fit_temperature(z * true, y)
    assert t.shape == (10,)
    assert t.tolist() == pytest.approx(true.tolist(), rel=0.1)


def test_scaling_lowers_the_nll_of_overconfident_logits():
    z, y = _synthetic(n=2000)
    logits = 4 * z
    t = fit_temperature(logits, y)
    assert F.cross_entropy(scale(logits, t), y) < F.cross_entropy(logits, y) - 0.1
