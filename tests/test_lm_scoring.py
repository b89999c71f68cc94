import math

import pytest
import torch

from steerlib.lm.models import build_model, tiny_config
from steerlib.lm.scoring import choice_logprobs, label_logprobs, next_token_choice, score
from steerlib.lm.tokenizer import IGNORE, word_tokenizer


@pytest.fixture(scope="module")
def lm():
    tok = word_tokenizer(["a b c d e f g h ?"])
    return build_model(tiny_config(tok, d_model=32, n_layers=1, n_heads=2), seed=0).eval(), tok


def by_hand(model, tok, prompt: str, response: str, eos: bool = True) -> list[float]:
    """log p of each response token, one unpadded forward pass per prefix."""
    ids = tok(prompt)["input_ids"]
    target = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] * eos
    out = []
    for t in target:
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1]
        out.append(torch.log_softmax(logits, -1)[t].item())
        ids = ids + [t]
    return out


def test_label_logprobs_closed_form():
    logits = torch.zeros(1, 3, 4)  # uniform over 4 tokens
    labels = torch.tensor([[IGNORE, 2, IGNORE]])
    lp = label_logprobs(logits, labels)
    assert lp.shape == (1, 3)
    assert lp[0].tolist() == pytest.approx([0.0, math.log(0.25), 0.0])


def test_score_equals_sum_of_token_logprobs_by_hand(lm):
    model, tok = lm
    prompts, responses = ["a b", "c", "a b c d e"], [" h g", " f", " a"]  # different lengths: padding in one batch
    scores = score(model, tok, prompts, responses, batch_size=2)
    for i, (p, r) in enumerate(zip(prompts, responses)):
        expected = by_hand(model, tok, p, r)
        assert scores.n_tokens[i] == len(expected)
        assert scores.logprob[i].item() == pytest.approx(sum(expected), abs=1e-4)
        assert scores.token_nll[i].tolist() == pytest.approx([-x for x in expected], abs=1e-4)
    total = sum(sum(by_hand(model, tok, p, r)) for p, r in zip(prompts, responses))
    assert scores.perplexity == pytest.approx(math.exp(-total / scores.n_tokens.sum().item()), rel=1e-4)
    no_eos = score(model, tok, prompts[:1], responses[:1], eos=False)
    assert no_eos.logprob.item() == pytest.approx(
        sum(by_hand(model, tok, prompts[0], responses[0], eos=False)), abs=1e-4
    )


def test_choice_logprobs_normalise_sequence_logprobs(lm):
    model, tok = lm
    choices = [[" a", " b c", " d"], [" e", " f", " g h"]]
    lp = choice_logprobs(model, tok, ["a b", "c"], choices)
    assert torch.logsumexp(lp, 1).tolist() == pytest.approx([0.0, 0.0], abs=1e-5)
    raw = score(model, tok, ["a b"] * 3, choices[0]).logprob
    assert (lp[0] - lp[0, 0]).tolist() == pytest.approx((raw - raw[0]).tolist(), abs=1e-4)
    with pytest.raises(ValueError, match="same number"):
        choice_logprobs(model, tok, ["a", "b"], [[" a"], [" a", " b"]])


def test_next_token_choice_is_one_pass_of_single_token_choices(lm):
    """Prompts of different lengths in one padded batch give what one scoring pass per option gives."""
    model, tok = lm
    prompts, options = ["a b c", "d", "e f g h a"], [" a", " b", " c"]
    fast = next_token_choice(model, tok, prompts, options, batch_size=2)
    slow = choice_logprobs(model, tok, prompts, [options] * 3, eos=False)
    assert fast.shape == (3, 3) and torch.allclose(fast, slow, atol=1e-5)
    with pytest.raises(ValueError, match="options must each be one token"):
        next_token_choice(model, tok, prompts, [" a b", " c"])
