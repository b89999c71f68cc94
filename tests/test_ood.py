import torch

from steerlib.measures.ood import ood_score


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
