"""Claims: a statement of the dissertation checked against a threshold on a statistic measured in a chapter."""
from __future__ import annotations

import dataclasses
from typing import Any

OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


@dataclasses.dataclass(frozen=True)
class Claim:
    """One testable claim: ``holds`` is ``value <op> threshold``."""

    id: str
    statement: str
    statistic: str
    value: float
    op: str
    threshold: float
    dissertation: str = ""

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"op={self.op!r} is not allowed; choose one of {', '.join(map(repr, OPS))}")

    @property
    def holds(self) -> bool:
        return bool(OPS[self.op](self.value, self.threshold))

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "value": float(self.value), "holds": self.holds}
