"""Settings, training and measurements: every model's feature norms, projection ratios and accumulated constants,
the two counterexamples of appendix A.1 (:mod:`.counterexamples`) and the theory's simulation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from steerlib.chapters.extrapolation import common
from steerlib.chapters.extrapolation.mechanism.counterexamples import fgsm_experiment, nll_experiment
from steerlib.core.chapter import Run, check_run
from steerlib.core.checks import check_choice, check_choices, check_range, check_ranges, check_type
from steerlib.core.jobs import Job, Stage, run_stages
from steerlib.core.scale import cube_root_times
from steerlib.core.seeds import substream
from steerlib.measures.divergences import kl_categorical
from steerlib.measures.homogeneous import SimConfig, Simulation, simulate
from steerlib.vision import representations as rep
from steerlib.vision.data import DATASETS, ImageData
from steerlib.vision.ensemble import Ensemble
from steerlib.vision.losses import make_loss, targets
from steerlib.vision.models import ARCHS, NORMS
from steerlib.vision.shifts import SHIFTS, EvalSet
from steerlib.vision.train import TrainConfig


@dataclasses.dataclass(frozen=True)
class Settings:
    dataset: str = "mnist5k"
    shifts: tuple[str, ...] = ("rotate", "noise")  # Fig 2.4: rotated MNIST, noisy CIFAR-10
    archs: tuple[str, ...] = ("cnn", "mlp")  # Fig 2.4 for the CNN and a second architecture
    norms: tuple[str, ...] = NORMS  # appendix A.4/A.5 variants of the CNN (cross-entropy)
    width: int = 16  # the reversion chapter's CNN, so its models come from the run cache
    replicates: int = 3  # independently seeded members of the CNNs shared with the reversion chapter
    extra_replicates: int = 3  # members of the MLPs, the normalisation variants and the imbalanced-label control
    train: TrainConfig = common.RECIPES["cpu"]  # Part I's recipe, so the reversion chapter's CNNs are reused
    held_out: int = 500  # as the reversion chapter: the ladders' held-out training examples
    energy: float = 0.95  # projection ratio: k = smallest k keeping this fraction of ||W||_F (the code's rule)
    energies: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)  # sensitivity of the projection ratio to k
    rarest: float = 0.1  # control for A10: class c keeps rarest^(c/9) of its training images
    fgsm_eps: float = 0.03  # per round, in input units: the code's 0.1 in MNIST-normalised units is 0.031
    fgsm_steps: int = 20
    nll_shifts: tuple[str, ...] = ("saltpepper", "blur")  # appendix A.1: impulse noise vs Gaussian blur
    ood_splits: int = 10
    theory: SimConfig = SimConfig(replicates=3)  # its nets of every depth: 3 independently initialised at cpu

    def __post_init__(self):
        check_choice("dataset", self.dataset, DATASETS)
        check_choices("shifts", self.shifts, SHIFTS)
        if len(check_choices("nll_shifts", self.nll_shifts, SHIFTS)) != 2:
            raise ValueError(f"nll_shifts={self.nll_shifts} must be two shifts: (impulse noise, blur)")
        check_choices("archs", self.archs, ARCHS)
        check_choices("norms", self.norms, NORMS)
        for name in ("width", "replicates", "extra_replicates", "held_out", "fgsm_steps", "ood_splits"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_type("train", self.train, TrainConfig, "a TrainConfig")
        check_range("energy", self.energy, 0.0, 1.0, open_low=True)
        check_ranges("energies", self.energies, 0.0, 1.0, open_low=True)
        check_choice("energy", self.energy, self.energies)  # the main statistic is one of the energies swept
        check_range("rarest", self.rarest, 0.0, 1.0, open_low=True)
        check_range("fgsm_eps", self.fgsm_eps, 0.0)
        check_type("theory", self.theory, SimConfig, "a SimConfig")
        if self.archs[0] != "cnn" or self.norms[0] != "none":
            raise ValueError("the first arch must be 'cnn' and the first norm 'none' (the chapter's main model)")


# cpu: every evidence claim over at least three replicates (the extra models and the simulation's nets included);
# the third replicate of the five extra models costs about a minute on one thread.
PROFILES = {
    "smoke": Settings(
        dataset="digits",
        width=16,
        held_out=200,
        archs=("cnn",),
        norms=("none", "batch"),
        replicates=2,
        extra_replicates=1,
        train=common.RECIPES["smoke"],
        energies=(0.9, 0.95),
        fgsm_steps=5,
        ood_splits=2,
        theory=SimConfig(
            depths=(3, 6),
            width=16,
            n_train=100,
            n_test=100,
            replicates=1,
            steps=400,
            angles=(0, 45, 90),
            bias_steps=400,
        ),
    ),
    "cpu": Settings(),
    "paper": Settings(
        dataset="mnist",
        width=64,
        replicates=5,
        extra_replicates=3,
        held_out=5000,
        train=common.RECIPES["paper"],
        theory=SimConfig(width=64, replicates=5, steps=50000, lr=0.1, weight_decay=1e-3, bias_steps=200000),
    ),
}


def _theory(settings: Settings, factor: float) -> SimConfig:
    th = settings.theory
    return dataclasses.replace(
        th,
        width=cube_root_times(th.width, factor),
        steps=cube_root_times(th.steps, factor),
        bias_steps=cube_root_times(th.bias_steps, factor),
    )


# Every claim along Part I's scale axis; the simulation's width and steps (the theory's nets) move with the same knob.
SCALE = common.scale(
    ("A*",), lambda s: s.dataset, also="the simulation's width and steps x factor^(1/3)", theory=_theory
)


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


MAIN = ModelSpec("cnn", "ce")  # the chapter's main model: every layer is measured, and FGSM attacks it
NLL = ModelSpec("cnn", "gaussian_nll")  # the regressor of appendix A.1's second counterexample


def model_specs(settings: Settings) -> list[ModelSpec]:
    """CE and MSE-reward models per architecture, the CE normalisation variants, and the imbalanced-label control."""
    specs = [ModelSpec(arch, loss) for arch in settings.archs for loss in ("ce", "mse_reward")]
    specs += [ModelSpec("cnn", "ce", norm) for norm in settings.norms if norm != "none"]
    return specs + [ModelSpec("cnn", "ce", imbalanced=True)]


def imbalanced(data: ImageData, rarest: float, seed: int = 0) -> ImageData:
    """The training split with class c keeping a fraction rarest^(c/(K-1)) of its images, drawn with ``seed`` (test
    split unchanged)."""
    g = np.random.default_rng(seed)
    y = data.y_train.numpy()
    keep = np.concatenate(
        [
            g.permutation(np.flatnonzero(y == c))[: round(rarest ** (c / (data.num_classes - 1)) * (y == c).sum())]
            for c in range(data.num_classes)
        ]
    )
    keep.sort()
    return dataclasses.replace(
        data, name=f"{data.name}-imbalanced{rarest:g}", x_train=data.x_train[keep], y_train=data.y_train[keep]
    )


@dataclasses.dataclass
class Vectors:
    """One model in its predicted space (probabilities for CE, rewards for MSE), members indexed by e."""

    ocs: torch.Tensor  # (out,)
    constants: torch.Tensor  # (E, out): each member's accumulated constants at the last layer
    clean: torch.Tensor  # (out,): mean prediction on the clean test split, averaged over members


@dataclasses.dataclass
class Results:
    """Long tables (one row per model x replicate x set x layer [x energy]; ``replicate`` is the ensemble member,
    0..n-1) plus the experiments' vectors, and the settings that the statistics and figures read."""

    norms: pd.DataFrame  # feature-norm ratio per layer: model, replicate, shift, level, layer, depth, ratio
    projection: pd.DataFrame  # projection ratio: model, replicate, shift, level, layer, energy, k, ratio (mean, std)
    constants: pd.DataFrame  # accumulated constants per layer k: model, loss, replicate, layer, distance,
    # clean_distance, uniform_distance
    sets: pd.DataFrame  # per model x replicate x set: mean distance of the predictions to_ocs, to_constants (the
    # last layer's accumulated constants) and to_hidden_constants (the last hidden layer's)
    vectors: dict[str, Vectors]  # model name -> its OCS, constants and clean prediction
    fgsm: pd.DataFrame  # per replicate x {clean, random sign, adversarial}: ood_score, distance, accuracy, ratios
    nll: pd.DataFrame  # Gaussian NLL per shift x level x replicate: ood_score, distance, mu, sigma, layer ratios
    nll_ocs: tuple[float, float]  # (mu*, sigma*^2) of the Gaussian-NLL model
    nll_constants: torch.Tensor  # (E, 2): its accumulated constants at the last layer as (mu, sigma^2)
    theory: Simulation  # its nets are indexed (depth, simulation seed): SimConfig.replicates independent inits
    theory_depths: tuple[int, ...]  # settings.theory.depths: the simulation's first axis
    theory_angles: tuple[float, ...]  # settings.theory.angles: its OOD sets, degrees out of the data plane
    archs: tuple[str, ...]  # settings.archs
    normalisations: tuple[str, ...]  # settings.norms: the CE CNN's variants, "none" first
    shifts: tuple[str, ...]  # settings.shifts
    nll_shifts: tuple[str, ...]  # settings.nll_shifts: (impulse noise, blur)
    energy: float  # settings.energy: the projection ratio's energy in the main statistics
    energies: tuple[float, ...]  # settings.energies

    def layers(self, table: str = "fgsm") -> list[str]:
        """The layer columns (input, then affine layers to the output) of the ``fgsm`` or ``nll`` table."""
        df = getattr(self, table)
        return list(df.columns[df.columns.get_loc("input") :])


