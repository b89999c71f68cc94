"""The chapter's figures: Fig 2.4 and its variants, the accumulated constants, the k sensitivity, the two
counterexamples (Figs A.1, A.2) and the theory's simulation."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D

from steerlib.chapters.extrapolation.mechanism.analysis import (
    hidden_layer,
    last_layer,
    mean_rho,
    model_names,
    norm_curves,
    projection_curves,
)
from steerlib.chapters.extrapolation.mechanism.experiment import ModelSpec, Results
from steerlib.vision.shifts import with_clean


def _constants_panel(ax: plt.Axes, results: Results, model: str, title: str):
    """OCS (bars), accumulated constants of each replicate (dots), mean clean prediction (line)."""
    v = results.vectors[model]
    idx = np.arange(len(v.ocs))
    ax.bar(idx, v.ocs.numpy(), color="tab:orange", alpha=0.6, label="OCS")
    for i, c in enumerate(v.constants):
        ax.plot(idx, c.numpy(), "o", ms=4, color="tab:blue", label="accumulated constants" if i == 0 else None)
    ax.plot(idx, v.clean.numpy(), "k_", ms=10, label="mean clean prediction")
    ax.set_xticks(idx)
    ax.set_xlabel("class" + (" (10 = abstain)" if len(idx) == 11 else ""))
    ax.set_ylabel("probability" if "/ce" in model else "predicted reward")
    ax.set_title(title)


def plot_mechanism(results: Results, arch: str = "cnn") -> plt.Figure:
    """Fig 2.4 analogue for one architecture: a row per shift with (1) the feature-norm ratio by layer, a line per
    level, (2) the projection ratio at the last layer against the level; column 3 holds the accumulated constants
    next to the OCS for the CE model (top) and the MSE reward model (bottom)."""
    shifts = results.shifts
    model = ModelSpec(arch, "ce").name
    fig, axes = plt.subplots(len(shifts), 3, figsize=(13, 3.2 * len(shifts)), squeeze=False, constrained_layout=True)
    df = with_clean(results.norms[results.norms["model"] == model])
    proj = projection_curves(results, model)
    cmap = plt.get_cmap("viridis")
    for i, shift in enumerate(shifts):
        g = df[df["shift"] == shift].groupby(["level", "depth", "layer"])["ratio"].agg(["mean", "std"]).reset_index()
        for level, gl in g.groupby("level"):
            axes[i, 0].errorbar(
                gl["depth"],
                gl["mean"],
                yerr=gl["std"],
                marker="o",
                ms=3,
                capsize=2,
                color=cmap(level / 5),
                label=f"level {level}",
            )
        axes[i, 0].set_xticks(gl["depth"], gl["layer"])
        axes[i, 0].axhline(1, color="gray", lw=0.8, ls="--")
        axes[i, 0].set_xlabel("layer (input to output)")
        axes[i, 0].set_ylabel("E_OOD / E_train ||W phi||^2")
        axes[i, 0].set_title(f"{model}: {shift}")
        p = proj[proj["shift"] == shift]
        axes[i, 1].errorbar(p["level"], p["ratio"], yerr=p["std"], marker="o", capsize=2)
        axes[i, 1].set_xlabel(f"{shift} level")
        axes[i, 1].set_ylabel("||phi^T V V^T||^2 / ||phi||^2")
        axes[i, 1].set_title(f"last layer, k = {p['k'].mean():.0f} (energy {results.energy:g})")
    axes[0, 0].legend(fontsize=7)
    _constants_panel(axes[0, 2], results, model, "CE: constants vs OCS")
    _constants_panel(axes[-1, 2], results, ModelSpec(arch, "mse_reward").name, "MSE reward: constants vs OCS")
    axes[0, 2].legend(fontsize=7)
    for ax in axes[1:-1, 2]:
        ax.axis("off")
    return fig


def plot_shrinkage_and_distance(results: Results) -> plt.Figure:
    """Every evaluation set of every CE and MSE model (replicate means), relative to the clean set: (left, claim
    A8d) the last hidden layer's feature-norm ratio against the predictions' distance to that layer's accumulated
    constants; (right) the last layer's ratio against the distance to the OCS."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
    panels = (
        (hidden_layer, "to_hidden_constants", "last hidden layer", "its accumulated constants"),
        (last_layer, "to_ocs", "last layer", "the OCS"),
    )
    for model in model_names(results, "ce") + model_names(results, "mse_reward"):
        for ax, (layer, target, _, _) in zip(axes, panels):
            norms = results.norms[
                (results.norms["model"] == model) & (results.norms["layer"] == layer(results.norms, model))
            ]
            g = (
                norms.merge(results.sets, on=["model", "replicate", "shift", "level"])
                .groupby(["shift", "level"])
                .mean(numeric_only=True)
            )
            clean = g.loc[("none", 0)]
            ax.plot(g["ratio"], g[target] / clean[target], "o", ms=4, label=model)
    for ax, (_, _, where, name) in zip(axes, panels):
        ax.set_yscale("log")
        ax.axhline(1, color="gray", lw=0.8, ls="--")
        ax.set_xlabel(f"{where}: E_OOD / E_train ||W phi||^2")
        ax.set_ylabel(f"distance to {name} / clean")
    axes[0].legend(fontsize=8)
    return fig


