"""The scale axis: the trend statistic against closed forms and hand-worked cases, the sweep's bookkeeping on fixed
points, Part I's knob, and the sweep stage of the job command."""

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from steerlib.core import scale
from steerlib.core.scale import Point, Scale, Trend, fit_trend

COMPUTE = [1e9, 1e10, 1e11, 1e12, 1e13]  # five points, one decade apart (log10: 9 .. 13)


def test_an_exact_line_gives_its_slope_with_no_width_and_its_crossing():
    values = [0.1 * (math.log10(c) - 9) for c in COMPUTE]  # 0, 0.1, ..., 0.4
    t = fit_trend("X", COMPUTE, values, [0.0] * 5, 0.7, ">")
    assert t.verdict == "towards" and t.points == 5 and t.span == pytest.approx(1e4)
    assert t.slope == pytest.approx(0.1) and t.interval == pytest.approx((0.1, 0.1))
    assert t.crossing == pytest.approx(1e16)  # 0.1 per decade from 0 at 1e9 reaches 0.7 seven decades on
    assert t.crossing_interval == pytest.approx((1e16, 1e16))


def test_a_line_past_the_threshold_within_the_points_is_an_interpolation():
    values = [0.1 * (math.log10(c) - 9) for c in COMPUTE]  # reaches 0.2 at the third point
    t = fit_trend("X", COMPUTE, values, [0.0] * 5, 0.2, ">")
    assert t.verdict == "towards" and t.crossing == pytest.approx(COMPUTE[2]) and t.crossing_at == "within the points"
    assert fit_trend("X", COMPUTE, values, [0.0] * 5, 0.7, ">").crossing_at == "extrapolated"
    assert fit_trend("X", COMPUTE, values, [0.0] * 5, -0.2, ">").crossing_at == "below the points"  # held everywhere


def test_without_point_noise_the_interval_is_the_textbook_regression_interval():
    values = [0.02, 0.15, 0.1, 0.33, 0.41]
    t = fit_trend("X", COMPUTE, values, [0.0] * 5, 0.7, ">")
    fit = stats.linregress(np.log10(COMPUTE), values)
    half = stats.t.ppf(0.975, 3) * fit.stderr
    assert t.slope == pytest.approx(fit.slope)
    assert t.interval == pytest.approx((fit.slope - half, fit.slope + half))


def test_noisy_points_on_a_line_take_their_own_noise_as_the_standard_error():
    values = [0.1 * i for i in range(5)]
    se = 0.3
    t = fit_trend("X", COMPUTE, values, [se] * 5, 0.7, ">")
    half = stats.t.ppf(0.975, 3) * se / math.sqrt(10.0)  # Sxx of log10 compute 9..13 is 10
    assert t.interval == pytest.approx((0.1 - half, 0.1 + half))
    assert t.verdict == "flat"  # 0.1 +/- 0.30: the points' noise swamps the slope


def test_a_points_standard_error_inverts_the_claims_prediction_interval():
    from steerlib.measures import statistics

    assert scale.WIDEN == statistics.WIDEN
    for values in ([0.2, 0.5, 0.3], [1.0, 4.0, 2.0, 8.0, 5.0]):
        half = statistics.prediction_half_width(values)
        se = np.std(values, ddof=1) / math.sqrt(len(values))  # the standard error of their mean
        assert scale.standard_error(half, len(values)) == pytest.approx(se)
    assert scale.standard_error(0.5, 1) == 0.0 and scale.standard_error(0.0, 3) == 0.0


def test_the_direction_follows_the_threshold_side():
    falling = [-0.1 * i for i in range(5)]
    assert fit_trend("X", COMPUTE, falling, [0.0] * 5, -0.5, "<").verdict == "towards"
    assert fit_trend("X", COMPUTE, falling, [0.0] * 5, 0.5, ">=").verdict == "away"
    assert math.isnan(fit_trend("X", COMPUTE, falling, [0.0] * 5, 0.5, ">").crossing)  # away: no crossing


