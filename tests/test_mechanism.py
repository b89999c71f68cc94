"""The mechanism chapter: its statistics on hand-made tables, and its claims at the smoke and cpu profiles."""

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from steerlib.book import execute
from steerlib.chapters.extrapolation import mechanism
from steerlib.chapters.extrapolation.mechanism import analysis, counterexamples, experiment, figures
from steerlib.core.cache import RunCache
from steerlib.core.claims import KINDS
from steerlib.core.seeds import substream
from steerlib.measures.homogeneous import BiasRuns, SimConfig, Simulation, simulate
from steerlib.measures.statistics import jackknife
from steerlib.vision.data import load_dataset

matplotlib.use("Agg")


def test_settings_reject_unknown_names_and_a_wrong_main_model():
    with pytest.raises(ValueError, match=r"shifts\[\d\]='fog'"):
        mechanism.Settings(shifts=("fog",))
    with pytest.raises(ValueError, match="first arch"):
        mechanism.Settings(archs=("mlp", "cnn"))
    with pytest.raises(ValueError, match="energy=1.5"):
        mechanism.Settings(energy=1.5)
    with pytest.raises(ValueError, match="extra_replicates=0"):
        mechanism.Settings(extra_replicates=0)


def test_every_evidence_claim_has_three_replicates_at_cpu():
    """The shared CNNs, the extra models and the simulation's nets: three independent replicates each at cpu."""
    cpu = mechanism.PROFILES["cpu"]
    assert min(cpu.replicates, cpu.extra_replicates, cpu.theory.replicates) >= 3


def test_imbalanced_split_keeps_a_geometric_share_of_each_class():
    data = load_dataset("digits")
    imb = experiment.imbalanced(data, rarest=0.1)
    before = torch.bincount(data.y_train, minlength=10).double()
    after = torch.bincount(imb.y_train, minlength=10).double()
    share = after / before
    assert share[0] == 1 and share[9] == pytest.approx(0.1, abs=0.01)
    assert (share[1:] < share[:-1]).all()
    assert imb.name != data.name and torch.equal(imb.x_test, data.x_test)


def norms_table(ratios_by_shift: dict[str, list[list[float]]]) -> pd.DataFrame:
    """ratios_by_shift[shift][level - 1] = ratios per layer; level 0 (clean) is all ones."""
    rows = []
    n_layers = len(next(iter(ratios_by_shift.values()))[0])
    for d in range(n_layers):
        rows.append(
            {"model": "m", "replicate": 0, "shift": "none", "level": 0, "layer": f"l{d}", "depth": d, "ratio": 1.0}
        )
    for shift, levels in ratios_by_shift.items():
        for level, ratios in enumerate(levels, start=1):
            rows += [
                {"model": "m", "replicate": 0, "shift": shift, "level": level, "layer": f"l{d}", "depth": d, "ratio": r}
                for d, r in enumerate(ratios)
            ]
    return pd.DataFrame(rows)


def toy_results(norms: pd.DataFrame | None = None, **fields) -> mechanism.Results:
    """Results holding only the given tables (``norms`` and ``fields``), with the default settings' fields."""
    s, empty = mechanism.Settings(), pd.DataFrame()
    defaults = dict(
        norms=empty if norms is None else norms,
        projection=empty,
        constants=empty,
        sets=empty,
        vectors={},
        fgsm=empty,
        nll=empty,
        nll_ocs=(0.0, 1.0),
        nll_constants=torch.zeros(1, 2),
        theory=None,
        theory_depths=s.theory.depths,
        theory_angles=s.theory.angles,
        archs=s.archs,
        normalisations=s.norms,
        shifts=s.shifts,
        nll_shifts=s.nll_shifts,
        energy=s.energy,
        energies=s.energies,
    )
    return mechanism.Results(**{**defaults, **fields})


