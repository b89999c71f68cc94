import dataclasses
import math

import pytest
import torch
from datasets import Dataset

import steerlib.lm.sft as sft
from steerlib.core.cache import RunCache
from steerlib.lm.models import build_model, tiny_config
from steerlib.lm.sampling import sample
from steerlib.lm.scoring import score
from steerlib.lm.sft import SFTConfig, batch_indices, train_sft
from steerlib.lm.tokenizer import collate, pad_id, tokenize_sft, word_tokenizer

PAIRS = {"a b ?": " c d", "b a ?": " e", "c c ?": " f g h", "d ?": " a"}


@pytest.fixture()
def toy():
    tok = word_tokenizer(["a b c d e f g h ?"])
    data = tokenize_sft(Dataset.from_dict({"prompt": list(PAIRS), "response": list(PAIRS.values())}), tok)
    return build_model(tiny_config(tok, d_model=32, n_layers=1, n_heads=2), seed=0), tok, data


def test_loss_covers_response_tokens_only(toy):
    model, tok, data = toy
    batch = collate(data["input_ids"], data["labels"], pad_id(tok))
    with torch.no_grad():
        loss = model(**batch).loss
    s = score(model, tok, list(PAIRS), list(PAIRS.values()))  # response + end token
    assert loss.item() == pytest.approx((-s.logprob.sum() / s.n_tokens.sum()).item(), rel=1e-5)


def test_batch_indices_are_epoch_permutations():
    first_epoch = torch.cat([batch_indices(0, step, 10, 5) for step in range(2)])
    assert sorted(first_epoch.tolist()) == list(range(10))
    assert torch.equal(batch_indices(0, 3, 10, 5), batch_indices(0, 3, 10, 5))
    assert not torch.equal(batch_indices(0, 0, 10, 5), batch_indices(0, 2, 10, 5))
    assert len(batch_indices(0, 7, 3, 8)) == 8  # fewer examples than a batch: repeat


def test_sft_learns_a_toy_mapping_and_caches(toy, tmp_path):
    model, tok, data = toy
    cfg = SFTConfig(steps=80, batch_size=4, lr=1e-2, warmup=0.0)
    cache = RunCache(tmp_path)
    losses = train_sft(model, data, cfg, pad_id(tok), "cpu", cache, key="toy")
    assert losses[-1] < 0.05 < losses[0]
    out = sample(model.eval(), tok, list(PAIRS), max_new_tokens=5, temperature=0.0)
    assert out.texts == [r.strip() for r in PAIRS.values()]
    assert all(ids[-1] == tok.eos_token_id for ids in out.ids)
    again = build_model(model.config, seed=1)
    assert train_sft(again, data, cfg, pad_id(tok), "cpu", cache, key="toy") == losses  # loaded, not retrained
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    made = []  # data given as a function: made only when the run is not in the cache
    assert train_sft(again, lambda: made.append(1) or data, cfg, pad_id(tok), "cpu", cache, key="toy") == losses
    assert not made
    train_sft(
        build_model(model.config, seed=1),
        lambda: made.append(1) or data,
        dataclasses.replace(cfg, steps=2),
        pad_id(tok),
        "cpu",
        cache,
        key="toy",
    )
    assert made == [1]


def test_interrupted_run_resumes_to_the_same_weights(toy, tmp_path, monkeypatch):
    model, tok, data = toy
    cfg = SFTConfig(steps=10, batch_size=2, lr=1e-2, checkpoint_every=4)
    reference = build_model(model.config, seed=0)
    expected = train_sft(reference, data, cfg, pad_id(tok), "cpu")
    calls = {"n": 0}

    def crash_on_step_7(*args):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return collate(*args)

    cache = RunCache(tmp_path)
    monkeypatch.setattr(sft, "collate", crash_on_step_7)
    with pytest.raises(KeyboardInterrupt):
        train_sft(model, data, cfg, pad_id(tok), "cpu", cache, key="resume")
    monkeypatch.undo()
    assert cache.load_checkpoint("sft", {"key": "resume", "sft": cfg})["step"] == 4
    resumed = build_model(model.config, seed=0)
    assert train_sft(resumed, data, cfg, pad_id(tok), "cpu", cache, key="resume") == pytest.approx(expected)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_bad_config_names_the_parameter():
    with pytest.raises(ValueError, match="batch_size"):
        SFTConfig(batch_size=0)


def test_on_step_sees_each_step_and_leaves_training_unchanged(toy):
    """A callback that evaluates and even back-propagates (as checkpoint logging does) does not change the run."""
    model, tok, data = toy
    cfg = SFTConfig(steps=6, batch_size=2, lr=1e-2, schedule="linear")
    expected = train_sft(build_model(model.config, seed=0), data, cfg, pad_id(tok), "cpu")
    seen = []

    def probe(step, m):
        seen.append((step, m.training))
        m.eval()
        m(**collate(data["input_ids"], data["labels"], pad_id(tok))).loss.backward()

    assert train_sft(model, data, cfg, pad_id(tok), "cpu", on_step=probe) == pytest.approx(expected)
    assert seen == [(s, True) for s in range(1, 7)]
    assert train_sft(build_model(model.config, seed=0), data, cfg, pad_id(tok), "cpu") != train_sft(
        build_model(model.config, seed=0), data, dataclasses.replace(cfg, schedule="cosine"), pad_id(tok), "cpu"
    )


