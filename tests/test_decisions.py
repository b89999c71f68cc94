"""Decision problems on hand-worked cases: targets, OCS, thresholds, policies, rewards."""

import pytest
import torch

from steerlib.measures.decisions import RewardTable, abstain_ratio, greedy_policy, mean_reward, threshold_policy
from steerlib.vision.losses import make_loss

K = 10
BALANCED = torch.full((K,), 1 / K)
MILD = RewardTable(1.0, -0.05, 0.0)


def test_default_table_threshold_is_point_eight():
    # answer iff -4 + 5 p >= 0, i.e. p >= 0.8
    assert RewardTable().threshold == pytest.approx(0.8)
    assert MILD.threshold == pytest.approx(0.05 / 1.05)
    assert RewardTable(2.0, -3.0, -1.0).threshold == pytest.approx(0.4)


def test_table_must_order_rewards():
    with pytest.raises(ValueError, match="wrong < abstain < correct"):
        RewardTable(1.0, 0.0, 0.0)


def test_targets_are_the_reward_of_every_action():
    t = RewardTable().targets(torch.tensor([2, 0]), num_classes=3)
    assert torch.equal(t, torch.tensor([[-4.0, -4.0, 1.0, 0.0], [1.0, -4.0, -4.0, 0.0]]))


def test_reward_ocs_for_balanced_classes():
    # f*_c = 5 p_c - 4 = -3.5 and f*_abstain = 0; the same vector is what the MSE loss reports as its OCS
    ocs = RewardTable().expected_rewards(BALANCED)
    assert torch.allclose(ocs, torch.tensor([-3.5] * K + [0.0]))
    y = torch.arange(K).repeat(7)
    assert torch.allclose(make_loss("mse_reward", K).ocs(y), ocs)


def test_ocs_policy_abstains_under_default_table_but_answers_under_mild_one():
    assert RewardTable().ocs_action(BALANCED) == K  # -3.5 < 0: abstain
    action = MILD.ocs_action(BALANCED)  # -0.05 + 1.05 * 0.1 = 0.055 > 0: answer
    assert 0 <= action < K
    skewed = torch.tensor([0.85] + [0.15 / (K - 1)] * (K - 1))  # one class above the 0.8 threshold
    assert RewardTable().ocs_action(skewed) == 0


def test_bayes_policy_is_argmax_of_expected_rewards():
    g = torch.Generator().manual_seed(0)
    probs = (torch.randn(500, K, generator=g) * 3).softmax(-1)
    for table in (RewardTable(), MILD, RewardTable(2.0, -3.0, -1.0)):
        assert torch.equal(table.bayes_policy(probs), greedy_policy(table.expected_rewards(probs)))


def test_threshold_policy_hand_worked():
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])
    assert threshold_policy(probs, 0.8).tolist() == [0, 2, 1, 2]  # 0.8 itself answers
    assert threshold_policy(probs, 0.5).tolist() == [0, 0, 1, 0]


def test_greedy_policy_picks_the_highest_predicted_reward():
    rewards = torch.tensor([[0.9, -4.0, -4.0, 0.0], [-3.5, -3.5, -3.5, 0.0], [-1.0, 0.2, -4.0, 0.1]])
    assert greedy_policy(rewards).tolist() == [0, 3, 1]


def test_rewards_and_metrics_hand_worked():
    table = RewardTable()
    actions = torch.tensor([0, 1, 3, 2])  # K = 3: action 3 abstains
    y = torch.tensor([0, 2, 1, 2])
    assert table.rewards(actions, y, 3).tolist() == [1.0, -4.0, 0.0, 1.0]
    assert mean_reward(actions, y, table, 3).item() == pytest.approx(-0.5)
    assert abstain_ratio(actions, 3).item() == pytest.approx(0.25)
    assert mean_reward(actions, y, MILD, 3).item() == pytest.approx((1 - 0.05 + 0 + 1) / 4)


def test_metrics_keep_leading_dimensions():
    actions = torch.tensor([[3, 3, 0], [0, 1, 2]])  # two seeds, three decisions each
    y = torch.tensor([0, 1, 0])
    assert abstain_ratio(actions, 3).tolist() == pytest.approx([2 / 3, 0.0])
    assert mean_reward(actions, y, RewardTable(), 3).tolist() == pytest.approx([1 / 3, (1 + 1 - 4) / 3])


def test_label_names_the_table():
    assert RewardTable().label == "+1/-4/0"
    assert MILD.label == "+1/-0.05/0"
