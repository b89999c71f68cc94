import dataclasses

import numpy as np
import pytest

from steerlib.chapters.hallucination import unfamiliar_examples as h
from steerlib.core.cache import RunCache
from steerlib.core.profiles import get_profile


def test_bin_stats_and_rates_by_hand():
    mentions = np.array([0, 0, 5, 5, 5])
    mean, std = h.bin_stats(np.array([1.0, 3.0, 2.0, 2.0, 5.0]), mentions, (0, 5, 7))
    assert mean[:2].tolist() == [2.0, 3.0] and std[:2].tolist() == pytest.approx([1.0, np.sqrt(2.0)])
    assert np.isnan(mean[2]) and np.isnan(std[2])  # an empty bin
    rates = h.grade_rates(np.array([0, 2, 1, 1, 0]), mentions, (0, 5))
    np.testing.assert_allclose(rates, [[0.5, 0.0, 0.5], [1 / 3, 2 / 3, 0.0]])
    assert h.selective_accuracy(np.array([1, 0, 2, 2, 1])) == pytest.approx(2 / 3)
    assert h.tv_distance([0.5, 0.5, 0, 0], [0, 0.5, 0.5, 0]) == pytest.approx(0.5)
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])
    assert h.spread(probs, np.array([9, 9, 0, 0]), (0, 9)).tolist() == pytest.approx([0.0, 0.5])
    probs4 = np.eye(4)[[0, 1, 2, 3, 0, 0, 0, 0]]
    means = h.label_means(probs4, np.array([0, 1, 2, 3, 0, 1, 2, 3]), np.array([9, 9, 9, 9, 0, 0, 0, 0]), (0, 9))
    assert means.shape == (2, 4, 4)
    assert np.allclose(means[1], np.eye(4)) and np.allclose(means[0], np.eye(4)[[0, 0, 0, 0]])


def test_settings_validation():
    with pytest.raises(ValueError, match="abstain_rate"):
        h.Settings(abstain_rate=1.5)
    with pytest.raises(ValueError, match="setting"):
        get_profile(h.PROFILES, "smoke", epochs=3)
    assert get_profile(h.PROFILES, "gpu").model == "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smoke():
    cache = RunCache()  # the session's cache, shared with the notebook tests: the smoke models train once
    return h.run(get_profile(h.PROFILES, "smoke"), seed=0, device="cpu", cache=cache), cache


def test_smoke_run_claims(smoke):
    results, cache = smoke
    claims = {c.id: c for c in h.claims(results)}
    assert list(claims) == ["gate", "gate-0", "C1", "C2", "C2b", "C3", "C4", "C4b", "C5", "C5b", "C5c"]
    assert all(np.isfinite(c.value) for c in claims.values())
    for cid in ("gate", "gate-0", "C4b", "C5"):  # the smoke world is big enough for these
        assert claims[cid].holds, claims[cid]
    assert results.e1["probs_i"].shape == (len(results.e1["label"]), 4)
    assert np.allclose(results.e2["probs_R1"].sum(1), 1.0, atol=1e-5)
    assert h.run(get_profile(h.PROFILES, "smoke"), seed=0, device="cpu", cache=cache).seconds == results.seconds


def test_smoke_figures_and_summary(smoke):
    results, _ = smoke
    summary = h.summary(results)
    assert summary["bins"] == list(results.bins) and len(summary["gate_accuracy"]) == len(results.bins)
    figs = [h.plot_familiarity(results), h.plot_idk(results),
            h.plot_option_distributions({"(i)": results.e1["probs_i"]}, results.e1["label"], results.e1["mentions"],
                                        results.bins, "E1")]
    for fig in figs:
        assert all(ax.get_xlabel() or ax.get_ylabel() or ax.get_title() for ax in fig.axes)


@pytest.mark.slow
def test_cpu_profile_claims_hold(tmp_path):
    settings = get_profile(h.PROFILES, "cpu")
    results = h.run(settings, seed=0, device="cpu", cache=RunCache(tmp_path))
    claims = {c.id: c for c in h.claims(results)}
    # C3 (the spread across inputs at least halves) is not reproduced by the 2-layer model; the chapter says so.
    failed = [c for cid, c in claims.items() if cid != "C3" and not c.holds]
    assert not failed, failed
    assert claims["C3"].value < 1.0  # the spread does narrow, only by less than the claim's factor of two
    assert dataclasses.asdict(settings) == dataclasses.asdict(h.PROFILES["cpu"])


@pytest.mark.slow
def test_pretrained_model_path_with_a_subword_tokenizer(tiny_bpe_folder, tmp_path):
    """The paper profile's code path (a pretrained model from a folder, a BPE tokenizer) on a tiny random model."""
    smoke = get_profile(h.PROFILES, "smoke")
    settings = dataclasses.replace(smoke, model=str(tiny_bpe_folder), pretrain=dataclasses.replace(smoke.pretrain, steps=20),
                                   finetune=dataclasses.replace(smoke.finetune, steps=10),
                                   rl=dataclasses.replace(smoke.rl, steps=3))
    results = h.run(settings, seed=0, device="cpu", cache=RunCache(tmp_path))
    assert np.allclose(results.e1["probs_i"].sum(1), 1.0, atol=1e-5)
    assert set(np.unique(results.e3["grade_standard"])) <= {0, 1, 2}
    assert all(np.isfinite(c.value) for c in h.claims(results) if c.id != "C5c")