def test_a_zigzag_is_flat():
    t = fit_trend("X", COMPUTE, [0.0, 1.0, 0.0, 1.0, 0.0], [0.0] * 5, 0.5, ">")
    assert t.verdict == "flat" and t.slope == pytest.approx(0.0)


def test_too_few_points_or_too_short_a_span_is_not_judged():
    four = fit_trend("X", COMPUTE[:4], [0.0, 0.1, 0.2, 0.3], [0.0] * 4, 0.5, ">")
    assert four.verdict == "not judged" and "4 judged points" in four.note
    short = fit_trend("X", [1.0, 2.0, 4.0, 8.0, 15.0], [0.0, 0.1, 0.2, 0.3, 0.4], [0.0] * 5, 0.5, ">")
    assert short.verdict == "not judged" and short.span == pytest.approx(15.0)


def test_the_crossing_interval_is_where_the_lines_band_meets_the_threshold():
    values = [0.02, 0.1, 0.22, 0.29, 0.41]
    t = fit_trend("X", COMPUTE, values, [0.02] * 5, 0.7, ">")
    assert t.verdict == "towards"
    low, high = (math.log10(c) for c in t.crossing_interval)
    assert low < math.log10(t.crossing) < high
    x = np.log10(COMPUTE)
    a, d = np.mean(values), x - x.mean()
    n = 5
    resid = np.asarray(values) - a - t.slope * d
    s2 = float(resid @ resid) / 3
    se_a = max(math.sqrt(s2 / n), 0.02 / math.sqrt(n))
    se_b = (t.interval[1] - t.slope) / stats.t.ppf(0.975, 3)
    tq = stats.t.ppf(0.975, 3)
    for end in (low, high):  # on the band's edge: |line - threshold| = t * se(line)
        e = end - x.mean()
        assert abs(a + t.slope * e - 0.7) == pytest.approx(tq * math.sqrt(se_a**2 + e**2 * se_b**2))


def test_fit_trend_rejects_bad_points():
    with pytest.raises(ValueError, match="one length"):
        fit_trend("X", COMPUTE, [0.0] * 4, [0.0] * 5, 0.5, ">")
    with pytest.raises(ValueError, match="positive"):
        fit_trend("X", [0.0, *COMPUTE[1:]], [0.0] * 5, [0.0] * 5, 0.5, ">")
    with pytest.raises(ValueError, match="op"):
        fit_trend("X", COMPUTE, [0.0] * 5, [0.0] * 5, 0.5, "=")


def _claim(cid, value, interval, judged=True, op=">", threshold=0.5):
    return {
        "id": cid,
        "value": value,
        "interval": interval,
        "judged": judged,
        "op": op,
        "threshold": threshold,
        "verdict": "holds" if value > threshold else "does not hold",
        "dissertation": "",
    }


def test_trends_drop_unjudged_points_and_untracked_claims():
    axis = Scale("width", lambda s, f: s, lambda s: 1.0, ("A*",), {"cpu": (1.0,)})
    points = [
        Point(
            2.0**i, c, (_claim("A1", 0.1 * i, [0.1 * i - 0.01, 0.1 * i + 0.01], judged=i != 2), _claim("B1", 0, None))
        )
        for i, c in enumerate(COMPUTE)
    ]
    found = scale.trends(points, axis)
    assert set(found) == {"A1"} and found["A1"].points == 4 and found["A1"].verdict == "not judged"
    sweep = scale.Sweep("x", "width", tuple(points), found)
    assert [row[3] for row in sweep.series("A1")] == [True, True, False, True, True]
    record = sweep.as_dict()
    assert record["trends"]["A1"]["verdict"] == "not judged" and set(record["points"][0]["claims"]) == {"A1"}


def test_a_trend_reads_the_threshold_of_the_profiles_own_point():
    axis = Scale("width", lambda s, f: s, lambda s: 1.0, ("A*",), {"cpu": (1.0,)})
    points = [Point(f, 10.0**f, (_claim("A1", 0.1 * f, None, threshold=0.1 * f),)) for f in (0.5, 1.0, 2.0)]
    assert scale.reference_claims(points, axis)["A1"]["threshold"] == pytest.approx(0.1)  # factor 1's, not the last


