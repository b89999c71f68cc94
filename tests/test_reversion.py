"""The reversion chapter: its helpers on hand-made tables, and its claims on the smoke and cpu profiles."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from steerlib.book import execute
from steerlib.chapters.extrapolation import reversion
from steerlib.chapters.extrapolation.reversion import analysis, figures
from steerlib.core.claims import KINDS

matplotlib.use("Agg")


def _table(clean, **shifted):
    """A one-replicate results table: the clean distance, then each shift's distances at levels 1, 2, ..."""

    def row(shift, level, d):
        return {
            "dataset": "toy",
            "loss": "ce",
            "shift": shift,
            "level": level,
            "severity": float(level),
            "replicate": 0,
            "ood_score": 0.5 + 0.1 * level,
            "accuracy": 1.0,
            "distance": d,
            "entropy": -d,
        }

    rows = [row("none", 0, clean)]
    rows += [row(shift, level, d) for shift, ds in shifted.items() for level, d in enumerate(ds, start=1)]
    return pd.DataFrame(rows)


def test_curves_put_the_clean_set_at_level_zero_of_every_shift():
    t = _table(2.0, rotate=[1.5, 1.0], noise=[1.9, 1.8])
    c = reversion.curves(t)
    assert set(c["shift"]) == {"rotate", "noise"}
    for _, g in c.groupby("shift"):
        assert g.loc[g["level"] == 0, ("distance", "mean")].item() == 2.0


def test_claims_read_the_direction_of_the_trend():
    falling = _table(2.0, rotate=[1.5, 1.0], noise=[1.9, 1.8])
    rising = _table(1.0, rotate=[1.5, 2.0], noise=[1.1, 1.2])
    a2 = {c.id: c for c in reversion.claims(reversion.Results(falling, {}))}["A2/toy"]
    assert a2.value == pytest.approx(-1.0) and a2.holds
    a2 = {c.id: c for c in reversion.claims(reversion.Results(rising, {}))}["A2/toy"]
    assert a2.value == pytest.approx(1.0) and not a2.holds


def test_the_spread_of_predictions_is_their_mean_kl_to_their_mean_and_a2b_reads_its_fall():
    from steerlib.chapters.extrapolation.reversion.experiment import _summaries
    from steerlib.vision.losses import make_loss

    ce = make_loss("ce", 2)
    apart = torch.tensor([[[20.0, -20.0], [-20.0, 20.0]]])  # one member, two inputs: opposite certain predictions
    alike = torch.zeros(1, 2, 2)
    assert _summaries(ce, apart, torch.tensor([0.5, 0.5]))["spread"] == pytest.approx([np.log(2)], abs=1e-6)
    assert _summaries(ce, alike, torch.tensor([0.5, 0.5]))["spread"] == pytest.approx([0.0])
    t = _table(2.0, rotate=[1.5, 1.0], noise=[1.9, 1.8])
    t["spread"] = t["distance"]  # falling along both shifts
    a2b = {c.id: c for c in reversion.claims(reversion.Results(t, {}))}["A2b/toy"]
    assert a2b.value == pytest.approx(-1.0) and a2b.holds


def _replicated_table(spread: float, n: int = 5) -> pd.DataFrame:
    """Falling distance curves (two shifts, five levels) for ``n`` replicates that differ by N(0, spread^2) noise."""
    rng = np.random.default_rng(0)
    tables = []
    for replicate in range(n):
        d = rng.normal(0, spread, 11)
        t = _table(
            2.0 + d[0], rotate=list(np.linspace(1.8, 1.0, 5) + d[1:6]), noise=list(np.linspace(1.9, 1.5, 5) + d[6:])
        )
        tables.append(t.assign(replicate=replicate))
    return pd.concat(tables, ignore_index=True)


def _check_schema(claims):
    """Every claim has a kind, a justified threshold, and an interval with a stated method (or zero-width reason)."""
    for c in claims:
        assert c.kind in KINDS and c.why and c.uncertainty and c.fingerprint, c
        assert c.interval is not None and c.interval[0] <= c.interval[1], c
        if c.interval[0] == c.interval[1]:
            assert c.interval[0] == pytest.approx(c.value, abs=1e-9), f"{c.id}: a zero-width interval off its value"


