"""The simplicity-bias chapter: the LMS generator (shapes, slab probabilities, margins, rotation, randomisations),
its statistics on hand-made results, bad settings, the smoke run's structure and seeding, and (slow) the cpu
verdicts."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from steerlib.book import chapter, execute
from steerlib.chapters.related.simplicity_bias import analysis, experiment
from steerlib.core.chapter import prepare
from steerlib.vision.slabs import (
    SlabData,
    margin_band,
    permute_coordinates,
    random_rotation,
    sample_slabs,
    slab_rule,
)

LMS5 = SlabData()


@pytest.fixture(scope="module")
def lms():
    return sample_slabs(LMS5, 40_000, np.random.default_rng(0))


def test_linear_coordinate_separates_the_classes_with_its_gap(lms):
    z, y = lms
    assert z.shape == (40_000, 50) and set(np.unique(y)) == {0, 1}
    lin = z[:, 0]
    assert ((lin > 0) == (y == 1)).all()
    assert np.abs(lin).min() >= 0.1 and np.abs(lin).max() <= 1.0  # nothing in the gap |z| < m


def test_slabs_have_the_authors_probabilities_and_margins(lms):
    """Slabs (side, inner, centre, inner, side) hold 1/8, 1/2, 3/4, 1/2, 1/8 of their class; with m = 0.1 and
    slab width s = 0.24 they are [-1, -0.76], [-0.56, -0.32], [-0.12, 0.12], [0.32, 0.56], [0.76, 1]."""
    z, y = lms
    assert LMS5.slab_width == pytest.approx(0.24)
    edges = [(-1.0, -0.76), (-0.56, -0.32), (-0.12, 0.12), (0.32, 0.56), (0.76, 1.0)]
    classes = (0, 1, 0, 1, 0)
    expected = (1 / 8, 1 / 2, 3 / 4, 1 / 2, 1 / 8)
    values = z[:, 1:]
    inside = np.zeros_like(values, dtype=bool)
    for (low, high), cls, p in zip(edges, classes, expected):
        here = (values >= low - 1e-12) & (values <= high + 1e-12)
        inside |= here
        assert not here[y != cls].any(), "a slab holds one class only"
        assert here[y == cls].mean() == pytest.approx(p, abs=0.01)
    assert inside.all(), "every value falls in a slab: the gaps of 2m between slabs are empty"
    assert (slab_rule(values, LMS5) == y[:, None]).all()


def test_rotation_is_orthonormal_and_randomisations_keep_marginals(lms):
    z, y = lms
    rotation = random_rotation(50, np.random.default_rng(1))
    assert np.allclose(rotation @ rotation.T, np.eye(50), atol=1e-10)
    assert np.allclose((z @ rotation) @ rotation.T, z)
    rng = np.random.default_rng(2)
    s_rand = permute_coordinates(z, LMS5.linear_coords, rng)
    assert np.array_equal(np.sort(s_rand[:, 0]), np.sort(z[:, 0])) and np.array_equal(s_rand[:, 1:], z[:, 1:])
    assert abs(((s_rand[:, 0] > 0) == (y == 1)).mean() - 0.5) < 0.02, "S no longer names the class"
    sc_rand = permute_coordinates(z, LMS5.slab_coords, rng)
    assert np.array_equal(sc_rand[:, 0], z[:, 0]) and np.array_equal(np.sort(sc_rand[:, 7]), np.sort(z[:, 7]))
    order = np.argsort(sc_rand[:, 1])  # one permutation for every slab coordinate: their rows stay together
    assert np.array_equal(sc_rand[order][:, 1:], z[np.argsort(z[:, 1])][:, 1:])
    band = margin_band(z, LMS5, rng)
    assert np.abs(band[:, 0]).max() < 0.1 and np.array_equal(band[:, 1:], z[:, 1:])


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"centre_p": 1.0}, "centre_p=1"),
        ({"centre_p": 0.0}, "centre_p=0"),
        ({"margin": 0.0}, "margin=0"),
        ({"margin": 1.0}, "margin=1"),
        ({"margin": 0.3}, "margin=0.3"),
        ({"dim": 40}, "dim=40"),
        ({"width": -1.0}, "width=-1"),
    ],
)
def test_bad_generator_parameters_are_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        SlabData(**fields)


def test_noise_coordinates_are_uniform_and_unrelated_to_the_label():
    z, y = sample_slabs(SlabData(dim=6, linear=1, slabs=2), 20_000, np.random.default_rng(3))
    noise = z[:, 3:]
    assert noise.min() >= 0 and noise.max() <= 1 and abs(noise.mean() - 0.5) < 0.01
    assert abs(noise[y == 1].mean() - noise[y == 0].mean()) < 0.02


def _results(acc_s: list[float], kl_clean: float = 0.69, kl_s: float = 0.6, abstain_band: float = 0.5):
    """Hand-made results of two members: accuracy 1 on clean and S^c-randomized sets, ``acc_s`` on S-randomized
    ones; the reward model abstains only on the margin band."""
    rows = []
    for e, a in enumerate(acc_s):
        for name in experiment.SETS:
            accuracy = {"clean": 1.0, "Sc-randomized": 1.0, "S-randomized": a, "margin-band": 0.5}[name]
            kl = {"S-randomized": kl_s, "margin-band": 0.2}.get(name, kl_clean)
            rows.append(
                dict(
                    model="ce",
                    set=name,
                    member=e,
                    accuracy=accuracy,
                    auc=accuracy,
                    distance=kl,
                    abstain=0.0,
                    reward=5 * accuracy - 4,
                )
            )
            abstain = abstain_band if name == "margin-band" else 0.0
            rows.append(
                dict(
                    model="reward",
                    set=name,
                    member=e,
                    accuracy=accuracy,
                    auc=accuracy,
                    distance=1.0,
                    abstain=abstain,
                    reward=(1 - abstain) * (5 * accuracy - 4),
                )
            )
    y = torch.tensor([0, 1, 0, 1])
    right, wrong = torch.tensor([-1.0, 1.0, -1.0, 1.0]), torch.tensor([1.0, 1.0, -1.0, -1.0])
    margins = torch.stack(
        [
            torch.stack([right, right]),
            torch.stack([right, right]),
            torch.stack([wrong, right]),
            torch.stack([right, -right]),
        ]
    )  # (sets, members, N)
    return experiment.Results(pd.DataFrame(rows), margins, y, pd.DataFrame(), pd.DataFrame(), np.ones(50))


def test_member_statistics_by_hand():
    stats = analysis.member_statistics(_results([0.5, 0.6]))
    assert stats[1]["R1a/S-randomized"] == 0.6 and stats[0]["R1a/clean"] == 1.0
    assert stats[0]["R1c"] == pytest.approx(0.6 / 0.69)
    assert stats[0]["R1d/band"] == 0.5 and stats[0]["R1d/abstain"] == 0.0
    assert stats[1]["R1d/reward"] == pytest.approx(5 * 0.6 - 4)
    assert stats[0]["R1p/reward"] == 1.0


def test_ensemble_averages_the_members_logits():
    results = _results([0.5, 0.5])
    both = analysis.ensemble_accuracy(results, np.arange(2))
    # S-randomized: member 0 is half right, member 1 all right; their mean margins (0, 1, -1, 0) name classes
    # (0, 1, 0, 0), a zero margin counting as class 0: 3 of 4 right
    assert both["S-randomized"] == 0.75 and both["clean"] == 1.0
    assert analysis.ensemble_accuracy(results, np.array([1]))["S-randomized"] == 1.0
    assert both["margin-band"] == 0.5  # margins cancel to 0 everywhere: class 0 on every point


def test_claims_join_the_specs_with_intervals():
    claims = {c.id: c for c in analysis.claims(_results([0.5, 0.6]))}
    assert [c for c in claims] == [s.id for s in analysis.SPECS]
    assert claims["R1a/S-randomized"].value == pytest.approx(0.55) and claims["R1a/S-randomized"].interval
    assert claims["R1p/data"].value == 1.0 and claims["R1p/data"].interval is None
    assert claims["R1b/S-randomized"].uncertainty.startswith("95% prediction interval")


@pytest.mark.parametrize(
    "override, error",
    [
        ({"n_train": 0}, ValueError),
        ({"replicates": 1}, ValueError),
        ({"data": "lms5"}, TypeError),
        ({"n_test": 10}, ValueError),
    ],
)
def test_bad_settings_are_refused(override, error):
    with pytest.raises(error, match=next(iter(override))):
        experiment.Settings(**override)


def test_smoke_run_judges_every_claim_and_is_deterministic(tmp_path):
    ex = execute("simplicity-bias", "smoke", seed=0, out_dir=tmp_path)
    assert [c.id for c in ex.claims] == [s.id for s in analysis.SPECS]
    assert (tmp_path / "metrics.json").is_file()
    table = ex.results.table
    members = ex.settings.replicates
    assert len(table) == 2 * len(experiment.SETS) * members
    assert set(ex.results.curves["epoch"]) == set(range(1, ex.settings.train.epochs + 1))
    assert ex.results.margins.shape == (len(experiment.SETS), members, ex.settings.n_test)
    ce = table[(table["model"] == "ce") & (table["set"] == "clean")]
    assert ce["accuracy"].nunique() == members, "each member draws its own initialisation"
    again = execute("simplicity-bias", "smoke", seed=0, out_dir=tmp_path / "again", cache=False)
    pd.testing.assert_frame_equal(again.results.table, table)
    other = execute("simplicity-bias", "smoke", seed=1, out_dir=tmp_path / "other", cache=False)
    assert not other.results.table.equals(table), "another seed, other data and models"


def test_smoke_sets_are_the_four_shifts_of_one_test_split(tmp_path):
    ch_settings = dataclasses.replace(experiment.PROFILES["smoke"], n_train=256, n_test=500)
    run, _ = prepare(chapter("simplicity-bias"), "smoke", 0, cache=False, out_dir=tmp_path)
    sets = experiment.make_sets(ch_settings, run)
    assert sets.rule_accuracy.shape == (50,) and (sets.rule_accuracy == 1.0).all()
    assert all(x.shape == (500, 1, 50) for x in sets.x.values())
    assert not torch.equal(sets.x["clean"], sets.x["S-randomized"])
    sorted_norms = {k: torch.sort(v.norm(dim=-1).flatten()).values for k, v in sets.x.items()}
    assert not torch.allclose(sorted_norms["clean"], sorted_norms["margin-band"])


@pytest.mark.slow
def test_cpu_claims(tmp_path):
    """The verdicts of seed 0, where every claim holds firmly (as at seeds 271828 and 314159, 2026-12-07)."""
    ex = execute("simplicity-bias", "cpu", seed=0, out_dir=tmp_path)
    assert all(c.verdict == "holds" for c in ex.claims), ex.table()