def test_the_factors_past_the_ladder_skip_its_own():
    axis = Scale("width", lambda s, f: s, lambda s: 1.0, ("A*",), {"smoke": (0.25, 1.0), "cpu": (1.0,)}, (0.25, 2.0))
    assert axis.past_ladder("smoke") == (2.0,) and axis.past_ladder("cpu") == (0.25, 2.0)
    assert axis.past_ladder("paper") == ()  # no ladder at paper: nothing to add to


def test_a_scale_needs_its_profile_point():
    with pytest.raises(ValueError, match="must hold 1"):
        Scale("width", lambda s, f: s, lambda s: 1.0, ("A*",), {"cpu": (0.5,)})


def test_part_one_knob_multiplies_compute_about_as_asked():
    from steerlib.book import chapter

    mechanism = chapter("mechanism")
    cpu = mechanism.settings("cpu")
    assert mechanism.scale.apply(cpu, 1.0) == cpu
    flops = {f: mechanism.scale.compute(mechanism.scale.apply(cpu, f)) for f in mechanism.scale.factors["cpu"]}
    assert list(flops.values()) == sorted(flops.values())
    assert flops[1.0] / flops[1 / 32] >= scale.MIN_SPAN  # the book's ladder spans enough to judge a trend
    assert 0.5 < flops[1.0] / flops[1 / 2] / 2 < 2  # each factor about as asked


def test_part_three_knob_shares_one_pretraining_per_factor():
    from steerlib.book import chapter

    premem, robust = chapter("pre-memorization"), chapter("robustness-and-curation")
    cpu = premem.settings("cpu")
    ladder = sorted({*premem.scale.factors["cpu"], *premem.scale.beyond})  # the book's point and make sweeps'
    flops = {f: premem.scale.compute(premem.scale.apply(cpu, f)) for f in ladder}
    assert list(flops.values()) == sorted(flops.values()) and flops[1.0] / flops[1 / 32] >= scale.MIN_SPAN
    for f in ladder:  # the same pretraining settings, so one cache entry for both chapters
        a, b = premem.scale.apply(cpu, f), robust.scale.apply(robust.settings("cpu"), f)
        assert (a.base, a.pretrain, a.n_pretrain, a.task) == (b.base, b.pretrain, b.n_pretrain, b.task)
        assert a.base.d_model % (2 * a.base.n_heads) == 0  # heads of even width (rotary embeddings)


def test_language_model_compute_counts_six_n_t_and_a_pretrained_models_own_pretraining():
    from steerlib.lm.base import BaseModelConfig, training_flops
    from steerlib.lm.models import SMOLLM2

    tiny = BaseModelConfig(d_model=64, n_layers=2, arch="llama")
    assert training_flops(tiny, 10, 4, 5) == 6 * 16 * 2 * 64**2 * 200  # 16 d^2 a llama block, 200 tokens
    assert training_flops(BaseModelConfig(model=SMOLLM2), 10, 4, 5) == pytest.approx(
        6 * 106.7e6 * (2e12 + 200), rel=1e-3
    )
    assert math.isnan(training_flops(BaseModelConfig(model="someone/model"), 10, 4, 5))  # its pretraining unknown


def test_the_sweep_stage_lists_the_ladder_and_beyond():
    from steerlib.jobs import stages

    listed = stages("mechanism", "cpu")
    assert listed[-1].name == "sweep"
    assert [job.label for job in listed[-1].jobs] == ["scale 0.03125", "scale 0.125", "scale 0.25", "scale 0.5"]
    wide = stages("mechanism", "cpu", beyond=True)[-1]
    assert [job.label for job in wide.jobs][-3:] == ["scale 2", "scale 4", "scale 8"]
    paper = stages("mechanism", "paper")[-1]  # no ladder: one job, its own run, kept for the cpu sweep to show
    assert [job.label for job in paper.jobs] == ["scale 1"]


def test_a_trend_record_is_plain_data():
    t = Trend("A1", "flat", 5, 16.0, 0.0, (-1.0, 1.0))
    assert t.as_dict()["interval"] == (-1.0, 1.0) and t.as_dict()["verdict"] == "flat"


