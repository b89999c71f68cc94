"""Claims (:mod:`steerlib.core.claims`): verdicts by hand, prerequisites gating evidence, specs turned into claims."""

import dataclasses
import math

import pytest

from steerlib.core.claims import Claim, Measured, Spec, judge, make_claims


def _claim(value: float, interval=None, **kw) -> Claim:
    return Claim("T1", "toy", "x", value, ">", 0.5, why="toy", interval=interval, uncertainty="toy", **kw)


def test_verdicts_by_hand():
    assert _claim(0.8, (0.6, 0.9)).verdict == "holds"
    assert _claim(0.8, (0.4, 0.9)).verdict == "holds (fragile)"  # the interval reaches across 0.5
    assert _claim(0.3, (0.2, 0.4)).verdict == "does not hold"
    assert _claim(0.3, (0.2, 0.6)).verdict == "does not hold (fragile)"  # symmetric: a rerun could hold
    assert _claim(math.nan).verdict == "does not hold"  # a NaN never holds
    assert _claim(0.8, judged=False).verdict == "not judged"
    assert _claim(0.8, (0.7, 0.9), undefined_at=(2,)).verdict == "holds (fragile)"  # undefined at replicate 2


def test_a_failed_prerequisite_leaves_the_evidence_not_judged():
    gate = Claim("P1", "gate", "x", 0.1, ">", 0.5, kind="prerequisite", why="toy", uncertainty="toy")
    judged = judge([gate, _claim(0.8, (0.7, 0.9))])
    assert [c.verdict for c in judged] == ["does not hold", "not judged"]
    assert "P1" in judged[1].note


def test_a_fragile_prerequisite_makes_the_evidence_it_gates_fragile():
    gate = Claim(
        "P1", "gate", "x", 0.6, ">", 0.5, kind="prerequisite", why="toy", uncertainty="toy", interval=(0.4, 0.8)
    )
    judged = judge([gate, _claim(0.8, (0.7, 0.9)), _claim(0.3, (0.2, 0.4))])
    assert [c.verdict for c in judged] == ["holds (fragile)", "holds (fragile)", "does not hold (fragile)"]
    assert judged[1].fragile_gates == ("P1",)


def test_a_prerequisite_with_gates_leaves_only_those_claims_not_judged():
    gate = Claim("P2", "gate", "x", 0.1, ">", 0.5, kind="prerequisite", why="toy", uncertainty="toy", gates=("B1",))
    a, b = (dataclasses.replace(_claim(0.8, (0.7, 0.9)), id=i) for i in ("A1", "B1"))
    judged = judge([gate, a, b])
    assert [c.verdict for c in judged] == ["does not hold", "holds", "not judged"]
    assert "P2" in judged[2].note
    with pytest.raises(TypeError, match="gates"):
        Claim("P3", "gate", "x", 0.1, ">", 0.5, kind="prerequisite", gates="B1")


SPECS = (
    Spec(
        id="X1/{dataset}",
        statement="{dataset}: x rises",
        statistic="rho on {dataset}",
        op=">",
        threshold=0.5,
        why="a clear rise",
        dissertation="Fig 1",
    ),
    Spec(
        id="X2",
        kind="prerequisite",
        statement="the gap is small",
        statistic="gap at {hi}",
        op="<",
        threshold="5% of the reward range",
        why="< {threshold:g}: {share} of the range",
    ),
)


def test_specs_become_claims_per_axis_value_in_table_order():
    measured = {
        "X1/a": Measured(0.9, (0.8, 1.0), "toy"),
        "X1/b": 0.2,
        "X2": Measured(0.1, None, "toy", threshold=0.25, context={"share": "5%"}),
    }
    claims = make_claims(SPECS, measured, axes={"dataset": ["a", "b", "c"]}, context={"hi": "100 mentions"})
    assert [c.id for c in claims] == ["X1/a", "X1/b", "X2"]  # X1/c was not measured: skipped
    x1a, x1b, x2 = claims
    assert (x1a.statement, x1a.statistic, x1a.verdict) == ("a: x rises", "rho on a", "holds")
    assert x1b.value == 0.2 and x1b.interval is None and x1b.verdict == "does not hold"
    assert x2.threshold == 0.25 and x2.statistic == "gap at 100 mentions" and x2.why == "< 0.25: 5% of the range"
    assert x1a.fingerprint == x1b.fingerprint == SPECS[0].fingerprint() != x2.fingerprint


def test_a_spec_fingerprint_moves_with_any_field_and_a_rule_needs_its_value():
    spec = SPECS[0]
    assert dataclasses.replace(spec, threshold=0.6).fingerprint() != spec.fingerprint()
    assert dataclasses.replace(spec, why="a clearer rise").fingerprint() != spec.fingerprint()
    assert dataclasses.replace(spec).fingerprint() == spec.fingerprint()
    with pytest.raises(ValueError, match="rule"):
        make_claims(SPECS[1:], {"X2": 0.1}, context={"hi": "100 mentions"})
    with pytest.raises(ValueError, match="cannot fill"):
        make_claims(SPECS[:1], {"X1/{dataset}": 0.1})
    with pytest.raises(TypeError, match="threshold"):
        Spec(id="X3", statement="s", statistic="x", op=">", threshold=None, why="w")


def test_gates_may_be_patterns_filled_per_axis_value():
    """A per-dataset prerequisite gates that dataset's evidence only (its gates are filled like its id)."""
    specs = (
        Spec(
            id="P/{dataset}",
            kind="prerequisite",
            statement="s",
            statistic="x",
            op=">",
            threshold=0.5,
            why="w",
            gates=("*/{dataset}", "*/{dataset}/*"),
        ),
        Spec(id="E/{dataset}/{shift}", statement="s", statistic="x", op=">", threshold=0.5, why="w"),
    )
    measured = {
        "P/a": Measured(0.1, None, "u"),
        "P/b": Measured(0.9, (0.4, 1.0), "u"),
        "E/a/r": Measured(0.9, None, "u"),
        "E/b/r": Measured(0.9, (0.8, 1.0), "u"),
    }
    judged = {c.id: c for c in judge(make_claims(specs, measured, axes={"dataset": ["a", "b"], "shift": ["r"]}))}
    assert judged["P/a"].gates == ("*/a", "*/a/*")
    assert judged["E/a/r"].verdict == "not judged" and judged["E/b/r"].verdict == "holds (fragile)"  # P/b is fragile


def test_a_measured_interval_clips_to_the_statistics_range():
    assert Measured(0.9, (-2.0, 3.0)).clipped(-1.0, 1.0).interval == (-1.0, 1.0)
    assert Measured(0.9).clipped(-1.0, 1.0).interval is None
