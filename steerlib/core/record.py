"""A chapter run's record, ``<out_dir>/metrics.json``: configuration, package versions, the machine it computed on,
wall time, the resources it used, claims, extra numbers."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from steerlib.core.cache import jsonable
from steerlib.core.checks import check_nonempty, check_range, check_type
from steerlib.core.claims import Claim, check_claims
from steerlib.core.runtime import phase_seconds


def versions(
    packages: Sequence[str] = (
        "steerlib",
        "torch",
        "numpy",
        "scipy",
        "scikit-learn",
        "pandas",
        "transformers",
        "peft",
        "accelerate",
        "datasets",
    ),
) -> dict:
    """Installed versions of the packages that shape a chapter's numbers, plus Python's."""
    check_type("packages", packages, (list, tuple), "a list of package names")
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Where a run computed its numbers, all of which can move them: the CPU, the OS, torch's version and build (its
    BLAS), the CPU kernels torch dispatches to (``ATEN_CPU_CAPABILITY`` can lower them) and MKL's reproducibility
    mode (``MKL_CBWR``), the threads."""
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return {
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "os": platform.platform(),
        "torch": torch.__version__,
        "blas": blas.group(1) if blas else "unknown",
        "kernels": torch.backends.cpu.get_cpu_capability(),
        "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY", ""),
        "mkl_cbwr": os.environ.get("MKL_CBWR", ""),
        "threads": torch.get_num_threads(),
    }


def _resources() -> dict:
    """What this process ran on and used: torch threads, the cores it may run on, the CPU seconds (user + system) of
    this process and of its finished child processes (e.g. a grid's worker processes) since it started, and where
    they went (``phases``: training and sampling in this process, :func:`~steerlib.core.runtime.phase`; the rest of
    this process, evaluation and data; the worker processes)."""
    t = os.times()
    n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    phases = phase_seconds()
    own = t.user + t.system
    return {
        "threads": torch.get_num_threads(),
        "cores": n_cores,
        "cpu_s": round(own + t.children_user + t.children_system, 2),
        "phases": {
            **phases,
            "evaluation and data": round(max(own - sum(phases.values()), 0.0), 2),
            "worker processes": round(t.children_user + t.children_system, 2),
        },
    }


def write_metrics(
    out_dir: str | Path, chapter: str, config: Any, claims: Iterable[Claim], started: float, extra: dict | None = None
) -> Path:
    """Write ``metrics.json`` (chapter, config, versions, when it finished, wall time, ``_resources()``, claims,
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
        "machine": machine(),
        "claims": [c.as_dict() for c in claims],
        "extra": jsonable(extra or {}),
    }
    return _write(out_dir / "metrics.json", record)


def _write(path: Path, record: dict) -> Path:
    tmp = path.with_name(f"metrics.json.{os.getpid()}.tmp")  # readers (the scorecard, tests) never see half a file
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    return path


def read_metrics(path: str | Path) -> dict:
    """The record written by :func:`write_metrics` at ``path``."""
    check_type("path", path, (str, os.PathLike), "the path of a metrics.json")
    return json.loads(Path(path).read_text())


def add_to_metrics(out_dir: str | Path, name: str, value: Any) -> Path:
    """Add ``value`` (made plain, :func:`~steerlib.core.cache.jsonable`) under ``name`` to ``<out_dir>/metrics.json``
    (written by :func:`write_metrics` first), e.g. a chapter's scale sweep; return its path."""
    check_type("out_dir", out_dir, (str, os.PathLike), "a folder path")
    check_nonempty("name", check_type("name", name, str, "the record's new field, e.g. 'sweep'"))
    path = Path(out_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"out_dir={str(out_dir)!r} holds no metrics.json; run the chapter with record=True first"
        )
    record = read_metrics(path)
    record[name] = jsonable(value)
    return _write(path, record)
