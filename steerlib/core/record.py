"""A chapter run's record, ``<out_dir>/metrics.json``: configuration, package versions, wall time, the resources it
used, claims, extra numbers."""
from __future__ import annotations

import datetime
import json
import os
import platform
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from steerlib.core.cache import jsonable
from steerlib.core.checks import check_nonempty, check_range, check_type
from steerlib.core.claims import Claim, check_claims


def versions(packages: Sequence[str] = ("steerlib", "torch", "numpy", "scikit-learn", "transformers")) -> dict:
    """Installed versions of the packages that shape a chapter's numbers, plus Python's."""
    check_type("packages", packages, (list, tuple), "a list of package names")
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _resources() -> dict:
    """What this process ran on and used: torch threads, the cores it may run on, and the CPU seconds (user + system)
    of this process and of its finished child processes (e.g. a grid's worker processes) since it started."""
    t = os.times()
    n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"threads": torch.get_num_threads(), "cores": n_cores,
            "cpu_s": round(t.user + t.system + t.children_user + t.children_system, 2)}


def write_metrics(out_dir: str | Path, chapter: str, config: Any, claims: Iterable[Claim],
                  started: float, extra: dict | None = None) -> Path:
    """Write ``metrics.json`` (chapter, config, versions, when it finished, wall time, :func:`_resources`, claims,
    extra numbers); return its path. Everything is checked before the folder is made."""
    check_type("out_dir", out_dir, (str, os.PathLike), "a folder path")
    check_nonempty("chapter", check_type("chapter", chapter, str, "the chapter's name"))
    claims = check_claims(claims)
    check_range("started", started, 0)
    check_type("extra", extra, (dict, type(None)), "a dict of numbers or None")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "chapter": chapter,
        "config": jsonable(config),
        "versions": versions(),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "wall_time_s": round(time.time() - started, 2),
        "resources": _resources(),
        "claims": [c.as_dict() for c in claims],
        "extra": jsonable(extra or {}),
    }
    path = out_dir / "metrics.json"
    tmp = path.with_name(f"metrics.json.{os.getpid()}.tmp")  # readers (the scorecard, tests) never see half a file
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    return path


def read_metrics(path: str | Path) -> dict:
    """The record written by :func:`write_metrics` at ``path``."""
    check_type("path", path, (str, os.PathLike), "the path of a metrics.json")
    return json.loads(Path(path).read_text())
