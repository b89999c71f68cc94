"""Chapter "Why predictions revert" (dissertation section 2.4, appendices A.1, A.3, A.4; Figs 2.4, A.1-A.5).

The dissertation's mechanism: OOD inputs give representations that overlap less with the (low-rank) weight
matrices, so ||W_i phi_i(x)|| shrinks layer after layer, and the output falls back on the *accumulated constants*
g_{k+1}(sigma(b_k)), which approximate the OCS. This module measures each step on the chapter's trained models
(:mod:`steerlib.representations`), reproduces the two counterexamples of appendix A.1 (iterated FGSM; a Gaussian-NLL
regressor under impulse noise vs blur) and runs the theory's simulation (:mod:`steerlib.homogeneous`).

Every model is trained by :func:`steerlib.train.fit`; with the same training configuration and seeds as the
reversion chapter, the shared CNNs come from the run cache.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import torch

from steerlib.chapters.extrapolation.reversion import PROFILES as REVERSION
from steerlib.core.chapter import Run
from steerlib.core.checks import check_choices, check_range
from steerlib.core.claims import Claim
from steerlib.measures.divergences import kl_categorical
from steerlib.measures.homogeneous import SimConfig, simulate
from steerlib.measures.ood import ood_score
from steerlib.measures.statistics import spearman
from steerlib.vision import representations as rep
from steerlib.vision.adversarial import iterated_fgsm, random_sign_like
from steerlib.vision.data import DATASETS, ImageData, load_dataset
from steerlib.vision.ensemble import Ensemble
from steerlib.vision.losses import make_loss
from steerlib.vision.models import ARCHS, NORMS
from steerlib.vision.shifts import SHIFTS, EvalSet, evaluation_sets
from steerlib.vision.train import TrainConfig, fit


@dataclasses.dataclass(frozen=True)
class Settings:
    dataset: str = "digits"
    shifts: tuple[str, ...] = ("rotate", "noise")  # Fig 2.4: rotated MNIST, noisy CIFAR-10
    archs: tuple[str, ...] = ("cnn", "mlp")  # Fig 2.4 for the CNN and a second architecture
    norms: tuple[str, ...] = NORMS  # appendix A.4/A.5 variants of the CNN (cross-entropy)
    width: int = 32
    n_seeds: int = 5  # the CNNs shared with the reversion chapter
    extra_seeds: int = 3  # the MLPs, the normalisation variants and the imbalanced-label control
    train: TrainConfig = REVERSION["cpu"].train  # as the reversion chapter, so its CNNs are reused from the cache
    energy: float = 0.95  # projection ratio: k = smallest k keeping this fraction of ||W||_F (the code's rule)
    energies: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)  # sensitivity of the projection ratio to k
    rarest: float = 0.1  # control for A10: class c keeps rarest^(c/9) of its training images
    fgsm_eps: float = 0.03  # per round, in input units: the code's 0.1 in MNIST-normalised units is 0.031
    fgsm_steps: int = 20
    nll_shifts: tuple[str, ...] = ("saltpepper", "blur")  # appendix A.1: impulse noise vs Gaussian blur
    ood_splits: int = 10
    theory: SimConfig = SimConfig()

    def __post_init__(self):
        check_choices("dataset", (self.dataset,), DATASETS)
        check_choices("shifts", self.shifts + self.nll_shifts, SHIFTS)
        check_choices("archs", self.archs, ARCHS)
        check_choices("norms", self.norms, NORMS)
        check_range("n_seeds", self.n_seeds, low=1)
        check_range("extra_seeds", self.extra_seeds, low=1)
        check_range("energy", self.energy, 0.0, 1.0)
        check_range("rarest", self.rarest, 0.0, 1.0)
        if self.archs[0] != "cnn" or self.norms[0] != "none":
            raise ValueError("the first arch must be 'cnn' and the first norm 'none' (the chapter's main model)")


PROFILES = {
    "smoke": Settings(archs=("cnn",), norms=("none", "batch"), n_seeds=2, extra_seeds=1,
                      train=REVERSION["smoke"].train, energies=(0.9, 0.95), fgsm_steps=5, ood_splits=2,
                      theory=SimConfig(depths=(3, 6), width=16, n_train=100, n_test=100, n_seeds=1, steps=400,
                                       angles=(0, 45, 90))),
    "cpu": Settings(),
    "paper": Settings(dataset="mnist", width=64, train=REVERSION["paper"].train,
                      theory=SimConfig(width=64, n_seeds=5, steps=50000, lr=0.1, weight_decay=1e-3)),
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    arch: str
    loss: str
    norm: str = "none"
    imbalanced: bool = False

    @property
    def name(self) -> str:
        arch = self.arch if self.norm == "none" else f"{self.arch}+{self.norm}norm"
        return f"{arch}/{self.loss}" + (" (imbalanced)" if self.imbalanced else "")


def model_specs(settings: Settings) -> list[ModelSpec]:
    """CE and MSE-reward models per architecture, the CE normalisation variants, and the imbalanced-label control."""
    specs = [ModelSpec(arch, loss) for arch in settings.archs for loss in ("ce", "mse_reward")]
    specs += [ModelSpec("cnn", "ce", norm) for norm in settings.norms if norm != "none"]
    return specs + [ModelSpec("cnn", "ce", imbalanced=True)]


def imbalanced(data: ImageData, rarest: float, seed: int = 0) -> ImageData:
    """The training split with class c keeping a fraction rarest^(c/(K-1)) of its images (test split unchanged)."""
    g = np.random.default_rng(seed)
    y = data.y_train.numpy()
    keep = np.concatenate([g.permutation(np.flatnonzero(y == c))[:round(rarest ** (c / (data.num_classes - 1))
                                                                        * (y == c).sum())]
                           for c in range(data.num_classes)])
    keep.sort()
    return dataclasses.replace(data, name=f"{data.name}-imbalanced{rarest:g}", x_train=data.x_train[keep],
                               y_train=data.y_train[keep])


@dataclasses.dataclass
class Results:
    """Long tables (one row per model x seed x set x layer [x energy]) plus the experiments' vectors."""

    norms: pd.DataFrame  # feature-norm ratio per layer: model, seed, shift, level, layer, depth, ratio
    projection: pd.DataFrame  # projection ratio: model, seed, shift, level, layer, energy, k, ratio (mean, std)
    constants: pd.DataFrame  # accumulated constants per layer k: model, loss, seed, layer, distance, clean_distance
    sets: pd.DataFrame  # per model x seed x set: mean distance of the predictions to_ocs and to_constants
    vectors: dict  # model -> {"ocs", "constants" (E, out), "mean": {(shift, level): (out,)}}: predicted space
    fgsm: pd.DataFrame  # per seed x {clean, random sign, adversarial}: ood_score, distance, accuracy, layer ratios
    nll: pd.DataFrame  # Gaussian NLL per shift x level x seed: ood_score, distance, mu, sigma, layer ratios
    nll_ocs: tuple[float, float]  # (mu*, sigma*^2) of the Gaussian-NLL model
    nll_constants: torch.Tensor  # (E, 2): its accumulated constants at the last layer as (mu, sigma^2)
    theory: dict  # :func:`steerlib.homogeneous.simulate`
    settings: Settings

    def layers(self, table: str = "fgsm") -> list[str]:
        """The layer columns (input, then affine layers to the output) of the ``fgsm`` or ``nll`` table."""
        df = getattr(self, table)
        return list(df.columns[df.columns.get_loc("input"):])