def test_unknown_schedule_names_the_choices():
    with pytest.raises(ValueError, match="schedule='step'.*'cosine', 'linear'"):
        SFTConfig(schedule="step")


@pytest.mark.parametrize("chapter", ["pre-memorization", "unfamiliar-examples"])
def test_smoke_pretraining_resumes_after_a_kill(chapter, toy, tmp_path):
    """The smoke profile's pretraining checkpoints before its last step, so a run killed mid-way resumes from the
    checkpoint to the weights of an uninterrupted run (here on the toy model, with the profile's SFTConfig)."""
    from steerlib.book import chapter as lookup

    cfg = lookup(chapter).profiles["smoke"].pretrain
    assert cfg.checkpoint_every < cfg.steps
    model, tok, data = toy
    cfg = dataclasses.replace(cfg, batch_size=4)  # the toy data is 4 examples; the step and checkpoint counts stay
    reference = build_model(model.config, seed=0)
    expected = train_sft(reference, data, cfg, pad_id(tok), "cpu", progress=False)
    kill_at = cfg.checkpoint_every + 3

    def kill(step, _):
        if step == kill_at:
            raise KeyboardInterrupt

    cache = RunCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train_sft(model, data, cfg, pad_id(tok), "cpu", cache, key="kill", on_step=kill, progress=False)
    assert cache.load_checkpoint("sft", {"key": "kill", "sft": cfg})["step"] == cfg.checkpoint_every
    resumed = build_model(model.config, seed=0)
    assert train_sft(resumed, data, cfg, pad_id(tok), "cpu", cache, key="kill", progress=False) == pytest.approx(
        expected
    )
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_dco_weight_limits_and_no_nan():
    import math

    from steerlib.lm.sft import dco_weight

    nll = torch.tensor([60.0, 20.0, 1.0, 1e-3, 1e-12, 0.0])  # p from ~1e-26 to 1
    f = dco_weight(nll, 16)
    assert not torch.isnan(f).any()
    assert f[0].item() == pytest.approx(1.0) and f[1].item() == pytest.approx(1.0, abs=1e-6)  # p -> 0: plain CE
    assert f[-1].item() == 0.0 and f[-2].item() < 1e-100  # p -> 1: no gradient
    p = math.exp(-1.0)
    assert f[2].item() == pytest.approx(16 * p * (1 - p) ** 15 / (1 - (1 - p) ** 16))
    assert torch.equal(dco_weight(nll, 1), torch.ones(6, dtype=torch.float64))


def test_dco_gradient_is_the_weight_times_the_sequence_nll_gradient():
    """By autograd on a tiny model: grad of DCO's loss = mean_i F(N, p_i) grad NLL_i."""
    from steerlib.lm.scoring import label_logprobs
    from steerlib.lm.sft import DCOLoss, dco_weight

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(7, 5), torch.nn.Linear(5, 7))
    ids = torch.tensor([[1, 2, 3, 4], [2, 5, 6, 0]])
    labels = torch.tensor([[-100, -100, 3, 4], [-100, 5, 6, -100]])
    loss = DCOLoss(4)(model(ids), labels)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    nll = -label_logprobs(model(ids), labels).sum(-1)
    weight = dco_weight(nll.detach(), 4).float()
    expected = torch.autograd.grad((weight * nll).mean(), list(model.parameters()))
    for g, e in zip(grads, expected):
        assert torch.allclose(g, e, atol=1e-6)
    manual = -(torch.log_softmax(model(ids)[0, 1:3], -1).gather(-1, torch.tensor([[3], [4]]))).sum()
    assert nll[0].item() == pytest.approx(manual.item(), rel=1e-5)


def test_train_sft_with_dco_learns_and_is_cached_apart_from_cross_entropy(toy, tmp_path):
    from steerlib.lm.sft import DCOLoss

    model, tok, data = toy
    cfg = SFTConfig(steps=60, batch_size=4, lr=1e-2, warmup=0.0)
    cache = RunCache(tmp_path)
    start = build_model(model.config, seed=0).state_dict()
    losses = train_sft(model, data, cfg, pad_id(tok), "cpu", cache, key="toy", loss=DCOLoss(4))
    assert losses[-1] < losses[0]
    out = sample(model.eval(), tok, list(PAIRS), max_new_tokens=5, temperature=0.0)
    assert out.texts == [r.strip() for r in PAIRS.values()]
    ce = build_model(model.config, seed=0)
    ce.load_state_dict(start)
    assert train_sft(ce, data, cfg, pad_id(tok), "cpu", cache, key="toy") != losses, "cross-entropy is another run"
    assert repr(DCOLoss(8)) == "DCOLoss(n=8)"
    logits = torch.full((1, 3, 2), -200.0)  # a long, unlikely trace: two tokens of -200 nats, p = exp(-400)
    logits[..., 0] = 0.0
    value = DCOLoss(16)(logits, torch.tensor([[-100, 1, 1]]))
    assert torch.isfinite(value) and value.item() == pytest.approx(400.0 - math.log(16), rel=1e-4)
    logits.requires_grad_(True)
    DCOLoss(16)(logits, torch.tensor([[-100, 1, 1]])).backward()
    assert torch.isfinite(logits.grad).all(), "the branch of log1mexp not taken must not poison the gradient"
    with pytest.raises(ValueError, match="n=0"):
        DCOLoss(0)