IMBALANCED_DRAW = 1  # the imbalanced subsample draws from this substream of the run's data stream (the held-out
# split draws from the stream itself), so the two share no random numbers


def _train(spec: ModelSpec, data: ImageData, settings: Settings, run: Run) -> tuple[Ensemble, ImageData]:
    """Fit (or load from the cache) one model's ensemble, a member per replicate of ``run``; returns it with the
    training data it saw. The plain CNNs are the reversion chapter's ensembles (the same cache entries)."""
    shared = spec.arch == "cnn" and spec.norm == "none" and not spec.imbalanced
    if spec.imbalanced:
        data = imbalanced(data, settings.rarest, seed=substream(run.stream("data"), IMBALANCED_DRAW))
    n = settings.replicates if shared else settings.extra_replicates
    return common.ensemble(data, spec.loss, spec.arch, settings.width, n, settings.train, run, spec.norm), data


@torch.no_grad()
def measure(
    spec: ModelSpec,
    ensemble: Ensemble,
    data: ImageData,
    sets: list[EvalSet],
    energies: tuple[float, ...],
    all_layers: bool,
) -> tuple[dict[str, list[dict]], Vectors]:
    """Per member (replicate): accumulated constants at every layer; then per evaluation set (the clean set first)
    the feature-norm ratios, projection ratios (every energy; every layer if ``all_layers``, else the last) and the
    distances of the predictions to the OCS and to the constants of the last and the last hidden layer. E_train is
    over the model's own training inputs. Returns the rows of the tables norms, projection, constants and sets, and
    the model's vectors."""
    loss = make_loss(spec.loss, data.num_classes)
    ocs = loss.ocs(targets(loss, data))
    rows: dict[str, list[dict]] = {"norms": [], "projection": [], "constants": [], "sets": []}
    constants, clean = [], []
    for e in range(len(ensemble)):
        model = ensemble.member(e)
        layers = rep.affine_layers(model)
        consts = {layer.name: rep.accumulated_constants(model, layer.name, data.input_shape) for layer in layers}
        constants.append(loss.predict(consts[layers[-1].name]))
        train_norms = rep.feature_norms(model, data.x_train)
        for s in sets:
            tags = {"model": spec.name, "replicate": e, "shift": s.shift, "level": s.level}
            out, phis = rep.capture(model, s.x)
            if s.shift == "none":
                clean.append(loss.predict(out).mean(0))
            hidden = loss.predict(consts[layers[-2].name])
            rows["sets"].append(
                {
                    **tags,
                    "to_ocs": float(loss.distance(out, ocs).mean()),
                    "to_constants": float(loss.distance(out, constants[-1]).mean()),
                    "to_hidden_constants": float(loss.distance(out, hidden).mean()),
                }
            )
            ratios = rep.feature_norm_ratio(rep.feature_norms(model, s.x, phis), train_norms)
            rows["norms"] += [
                {**tags, "layer": name, "depth": i, "ratio": r} for i, (name, r) in enumerate(ratios.items())
            ]
            for layer in layers if all_layers else layers[-1:]:
                sv, profile = rep.projection_profile(layer, phis[layer.name])
                for energy in energies:
                    k = rep.spectral_rank(sv, energy)
                    rows["projection"].append(
                        {
                            **tags,
                            "layer": layer.name,
                            "energy": energy,
                            "k": k,
                            "ratio": float(profile[:, k - 1].mean()),
                            "std": float(profile[:, k - 1].std()),
                        }
                    )
        clean_distance = rows["sets"][-len(sets)]["to_ocs"]  # the clean set comes first
        uniform = float(kl_categorical(torch.full_like(ocs, 1 / len(ocs)), ocs)) if spec.loss == "ce" else np.nan
        rows["constants"] += [
            {
                "model": spec.name,
                "loss": spec.loss,
                "replicate": e,
                "layer": name,
                "distance": float(loss.distance(c[None], ocs)),
                "clean_distance": clean_distance,
                "uniform_distance": uniform,
            }
            for name, c in consts.items()
        ]
    return rows, Vectors(ocs, torch.stack(constants), torch.stack(clean).mean(0))


