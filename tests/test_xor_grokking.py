"""The XOR-grokking chapter: the XOR cluster generator and the network (means, flips, norms, the signal share in
closed form), its statistics on hand-made results, bad settings, the smoke run's structure and seeding, and (slow)
the cpu verdicts."""

import numpy as np
import pandas as pd
import pytest
import torch

from steerlib.book import execute
from steerlib.chapters.related.xor_grokking import analysis, experiment
from steerlib.vision.xor import TwoLayerReLU, XorClusters, check_means, sample_xor, signal_share, xor_means


def test_means_are_orthogonal_with_the_stated_norm():
    means = xor_means(XorClusters(d=300, mu_norm=7.0), np.random.default_rng(0))
    assert means.shape == (2, 300)
    assert np.allclose(np.linalg.norm(means, axis=1), 7.0) and abs(means[0] @ means[1]) < 1e-9


def test_sample_flips_exactly_the_stated_share_and_keeps_the_xor_structure():
    means = xor_means(XorClusters(d=50, mu_norm=20.0), np.random.default_rng(1))
    x, clean, noisy = sample_xor(means, 400, 0.1, np.random.default_rng(2))
    assert x.shape == (400, 50) and set(np.unique(clean)) == {-1.0, 1.0}
    assert (clean != noisy).sum() == 40
    proj = np.abs(x @ means.T)  # the Bayes rule: the larger |<x, mu_k>| names the cluster
    assert (np.where(proj[:, 0] > proj[:, 1], 1.0, -1.0) == clean).mean() > 0.99
    on_mu1 = clean == 1
    signs = np.sign(x[on_mu1] @ means[0])
    assert abs(signs.mean()) < 0.2, "+mu_1 and -mu_1 are equally likely: no linear rule separates the classes"
    _, clean_test, noisy_test = sample_xor(means, 100, 0.0, np.random.default_rng(3))
    assert (clean_test == noisy_test).all()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: XorClusters(flip=0.5), "flip=0.5"),
        (lambda: XorClusters(flip=-0.1), "flip=-0.1"),
        (lambda: XorClusters(mu_norm=0.0), "mu_norm=0"),
        (lambda: XorClusters(d=1), "d=1"),
        (lambda: check_means(np.array([[1.0, 1.0], [1.0, 0.0]])), "not orthogonal"),
        (lambda: check_means(np.array([[1.0, 0.0], [0.0, 0.0]])), "zero mean"),
        (lambda: check_means(np.array([[1.0, 0.0], [0.0, 2.0]])), "norms"),
        (lambda: sample_xor(np.eye(2), 10, 0.6, np.random.default_rng(0)), "flip=0.6"),
    ],
)
def test_bad_data_parameters_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_network_and_signal_share_by_hand():
    torch.manual_seed(0)
    net = TwoLayerReLU(d=3, width=4, init=1.0)
    assert torch.equal(net.a, torch.tensor([0.5, 0.5, -0.5, -0.5]))
    with torch.no_grad():
        net.w.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]))
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert net(x).item() == pytest.approx(0.5 * 1 + 0.5 * 2 - 0.5 * 3 - 0.5 * 3)
    means = torch.tensor([[2.0, 0, 0], [0, 3.0, 0]])
    # squared norm 5 in total, of which rows put 1 + 1 + 0 + 2 = 4 in span(e1, e2)
    assert signal_share(net.w, means).item() == pytest.approx(4 / 5)


def test_checkpoints_are_log_spaced():
    assert experiment.checkpoints(100) == (0, 1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100)
    assert experiment.checkpoints(12) == (0, 1, 2, 3, 5, 7, 10, 12)