def test_a_smoke_sweep_records_its_points_and_caches_them(tmp_path):
    from steerlib.book import CHAPTERS, execute
    from steerlib.core.record import read_metrics

    ex = execute("cautious-decisions", "smoke", out_dir=tmp_path)
    sweep = ex.sweep()
    assert [p.factor for p in sweep.points] == [0.25, 1.0] and sweep.points[0].compute < sweep.points[1].compute
    assert sweep.missing == (2.0, 4.0, 8.0)  # make sweeps has not run in this cache
    assert {c["id"] for c in sweep.points[1].claims} == {c.id for c in ex.claims}
    assert all(t.verdict == "not judged" for t in sweep.trends.values())  # two points cannot make a trend
    record = read_metrics(tmp_path / "metrics.json")["sweep"]
    assert [p["factor"] for p in record["points"]] == [0.25, 1.0] and set(record["trends"]) == set(sweep.trends)
    assert record["cpu_s"] > 0  # what the point cost, for the performance page
    cached = scale.point(CHAPTERS["cautious-decisions"], "smoke", 0, 0.25, compute_missing=False)
    assert cached is not None and cached.compute == sweep.points[0].compute
    assert set(sweep.beside) == set(record["beside"]) == {"paper"}  # looked for (none unless paper has run here)
    assert sweep.recorded is None  # the axis kept in the repository ran at cpu, not smoke


def test_a_run_of_a_profile_without_a_ladder_is_kept_and_shown_beside_the_sweep(tmp_path, tmp_cache):
    from steerlib.book import CHAPTERS, execute
    from steerlib.core.cache import RunCache
    from steerlib.core.figures import plot_sweep

    ex = execute("cautious-decisions", "smoke", out_dir=tmp_path)
    axis = ex.chapter.scale
    # smoke as a profile without a ladder, as paper is: its run keeps its point and gets an empty sweep
    alone = dataclasses.replace(
        ex, chapter=dataclasses.replace(ex.chapter, scale=dataclasses.replace(axis, factors={}))
    )
    assert scale.sweep(alone).points == ()
    kept = scale.point(CHAPTERS["cautious-decisions"], "smoke", 0, 1.0, compute_missing=False)
    assert kept is not None and {c["id"] for c in kept.claims} == {c.id for c in ex.claims}
    # ... where the sweep of a profile with a ladder finds it: here the paper run's place holds it
    RunCache().save("sweep-point", scale._key(ex.chapter, ex.chapter.settings("paper"), 0), kept)
    shown = scale.sweep(ex, beyond=False)
    assert shown.beside["paper"] == kept and shown.as_dict()["beside"]["paper"]["compute"] == kept.compute
    assert "at paper (not fitted)" in scale.table(shown).columns
    assert "`paper` profile's run is shown beside" in scale.summary(shown, ex.claims).data
    stars = [line for ax in plot_sweep(shown).axes for line in ax.lines if line.get_marker() == "*"]
    assert stars and {line.get_xdata()[0] for line in stars} == {kept.compute}  # at its own compute, green