def test_norm_statistics_read_level_and_depth_trends():
    falling = toy_results(
        norms_table({"noise": [[1.0, 0.9, 0.8], [1.0, 0.7, 0.5]], "rotate": [[1.0, 0.95, 0.9], [1.1, 0.8, 0.6]]})
    )
    c = analysis.norm_curves(falling, "m")
    assert set(c["shift"]) == {"noise", "rotate"} and len(c) == 6  # the clean level joins every shift
    assert analysis.mean_rho(c) == pytest.approx(-1.0)
    assert analysis.depth_rho(falling, "m") == pytest.approx(-1.0)
    rising = toy_results(norms_table({"noise": [[1.0, 1.1, 1.2], [1.0, 1.3, 1.5]]}))
    assert analysis.mean_rho(analysis.norm_curves(rising, "m")) == pytest.approx(1.0)
    assert analysis.depth_rho(rising, "m") == pytest.approx(1.0)


def model_tables(spread: float, n: int = 4, model: str = "m", loss: str = "ce", seed: int = 0) -> dict:
    """One model (three layers, two shifts at five levels) measured on ``n`` replicates whose norm ratios,
    projection ratios, distances and constants differ by N(0, spread^2) noise (relative for the distances)."""
    rng = np.random.default_rng(seed)
    sets = [("none", 0)] + [(shift, level) for shift in ("noise", "rotate") for level in range(1, 6)]
    norms, projection, sets_rows, constants = [], [], [], []
    for replicate in range(n):
        for shift, level in sets:
            tags = {"model": model, "replicate": replicate, "shift": shift, "level": level}
            ratios = [1.0 - 0.1 * level * depth + rng.normal(0, spread) for depth in range(3)]
            norms += [{**tags, "layer": f"l{d}", "depth": d, "ratio": r} for d, r in enumerate(ratios)]
            projection.append(
                {
                    **tags,
                    "layer": "l2",
                    "energy": mechanism.Settings().energy,
                    "k": 3,
                    "std": 0.1,
                    "ratio": 0.9 - 0.1 * level + rng.normal(0, spread),
                }
            )
            sets_rows.append(
                {
                    **tags,
                    "to_ocs": 1.0,
                    "to_constants": ratios[-1] * (1 + rng.normal(0, spread)),
                    "to_hidden_constants": ratios[1] * (1 + rng.normal(0, spread)),
                }
            )
        constants += [
            {
                "model": model,
                "loss": loss,
                "replicate": replicate,
                "layer": f"l{d}",
                "distance": 0.1 * (1 + abs(rng.normal(0, spread))),
                "clean_distance": 2.0,
                "uniform_distance": 0.5,
            }
            for d in range(3)
        ]
    return {
        "norms": pd.DataFrame(norms),
        "constants": pd.DataFrame(constants),
        "projection": pd.DataFrame(projection),
        "sets": pd.DataFrame(sets_rows),
    }


def replicated_model(spread: float, n: int = 4) -> mechanism.Results:
    return toy_results(**model_tables(spread, n))


def _expected(r: mechanism.Results, m: str) -> dict[str, float]:
    """What the claims compute from the tables for model ``m``, function by function."""
    return {
        "top": analysis.top_level(r, m),
        "norm_rho": analysis.mean_rho(analysis.norm_curves(r, m)),
        "depth_rho": analysis.depth_rho(r, m),
        "link_rho": analysis.link_rho(r, m),
        "proj_rho": analysis.mean_rho(analysis.projection_curves(r, m)),
        "constants": analysis.constants_ratio(r, m),
        "constants_uniform": analysis.constants_ratio(r, m, "uniform_distance"),
    }


def test_the_jackknife_statistic_recomputes_each_models_statistics():
    """With every replicate in the draw, :func:`analysis.model_statistic` gives what the claims compute from the
    tables."""
    r = replicated_model(0.2)
    statistic, n = analysis.model_statistic(r, "m")
    assert n == 4
    assert statistic(np.arange(n)) == pytest.approx(_expected(r, "m"), abs=1e-12)


