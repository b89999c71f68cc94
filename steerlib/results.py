"""Chapter results: claims checked against thresholds, written to ``<out_dir>/metrics.json``."""
from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .cache import _jsonable

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


def versions(packages: Sequence[str] = ("steerlib", "torch", "numpy", "scikit-learn", "transformers")) -> dict:
    """Installed versions of the packages that shape a chapter's numbers, plus Python's."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_metrics(out_dir: str | Path, chapter: str, config: Any, claims: Iterable[Claim],
                  started: float, extra: dict | None = None) -> Path:
    """Write ``metrics.json`` (chapter, config, versions, wall time, claims, extra numbers); return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "chapter": chapter,
        "config": _jsonable(config),
        "versions": versions(),
        "wall_time_s": round(time.time() - started, 2),
        "claims": [c.as_dict() for c in claims],
        "extra": _jsonable(extra or {}),
    }
    path = out_dir / "metrics.json"
    path.write_text(json.dumps(record, indent=1))
    return path


def read_metrics(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
