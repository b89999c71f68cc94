"""BatchNorm in the ensemble: running statistics and training match separately run models."""
import pytest
import torch

from steerlib.vision.ensemble import Ensemble
from steerlib.vision.losses import make_loss
from steerlib.vision.models import make_model
from steerlib.vision.train import TrainConfig, train_ensemble, train_separately

SEEDS = (3, 7)


def make(arch: str):
    return lambda: make_model(arch, (1, 8, 8), 4, width=4, hidden=16, norm="batch")


def data():
    g = torch.Generator().manual_seed(0)
    x = 2.0 + torch.randn(64, 1, 8, 8, generator=g)  # an offset, so running means must move away from 0
    y = (x.mean(dim=(1, 2, 3)) > 2.0).long() + 2 * (x[:, 0, 0, 0] > 2.0).long()
    return x, y


def separate(arch: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return make(arch)().train()


@pytest.mark.parametrize("arch", ["cnn", "mlp"])
def test_train_mode_forward_updates_each_members_running_statistics(arch):
    """Forward passes on per-member batches update every member's buffers exactly as separate modules do."""
    x, _ = data()
    ens = Ensemble(make(arch), SEEDS).train()
    models = [separate(arch, s) for s in SEEDS]
    with torch.no_grad():
        for b in range(3):
            batches = torch.stack([x[torch.randperm(64, generator=torch.Generator().manual_seed(10 * b + i))[:16]]
                                   for i in range(len(SEEDS))])
            out = ens(batches, per_member=True)
            for i, model in enumerate(models):
                assert torch.allclose(out[i], model(batches[i]), atol=1e-5)  # batch statistics in train mode
    for i, model in enumerate(models):
        for name, buf in model.named_buffers():
            assert torch.allclose(buf.float(), ens.member(i).get_buffer(name).float(), atol=1e-6), name
        first_mean = next(b for n, b in model.named_buffers() if n.endswith("running_mean"))
        assert first_mean.abs().max() > 0.1


@pytest.mark.parametrize("arch", ["cnn", "mlp"])
def test_batchnorm_ensemble_training_equals_separate_training(arch):
    """Everything matches except the biases of the layers right before a BatchNorm (and so the running means): BN
    removes them, their exact gradient is 0, and Adam turns rounding noise in it into steps of size lr, in any run."""
    x, y = data()
    loss, cfg = make_loss("ce", 4), TrainConfig(epochs=2, batch_size=16, lr=1e-2)
    ens = train_ensemble(make(arch), SEEDS, loss, x, y, cfg, torch.device("cpu"))
    pre_bn = {"conv1.bias", "conv2.bias", "fc1.bias"} if arch == "cnn" else {"fc1.bias", "fc2.bias"}
    for i, model in enumerate(train_separately(make(arch), SEEDS, loss, x, y, cfg)):
        member = ens.member(i).state_dict()
        for name, ref in model.state_dict().items():
            if name in pre_bn or name.endswith("running_mean"):
                continue
            assert torch.allclose(ref.float(), member[name].float(), atol=1e-4), name
