"""Activation capture, feature norms, projection ratios and accumulated constants on hand-built networks."""

from collections import OrderedDict

import pytest
import torch
from torch import nn

from steerlib.vision import representations as rep


def two_layer() -> nn.Sequential:
    """fc1: W1 = [[1, 0, 0], [0, 2, 0]], b1 = [0.5, -1]; ReLU; fc2: W2 = [[1, 1]], b2 = [0.3]."""
    net = nn.Sequential(OrderedDict(fc1=nn.Linear(3, 2), relu=nn.ReLU(), fc2=nn.Linear(2, 1)))
    with torch.no_grad():
        net.fc1.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 2, 0]]))
        net.fc1.bias.copy_(torch.tensor([0.5, -1.0]))
        net.fc2.weight.copy_(torch.tensor([[1.0, 1.0]]))
        net.fc2.bias.copy_(torch.tensor([0.3]))
    return net.eval()


E1, E2, E3 = torch.eye(3)


def test_capture_records_what_each_affine_layer_receives():
    net, x = two_layer(), torch.tensor([[1.0, 1.0, 5.0], [-2.0, 0.0, 1.0]])
    out, phis = rep.capture(net, x, batch_size=1)
    assert torch.equal(phis["fc1"], x)
    assert torch.allclose(phis["fc2"], torch.tensor([[1.5, 1.0], [0.0, 0.0]]))
    assert torch.allclose(out, net(x))
    assert not net.fc1._forward_hooks  # hooks are removed


def test_feature_norms_exclude_the_bias():
    net, x = two_layer(), torch.tensor([[1.0, 1.0, 5.0], [-2.0, 0.0, 1.0]])
    norms = rep.feature_norms(net, x)
    assert list(norms) == ["input", "fc1", "fc2"]
    assert all(torch.equal(norms[k], v) for k, v in rep.feature_norms(net, x, rep.capture(net, x)[1]).items())
    assert torch.allclose(norms["input"], torch.tensor([27.0, 5.0]))
    assert torch.allclose(norms["fc1"], torch.tensor([1.0 + 4.0, 4.0]))  # ||W1 x||^2 = x1^2 + 4 x2^2
    assert torch.allclose(norms["fc2"], torch.tensor([2.5**2, 0.0]))  # W2 relu(W1 x + b1), without b2


def test_feature_norm_ratio_is_a_ratio_of_means():
    ood = {"fc1": torch.tensor([1.0, 3.0])}
    train = {"fc1": torch.tensor([4.0, 4.0, 4.0])}
    assert rep.feature_norm_ratio(ood, train) == {"fc1": pytest.approx(0.5)}


@pytest.mark.parametrize(
    "s, energy, k",
    [
        ([2.0, 1.0], 0.95, 2),
        ([2.0, 1.0], 0.85, 1),
        ([1.0] * 4, 0.95, 4),
        ([1.0] * 4, 0.7, 2),
        ([1.0] * 4, 0.5, 1),
        ([5.0, 0.0], 1.0, 1),
    ],
)
def test_spectral_rank_keeps_a_fraction_of_the_frobenius_norm(s, energy, k):
    """sqrt(4/5) = 0.894 of ||diag(2, 1)||_F lies in the top singular value; sqrt(2/4) = 0.707 in two of four."""
    assert rep.spectral_rank(torch.tensor(s), energy) == k


def test_projection_ratio_is_one_in_the_row_space_and_zero_outside():
    """W1 has singular values 2 (direction e2) and 1 (e1): the energy rule gives k = 2 at 0.95 and k = 1 at 0.85."""
    layer = rep.affine_layers(two_layer())[0]
    x = torch.stack([E1, E2, E3, (E1 + E3) / 2**0.5])
    assert torch.allclose(rep.projection_ratio(layer, x), torch.tensor([1.0, 1.0, 0.0, 0.5], dtype=torch.float64))
    assert torch.allclose(
        rep.projection_ratio(layer, x, energy=0.85), torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    )
    assert torch.allclose(rep.projection_ratio(layer, x, k=1), rep.projection_ratio(layer, x, energy=0.85))
    with pytest.raises(ValueError, match="k=3"):
        rep.projection_ratio(layer, x, k=3)


def test_accumulated_constants_are_the_output_with_a_zero_linear_term():
    net = two_layer()
    # layer fc1: fc2(relu(b1)) = relu(0.5) + relu(-1) + 0.3; layer fc2: its bias
    assert rep.accumulated_constants(net, "fc1", (3,)).item() == pytest.approx(0.8)
    assert rep.accumulated_constants(net, "fc2", (3,)).item() == pytest.approx(0.3)
    with pytest.raises(ValueError, match="relu"):
        rep.accumulated_constants(net, "relu", (3,))
    # the hook is removed afterwards
    assert net(torch.zeros(1, 3)).item() == pytest.approx(0.8)


def conv_net() -> nn.Sequential:
    """conv: 1 -> 2 channels, 3x3, padding 1; channel 0 copies the centre pixel, channel 1 is zero; bias (1, -2)."""
    net = nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(1, 2, 3, padding=1), relu=nn.ReLU(), flatten=nn.Flatten(), fc=nn.Linear(2 * 3 * 3, 1)
        )
    )
    with torch.no_grad():
        net.conv.weight.zero_()
        net.conv.weight[0, 0, 1, 1] = 1.0
        net.conv.bias.copy_(torch.tensor([1.0, -2.0]))
        net.fc.weight.fill_(0.5)
        net.fc.bias.fill_(0.25)
    return net.eval()


