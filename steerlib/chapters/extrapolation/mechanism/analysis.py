"""Statistics of the chapter's tables (rank correlations over shift levels, layers and evaluation sets), its claims
A8-A13 and the numbers kept in metrics.json."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch

from steerlib.chapters.extrapolation.mechanism.experiment import ModelSpec, Results
from steerlib.core.claims import Claim
from steerlib.measures.homogeneous import BiasRuns
from steerlib.measures.statistics import spearman
from steerlib.vision.shifts import with_clean


def model_names(results: Results, loss: str) -> list[str]:
    """The plain (unnormalised, balanced) model of every architecture trained with ``loss``."""
    return [ModelSpec(arch, loss).name for arch in results.archs]


def last_layer(df: pd.DataFrame, model: str) -> str:
    """The model's last affine layer (the output's linear part)."""
    sub = df[df["model"] == model]
    return sub.loc[sub["depth"].idxmax(), "layer"]


def norm_curves(results: Results, model: str, layer: str | None = None) -> pd.DataFrame:
    """Seed-mean feature-norm ratio per (shift, level) at ``layer`` (default: the last layer)."""
    df = results.norms[results.norms["model"] == model]
    df = with_clean(df[df["layer"] == (layer or last_layer(results.norms, model))])
    return df.groupby(["shift", "level"])["ratio"].mean().reset_index()


def projection_curves(results: Results, model: str, energy: float | None = None,
                      layer: str | None = None) -> pd.DataFrame:
    """Seed means of the projection ratio (and of its standard deviation over inputs) per (shift, level), at
    ``layer`` (default: the model's last) and ``energy`` (default: the chapter's)."""
    df = results.projection
    df = df[(df["model"] == model) & (df["energy"] == (energy or results.energy))]
    df = with_clean(df[df["layer"] == (layer or df["layer"].iloc[-1])])
    return df.groupby(["shift", "level"])[["ratio", "std", "k"]].mean().reset_index()


def mean_rho(curves: pd.DataFrame, value: str = "ratio") -> float:
    """Mean over shifts of Spearman's rho between the level and ``value`` (NaN where every curve is constant, e.g.
    a projection ratio that is 1 because k reached the full rank)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant curves: rho is undefined, and NaN says so
        return float(np.nanmean([spearman(g["level"], g[value]) for _, g in curves.groupby("shift")]))


def projection_rho(results: Results, energy: float | None = None) -> float:
    """The A9 statistic: mean over CE models of :func:`mean_rho` of the last layer's projection ratio at ``energy``."""
    return float(np.mean([mean_rho(projection_curves(results, m, energy)) for m in model_names(results, "ce")]))


def depth_rho(results: Results, model: str) -> float:
    """Mean over shifts of Spearman's rho between the layer's depth and its ratio at the strongest level."""
    df = results.norms[(results.norms["model"] == model) & (results.norms["shift"] != "none")]
    df = df[df["level"] == df["level"].max()].groupby(["shift", "depth"])["ratio"].mean().reset_index()
    return float(np.mean([spearman(g["depth"], g["ratio"]) for _, g in df.groupby("shift")]))


def link_rho(results: Results, model: str, target: str = "to_constants") -> float:
    """Spearman's rho, across every evaluation set (seed means), between the last layer's feature-norm ratio and the
    predictions' distance ``to_constants`` (their last layer's accumulated constants) or ``to_ocs``."""
    norms = results.norms[(results.norms["model"] == model)
                          & (results.norms["layer"] == last_layer(results.norms, model))]
    merged = norms.merge(results.sets, on=["model", "seed", "shift", "level"])
    g = merged.groupby(["shift", "level"])[["ratio", target]].mean()
    return spearman(g["ratio"], g[target])


def summary(results: Results) -> pd.DataFrame:
    """Per model and shift: the last-layer norm ratio at the strongest level, and Spearman's rho between the level
    and the last-layer norm ratio and between the level and the projection ratio (seed means)."""
    rows = []
    for model in results.norms["model"].unique():
        nc = norm_curves(results, model)
        pc = projection_curves(results, model)
        for shift, g in nc.groupby("shift"):
            rows.append({"model": model, "shift": shift,
                         "last-layer ratio, strongest": float(g.loc[g["level"].idxmax(), "ratio"]),
                         "rho(level, norm ratio)": spearman(g["level"], g["ratio"]),
                         "rho(level, projection)": spearman(*pc[pc["shift"] == shift][["level", "ratio"]].T.values)})
    return pd.DataFrame(rows).set_index(["model", "shift"])


