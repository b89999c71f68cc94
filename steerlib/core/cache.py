"""Run caching: results and checkpoints stored under a hash of the full configuration.

A run's key is the SHA-256 of its configuration as canonical JSON, so re-executing a chapter reads the cached
result, a changed configuration never reads a stale one, and a run interrupted mid-training resumes from its last
checkpoint. Entries live in ``$STEERLIB_CACHE`` (default ``~/.cache/steerlib``) as
``<kind>/<key>/{config.json, result.pt, checkpoint.pt}``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

CACHE_ENV = "STEERLIB_CACHE"
CACHE_VERSION = 1  # bump when a change in steerlib makes old cached results wrong


def jsonable(obj: Any) -> Any:
    """``obj`` as JSON-ready data: dataclasses and mappings become dicts, sequences lists, anything else its repr."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def config_key(config: Any) -> str:
    """First 16 hex digits of the SHA-256 of ``config`` as canonical JSON (dataclasses become dicts)."""
    text = json.dumps({"v": CACHE_VERSION, "config": jsonable(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _atomic_save(obj: Any, path: Path) -> None:
    """Write to a temporary file of this process, then rename: readers never see a partial file, and two processes
    computing the same run at once (tests, notebooks) each write a whole file; the last rename wins."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class RunCache:
    """A directory of cached runs. ``enabled=False`` turns it into a no-op (always recompute, never write)."""

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True):
        self.root = Path(root or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "steerlib")
        self.enabled = enabled

    def entry(self, kind: str, config: Any) -> Path:
        """The folder of one run; created with its ``config.json`` on first use."""
        path = self.root / kind / config_key(config)
        if self.enabled and not path.exists():
            path.mkdir(parents=True, exist_ok=True)
            (path / "config.json").write_text(json.dumps(jsonable(config), indent=1, sort_keys=True))
        return path

    def load(self, kind: str, config: Any) -> Any | None:
        """The cached result of this run, or None."""
        path = self.entry(kind, config) / "result.pt"
        if not (self.enabled and path.exists()):
            return None
        return torch.load(path, map_location="cpu", weights_only=False)

    def save(self, kind: str, config: Any, result: Any) -> None:
        if self.enabled:
            entry = self.entry(kind, config)
            _atomic_save(result, entry / "result.pt")
            (entry / "checkpoint.pt").unlink(missing_ok=True)

    def cached(self, kind: str, config: Any, compute: Callable[[], Any]) -> Any:
        """Return the cached result of ``compute`` for ``config``, computing and storing it if absent."""
        result = self.load(kind, config)
        if result is None:
            result = compute()
            self.save(kind, config, result)
        return result

    def load_checkpoint(self, kind: str, config: Any) -> Any | None:
        """The last checkpoint of an unfinished run, or None."""
        path = self.entry(kind, config) / "checkpoint.pt"
        if not (self.enabled and path.exists()):
            return None
        return torch.load(path, map_location="cpu", weights_only=False)

    def save_checkpoint(self, kind: str, config: Any, state: Any) -> None:
        if self.enabled:
            _atomic_save(state, self.entry(kind, config) / "checkpoint.pt")
