"""A chapter run's record, ``<out_dir>/metrics.json``: configuration, package versions, wall time, claims, extra numbers."""
from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from steerlib.core.cache import jsonable
from steerlib.core.claims import Claim


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
        "config": jsonable(config),
        "versions": versions(),
        "wall_time_s": round(time.time() - started, 2),
        "claims": [c.as_dict() for c in claims],
        "extra": jsonable(extra or {}),
    }
    path = out_dir / "metrics.json"
    tmp = path.with_name(f"metrics.json.{os.getpid()}.tmp")  # readers (the scorecard, tests) never see half a file
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    return path


def read_metrics(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
