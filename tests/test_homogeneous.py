"""The theory simulation: data, the padded depth stack, stable rank, margins and the OCS of a margin loss."""

import math

import pytest
import torch

from steerlib.measures import homogeneous as H


def test_stable_rank_of_known_matrices():
    u, v = torch.randn(5, 1), torch.randn(1, 4)
    assert H.stable_rank(u @ v).item() == pytest.approx(1.0, rel=1e-5)
    assert H.stable_rank(torch.eye(6)).item() == pytest.approx(6.0)
    assert H.stable_rank(torch.diag(torch.tensor([2.0, 1.0]))).item() == pytest.approx(1.25)
    batched = torch.stack([torch.eye(3), torch.diag(torch.tensor([1.0, 0.0, 0.0]))])
    assert torch.allclose(H.stable_rank(batched), torch.tensor([3.0, 1.0]))


def test_hidden_stable_rank_leaves_out_the_input_and_output_layers_at_every_depth():
    """A depth-3 and a depth-5 net padded to 5 layers: layers 0..L-1 are W_1..W_L. The hidden layers are W_2 (depth 3)
    and W_2..W_4 (depth 5); the output layer W_L (stable rank 1, set to 1 here) never enters, nor does W_1 (set to
    100), nor the NaN padding. Reading layers 1..L_max-2 of every net, as before the fix, would average the depth-3
    net's output layer in: (2 + 1) / 2 = 1.5 instead of 2."""
    nan = float("nan")
    sr = torch.tensor([[[100.0, 2.0, 1.0, nan, nan]], [[100.0, 3.0, 4.0, 5.0, 1.0]]])  # (depths, seeds=1, layers)
    hidden = H.hidden_stable_rank(sr, (3, 5))
    assert hidden.shape == (2, 1)
    assert hidden[:, 0].tolist() == pytest.approx([2.0, 4.0])
    with pytest.raises(ValueError, match="depths"):
        H.hidden_stable_rank(sr, (3,))


def test_normalised_margin_is_invariant_to_rescaling_a_layer():
    """min_n y_n f(x_n) / prod ||W_i||_F: scaling W_1 by 3 scales f by 3 (ReLU is homogeneous) and the product too."""
    net = H.DeepReLUStack([3], width=4, dim=3, seed=0)
    x, y = H.binary_data(20, dim=3, seed=0)
    ws = net.weights(0)
    m = H.normalised_margin(net.forward(x)[0], y, [w[None] for w in ws])
    expected = (y * net.forward(x)[0][0]).min() / math.prod(float(w.norm()) for w in ws)
    assert m.item() == pytest.approx(expected.item(), rel=1e-5)
    net.w_in *= 3
    m3 = H.normalised_margin(net.forward(x)[0], y, [w[None] for w in net.weights(0)])
    assert m3.item() == pytest.approx(m.item(), rel=1e-5)


def test_binary_data_lies_in_the_unit_ball_with_quadrant_labels():
    x, y = H.binary_data(500, dim=6, p_pos=0.7, noise=0.05, seed=3)
    assert x.shape == (500, 6) and x.norm(dim=1).max() <= 1 + 1e-6
    assert torch.equal(torch.sign(x[:, 0] * x[:, 1]), y)
    assert (y > 0).float().mean().item() == pytest.approx(0.7, abs=0.06)
    angle = torch.rad2deg(torch.atan2(x[:, 1].abs(), x[:, 0].abs()))
    assert angle.min() > 4 and angle.max() < 86  # the angular margin to the axes, up to the rescaling by noise


def test_off_plane_keeps_norms_and_turns_by_the_angle():
    x, _ = H.binary_data(50, dim=5, noise=0.0)
    for degrees in (0, 30, 90):
        z = H.off_plane(x, degrees, seed=1)
        assert torch.allclose(z.norm(dim=1), x.norm(dim=1), atol=1e-6)
        in_plane = z[:, :2].norm(dim=1) / z.norm(dim=1)
        assert torch.allclose(in_plane, torch.full((50,), math.cos(math.radians(degrees))), atol=1e-5)


