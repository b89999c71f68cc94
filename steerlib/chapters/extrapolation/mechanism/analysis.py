"""Statistics of the chapter's tables (rank correlations over shift levels, layers and evaluation sets), its claims
A8-A13 (:data:`SPECS`, :func:`statistics`) and the numbers kept in metrics.json."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from steerlib.chapters.extrapolation.mechanism.experiment import ModelSpec, Results
from steerlib.core.claims import Claim, Measured, Spec, make_claims
from steerlib.measures.homogeneous import BiasRuns, hidden_stable_rank
from steerlib.measures.statistics import jackknife, replicate_matrix, spearman, spearman_rows
from steerlib.vision.shifts import with_clean


def model_names(results: Results, loss: str) -> list[str]:
    """The plain (unnormalised, balanced) model of every architecture trained with ``loss``."""
    return [ModelSpec(arch, loss).name for arch in results.archs]


def last_layer(df: pd.DataFrame, model: str) -> str:
    """The model's last affine layer (the output's linear part)."""
    sub = df[df["model"] == model]
    return sub.loc[sub["depth"].idxmax(), "layer"]


def norm_curves(results: Results, model: str, layer: str | None = None) -> pd.DataFrame:
    """Replicate-mean feature-norm ratio per (shift, level) at ``layer`` (default: the last layer)."""
    df = results.norms[results.norms["model"] == model]
    df = with_clean(df[df["layer"] == (layer or last_layer(results.norms, model))])
    return df.groupby(["shift", "level"])["ratio"].mean().reset_index()


def projection_curves(
    results: Results, model: str, energy: float | None = None, layer: str | None = None
) -> pd.DataFrame:
    """Replicate means of the projection ratio (and of its standard deviation over inputs) per (shift, level), at
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


def hidden_layer(df: pd.DataFrame, model: str) -> str:
    """The model's last hidden affine layer (the one before the output layer)."""
    sub = df[df["model"] == model]
    return sub.loc[sub["depth"] == sub["depth"].max() - 1, "layer"].iloc[0]


def link_rho(results: Results, model: str, target: str = "to_hidden_constants") -> float:
    """Spearman's rho, across every evaluation set (replicate means), between a layer's feature-norm ratio and the
    predictions' distance to that layer's accumulated constants: the last hidden layer for ``to_hidden_constants``
    (A8d), the last layer for ``to_constants``; or the last layer's ratio and the distance ``to_ocs``."""
    layer = hidden_layer if target == "to_hidden_constants" else last_layer
    norms = results.norms[(results.norms["model"] == model) & (results.norms["layer"] == layer(results.norms, model))]
    merged = norms.merge(results.sets, on=["model", "replicate", "shift", "level"])
    g = merged.groupby(["shift", "level"])[["ratio", target]].mean()
    return spearman(g["ratio"], g[target])


def summary(results: Results) -> pd.DataFrame:
    """Per model and shift: the last-layer norm ratio at the strongest level, and Spearman's rho between the level
    and the last-layer norm ratio and between the level and the projection ratio (replicate means)."""
    rows = []
    for model in results.norms["model"].unique():
        nc = norm_curves(results, model)
        pc = projection_curves(results, model)
        for shift, g in nc.groupby("shift"):
            rows.append(
                {
                    "model": model,
                    "shift": shift,
                    "last-layer ratio, strongest": float(g.loc[g["level"].idxmax(), "ratio"]),
                    "rho(level, norm ratio)": spearman(g["level"], g["ratio"]),
                    "rho(level, projection)": spearman(*pc[pc["shift"] == shift][["level", "ratio"]].T.values),
                }
            )
    return pd.DataFrame(rows).set_index(["model", "shift"])


def constants_ratio(results: Results, model: str, baseline: str = "clean_distance") -> float:
    """Replicate mean of d(accumulated constants at the last layer, OCS) over the replicate mean of ``baseline``
    (default: the mean distance of clean-test predictions to the OCS)."""
    df = results.constants[results.constants["model"] == model]
    df = df[df["layer"] == df["layer"].iloc[-1]]
    return float(df["distance"].mean() / df[baseline].mean())