def test_the_axis_kept_in_the_repository_is_read_at_its_own_profile_and_seed_and_summarised(tmp_path):
    import json

    kept = {
        "knob": "width",
        "points": [{"factor": f, "compute": c, "claims": {}} for f, c in ((1.0, 1e9), (32.0, 3.2e10))],
        "trends": {"A1": {"verdict": "flat"}, "A2": {"verdict": "towards"}, "A3": {"verdict": "flat"}},
    }
    (tmp_path / "toy").mkdir()
    record = {"config": {"profile": "cpu", "seed": 0}, "finished": "2026-12-07T18:41:57+00:00", "sweep": kept}
    (tmp_path / "toy" / "metrics.json").write_text(json.dumps(record))
    found = scale.recorded("toy", "cpu", 0, root=tmp_path)
    assert found["trends"] == kept["trends"] and found["path"] == tmp_path / "toy" / "metrics.json"
    assert (
        scale.recorded("toy", "cpu", 1, root=tmp_path) is None
        and scale.recorded("toy", "smoke", 0, root=tmp_path) is None
    )
    assert scale.recorded("other", "cpu", 0, root=tmp_path) is None
    (tmp_path / "part").mkdir()  # a file written while the run cache lacked factors is not a whole axis
    (tmp_path / "part" / "metrics.json").write_text(json.dumps({**record, "sweep": {**kept, "missing": [64.0]}}))
    assert scale.recorded("part", "cpu", 0, root=tmp_path) is None
    point = Point(1.0, 1e9, (_claim("A1", 0.0, None),))
    text = scale.summary(scale.Sweep("toy", "width", (point,), {}, (32.0,), recorded=found)).data
    assert "as written to `benchmarks/sweeps/toy/metrics.json` on 2026-12-07 (read here, not recomputed)" in text
    assert "2 points from 1e+09 to 3.2e+10 training FLOPs (32x)" in text and "1 point, at 1e+09" in text
    assert "Of its 3 claims, 1 trends towards holding (A2); 2 are flat (A1, A3)." in text
    assert "kept in" not in scale.summary(scale.Sweep("toy", "width", (point,), {}, (32.0,))).data


def test_the_scorecard_gives_the_kept_axis_trend_where_a_run_lacked_points(tmp_path, monkeypatch):
    import json

    from steerlib import scorecard
    from steerlib.core.claims import Claim
    from steerlib.core.record import write_metrics

    kept = {"points": [], "trends": {"T1": {"verdict": "flat"}}}
    (tmp_path / "kept" / "toy").mkdir(parents=True)
    record = {"config": {"profile": "cpu", "seed": 0}, "finished": "2026-12-07", "sweep": kept}
    (tmp_path / "kept" / "toy" / "metrics.json").write_text(json.dumps(record))
    monkeypatch.setattr(scale, "RECORDED", tmp_path / "kept")

    def card(missing):
        path = write_metrics(
            tmp_path / "results" / "toy",
            "toy",
            {"profile": "cpu", "seed": 0},
            [Claim("T1", "toy", "x", 1.0, ">", 0.5)],
            0,
        )
        run = json.loads(path.read_text())
        run["sweep"] = {"trends": {"T1": {"verdict": "not judged"}}, "missing": missing}
        path.write_text(json.dumps(run))
        return scorecard.collect(tmp_path / "results", "cpu").set_index("id").loc["T1", "with scale"]

    assert card([2.0]) == "not judged; flat over the kept axis"
    assert card([]) == "not judged"  # the run had every point: its own trend only


def test_every_scaled_chapters_whole_axis_is_kept_with_a_trend_for_each_claim_it_tracks():
    import json
    from pathlib import Path

    from steerlib.book import CHAPTERS, chapter

    root = Path(__file__).resolve().parents[1] / "benchmarks" / "sweeps"  # the repository's, however it is installed
    for name in CHAPTERS:
        ch = chapter(name)
        if ch.scale is None:
            continue
        kept = scale.recorded(name, "cpu", 0, root=root)
        assert kept is not None, name
        claims = json.loads((root / name / "metrics.json").read_text())["claims"]
        assert set(kept["trends"]) == {c["id"] for c in claims if ch.scale.tracks(c["id"])}, name
        computes = [p["compute"] for p in kept["points"]]
        assert len(computes) >= scale.MIN_POINTS and max(computes) / min(computes) >= scale.MIN_SPAN, name


def test_every_knob_leaves_each_ladder_profile_as_it_is_at_factor_one():
    from steerlib.book import CHAPTERS, chapter

    for name in CHAPTERS:  # a sweep's own run stands for factor 1 of its ladder
        ch = chapter(name)
        for profile in ch.scale.factors if ch.scale else ():
            assert ch.scale.apply(ch.settings(profile), 1.0) == ch.settings(profile), (name, profile)


def test_a_profile_without_a_ladder_gets_an_empty_sweep_that_every_view_shows():
    from steerlib.core.figures import plot_sweep

    empty = scale.Sweep("toy", "width", (), {})
    assert scale.table(empty).empty and "no scale axis" in scale.summary(empty).data
    assert plot_sweep(empty).axes  # a figure saying so, not an error
