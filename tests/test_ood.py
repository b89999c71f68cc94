import torch

from steerlib.measures.ood import ood_score, random_relu_features


def test_same_distribution_scores_about_half_and_separable_sets_near_one():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(400, 1, 8, 8, generator=g)
    same = torch.rand(300, 1, 8, 8, generator=g)
    shifted = ref[:300] * 0.3 + 0.7
    s_same = ood_score(ref, same, n_splits=5)
    s_shift = ood_score(ref, shifted, n_splits=5)
    assert 0.35 < s_same < 0.6
    assert s_shift > 0.9


def test_score_grows_with_shift_size():
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(400, 1, 40, generator=g)
    scores = [ood_score(ref, torch.rand(300, 1, 40, generator=g) + d, n_splits=5) for d in (0.0, 0.05, 0.2)]
    assert scores[0] < scores[1] < scores[2]


def test_feature_dim_zero_is_a_linear_discriminator_on_the_raw_inputs():
    """With no random features the discriminator sees vec(x) alone: it separates a mean shift, but not a set whose
    coordinates are permuted across points (same marginals, same mean), which random ReLU features can."""
    g = torch.Generator().manual_seed(2)
    ref = torch.rand(600, 1, 4, generator=g)
    assert random_relu_features(ref, 0).shape == (600, 4)
    assert (random_relu_features(ref, 0) == ref.reshape(600, 4).numpy()).all()
    shifted = torch.rand(600, 1, 4, generator=g) + 1.0
    assert ood_score(ref, shifted, n_splits=3, feature_dim=0) > 0.65
    x = torch.rand(600, 1, 4, generator=g)
    tied = torch.cat([x[:, :, :2], x[:, :, :2]], dim=2)  # coordinates 2, 3 copy 0, 1: a dependence, no mean shift
    linear, features = ood_score(ref, tied, n_splits=3, feature_dim=0), ood_score(ref, tied, n_splits=3)
    assert linear < 0.55 and features > linear + 0.05
