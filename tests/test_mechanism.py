"""The mechanism chapter: its helpers on hand-made tables, and its claims at the smoke and cpu profiles."""
import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from steerlib.chapters.extrapolation import mechanism
from steerlib.chapters.extrapolation.mechanism import analysis, experiment, figures
from steerlib.core import chapter
from steerlib.core.cache import RunCache
from steerlib.core.claims import KINDS
from steerlib.core.profiles import get_profile
from steerlib.measures.homogeneous import BiasRuns, SimConfig, Simulation, simulate
from steerlib.measures.statistics import percentile_interval, seed_bootstrap
from steerlib.vision.data import load_dataset

matplotlib.use("Agg")


def test_settings_reject_unknown_names_and_a_wrong_main_model():
    with pytest.raises(ValueError, match=r"shifts\[\d\]='fog'"):
        mechanism.Settings(shifts=("fog",))
    with pytest.raises(ValueError, match="first arch"):
        mechanism.Settings(archs=("mlp", "cnn"))
    with pytest.raises(ValueError, match="energy=1.5"):
        mechanism.Settings(energy=1.5)


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
        rows.append({"model": "m", "seed": 0, "shift": "none", "level": 0, "layer": f"l{d}", "depth": d,
                     "ratio": 1.0})
    for shift, levels in ratios_by_shift.items():
        for level, ratios in enumerate(levels, start=1):
            rows += [{"model": "m", "seed": 0, "shift": shift, "level": level, "layer": f"l{d}", "depth": d,
                      "ratio": r} for d, r in enumerate(ratios)]
    return pd.DataFrame(rows)


def toy_results(norms: pd.DataFrame = pd.DataFrame(), constants: pd.DataFrame = pd.DataFrame(),
                projection: pd.DataFrame = pd.DataFrame(), sets: pd.DataFrame = pd.DataFrame()) -> mechanism.Results:
    """Results holding only the given tables, with the default settings' fields."""
    s, empty = mechanism.Settings(), pd.DataFrame()
    return mechanism.Results(norms=norms, projection=projection, constants=constants, sets=sets, vectors={}, fgsm=empty,
                             nll=empty, nll_ocs=(0.0, 1.0), nll_constants=torch.zeros(1, 2), theory=None,
                             theory_depths=s.theory.depths, theory_angles=s.theory.angles, archs=s.archs,
                             normalisations=s.norms, shifts=s.shifts, nll_shifts=s.nll_shifts, energy=s.energy,
                             energies=s.energies)


def test_norm_statistics_read_level_and_depth_trends():
    falling = toy_results(norms_table({"noise": [[1.0, 0.9, 0.8], [1.0, 0.7, 0.5]],
                                       "rotate": [[1.0, 0.95, 0.9], [1.1, 0.8, 0.6]]}))
    c = analysis.norm_curves(falling, "m")
    assert set(c["shift"]) == {"noise", "rotate"} and len(c) == 6  # the clean level joins every shift
    assert analysis.mean_rho(c) == pytest.approx(-1.0)
    assert analysis.depth_rho(falling, "m") == pytest.approx(-1.0)
    rising = toy_results(norms_table({"noise": [[1.0, 1.1, 1.2], [1.0, 1.3, 1.5]]}))
    assert analysis.mean_rho(analysis.norm_curves(rising, "m")) == pytest.approx(1.0)
    assert analysis.depth_rho(rising, "m") == pytest.approx(1.0)


def seeded_model(spread: float, n_seeds: int = 4) -> mechanism.Results:
    """One model "m" (three layers, two shifts at five levels) measured on ``n_seeds`` seeds whose norm ratios,
    projection ratios, distances and constants differ by N(0, spread^2) noise (relative for the distances)."""
    rng = np.random.default_rng(0)
    sets = [("none", 0)] + [(shift, level) for shift in ("noise", "rotate") for level in range(1, 6)]
    norms, projection, sets_rows, constants = [], [], [], []
    for seed in range(n_seeds):
        for shift, level in sets:
            tags = {"model": "m", "seed": seed, "shift": shift, "level": level}
            ratios = [1.0 - 0.1 * level * depth + rng.normal(0, spread) for depth in range(3)]
            norms += [{**tags, "layer": f"l{d}", "depth": d, "ratio": r} for d, r in enumerate(ratios)]
            projection.append({**tags, "layer": "l2", "energy": mechanism.Settings().energy, "k": 3, "std": 0.1,
                               "ratio": 0.9 - 0.1 * level + rng.normal(0, spread)})
            sets_rows.append({**tags, "to_ocs": 1.0, "to_constants": ratios[-1] * (1 + rng.normal(0, spread)),
                              "to_hidden_constants": ratios[1] * (1 + rng.normal(0, spread))})
        constants += [{"model": "m", "loss": "ce", "seed": seed, "layer": f"l{d}",
                       "distance": 0.1 * (1 + abs(rng.normal(0, spread))), "clean_distance": 2.0,
                       "uniform_distance": 0.5} for d in range(3)]
    return toy_results(pd.DataFrame(norms), pd.DataFrame(constants), pd.DataFrame(projection), pd.DataFrame(sets_rows))


