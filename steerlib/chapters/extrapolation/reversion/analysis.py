"""The reversion chapter's statistics: seed-mean curves, Spearman's rho along them, and the claims A1-A5."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from steerlib.chapters.extrapolation.reversion.experiment import Results
from steerlib.core.claims import Claim
from steerlib.measures.statistics import spearman
from steerlib.vision.shifts import with_clean


def curves(table: pd.DataFrame) -> pd.DataFrame:
    """Seed means and standard deviations per (dataset, loss, shift, level); the clean set joins every shift."""
    full = with_clean(table)
    value_cols = [c for c in full.columns if c not in ("dataset", "loss", "shift", "level", "seed")]
    return full.groupby(["dataset", "loss", "shift", "level"])[value_cols].agg(["mean", "std"]).reset_index()


def curve_rhos(c: pd.DataFrame, x: str = "ood_score", y: str = "distance") -> pd.DataFrame:
    """Spearman's rho between ``x`` and ``y`` along each curve of :func:`curves` table ``c``: rows (dataset, loss),
    a column per shift."""

    def col(g: pd.DataFrame, name: str) -> pd.Series:
        return g[name] if name == "level" else g[(name, "mean")]

    rows = {key: spearman(col(g, x), col(g, y)) for key, g in c.groupby(["dataset", "loss", "shift"])}
    index = pd.MultiIndex.from_tuples(list(rows), names=["dataset", "loss", "shift"])
    return pd.Series(list(rows.values()), index=index, name=f"rho({x}, {y})").unstack("shift")


def rank_table(table: pd.DataFrame, x: str = "ood_score", y: str = "distance") -> pd.DataFrame:
    """Spearman's rho between ``x`` and ``y`` along each (dataset, loss, shift) curve, clean set included."""
    return curve_rhos(curves(table), x, y)


def mean_curve_rho(c: pd.DataFrame, loss: str, x: str = "ood_score", y: str = "distance") -> float:
    """Spearman's rho between ``x`` and ``y`` along each (dataset, shift) curve of ``loss`` in :func:`curves` table
    ``c``, averaged over the curves."""
    return float(np.nanmean(curve_rhos(c[c["loss"] == loss], x, y).to_numpy()))


def claims(results: Results) -> list[Claim]:
    """Claims A1-A5 of the research note, judged per dataset. Each trend is Spearman's rho along every shift's curve
    (clean set plus five severities, seed means), averaged over the shifts: each shift is its own experiment, as in
    one panel of Fig 2.3."""
    t = results.table
    all_curves = curves(t)
    stat = "mean over shifts of Spearman rho"
    out = []
    for name, d in t.groupby("dataset", sort=False):
        c = all_curves[all_curves["dataset"] == name]
        first = d["loss"].iloc[0]  # the OOD score is the same for every loss
        clean = float(d.loc[(d["loss"] == first) & (d["shift"] == "none"), "ood_score"].iloc[0])
        losses = set(d["loss"])
        out += [
            Claim(f"A1/{name}", f"{name}: the OOD score rises with shift severity", f"{stat}(level, OOD score)",
                  mean_curve_rho(c, first, "level", "ood_score"), ">", 0.8,
                  "OOD score orders the shifted sets (Fig 2.3, x-axis)"),
            Claim(f"A1b/{name}", f"{name}: the held-out training distribution scores about 0.5",
                  "|OOD score - 0.5| on the clean test split", abs(clean - 0.5), "<", 0.1,
                  "held-out set plotted at 0.5"),
        ]
        if "ce" in losses:
            out += [
                Claim(f"A2/{name}", f"{name}, CE: KL to the label marginal falls as the OOD score grows",
                      f"{stat}(OOD score, KL)", mean_curve_rho(c, "ce"), "<", -0.5,
                      "clear negative trend on 8 datasets (Fig 2.3)"),
                Claim(f"A3/{name}", f"{name}, CE: predictive entropy rises as the OOD score grows",
                      f"{stat}(OOD score, entropy)", mean_curve_rho(c, "ce", y="entropy"), ">", 0.5,
                      "average prediction flattens towards the marginal (Fig 2.2)"),
            ]
        if "gaussian_nll" in losses:
            out += [
                Claim(f"A4a/{name}", f"{name}, Gaussian NLL: the predicted sigma rises as the OOD score grows",
                      f"{stat}(OOD score, mean sigma)", mean_curve_rho(c, "gaussian_nll", y="sigma"), ">", 0.5,
                      "sigma increases with shift (Fig 2.2)"),
                Claim(f"A4b/{name}", f"{name}, Gaussian NLL: the predicted mean moves towards mean(y)",
                      f"{stat}(OOD score, mean |mu - mu*|)", mean_curve_rho(c, "gaussian_nll", y="mu_gap"), "<",
                      -0.5, "mu approaches the OCS mean (Fig 2.2)"),
                Claim(f"A4c/{name}", f"{name}, Gaussian NLL: KL to N(mu*, sigma*^2) falls as the OOD score grows",
                      f"{stat}(OOD score, KL)", mean_curve_rho(c, "gaussian_nll"), "<", -0.5,
                      "clear negative trend (Fig 2.3)"),
            ]
        if "mse_reward" in losses:
            out.append(Claim(f"A5/{name}", f"{name}, MSE reward model: distance to the OCS falls as the OOD score grows",
                             f"{stat}(OOD score, squared distance)", mean_curve_rho(c, "mse_reward"), "<", -0.5,
                             "clear negative trend (Fig 2.3)"))
    return out


def extra(results: Results) -> dict:
    """metrics.json's extra numbers: rho(OOD score, distance to the OCS) per curve, as the notebook shows them."""
    return {"rho_per_curve": rank_table(results.table).round(3).to_dict()}


def average_prediction(pred: torch.Tensor) -> torch.Tensor:
    """Mean of the class probabilities over seeds and inputs: (E, N, K) -> (K,)."""
    return pred.mean(dim=(0, 1))


def gaussian_mixture_density(pred: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Average of the predicted densities N(t; mu_i, sigma_i^2) over seeds and inputs, on ``grid``."""
    mu, var = pred[..., 0].reshape(-1, 1).double(), pred[..., 1].reshape(-1, 1).double()
    dens = torch.exp(-((grid.double() - mu) ** 2) / (2 * var)) / torch.sqrt(2 * torch.pi * var)
    return dens.mean(0)
