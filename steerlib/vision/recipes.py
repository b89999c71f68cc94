"""Training recipes that several chapters share, so that they judge the same trained models (through the run cache).

``ENSEMBLE_RECIPES`` trains Part I's ensembles (reversion and mechanism): Adam at lr 1e-3 without decay on the
offline datasets. The dissertation's MNIST recipe (lr decayed by 0.7 per epoch, weight decay 0.01) underfits them
(test accuracy 0.90 on 8x8 digits and 0.58 on mnist1d), so only ``paper`` uses it.
"""
from __future__ import annotations

from steerlib.vision.train import TrainConfig

ENSEMBLE_RECIPES = {
    "smoke": TrainConfig(epochs=6, batch_size=64, lr=2e-3, warmup_epochs=2),
    "cpu": TrainConfig(epochs=20, batch_size=64, lr=1e-3, warmup_epochs=3),
    "paper": TrainConfig(epochs=14, batch_size=64, lr=1e-3, weight_decay=0.01, lr_decay=0.7, warmup_epochs=3),
}