def _set_ood_score(run: Run, data: ImageData, s: EvalSet, splits: int) -> float:
    """OOD score of an evaluation set, cached under the reversion chapter's key (same sets, same scores)."""
    key = {"data": data.name, "shift": s.shift, "severity": s.severity, "splits": splits, "seed": run.seed}
    return run.cache.cached("ood_score", key, lambda: ood_score(data.x_train, s.x, splits, seed=run.seed))


def _train(spec: ModelSpec, data: ImageData, settings: Settings, run: Run) -> tuple[Ensemble, ImageData]:
    """Fit (or load from the cache) one model's ensemble; returns it with the training data it saw."""
    shared = spec.arch == "cnn" and spec.norm == "none" and not spec.imbalanced
    seeds = tuple(range(run.seed, run.seed + (settings.n_seeds if shared else settings.extra_seeds)))
    if spec.imbalanced:
        data = imbalanced(data, settings.rarest, seed=run.seed)
    loss = make_loss(spec.loss, data.num_classes)
    return fit(data, loss, spec.arch, seeds, settings.train, run.device, run.cache, settings.width, spec.norm), data


@torch.no_grad()
def analyse(spec: ModelSpec, ensemble: Ensemble, data: ImageData, sets: list[EvalSet], energies: tuple[float, ...],
            all_layers: bool) -> tuple[dict[str, list[dict]], dict]:
    """Per member: accumulated constants at every layer; then per evaluation set the feature-norm ratios, projection
    ratios (every energy; every layer if ``all_layers``, else the last) and the distances of the predictions to the
    OCS and to the last layer's constants. E_train is over the model's own training inputs."""
    loss = make_loss(spec.loss, data.num_classes)
    ocs = loss.ocs(data.y_train)
    rows: dict[str, list[dict]] = {"norms": [], "projection": [], "constants": [], "sets": []}
    constants, means = [], {}
    for e, seed in enumerate(ensemble.seeds):
        model = ensemble.member(e)
        layers = rep.affine_layers(model)
        consts = {layer.name: rep.accumulated_constants(model, layer.name, data.input_shape) for layer in layers}
        constants.append(loss.predict(consts[layers[-1].name]))
        train_norms = rep.feature_norms(model, data.x_train)
        for s in sets:
            tags = {"model": spec.name, "seed": seed, "shift": s.shift, "level": s.level}
            out, phis = rep.capture(model, s.x)
            means.setdefault((s.shift, s.level), []).append(loss.predict(out).mean(0))
            rows["sets"].append({**tags, "to_ocs": float(loss.distance(out, ocs).mean()),
                                 "to_constants": float(loss.distance(out, constants[-1]).mean())})
            ratios = rep.feature_norm_ratio(rep.feature_norms(model, s.x, phis), train_norms)
            rows["norms"] += [{**tags, "layer": name, "depth": i, "ratio": r}
                              for i, (name, r) in enumerate(ratios.items())]
            for layer in layers if all_layers else layers[-1:]:
                sv, profile = rep.projection_profile(layer, phis[layer.name])
                for energy in energies:
                    k = rep.spectral_rank(sv, energy)
                    rows["projection"].append({**tags, "layer": layer.name, "energy": energy, "k": k,
                                               "ratio": float(profile[:, k - 1].mean()),
                                               "std": float(profile[:, k - 1].std())})
        clean = rows["sets"][-len(sets)]["to_ocs"]  # the clean set comes first
        uniform = float(kl_categorical(torch.full_like(ocs, 1 / len(ocs)), ocs)) if spec.loss == "ce" else np.nan
        rows["constants"] += [{"model": spec.name, "loss": spec.loss, "seed": seed, "layer": name,
                               "distance": float(loss.distance(c[None], ocs)), "clean_distance": clean,
                               "uniform_distance": uniform} for name, c in consts.items()]
    vectors = {"ocs": ocs, "constants": torch.stack(constants),
               "mean": {key: torch.stack(v).mean(0) for key, v in means.items()}}
    return rows, vectors