def test_conv_projection_ratio_uses_the_unfolded_patches():
    """A single lit pixel appears in all 9 padded 3x3 patches, at the centre of only one: the ratio is 1/9."""
    layer = rep.affine_layers(conv_net())[0]
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0
    assert layer.weight_matrix().shape == (2, 9)
    assert layer.patches(x).shape == (1, 9, 9)
    assert rep.projection_ratio(layer, x).item() == pytest.approx(1 / 9)


def test_conv_feature_norms_and_constants():
    net, x = conv_net(), torch.rand(4, 1, 3, 3)
    norms = rep.feature_norms(net, x)
    assert torch.allclose(norms["conv"], x.flatten(1).pow(2).sum(1))  # channel 0 = x, channel 1 = 0, no bias
    # zero linear term: channel maps are relu(1) = 1 and relu(-2) = 0 at all 9 positions -> 0.5 * 9 + 0.25
    assert rep.accumulated_constants(net, "conv", (1, 3, 3)).item() == pytest.approx(4.75)


def test_conv1d_patches_match_a_direct_unfold():
    conv = nn.Conv1d(2, 3, kernel_size=3, padding=1)
    layer = rep.AffineLayer("c", conv)
    x = torch.randn(5, 2, 7)
    p = layer.patches(x)  # (N, L, in * k)
    direct = torch.nn.functional.pad(x, (1, 1)).unfold(2, 3, 1).permute(0, 2, 1, 3).reshape(5, 7, 6)
    assert torch.allclose(p, direct)
    # the linear part is W applied to each patch
    assert torch.allclose(layer.linear_part(x), (p @ layer.weight_matrix().T).transpose(1, 2), atol=1e-6)


def with_norm(kind: str) -> nn.Sequential:
    norm = nn.BatchNorm1d(2) if kind == "batch" else nn.LayerNorm(2)
    net = nn.Sequential(OrderedDict(fc1=nn.Linear(2, 2), norm=norm, relu=nn.ReLU(), fc2=nn.Linear(2, 1)))
    with torch.no_grad():
        net.fc1.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, -1.0]]))
        net.fc1.bias.copy_(torch.tensor([0.5, -0.5]))
        net.norm.weight.copy_(torch.tensor([2.0, 0.5]))
        net.norm.bias.copy_(torch.tensor([0.1, 0.2]))
        if kind == "batch":
            net.norm.running_mean.copy_(torch.tensor([1.0, -1.0]))
            net.norm.running_var.copy_(torch.tensor([4.0, 0.25]))
    return net.eval()


def test_eval_batchnorm_is_folded_into_the_layer_before_it():
    """BN(W x + b) = diag(gamma / s) W x + BN(b): the linear part is scaled, the rest is a constant."""
    net, x = with_norm("batch"), torch.randn(6, 2)
    fc1 = rep.affine_layers(net)[0]
    s = torch.sqrt(torch.tensor([4.0, 0.25]) + net.norm.eps)
    assert torch.allclose(fc1.scale, torch.tensor([2.0, 0.5]) / s)
    assert torch.allclose(fc1.weight_matrix(), torch.tensor([2.0, 0.5])[:, None] / s[:, None] * net.fc1.weight)
    with torch.no_grad():
        full = net.norm(net.fc1(x))
        const = net.norm(net.fc1.bias[None])
    assert torch.allclose(fc1.linear_part(x), full - const, atol=1e-6)
    expected = net.fc2(torch.relu(const))
    assert torch.allclose(rep.accumulated_constants(net, "fc1", (2,)), expected[0])
    net.train()
    with pytest.raises(ValueError, match="eval mode"):
        rep.affine_layers(net)


def test_layernorm_is_not_folded():
    """LayerNorm divides by a statistic of each input, so W stays the layer's own; its shift enters the constants."""
    net, x = with_norm("layer"), torch.randn(6, 2)
    fc1 = rep.affine_layers(net)[0]
    assert fc1.scale is None
    assert torch.allclose(fc1.linear_part(x), x @ net.fc1.weight.T.detach())
    with torch.no_grad():
        expected = net.fc2(torch.relu(net.norm(net.fc1.bias[None])))
    assert torch.allclose(rep.accumulated_constants(net, "fc1", (2,)), expected[0])


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(3, 4, (3, 2), stride=2, padding=1, dilation=2),
        nn.Conv2d(2, 5, 3, stride=(1, 2), padding=(1, 0)),
        nn.Conv1d(2, 3, 4, stride=3),
    ],
)
def test_conv_projection_profile_equals_the_sum_over_unfolded_patches(conv):
    """The convolution form of projection_profile against its definition: sum_p sum_{i<=k} (v_i^T p)^2 / sum_p ||p||^2
    over the unfolded patches p, for strides, padding and dilation."""
    torch.manual_seed(0)
    layer = rep.AffineLayer("conv", conv)
    phi = torch.rand(5, conv.in_channels, *((9, 10) if isinstance(conv, nn.Conv2d) else (13,)))
    s, ratios = rep.projection_profile(layer, phi)
    _, s_ref, vh = torch.linalg.svd(layer.weight_matrix().double(), full_matrices=False)
    p = layer.patches(phi).double()
    expected = (p @ vh.T).pow(2).sum(1).cumsum(-1) / p.pow(2).sum((1, 2))[:, None]
    assert torch.allclose(s, s_ref) and torch.allclose(ratios, expected, atol=1e-6)