def test_intervals_are_over_replicates():
    """Replicates that agree give a zero-width prediction interval, replicates that disagree a wider one, and it
    holds the value."""
    widths = {}
    for spread in (0.0, 0.1):
        r = replicated_model(spread)
        top = jackknife(*analysis.model_statistic(r, "m"))["top"]
        assert top.value == pytest.approx(analysis.top_level(r, "m"), abs=1e-12)
        assert top.interval[0] - 1e-9 <= top.value <= top.interval[1] + 1e-9
        assert "4 new independent replicates" in top.uncertainty
        widths[spread] = top.interval[1] - top.interval[0]
    assert widths[0.0] == pytest.approx(0.0, abs=1e-12) and widths[0.1] > 0.02, widths


def three_models(n_ce: int = 3, n_imbalanced: int = 2) -> mechanism.Results:
    """The claims' models with one architecture and no normalisation variant: the CE and MSE-reward CNNs on
    ``n_ce`` replicates, the imbalanced-label control on ``n_imbalanced``."""
    names = {"ce": "cnn/ce", "mse": "cnn/mse_reward", "imbalanced": "cnn/ce (imbalanced)"}
    parts = [
        model_tables(0.1, n_ce, names["ce"], "ce", seed=1),
        model_tables(0.1, n_ce, names["mse"], "mse_reward", seed=2),
        model_tables(0.1, n_imbalanced, names["imbalanced"], "ce", seed=3),
    ]
    tables = {k: pd.concat([p[k] for p in parts], ignore_index=True) for k in parts[0]}
    return toy_results(**tables, archs=("cnn",), normalisations=("none",))


def test_claims_over_models_combine_each_models_statistic():
    """A8-A11 are each model's statistic (all its replicates), combined over the claim's models by a mean or a max;
    with one architecture and no variant, A8a is the CE CNN's, A8d the mean of the CE and MSE CNNs', A10b the MSE
    CNN's, A11a the plain CNN's, A10a and A10c the imbalanced control's."""
    r = three_models()
    statistic, n = analysis.models_statistic(r)
    assert n == 3
    ce, mse, imb = (_expected(r, m) for m in ("cnn/ce", "cnn/mse_reward", "cnn/ce (imbalanced)"))
    assert statistic(np.arange(n)) == pytest.approx(
        {
            "A8a": ce["top"],
            "A8b": ce["norm_rho"],
            "A8c": ce["depth_rho"],
            "A8d": (ce["link_rho"] + mse["link_rho"]) / 2,
            "A9": ce["proj_rho"],
            "A10a": imb["constants"],
            "A10b": mse["constants"],
            "A10c": imb["constants_uniform"],
            "A11a": ce["norm_rho"],
            "A11b": ce["proj_rho"],
        },
        abs=1e-12,
    )


def test_a_model_with_fewer_replicates_reads_those_of_the_draw_it_has():
    """The imbalanced control has replicates 0 and 1 of the CE CNN's 0-2: leaving replicate 0 out leaves it
    replicate 1; a draw of replicate 2 alone leaves it none (NaN), while the CNN's claims are defined."""
    r = three_models()
    statistic, _ = analysis.models_statistic(r)
    imbalanced, _ = analysis.model_statistic(r, "cnn/ce (imbalanced)")
    assert statistic(np.array([1, 2]))["A10a"] == pytest.approx(imbalanced(np.array([1]))["constants"])
    assert statistic(np.array([0, 1]))["A10a"] == pytest.approx(imbalanced(np.array([0, 1]))["constants"])
    alone = statistic(np.array([2]))
    assert np.isnan(alone["A10a"]) and np.isnan(alone["A10c"]) and not np.isnan(alone["A8a"])