def test_claims_carry_the_schema_and_an_interval_over_replicates():
    """The interval is a prediction interval over replicates: replicates that agree give (almost) none, replicates
    that disagree a wide one; the OOD score's claims are prerequisites with a zero-width interval, since no replicate
    enters the score."""
    agree = {c.id: c for c in reversion.claims(reversion.Results(_replicated_table(0.0), {}))}
    disagree = {c.id: c for c in reversion.claims(reversion.Results(_replicated_table(0.4), {}))}
    for claims in (agree, disagree):
        _check_schema(claims.values())
        assert {c.id for c in claims.values() if c.kind == "prerequisite"} == {
            "A0a/toy",
            "A0b/toy/rotate",
            "A0b/toy/noise",
            "A1/toy",
            "A1b/toy",
        }
        for cid in ("A1/toy", "A1b/toy"):
            assert claims[cid].interval == (claims[cid].value, claims[cid].value)
            assert "zero width" in claims[cid].uncertainty
        a2 = claims["A2/toy"]
        assert a2.interval[0] - 1e-9 <= a2.value <= a2.interval[1] + 1e-9, a2
        assert "5 new independent replicates" in a2.uncertainty
    assert agree["A2/toy"].value == pytest.approx(-1.0) and agree["A2/toy"].interval == pytest.approx((-1.0, -1.0))
    width = {
        k: c["A2/toy"].interval[1] - c["A2/toy"].interval[0] for k, c in (("agree", agree), ("disagree", disagree))
    }
    assert width["disagree"] > 0.2 > width["agree"], width


def test_the_jackknife_recomputes_the_claims_statistic():
    """With every replicate in the draw, the statistic gives the claims' values; one replicate gives no interval."""
    t = _replicated_table(0.4)
    statistic, n = analysis.trend_statistic(t)
    values = analysis.statistics(t)
    assert n == 5
    for cid, v in statistic(np.arange(n)).items():
        assert v == pytest.approx(values[cid].value, abs=1e-12), cid
    one = {c.id: c for c in reversion.claims(reversion.Results(t[t["replicate"] == 3], {}))}
    assert one["A2/toy"].interval is None and "single replicate" in one["A2/toy"].uncertainty


def test_claims_are_judged_per_shift_as_well_as_on_average():
    """A shift that moves away from the OCS fails its own claim while the average over shifts can still hold."""
    claims = {
        c.id: c
        for c in reversion.claims(
            reversion.Results(
                _table(
                    2.0,
                    rotate=[1.5, 1.0, 0.8, 0.6, 0.5],
                    noise=[2.1, 2.2, 2.3, 2.4, 2.5],
                    blur=[1.9, 1.7, 1.5, 1.2, 1.0],
                ),
                {},
            )
        )
    }
    assert claims["A2/toy/rotate"].value == pytest.approx(-1.0) and claims["A2/toy/rotate"].holds
    assert claims["A2/toy/noise"].value == pytest.approx(1.0) and not claims["A2/toy/noise"].holds
    assert claims["A2/toy"].value == pytest.approx(-1 / 3) and not claims["A2/toy"].holds


def test_accuracy_prerequisites_read_the_clean_accuracy_and_the_ladder_cost():
    """A0a is the CE model's clean accuracy; A0b the share of it lost at the strongest level, per shift."""
    t = _table(2.0, rotate=[1.5, 1.0], noise=[1.9, 1.8])
    t.loc[t["shift"] == "rotate", "accuracy"] = [0.9, 0.5]
    t.loc[t["shift"] == "noise", "accuracy"] = [0.95, 0.8]
    t.loc[t["shift"] == "none", "accuracy"] = 0.96
    claims = {c.id: c for c in reversion.claims(reversion.Results(t, {}))}
    assert claims["A0a/toy"].value == pytest.approx(0.96) and claims["A0a/toy"].holds  # default bar 0.9
    assert claims["A0b/toy/rotate"].value == pytest.approx(1 - 0.5 / 0.96) and claims["A0b/toy/rotate"].holds
    assert claims["A0b/toy/noise"].value == pytest.approx(1 - 0.8 / 0.96) and not claims["A0b/toy/noise"].holds


def test_settings_reject_unknown_names():
    with pytest.raises(ValueError, match=r"datasets\[\d\]='imagenet'"):
        reversion.Settings(datasets=("imagenet",))
    with pytest.raises(ValueError, match=r"shifts\[\d\]='fog'"):
        reversion.Settings(shifts=("fog",))


def _run(profile, tmp_path):
    ex = execute("reversion", profile, out_dir=tmp_path)
    return ex, {c.id: c for c in ex.claims}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return _run("smoke", tmp_path_factory.mktemp("smoke"))


def test_smoke_run_produces_every_set_and_figure(smoke):
    ex, claims = smoke
    t, settings = ex.results.table, ex.settings
    n_sets = 1 + 5 * len(settings.shifts)
    assert len(t) == len(settings.datasets) * len(settings.losses) * n_sets * settings.replicates
    assert t["distance"].notna().all()
    for fig in (figures.plot_reversion(ex.results), figures.plot_focus(ex.results, "digits", "rotate", settings)):
        assert all(ax.get_xlabel() for ax in fig.axes if ax.has_data())
    assert (ex.run.out_dir / "metrics.json").exists() and set(ex.table().index) == set(claims)


