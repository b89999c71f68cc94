"""Claims: a statement of the dissertation checked against a threshold on a statistic measured in a chapter.

Every claim has a *kind*: ``evidence`` (something the dissertation says about trained models) or ``prerequisite``
(a check that the set-up is valid: a gate, a sanity check, a by-construction fact). Its *threshold* comes with a
one-line justification (``why``: the dissertation's number, the rival hypothesis it must beat, or a measured noise
floor), and its value with an *interval* (a bootstrap over evaluation examples or the spread over seeds) saying how
far the value could move. The *verdict* is one of :data:`VERDICTS`:

- ``holds``: value <op> threshold, and the whole interval is on the same side;
- ``holds (fragile)``: value <op> threshold, but the interval reaches across the threshold, or the statistic is
  undefined at another seed (``undefined_at``), where the verdict would be ``not judged``;
- ``does not hold``: the value misses the threshold;
- ``not judged``: the statistic is degenerate (``judged=False``, reason in ``note``), or a prerequisite of the
  chapter failed (:func:`judge`), so its evidence says nothing (a prerequisite with ``gates`` set gates only the
  evidence claims it names, e.g. one of a chapter's two experiments).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable
from typing import Any

from steerlib.core.checks import check_choice, check_nonempty, check_range, check_shape, check_type

OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
KINDS = ("evidence", "prerequisite")
VERDICTS = ("holds", "holds (fragile)", "does not hold", "not judged")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One testable claim: it holds when ``value <op> threshold``; see the module docstring for the rest."""

    id: str
    statement: str
    statistic: str
    value: float
    op: str
    threshold: float
    dissertation: str = ""  # what the dissertation reports (value, figure)
    kind: str = "evidence"
    why: str = ""  # one-line justification of the threshold
    interval: tuple[float, float] | None = None  # plausible range of ``value``
    uncertainty: str = ""  # how ``interval`` was measured (or why it has zero width)
    judged: bool = True  # False: the statistic says nothing here (reason in ``note``)
    note: str = ""
    undefined_at: tuple[int, ...] = ()  # other seeds where the statistic is undefined (NaN): see with_seeds
    gates: tuple[str, ...] = ()  # a prerequisite's evidence claims (by id) that its failure leaves not judged; () all

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"op={self.op!r} is not allowed; choose one of {', '.join(map(repr, OPS))}")
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} is not allowed; choose one of {', '.join(map(repr, KINDS))}")
        if self.interval is not None and any(math.isnan(float(v)) for v in self.interval):
            object.__setattr__(self, "interval", None)  # nothing to say: treated as no interval
        for name in ("id", "statement", "statistic"):
            check_nonempty(name, check_type(name, getattr(self, name), str, "a non-empty string"))
        for name in ("dissertation", "why", "uncertainty", "note"):
            check_type(name, getattr(self, name), str, "a string")
        check_type("value", self.value, numbers.Real, "a number (NaN when the statistic is undefined)")
        check_range("threshold", self.threshold)
        check_choice("op", self.op, OPS)
        check_choice("kind", self.kind, KINDS)
        check_type("judged", self.judged, bool, "True or False")
        check_type("undefined_at", self.undefined_at, tuple, "a tuple of seeds")
        check_type("gates", self.gates, tuple, "a tuple of claim ids (empty: every evidence claim)")
        if self.interval is not None:
            check_type("interval", self.interval, (tuple, list), "a (low, high) pair or None")
            check_shape("interval", self.interval, (2,), "(low, high)")
            low, high = (float(check_type("interval", v, numbers.Real, "a pair of numbers")) for v in self.interval)
            if low > high:
                raise ValueError(f"interval={self.interval!r} must be (low, high) with low <= high")
            object.__setattr__(self, "interval", (low, high))

    @property
    def holds(self) -> bool:
        """Judged, and ``value <op> threshold`` (a NaN value never holds)."""
        return self.judged and not math.isnan(float(self.value)) and bool(OPS[self.op](self.value, self.threshold))

    @property
    def fragile(self) -> bool:
        """Holds, but the interval reaches the threshold's other side or another seed leaves it undefined."""
        if not self.holds:
            return False
        crosses = self.interval is not None and not all(OPS[self.op](v, self.threshold) for v in self.interval)
        return crosses or bool(self.undefined_at)

    @property
    def verdict(self) -> str:
        if not self.judged:
            return "not judged"
        if not self.holds:
            return "does not hold"
        return "holds (fragile)" if self.fragile else "holds"

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "value": float(self.value),
                "interval": list(self.interval) if self.interval is not None else None,
                "holds": self.holds, "verdict": self.verdict}


def unexplained(claims: Iterable[Claim]) -> list[str]:
    """Ids of claims that lack a justified threshold (``why``) or an account of their uncertainty."""
    return [c.id for c in check_claims(claims) if not (c.why and c.uncertainty)]
def check_claims(claims: Iterable[Claim]) -> list[Claim]:
    """``claims`` as a list, checked: at least one, and every element a :class:`Claim`."""
    claims = list(check_nonempty("claims", list(check_type("claims", claims, Iterable, "a list of Claims"))))
    for c in claims:
        check_type("claims", c, Claim, "a list of Claims")
    return claims


def judge(claims: Iterable[Claim]) -> list[Claim]:
    """The claims with every evidence claim marked not judged if a prerequisite of the chapter that gates it (every
    evidence claim, unless the prerequisite names its ``gates``) does not hold."""
    claims = check_claims(claims)
    failed = [c for c in claims if c.kind == "prerequisite" and not c.holds]

    def mark(c: Claim) -> Claim:
        ids = [p.id for p in failed if not p.gates or c.id in p.gates]
        if c.kind != "evidence" or not ids:
            return c
        note = f"prerequisite {', '.join(ids)} failed, so this evidence is not judged"
        return dataclasses.replace(c, judged=False, note=f"{c.note}; {note}" if c.note else note)

    return [mark(c) for c in claims]


def with_seeds(claim: Claim, values: dict[int, float]) -> Claim:
    """``claim`` with its interval widened to contain the claim's value at the other seeds in ``values`` (seed ->
    value), and those seeds named in ``uncertainty``: a verdict that another seed would flip becomes fragile. A seed
    where the value is NaN (the statistic undefined there) cannot widen the interval; it goes into ``undefined_at``,
    which makes a holding verdict fragile too."""
    check_type("claim", claim, Claim, "a Claim")
    check_type("values", values, dict, "a dict of seed -> value")
    if not values:
        return claim
    finite = [v for v in values.values() if math.isfinite(v)]
    low, high = claim.interval if claim.interval is not None else (claim.value, claim.value)
    interval = (min([low, *finite]), max([high, *finite]))
    seeds = ", ".join(f"{v:.3g} at seed {s}" for s, v in values.items())
    uncertainty = f"{claim.uncertainty}; widened to the values at other seeds ({seeds})".lstrip("; ")
    undefined = tuple(int(s) for s, v in values.items() if not math.isfinite(v))
    return dataclasses.replace(claim, interval=interval, uncertainty=uncertainty, undefined_at=undefined)