def test_the_counterexample_statistic_on_hand_made_tables():
    """A12b: replicate-mean KL of the adversarial set less the clean set's; A12c: the smallest replicate-mean norm
    ratio of the adversarial set over the affine layers; A12d and A12e: min(rho(level, y) under impulse noise,
    -rho(level, y) under blur) along the curves of replicate means, the clean set at level 0."""
    fgsm = pd.DataFrame(
        [
            {
                "set": kind,
                "replicate": e,
                "ood_score": 0.5,
                "distance": d,
                "accuracy": 1.0,
                "input": 1.0,
                "conv1": c1,
                "fc1": f1,
                "fc2": f2,
            }
            for kind, values in (
                ("clean", [(1.0, 1.0, 1.0, 1.0), (1.2, 1.0, 1.0, 1.0)]),
                ("random sign", [(0.9, 0.8, 0.7, 0.6), (0.9, 0.8, 0.7, 0.6)]),
                ("adversarial", [(1.5, 1.3, 1.2, 2.0), (1.9, 1.5, 1.1, 2.0)]),
            )
            for e, (d, c1, f1, f2) in enumerate(values)
        ]
    )
    # blur's replicate-mean distances along levels 0-5 swap levels 2 and 3: rho = -33/35; its internal norms rise
    distance = {"saltpepper": [1.0, 1.1, 1.2, 1.3, 1.4, 1.5], "blur": [1.0, 0.9, 0.8, 0.85, 0.6, 0.5]}
    internal = {"saltpepper": [1.0, 1.5, 2.0, 2.5, 3.0, 3.5], "blur": [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]}
    rows = []
    for e, offset in enumerate((-0.01, 0.01)):  # the two replicates straddle the means
        rows.append(
            {
                "shift": "none",
                "level": 0,
                "replicate": e,
                "distance": 1.0 + offset,
                "input": 1.0,
                "l1": 1.0,
                "l2": 1.0 + offset,
                "l3": 1.0,
            }
        )
        for shift in ("saltpepper", "blur"):
            rows += [
                {
                    "shift": shift,
                    "level": level,
                    "replicate": e,
                    "distance": distance[shift][level] + offset,
                    "input": 1.0,
                    "l1": 1.0,
                    "l2": internal[shift][level] + offset,
                    "l3": 1.0,
                }
                for level in range(1, 6)
            ]
    r = toy_results(fgsm=fgsm, nll=pd.DataFrame(rows), nll_shifts=("saltpepper", "blur"))
    statistic, n = analysis.counterexample_statistic(r)
    assert n == 2
    assert statistic(np.arange(2)) == pytest.approx({"A12b": 0.6, "A12c": 1.15, "A12d": 33 / 35, "A12e": -1.0})
    assert statistic(np.array([1]))["A12b"] == pytest.approx(0.7)  # 1.9 - 1.2: the second replicate alone
    assert statistic(np.array([0]))["A12c"] == pytest.approx(1.2)


def toy_simulation() -> Simulation:
    """Two depths (3, 4) x two simulation seeds, angles (0, 90); every number the claims read is set by hand."""
    nan = float("nan")
    stable_rank = torch.tensor(
        [
            [[5.0, 1.5, 1.0, nan], [5.0, 2.5, 1.0, nan]],  # depth 3: hidden W_2 only
            [[5.0, 1.2, 1.4, 1.0], [5.0, 1.0, 1.2, 1.0]],
        ]
    )  # depth 4: W_2, W_3
    norm_ratio = torch.ones(2, 2, 2, 3)  # (depth, seed, angle, layer j = 1..3)
    norm_ratio[0, :, 1, 1] = torch.tensor([0.2, 0.4])  # depth 3's last hidden layer f_2 at 90 degrees
    norm_ratio[1, :, 1, 2] = torch.tensor([0.1, 0.3])  # depth 4's f_3
    proj = torch.tensor([1.0, 2.0, 3.0, 4.0]).expand(2, 2, 2, 4).clone()
    abs_out = torch.tensor([4.0, 3.0, 2.0, 1.0]).expand(2, 2, 2, 4).clone()  # rho -1 at 0 degrees: left out
    abs_out[0, 0, 1] = torch.tensor([1.0, 2.0, 3.0, 4.0])  # rho 1
    abs_out[0, 1, 1] = torch.tensor([2.0, 1.0, 3.0, 4.0])  # rho 0.8
    abs_out[1, 0, 1] = torch.tensor([1.0, 2.0, 3.0, 4.0])  # rho 1, and rho -1 for depth 4's second seed
    return Simulation(
        stable_rank=stable_rank,
        init_stable_rank=9.0,
        norm_ratio=norm_ratio,
        abs_out=abs_out,
        rank_one_proj=proj,
        train_margin=torch.ones(2, 2),
        bias=_bias_runs(torch.ones(4, 10)),
    )


