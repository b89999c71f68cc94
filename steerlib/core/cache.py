"""Run caching: results and checkpoints stored under a hash of the full configuration.

A run's key is the SHA-256 of its configuration as canonical JSON, so re-executing a chapter reads the cached
result, a changed configuration never reads a stale one, and a run interrupted mid-training resumes from its last
checkpoint. Entries live in ``$STEERLIB_CACHE`` (default ``~/.cache/steerlib``) as
``<kind>/<key>/{config.json, result.pt, checkpoint.pt}``.

Entries hold plain data only (tensors, NumPy arrays, DataFrames, dicts, lists, numbers, strings), never pickled
steerlib classes, and are read with ``torch.load(weights_only=True)``: renaming or moving a class costs a cache miss,
never a crash. A dataclass is stored as the dict of its fields and rebuilt by the reader (``as_type``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import types
import typing
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch

from steerlib.core.checks import check_type

CACHE_ENV = "STEERLIB_CACHE"
CACHE_VERSION = 2  # bump when a change in steerlib makes old cached results wrong (2: plain data only)

T = TypeVar("T")


def jsonable(obj: Any) -> Any:
    """``obj`` as JSON-ready data: dataclasses and mappings become dicts, sequences lists, anything else its repr."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def config_key(config: Any) -> str:
    """First 16 hex digits of the SHA-256 of ``config`` as canonical JSON (dataclasses become dicts)."""
    text = json.dumps({"v": CACHE_VERSION, "config": jsonable(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------- plain data


def to_plain(obj: Any) -> Any:
    """``obj`` as data that ``torch.load(weights_only=True)`` reads: dataclasses become dicts of their fields,
    arrays and DataFrames tagged dicts; tensors, numbers, strings, lists, tuples and dicts stay as they are."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, pd.DataFrame):
        if not isinstance(obj.index, pd.RangeIndex):
            obj = obj.reset_index()
        return {"__dataframe__": [[to_plain(c), to_plain(obj[c].to_numpy())] for c in obj.columns]}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "biuf":
            return {"__ndarray__": torch.from_numpy(np.array(obj, copy=True))}
        return {"__ndarray_list__": obj.tolist(), "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj) if type(obj) in (list, tuple) else tuple(map(to_plain, obj))
    return obj


def _untag(data: Any) -> Any:
    if isinstance(data, dict):
        if "__ndarray__" in data:
            return data["__ndarray__"].numpy()
        if "__ndarray_list__" in data:
            return np.array(data["__ndarray_list__"], dtype=object).reshape(data["shape"])
        if "__dataframe__" in data:
            return pd.DataFrame({_untag(c): _untag(v) for c, v in data["__dataframe__"]})
        return {k: _untag(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_untag(v) for v in data)
    return data


def from_plain(data: Any, as_type: Any = None) -> Any:
    """Undo :func:`to_plain`; with ``as_type`` (a dataclass, or e.g. ``list[SomeDataclass]``) rebuild that type."""
    if as_type is None or data is None:
        return _untag(data)
    origin, args = typing.get_origin(as_type), typing.get_args(as_type)
    if dataclasses.is_dataclass(as_type):
        hints = typing.get_type_hints(as_type)
        return as_type(
            **{f.name: from_plain(data[f.name], hints[f.name]) for f in dataclasses.fields(as_type) if f.name in data}
        )
    if origin in (list, tuple) and args:
        item = args[0]
        values = [from_plain(v, item) for v in data]
        return tuple(values) if origin is tuple else values
    if origin in (dict, Mapping) and len(args) == 2:
        return {k: from_plain(v, args[1]) for k, v in data.items()}
    if origin in (typing.Union, types.UnionType):
        return from_plain(data, next((a for a in args if a is not type(None)), None))
    return _untag(data)


def schema(as_type: Any, _seen: frozenset = frozenset()) -> Any:
    """The shape of a type as plain data: a dataclass becomes ``{field: schema of its type}`` (a dataclass met again
    inside itself, its name), a generic its origin and arguments, anything else its name. Put in a cache key, it
    makes results cached before a field was added or removed miss instead of failing to load."""
    if dataclasses.is_dataclass(as_type):
        if as_type in _seen:
            return as_type.__name__
        hints = typing.get_type_hints(as_type)
        return {f.name: schema(hints[f.name], _seen | {as_type}) for f in dataclasses.fields(as_type)}
    if args := typing.get_args(as_type):
        return [str(typing.get_origin(as_type)), *(schema(a, _seen) for a in args)]
    return getattr(as_type, "__name__", repr(as_type))


def _atomic_save(obj: Any, path: Path) -> None:
    """Write to a temporary file of this process, then rename: readers never see a partial file, and two processes
    computing the same run at once (tests, notebooks) each write a whole file; the last rename wins."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    torch.save(to_plain(obj), tmp)
    os.replace(tmp, path)


def _read(path: Path, as_type: Any = None) -> Any:
    return from_plain(torch.load(path, map_location="cpu", weights_only=True), as_type)


class RunCache:
    """A directory of cached runs. ``enabled=False`` turns it into a no-op (always recompute, never write).

    ``hits`` and ``misses`` count, per kind, the results this instance found and did not find (:meth:`load`): a
    chapter run after its jobs shows no miss of a training kind."""

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True):
        check_type("root", root, (str, os.PathLike, type(None)), "a folder path or None")
        if root is not None and not str(root):
            raise ValueError("root='' is not a folder; give a path, or None for $STEERLIB_CACHE")
        self.root = Path(root or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "steerlib")
        self.enabled = check_type("enabled", enabled, bool, "True or False")
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()

    def path(self, kind: str, config: Any) -> Path:
        """The folder of one run (reading never creates it); ``kind`` names a folder of the cache, e.g. ``sft``."""
        check_type("kind", kind, str, "a folder name such as 'sft'")
        if not kind or kind in (".", "..") or "/" in kind or os.sep in kind:
            raise ValueError(f"kind={kind!r} is not a folder name; give e.g. 'sft' (no slashes)")
        return self.root / kind / config_key(config)

    def entry(self, kind: str, config: Any) -> Path:
        """The folder of one run, created with its ``config.json`` for writing."""
        path = self.path(kind, config)
        if self.enabled and not path.exists():
            path.mkdir(parents=True, exist_ok=True)
            (path / "config.json").write_text(json.dumps(jsonable(config), indent=1, sort_keys=True))
        return path

    def load(self, kind: str, config: Any, as_type: Any = None) -> Any | None:
        """The cached result of this run (rebuilt as ``as_type`` if given), or None."""
        path = self.path(kind, config) / "result.pt"
        found = _read(path, as_type) if self.enabled and path.exists() else None
        (self.misses if found is None else self.hits)[kind] += 1
        return found

    def save(self, kind: str, config: Any, result: Any) -> None:
        if self.enabled:
            entry = self.entry(kind, config)
            _atomic_save(result, entry / "result.pt")
            (entry / "checkpoint.pt").unlink(missing_ok=True)

    def cached(self, kind: str, config: Any, compute: Callable[[], T], as_type: Any = None) -> T:
        """Return the cached result of ``compute`` for ``config``, computing and storing it if absent."""
        check_type("compute", compute, Callable, "a function of no arguments")
        result = self.load(kind, config, as_type)
        if result is None:
            result = compute()
            self.save(kind, config, result)
        return result

    def load_checkpoint(self, kind: str, config: Any) -> Any | None:
        """The last checkpoint of an unfinished run, or None."""
        path = self.path(kind, config) / "checkpoint.pt"
        return _read(path) if self.enabled and path.exists() else None

    def save_checkpoint(self, kind: str, config: Any, state: Any) -> None:
        if self.enabled:
            _atomic_save(state, self.entry(kind, config) / "checkpoint.pt")

    def discard(self, kind: str, config: Any) -> None:
        """Remove a run's entry (e.g. an intermediate whose product is cached elsewhere); absent, nothing happens."""
        if self.enabled:
            shutil.rmtree(self.path(kind, config), ignore_errors=True)
