"""Claims: a statement of the dissertation checked against a threshold on a statistic measured in a chapter.

Every claim has a *kind*: ``evidence`` (something the dissertation says about trained models) or ``prerequisite``
(a check that the set-up is valid: a gate, a sanity check, a by-construction fact). Its *threshold* comes with a
one-line justification (``why``: the dissertation's number, the rival hypothesis it must beat, or a measured noise
floor), and its value with an *interval* (a prediction interval for the value an independent rerun would give,
:mod:`steerlib.measures.statistics`) saying how far the value could move. The *verdict* is one of :data:`VERDICTS`:

- ``holds``: value <op> threshold, and the whole interval is on the same side;
- ``holds (fragile)``: value <op> threshold, but the interval reaches across the threshold, the statistic is
  undefined at another replicate (``undefined_at``), or a prerequisite that gates it holds only fragilely;
- ``does not hold (fragile)``: the value misses the threshold, but the interval reaches across it (or a gating
  prerequisite is fragile): a rerun could well hold;
- ``does not hold``: the value misses the threshold, and the whole interval with it;
- ``not judged``: the statistic is degenerate (``judged=False``, reason in ``note``), or a prerequisite of the
  chapter failed (:func:`judge`), so its evidence says nothing (a prerequisite with ``gates`` set gates only the
  evidence claims it names, e.g. one of a chapter's two experiments).

A chapter writes its claims as a table of :class:`Spec` (what is claimed, against which threshold and why: fixed
before any run) and computes its statistics apart, as :class:`Measured` values by claim id; :func:`make_claims` joins
the two.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import itertools
import json
import math
import numbers
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from steerlib.core.checks import check_choice, check_nonempty, check_range, check_shape, check_type

OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
KINDS = ("evidence", "prerequisite")
VERDICTS = ("holds", "holds (fragile)", "does not hold (fragile)", "does not hold", "not judged")
HOLDING = ("holds", "holds (fragile)")


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
    interval: tuple[float, float] | None = None  # where an independent rerun's value would fall (95%)
    uncertainty: str = ""  # how ``interval`` was measured (or why it has zero width)
    judged: bool = True  # False: the statistic says nothing here (reason in ``note``)
    note: str = ""
    undefined_at: tuple[int, ...] = ()  # replicates where the statistic is undefined (NaN)
    gates: tuple[str, ...] = ()  # a prerequisite's evidence claims (ids, or patterns such as "*/mnist1d/*") it gates
    fragile_gates: tuple[str, ...] = ()  # prerequisites gating this claim that hold only fragilely (set by judge)
    fingerprint: str = ""  # the hash of the Spec it was made from (the claims ledger's key)
    ledger: str = ""  # its state in the claims ledger (steerlib.core.ledger.state), set when a chapter runs

    def __post_init__(self):
        if self.interval is not None and any(math.isnan(float(v)) for v in self.interval):
            object.__setattr__(self, "interval", None)  # nothing to say: treated as no interval
        for name in ("id", "statement", "statistic"):
            check_nonempty(name, check_type(name, getattr(self, name), str, "a non-empty string"))
        for name in ("dissertation", "why", "uncertainty", "note", "fingerprint", "ledger"):
            check_type(name, getattr(self, name), str, "a string")
        check_type("value", self.value, numbers.Real, "a number (NaN when the statistic is undefined)")
        check_range("threshold", self.threshold)
        check_choice("op", self.op, OPS)
        check_choice("kind", self.kind, KINDS)
        check_type("judged", self.judged, bool, "True or False")
        check_type("undefined_at", self.undefined_at, tuple, "a tuple of replicates")
        check_type("gates", self.gates, tuple, "a tuple of claim ids (empty: every evidence claim)")
        check_type("fragile_gates", self.fragile_gates, tuple, "a tuple of prerequisite ids")
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
        """Judged, and a rerun could give the other verdict: the interval reaches the threshold's other side, another
        replicate leaves the statistic undefined, or a prerequisite gating the claim holds only fragilely."""
        if not self.judged or math.isnan(float(self.value)):
            return False
        side = bool(OPS[self.op](self.value, self.threshold))
        crosses = self.interval is not None and any(
            bool(OPS[self.op](v, self.threshold)) != side for v in self.interval
        )
        return crosses or bool(self.undefined_at) or bool(self.fragile_gates)

    @property
    def verdict(self) -> str:
        """The verdict: holds, holds (fragile), does not hold (fragile), does not hold, or not judged."""
        if not self.judged:
            return "not judged"
        if not self.holds:
            return "does not hold (fragile)" if self.fragile else "does not hold"
        return "holds (fragile)" if self.fragile else "holds"

    def as_dict(self) -> dict[str, Any]:
        """The claim as plain data, with its verdict: a claim of ``metrics.json``."""
        return {
            **dataclasses.asdict(self),
            "value": float(self.value),
            "interval": list(self.interval) if self.interval is not None else None,
            "holds": self.holds,
            "verdict": self.verdict,
        }


# ------------------------------------------------------------------------------------------- specifications


@dataclasses.dataclass(frozen=True, kw_only=True)
class Spec:
    """What a claim says, fixed before any run: the claim without its measured value.

    ``threshold`` is a number, or a rule in words (e.g. "5% of the reward range") whose value the run measures
    (:class:`Measured` ``threshold``). Text fields may hold ``{name}`` placeholders, filled by :func:`make_claims`
    from its context, the claim's axes (a placeholder of ``id`` named in ``axes``: one claim per value) and the
    measured context. :meth:`fingerprint` hashes the unfilled specification: the claims ledger's key."""

    id: str
    kind: str = "evidence"
    statement: str
    statistic: str
    op: str
    threshold: float | str
    why: str
    gates: tuple[str, ...] = ()
    dissertation: str = ""

    def __post_init__(self):
        for name in ("id", "statement", "statistic", "why"):
            check_nonempty(name, check_type(name, getattr(self, name), str, "a non-empty string"))
        check_choice("kind", self.kind, KINDS)
        check_choice("op", self.op, OPS)
        check_type("threshold", self.threshold, (numbers.Real, str), "a number, or a rule in words")
        if isinstance(self.threshold, str):
            check_nonempty("threshold", self.threshold.strip())
        else:
            check_range("threshold", self.threshold)
        check_type("gates", self.gates, tuple, "a tuple of claim ids (empty: every evidence claim)")
        check_type("dissertation", self.dissertation, str, "a string")

    def fingerprint(self) -> str:
        """First 12 hex digits of the SHA-256 of the specification as canonical JSON."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class Measured:
    """A claim's measured side: its value, the interval and how it was measured; ``threshold`` where the spec's is a
    rule; ``context`` fills the spec's placeholders."""

    value: float
    interval: tuple[float, float] | None = None
    uncertainty: str = ""
    judged: bool = True
    note: str = ""
    undefined_at: tuple[int, ...] = ()
    threshold: float | None = None
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check_type("value", self.value, numbers.Real, "a number (NaN when the statistic is undefined)")
        check_type("context", self.context, Mapping, "a dict of placeholder values")

    def clipped(self, low: float, high: float) -> Measured:
        """This measurement with its interval clipped to the statistic's range [low, high] (a rank correlation's
        [-1, 1], a share's [0, 1]): where a rerun can fall."""
        if self.interval is None:
            return self
        return dataclasses.replace(self, interval=(max(self.interval[0], low), min(self.interval[1], high)))