def _setup(settings: Settings, run: Run) -> common.Setup:
    """The training data less the held-out examples, the main CNN (the reversion chapter's cross-entropy ensemble,
    from the run cache) and the ladders (:func:`~steerlib.chapters.extrapolation.common.setup`)."""
    return common.setup(
        settings.dataset, settings.held_out, "cnn", settings.width, settings.replicates, settings.train, run
    )


def _train_model(settings: Settings, run: Run, spec: ModelSpec) -> Ensemble:
    """One job: the ensemble of ``spec`` (after the set-up, from the cache)."""
    return _train(spec, _setup(settings, run).data, settings, run)[0]


def _theory(settings: Settings, run: Run) -> Simulation:
    """The theory's simulation (cached), seeded from its own part of the run's ``init`` stream (whose first word
    initialises the ensembles' first member)."""
    seed = substream(run.stream("init"), "theory")
    return run.cache.cached(
        "homogeneous",
        {"sim": settings.theory, "seed": seed},
        lambda: simulate(settings.theory, seed=seed),
        as_type=Simulation,
    )


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """The set-up (the main CNN, the reversion chapter's, and the ladders), then the theory's simulation, every
    other model and the Gaussian-NLL regressor."""
    models = [spec for spec in model_specs(settings) if spec != MAIN] + [NLL]
    return [
        Stage("setup", (Job(f"{settings.dataset} {MAIN.name}", _setup, (settings, run)),)),
        Stage(
            "models",
            (
                Job("theory", _theory, (settings, run)),
                *(Job(spec.name, _train_model, (settings, run, spec)) for spec in models),
            ),
        ),
    ]


