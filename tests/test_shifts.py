import numpy as np
import pytest
import torch

from steerlib.vision.shifts import SHIFTS, apply_shift, evaluation_sets, severities


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 1, 8, 8, generator=g)


def test_severity_zero_is_identity(images):
    for shift in SHIFTS:
        assert torch.equal(apply_shift(images, shift, 0), images)


def test_rotate_90_is_rot90(images):
    out = apply_shift(images, "rotate", 90)
    expected = torch.rot90(images, k=1, dims=(2, 3))
    assert torch.allclose(out, expected, atol=1e-5)


def test_rotate_1d_small_angle_is_nearly_identity_and_large_angle_is_not():
    t = torch.linspace(-1, 1, 40)
    x = (0.3 * torch.sin(3 * t)).reshape(1, 1, 40)
    assert torch.allclose(apply_shift(x, "rotate", 0.01), x, atol=1e-3)
    assert (apply_shift(x, "rotate", 60) - x).abs().mean() > 0.1


def test_noise_is_seeded_and_clipped(images):
    a = apply_shift(images, "noise", 0.5, seed=1)
    assert torch.equal(a, apply_shift(images, "noise", 0.5, seed=1))
    assert not torch.equal(a, apply_shift(images, "noise", 0.5, seed=2))
    assert a.min() >= 0 and a.max() <= 1


def test_saltpepper_fraction_and_values(images):
    big = torch.full((200, 1, 8, 8), 0.5)
    out = apply_shift(big, "saltpepper", 0.2, value_range=(-1.0, 2.0))
    changed = out != 0.5
    assert changed.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(np.unique(out[changed].numpy())) == {-1.0, 2.0}


def test_blur_keeps_constants_and_smooths(images):
    const = torch.full((2, 1, 8, 8), 0.7)
    assert torch.allclose(apply_shift(const, "blur", 1.0), const)
    assert apply_shift(images, "blur", 1.0).var() < images.var()


def test_errors_name_the_parameter(images):
    with pytest.raises(ValueError, match="shift='fog'.*'rotate'"):
        apply_shift(images, "fog", 1.0)
    with pytest.raises(ValueError, match="severity=-1"):
        apply_shift(images, "noise", -1)


def test_evaluation_sets_cover_every_shift_and_level(images):
    y = torch.arange(6)
    sets = evaluation_sets(images, y, ("rotate", "blur"), (0.0, 1.0))
    assert [(s.shift, s.level) for s in sets][:3] == [("none", 0), ("rotate", 1), ("rotate", 2)]
    assert len(sets) == 11
    assert [s.severity for s in sets if s.shift == "blur"] == list(severities("blur", (1, 8, 8)))


def test_read_ladder_interpolates_the_running_maximum_of_the_loss():
    """Accuracy 1, 0.875, 0.95, 0.5, 0.25 at severities 0..4: loss 0, 0.125, 0.05 -> 0.125 (running max), 0.5, 0.75.
    Loss 0.125 is first reached at 1; 0.3125 halfway from 2 to 3 (0.125 -> 0.5); 0.625 halfway from 3 to 4; 0.9
    never, so the grid's end."""
    from steerlib.vision.ladders import read_ladder

    sevs = np.arange(5.0)
    acc = np.array([1.0, 0.875, 0.95, 0.5, 0.25])
    assert read_ladder(sevs, acc, (0.125, 0.3125, 0.625, 0.9)) == pytest.approx((1.0, 2.5, 3.5, 4.0))


def test_evaluation_sets_follow_the_given_ladders(images):
    y = torch.arange(6)
    sets = evaluation_sets(
        images, y, ("blur",), (0.0, 1.0), ladders={"blur": (0.1, 0.2, 0.3, 0.4, 0.5), "noise": (0.1,)}
    )
    assert [s.severity for s in sets] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    with pytest.raises(ValueError, match="ladders has no severities for shift='rotate'"):
        evaluation_sets(images, y, ("rotate",), (0.0, 1.0), ladders={"blur": (0.1,)})