def test_the_theory_statistic_on_a_hand_made_simulation():
    """A13a: mean stable rank of the hidden layers; A13b: rho(depth, its mean per depth); A13c: the largest
    last-hidden-layer norm ratio at the widest angle; A13d: the smallest mean within-angle rho over turned angles."""
    r = toy_results(theory=toy_simulation(), theory_depths=(3, 4), theory_angles=(0, 90))
    statistic, n = analysis.theory_statistic(r)
    assert n == 2
    # hidden stable ranks per seed: depth 3 (1.5, 2.5), depth 4 (1.3, 1.1); within rho: depth 3 (1, 0.8), 4 (1, -1)
    assert statistic(np.arange(2)) == pytest.approx({"A13a": 1.6, "A13b": -1.0, "A13c": 0.3, "A13d": 0.0})
    assert statistic(np.array([0])) == pytest.approx({"A13a": 1.4, "A13b": -1.0, "A13c": 0.2, "A13d": 1.0})


def test_constants_ratio_uses_the_last_layer():
    consts = pd.DataFrame(
        [
            {
                "model": "m",
                "replicate": s,
                "layer": layer,
                "distance": d,
                "clean_distance": 2.0,
                "uniform_distance": 0.5,
            }
            for s in (0, 1)
            for layer, d in (("fc1", 5.0), ("fc2", 0.1 * (s + 1)))
        ]
    )
    r = toy_results(constants=consts)
    assert analysis.constants_ratio(r, "m") == pytest.approx(0.15 / 2.0)
    assert analysis.constants_ratio(r, "m", "uniform_distance") == pytest.approx(0.15 / 0.5)


def _bias_runs(margin_trace: torch.Tensor) -> BiasRuns:
    return BiasRuns(
        p_pos=torch.tensor([0.7, 0.7, 0.3, 0.3]),
        ocs=torch.tensor([0.8, 0.8, -0.8, -0.8]),
        final=torch.tensor([1.0, -1.0, 2.0, -0.5]),
        margin_label_sum=torch.tensor([2.0, -1.0, 1.0, 3.0]),
        trace=torch.tensor([[0.0, 0.1, -1], [0.0, 0.1, -1], [0.0, -0.1, 1], [0.0, -0.1, 1]]),
        steps=torch.arange(1, 4),
        checkpoints=torch.arange(10, 110, 10),
        margin_trace=margin_trace,
    )


def test_bias_agreement_counts_signs():
    agree = mechanism.bias_agreement(_bias_runs(torch.ones(4, 10)))
    assert agree == {"ocs": 0.5, "margin": 0.75, "ocs_early": 1.0}
    statistic, n = analysis.bias_statistic(_bias_runs(torch.ones(4, 10)))
    assert n == 4 and statistic(np.arange(4)) == {"A13e": 0.75}  # A13e reads the margin points' labels, not the OCS


def test_margin_change_reads_the_last_tenth_of_training():
    """Checkpoints at steps 10..100: the last tenth starts at step 90 (the 9th checkpoint)."""
    trace = torch.ones(4, 10)
    trace[0, 9] = 1.02  # moved 2% between steps 90 and 100
    trace[1, :8] = 0.5  # moved before step 90 only
    change = _bias_runs(trace).margin_change()
    assert change == pytest.approx(torch.tensor([0.02 / 1.02, 0.0, 0.0, 0.0]))


