import copy

import pytest
import torch
from datasets import Dataset

from steerlib.core.cache import RunCache
from steerlib.lm.models import add_lora, build_model, tiny_config
from steerlib.lm.rl import RLConfig, leave_one_out_advantage, train_reinforce
from steerlib.lm.scoring import choice_logprobs
from steerlib.lm.sft import SFTConfig, train_sft
from steerlib.lm.tokenizer import pad_id, tokenize_sft, word_tokenizer

PROMPTS = ["q ?", "r ?"]


def test_leave_one_out_advantage_closed_form():
    rewards = torch.tensor([[1.0, 2.0, 6.0], [0.0, 0.0, 0.0]])
    adv = leave_one_out_advantage(rewards)
    assert adv[0].tolist() == pytest.approx([1 - 4, 2 - 3.5, 6 - 1.5])
    assert adv[1].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="samples_per_prompt"):
        RLConfig(samples_per_prompt=1)


@pytest.fixture(scope="module")
def coin():
    """A model that answers " a" or " b" about half the time to each prompt."""
    tok = word_tokenizer(["q r a b ?"])
    rows = {"prompt": PROMPTS * 2, "response": [" a", " a", " b", " b"]}
    model = build_model(tiny_config(tok, d_model=32, n_layers=1, n_heads=2), seed=0)
    train_sft(
        model,
        tokenize_sft(Dataset.from_dict(rows), tok),
        SFTConfig(steps=60, batch_size=4, lr=1e-2),
        pad_id(tok),
        "cpu",
    )
    return model.eval(), tok


def p_a(model, tok) -> float:
    return choice_logprobs(model, tok, PROMPTS, [[" a", " b"]] * 2).exp()[:, 0].mean().item()


def reward_a(idx: torch.Tensor, texts: list[str]) -> torch.Tensor:
    return torch.tensor([1.0 if t == "a" else 0.0 for t in texts])


def test_reinforce_raises_the_reward_and_kl_holds_it_back(coin, tmp_path):
    model, tok = coin
    start = p_a(model, tok)
    assert 0.3 < start < 0.7
    cfg = RLConfig(steps=25, prompts_per_step=8, samples_per_prompt=4, lr=3e-3, kl_coef=0.0, max_new_tokens=3)
    free = copy.deepcopy(model)
    history = train_reinforce(free, tok, PROMPTS, reward_a, cfg, device="cpu", cache=RunCache(tmp_path), key="a")
    assert p_a(free, tok) > 0.95
    assert sum(h["reward"] for h in history[-5:]) / 5 > sum(h["reward"] for h in history[:5]) / 5
    held = copy.deepcopy(model)
    train_reinforce(held, tok, PROMPTS, reward_a, RLConfig(**{**cfg.__dict__, "kl_coef": 2.0}), device="cpu")
    assert start < p_a(held, tok) < p_a(free, tok) - 0.05
    cached = copy.deepcopy(model)
    assert train_reinforce(cached, tok, PROMPTS, reward_a, cfg, cache=RunCache(tmp_path), key="a") == history
    assert p_a(cached, tok) == pytest.approx(p_a(free, tok))


def test_reinforce_with_lora_uses_the_frozen_base_as_reference(coin):
    model, tok = coin
    policy = add_lora(copy.deepcopy(model), rank=4)
    cfg = RLConfig(steps=15, prompts_per_step=8, samples_per_prompt=4, lr=1e-2, kl_coef=0.0, max_new_tokens=3)
    history = train_reinforce(policy, tok, PROMPTS, reward_a, cfg, device="cpu")
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-5)  # LoRA starts as the identity
    assert p_a(policy, tok) > p_a(model, tok) + 0.1