def test_the_static_slider_holds_a_frame_per_shift_and_level(smoke):
    ex, _ = smoke
    page = figures.focus_slider(ex.results, "digits", ex.settings).data
    assert page.count("data:image/png;base64,") == 1 + len(ex.settings.shifts) * 6  # the first frame shown, then all
    assert all(f'<option value="{shift}">' in page for shift in ex.settings.shifts)


def test_smoke_claims_carry_the_schema(smoke):
    """Every claim has a kind, a why and an interval that holds its value (the smoke profile's two replicates); the
    jackknife's statistic is the claims' own. No verdict is asserted: at smoke it would test the machine's
    floating-point order, not the science (the cpu verdicts are the slow tests below)."""
    ex, claims = smoke
    _check_schema(claims.values())
    for c in claims.values():
        assert c.interval[0] - 1e-9 <= c.value <= c.interval[1] + 1e-9, c
    statistic, n = analysis.trend_statistic(ex.results.table)
    assert n == ex.settings.replicates
    assert statistic(np.arange(n)) == pytest.approx(
        {k: v.value for k, v in analysis.statistics(ex.results.table).items() if not k.startswith("A1")}, nan_ok=True
    )
    assert set(ex.settings.shifts) <= set(ex.results.ladders["digits"])  # every shift's ladder is fixed


# The cpu verdicts of the run at seed 0 that the chapter's text describes, pinned only where the verdict is firm
# ("holds" or "does not hold": the interval and every gating prerequisite on one side of the threshold). A fragile
# verdict can flip with the floating-point order, so it is pinned on neither side: here every mnist1d evidence claim
# (its clean accuracy, A0a/mnist1d, holds only fragilely: one replicate reaches 0.79 against a bar of 0.8), every
# MNIST-5k claim on the additive-noise and salt-and-pepper ladders and every MNIST-5k mean over the shifts (their
# A0b hold only fragilely), and the fragile prerequisites themselves. A claim moving from one set to the other means
# the text is out of date: rerun the chapter, read the new numbers and update both.
HOLD = {
    "A0a/mnist5k",
    "A0b/mnist5k/rotate",
    "A0b/mnist5k/blur",
    *(f"A0b/mnist1d/{s}" for s in ("rotate", "noise", "blur", "saltpepper")),
    *(f"{p}/{d}" for p in ("A1", "A1b") for d in ("mnist5k", "mnist1d")),
    *(f"{c}/mnist5k/{s}" for c in ("A2", "A3", "A4a") for s in ("rotate", "blur")),
    "A4b/mnist5k/blur",
    "A4c/mnist5k/blur",
    "A5/mnist5k/rotate",
}
DO_NOT_HOLD = {
    "A4b/mnist5k/rotate",
    "A4c/mnist5k/rotate",
    "A5/mnist5k/blur",
}


@pytest.fixture(scope="module")
def cpu(tmp_path_factory):
    return _run("cpu", tmp_path_factory.mktemp("cpu"))


@pytest.mark.slow
def test_cpu_verdicts(cpu):
    """At the cpu profile, on MNIST-5k's rotation and blur ladders (whose prerequisites hold firmly), the
    cross-entropy CNN reverts to the label marginal (A2, A3) and the slant regressor's sigma widens (A4a); under blur
    the regressor's mean and KL approach its OCS too (A4b, A4c), and under rotation the reward model's distance falls
    (A5). Rotation, which changes the slant itself, moves the regressor away from its OCS (A4b, A4c), and blur turns
    the reward model back after its first level (A5). The firm prerequisites hold."""
    _, claims = cpu
    held = {cid for cid, c in claims.items() if c.holds}
    assert HOLD <= held, sorted(HOLD - held)
    assert not DO_NOT_HOLD & held, sorted(DO_NOT_HOLD & held)
    assert all(claims[cid].judged for cid in DO_NOT_HOLD)


@pytest.mark.slow
def test_cpu_salt_and_pepper_moves_mnist1d_away_from_the_ocs_while_blur_moves_it_towards(cpu):
    """rho(OOD score, distance to the OCS) per curve: > 0.5 for every loss under salt-and-pepper noise, < -0.5 for
    the classifier and the regressor under blur. Their claims' verdicts are fragile only through A0a/mnist1d: each
    value is +1 or -1 with a zero-width interval at seed 0."""
    ex, _ = cpu
    rho = reversion.rank_table(ex.results.table).loc["mnist1d"]
    assert (rho["saltpepper"] > 0.5).all(), rho
    assert (rho.loc[["ce", "gaussian_nll"], "blur"] < -0.5).all(), rho