def plot_norm_variants(results: Results) -> plt.Figure:
    """Appendix A.4 analogue: a row per normalisation, with the last-layer norm ratio and the projection ratio
    against the level (a line per shift) and the CE constants next to the OCS."""
    norms = results.normalisations
    fig, axes = plt.subplots(len(norms), 3, figsize=(12, 3 * len(norms)), squeeze=False, constrained_layout=True)
    for i, norm in enumerate(norms):
        model = ModelSpec("cnn", "ce", norm).name
        for col, (curves, label) in enumerate(
            (
                (norm_curves(results, model), "last-layer E_OOD/E_train ||W phi||^2"),
                (projection_curves(results, model), "projection ratio"),
            )
        ):
            for shift, g in curves.groupby("shift"):
                axes[i, col].plot(g["level"], g["ratio"], marker="o", label=shift)
            axes[i, col].set_xlabel("shift level")
            axes[i, col].set_ylabel(label)
            axes[i, col].set_title(model)
        _constants_panel(axes[i, 2], results, model, f"{model}: constants vs OCS")
    axes[0, 0].legend(fontsize=8)
    return fig


def plot_constants_by_layer(results: Results) -> plt.Figure:
    """Distance of g_{k+1}(sigma(b_k)) to the OCS for every layer k, relative to the clean predictions' distance,
    and the imbalanced-label control: its OCS, constants and mean clean prediction."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), constrained_layout=True)
    df = results.constants.assign(rel=lambda d: d["distance"] / d["clean_distance"])
    for model, g in df.groupby("model", sort=False):
        m = g.groupby("layer", sort=False)["rel"].mean()
        axes[0].plot(range(len(m)), m.values, marker="o", label=model)
    axes[0].set_yscale("log")
    axes[0].axhline(0.1, color="gray", ls="--", lw=0.8)
    axes[0].set_xticks(range(4), ["1st", "2nd", "3rd", "4th"])
    axes[0].set_xlabel("layer k whose linear term is zeroed (affine layers, input to output)")
    axes[0].set_ylabel("d(constants, OCS) / d(clean pred., OCS)")
    axes[0].legend(fontsize=7)
    _constants_panel(axes[1], results, ModelSpec("cnn", "ce", imbalanced=True).name, "imbalanced labels: CE")
    axes[1].legend(fontsize=7)
    return fig


def plot_k_sensitivity(results: Results, shift: str | None = None) -> plt.Figure:
    """The projection ratio's dependence on k: (left) ratio against the level for each energy, last layer of the CNN;
    (right) the A9 statistic (mean rho over shifts) against the energy, for every layer."""
    model = ModelSpec("cnn", "ce").name
    shift = shift or results.shifts[-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
    for energy in results.energies:
        c = projection_curves(results, model, energy)
        c = c[c["shift"] == shift]
        axes[0].plot(c["level"], c["ratio"], marker="o", label=f"{energy:g} (k={c['k'].mean():.0f})")
    axes[0].set_xlabel(f"{shift} level")
    axes[0].set_ylabel("projection ratio, last layer")
    axes[0].legend(title="energy", fontsize=7)
    layers = list(dict.fromkeys(results.projection.loc[results.projection["model"] == model, "layer"]))
    for layer in layers:
        rhos = [mean_rho(projection_curves(results, model, e, layer)) for e in results.energies]
        axes[1].plot(results.energies, rhos, marker="o", label=layer)
    axes[1].axhline(-0.5, color="gray", ls="--", lw=0.8)
    axes[1].set_xlabel("energy kept by the top-k singular vectors")
    axes[1].set_ylabel("mean rho(level, projection ratio)")
    axes[1].legend(fontsize=8)
    return fig


def plot_fgsm(results: Results) -> plt.Figure:
    """Fig A.1 analogue: OOD score vs KL to the OCS per set (left); feature-norm ratio by layer (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
    df = results.fgsm
    layers = results.layers("fgsm")
    styles = {"clean": ("r", "*"), "random sign": ("tab:gray", "s"), "adversarial": ("tab:blue", "o")}
    for kind, g in df.groupby("set", sort=False):
        color, marker = styles[kind]
        axes[0].errorbar(
            g["ood_score"].mean(),
            g["distance"].mean(),
            xerr=g["ood_score"].std(),
            yerr=g["distance"].std(),
            color=color,
            marker=marker,
            ms=10,
            capsize=2,
            label=kind,
        )
        axes[1].errorbar(
            range(len(layers)),
            g[layers].mean(),
            yerr=g[layers].std(),
            color=color,
            marker=marker,
            capsize=2,
            label=kind,
        )
    axes[0].set_xlabel("OOD score")
    axes[0].set_ylabel("KL(prediction || label marginal)")
    axes[0].legend(fontsize=8)
    axes[1].axhline(1, color="gray", lw=0.8, ls="--")
    axes[1].set_xticks(range(len(layers)), layers)
    axes[1].set_xlabel("layer (input to output)")
    axes[1].set_ylabel("E_set / E_train ||W phi||^2")
    return fig


def plot_nll(results: Results) -> plt.Figure:
    """Fig A.2 analogue: KL to the OCS against the OOD score, the predicted mean, and an internal layer's norm."""
    df = with_clean(results.nll)
    internal = results.layers("nll")[-2]
    g = df.groupby(["shift", "level"]).agg(["mean", "std"]).reset_index()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), constrained_layout=True)
    for shift, gs in g.groupby("shift"):
        axes[0].errorbar(
            gs[("ood_score", "mean")],
            gs[("distance", "mean")],
            yerr=gs[("distance", "std")],
            marker="o",
            capsize=2,
            label=shift,
        )
        axes[1].errorbar(gs["level"], gs[("mu", "mean")], yerr=gs[("mu", "std")], marker="o", capsize=2, label=shift)
        axes[2].errorbar(
            gs["level"], gs[(internal, "mean")], yerr=gs[(internal, "std")], marker="o", capsize=2, label=shift
        )
    clean = g[g["level"] == 0].iloc[0]
    axes[0].plot(clean[("ood_score", "mean")], clean[("distance", "mean")], "r*", ms=14, label="held-out train")
    axes[0].set_xlabel("OOD score")
    axes[0].set_ylabel("KL(N(mu, sigma^2) || OCS)")
    axes[1].axhline(results.nll_ocs[0], color="tab:orange", ls="--", label="OCS mean")
    axes[1].axhline(
        float(results.nll_constants[:, 0].mean()), color="tab:blue", ls=":", label="accumulated constants' mean"
    )
    axes[1].set_xlabel("shift level")
    axes[1].set_ylabel("mean predicted mu")
    axes[2].axhline(1, color="gray", lw=0.8, ls="--")
    axes[2].set_xlabel("shift level")
    axes[2].set_ylabel(f"{internal}: E_OOD / E_train ||W phi||^2")
    for ax in axes:
        ax.legend(fontsize=8)
    return fig


