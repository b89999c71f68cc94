"""Statistics of the chapter's tables (rank correlations over shift levels, layers and evaluation sets), its claims
A8-A13 and the numbers kept in metrics.json."""
from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from steerlib.chapters.extrapolation.mechanism.experiment import ModelSpec, Results
from steerlib.core.claims import Claim
from steerlib.measures.homogeneous import BiasRuns, hidden_stable_rank
from steerlib.measures.statistics import (
    bootstrap_note,
    percentile_interval,
    seed_bootstrap,
    seed_matrix,
    spearman,
    spearman_rows,
)
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


def hidden_layer(df: pd.DataFrame, model: str) -> str:
    """The model's last hidden affine layer (the one before the output layer)."""
    sub = df[df["model"] == model]
    return sub.loc[sub["depth"] == sub["depth"].max() - 1, "layer"].iloc[0]


def link_rho(results: Results, model: str, target: str = "to_hidden_constants") -> float:
    """Spearman's rho, across every evaluation set (seed means), between a layer's feature-norm ratio and the
    predictions' distance to that layer's accumulated constants: the last hidden layer for ``to_hidden_constants``
    (A8d), the last layer for ``to_constants``; or the last layer's ratio and the distance ``to_ocs``."""
    layer = hidden_layer if target == "to_hidden_constants" else last_layer
    norms = results.norms[(results.norms["model"] == model)
                          & (results.norms["layer"] == layer(results.norms, model))]
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


def top_level(results: Results, model: str) -> float:
    """The A8a statistic of one model: its last-layer norm ratio at the strongest level, seed means averaged over
    the shifts."""
    c = norm_curves(results, model)
    return float(c[c["level"] == c["level"].max()]["ratio"].mean())


N_BOOT = 1000  # bootstrap resamples behind every interval


