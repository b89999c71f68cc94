import pytest
import torch

from steerlib.core.cache import RunCache
from steerlib.core.seeds import Replicate, replicates
from steerlib.vision.ensemble import FORMAT, Ensemble
from steerlib.vision.losses import make_loss
from steerlib.vision.models import make_model
from steerlib.vision.train import TrainConfig, train_ensemble, train_separately


@pytest.fixture
def toy():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + 2 * (x[:, 0, 0, 0] > 0).long()
    return x, y


ONE = (Replicate(0, 0),)


def make():
    return make_model("mlp", (1, 8, 8), 4, hidden=16)


@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig(epochs=2, batch_size=16, lr=1e-2),
        TrainConfig(epochs=2, batch_size=16, lr=0.1, weight_decay=5e-4, optimizer="sgd", momentum=0.9),
    ],
    ids=["adam", "sgd-momentum"],
)
def test_ensemble_training_equals_separate_training(toy, cfg):
    """Summed member losses + an elementwise optimiser (Adam, or SGD with momentum and weight decay) = E
    independent runs with the same init and data order."""
    x, y = toy
    loss, seeds = make_loss("ce", 4), replicates(3, 2)
    ens = train_ensemble(make, seeds, loss, x, y, cfg, torch.device("cpu"))
    for i, model in enumerate(train_separately(make, seeds, loss, x, y, cfg)):
        for (name, p), q in zip(model.state_dict().items(), ens.member(i).state_dict().values()):
            assert torch.allclose(p, q, atol=1e-5), name
    assert not torch.allclose(ens.member(0)(x), ens.member(1)(x))  # different replicates, different models


def test_predict_matches_members(toy):
    x, _ = toy
    ens = Ensemble(lambda: make_model("cnn", (1, 8, 8), 3, width=4, hidden=8, norm="layer"), replicates(0, 3))
    out = ens.predict(x, batch_size=40)
    assert out.shape == (3, 96, 3)
    for i in range(3):
        assert torch.allclose(out[i], ens.member(i)(x), atol=1e-5)


def test_batchnorm_running_stats_are_updated_per_member(toy):
    x, y = toy
    ens = train_ensemble(
        lambda: make_model("mlp", (1, 8, 8), 4, hidden=16, norm="batch"),
        replicates(0, 2),
        make_loss("ce", 4),
        x + 3.0,
        y,
        TrainConfig(epochs=3, batch_size=32),
        torch.device("cpu"),
    )
    means = [ens.member(i).norm_fc1.running_mean for i in range(2)]
    assert all(m.abs().sum() > 0 for m in means)
    assert not torch.allclose(means[0], means[1])


def test_interrupted_run_resumes_to_the_same_result(toy, tmp_path, monkeypatch):
    x, y = toy
    loss, cfg, key = make_loss("ce", 4), TrainConfig(epochs=3, batch_size=16), {"toy": 1}
    full = train_ensemble(make, ONE, loss, x, y, cfg, torch.device("cpu"))

    cache = RunCache(tmp_path)
    real_save = RunCache.save_checkpoint

    def save_then_crash(self, kind, config, state):
        real_save(self, kind, config, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunCache, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(make, ONE, loss, x, y, cfg, torch.device("cpu"), cache, key)
    monkeypatch.setattr(RunCache, "save_checkpoint", real_save)
    assert cache.load_checkpoint("ensemble", {"key": key, "members": ONE, "train": cfg, "format": FORMAT})["epoch"] == 2
    resumed = train_ensemble(make, ONE, loss, x, y, cfg, torch.device("cpu"), cache, key)
    assert torch.allclose(resumed.predict(x), full.predict(x), atol=1e-5)
    # finished: a third call loads the result without training
    monkeypatch.setattr(torch.optim.Adam, "step", lambda *a, **k: pytest.fail("retrained a cached run"))
    again = train_ensemble(make, ONE, loss, x, y, cfg, torch.device("cpu"), cache, key)
    assert torch.allclose(again.predict(x), full.predict(x))


def test_after_epoch_sees_every_epoch_in_evaluation_mode(toy):
    x, y = toy
    seen = []

    def log(epoch, ensemble):
        seen.append((epoch, ensemble.training, torch.is_grad_enabled()))

    cfg = TrainConfig(epochs=3, batch_size=32)
    logged = train_ensemble(make, ONE, make_loss("ce", 4), x, y, cfg, torch.device("cpu"), after_epoch=log)
    assert seen == [(1, False, False), (2, False, False), (3, False, False)]
    plain = train_ensemble(make, ONE, make_loss("ce", 4), x, y, cfg, torch.device("cpu"))
    for p, q in zip(logged.parameters(), plain.parameters()):
        assert torch.equal(p, q), "logging does not change the training"


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"optimizer": "rmsprop"}, "optimizer='rmsprop'"),
        ({"momentum": 0.9}, "momentum=0.9"),
        ({"optimizer": "sgd", "momentum": 1.0}, "momentum"),
    ],
)
def test_bad_optimiser_settings_are_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**fields)
