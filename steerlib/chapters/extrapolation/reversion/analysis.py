"""The reversion chapter's statistics: seed-mean curves, Spearman's rho along them, and the claims A1-A5."""
from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from steerlib.chapters.extrapolation.reversion.experiment import Results
from steerlib.core.claims import Claim
from steerlib.measures.statistics import (
    bootstrap_note,
    percentile_interval,
    seed_bootstrap,
    seed_matrix,
    spearman,
    spearman_rows,
)
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


N_BOOT = 1000  # bootstrap resamples of the seeds behind every interval
# The trend claims: id -> (loss, quantity whose rho with the OOD score along each curve is averaged over the shifts)
TRENDS = {"A2": ("ce", "distance"), "A3": ("ce", "entropy"), "A4a": ("gaussian_nll", "sigma"),
          "A4b": ("gaussian_nll", "mu_gap"), "A4c": ("gaussian_nll", "distance"), "A5": ("mse_reward", "distance")}


def _statistics(t: pd.DataFrame) -> dict[str, float]:
    """The value of every claim, by id: A1 and A1b read the OOD score, the trends are :func:`mean_curve_rho` per
    dataset."""
    all_curves = curves(t)
    out = {}
    for name, d in t.groupby("dataset", sort=False):
        c = all_curves[all_curves["dataset"] == name]
        first = d["loss"].iloc[0]  # the OOD score is the same for every loss
        clean = float(d.loc[(d["loss"] == first) & (d["shift"] == "none"), "ood_score"].iloc[0])
        out[f"A1/{name}"] = mean_curve_rho(c, first, "level", "ood_score")
        out[f"A1b/{name}"] = abs(clean - 0.5)
        out.update({f"{cid}/{name}": mean_curve_rho(c, loss, y=y) for cid, (loss, y) in TRENDS.items()
                    if loss in set(d["loss"])})
    return out


def trend_statistic(table: pd.DataFrame) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """The trend claims' statistics (:data:`TRENDS`) as a function of a draw of seeds, and the number of seeds.

    ``statistic(draw)`` takes the seeds at positions ``draw`` (sorted seeds; one drawn twice counts twice), averages
    every curve point over them and returns, per claim id, the mean over shifts of Spearman's rho between the OOD
    score and the claim's quantity along each curve, in numpy so that a bootstrap stays fast; with every seed drawn
    once it gives :func:`_statistics`' values."""
    full = with_clean(table)
    keys = ["dataset", "loss", "shift", "level"]
    quantities = ["ood_score", *sorted({y for _, y in TRENDS.values()} & set(full.columns))]
    per_seed = {q: seed_matrix(full, keys, q) for q in quantities}
    index = per_seed["ood_score"].index
    curve_keys = index.droplevel("level")
    n_curves = curve_keys.nunique()
    n_levels = len(index) // n_curves
    if n_curves * n_levels != len(index) or index.get_level_values("level").nunique() != n_levels:
        raise ValueError("every (dataset, loss, shift) curve must have the same levels")
    arrays = {q: m.to_numpy() for q, m in per_seed.items()}
    curve_list = curve_keys.unique()  # in the order of the rows
    datasets, losses = curve_list.get_level_values("dataset"), curve_list.get_level_values("loss")
    rows = {(name, loss): np.flatnonzero((datasets == name) & (losses == loss)) for name, loss in zip(datasets, losses)}

    def statistic(draw: np.ndarray) -> dict[str, float]:
        means = {q: a[:, draw].mean(1).reshape(n_curves, n_levels) for q, a in arrays.items()}
        out = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a constant curve has no rho, and NaN says so
            for (name, loss), r in rows.items():
                for cid, (trend_loss, y) in TRENDS.items():
                    if trend_loss == loss:
                        out[f"{cid}/{name}"] = float(np.nanmean(spearman_rows(means["ood_score"][r], means[y][r])))
        return out

    return statistic, per_seed["ood_score"].shape[1]


def trend_replicates(table: pd.DataFrame, n_boot: int = N_BOOT) -> dict[str, np.ndarray]:
    """Bootstrap replicates over seeds of every trend claim, by claim id: :func:`trend_statistic` on each resample of
    the seeds, drawn jointly for every dataset and loss (a seed is one replicate of the experiment)."""
    return seed_bootstrap(*trend_statistic(table), n_boot)