def test_the_cached_simulation_comes_back_as_a_simulation(tmp_path):
    """The run cache stores plain data; the chapter reads the theory back as the dataclass its analysis expects."""
    cfg = SimConfig(
        depths=(3, 4), width=8, dim=4, n_train=40, n_test=30, replicates=1, steps=5, angles=(0, 90), bias_replicates=1
    )
    cache = RunCache(tmp_path)
    fresh = cache.cached("homogeneous", {"sim": cfg}, lambda: simulate(cfg), as_type=Simulation)
    loaded = cache.load("homogeneous", {"sim": cfg}, as_type=Simulation)
    assert isinstance(loaded, Simulation) and isinstance(loaded.bias, BiasRuns)
    assert loaded.init_stable_rank == fresh.init_stable_rank
    assert torch.equal(loaded.norm_ratio, fresh.norm_ratio) and torch.equal(loaded.bias.trace, fresh.bias.trace)


def _run(profile, tmp_path):
    ex = execute("mechanism", profile, out_dir=tmp_path)
    return ex, {c.id: c for c in ex.claims}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return _run("smoke", tmp_path_factory.mktemp("smoke"))


def test_smoke_run_measures_every_model_set_and_layer(smoke):
    ex, claims = smoke
    settings, results = ex.settings, ex.results
    n_sets = 1 + 5 * len(settings.shifts)
    specs = experiment.model_specs(settings)
    replicates = {
        s.name: settings.replicates if s.norm == "none" and not s.imbalanced else settings.extra_replicates
        for s in specs
    }
    cnn_layers = 5  # input, conv1, conv2, fc1, fc2
    assert len(results.norms) == sum(replicates.values()) * n_sets * cnn_layers
    last_layer_only = sum(replicates.values()) - settings.replicates  # every layer for the main model, else the last
    assert len(results.projection) == (settings.replicates * (cnn_layers - 1) + last_layer_only) * n_sets * len(
        settings.energies
    )
    assert results.norms["ratio"].notna().all() and (results.projection["ratio"].between(0, 1 + 1e-9)).all()
    assert set(results.fgsm["set"]) == {"clean", "random sign", "adversarial"}
    assert sorted(results.fgsm["replicate"].unique()) == list(range(settings.replicates))
    assert len(results.nll) == settings.replicates * (1 + 5 * len(settings.nll_shifts))
    assert len(results.sets) == sum(replicates.values()) * n_sets
    assert mechanism.summary(results).notna().all().all()
    for name in (
        "plot_mechanism",
        "plot_shrinkage_and_distance",
        "plot_norm_variants",
        "plot_constants_by_layer",
        "plot_k_sensitivity",
        "plot_fgsm",
        "plot_nll",
        "plot_stable_rank",
        "plot_feature_collapse",
        "plot_bias",
    ):
        fig = getattr(figures, name)(results)
        plots = [ax for ax in fig.axes if ax.has_data() and not hasattr(ax, "_colorbar")]
        assert plots and all(ax.get_xlabel() and ax.get_ylabel() for ax in plots), name
    assert (ex.run.out_dir / "metrics.json").exists() and set(ex.table().index) == set(claims)
    assert set(claims) == {spec.id for spec in mechanism.SPECS}  # every claim, at every profile


def test_smoke_claims_carry_the_schema(smoke):
    """Every claim is evidence with a justified threshold and an account of its uncertainty: a prediction interval
    over the models' replicates, the simulation's seeds (one at smoke: no interval, said so) or the output-bias
    runs; A12a's OOD scores take no replicate (zero width). The jackknife's statistics are the claims' own values.
    No verdict is asserted: at smoke it would test the machine's floating-point order, not the science (the
    statistics are tested on hand-made inputs above, the cpu verdicts below)."""
    ex, claims = smoke
    settings, results = ex.settings, ex.results
    for c in claims.values():
        assert c.kind in KINDS and c.why and c.uncertainty and c.fingerprint and pd.notna(c.value), c
        assert not re.search(r"\{[a-z_]+(:[^}]*)?\}", c.statement + c.statistic + c.why + c.dissertation), c
        if c.interval is None:
            assert c.uncertainty.startswith("no interval"), c
        else:
            assert c.interval[0] - 1e-9 <= c.value <= c.interval[1] + 1e-9, c
    assert {c.kind for c in claims.values()} == {"evidence"}
    assert settings.theory.replicates == 1
    for cid in ("A13a", "A13b", "A13c", "A13d"):
        assert claims[cid].interval is None and "single simulation seed" in claims[cid].uncertainty, claims[cid]
    assert "zero width" in claims["A12a"].uncertainty and claims["A12a"].interval == (claims["A12a"].value,) * 2
    assert f"{len(results.theory.bias.final)} new independent output-bias runs" in claims["A13e"].uncertainty
    assert f"{settings.replicates} new independent replicates" in claims["A8b"].uncertainty
    assert "replicates per model" in claims["A11a"].uncertainty  # the batch-norm CNN has fewer replicates at smoke
    assert "Gaussian-NLL CNN" in claims["A12e"].uncertainty and results.nll_shifts[0] in claims["A12e"].statement
    for fn in (analysis.models_statistic, analysis.counterexample_statistic, analysis.theory_statistic):
        statistic, n = fn(results)
        assert statistic(np.arange(n)) == pytest.approx(
            {k: claims[k].value for k in statistic(np.arange(n))}, nan_ok=True
        )