def _fill(text: str, values: Mapping[str, Any], where: str) -> str:
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(
            f"{where}: cannot fill {text!r} ({err.__class__.__name__}: {err}); the placeholders come "
            f"from the context, the axes and the measured context: {sorted(values)}"
        ) from None


def make_claims(
    specs: Sequence[Spec],
    measured: Mapping[str, Measured | float],
    *,
    axes: Mapping[str, Sequence[Any]] | None = None,
    context: Mapping[str, Any] | None = None,
) -> list[Claim]:
    """One :class:`Claim` per spec and axis value whose (filled) id is in ``measured``, in the table's order.

    A spec whose id holds ``{name}`` with ``name`` in ``axes`` stands for one claim per value (per combination, for
    several axes); ids that ``measured`` lacks are skipped (parts of a chapter that a profile leaves out). A plain
    number in ``measured`` is a value without an interval."""
    check_type("specs", specs, (list, tuple), "a list of Specs")
    check_type("measured", measured, Mapping, "a dict of claim id -> Measured")
    axes, context = dict(axes or {}), dict(context or {})
    out = []
    for spec in check_nonempty("specs", specs):
        check_type("specs", spec, Spec, "a list of Specs")
        names = [n for n in axes if n in {p for _, p, _, _ in string.Formatter().parse(spec.id) if p}]
        for combo in itertools.product(*(axes[n] for n in names)):
            values = {**context, **dict(zip(names, combo))}
            cid = _fill(spec.id, values, "id")
            if cid not in measured:
                continue
            m = measured[cid]
            m = m if isinstance(m, Measured) else Measured(float(check_type(cid, m, numbers.Real, "a number")))
            values = {**values, **m.context}
            if isinstance(spec.threshold, str):
                if m.threshold is None:
                    raise ValueError(
                        f"claim {cid}: its threshold is the rule {spec.threshold!r}, so its Measured "
                        "must carry the threshold's value"
                    )
                threshold = float(m.threshold)
            else:
                threshold = float(spec.threshold)
            values["threshold"] = threshold
            out.append(
                Claim(
                    cid,
                    _fill(spec.statement, values, cid),
                    _fill(spec.statistic, values, cid),
                    m.value,
                    spec.op,
                    threshold,
                    _fill(spec.dissertation, values, cid),
                    spec.kind,
                    _fill(spec.why, values, cid),
                    m.interval,
                    m.uncertainty,
                    m.judged,
                    m.note,
                    tuple(m.undefined_at),
                    tuple(_fill(g, values, cid) for g in spec.gates),
                    fingerprint=spec.fingerprint(),
                )
            )
    return out


# ------------------------------------------------------------------------------------------- judging


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
    """The claims with every evidence claim marked not judged if a prerequisite that gates it (every evidence claim,
    unless the prerequisite names its ``gates``: ids, or shell-style patterns such as ``*/mnist1d/*``) does not
    hold, and marked fragile if one holds only fragilely."""
    claims = check_claims(claims)
    prerequisites = [c for c in claims if c.kind == "prerequisite"]

    def gating(c: Claim, p: Claim) -> bool:
        return not p.gates or any(fnmatch.fnmatchcase(c.id, pattern) for pattern in p.gates)

    def mark(c: Claim) -> Claim:
        if c.kind != "evidence":
            return c
        failed = [p.id for p in prerequisites if gating(c, p) and not p.holds]
        if failed:
            note = f"prerequisite {', '.join(failed)} failed, so this evidence is not judged"
            if note in c.note:  # judged before: judging is idempotent
                return c
            return dataclasses.replace(c, judged=False, note=f"{c.note}; {note}" if c.note else note)
        fragile = tuple(p.id for p in prerequisites if gating(c, p) and p.fragile)
        return dataclasses.replace(c, fragile_gates=fragile) if fragile else c

    return [mark(c) for c in claims]