def _mixed(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n inputs drawn without replacement from the sets of all members, x: (E, N, ...): one OOD score for all."""
    pool = x.flatten(0, 1)
    return pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:n]]


def fgsm_experiment(ensemble: Ensemble, data: ImageData, settings: Settings, run: Run) -> pd.DataFrame:
    """Appendix A.1: clean test inputs, iterated-FGSM inputs and a random-sign control of the same size per entry."""
    loss = make_loss("ce", data.num_classes)
    ocs = loss.ocs(data.y_train)
    adv = iterated_fgsm(ensemble, loss, data.x_test, data.y_test, settings.fgsm_eps, settings.fgsm_steps,
                        data.value_range)
    rand = random_sign_like(data.x_test, adv, data.value_range, seed=run.seed)
    scores = {"clean": _set_ood_score(run, data, EvalSet("none", 0, 0.0, data.x_test, data.y_test),
                                      settings.ood_splits),
              **{kind: ood_score(data.x_train, _mixed(x, len(data.x_test), run.seed), settings.ood_splits,
                                 seed=run.seed) for kind, x in (("random sign", rand), ("adversarial", adv))}}
    rows = []
    for e, seed in enumerate(ensemble.seeds):
        model = ensemble.member(e)
        train_norms = rep.feature_norms(model, data.x_train)
        for kind, x in (("clean", data.x_test), ("random sign", rand[e]), ("adversarial", adv[e])):
            out, phis = rep.capture(model, x)
            rows.append({"set": kind, "seed": seed, "ood_score": scores[kind],
                         "distance": float(loss.distance(out, ocs).mean()),
                         "accuracy": float((out.argmax(-1) == data.y_test).float().mean()),
                         **rep.feature_norm_ratio(rep.feature_norms(model, x, phis), train_norms)})
    return pd.DataFrame(rows)


def nll_experiment(data: ImageData, settings: Settings, run: Run) -> tuple[pd.DataFrame, torch.Tensor]:
    """Appendix A.1: the Gaussian-NLL CNN under impulse (salt-and-pepper) noise and blur. Also returns each member's
    accumulated constants at the last layer as a predicted (mu, sigma^2)."""
    loss = make_loss("gaussian_nll", data.num_classes)
    seeds = tuple(range(run.seed, run.seed + settings.n_seeds))
    ensemble = fit(data, loss, "cnn", seeds, settings.train, run.device, run.cache, settings.width)
    ocs = loss.ocs(data.y_train)
    sets = evaluation_sets(data.x_test, data.y_test, settings.nll_shifts, data.value_range, seed=run.seed)
    members = [ensemble.member(e) for e in range(len(seeds))]
    train_norms = [rep.feature_norms(m, data.x_train) for m in members]
    rows = []
    for s in sets:
        score = _set_ood_score(run, data, s, settings.ood_splits)
        for e, seed in enumerate(seeds):
            out, phis = rep.capture(members[e], s.x)
            pred = loss.predict(out)
            rows.append({"shift": s.shift, "level": s.level, "severity": s.severity, "seed": seed, "ood_score": score,
                         "distance": float(loss.distance(out, ocs).mean()), "mu": float(pred[:, 0].mean()),
                         "sigma": float(pred[:, 1].sqrt().mean()),
                         **rep.feature_norm_ratio(rep.feature_norms(members[e], s.x, phis), train_norms[e])})
    last = rep.affine_layers(members[0])[-1].name
    constants = torch.stack([loss.predict(rep.accumulated_constants(m, last, data.input_shape)) for m in members])
    return pd.DataFrame(rows), constants


def run(settings: Settings, run: Run) -> Results:
    """Train (or load) every model, measure its representations, run both counterexamples and the simulation."""
    data = load_dataset(settings.dataset)
    sets = evaluation_sets(data.x_test, data.y_test, settings.shifts, data.value_range, seed=run.seed)
    # Plain strides: the clean digits have a size-1 channel dim with stride 1, which vmapped GroupNorm rejects.
    sets = [dataclasses.replace(s, x=s.x.clone(memory_format=torch.contiguous_format)) for s in sets]
    tables: dict[str, list[dict]] = {"norms": [], "projection": [], "constants": [], "sets": []}
    vectors, main = {}, None
    for spec in model_specs(settings):
        ensemble, train_data = _train(spec, data, settings, run)
        if spec == ModelSpec("cnn", "ce"):
            main = ensemble
        rows, vectors[spec.name] = analyse(spec, ensemble, train_data, sets, settings.energies,
                                           all_layers=spec == ModelSpec("cnn", "ce"))
        for name in tables:
            tables[name] += rows[name]
    theory = run.cache.cached("homogeneous", {"sim": settings.theory, "seed": run.seed},
                              lambda: simulate(settings.theory, seed=run.seed))
    nll, nll_constants = nll_experiment(data, settings, run)
    return Results(*(pd.DataFrame(tables[name]) for name in ("norms", "projection", "constants", "sets")), vectors,
                   fgsm_experiment(main, data, settings, run), nll,
                   make_loss("gaussian_nll", data.num_classes).ocs(data.y_train), nll_constants, theory, settings)


# ----------------------------------------------------------------------------------------------- statistics


def _with_clean(df: pd.DataFrame) -> pd.DataFrame:
    """Copy the clean rows (shift "none", level 0) into every shift, so each shift's curve starts at level 0."""
    clean = df[df["shift"] == "none"]
    shifts = [s for s in df["shift"].unique() if s != "none"]
    return pd.concat([df[df["shift"] != "none"]] + [clean.assign(shift=s) for s in shifts], ignore_index=True)


def last_layer(df: pd.DataFrame, model: str) -> str:
    """The model's last affine layer (the output's linear part)."""
    sub = df[df["model"] == model]
    return sub.loc[sub["depth"].idxmax(), "layer"]


def norm_curves(results: Results, model: str, layer: str | None = None) -> pd.DataFrame:
    """Seed-mean feature-norm ratio per (shift, level) at ``layer`` (default: the last layer)."""
    df = results.norms[results.norms["model"] == model]
    df = _with_clean(df[df["layer"] == (layer or last_layer(results.norms, model))])
    return df.groupby(["shift", "level"])["ratio"].mean().reset_index()


def projection_curves(results: Results, model: str, energy: float | None = None,
                      layer: str | None = None) -> pd.DataFrame:
    """Seed means of the projection ratio (and of its standard deviation over inputs) per (shift, level), at
    ``layer`` (default: the model's last) and ``energy``."""
    df = results.projection
    df = df[(df["model"] == model) & (df["energy"] == (energy or results.settings.energy))]
    df = _with_clean(df[df["layer"] == (layer or df["layer"].iloc[-1])])
    return df.groupby(["shift", "level"])[["ratio", "std", "k"]].mean().reset_index()


def _mean_rho(curves: pd.DataFrame, value: str = "ratio") -> float:
    """Mean over shifts of Spearman's rho between the level and ``value`` (NaN where every curve is constant, e.g.
    a projection ratio that is 1 because k reached the full rank)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant curves: rho is undefined, and NaN says so
        return float(np.nanmean([spearman(g["level"], g[value]) for _, g in curves.groupby("shift")]))


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


def bias_agreement(theory: dict) -> dict[str, float]:
    """Fractions of output-bias runs whose bias has the sign of the OCS at the end (``ocs``) and after 1% of training
    (``ocs_early``), and whose final bias has the sign of the margin points' label sum (``margin``)."""
    b = theory["bias"]
    sign = torch.sign(b["final"])
    return {"ocs": float((sign == torch.sign(b["ocs"])).float().mean()),
            "margin": float((sign == torch.sign(b["margin_label_sum"])).float().mean()),
            "ocs_early": float((torch.sign(b["trace"][:, max(1, b["trace"].shape[1] // 100)]) == torch.sign(b["ocs"]))
                               .float().mean())}


def claims(results: Results) -> list[Claim]:
    """Claims A8-A13 of the research note, each one statistic against a threshold (see the chapter for why)."""
    s = results.settings
    ce = [ModelSpec(a, "ce").name for a in s.archs]
    linked = ce + [ModelSpec(a, "mse_reward").name for a in s.archs]
    variants = [ModelSpec("cnn", "ce", n).name for n in s.norms]

    def top_level(model):
        c = norm_curves(results, model)
        return float(c[c["level"] == c["level"].max()]["ratio"].mean())

    fg = results.fgsm.groupby("set").mean(numeric_only=True)
    fg_last = results.layers("fgsm")[-1]
    nll = _with_clean(results.nll).groupby(["shift", "level"]).mean(numeric_only=True).reset_index()
    internal = results.layers("nll")[-2]  # the last hidden affine layer (fc1 for the CNN)

    def nll_rho(shift, value):
        g = nll[nll["shift"] == shift]
        return spearman(g["level"], g[value])

    sp, blur = s.nll_shifts
    th = results.theory
    hidden = th["stable_rank"][:, :, 1:-1]  # drop W_1 (d -> m) and W_L (m -> 1)
    per_depth = hidden.nanmean(dim=(1, 2))
    widest = int(np.argmax(s.theory.angles))
    last_hidden = torch.stack([th["norm_ratio"][i, :, widest, d - 2].mean() for i, d in enumerate(s.theory.depths)])
    proj_rho = [spearman(th["rank_one_proj"][i].flatten(), th["abs_out"][i].flatten())
                for i in range(len(s.theory.depths))]
    dis = "Fig 2.4"
    return [
        Claim("A8a", "Feature norms of the last layer are smaller on the most shifted inputs than on training inputs",
              "mean over CE models x shifts of E_OOD/E_train ||W phi||^2 at the last layer, strongest level",
              float(np.mean([top_level(m) for m in ce])), "<", 1.0, f"< 1 in later layers ({dis}, col. 1)"),
        Claim("A8b", "Feature norms of the last layer fall as the shift grows",
              "mean Spearman rho(level, last-layer norm ratio) over CE models x shifts",
              float(np.mean([_mean_rho(norm_curves(results, m)) for m in ce])), "<", -0.5, dis),
        Claim("A8c", "The fall compounds with depth", "mean Spearman rho(layer depth, norm ratio) at the strongest "
              "level over CE models x shifts", float(np.mean([depth_rho(results, m) for m in ce])), "<", -0.5,
              "the effect grows through the layers (Fig 2.4)"),
        Claim("A8d", "Where the last layer's features shrink, the predictions are near the accumulated constants",
              "mean over CE and MSE models of Spearman rho(last-layer norm ratio, distance to the constants) across "
              "sets", float(np.mean([link_rho(results, m) for m in linked])), ">", 0.5,
              "OOD outputs are dominated by the constants (section 2.4)"),
        Claim("A9", "The share of the features in the span of the last layer's top singular vectors falls with shift",
              f"mean Spearman rho(level, projection ratio at energy {s.energy:g}) over CE models x shifts",
              float(np.mean([_mean_rho(projection_curves(results, m)) for m in ce])), "<", -0.5,
              f"{dis}, col. 2 (k unstated)"),
        Claim("A10a", "CE, balanced labels (the OCS is uniform): the accumulated constants are close to the OCS",
              "max over archs of KL(constants || OCS) / mean KL(clean predictions || OCS)",
              max(constants_ratio(results, m) for m in ce), "<", 0.1, f"{dis}, col. 3"),
        Claim("A10b", "MSE reward model: the accumulated constants are close to the OCS [5p-4, ..., 0]",
              "max over archs of ||constants - OCS||^2 / mean ||clean predictions - OCS||^2",
              max(constants_ratio(results, ModelSpec(a, "mse_reward").name) for a in s.archs), "<", 0.1,
              f"{dis}, col. 4"),
        Claim("A10c", "Control, imbalanced labels: the CE constants are closer to the label marginal than uniform is",
              "KL(constants || OCS) / KL(uniform || OCS)",
              constants_ratio(results, ModelSpec("cnn", "ce", imbalanced=True).name, "uniform_distance"), "<", 0.5,
              "not tested in the dissertation (its datasets' marginals)"),
        Claim("A11a", "A8b holds for every normalisation (none, BatchNorm, LayerNorm)",
              "max over variants of mean Spearman rho(level, last-layer norm ratio)",
              max(_mean_rho(norm_curves(results, m)) for m in variants), "<", -0.5, "Figs A.4, A.5"),
        Claim("A11b", "A9 holds for every normalisation", "max over variants of mean Spearman rho(level, projection)",
              max(_mean_rho(projection_curves(results, m)) for m in variants), "<", -0.5, "Figs A.4, A.5"),
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
              f"rank one; random init has {th['init_stable_rank']:.1f}"),
        Claim("A13b", "Lemma A.4.4: the hidden layers get closer to rank one as depth grows",
              "Spearman rho(depth, mean hidden stable rank)",
              spearman(list(s.theory.depths), per_depth.tolist()), "<", -0.5, "bound tightens with depth"),
        Claim("A13c", "Prop 2.4.1 / Thm 2.4.1: OOD inputs have much smaller features than training inputs",
              "max over depths of E_OOD/E_train ||f_{L-1}(x)|| at the largest angle",
              float(last_hidden.max()), "<", 0.5, "train norms >= gamma / C0; OOD norms can collapse"),
        Claim("A13d", "Thm 2.4.1: |f(x)| tracks the rank-one projection ||A_1 f_1(x)|| on OOD inputs",
              "min over depths of Spearman rho(||A_1 f_1(x)||, |f(x)|)", float(min(proj_rho)), ">", 0.8,
              "|f(x)| <~ C0 (eps + ...) when ||A_j f_j(x)|| <= eps"),
        Claim("A13e", "Prop 2.4.2: with an output bias and imbalanced labels the bias takes the OCS's sign",
              "fraction of runs with sign(b) = sign(OCS) at the end of training",
              bias_agreement(th)["ocs"], ">=", 0.9, "b ~ sum of margin-point labels ~ OCS direction"),
    ]


def extra(results: Results) -> dict:
    """Numbers behind the claims that the chapter quotes: per-energy A9 statistics, bias agreements, k per layer."""
    s = results.settings
    ce = [ModelSpec(a, "ce").name for a in s.archs]
    k = results.projection[results.projection["energy"] == s.energy].groupby(["model", "layer"])["k"].mean()
    return {"a9_by_energy": {e: float(np.mean([_mean_rho(projection_curves(results, m, e)) for m in ce]))
                             for e in s.energies},
            "bias_agreement": bias_agreement(results.theory),
            "rho_norm_vs_distance": {m: {t: link_rho(results, m, t) for t in ("to_constants", "to_ocs")}
                                     for m in results.sets["model"].unique()},
            "k_at_energy": {f"{m} {layer}": float(v) for (m, layer), v in k.items()}}


# ----------------------------------------------------------------------------------------------- figures


def _constants_panel(ax, results: Results, model: str, title: str):
    """OCS (bars), accumulated constants of each seed (dots), mean clean prediction (line)."""
    v = results.vectors[model]
    idx = np.arange(len(v["ocs"]))
    ax.bar(idx, v["ocs"].numpy(), color="tab:orange", alpha=0.6, label="OCS")
    for i, c in enumerate(v["constants"]):
        ax.plot(idx, c.numpy(), "o", ms=4, color="tab:blue", label="accumulated constants" if i == 0 else None)
    ax.plot(idx, v["mean"]["none", 0].numpy(), "k_", ms=10, label="mean clean prediction")
    ax.set_xticks(idx)
    ax.set_xlabel("class" + (" (10 = abstain)" if len(idx) == 11 else ""))
    ax.set_ylabel("probability" if "/ce" in model else "predicted reward")
    ax.set_title(title)


def plot_mechanism(results: Results, arch: str = "cnn"):
    """Fig 2.4 analogue for one architecture: a row per shift with (1) the feature-norm ratio by layer, a line per
    level, (2) the projection ratio at the last layer against the level; column 3 holds the accumulated constants
    next to the OCS for the CE model (top) and the MSE reward model (bottom)."""
    import matplotlib.pyplot as plt

    s = results.settings
    model = ModelSpec(arch, "ce").name
    fig, axes = plt.subplots(len(s.shifts), 3, figsize=(13, 3.2 * len(s.shifts)), squeeze=False,
                             constrained_layout=True)
    df = _with_clean(results.norms[results.norms["model"] == model])
    proj = projection_curves(results, model)
    cmap = plt.get_cmap("viridis")
    for i, shift in enumerate(s.shifts):
        g = df[df["shift"] == shift].groupby(["level", "depth", "layer"])["ratio"].agg(["mean", "std"]).reset_index()
        for level, gl in g.groupby("level"):
            axes[i, 0].errorbar(gl["depth"], gl["mean"], yerr=gl["std"], marker="o", ms=3, capsize=2,
                                color=cmap(level / 5), label=f"level {level}")
        axes[i, 0].set_xticks(gl["depth"], gl["layer"])
        axes[i, 0].axhline(1, color="gray", lw=0.8, ls="--")
        axes[i, 0].set_xlabel("layer (input to output)")
        axes[i, 0].set_ylabel("E_OOD / E_train ||W phi||^2")
        axes[i, 0].set_title(f"{model}: {shift}")
        p = proj[proj["shift"] == shift]
        axes[i, 1].errorbar(p["level"], p["ratio"], yerr=p["std"], marker="o", capsize=2)
        axes[i, 1].set_xlabel(f"{shift} level")
        axes[i, 1].set_ylabel("||phi^T V V^T||^2 / ||phi||^2")
        axes[i, 1].set_title(f"last layer, k = {p['k'].mean():.0f} (energy {s.energy:g})")
    axes[0, 0].legend(fontsize=7)
    _constants_panel(axes[0, 2], results, model, "CE: constants vs OCS")
    _constants_panel(axes[-1, 2], results, ModelSpec(arch, "mse_reward").name, "MSE reward: constants vs OCS")
    axes[0, 2].legend(fontsize=7)
    for ax in axes[1:-1, 2]:
        ax.axis("off")
    return fig


def plot_shrinkage_and_distance(results: Results):
    """Every evaluation set of every CE and MSE model (seed means): the last layer's feature-norm ratio against the
    predictions' distance to the accumulated constants (left) and to the OCS (right), relative to the clean set."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True, constrained_layout=True)
    models = [ModelSpec(a, loss).name for loss in ("ce", "mse_reward") for a in results.settings.archs]
    for model in models:
        norms = results.norms[(results.norms["model"] == model)
                              & (results.norms["layer"] == last_layer(results.norms, model))]
        g = norms.merge(results.sets, on=["model", "seed", "shift", "level"]).groupby(["shift", "level"]).mean(
            numeric_only=True)
        clean = g.loc[("none", 0)]
        for ax, target in zip(axes, ("to_constants", "to_ocs")):
            ax.plot(g["ratio"], g[target] / clean[target], "o", ms=4, label=model)
    for ax, name in zip(axes, ("the accumulated constants", "the OCS")):
        ax.set_yscale("log")
        ax.axhline(1, color="gray", lw=0.8, ls="--")
        ax.set_xlabel("last-layer E_OOD / E_train ||W phi||^2")
        ax.set_ylabel(f"distance to {name} / clean")
    axes[0].legend(fontsize=8)
    return fig


def plot_norm_variants(results: Results):
    """Appendix A.4 analogue: a row per normalisation, with the last-layer norm ratio and the projection ratio
    against the level (a line per shift) and the CE constants next to the OCS."""
    import matplotlib.pyplot as plt

    s = results.settings
    fig, axes = plt.subplots(len(s.norms), 3, figsize=(12, 3 * len(s.norms)), squeeze=False, constrained_layout=True)
    for i, norm in enumerate(s.norms):
        model = ModelSpec("cnn", "ce", norm).name
        for col, (curves, label) in enumerate(((norm_curves(results, model), "last-layer E_OOD/E_train ||W phi||^2"),
                                               (projection_curves(results, model), "projection ratio"))):
            for shift, g in curves.groupby("shift"):
                axes[i, col].plot(g["level"], g["ratio"], marker="o", label=shift)
            axes[i, col].set_xlabel("shift level")
            axes[i, col].set_ylabel(label)
            axes[i, col].set_title(model)
        _constants_panel(axes[i, 2], results, model, f"{model}: constants vs OCS")
    axes[0, 0].legend(fontsize=8)
    return fig


def plot_constants_by_layer(results: Results):
    """Distance of g_{k+1}(sigma(b_k)) to the OCS for every layer k, relative to the clean predictions' distance,
    and the imbalanced-label control: its OCS, constants and mean clean prediction."""
    import matplotlib.pyplot as plt

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


def plot_k_sensitivity(results: Results, shift: str | None = None):
    """The projection ratio's dependence on k: (left) ratio against the level for each energy, last layer of the CNN;
    (right) the A9 statistic (mean rho over shifts) against the energy, for every layer."""
    import matplotlib.pyplot as plt

    s = results.settings
    model = ModelSpec("cnn", "ce").name
    shift = shift or s.shifts[-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
    for energy in s.energies:
        c = projection_curves(results, model, energy)
        c = c[c["shift"] == shift]
        axes[0].plot(c["level"], c["ratio"], marker="o", label=f"{energy:g} (k={c['k'].mean():.0f})")
    axes[0].set_xlabel(f"{shift} level")
    axes[0].set_ylabel("projection ratio, last layer")
    axes[0].legend(title="energy", fontsize=7)
    layers = list(dict.fromkeys(results.projection.loc[results.projection["model"] == model, "layer"]))
    for layer in layers:
        rhos = [_mean_rho(projection_curves(results, model, e, layer)) for e in s.energies]
        axes[1].plot(s.energies, rhos, marker="o", label=layer)
    axes[1].axhline(-0.5, color="gray", ls="--", lw=0.8)
    axes[1].set_xlabel("energy kept by the top-k singular vectors")
    axes[1].set_ylabel("mean rho(level, projection ratio)")
    axes[1].legend(fontsize=8)
    return fig


def plot_fgsm(results: Results):
    """Fig A.1 analogue: OOD score vs KL to the OCS per set (left); feature-norm ratio by layer (right)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
    df = results.fgsm
    layers = results.layers("fgsm")
    styles = {"clean": ("r", "*"), "random sign": ("tab:gray", "s"), "adversarial": ("tab:blue", "o")}
    for kind, g in df.groupby("set", sort=False):
        color, marker = styles[kind]
        axes[0].errorbar(g["ood_score"].mean(), g["distance"].mean(), xerr=g["ood_score"].std(),
                         yerr=g["distance"].std(), color=color, marker=marker, ms=10, capsize=2, label=kind)
        axes[1].errorbar(range(len(layers)), g[layers].mean(), yerr=g[layers].std(), color=color, marker=marker,
                         capsize=2, label=kind)
    axes[0].set_xlabel("OOD score")
    axes[0].set_ylabel("KL(prediction || label marginal)")
    axes[0].legend(fontsize=8)
    axes[1].axhline(1, color="gray", lw=0.8, ls="--")
    axes[1].set_xticks(range(len(layers)), layers)
    axes[1].set_xlabel("layer (input to output)")
    axes[1].set_ylabel("E_set / E_train ||W phi||^2")
    return fig


def plot_nll(results: Results):
    """Fig A.2 analogue: KL to the OCS against the OOD score, the predicted mean, and an internal layer's norm."""
    import matplotlib.pyplot as plt

    df = _with_clean(results.nll)
    internal = results.layers("nll")[-2]
    g = df.groupby(["shift", "level"]).agg(["mean", "std"]).reset_index()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), constrained_layout=True)
    for shift, gs in g.groupby("shift"):
        axes[0].errorbar(gs[("ood_score", "mean")], gs[("distance", "mean")], yerr=gs[("distance", "std")],
                         marker="o", capsize=2, label=shift)
        axes[1].errorbar(gs["level"], gs[("mu", "mean")], yerr=gs[("mu", "std")], marker="o", capsize=2, label=shift)
        axes[2].errorbar(gs["level"], gs[(internal, "mean")], yerr=gs[(internal, "std")], marker="o", capsize=2,
                         label=shift)
    clean = g[g["level"] == 0].iloc[0]
    axes[0].plot(clean[("ood_score", "mean")], clean[("distance", "mean")], "r*", ms=14, label="held-out train")
    axes[0].set_xlabel("OOD score")
    axes[0].set_ylabel("KL(N(mu, sigma^2) || OCS)")
    axes[1].axhline(results.nll_ocs[0], color="tab:orange", ls="--", label="OCS mean")
    axes[1].axhline(float(results.nll_constants[:, 0].mean()), color="tab:blue", ls=":",
                    label="accumulated constants' mean")
    axes[1].set_xlabel("shift level")
    axes[1].set_ylabel("mean predicted mu")
    axes[2].axhline(1, color="gray", lw=0.8, ls="--")
    axes[2].set_xlabel("shift level")
    axes[2].set_ylabel(f"{internal}: E_OOD / E_train ||W phi||^2")
    for ax in axes:
        ax.legend(fontsize=8)
    return fig


def plot_stable_rank(results: Results):
    """Lemma A.4.4: stable rank of each trained layer W_1..W_L, a line per depth, against the random init."""
    import matplotlib.pyplot as plt

    th, depths = results.theory, results.settings.theory.depths
    fig, ax = plt.subplots(figsize=(6, 3.4), constrained_layout=True)
    for i, d in enumerate(depths):
        sr = th["stable_rank"][i, :, :d].mean(0)
        ax.plot(range(1, d + 1), sr.numpy(), marker="o", label=f"depth {d}")
    ax.axhline(th["init_stable_rank"], color="gray", ls="--", label="random init (hidden layer)")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("layer i (W_1 input ... W_L output)")
    ax.set_ylabel("stable rank ||W||_F^2 / ||W||_2^2")
    ax.legend(fontsize=7)
    return fig


def plot_feature_collapse(results: Results):
    """Prop 2.4.1 and Thm 2.4.1: (left) feature-norm ratio of the last hidden layer against the angle out of the
    data plane, a line per depth; (right) |f(x)| against ||A_1 f_1(x)|| on OOD inputs of the deepest net."""
    import matplotlib.pyplot as plt

    th, cfg = results.theory, results.settings.theory
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
    for i, d in enumerate(cfg.depths):
        axes[0].plot(cfg.angles, th["norm_ratio"][i, :, :, d - 2].mean(0).numpy(), marker="o", label=f"depth {d}")
    axes[0].set_xlabel("degrees out of the training plane")
    axes[0].set_ylabel("E_OOD / E_train ||f_{L-1}(x)||")
    axes[0].legend(fontsize=7)
    proj, out = th["rank_one_proj"][-1], th["abs_out"][-1]  # (seeds, angles, N)
    colors = np.broadcast_to(np.asarray(cfg.angles)[None, :, None], proj.shape)
    sc = axes[1].scatter(proj.flatten(), out.flatten(), c=colors.flatten(), s=4, cmap="viridis")
    fig.colorbar(sc, ax=axes[1], label="degrees")
    axes[1].set_xlabel("||A_1 f_1(x)|| (rank-one projection)")
    axes[1].set_ylabel("|f(x)|")
    axes[1].set_title(f"depth {cfg.depths[-1]}")
    return fig


def plot_bias(results: Results):
    """Prop 2.4.2: the output bias over training for each run, coloured by the training label fraction."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    b = results.theory["bias"]
    fig, ax = plt.subplots(figsize=(6, 3.4), constrained_layout=True)
    for p, trace in zip(b["p_pos"], b["trace"]):
        ax.plot(b["steps"].numpy(), trace.numpy(), color="tab:red" if p > 0.5 else "tab:blue", lw=1)
    ax.legend([Line2D([], [], color="tab:red"), Line2D([], [], color="tab:blue")],
              ["more +1 labels (OCS > 0)", "more -1 labels (OCS < 0)"], fontsize=8)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("gradient step")
    ax.set_ylabel("output bias b")
    return fig