def bias_agreement(bias: BiasRuns) -> dict[str, float]:
    """Fractions of output-bias runs whose bias has the sign of the OCS at the end (``ocs``) and after 1% of training
    (``ocs_early``), and whose final bias has the sign of the margin points' label sum (``margin``)."""
    sign = torch.sign(bias.final)
    early = bias.trace[:, max(1, bias.trace.shape[1] // 100)]
    return {
        "ocs": float((sign == torch.sign(bias.ocs)).float().mean()),
        "margin": float((sign == torch.sign(bias.margin_label_sum)).float().mean()),
        "ocs_early": float((torch.sign(early) == torch.sign(bias.ocs)).float().mean()),
    }


def top_level(results: Results, model: str) -> float:
    """The A8a statistic of one model: its last-layer norm ratio at the strongest level, replicate means averaged
    over the shifts."""
    c = norm_curves(results, model)
    return float(c[c["level"] == c["level"].max()]["ratio"].mean())


def _shift_curves(m: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A :func:`~steerlib.measures.statistics.replicate_matrix` indexed by (shift, level), the clean set as
    ("none", 0) -> the levels (clean first), every shift's curve with the clean set at level 0 (as :func:`with_clean`
    builds them), shape (shift, level, replicate), and the shifts' names in that order."""
    clean = m.loc[("none", 0)].to_numpy()
    shifted = m.drop(index="none", level="shift")
    shifts = shifted.index.get_level_values("shift").unique()
    levels = np.sort(shifted.index.get_level_values("level").unique())
    grid = shifted.reindex(pd.MultiIndex.from_product([shifts, levels])).to_numpy()
    grid = grid.reshape(len(shifts), len(levels), -1)
    curves = np.concatenate([np.broadcast_to(clean, (len(shifts), 1, len(clean))), grid], axis=1)
    return np.concatenate([[0], levels]), curves, list(shifts)


def model_statistic(results: Results, model: str) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """One model's statistics as a function of a draw of its replicates, and its number of replicates.

    ``statistic(draw)`` takes the model's replicates at positions ``draw`` (replicate indices, sorted), averages
    every measurement over them and returns, by name, what the claims combine over models: ``top``
    (:func:`top_level`), ``norm_rho`` (:func:`mean_rho` of :func:`norm_curves`), ``depth_rho``, ``link_rho`` (of
    the last hidden layer), ``proj_rho`` (:func:`mean_rho` of :func:`projection_curves`), ``constants`` and
    ``constants_uniform`` (:func:`constants_ratio` against the clean predictions and against uniform). It is written
    in numpy so that the jackknife stays fast; with every replicate in the draw it gives the values of those
    functions."""
    norms = results.norms[results.norms["model"] == model]
    last = replicate_matrix(norms[norms["layer"] == last_layer(results.norms, model)], ["shift", "level"], "ratio")
    levels, norm, _ = _shift_curves(last)
    shifted = norms[norms["shift"] != "none"]
    by_depth = replicate_matrix(shifted[shifted["level"] == shifted["level"].max()], ["shift", "depth"], "ratio")
    depths = np.asarray(by_depth.index.levels[1])
    by_depth = by_depth.to_numpy().reshape(-1, len(depths), by_depth.shape[1])  # (shift, depth, replicate)
    sets = results.sets[results.sets["model"] == model]
    hidden = replicate_matrix(norms[norms["layer"] == hidden_layer(results.norms, model)], ["shift", "level"], "ratio")
    to_constants = replicate_matrix(sets, ["shift", "level"], "to_hidden_constants").reindex(hidden.index).to_numpy()
    ratio = hidden.to_numpy()  # every evaluation set once, for A8d's link with the distance to the constants
    proj = results.projection
    proj = proj[(proj["model"] == model) & (proj["energy"] == results.energy)]
    _, proj, _ = _shift_curves(
        replicate_matrix(proj[proj["layer"] == proj["layer"].iloc[-1]], ["shift", "level"], "ratio")
    )
    consts = results.constants[results.constants["model"] == model]
    consts = consts[consts["layer"] == consts["layer"].iloc[-1]].sort_values("replicate")
    distance, clean, uniform = (consts[c].to_numpy() for c in ("distance", "clean_distance", "uniform_distance"))

    def statistic(draw: np.ndarray) -> dict[str, float]:
        def mean(a: np.ndarray) -> np.ndarray:
            return a[..., draw].mean(-1)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant curves: rho is undefined, and NaN says so
            return {
                "top": float(mean(norm)[:, -1].mean()),
                "norm_rho": float(np.nanmean(spearman_rows(levels, mean(norm)))),
                "depth_rho": float(np.mean(spearman_rows(depths, mean(by_depth)))),
                "link_rho": float(spearman_rows(mean(ratio), mean(to_constants))),
                "proj_rho": float(np.nanmean(spearman_rows(levels, mean(proj)))),
                "constants": float(mean(distance) / mean(clean)),
                "constants_uniform": float(mean(distance) / mean(uniform)),
            }

    return statistic, len(distance)


def counterexample_statistic(results: Results) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """Claims A12b-A12e as a function of a draw of replicates (the FGSM table's attacked CE CNN and the Gaussian-NLL
    CNN have as many), and the number of replicates; see :func:`model_statistic`."""
    fg = results.fgsm
    fg_layers = results.layers("fgsm")[1:]  # every affine layer (not the input)
    fgsm = {c: replicate_matrix(fg, ["set"], c) for c in ("distance", *fg_layers)}
    sets = list(fgsm["distance"].index)
    nll = results.nll
    sp, blur = results.nll_shifts
    internal = results.layers("nll")[-2]
    curves = {c: _shift_curves(replicate_matrix(nll, ["shift", "level"], c)) for c in ("distance", internal)}
    if fgsm["distance"].shape[1] != curves["distance"][1].shape[-1]:
        raise ValueError("the FGSM and Gaussian-NLL tables must hold the same replicates")

    def statistic(draw: np.ndarray) -> dict[str, float]:
        fg_mean = {c: dict(zip(sets, m.to_numpy()[:, draw].mean(1))) for c, m in fgsm.items()}

        def rho(shift: str, value: str) -> float:
            levels, curve, shifts = curves[value]
            return float(spearman_rows(levels, curve[shifts.index(shift)][:, draw].mean(-1)))

        return {
            "A12b": float(fg_mean["distance"]["adversarial"] - fg_mean["distance"]["clean"]),
            "A12c": float(min(fg_mean[c]["adversarial"] for c in fg_layers)),
            "A12d": min(rho(sp, "distance"), -rho(blur, "distance")),
            "A12e": min(rho(sp, internal), -rho(blur, internal)),
        }

    return statistic, fgsm["distance"].shape[1]


def theory_statistic(results: Results) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """Claims A13a-A13d as a function of a draw of the simulation's seeds (its nets of every depth), and the number
    of seeds; with every seed in the draw it gives the claims' values."""
    th, depths = results.theory, results.theory_depths
    widest = int(np.argmax(results.theory_angles))
    hidden = hidden_stable_rank(th.stable_rank, depths)  # (depths, seeds)
    within = within_angle_rho(results)  # (depths, seeds, turned angles)

    def statistic(draw: np.ndarray) -> dict[str, float]:
        idx = torch.as_tensor(draw)
        last_hidden = torch.stack([th.norm_ratio[i, idx, widest, d - 2].mean() for i, d in enumerate(depths)])
        return {
            "A13a": float(hidden[:, idx].mean()),
            "A13b": spearman(list(depths), hidden[:, idx].mean(1).tolist()),
            "A13c": float(last_hidden.max()),
            "A13d": float(within[:, draw].mean((1, 2)).min()),
        }

    return statistic, th.stable_rank.shape[1]


def within_angle_rho(results: Results) -> np.ndarray:
    """Spearman's rho between ||A_1 f_1(x)|| and |f(x)| over the test points of one net at one angle, for every
    depth, seed and angle out of the plane (the 0 degree set left out): (depths, seeds, angles > 0). Within an angle,
    so that the shared fall of both with the angle does not make the correlation."""
    th = results.theory
    turned = [i for i, a in enumerate(results.theory_angles) if a > 0]
    return spearman_rows(th.rank_one_proj[:, :, turned].numpy(), th.abs_out[:, :, turned].numpy())


def bias_statistic(bias: BiasRuns) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """A13e (:func:`bias_agreement`'s ``margin``: the fraction of runs whose final bias has the sign of the summed
    labels of the margin points, Prop 2.4.2) as a function of a draw of the output-bias runs, and their number."""
    agree = (torch.sign(bias.final) == torch.sign(bias.margin_label_sum)).double().numpy()

    def statistic(draw: np.ndarray) -> dict[str, float]:
        return {"A13e": float(agree[draw].mean())}

    return statistic, len(agree)


# The claims that combine models: id -> (the models, by group of model_groups; the statistic of model_statistic;
# how the models' values combine). A claim over several models reads each one's statistic at the same draw of
# replicates (replicate i of every model is member i of its ensemble, seeded from the run's seed and i).
COMBINED = {
    "A8a": ("ce", "top", np.mean),
    "A8b": ("ce", "norm_rho", np.mean),
    "A8c": ("ce", "depth_rho", np.mean),
    "A8d": ("ce+mse", "link_rho", np.mean),
    "A9": ("ce", "proj_rho", np.mean),
    "A10a": ("imbalanced", "constants", np.max),
    "A10b": ("mse", "constants", np.max),
    "A10c": ("imbalanced", "constants_uniform", np.max),
    "A11a": ("variants", "norm_rho", np.max),
    "A11b": ("variants", "proj_rho", np.max),
}
MODEL_STATISTICS = ("top", "norm_rho", "depth_rho", "link_rho", "proj_rho", "constants", "constants_uniform")
CONVERGED = 0.01  # A13e is judged once the normalised margin moves by less than this over the last tenth


def model_groups(results: Results) -> dict[str, list[str]]:
    """The models each claim of :data:`COMBINED` reads: the CE and the MSE-reward model of every architecture, both,
    the CE CNN's normalisation variants ("none" first) and the imbalanced-label control."""
    ce, mse = model_names(results, "ce"), model_names(results, "mse_reward")
    return {
        "ce": ce,
        "mse": mse,
        "ce+mse": ce + mse,
        "variants": [ModelSpec("cnn", "ce", n).name for n in results.normalisations],
        "imbalanced": [ModelSpec("cnn", "ce", imbalanced=True).name],
    }


def models_statistic(results: Results) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """Claims A8-A11 (:data:`COMBINED`) as a function of a draw of replicate indices, and the largest number of
    replicates of a model. Every model reads the replicates of the draw that it has (the extra models may have
    fewer than the shared CNNs); a model left with none gives NaN. With every replicate in the draw it gives the
    claims' values: the functions :func:`top_level`, :func:`mean_rho`, ... of each model, combined over models."""
    groups = model_groups(results)
    per_model = {m: model_statistic(results, m) for group in groups.values() for m in group}
    n = max(k for _, k in per_model.values())

    def statistic(draw: np.ndarray) -> dict[str, float]:
        values = {}
        for model, (fn, k) in per_model.items():
            own = draw[draw < k]
            values[model] = fn(own) if len(own) else dict.fromkeys(MODEL_STATISTICS, float("nan"))
        return {
            cid: float(combine([values[m][key] for m in groups[group]]))
            for cid, (group, key, combine) in COMBINED.items()
        }

    return statistic, n


def _replicate_counts(results: Results, models: list[str]) -> str:
    """Each model's number of replicates, where they differ (the interval then leaves replicate i out of the models
    that have it)."""
    n = results.norms.groupby("model")["replicate"].nunique()
    if len({int(n[m]) for m in models}) == 1:
        return ""
    counts = ", ".join(f"{m} {int(n[m])}" for m in models)
    return (
        f"; replicates per model: {counts} (leaving replicate i out leaves it out of every model that has it, "
        "which widens the interval of the models with fewer a little)"
    )


def statistics(results: Results) -> dict[str, Measured]:
    """Every claim's value and interval by id: a prediction interval over the replicates of the trained models
    (:func:`~steerlib.measures.statistics.jackknife` of :func:`models_statistic` and
    :func:`counterexample_statistic`: each ensemble member is one replicate), over the simulation's seeds
    (:func:`theory_statistic`) and over the output-bias runs (:func:`bias_statistic`, A13e, judged only once the runs
    have converged); A12a's OOD scores are one number per set, the same for every replicate."""
    out = jackknife(*models_statistic(results))
    groups = model_groups(results)
    for cid, (group, _, _) in COMBINED.items():
        note = _replicate_counts(results, groups[group])
        out[cid] = dataclasses.replace(out[cid], uncertainty=out[cid].uncertainty + note)
    attacked = {
        "A12b": "the attacked CE CNN",
        "A12c": "the attacked CE CNN",
        "A12d": "the Gaussian-NLL CNN",
        "A12e": "the Gaussian-NLL CNN",
    }
    for cid, m in jackknife(*counterexample_statistic(results)).items():
        out[cid] = dataclasses.replace(m, uncertainty=f"{m.uncertainty}; the replicates of {attacked[cid]}")
    fg = results.fgsm.groupby("set").mean(numeric_only=True)
    a12a = float(fg.loc["adversarial", "ood_score"] - fg.loc["clean", "ood_score"])
    out["A12a"] = Measured(
        a12a,
        (a12a, a12a),
        "zero width: the OOD score is one number per set (the adversarial set "
        "pools every member's inputs), the same for every replicate",
    )
    for cid, m in jackknife(*theory_statistic(results), unit="simulation seed").items():
        out[cid] = dataclasses.replace(
            m,
            uncertainty=f"{m.uncertainty}; the nets of one simulation share its training "
            "data, so the interval covers their initialisation, not the data",
        )
    converged = float(results.theory.bias.margin_change().max())
    a13e = jackknife(*bias_statistic(results.theory.bias), unit="output-bias run")["A13e"]
    out["A13e"] = dataclasses.replace(
        a13e,
        judged=converged < CONVERGED,
        note=""
        if converged < CONVERGED
        else f"not converged: the normalised margin still moved by {converged:.1%} over the last tenth of the steps "
        "(the proposition speaks of the limit, so its verdict waits for < 1%); see the trajectory",
    )
    return {cid: m.clipped(*RANGES[cid]) if cid in RANGES else m for cid, m in out.items()}


# The claims whose statistic lives in a bounded range (rank correlations, a fraction): their intervals stop there
RANGES = {cid: (-1.0, 1.0) for cid in ("A8b", "A8c", "A8d", "A9", "A11a", "A11b", "A12d", "A12e", "A13b", "A13d")}
RANGES["A13e"] = (0.0, 1.0)


FALLS = "a clear monotone fall over the six levels, the chapter's rule for 'falls' (Fig 2.4); 0 would be no trend"
TEN_TIMES = (
    "< 0.1: the constants ten times closer to the OCS than a typical clean prediction (Fig 2.4 draws them on "
    "the OCS); 1 would be no closer than a prediction"
)
BOTH_TRENDS = (
    "> 0.5: both trends clear (|rho| > 0.5, each in its direction), as Fig A.2 shows; 0 would be no trend "
    "in one of them"
)

# Claims A8-A13 of the research note. Placeholders: {energy} (the projection ratio's), {impulse} and {blur} (the
# Gaussian-NLL counterexample's shifts), {internal} (its last hidden layer), {init_rank} (the simulation's stable
# rank at initialisation).
SPECS = (
    Spec(
        id="A8a",
        statement="Feature norms of the last layer are smaller on the most shifted inputs than on training inputs",
        statistic="mean over CE models x shifts of E_OOD/E_train ||W phi||^2 at the last layer, strongest level",
        op="<",
        threshold=1.0,
        dissertation="< 1 in later layers (Fig 2.4, col. 1)",
        why="< 1: smaller than on training inputs, as Fig 2.4's later layers show; 1 would be features the shift "
        "leaves alone",
    ),
    Spec(
        id="A8b",
        statement="Feature norms of the last layer fall as the shift grows",
        statistic="mean Spearman rho(level, last-layer norm ratio) over CE models x shifts",
        op="<",
        threshold=-0.5,
        dissertation="Fig 2.4",
        why=f"rho < -0.5: {FALLS}",
    ),
    Spec(
        id="A8c",
        statement="The fall compounds with depth",
        statistic="mean Spearman rho(layer depth, norm ratio) at the strongest level over CE models x shifts",
        op="<",
        threshold=-0.5,
        dissertation="the effect grows through the layers (Fig 2.4)",
        why="rho < -0.5: a clear fall through the layers, deeper layers shrinking more (Fig 2.4); 0 would be a "
        "shrinkage that does not compound",
    ),
    Spec(
        id="A8d",
        statement="Where the last hidden layer's features shrink, the predictions are near that layer's "
        "accumulated constants",
        statistic="mean over CE and MSE models of Spearman rho(last hidden layer's norm ratio, distance of the "
        "predictions to its constants g(sigma(b))) across sets",
        op=">",
        threshold=0.5,
        dissertation="OOD outputs are dominated by the constants (section 2.4)",
        why="rho > 0.5: a clear positive association across the evaluation sets; 0 would be predictions whose "
        "distance to the constants ignores the features' size. At the last layer the link is an identity (the "
        "constants are its bias), so it is read one layer down, through a ReLU and a layer",
    ),
    Spec(
        id="A9",
        statement="The share of the features in the span of the last layer's top singular vectors falls with shift",
        statistic="mean Spearman rho(level, projection ratio at energy {energy:g}) over CE models x shifts",
        op="<",
        threshold=-0.5,
        dissertation="Fig 2.4, col. 2 (k unstated)",
        why=f"rho < -0.5: {FALLS}",
    ),
    Spec(
        id="A10a",
        statement="CE, imbalanced labels (the OCS is not uniform): the accumulated constants are close to the OCS",
        statistic="KL(constants || OCS) / mean KL(clean predictions || OCS), imbalanced-label CNN",
        op="<",
        threshold=0.1,
        dissertation="Fig 2.4, col. 3",
        why=f"{TEN_TIMES}. Judged on imbalanced labels: with balanced ones the OCS is uniform and any near-uniform "
        "(even untrained) network passes",
    ),
    Spec(
        id="A10b",
        statement="MSE reward model: the accumulated constants are close to the OCS [5p-4, ..., 0]",
        statistic="max over archs of ||constants - OCS||^2 / mean ||clean predictions - OCS||^2",
        op="<",
        threshold=0.1,
        dissertation="Fig 2.4, col. 4",
        why=TEN_TIMES,
    ),
    Spec(
        id="A10c",
        statement="Control, imbalanced labels: the CE constants are closer to the label marginal than uniform is",
        statistic="KL(constants || OCS) / KL(uniform || OCS)",
        op="<",
        threshold=0.5,
        dissertation="not tested in the dissertation (its datasets' marginals)",
        why="< 0.5: at least twice as close to the label marginal as uniform is; 1 would be constants that stay "
        "where an untrained network's are (near uniform)",
    ),
    Spec(
        id="A11a",
        statement="A8b holds for every normalisation (none, BatchNorm, LayerNorm)",
        statistic="max over variants of mean Spearman rho(level, last-layer norm ratio)",
        op="<",
        threshold=-0.5,
        dissertation="Figs A.4, A.5",
        why=f"rho < -0.5 for every variant: A8b's threshold; {FALLS}",
    ),
    Spec(
        id="A11b",
        statement="A9 holds for every normalisation",
        statistic="max over variants of mean Spearman rho(level, projection)",
        op="<",
        threshold=-0.5,
        dissertation="Figs A.4, A.5",
        why=f"rho < -0.5 for every variant: A9's threshold; {FALLS}",
    ),
    Spec(
        id="A12a",
        statement="FGSM inputs are more OOD than clean inputs",
        statistic="mean OOD score adversarial - clean",
        op=">",
        threshold=0.05,
        dissertation="Fig A.1",
        why="> 0.05: a margin above the discriminator's noise between two sets of one distribution (0 would be as "
        "in-distribution as the clean split)",
    ),
    Spec(
        id="A12b",
        statement="FGSM inputs are farther from the OCS than clean inputs",
        statistic="mean KL to OCS adversarial - clean",
        op=">",
        threshold=0.1,
        dissertation="Fig A.1, left",
        why="> 0.1 nats: farther by a margin, Fig A.1's direction; KL to the near-uniform OCS is capped at log 10 = "
        "2.3 and clean predictions are already confident, so 0.1 (4% of the cap) is a clear but reachable "
        "margin",
    ),
    Spec(
        id="A12c",
        statement="FGSM inputs have larger feature norms than training inputs at every layer",
        statistic="min over affine layers of the replicate-mean norm ratio of adversarial inputs",
        op=">",
        threshold=1.1,
        dissertation="Fig A.1, right",
        why="> 1.1: at least 10% larger than on training inputs at every layer (Fig A.1, right), the opposite of the "
        "mechanism's < 1 for OOD inputs; clean test inputs sit within a few % of 1",
    ),
    Spec(
        id="A12d",
        statement="Gaussian NLL: {impulse} moves predictions away from the OCS while {blur} moves them towards it",
        statistic="min(rho(level, KL) for {impulse}, -rho(level, KL) for {blur})",
        op=">",
        threshold=0.5,
        dissertation="Fig A.2 (UTKFace)",
        why=BOTH_TRENDS,
    ),
    Spec(
        id="A12e",
        statement="Gaussian NLL: internal feature norms rise with {impulse} and fall with {blur}",
        statistic="min(rho(level, {internal} norm ratio) for {impulse}, -rho for {blur})",
        op=">",
        threshold=0.5,
        dissertation="Fig A.2, right",
        why=BOTH_TRENDS,
    ),
    Spec(
        id="A13a",
        statement="Lemma A.4.4: trained bias-free deep ReLU nets are nearly rank one in every hidden layer",
        statistic="mean stable rank of the hidden layers W_2..W_{{L-1}} (all depths, seeds)",
        op="<",
        threshold=2.0,
        dissertation="rank one; random init has {init_rank:.1f}",
        why="< 2: nearly rank one (1 is rank one, 2 two equal directions); the rival, weights still at their random "
        "init, has {init_rank:.1f}",
    ),
    Spec(
        id="A13b",
        statement="Lemma A.4.4: the hidden layers get closer to rank one as depth grows",
        statistic="Spearman rho(depth, mean stable rank of W_2..W_{{L-1}})",
        op="<",
        threshold=-0.5,
        dissertation="bound tightens with depth",
        why="rho < -0.5: a clear fall with depth, the lemma's bound tightening; 0 would be no depth trend",
    ),
    Spec(
        id="A13c",
        statement="Prop 2.4.1 / Thm 2.4.1: OOD inputs have much smaller features than training inputs",
        statistic="max over depths of E_OOD/E_train ||f_{{L-1}}(x)|| at the largest angle",
        op="<",
        threshold=0.5,
        dissertation="train norms >= gamma / C0; OOD norms can collapse",
        why="< 0.5: at most half the training norm at every depth, a collapse; 1 would be features the turn leaves "
        "alone",
    ),
    Spec(
        id="A13d",
        statement="Thm 2.4.1: |f(x)| tracks the rank-one projection ||A_1 f_1(x)|| on OOD inputs",
        statistic="min over depths of the mean over turned angles of Spearman rho(||A_1 f_1(x)||, |f(x)|) over the "
        "test points of one angle",
        op=">",
        threshold=0.5,
        dissertation="|f(x)| <~ C0 (eps + ...) when ||A_j f_j(x)|| <= eps",
        why="rho > 0.5: a clear monotone link within every angle at every depth (the bound is an upper bound, not an "
        "equality); pooled over angles both would fall together with the angle and correlate without the "
        "theorem; 0 would be unrelated",
    ),
    Spec(
        id="A13e",
        statement="Prop 2.4.2: the output bias takes the sign of the summed labels of the margin points",
        statistic="fraction of runs with sign(b) = sign(sum of y over the margin points) at the end of training",
        op=">=",
        threshold=0.9,
        dissertation="b ~ sum of margin-point labels",
        why=">= 0.9: nearly every run, where the proposition predicts all; a sign unrelated to the margin points "
        "agrees in about half of them",
    ),
)


def claims(results: Results) -> list[Claim]:
    """Claims A8-A13 of the research note (:data:`SPECS`), each one statistic against a threshold (see the chapter
    for why); every claim is evidence, its interval from :func:`statistics`."""
    sp, blur = results.nll_shifts
    context = {
        "energy": results.energy,
        "impulse": sp,
        "blur": blur,
        "internal": results.layers("nll")[-2],
        "init_rank": results.theory.init_stable_rank,
    }
    return make_claims(SPECS, statistics(results), context=context)


def extra(results: Results) -> dict:
    """Numbers behind the claims that the chapter quotes: per-energy A9 statistics, bias agreements (with the OCS
    and with the margin points) and each run's last-tenth margin change, the norm-distance links, k per layer."""
    k = results.projection[results.projection["energy"] == results.energy].groupby(["model", "layer"])["k"].mean()
    return {
        "a9_by_energy": {e: projection_rho(results, e) for e in results.energies},
        "bias_agreement": bias_agreement(results.theory.bias),
        "bias_margin_change": [float(v) for v in results.theory.bias.margin_change()],
        "rho_norm_vs_distance": {
            m: {t: link_rho(results, m, t) for t in ("to_hidden_constants", "to_constants", "to_ocs")}
            for m in results.sets["model"].unique()
        },
        "k_at_energy": {f"{m} {layer}": float(v) for (m, layer), v in k.items()},
    }