def claims(results: Results) -> list[Claim]:
    """Claims A1-A5 of the research note, judged per dataset. Each trend is Spearman's rho along every shift's curve
    (clean set plus five severities, seed means), averaged over the shifts: each shift is its own experiment, as in
    one panel of Fig 2.3. A1 and A1b check the set-up (the OOD score), the rest are evidence; every value comes with
    a bootstrap interval over the seeds, except the OOD score's, which no seed enters."""
    n_boot = N_BOOT
    t = results.table
    value = _statistics(t)
    interval = {cid: percentile_interval(r) for cid, r in trend_replicates(t, n_boot).items()}
    how = bootstrap_note(t["seed"].nunique(), n_boot)
    fixed = ("zero width: the OOD score is one number per evaluation set, shared by every seed and loss (the "
             "discriminator's split-to-split spread is not kept)")

    def measured(cid: str) -> dict:
        return {"value": value[cid], "interval": interval[cid], "uncertainty": how}

    def unseeded(cid: str) -> dict:
        return {"value": value[cid], "interval": (value[cid], value[cid]), "uncertainty": fixed}

    stat = "mean over shifts of Spearman rho"

    def trend(op: str, source: str) -> str:
        direction = "fall" if op == "<" else "rise"
        return f"rho {op} {-0.5 if op == '<' else 0.5}: a clear monotone {direction} along each curve's six points, " \
               f"{source}; 0 would be no trend"

    out = []
    for name, d in t.groupby("dataset", sort=False):
        losses = set(d["loss"])
        out += [
            Claim(f"A1/{name}", f"{name}: the OOD score rises with shift severity", f"{stat}(level, OOD score)",
                  op=">", threshold=0.8, dissertation="OOD score orders the shifted sets (Fig 2.3, x-axis)",
                  kind="prerequisite", **unseeded(f"A1/{name}"),
                  why="rho > 0.8: the score must order the levels almost step by step (1: every step up) for the "
                      "trends against it (A2-A5) to be trends in shift"),
            Claim(f"A1b/{name}", f"{name}: the held-out training distribution scores about 0.5",
                  "|OOD score - 0.5| on the clean test split", op="<", threshold=0.1,
                  dissertation="held-out set plotted at 0.5", kind="prerequisite", **unseeded(f"A1b/{name}"),
                  why="< 0.1: a split drawn from the training distribution leaves the discriminator at chance (0.5, "
                      "a little below by Jensen) up to its fitting noise; 0.1 is a fifth of the way to separable (1)"),
        ]
        if "ce" in losses:
            out += [
                Claim(f"A2/{name}", f"{name}, CE: KL to the label marginal falls as the OOD score grows",
                      f"{stat}(OOD score, KL)", op="<", threshold=-0.5,
                      dissertation="clear negative trend on 8 datasets (Fig 2.3)", **measured(f"A2/{name}"),
                      why=trend("<", "as Fig 2.3 shows on 8 datasets")),
                Claim(f"A3/{name}", f"{name}, CE: predictive entropy rises as the OOD score grows",
                      f"{stat}(OOD score, entropy)", op=">", threshold=0.5,
                      dissertation="average prediction flattens towards the marginal (Fig 2.2)",
                      **measured(f"A3/{name}"),
                      why=trend(">", "the flattening of Fig 2.2")),
            ]
        if "gaussian_nll" in losses:
            out += [
                Claim(f"A4a/{name}", f"{name}, Gaussian NLL: the predicted sigma rises as the OOD score grows",
                      f"{stat}(OOD score, mean sigma)", op=">", threshold=0.5,
                      dissertation="sigma increases with shift (Fig 2.2)", **measured(f"A4a/{name}"),
                      why=trend(">", "as in Fig 2.2 (outputs that merely shrink would not widen sigma)")),
                Claim(f"A4b/{name}", f"{name}, Gaussian NLL: the predicted mean moves towards mean(y)",
                      f"{stat}(OOD score, mean |mu - mu*|)", op="<", threshold=-0.5,
                      dissertation="mu approaches the OCS mean (Fig 2.2)", **measured(f"A4b/{name}"),
                      why=trend("<", "mu drifting to mu* as in Fig 2.2")),
                Claim(f"A4c/{name}", f"{name}, Gaussian NLL: KL to N(mu*, sigma*^2) falls as the OOD score grows",
                      f"{stat}(OOD score, KL)", op="<", threshold=-0.5, dissertation="clear negative trend (Fig 2.3)",
                      **measured(f"A4c/{name}"),
                      why=trend("<", "as Fig 2.3 shows on 8 datasets")),
            ]
        if "mse_reward" in losses:
            out.append(Claim(f"A5/{name}",
                             f"{name}, MSE reward model: distance to the OCS falls as the OOD score grows",
                             f"{stat}(OOD score, squared distance)", op="<", threshold=-0.5,
                             dissertation="clear negative trend (Fig 2.3)", **measured(f"A5/{name}"),
                             why=trend("<", "as Fig 2.3 shows on 8 datasets")))
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
