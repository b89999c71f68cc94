import pytest

from steerlib.lm.models import build_model, tiny_config
from steerlib.lm.sampling import sample
from steerlib.lm.tokenizer import word_tokenizer

PROMPTS = ["a b", "c", "a b c d e", "h", "g f e"]  # different lengths: left padding in one batch


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def lm(request):
    """Both position schemes: learned absolute positions and RoPE must survive left padding."""
    tok = word_tokenizer(["a b c d e f g h ?"])
    return build_model(tiny_config(tok, request.param, d_model=32, n_layers=2, n_heads=2), seed=1).eval(), tok


def test_greedy_batched_equals_one_at_a_time(lm):
    model, tok = lm
    batched = sample(model, tok, PROMPTS, max_new_tokens=6, temperature=0.0)
    single = [sample(model, tok, [p], max_new_tokens=6, temperature=0.0).ids[0] for p in PROMPTS]
    assert batched.ids == single


def test_low_temperature_equals_greedy(lm):
    model, tok = lm
    greedy = sample(model, tok, PROMPTS, max_new_tokens=6, temperature=0.0)
    cold = sample(model, tok, PROMPTS, max_new_tokens=6, temperature=1e-4, seed=3)
    assert cold.ids == greedy.ids


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_kv_cache_equals_no_cache(lm, temperature):
    model, tok = lm
    kw = dict(max_new_tokens=6, temperature=temperature, seed=5)
    assert sample(model, tok, PROMPTS, use_cache=True, **kw).ids == sample(model, tok, PROMPTS, use_cache=False,
                                                                           **kw).ids


def test_seeded_sampling_and_end_token(lm):
    model, tok = lm
    prompts = PROMPTS * 20
    a = sample(model, tok, prompts, max_new_tokens=5, temperature=1.5, seed=0)
    assert a.ids == sample(model, tok, prompts, max_new_tokens=5, temperature=1.5, seed=0).ids
    assert a.ids != sample(model, tok, prompts, max_new_tokens=5, temperature=1.5, seed=1).ids
    eos = tok.eos_token_id
    assert all(len(r) <= 5 for r in a.ids)
    assert all(eos not in r[:-1] for r in a.ids)  # a response stops at its end token
    assert any(r and r[-1] == eos for r in a.ids)  # an untrained model over 13 tokens emits it sometimes
    with pytest.raises(ValueError, match="temperature"):
        sample(model, tok, PROMPTS, temperature=-1.0)
