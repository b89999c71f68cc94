"""The reversion chapter's statistics: replicate-mean curves, Spearman's rho along them, and the claims A0-A5."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from steerlib.chapters.extrapolation.reversion.experiment import Results
from steerlib.core.claims import Claim, Measured, Spec, make_claims
from steerlib.measures.statistics import jackknife, replicate_matrix, spearman, spearman_rows
from steerlib.vision.shifts import with_clean


def curves(table: pd.DataFrame) -> pd.DataFrame:
    """Replicate means and standard deviations per (dataset, loss, shift, level); the clean set joins every shift."""
    full = with_clean(table)
    value_cols = [c for c in full.columns if c not in ("dataset", "loss", "shift", "level", "replicate")]
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


# The trend claims: id -> (loss, quantity whose rho with the OOD score along each curve is averaged over the shifts)
TRENDS = {
    "A2": ("ce", "distance"),
    "A2b": ("ce", "spread"),
    "A3": ("ce", "entropy"),
    "A4a": ("gaussian_nll", "sigma"),
    "A4b": ("gaussian_nll", "mu_gap"),
    "A4c": ("gaussian_nll", "distance"),
    "A5": ("mse_reward", "distance"),
}
# The clean test accuracy the cross-entropy CNN must reach for its predictions to be worth judging, per dataset, and
# why: the bar for MNIST, and for the others a bar between their simple baselines and their CNN results.
MIN_ACCURACY = {
    "mnist5k": (
        0.95,
        "MNIST CNNs reach 0.99 on 60,000 images; 0.95 on 3,500 is a CNN that learned the digits, "
        "not a near-uniform one",
    ),
    "mnist": (0.95, "MNIST CNNs reach 0.99; 0.95 is a CNN that learned the digits"),
    "mnist1d": (
        0.8,
        "above the MLP baseline of the mnist1d paper (0.68) and short of its CNN (0.94): a CNN that "
        "uses the signal's shape",
    ),
    "digits": (0.9, "a linear model already reaches 0.95 on the 8x8 digits; 0.9 at the smoke profile's budget"),
    "cifar10": (0.7, "a small CNN's usual CIFAR-10 accuracy; a linear model reaches 0.4"),
}
DEFAULT_ACCURACY = (0.9, "a classifier right on nine inputs in ten (a dataset without a bar of its own)")
LADDER_COST = 1 / 3  # the strongest level of every ladder costs the CE model at least this share of its accuracy


def trend_statistic(table: pd.DataFrame) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """Every claim's statistic except A1 and A1b (:data:`TRENDS` and the accuracy prerequisites) as a function of a
    draw of replicates, and the number of replicates.

    ``statistic(draw)`` takes the replicates at positions ``draw``, averages every curve point over them and returns, by
    claim id: per shift ``<cid>/<dataset>/<shift>``, Spearman's rho between the OOD score and the claim's quantity along
    that shift's curve (clean set plus five levels), and ``<cid>/<dataset>``, its mean over the shifts;
    ``A0a/<dataset>``, the CE model's clean accuracy; and ``A0b/<dataset>/<shift>``, the share of it lost at the
    strongest level. In numpy so that resampling stays fast.
    """
    full = with_clean(table)
    keys = ["dataset", "loss", "shift", "level"]
    quantities = ["ood_score", "accuracy", *sorted({y for _, y in TRENDS.values()} & set(full.columns))]
    per_replicate = {q: replicate_matrix(full, keys, q) for q in quantities}
    index = per_replicate["ood_score"].index
    curve_keys = index.droplevel("level")
    n_curves = curve_keys.nunique()
    n_levels = len(index) // n_curves
    if n_curves * n_levels != len(index) or index.get_level_values("level").nunique() != n_levels:
        raise ValueError("every (dataset, loss, shift) curve must have the same levels")
    arrays = {q: m.to_numpy() for q, m in per_replicate.items()}
    curve_list = curve_keys.unique()  # in the order of the rows
    datasets, losses = curve_list.get_level_values("dataset"), curve_list.get_level_values("loss")
    shifts = curve_list.get_level_values("shift")
    rows = {(name, loss): np.flatnonzero((datasets == name) & (losses == loss)) for name, loss in zip(datasets, losses)}

    def statistic(draw: np.ndarray) -> dict[str, float]:
        means = {q: a[:, draw].mean(1).reshape(n_curves, n_levels) for q, a in arrays.items()}
        out = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a constant curve has no rho, and NaN says so
            for (name, loss), r in rows.items():
                if loss == "ce":
                    acc = means["accuracy"][r]
                    out[f"A0a/{name}"] = float(acc[0, 0])
                    out.update({f"A0b/{name}/{shifts[i]}": float(1 - a[-1] / a[0]) for i, a in zip(r, acc)})
                for cid, (trend_loss, y) in TRENDS.items():
                    if trend_loss == loss and y in means:  # a table without the quantity skips its claim
                        rho = spearman_rows(means["ood_score"][r], means[y][r])
                        out[f"{cid}/{name}"] = float(np.nanmean(rho))
                        out.update({f"{cid}/{name}/{shifts[i]}": float(v) for i, v in zip(r, rho)})
        return out

    return statistic, per_replicate["ood_score"].shape[1]


def _ood_statistics(t: pd.DataFrame) -> dict[str, Measured]:
    """A1 and A1b, which read the OOD score: one number per evaluation set, shared by every replicate and loss."""
    fixed = (
        "zero width: the OOD score is one number per evaluation set, shared by every replicate and loss (the "
        "discriminator's split-to-split spread is not kept)"
    )
    all_curves, out = curves(t), {}
    for name, d in t.groupby("dataset", sort=False):
        first = d["loss"].iloc[0]  # the OOD score is the same for every loss
        clean = float(d.loc[(d["loss"] == first) & (d["shift"] == "none"), "ood_score"].iloc[0])
        order = mean_curve_rho(all_curves[all_curves["dataset"] == name], first, "level", "ood_score")
        for cid, value in ((f"A1/{name}", order), (f"A1b/{name}", abs(clean - 0.5))):
            out[cid] = Measured(value, (value, value), fixed)
    return out


def statistics(t: pd.DataFrame) -> dict[str, Measured]:
    """Every claim's value and interval by id: the trends and the accuracy prerequisites over the replicates
    (:func:`~steerlib.measures.statistics.jackknife` of :func:`trend_statistic`), A1 and A1b from the OOD score."""
    out = {
        cid: m.clipped(0.0, 1.0) if cid.startswith("A0") else m.clipped(-1.0, 1.0)  # accuracies, rho
        for cid, m in jackknife(*trend_statistic(t)).items()
    }
    for name in t["dataset"].unique():
        if f"A0a/{name}" in out:
            bar, reason = MIN_ACCURACY.get(name, DEFAULT_ACCURACY)
            out[f"A0a/{name}"] = dataclasses.replace(out[f"A0a/{name}"], threshold=bar, context={"reason": reason})
    return {**out, **_ood_statistics(t)}


# What each trend claim says: statement, quantity, direction, the dissertation's figure, and its source in words
TREND_TEXT = {
    "A2": (
        "CE: KL to the label marginal falls as the OOD score grows",
        "KL",
        "<",
        "clear negative trend on 8 datasets (Fig 2.3)",
        "as Fig 2.3 shows on 8 datasets",
    ),
    "A2b": (
        "CE: predictions grow more alike as the OOD score grows",
        "spread (mean KL from each prediction to the set's mean prediction)",
        "<",
        "OOD predictions are more similar to one another than in-distribution ones (section 2.3, Fig 2.1)",
        "as section 2.3 states for every dataset of Fig 2.3",
    ),
    "A3": (
        "CE: predictive entropy rises as the OOD score grows",
        "entropy",
        ">",
        "average prediction flattens towards the marginal (Fig 2.2)",
        "the flattening of Fig 2.2",
    ),
    "A4a": (
        "Gaussian NLL: the predicted sigma rises as the OOD score grows",
        "mean sigma",
        ">",
        "sigma increases with shift (Fig 2.2)",
        "as in Fig 2.2 (outputs that merely shrink would not widen sigma)",
    ),
    "A4b": (
        "Gaussian NLL: the predicted mean moves towards mean(t)",
        "mean |mu - mu*|",
        "<",
        "mu approaches the OCS mean (Fig 2.2)",
        "mu drifting to mu* as in Fig 2.2",
    ),
    "A4c": (
        "Gaussian NLL: KL to N(mu*, sigma*^2) falls as the OOD score grows",
        "KL",
        "<",
        "clear negative trend (Fig 2.3)",
        "as Fig 2.3 shows on 8 datasets",
    ),
    "A5": (
        "MSE reward model: distance to the OCS falls as the OOD score grows",
        "squared distance",
        "<",
        "clear negative trend (Fig 2.3)",
        "as Fig 2.3 shows on 8 datasets",
    ),
}


def _trend_specs(cid: str) -> tuple[Spec, Spec]:
    """The mean-over-shifts claim and the per-shift claim of trend ``cid``."""
    statement, quantity, op, dissertation, source = TREND_TEXT[cid]
    threshold = -0.5 if op == "<" else 0.5
    why = (
        f"rho {op} {threshold}: a clear monotone {'fall' if op == '<' else 'rise'} along the curve's six points, "
        f"{source}; 0 would be no trend"
    )
    return (
        Spec(
            id=f"{cid}/{{dataset}}",
            statement=f"{{dataset}}, {statement} (mean over shifts)",
            statistic=f"mean over shifts of Spearman rho(OOD score, {quantity})",
            op=op,
            threshold=threshold,
            why=why,
            dissertation=dissertation,
        ),
        Spec(
            id=f"{cid}/{{dataset}}/{{shift}}",
            statement=f"{{dataset}}, {{shift}}: {statement}",
            statistic=f"Spearman rho(OOD score, {quantity}) along the {{shift}} curve",
            op=op,
            threshold=threshold,
            why=why,
            dissertation=dissertation,
        ),
    )


DATASET = ("*/{dataset}", "*/{dataset}/*")  # a dataset's prerequisites gate that dataset's evidence only
SPECS = (
    Spec(
        id="A0a/{dataset}",
        kind="prerequisite",
        statement="{dataset}: the cross-entropy CNN classifies the clean test split well",
        statistic="replicate-mean clean test accuracy of the CE model",
        op=">=",
        threshold="the dataset's bar in MIN_ACCURACY",
        why=">= {threshold:g}: {reason}",
        gates=DATASET,
        dissertation="trained networks (the dissertation's reach 0.99 on MNIST)",
    ),
    Spec(
        id="A0b/{dataset}/{shift}",
        kind="prerequisite",
        statement="{dataset}, {shift}: the ladder's strongest level is a real shift",
        statistic="share of the CE model's clean accuracy lost at level 5",
        op=">=",
        threshold=LADDER_COST,
        why=">= 1/3: a ladder whose strongest level keeps two thirds of the accuracy barely moves the inputs (the "
        "issue's rule); the ladder rule aims its level 5 at 0.6",
        gates=("*/{dataset}/{shift}", "*/{dataset}"),  # the shift's own claims, and the mean over the shifts
        dissertation="its shifts cost the models much of their accuracy (Figs 2.3, 2.7)",
    ),
    Spec(
        id="A1/{dataset}",
        kind="prerequisite",
        statement="{dataset}: the OOD score rises with shift severity",
        statistic="mean over shifts of Spearman rho(level, OOD score)",
        op=">",
        threshold=0.8,
        why="rho > 0.8: the score must order the levels almost step by step (1: every step up) for the trends "
        "against it (A2-A5) to be trends in shift",
        gates=DATASET,
        dissertation="OOD score orders the shifted sets (Fig 2.3, x-axis)",
    ),
    Spec(
        id="A1b/{dataset}",
        kind="prerequisite",
        statement="{dataset}: the held-out training distribution scores about 0.5",
        statistic="|OOD score - 0.5| on the clean test split",
        op="<",
        threshold=0.1,
        why="< 0.1: a split drawn from the training distribution leaves the discriminator at chance (0.5, a little "
        "below by Jensen) up to its fitting noise; 0.1 is a fifth of the way to separable (1)",
        gates=DATASET,
        dissertation="held-out set plotted at 0.5",
    ),
    *(spec for cid in TRENDS for spec in _trend_specs(cid)),
)


def claims(results: Results) -> list[Claim]:
    """Claims A0-A5 (:data:`SPECS`), judged per dataset and, for the trends, per shift as well as averaged over the
    shifts.

    Prerequisites: the CE model's clean accuracy (A0a), the cost of every ladder's strongest level (A0b), the OOD
    score's order (A1) and its value on the held-out training distribution (A1b). Evidence: each trend is Spearman's
    rho along a shift's curve (clean set plus five levels, replicate means) between the OOD score and the quantity,
    one claim per shift (each shift is its own experiment, as one panel of Fig 2.3) and one for their mean. Every
    value comes with a prediction interval over the replicates, except the OOD score's, which no replicate enters."""
    t = results.table
    shifts = list(dict.fromkeys(t.loc[t["shift"] != "none", "shift"]))
    return make_claims(SPECS, statistics(t), axes={"dataset": list(t["dataset"].unique()), "shift": shifts})


def extra(results: Results) -> dict:
    """metrics.json's extra numbers: rho(OOD score, distance to the OCS) per curve, as the notebook shows them."""
    return {"rho_per_curve": rank_table(results.table).round(3).to_dict()}


def average_prediction(pred: torch.Tensor) -> torch.Tensor:
    """Mean of the class probabilities over replicates and inputs: (E, N, K) -> (K,)."""
    return pred.mean(dim=(0, 1))


def gaussian_mixture_density(pred: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Average of the predicted densities N(t; mu_i, sigma_i^2) over replicates and inputs, on ``grid``."""
    mu, var = pred[..., 0].reshape(-1, 1).double(), pred[..., 1].reshape(-1, 1).double()
    dens = torch.exp(-((grid.double() - mu) ** 2) / (2 * var)) / torch.sqrt(2 * torch.pi * var)
    return dens.mean(0)
