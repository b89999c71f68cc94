import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from transformers import GenerationConfig

from steerlib.lm.models import build_model, tiny_config
from steerlib.lm.sampling import sample
from steerlib.lm.tokenizer import encode_prompts, pad, pad_id, word_tokenizer

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
    assert (
        sample(model, tok, PROMPTS, use_cache=True, **kw).ids == sample(model, tok, PROMPTS, use_cache=False, **kw).ids
    )


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


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def peaked(request):
    """A random model with weights 10x the default scale: next-token distributions that are far from uniform and
    depend on the context, so that a wrong temperature or a shifted context gives a different distribution."""
    tok = word_tokenizer(["a b c d e f g h ?"])
    config = tiny_config(tok, request.param, d_model=32, n_layers=2, n_heads=2)
    config.initializer_range = 0.2
    return build_model(config, seed=1).eval(), tok


def generate(model, tok, prompts, max_new_tokens):
    """Greedy responses of transformers' ``generate`` on the same left-padded batch, cut after the end token."""
    ids = encode_prompts(tok, prompts)
    x, mask = pad(ids, pad_id(tok), side="left"), pad([[1] * len(p) for p in ids], 0, side="left")
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=pad_id(tok)
    )
    rows = model.generate(input_ids=x, attention_mask=mask, generation_config=config)[:, x.shape[1] :].tolist()
    return [r[: r.index(tok.eos_token_id) + 1] if tok.eos_token_id in r else r for r in rows]


def test_greedy_equals_generate(peaked):
    model, tok = peaked
    words = "a b c d e f g h ?".split()
    rng = np.random.default_rng(0)
    prompts = [" ".join(rng.choice(words, rng.integers(1, 7))) for _ in range(60)] * 2  # repeated prompts too
    ours = sample(model, tok, prompts, max_new_tokens=8, temperature=0.0, batch_size=50).ids
    assert ours == generate(model, tok, prompts, 8)
    ended = [len(r) < 8 and r[-1] == tok.eos_token_id for r in ours]
    assert any(ended) and not all(ended)  # rows that stop early and rows that run to the budget, in one batch


def chi_square_p(tokens, probs: np.ndarray) -> float:
    """p-value of Pearson's chi-square test that ``tokens`` are draws from ``probs``; the rarest tokens are pooled
    into one bin of at least 5 expected draws."""
    probs = probs / probs.sum()
    observed, expected = np.bincount(tokens, minlength=len(probs)).astype(float), probs * len(tokens)
    order = np.argsort(expected)
    rare = order[: (np.cumsum(expected[order]) < 5).sum() + 1]
    rest = np.setdiff1d(order, rare)
    return chisquare(
        np.append(observed[rest], observed[rare].sum()), np.append(expected[rest], expected[rare].sum())
    ).pvalue


def test_sampled_tokens_follow_softmax_over_temperature(peaked):
    """The first sampled token of a left-padded prompt follows softmax(logits / τ), and the second one, after the
    most frequent first token, follows softmax of the logits given prompt + that token; a wrong temperature or a
    shifted context is rejected by the same test (its power), with a fixed seed."""
    model, tok = peaked
    n, tau = 4000, 0.7
    out = sample(model, tok, ["a b", "c d e f g"] * n, max_new_tokens=2, temperature=tau, seed=0, batch_size=2 * n)
    rows = out.ids[::2]  # the short prompt's responses, left-padded in the batch
    prompt = encode_prompts(tok, ["a b"])[0]

    def probs(context: list[int], temperature: float) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(model(torch.tensor([context])).logits[0, -1].double() / temperature, -1).numpy()

    first = np.array([r[0] for r in rows])
    assert chi_square_p(first, probs(prompt, tau)) > 1e-3
    assert chi_square_p(first, probs(prompt, 1.0)) < 1e-6  # temperature ignored
    top = int(np.bincount(first).argmax())
    second = np.array([r[1] for r in rows if r[0] == top and len(r) > 1])
    assert len(second) > 1000
    assert chi_square_p(second, probs(prompt + [top], tau)) > 1e-3
    assert chi_square_p(second, probs(prompt, tau)) < 1e-6  # the first step's distribution again
    assert chi_square_p(second, probs(prompt[:1] + [top] + prompt[1:] + [top], tau)) < 1e-6  # a shifted context


def test_grouped_query_attention_greedy_equals_generate():
    """Four query heads sharing one key/value head (as SmolLM2's 9 share 3): the sampler's one-query attention stacks
    each group's heads as rows instead of repeating the cache, and must give ``generate``'s greedy output."""
    tok = word_tokenizer(["a b c d e f g h ?"])
    config = tiny_config(tok, "llama", d_model=32, n_layers=2, n_heads=4)
    config.num_key_value_heads, config.initializer_range = 1, 0.2
    model = build_model(config, seed=2).eval()
    rng = np.random.default_rng(1)
    prompts = [" ".join(rng.choice("a b c d e f g h ?".split(), rng.integers(1, 7))) for _ in range(40)]
    assert sample(model, tok, prompts, max_new_tokens=8, temperature=0.0).ids == generate(model, tok, prompts, 8)


def test_sampling_leaves_the_models_attention_as_it_was(lm):
    """The sampler switches the model to its own attention while it runs, and back afterwards, also after an error."""
    model, tok = lm
    own = model.config._attn_implementation
    sample(model, tok, PROMPTS, max_new_tokens=3)
    assert model.config._attn_implementation == own

    def fail(*args):
        raise RuntimeError("in the forward pass")

    hook = model.register_forward_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="forward pass"):
            sample(model, tok, PROMPTS, max_new_tokens=3)
    finally:
        hook.remove()
    assert model.config._attn_implementation == own


def test_one_query_attention_equals_sdpa():
    """The sampler's one-query attention against SDPA's on random grouped-query tensors with a left-padding mask:
    softmax(q kᵀ · scale + mask) v, each group of 3 query heads reading its own key/value head."""
    from types import SimpleNamespace

    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from steerlib.lm.sampling import _attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(s, generator=g) for s in ((5, 6, 1, 8), (5, 2, 7, 8), (5, 2, 7, 8)))
    mask = (torch.arange(7) >= torch.tensor([0, 1, 3, 0, 6])[:, None])[:, None, None, :]  # [B, 1, 1, L]
    module = SimpleNamespace(num_key_value_groups=3, is_causal=True, training=False)
    ours, _ = _attention(module, q, k, v, mask, scaling=0.3)
    reference, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.3)
    assert ours.shape == reference.shape == (5, 1, 6, 8)
    assert torch.allclose(ours, reference, atol=1e-5)
    assert not torch.allclose(ours, _attention(module, q, k.roll(1, 1), v.roll(1, 1), mask, scaling=0.3)[0], atol=1e-3)