def plot_stable_rank(results: Results) -> plt.Figure:
    """Lemma A.4.4: stable rank of each trained layer W_1..W_L, a line per depth, against the random init."""
    th = results.theory
    fig, ax = plt.subplots(figsize=(6, 3.4), constrained_layout=True)
    for i, d in enumerate(results.theory_depths):
        sr = th.stable_rank[i, :, :d].mean(0)
        ax.plot(range(1, d + 1), sr.numpy(), marker="o", label=f"depth {d}")
    ax.axhline(th.init_stable_rank, color="gray", ls="--", label="random init (hidden layer)")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("layer i (W_1 input ... W_L output)")
    ax.set_ylabel("stable rank ||W||_F^2 / ||W||_2^2")
    ax.legend(fontsize=7)
    return fig


def plot_feature_collapse(results: Results) -> plt.Figure:
    """Prop 2.4.1 and Thm 2.4.1: (left) feature-norm ratio of the last hidden layer against the angle out of the
    data plane, a line per depth; (right) |f(x)| against ||A_1 f_1(x)|| on OOD inputs of the deepest net."""
    th, depths, angles = results.theory, results.theory_depths, results.theory_angles
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
    for i, d in enumerate(depths):
        axes[0].plot(angles, th.norm_ratio[i, :, :, d - 2].mean(0).numpy(), marker="o", label=f"depth {d}")
    axes[0].set_xlabel("degrees out of the training plane")
    axes[0].set_ylabel("E_OOD / E_train ||f_{L-1}(x)||")
    axes[0].legend(fontsize=7)
    proj, out = th.rank_one_proj[-1], th.abs_out[-1]  # (simulation seeds, angles, N)
    colors = np.broadcast_to(np.asarray(angles)[None, :, None], proj.shape)
    sc = axes[1].scatter(proj.flatten(), out.flatten(), c=colors.flatten(), s=4, cmap="viridis")
    fig.colorbar(sc, ax=axes[1], label="degrees")
    axes[1].set_xlabel("||A_1 f_1(x)|| (rank-one projection)")
    axes[1].set_ylabel("|f(x)|")
    axes[1].set_title(f"depth {depths[-1]}")
    return fig