def explicit_forward(weights: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    h = x
    for w in weights[:-1]:
        h = torch.relu(h @ w.T)
    return (h @ weights[-1].T).squeeze(-1)


def test_padded_members_are_exactly_their_own_depth():
    """A depth-L member of the stack is a depth-L net: the frozen identity layers change neither output nor training."""
    net = H.DeepReLUStack([2, 3, 5], width=8, dim=4, seed=0)
    x, y = H.binary_data(40, dim=4, seed=1)
    before = [w.clone() for w in net.w_hidden]
    H.train(net, x, y, steps=20, lr=0.1, weight_decay=1e-2)
    out, feats = net.forward(x)
    for b, depth in enumerate((2, 3, 5)):
        ws = net.weights(b)
        assert len(ws) == depth
        assert torch.allclose(out[b], explicit_forward(ws, x), atol=1e-5)
        for slot in range(depth - 2, 3):  # frozen slots stay the identity
            assert torch.equal(net.w_hidden[slot, b], torch.eye(8))
        for slot in range(depth - 2):  # trained slots moved
            assert not torch.equal(net.w_hidden[slot, b], before[slot][b])
    assert len(feats) == 4 and feats[0].shape == (3, 40, 8)


def test_gradient_descent_fits_the_data_and_shrinks_the_rank():
    x, y = H.binary_data(60, dim=4, seed=0)
    net = H.DeepReLUStack([3, 3], width=16, dim=4, seed=0)
    start = H.margin_loss(net.forward(x)[0], y)
    init_rank = H.stable_rank(net.w_hidden[0]).mean()
    H.train(net, x, y, steps=500, lr=0.2, weight_decay=1e-2)
    out = net.forward(x)[0]
    assert (H.margin_loss(out, y) < start / 5).all()
    assert ((y * out).min(-1).values > 0).all(), "every training point is classified correctly"
    assert H.stable_rank(net.w_hidden[0]).mean() < init_rank / 2


def test_margin_loss_values():
    out, y = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, -1.0]])
    assert H.margin_loss(out, y, "exponential").item() == pytest.approx((1 + math.e**2) / 2)
    assert H.margin_loss(out, y, "logistic").item() == pytest.approx((math.log(2) + math.log(1 + math.e**2)) / 2)
    with pytest.raises(ValueError, match="loss='hinge'"):
        H.margin_loss(out, y, "hinge")


def test_ocs_logit_and_margin_points():
    p = torch.tensor([0.7, 0.5, 0.3])
    assert torch.allclose(H.ocs_logit(p), torch.log(p / (1 - p)))
    assert torch.allclose(H.ocs_logit(p, "exponential"), 0.5 * torch.log(p / (1 - p)))
    margins = torch.tensor([[1.0, 1.04, 1.2, 3.0]])
    assert H.margin_points(margins).tolist() == [[True, True, False, False]]


def test_output_bias_moves_towards_the_majority_label_first():
    """The first gradient step on b is -dL/db = mean(y sigma(-y f)) ~ (2p - 1)/2 at a small init: the OCS sign."""
    x, y = H.binary_data(200, dim=4, p_pos=0.8, seed=2)
    net = H.DeepReLUStack([3], width=8, dim=4, seed=0, output_bias=True)
    trace = H.train(net, x, y[None], steps=5, lr=0.1, weight_decay=0.0)
    assert trace[0].item() > 0 and len(trace) == 5


def test_simulation_shapes_on_a_tiny_config():
    cfg = H.SimConfig(
        depths=(3, 4),
        width=8,
        dim=4,
        n_train=40,
        n_test=30,
        replicates=2,
        steps=30,
        angles=(0, 90),
        bias_replicates=2,
        bias_steps=40,
    )
    r = H.simulate(cfg)
    assert r.stable_rank.shape == (2, 2, 4)
    assert torch.isnan(r.stable_rank[0, :, 3]).all()  # a depth-3 net has 3 layers
    assert r.norm_ratio.shape == (2, 2, 2, 3)
    assert torch.allclose(r.norm_ratio[:, :, 0], torch.ones(2, 2, 3), atol=0.3)  # 0 degrees: a P_train sample
    assert r.abs_out.shape == r.rank_one_proj.shape == (2, 2, 2, 30)
    assert r.bias.final.shape == (4,) and r.bias.trace.shape == (4, 40)
    assert r.bias.margin_trace.shape == (4, 40) and r.bias.checkpoints[-1] == 40
    assert r.bias.margin_change().shape == (4,)
    with pytest.raises(ValueError, match="loss"):
        H.SimConfig(loss="hinge")
