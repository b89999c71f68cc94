import dataclasses
import math

import pytest

from steerlib.core.claims import Claim, judge, with_seeds


def _claim(value: float, interval=None, **kw) -> Claim:
    return Claim("T1", "toy", "x", value, ">", 0.5, why="toy", interval=interval, uncertainty="toy", **kw)


def test_verdicts_by_hand():
    assert _claim(0.8, (0.6, 0.9)).verdict == "holds"
    assert _claim(0.8, (0.4, 0.9)).verdict == "holds (fragile)"  # the interval reaches across 0.5
    assert _claim(0.3, (0.2, 0.6)).verdict == "does not hold"
    assert _claim(math.nan).verdict == "does not hold"  # a NaN never holds
    assert _claim(0.8, judged=False).verdict == "not judged"


def test_other_seeds_widen_the_interval_and_undefined_seeds_make_it_fragile():
    widened = with_seeds(_claim(0.8, (0.7, 0.9)), {1: 0.4, 2: 0.95})
    assert widened.interval == (0.4, 0.95) and widened.verdict == "holds (fragile)"
    assert "0.4 at seed 1" in widened.uncertainty
    undefined = with_seeds(_claim(0.8, (0.7, 0.9)), {1: math.nan, 2: 0.85})
    assert undefined.interval == (0.7, 0.9) and undefined.undefined_at == (1,)
    assert undefined.verdict == "holds (fragile)"  # "not judged" at seed 1: the verdict flips between seeds
    assert with_seeds(_claim(0.3, (0.2, 0.4)), {1: math.nan}).verdict == "does not hold"


def test_a_failed_prerequisite_leaves_the_evidence_not_judged():
    gate = Claim("P1", "gate", "x", 0.1, ">", 0.5, kind="prerequisite", why="toy", uncertainty="toy")
    judged = judge([gate, _claim(0.8, (0.7, 0.9))])
    assert [c.verdict for c in judged] == ["does not hold", "not judged"]
    assert "P1" in judged[1].note


def test_a_prerequisite_with_gates_leaves_only_those_claims_not_judged():
    gate = Claim("P2", "gate", "x", 0.1, ">", 0.5, kind="prerequisite", why="toy", uncertainty="toy", gates=("B1",))
    a, b = (dataclasses.replace(_claim(0.8, (0.7, 0.9)), id=i) for i in ("A1", "B1"))
    judged = judge([gate, a, b])
    assert [c.verdict for c in judged] == ["does not hold", "holds", "not judged"]
    assert "P2" in judged[2].note
    with pytest.raises(TypeError, match="gates"):
        Claim("P3", "gate", "x", 0.1, ">", 0.5, kind="prerequisite", gates="B1")