def run(settings: Settings, run: Run) -> Results:
    """Train (or load) every model, measure its representations, run the simulation and both counterexamples.

    On a CPU with several torch threads (and a run cache), the models and the simulation train first in that many
    worker processes (:func:`jobs`' second stage), and the measurements below find them in the cache."""
    check_run(settings, Settings, run)
    setup = _setup(settings, run)
    workers = torch.get_num_threads() if run.device.type == "cpu" and run.cache.enabled else 1
    if workers > 1:
        run_stages(jobs(settings, run)[1:], workers)
    data = setup.data
    sets = common.shifted_sets(data, settings.shifts, setup.ladders, run)
    tables: dict[str, list[dict]] = {"norms": [], "projection": [], "constants": [], "sets": []}
    vectors, main = {}, None
    for spec in model_specs(settings):
        ensemble, train_data = _train(spec, data, settings, run)
        if spec == MAIN:
            main = ensemble
        rows, vectors[spec.name] = measure(spec, ensemble, train_data, sets, settings.energies, all_layers=spec == MAIN)
        for name in tables:
            tables[name] += rows[name]
    theory = _theory(settings, run)
    nll_ensemble, _ = _train(NLL, data, settings, run)
    nll_loss = make_loss(NLL.loss, data.num_classes)
    nll, nll_constants = nll_experiment(
        nll_ensemble, data, settings.nll_shifts, setup.ladders, settings.ood_splits, run
    )
    fgsm = fgsm_experiment(main, data, settings.fgsm_eps, settings.fgsm_steps, settings.ood_splits, run)
    return Results(
        norms=pd.DataFrame(tables["norms"]),
        projection=pd.DataFrame(tables["projection"]),
        constants=pd.DataFrame(tables["constants"]),
        sets=pd.DataFrame(tables["sets"]),
        vectors=vectors,
        fgsm=fgsm,
        nll=nll,
        nll_ocs=nll_loss.ocs(targets(nll_loss, data)),
        nll_constants=nll_constants,
        theory=theory,
        theory_depths=settings.theory.depths,
        theory_angles=settings.theory.angles,
        archs=settings.archs,
        normalisations=settings.norms,
        shifts=settings.shifts,
        nll_shifts=settings.nll_shifts,
        energy=settings.energy,
        energies=settings.energies,
    )