def test_the_bootstrap_recomputes_each_models_statistics():
    """With every seed drawn once, :func:`analysis.model_statistic` gives what the claims compute from the tables."""
    r = seeded_model(0.2)
    statistic, n = analysis.model_statistic(r, "m")
    assert n == 4
    expected = {"top": analysis.top_level(r, "m"), "norm_rho": analysis.mean_rho(analysis.norm_curves(r, "m")),
                "depth_rho": analysis.depth_rho(r, "m"), "link_rho": analysis.link_rho(r, "m"),
                "proj_rho": analysis.mean_rho(analysis.projection_curves(r, "m")),
                "constants": analysis.constants_ratio(r, "m"),
                "constants_uniform": analysis.constants_ratio(r, "m", "uniform_distance")}
    assert statistic(np.arange(n)) == pytest.approx(expected, abs=1e-12)


def test_intervals_are_over_seeds():
    """Seeds that agree give a zero-width interval, seeds that disagree a wider one, and it holds the value."""
    widths = {}
    for spread in (0.0, 0.1):
        r = seeded_model(spread)
        reps = seed_bootstrap(*analysis.model_statistic(r, "m"))
        low, high = percentile_interval(reps["top"])
        assert low - 1e-9 <= analysis.top_level(r, "m") <= high + 1e-9
        widths[spread] = high - low
    assert widths[0.0] == pytest.approx(0.0, abs=1e-12) and widths[0.1] > 0.02, widths


def test_constants_ratio_uses_the_last_layer():
    consts = pd.DataFrame([{"model": "m", "seed": s, "layer": layer, "distance": d, "clean_distance": 2.0,
                            "uniform_distance": 0.5}
                           for s in (0, 1) for layer, d in (("fc1", 5.0), ("fc2", 0.1 * (s + 1)))])
    r = toy_results(constants=consts)
    assert analysis.constants_ratio(r, "m") == pytest.approx(0.15 / 2.0)
    assert analysis.constants_ratio(r, "m", "uniform_distance") == pytest.approx(0.15 / 0.5)


def _bias_runs(margin_trace: torch.Tensor) -> BiasRuns:
    return BiasRuns(p_pos=torch.tensor([0.7, 0.7, 0.3, 0.3]), ocs=torch.tensor([0.8, 0.8, -0.8, -0.8]),
                    final=torch.tensor([1.0, -1.0, 2.0, -0.5]), margin_label_sum=torch.tensor([2.0, -1.0, 1.0, 3.0]),
                    trace=torch.tensor([[0.0, 0.1, -1], [0.0, 0.1, -1], [0.0, -0.1, 1], [0.0, -0.1, 1]]),
                    steps=torch.arange(1, 4), checkpoints=torch.arange(10, 110, 10), margin_trace=margin_trace)


def test_bias_agreement_counts_signs():
    agree = mechanism.bias_agreement(_bias_runs(torch.ones(4, 10)))
    assert agree == {"ocs": 0.5, "margin": 0.75, "ocs_early": 1.0}
    statistic, n = analysis.bias_statistic(_bias_runs(torch.ones(4, 10)))
    assert n == 4 and statistic(np.arange(4)) == 0.75  # A13e reads the margin points' labels, not the OCS


def test_margin_change_reads_the_last_tenth_of_training():
    """Checkpoints at steps 10..100: the last tenth starts at step 90 (the 9th checkpoint)."""
    trace = torch.ones(4, 10)
    trace[0, 9] = 1.02  # moved 2% between steps 90 and 100
    trace[1, :8] = 0.5  # moved before step 90 only
    change = _bias_runs(trace).margin_change()
    assert change == pytest.approx(torch.tensor([0.02 / 1.02, 0.0, 0.0, 0.0]))


def test_the_cached_simulation_comes_back_as_a_simulation(tmp_path):
    """The run cache stores plain data; the chapter reads the theory back as the dataclass its analysis expects."""
    cfg = SimConfig(depths=(3, 4), width=8, dim=4, n_train=40, n_test=30, n_seeds=1, steps=5, angles=(0, 90),
                    bias_seeds=1)
    cache = RunCache(tmp_path)
    fresh = cache.cached("homogeneous", {"sim": cfg}, lambda: simulate(cfg), as_type=Simulation)
    loaded = cache.load("homogeneous", {"sim": cfg}, as_type=Simulation)
    assert isinstance(loaded, Simulation) and isinstance(loaded.bias, BiasRuns)
    assert loaded.init_stable_rank == fresh.init_stable_rank
    assert torch.equal(loaded.norm_ratio, fresh.norm_ratio) and torch.equal(loaded.bias.trace, fresh.bias.trace)


def _run(profile, tmp_path):
    run = chapter.start("mechanism", profile, out_dir=tmp_path)
    settings = get_profile(mechanism.PROFILES, run.profile)
    results = mechanism.run(settings, run)
    return run, settings, results, {c.id: c for c in mechanism.claims(results)}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return _run("smoke", tmp_path_factory.mktemp("smoke"))