def _shift_curves(m: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A :func:`seed_matrix` indexed by (shift, level), the clean set as ("none", 0) -> the levels (clean first),
    every shift's curve with the clean set at level 0 (as :func:`with_clean` builds them), shape (shift, level, seed),
    and the shifts' names in that order."""
    clean = m.loc[("none", 0)].to_numpy()
    shifted = m.drop(index="none", level="shift")
    shifts = shifted.index.get_level_values("shift").unique()
    levels = np.sort(shifted.index.get_level_values("level").unique())
    grid = shifted.reindex(pd.MultiIndex.from_product([shifts, levels])).to_numpy()
    grid = grid.reshape(len(shifts), len(levels), -1)
    curves = np.concatenate([np.broadcast_to(clean, (len(shifts), 1, len(clean))), grid], axis=1)
    return np.concatenate([[0], levels]), curves, list(shifts)


def model_statistic(results: Results, model: str) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """One model's statistics as a function of a draw of its seeds, and its number of seeds.

    ``statistic(draw)`` takes the model's seeds at positions ``draw`` (sorted seeds; one drawn twice counts twice),
    averages every measurement over them and returns, by name, what the claims combine over models: ``top``
    (:func:`top_level`), ``norm_rho`` (:func:`mean_rho` of :func:`norm_curves`), ``depth_rho``, ``link_rho`` (of
    the last hidden layer),
    ``proj_rho`` (:func:`mean_rho` of :func:`projection_curves`), ``constants`` and ``constants_uniform``
    (:func:`constants_ratio` against the clean predictions and against uniform). It is written in numpy so that a
    bootstrap stays fast; with every seed drawn once it gives the values of those functions."""
    norms = results.norms[results.norms["model"] == model]
    last = seed_matrix(norms[norms["layer"] == last_layer(results.norms, model)], ["shift", "level"], "ratio")
    levels, norm, _ = _shift_curves(last)
    shifted = norms[norms["shift"] != "none"]
    by_depth = seed_matrix(shifted[shifted["level"] == shifted["level"].max()], ["shift", "depth"], "ratio")
    depths = np.asarray(by_depth.index.levels[1])
    by_depth = by_depth.to_numpy().reshape(-1, len(depths), by_depth.shape[1])  # (shift, depth, seed)
    sets = results.sets[results.sets["model"] == model]
    hidden = seed_matrix(norms[norms["layer"] == hidden_layer(results.norms, model)], ["shift", "level"], "ratio")
    to_constants = seed_matrix(sets, ["shift", "level"], "to_hidden_constants").reindex(hidden.index).to_numpy()
    ratio = hidden.to_numpy()  # every evaluation set once, for A8d's link with the distance to the constants
    proj = results.projection
    proj = proj[(proj["model"] == model) & (proj["energy"] == results.energy)]
    _, proj, _ = _shift_curves(seed_matrix(proj[proj["layer"] == proj["layer"].iloc[-1]], ["shift", "level"], "ratio"))
    consts = results.constants[results.constants["model"] == model]
    consts = consts[consts["layer"] == consts["layer"].iloc[-1]].sort_values("seed")
    distance, clean, uniform = (consts[c].to_numpy() for c in ("distance", "clean_distance", "uniform_distance"))

    def statistic(draw: np.ndarray) -> dict[str, float]:
        def mean(a: np.ndarray) -> np.ndarray:
            return a[..., draw].mean(-1)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant curves: rho is undefined, and NaN says so
            return {"top": float(mean(norm)[:, -1].mean()),
                    "norm_rho": float(np.nanmean(spearman_rows(levels, mean(norm)))),
                    "depth_rho": float(np.mean(spearman_rows(depths, mean(by_depth)))),
                    "link_rho": float(spearman_rows(mean(ratio), mean(to_constants))),
                    "proj_rho": float(np.nanmean(spearman_rows(levels, mean(proj)))),
                    "constants": float(mean(distance) / mean(clean)),
                    "constants_uniform": float(mean(distance) / mean(uniform))}

    return statistic, len(distance)


def counterexample_statistic(results: Results) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """Claims A12b-A12e as a function of a draw of seeds (the FGSM table's attacked CE CNN and the Gaussian-NLL CNN
    share their seeds), and the number of seeds; see :func:`model_statistic`."""
    fg = results.fgsm
    fg_layers = results.layers("fgsm")[1:]  # every affine layer (not the input)
    fgsm = {c: seed_matrix(fg, ["set"], c) for c in ("distance", *fg_layers)}
    sets = list(fgsm["distance"].index)
    nll = results.nll
    sp, blur = results.nll_shifts
    internal = results.layers("nll")[-2]
    curves = {c: _shift_curves(seed_matrix(nll, ["shift", "level"], c)) for c in ("distance", internal)}
    if fgsm["distance"].shape[1] != curves["distance"][1].shape[-1]:
        raise ValueError("the FGSM and Gaussian-NLL tables must hold the same seeds")

    def statistic(draw: np.ndarray) -> dict[str, float]:
        fg_mean = {c: dict(zip(sets, m.to_numpy()[:, draw].mean(1))) for c, m in fgsm.items()}

        def rho(shift: str, value: str) -> float:
            levels, curve, shifts = curves[value]
            return float(spearman_rows(levels, curve[shifts.index(shift)][:, draw].mean(-1)))

        return {"A12b": float(fg_mean["distance"]["adversarial"] - fg_mean["distance"]["clean"]),
                "A12c": float(min(fg_mean[c]["adversarial"] for c in fg_layers)),
                "A12d": min(rho(sp, "distance"), -rho(blur, "distance")),
                "A12e": min(rho(sp, internal), -rho(blur, internal))}

    return statistic, fgsm["distance"].shape[1]


def theory_statistic(results: Results) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """Claims A13a-A13d as a function of a draw of the simulation's seeds (its nets of every depth), and the number
    of seeds; with every seed drawn once it gives the claims' values."""
    th, depths = results.theory, results.theory_depths
    widest = int(np.argmax(results.theory_angles))
    hidden = hidden_stable_rank(th.stable_rank, depths)  # (depths, seeds)
    within = within_angle_rho(results)  # (depths, seeds, turned angles)

    def statistic(draw: np.ndarray) -> dict[str, float]:
        idx = torch.as_tensor(draw)
        last_hidden = torch.stack([th.norm_ratio[i, idx, widest, d - 2].mean() for i, d in enumerate(depths)])
        return {"A13a": float(hidden[:, idx].mean()),
                "A13b": spearman(list(depths), hidden[:, idx].mean(1).tolist()),
                "A13c": float(last_hidden.max()), "A13d": float(within[:, draw].mean((1, 2)).min())}

    return statistic, th.stable_rank.shape[1]


def within_angle_rho(results: Results) -> np.ndarray:
    """Spearman's rho between ||A_1 f_1(x)|| and |f(x)| over the test points of one net at one angle, for every
    depth, seed and angle out of the plane (the 0 degree set left out): (depths, seeds, angles > 0). Within an angle,
    so that the shared fall of both with the angle does not make the correlation."""
    th = results.theory
    turned = [i for i, a in enumerate(results.theory_angles) if a > 0]
    return spearman_rows(th.rank_one_proj[:, :, turned].numpy(), th.abs_out[:, :, turned].numpy())


def bias_statistic(bias: BiasRuns) -> tuple[Callable[[np.ndarray], float], int]:
    """A13e (:func:`bias_agreement`'s ``margin``: the fraction of runs whose final bias has the sign of the summed
    labels of the margin points, Prop 2.4.2) as a function of a draw of the output-bias runs, and their number."""
    agree = (torch.sign(bias.final) == torch.sign(bias.margin_label_sum)).double().numpy()

    def statistic(draw: np.ndarray) -> float:
        return float(agree[draw].mean())

    return statistic, len(agree)


def _model_note(results: Results, models: list[str], n_boot: int) -> str:
    """How an interval over the seeds of ``models`` was measured (see :func:`claims`)."""
    n = results.norms.groupby("model")["seed"].nunique()
    if len(models) == 1 or all(n[m] == 1 for m in models):
        return bootstrap_note(int(max(n[m] for m in models)), n_boot, of=f" of {', '.join(models)}")
    counts = ", ".join(f"{m} {n[m]}" for m in models)
    return f"95% bootstrap over each model's seeds ({counts}; {n_boot} resamples, drawn jointly for models with as " \
           "many seeds)"


def claims(results: Results) -> list[Claim]:
    """Claims A8-A13 of the research note, each one statistic against a threshold (see the chapter for why).

    Every claim is evidence (a statement of the dissertation about trained networks, or a control of one). Each
    value has a 95% bootstrap interval: over each trained model's seeds (models trained on the same seeds are
    resampled jointly, and a claim combining models combines their resamples), over the simulation's seeds for
    A13a-d, and over the output-bias runs for A13e; A12a's OOD scores do not depend on the seed."""
    n_boot = N_BOOT
    ce = model_names(results, "ce")
    mse = model_names(results, "mse_reward")
    variants = [ModelSpec("cnn", "ce", n).name for n in results.normalisations]
    imbalanced = ModelSpec("cnn", "ce", imbalanced=True).name

    fg = results.fgsm.groupby("set").mean(numeric_only=True)
    fg_layers = results.layers("fgsm")[1:]
    nll = with_clean(results.nll).groupby(["shift", "level"]).mean(numeric_only=True).reset_index()
    internal = results.layers("nll")[-2]  # the last hidden affine layer (fc1 for the CNN)

    def nll_rho(shift, value):
        g = nll[nll["shift"] == shift]
        return spearman(g["level"], g[value])

    sp, blur = results.nll_shifts
    th = results.theory
    theory_fn, n_sim = theory_statistic(results)
    theory = theory_fn(np.arange(n_sim))
    converged = float(th.bias.margin_change().max())

    # bootstrap replicates: per model (joint draws for models with as many seeds), counterexamples, theory, bias runs
    per_model = {m: seed_bootstrap(*model_statistic(results, m), n_boot)
                 for m in dict.fromkeys(ce + mse + variants + [imbalanced])}
    reps = seed_bootstrap(*counterexample_statistic(results), n_boot)
    reps |= seed_bootstrap(theory_fn, n_sim, n_boot)
    bias_fn, n_runs = bias_statistic(th.bias)
    reps["A13e"] = seed_bootstrap(bias_fn, n_runs, n_boot)

    def over(models: list[str], key: str, combine) -> dict:
        """Interval of ``combine`` over ``models`` of their ``key`` statistic, and how it was measured."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a resample with a NaN statistic is dropped from the interval
            replicates = combine(np.stack([per_model[m][key] for m in models]), axis=0)
        return {"interval": percentile_interval(replicates), "uncertainty": _model_note(results, models, n_boot)}

    counter = bootstrap_note(results.fgsm["seed"].nunique(), n_boot, of=" of the attacked CE CNN")
    nll_how = bootstrap_note(results.nll["seed"].nunique(), n_boot, of=" of the Gaussian-NLL CNN")
    sim = bootstrap_note(n_sim, n_boot, "simulation seed")

    def measured(cid: str, how: str) -> dict:
        return {"interval": percentile_interval(reps[cid]), "uncertainty": how}

    a12a = float(fg.loc["adversarial", "ood_score"] - fg.loc["clean", "ood_score"])
    dis = "Fig 2.4"
    falls = "a clear monotone fall over the six levels, the chapter's rule for 'falls' (Fig 2.4); 0 would be no trend"
    ten_times = ("< 0.1: the constants ten times closer to the OCS than a typical clean prediction (Fig 2.4 draws them "
                 "on the OCS); 1 would be no closer than a prediction")
    return [
        Claim("A8a", "Feature norms of the last layer are smaller on the most shifted inputs than on training inputs",
              "mean over CE models x shifts of E_OOD/E_train ||W phi||^2 at the last layer, strongest level",
              float(np.mean([top_level(results, m) for m in ce])), "<", 1.0, f"< 1 in later layers ({dis}, col. 1)",
              why="< 1: smaller than on training inputs, as Fig 2.4's later layers show; 1 would be features the "
                  "shift leaves alone", **over(ce, "top", np.mean)),
        Claim("A8b", "Feature norms of the last layer fall as the shift grows",
              "mean Spearman rho(level, last-layer norm ratio) over CE models x shifts",
              float(np.mean([mean_rho(norm_curves(results, m)) for m in ce])), "<", -0.5, dis,
              why=f"rho < -0.5: {falls}", **over(ce, "norm_rho", np.mean)),
        Claim("A8c", "The fall compounds with depth", "mean Spearman rho(layer depth, norm ratio) at the strongest "
              "level over CE models x shifts", float(np.mean([depth_rho(results, m) for m in ce])), "<", -0.5,
              "the effect grows through the layers (Fig 2.4)",
              why="rho < -0.5: a clear fall through the layers, deeper layers shrinking more (Fig 2.4); 0 would be a "
                  "shrinkage that does not compound", **over(ce, "depth_rho", np.mean)),
        Claim("A8d", "Where the last hidden layer's features shrink, the predictions are near that layer's "
                     "accumulated constants",
              "mean over CE and MSE models of Spearman rho(last hidden layer's norm ratio, distance of the predictions "
              "to its constants g(sigma(b))) across sets", float(np.mean([link_rho(results, m) for m in ce + mse])),
              ">", 0.5, "OOD outputs are dominated by the constants (section 2.4)",
              why="rho > 0.5: a clear positive association across the evaluation sets; 0 would be predictions whose "
                  "distance to the constants ignores the features' size. At the last layer the link is an identity "
                  "(the constants are its bias), so it is read one layer down, through a ReLU and a layer",
              **over(ce + mse, "link_rho", np.mean)),
        Claim("A9", "The share of the features in the span of the last layer's top singular vectors falls with shift",
              f"mean Spearman rho(level, projection ratio at energy {results.energy:g}) over CE models x shifts",
              projection_rho(results), "<", -0.5, f"{dis}, col. 2 (k unstated)",
              why=f"rho < -0.5: {falls}", **over(ce, "proj_rho", np.mean)),
        Claim("A10a", "CE, imbalanced labels (the OCS is not uniform): the accumulated constants are close to the "
                      "OCS", "KL(constants || OCS) / mean KL(clean predictions || OCS), imbalanced-label CNN",
              constants_ratio(results, imbalanced), "<", 0.1, f"{dis}, col. 3",
              why=f"{ten_times}. Judged on imbalanced labels: with balanced ones the OCS is uniform and any "
                  "near-uniform (even untrained) network passes", **over([imbalanced], "constants", np.max)),
        Claim("A10b", "MSE reward model: the accumulated constants are close to the OCS [5p-4, ..., 0]",
              "max over archs of ||constants - OCS||^2 / mean ||clean predictions - OCS||^2",
              max(constants_ratio(results, m) for m in mse), "<", 0.1, f"{dis}, col. 4",
              why=ten_times, **over(mse, "constants", np.max)),
        Claim("A10c", "Control, imbalanced labels: the CE constants are closer to the label marginal than uniform is",
              "KL(constants || OCS) / KL(uniform || OCS)",
              constants_ratio(results, imbalanced, "uniform_distance"), "<", 0.5,
              "not tested in the dissertation (its datasets' marginals)",
              why="< 0.5: at least twice as close to the label marginal as uniform is; 1 would be constants that "
                  "stay where an untrained network's are (near uniform)", **over([imbalanced], "constants_uniform",
                                                                                   np.max)),
        Claim("A11a", "A8b holds for every normalisation (none, BatchNorm, LayerNorm)",
              "max over variants of mean Spearman rho(level, last-layer norm ratio)",
              max(mean_rho(norm_curves(results, m)) for m in variants), "<", -0.5, "Figs A.4, A.5",
              why=f"rho < -0.5 for every variant: A8b's threshold; {falls}", **over(variants, "norm_rho", np.max)),
        Claim("A11b", "A9 holds for every normalisation", "max over variants of mean Spearman rho(level, projection)",
              max(mean_rho(projection_curves(results, m)) for m in variants), "<", -0.5, "Figs A.4, A.5",
              why=f"rho < -0.5 for every variant: A9's threshold; {falls}", **over(variants, "proj_rho", np.max)),
        Claim("A12a", "FGSM inputs are more OOD than clean inputs", "mean OOD score adversarial - clean",
              a12a, ">", 0.05, "Fig A.1",
              why="> 0.05: a margin above the discriminator's noise between two sets of one distribution (0 would "
                  "be as in-distribution as the clean split)", interval=(a12a, a12a),
              uncertainty="zero width: the OOD score is one number per set (the adversarial set pools every "
                          "member's inputs), the same for every seed"),
        Claim("A12b", "FGSM inputs are farther from the OCS than clean inputs", "mean KL to OCS adversarial - clean",
              float(fg.loc["adversarial", "distance"] - fg.loc["clean", "distance"]), ">", 0.1, "Fig A.1, left",
              why="> 0.1 nats: farther by a margin, Fig A.1's direction; KL to the near-uniform OCS is capped at "
                  "log 10 = 2.3 and clean predictions are already confident, so 0.1 (4% of the cap) is a clear but "
                  "reachable margin", **measured("A12b", counter)),
        Claim("A12c", "FGSM inputs have larger feature norms than training inputs at every layer",
              "min over affine layers of the seed-mean norm ratio of adversarial inputs",
              float(min(fg.loc["adversarial", c] for c in fg_layers)), ">", 1.1, "Fig A.1, right",
              why="> 1.1: at least 10% larger than on training inputs at every layer (Fig A.1, right), the opposite "
                  "of the mechanism's < 1 for OOD inputs; clean test inputs sit within a few % of 1",
              **measured("A12c", counter)),
        Claim("A12d", f"Gaussian NLL: {sp} moves predictions away from the OCS while {blur} moves them towards it",
              f"min(rho(level, KL) for {sp}, -rho(level, KL) for {blur})",
              min(nll_rho(sp, "distance"), -nll_rho(blur, "distance")), ">", 0.5, "Fig A.2 (UTKFace)",
              why="> 0.5: both trends clear (|rho| > 0.5, each in its direction), as Fig A.2 shows; 0 would be no "
                  "trend in one of them", **measured("A12d", nll_how)),
        Claim("A12e", f"Gaussian NLL: internal feature norms rise with {sp} and fall with {blur}",
              f"min(rho(level, {internal} norm ratio) for {sp}, -rho for {blur})",
              min(nll_rho(sp, internal), -nll_rho(blur, internal)), ">", 0.5, "Fig A.2, right",
              why="> 0.5: both trends clear (|rho| > 0.5, each in its direction), as Fig A.2 shows; 0 would be no "
                  "trend in one of them", **measured("A12e", nll_how)),
        Claim("A13a", "Lemma A.4.4: trained bias-free deep ReLU nets are nearly rank one in every hidden layer",
              "mean stable rank of the hidden layers W_2..W_{L-1} (all depths, seeds)", theory["A13a"], "<", 2.0,
              f"rank one; random init has {th.init_stable_rank:.1f}",
              why=f"< 2: nearly rank one (1 is rank one, 2 two equal directions); the rival, weights still at their "
                  f"random init, has {th.init_stable_rank:.1f}", **measured("A13a", sim)),
        Claim("A13b", "Lemma A.4.4: the hidden layers get closer to rank one as depth grows",
              "Spearman rho(depth, mean stable rank of W_2..W_{L-1})", theory["A13b"], "<", -0.5,
              "bound tightens with depth",
              why="rho < -0.5: a clear fall with depth, the lemma's bound tightening; 0 would be no depth trend",
              **measured("A13b", sim)),
        Claim("A13c", "Prop 2.4.1 / Thm 2.4.1: OOD inputs have much smaller features than training inputs",
              "max over depths of E_OOD/E_train ||f_{L-1}(x)|| at the largest angle",
              theory["A13c"], "<", 0.5, "train norms >= gamma / C0; OOD norms can collapse",
              why="< 0.5: at most half the training norm at every depth, a collapse; 1 would be features the turn "
                  "leaves alone", **measured("A13c", sim)),
        Claim("A13d", "Thm 2.4.1: |f(x)| tracks the rank-one projection ||A_1 f_1(x)|| on OOD inputs",
              "min over depths of the mean over turned angles of Spearman rho(||A_1 f_1(x)||, |f(x)|) over the test "
              "points of one angle", theory["A13d"], ">", 0.5, "|f(x)| <~ C0 (eps + ...) when ||A_j f_j(x)|| <= eps",
              why="rho > 0.5: a clear monotone link within every angle at every depth (the bound is an upper bound, "
                  "not an equality); pooled over angles both would fall together with the angle and correlate "
                  "without the theorem; 0 would be unrelated", **measured("A13d", sim)),
        Claim("A13e", "Prop 2.4.2: the output bias takes the sign of the summed labels of the margin points",
              "fraction of runs with sign(b) = sign(sum of y over the margin points) at the end of training",
              bias_agreement(th.bias)["margin"], ">=", 0.9, "b ~ sum of margin-point labels",
              why=">= 0.9: nearly every run, where the proposition predicts all; a sign unrelated to the margin "
                  "points agrees in about half of them",
              judged=converged < 0.01,
              note="" if converged < 0.01 else
              f"not converged: the normalised margin still moved by {converged:.1%} over the last tenth of the "
              "steps (the proposition speaks of the limit, so its verdict waits for < 1%); see the trajectory",
              **measured("A13e", bootstrap_note(n_runs, n_boot, "output-bias run"))),
    ]


def extra(results: Results) -> dict:
    """Numbers behind the claims that the chapter quotes: per-energy A9 statistics, bias agreements (with the OCS
    and with the margin points) and each run's last-tenth margin change, the norm-distance links, k per layer."""
    k = results.projection[results.projection["energy"] == results.energy].groupby(["model", "layer"])["k"].mean()
    return {"a9_by_energy": {e: projection_rho(results, e) for e in results.energies},
            "bias_agreement": bias_agreement(results.theory.bias),
            "bias_margin_change": [float(v) for v in results.theory.bias.margin_change()],
            "rho_norm_vs_distance": {m: {t: link_rho(results, m, t)
                                         for t in ("to_hidden_constants", "to_constants", "to_ocs")}
                                     for m in results.sets["model"].unique()},
            "k_at_energy": {f"{m} {layer}": float(v) for (m, layer), v in k.items()}}