def _results(test_end: list[float], share_end: float = 0.5) -> experiment.Results:
    """Hand-made results: two replicates at one grid point and step size 1e-12, three checkpoints (0, 1, 10)."""
    rows = []
    for r, end in enumerate(test_end):
        for step, test, share in ((0, 0.5, 0.001), (1, 0.5, 0.05), (10, end, share_end)):
            rows.append(
                dict(
                    d=100,
                    signal=6.25,
                    step_size=1e-12,
                    replicate=r,
                    step=step,
                    clean=1.0 if step else 0.5,
                    flipped=1.0 if step else 0.4,
                    test=test,
                    share=share,
                    loss=0.69,
                )
            )
    n, c = 4, 3
    sampled = torch.full((2, c, n), 0.5)
    perplexity = torch.full((2, c, n), 2.0 - 1e-9, dtype=torch.float64)
    tests = torch.tensor([[0.5, 0.5, e] for e in test_end], dtype=torch.float64)
    examples = {"1e-12": {"sampled": sampled, "argmax": torch.ones(2, c, n), "perplexity": perplexity, "test": tests}}
    bayes = pd.DataFrame([dict(d=100, signal=6.25, replicate=r, bayes=1.0) for r in range(2)])
    return experiment.Results(pd.DataFrame(rows), examples, bayes, (100, 6.25, 1e-12), (1e-12,))


def test_statistics_by_hand():
    stats = analysis.replicate_statistics(_results([0.9, 1.0]))
    assert stats[0]["R6a/test"] == 0.5 and stats[1]["R6b/test"] == 1.0
    assert stats[0]["R6b/gain"] == pytest.approx(0.4) and stats[0]["R6c"] == pytest.approx(10.0)
    # sampled accuracy 0.5 throughout, test 0.5, 0.5, 0.9: R^2 = 1 - 0.16 / (2 * (0.4/3)^2 + (0.8/3)^2)
    spread = 2 * (0.4 / 3) ** 2 + (0.8 / 3) ** 2
    assert stats[0]["R6d/1e-12"] == pytest.approx(1 - 0.16 / spread)


def test_claims_follow_the_specs():
    claims = {c.id: c for c in analysis.claims(_results([0.9, 1.0]))}
    assert list(claims) == ["R6p/bayes", *[s.id for s in analysis.SPECS[1:-1]], "R6d/1e-12"]
    assert claims["R6b/test"].value == pytest.approx(0.95) and claims["R6b/test"].interval is not None
    assert claims["R6d/1e-12"].verdict == "holds"


@pytest.mark.parametrize(
    "override, error",
    [
        ({"flip": 0.5}, ValueError),
        ({"dims": ()}, ValueError),
        ({"step_sizes": (0.0,)}, ValueError),
        ({"replicates": 1}, ValueError),
        ({"n": 5}, ValueError),
    ],
)
def test_bad_settings_are_refused(override, error):
    with pytest.raises(error, match=next(iter(override))):
        experiment.Settings(**override)


def test_smoke_run_records_every_grid_point_and_is_deterministic(tmp_path):
    ex = execute("xor-grokking", "smoke", seed=0, out_dir=tmp_path)
    s = ex.settings
    assert [c.id for c in ex.claims] == ["R6p/bayes", *[x.id for x in analysis.SPECS[1:-1]], "R6d/1e-12", "R6d/0.001"]
    curves = ex.results.curves
    assert len(curves) == len(s.dims) * len(s.signal) * len(s.step_sizes) * s.replicates * len(
        experiment.checkpoints(s.steps)
    )
    e = ex.results.examples["1e-12"]
    assert e["sampled"].shape == (s.replicates, len(experiment.checkpoints(s.steps)), s.n)
    assert (e["perplexity"] >= 1).all() and (e["perplexity"] <= 2.0 + 1e-9).any()
    first = curves[(curves["step"] == 1) & (curves["d"] == max(s.dims))]
    assert first.groupby("replicate")["test"].first().nunique() == s.replicates, "each replicate draws its own data"
    again = execute("xor-grokking", "smoke", seed=0, out_dir=tmp_path / "again", cache=False)
    pd.testing.assert_frame_equal(again.results.curves, curves)


@pytest.mark.slow
def test_cpu_claims(tmp_path):
    """At seed 0 every claim holds; at seeds 271828 and 314159 (2026-12-07) every claim held but R6b/flipped at
    271828 (0.98, fragile: one replicate let go of one flipped label). So: no claim fails firmly, and the first
    phase (R6a) and the registered failure at the paper's step size (R6d/1e-12) hold."""
    ex = execute("xor-grokking", "cpu", seed=0, out_dir=tmp_path)
    assert not [c.id for c in ex.claims if c.verdict in ("does not hold", "not judged")], ex.table()
    assert all(ex.claim(cid).holds for cid in ("R6a/clean", "R6a/flipped", "R6a/test", "R6d/1e-12")), ex.table()