def test_smoke_run_measures_every_model_set_and_layer(smoke):
    run, settings, results, claims = smoke
    n_sets = 1 + 5 * len(settings.shifts)
    specs = experiment.model_specs(settings)
    seeds = {s.name: settings.n_seeds if s.norm == "none" and not s.imbalanced else settings.extra_seeds
             for s in specs}
    cnn_layers = 5  # input, conv1, conv2, fc1, fc2
    assert len(results.norms) == sum(seeds.values()) * n_sets * cnn_layers
    last_layer_only = sum(seeds.values()) - settings.n_seeds  # every layer for the main model, else the last
    assert len(results.projection) == (settings.n_seeds * (cnn_layers - 1) + last_layer_only) * n_sets * len(
        settings.energies)
    assert results.norms["ratio"].notna().all() and (results.projection["ratio"].between(0, 1 + 1e-9)).all()
    assert set(results.fgsm["set"]) == {"clean", "random sign", "adversarial"}
    assert len(results.nll) == settings.n_seeds * (1 + 5 * len(settings.nll_shifts))
    assert all(pd.notna(c.value) for c in claims.values()), claims
    assert len(results.sets) == sum(seeds.values()) * n_sets
    assert mechanism.summary(results).notna().all().all()
    for name in ("plot_mechanism", "plot_shrinkage_and_distance", "plot_norm_variants", "plot_constants_by_layer",
                 "plot_k_sensitivity", "plot_fgsm", "plot_nll", "plot_stable_rank", "plot_feature_collapse",
                 "plot_bias"):
        fig = getattr(figures, name)(results)
        plots = [ax for ax in fig.axes if ax.has_data() and not hasattr(ax, "_colorbar")]
        assert plots and all(ax.get_xlabel() and ax.get_ylabel() for ax in plots), name
    table = chapter.finish(run, settings, list(claims.values()), extra=mechanism.extra(results))
    assert (run.out_dir / "metrics.json").exists() and set(table.index) == set(claims)


def test_smoke_claims_carry_the_schema(smoke):
    """Every claim is evidence with a justified threshold and an interval that holds its value: over the models'
    seeds, the simulation's seeds (one at smoke: zero width, said so) or the output-bias runs; A12a's OOD scores
    take no seed."""
    _, settings, results, claims = smoke
    for c in claims.values():
        assert c.kind in KINDS and c.why and c.uncertainty and c.interval is not None, c
        assert c.interval[0] - 1e-9 <= c.value <= c.interval[1] + 1e-9, c
    assert {c.kind for c in claims.values()} == {"evidence"}
    assert settings.theory.n_seeds == 1
    for cid in ("A13a", "A13b", "A13c", "A13d"):
        low, high = claims[cid].interval
        assert "single simulation seed" in claims[cid].uncertainty and low == high, claims[cid]
    assert "zero width" in claims["A12a"].uncertainty
    assert f"{len(results.theory.bias.final)} output-bias runs" in claims["A13e"].uncertainty
    assert f"{settings.n_seeds} seeds" in claims["A8b"].uncertainty
    for fn in (analysis.counterexample_statistic, analysis.theory_statistic):
        statistic, n = fn(results)
        assert statistic(np.arange(n)) == pytest.approx({k: claims[k].value for k in statistic(np.arange(n))})


def test_smoke_claims_that_hold_at_any_scale(smoke):
    """A12a: iterated FGSM inputs are easy to tell from training inputs. A12e: impulse noise raises and blur lowers
    the internal feature norms of the Gaussian-NLL model. A13c: inputs turned out of the training plane have small
    features in the simulated homogeneous nets."""
    *_, claims = smoke
    for cid in ("A12a", "A12e", "A13c"):
        assert claims[cid].holds, claims[cid]


# The cpu verdict the chapter's text describes. A claim moving from one list to the other means the text is out of
# date: rerun the chapter, read the new numbers and update both.
# A13e is not judged at cpu: its normalised margin still moves by about 1% over the last tenth of training.
REPRODUCE = {"A8a", "A8c", "A12a", "A12c", "A12e", "A13a", "A13c", "A13d"}
DO_NOT_REPRODUCE = {"A8b", "A8d", "A9", "A10a", "A10b", "A10c", "A11a", "A11b", "A12b", "A12d", "A13b"}
NOT_JUDGED = {"A13e"}


@pytest.fixture(scope="module")
def cpu(tmp_path_factory):
    return _run("cpu", tmp_path_factory.mktemp("cpu"))


@pytest.mark.slow
def test_cpu_run_reports_every_claim(cpu):
    *_, claims = cpu
    assert set(claims) == REPRODUCE | DO_NOT_REPRODUCE | NOT_JUDGED
    assert all(claims[cid].verdict == "not judged" and "not converged" in claims[cid].note for cid in NOT_JUDGED)


@pytest.mark.slow
@pytest.mark.parametrize("cid", sorted(REPRODUCE) + [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason="does not reproduce at cpu scale; the chapter says "
                                                                   "why")) for c in sorted(DO_NOT_REPRODUCE)])
def test_cpu_claim(cpu, cid):
    *_, claims = cpu
    assert claims[cid].holds, claims[cid]
