"""Appendix A.1's counterexamples: iterated-FGSM inputs (more OOD, yet farther from the OCS) and a Gaussian-NLL
regressor under impulse noise (features grow) and blur (features shrink)."""

from __future__ import annotations

import pandas as pd
import torch

from steerlib.chapters.extrapolation import common
from steerlib.core.chapter import Run
from steerlib.core.seeds import substream
from steerlib.measures.ood import ood_score
from steerlib.vision import representations as rep
from steerlib.vision.adversarial import iterated_fgsm, random_sign_like
from steerlib.vision.data import ImageData
from steerlib.vision.ensemble import Ensemble
from steerlib.vision.losses import make_loss, targets

# The FGSM experiment's draws from the run's eval stream: the OOD scores' splits and features use the stream itself
# (as every OOD score of Part I, common.ood_score), the random signs and the pooled subset each a substream
RANDOM_SIGNS, POOLED_SUBSET = 1, 2


def _mixed(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n inputs drawn without replacement from the sets of all members, x: (E, N, ...): one OOD score for all."""
    pool = x.flatten(0, 1)
    return pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:n]]


def fgsm_experiment(
    ensemble: Ensemble, data: ImageData, eps: float, steps: int, ood_splits: int, run: Run
) -> pd.DataFrame:
    """Clean test inputs, ``steps`` rounds of FGSM of size ``eps`` against each CE member, and a random-sign control
    of the same size per entry: per replicate and set the OOD score, KL to the OCS, accuracy and feature-norm ratios.
    The random signs and the subset of the pooled perturbed inputs that is scored come from substreams of the run's
    ``eval`` stream (:data:`RANDOM_SIGNS`, :data:`POOLED_SUBSET`); the OOD scores from the stream itself."""
    loss = make_loss("ce", data.num_classes)
    ocs = loss.ocs(data.y_train)
    adv = iterated_fgsm(ensemble, loss, data.x_test, data.y_test, eps, steps, data.value_range)
    rand = random_sign_like(data.x_test, adv, data.value_range, seed=substream(run.stream("eval"), RANDOM_SIGNS))
    subset = substream(run.stream("eval"), POOLED_SUBSET)
    scores = {
        "clean": common.ood_score(run, data.name, data.x_train, "none", 0.0, data.x_test, ood_splits),
        **{
            kind: ood_score(data.x_train, _mixed(x, len(data.x_test), subset), ood_splits, seed=run.stream("eval"))
            for kind, x in (("random sign", rand), ("adversarial", adv))
        },
    }
    rows = []
    for e in range(len(ensemble)):
        model = ensemble.member(e)
        train_norms = rep.feature_norms(model, data.x_train)
        for kind, x in (("clean", data.x_test), ("random sign", rand[e]), ("adversarial", adv[e])):
            out, phis = rep.capture(model, x)
            rows.append(
                {
                    "set": kind,
                    "replicate": e,
                    "ood_score": scores[kind],
                    "distance": float(loss.distance(out, ocs).mean()),
                    "accuracy": float((out.argmax(-1) == data.y_test).float().mean()),
                    **rep.feature_norm_ratio(rep.feature_norms(model, x, phis), train_norms),
                }
            )
    return pd.DataFrame(rows)


def nll_experiment(
    ensemble: Ensemble,
    data: ImageData,
    shifts: tuple[str, ...],
    ladders: dict[str, tuple[float, ...]],
    ood_splits: int,
    run: Run,
) -> tuple[pd.DataFrame, torch.Tensor]:
    """The Gaussian-NLL ensemble under ``shifts`` at the severities of ``ladders`` (the sets and OOD scores of
    :mod:`~steerlib.chapters.extrapolation.common`, shared with the reversion chapter): per set and replicate the OOD
    score, KL to N(mu*, sigma*^2), mean predicted mu and sigma, and feature-norm ratios. Also returns each member's
    accumulated constants at the last layer as a predicted (mu, sigma^2), shape (E, 2)."""
    loss = make_loss("gaussian_nll", data.num_classes)
    ocs = loss.ocs(targets(loss, data))
    sets = common.shifted_sets(data, shifts, ladders, run)
    members = [ensemble.member(e) for e in range(len(ensemble))]
    train_norms = [rep.feature_norms(m, data.x_train) for m in members]
    rows = []
    for s in sets:
        score = common.ood_score(run, data.name, data.x_train, s.shift, s.severity, s.x, ood_splits)
        for e in range(len(members)):
            out, phis = rep.capture(members[e], s.x)
            pred = loss.predict(out)
            rows.append(
                {
                    "shift": s.shift,
                    "level": s.level,
                    "severity": s.severity,
                    "replicate": e,
                    "ood_score": score,
                    "distance": float(loss.distance(out, ocs).mean()),
                    "mu": float(pred[:, 0].mean()),
                    "sigma": float(pred[:, 1].sqrt().mean()),
                    **rep.feature_norm_ratio(rep.feature_norms(members[e], s.x, phis), train_norms[e]),
                }
            )
    last = rep.affine_layers(members[0])[-1].name
    constants = torch.stack([loss.predict(rep.accumulated_constants(m, last, data.input_shape)) for m in members])
    return pd.DataFrame(rows), constants