def plot_bias(results: Results) -> plt.Figure:
    """Prop 2.4.2: (left) the output bias over training for each run, solid where its final sign matches the summed
    labels of its margin points, coloured by the training label fraction; (right) each run's normalised margin
    min y f(W; x) / prod ||W_i||_F over training, whose flattening says the direction has converged."""
    b = results.theory.bias
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), constrained_layout=True)
    agree = torch.sign(b.final) == torch.sign(b.margin_label_sum)
    for p, trace, ok, margin in zip(b.p_pos, b.trace, agree, b.margin_trace):
        color = "tab:red" if p > 0.5 else "tab:blue"
        axes[0].plot(b.steps.numpy(), trace.numpy(), color=color, lw=1, ls="-" if ok else ":")
        axes[1].plot(b.checkpoints.numpy(), margin.numpy(), color=color, lw=1, ls="-" if ok else ":")
    handles = [Line2D([], [], color="tab:red"), Line2D([], [], color="tab:blue"), Line2D([], [], color="k", ls=":")]
    axes[0].legend(
        handles, ["more +1 labels (OCS > 0)", "more -1 labels (OCS < 0)", "sign(b) != sign(margin labels)"], fontsize=8
    )
    axes[0].axhline(0, color="k", lw=0.8)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("gradient step")
    axes[0].set_ylabel("output bias b")
    axes[1].axvline(0.9 * float(b.checkpoints[-1]), color="gray", ls="--", lw=0.8)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("gradient step (dashed: the last tenth starts)")
    axes[1].set_ylabel("normalised margin")
    return fig