def test_the_chapters_own_draws_share_no_stream(smoke):
    """The imbalanced subsample (data stream) and the FGSM control's random signs and pooled subset (eval stream)
    draw from substreams of the run's streams: distinct from one another, from the streams themselves (the held-out
    split, the OOD scores) and from another replicate's."""
    ex, _ = smoke

    def draws(run):
        return [
            substream(run.stream("data"), experiment.IMBALANCED_DRAW),
            *(substream(run.stream("eval"), k) for k in (counterexamples.RANDOM_SIGNS, counterexamples.POOLED_SUBSET)),
        ]

    seeds = [*draws(ex.run), ex.run.stream("data"), ex.run.stream("eval")]
    assert len(set(seeds)) == len(seeds)
    assert not set(draws(ex.run)) & set(draws(ex.run.at(1)))


# The cpu verdicts of the run the chapter's text was checked against (seed 0), pinned only where they are firm
# ("holds" or "does not hold"): a fragile verdict's interval reaches across its threshold, so floating-point order
# alone can flip it, and those claims are listed but not pinned. A claim moving from one firm list to the other means
# the text is out of date: rerun the chapter, read the new numbers and update these lists and the prose around the
# verdict (most of its sentences are glued or generated from the run).
# A13e is not judged at cpu: its normalised margin still moves by more than 1% over the last tenth of training.
# A12d and A12e were firm when these lists were written; the cold builds of 2026-12-07 read them as fragile (A12d
# -0.943 with interval [-1, 1], A12e 1.0 with [0.325, 1]), on the same side, so they moved to FRAGILE.
REPRODUCE = {"A8a", "A12a", "A13a", "A13c"}
DO_NOT_REPRODUCE = {"A10a", "A10b", "A10c", "A11a", "A12b", "A13b"}
FRAGILE = {"A8b", "A8c", "A8d", "A9", "A11b", "A12c", "A12d", "A12e", "A13d"}  # fragile at seed 0, either side
NOT_JUDGED = {"A13e"}


@pytest.fixture(scope="module")
def cpu(tmp_path_factory):
    return _run("cpu", tmp_path_factory.mktemp("cpu"))


@pytest.mark.slow
def test_cpu_run_reports_every_claim(cpu):
    _, claims = cpu
    assert set(claims) == REPRODUCE | DO_NOT_REPRODUCE | FRAGILE | NOT_JUDGED
    assert all(claims[cid].verdict == "not judged" and "not converged" in claims[cid].note for cid in NOT_JUDGED)


@pytest.mark.slow
@pytest.mark.parametrize("cid", sorted(REPRODUCE | DO_NOT_REPRODUCE))
def test_cpu_claim(cpu, cid):
    """A firm verdict, as in the run the text describes: "holds" for REPRODUCE, "does not hold" for DO_NOT_REPRODUCE
    (at cpu scale; the chapter says why)."""
    _, claims = cpu
    assert claims[cid].verdict == ("holds" if cid in REPRODUCE else "does not hold"), claims[cid]