def constants_ratio(results: Results, model: str, baseline: str = "clean_distance") -> float:
    """Seed mean of d(accumulated constants at the last layer, OCS) over the seed mean of ``baseline``
    (default: the mean distance of clean-test predictions to the OCS)."""
    df = results.constants[results.constants["model"] == model]
    df = df[df["layer"] == df["layer"].iloc[-1]]
    return float(df["distance"].mean() / df[baseline].mean())


def bias_agreement(bias: BiasRuns) -> dict[str, float]:
    """Fractions of output-bias runs whose bias has the sign of the OCS at the end (``ocs``) and after 1% of training
    (``ocs_early``), and whose final bias has the sign of the margin points' label sum (``margin``)."""
    sign = torch.sign(bias.final)
    early = bias.trace[:, max(1, bias.trace.shape[1] // 100)]
    return {"ocs": float((sign == torch.sign(bias.ocs)).float().mean()),
            "margin": float((sign == torch.sign(bias.margin_label_sum)).float().mean()),
            "ocs_early": float((torch.sign(early) == torch.sign(bias.ocs)).float().mean())}


def claims(results: Results) -> list[Claim]:
    """Claims A8-A13 of the research note, each one statistic against a threshold (see the chapter for why)."""
    ce = model_names(results, "ce")
    mse = model_names(results, "mse_reward")
    variants = [ModelSpec("cnn", "ce", n).name for n in results.normalisations]

    def top_level(model):
        c = norm_curves(results, model)
        return float(c[c["level"] == c["level"].max()]["ratio"].mean())

    fg = results.fgsm.groupby("set").mean(numeric_only=True)
    fg_last = results.layers("fgsm")[-1]
    nll = with_clean(results.nll).groupby(["shift", "level"]).mean(numeric_only=True).reset_index()
    internal = results.layers("nll")[-2]  # the last hidden affine layer (fc1 for the CNN)

    def nll_rho(shift, value):
        g = nll[nll["shift"] == shift]
        return spearman(g["level"], g[value])

    sp, blur = results.nll_shifts
    th = results.theory
    hidden = th.stable_rank[:, :, 1:-1]  # drop W_1 (d -> m) and W_L (m -> 1)
    per_depth = hidden.nanmean(dim=(1, 2))
    depths = results.theory_depths
    widest = int(np.argmax(results.theory_angles))
    last_hidden = torch.stack([th.norm_ratio[i, :, widest, d - 2].mean() for i, d in enumerate(depths)])
    proj_rho = [spearman(th.rank_one_proj[i].flatten(), th.abs_out[i].flatten()) for i in range(len(depths))]
    dis = "Fig 2.4"
    return [
        Claim("A8a", "Feature norms of the last layer are smaller on the most shifted inputs than on training inputs",
              "mean over CE models x shifts of E_OOD/E_train ||W phi||^2 at the last layer, strongest level",
              float(np.mean([top_level(m) for m in ce])), "<", 1.0, f"< 1 in later layers ({dis}, col. 1)"),
        Claim("A8b", "Feature norms of the last layer fall as the shift grows",
              "mean Spearman rho(level, last-layer norm ratio) over CE models x shifts",
              float(np.mean([mean_rho(norm_curves(results, m)) for m in ce])), "<", -0.5, dis),
        Claim("A8c", "The fall compounds with depth", "mean Spearman rho(layer depth, norm ratio) at the strongest "
              "level over CE models x shifts", float(np.mean([depth_rho(results, m) for m in ce])), "<", -0.5,
              "the effect grows through the layers (Fig 2.4)"),
        Claim("A8d", "Where the last layer's features shrink, the predictions are near the accumulated constants",
              "mean over CE and MSE models of Spearman rho(last-layer norm ratio, distance to the constants) across "
              "sets", float(np.mean([link_rho(results, m) for m in ce + mse])), ">", 0.5,
              "OOD outputs are dominated by the constants (section 2.4)"),
        Claim("A9", "The share of the features in the span of the last layer's top singular vectors falls with shift",
              f"mean Spearman rho(level, projection ratio at energy {results.energy:g}) over CE models x shifts",
              projection_rho(results), "<", -0.5, f"{dis}, col. 2 (k unstated)"),
        Claim("A10a", "CE, balanced labels (the OCS is uniform): the accumulated constants are close to the OCS",
              "max over archs of KL(constants || OCS) / mean KL(clean predictions || OCS)",
              max(constants_ratio(results, m) for m in ce), "<", 0.1, f"{dis}, col. 3"),
        Claim("A10b", "MSE reward model: the accumulated constants are close to the OCS [5p-4, ..., 0]",
              "max over archs of ||constants - OCS||^2 / mean ||clean predictions - OCS||^2",
              max(constants_ratio(results, m) for m in mse), "<", 0.1, f"{dis}, col. 4"),
        Claim("A10c", "Control, imbalanced labels: the CE constants are closer to the label marginal than uniform is",
              "KL(constants || OCS) / KL(uniform || OCS)",
              constants_ratio(results, ModelSpec("cnn", "ce", imbalanced=True).name, "uniform_distance"), "<", 0.5,
              "not tested in the dissertation (its datasets' marginals)"),
        Claim("A11a", "A8b holds for every normalisation (none, BatchNorm, LayerNorm)",
              "max over variants of mean Spearman rho(level, last-layer norm ratio)",
              max(mean_rho(norm_curves(results, m)) for m in variants), "<", -0.5, "Figs A.4, A.5"),
        Claim("A11b", "A9 holds for every normalisation", "max over variants of mean Spearman rho(level, projection)",
              max(mean_rho(projection_curves(results, m)) for m in variants), "<", -0.5, "Figs A.4, A.5"),
        Claim("A11c", "A10a (balanced CE) holds for every normalisation", "max over variants of the A10a ratio",
              max(constants_ratio(results, m) for m in variants), "<", 0.1, "Figs A.4, A.5"),
        Claim("A12a", "FGSM inputs are more OOD than clean inputs", "mean OOD score adversarial - clean",
              float(fg.loc["adversarial", "ood_score"] - fg.loc["clean", "ood_score"]), ">", 0.05, "Fig A.1"),
        Claim("A12b", "FGSM inputs are farther from the OCS than clean inputs", "mean KL to OCS adversarial - clean",
              float(fg.loc["adversarial", "distance"] - fg.loc["clean", "distance"]), ">", 0.0, "Fig A.1, left"),
        Claim("A12c", "FGSM inputs have larger feature norms than training inputs",
              "seed-mean last-layer norm ratio of adversarial inputs", float(fg.loc["adversarial", fg_last]), ">",
              1.0, "Fig A.1, right"),
        Claim("A12d", f"Gaussian NLL: {sp} moves predictions away from the OCS while {blur} moves them towards it",
              f"min(rho(level, KL) for {sp}, -rho(level, KL) for {blur})",
              min(nll_rho(sp, "distance"), -nll_rho(blur, "distance")), ">", 0.5, "Fig A.2 (UTKFace)"),
        Claim("A12e", f"Gaussian NLL: internal feature norms rise with {sp} and fall with {blur}",
              f"min(rho(level, {internal} norm ratio) for {sp}, -rho for {blur})",
              min(nll_rho(sp, internal), -nll_rho(blur, internal)), ">", 0.5, "Fig A.2, right"),
        Claim("A13a", "Lemma A.4.4: trained bias-free deep ReLU nets are nearly rank one in every hidden layer",
              "mean stable rank of the hidden layers (all depths, seeds)", float(hidden.nanmean()), "<", 2.0,
              f"rank one; random init has {th.init_stable_rank:.1f}"),
        Claim("A13b", "Lemma A.4.4: the hidden layers get closer to rank one as depth grows",
              "Spearman rho(depth, mean hidden stable rank)",
              spearman(list(depths), per_depth.tolist()), "<", -0.5, "bound tightens with depth"),
        Claim("A13c", "Prop 2.4.1 / Thm 2.4.1: OOD inputs have much smaller features than training inputs",
              "max over depths of E_OOD/E_train ||f_{L-1}(x)|| at the largest angle",
              float(last_hidden.max()), "<", 0.5, "train norms >= gamma / C0; OOD norms can collapse"),
        Claim("A13d", "Thm 2.4.1: |f(x)| tracks the rank-one projection ||A_1 f_1(x)|| on OOD inputs",
              "min over depths of Spearman rho(||A_1 f_1(x)||, |f(x)|)", float(min(proj_rho)), ">", 0.8,
              "|f(x)| <~ C0 (eps + ...) when ||A_j f_j(x)|| <= eps"),
        Claim("A13e", "Prop 2.4.2: with an output bias and imbalanced labels the bias takes the OCS's sign",
              "fraction of runs with sign(b) = sign(OCS) at the end of training",
              bias_agreement(th.bias)["ocs"], ">=", 0.9, "b ~ sum of margin-point labels ~ OCS direction"),
    ]


def extra(results: Results) -> dict:
    """Numbers behind the claims that the chapter quotes: per-energy A9 statistics, bias agreements, k per layer."""
    k = results.projection[results.projection["energy"] == results.energy].groupby(["model", "layer"])["k"].mean()
    return {"a9_by_energy": {e: projection_rho(results, e) for e in results.energies},
            "bias_agreement": bias_agreement(results.theory.bias),
            "rho_norm_vs_distance": {m: {t: link_rho(results, m, t) for t in ("to_constants", "to_ocs")}
                                     for m in results.sets["model"].unique()},
            "k_at_energy": {f"{m} {layer}": float(v) for (m, layer), v in k.items()}}
