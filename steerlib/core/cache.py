"""Run caching: results and checkpoints stored under a hash of the full configuration.

A run's key is the SHA-256 of its configuration as canonical JSON, so re-executing a chapter reads the cached
result, a changed configuration never reads a stale one, and a run interrupted mid-training resumes from its last
checkpoint. Entries live in ``$STEERLIB_CACHE`` (default ``~/.cache/steerlib``) as
``<kind>/<key>/{config.json, result.pt, checkpoint.pt}``.

Entries hold plain data only (tensors, NumPy arrays, DataFrames, dicts, lists, numbers, strings), never pickled
steerlib classes, and are read with ``torch.load(weights_only=True)``: renaming or moving a class costs a cache miss,
never a crash. A dataclass is stored as the dict of its fields and rebuilt by the reader (``as_type``).

Faults. Every file is written whole or not at all: into a temporary file beside it (``*.tmp``), flushed to the disk,
then renamed. A ``.pt`` file carries its own checksum: its zip archive ends with a comment, the record, holding the
SHA-256 of the archive and the steerlib and cache versions that wrote it, so file and checksum land in one rename
(``torch.load`` ignores the comment). A load checks it: a file that is truncated, unreadable or fails its checksum is
moved aside into ``<root>/quarantine/`` (:meth:`RunCache.quarantine`), reported once (a :class:`CacheWarning` naming
both paths) and recomputed. A file that changed in the last ``SETTLE_S`` seconds, or while it was read, may still be
in writing (by a copy, another tool) and is only a miss. Files written before records existed (plain torch archives,
steerlib's entries up to 0.1.0) still load; only unpickling checks them. A failed write (a full disk, no permission)
raises :class:`CacheWriteError`, naming the cache folder and the size, and leaves the entry's earlier files as they
were; temporary files of writers that were killed are removed when their entry is next written.
The key holds ``CACHE_VERSION`` (and a result's schema), never the steerlib version: a release keeps the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import time
import types
import typing
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
import pandas as pd
import torch

from steerlib import __version__
from steerlib.core.checks import check_range, check_type

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so a parallel build may train a shared model twice
    fcntl = None

CACHE_ENV = "STEERLIB_CACHE"
CACHE_VERSION = 2  # bump when a change in steerlib makes old cached results wrong (2: plain data only)
LOCK = ".lock"  # an entry's lock file (RunCache.claim)
QUARANTINE = "quarantine"  # the cache's folder of files moved aside (no kind may take the name)
SETTLE_S = 10.0  # a file changed this recently may still be in writing: failing its check is a miss, not a fault
TEMPORARY = ".tmp"  # the suffix of a file in writing

_RECORD = 256  # bytes of the checksum record, the archive's comment
_MAGIC = b"steerlib-cache "
_END = b"PK\x05\x06"  # a zip archive's end record: 22 bytes, the last two the length of the comment that follows
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]  # in temporary names: the writer's machine
_TEMPORARY_NAME = re.compile(r"\.(\d+)-[0-9a-f]{8}\.([0-9a-f]{8})\.tmp$")  # <file>.<pid>-<random>.<host>.tmp
_DAY_S = 86400.0

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


class CacheWarning(UserWarning):
    """A cache file could not be used: it was moved aside (or left, unused, where it could not be) and recomputed."""


class CorruptEntry(Exception):
    """A cache file that cannot be used: truncated, unreadable, or changed since it was written."""


class CacheWriteError(OSError):
    """A write into the run cache failed (a full disk, no permission): the message names the folder and the size."""


def human_size(n: int) -> str:
    """``n`` bytes in binary units, e.g. ``"1.5 MiB"``."""
    size = float(check_range("n", n, 0, integer=True))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _tensors(plain: Any) -> Iterator[torch.Tensor]:
    if isinstance(plain, torch.Tensor):
        yield plain
    elif isinstance(plain, Mapping):
        for value in plain.values():
            yield from _tensors(value)
    elif isinstance(plain, (list, tuple)):
        for value in plain:
            yield from _tensors(value)


def _nbytes(plain: Any) -> int:
    """The bytes of the tensors in ``plain``, each storage once: about the size of its torch archive."""
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in _tensors(plain)}.values())


class _Sink:
    """A file in writing that hashes what goes through it, keeps its last 22 bytes and the first error writing it."""

    def __init__(self, file: BinaryIO):
        self.file, self.sha, self.tail = file, hashlib.sha256(), b""
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        try:
            self.file.write(view)
        except OSError as err:
            self.error = self.error or err
            raise
        self.sha.update(view)
        self.tail = (self.tail + bytes(view[-22:]))[-22:]
        return view.nbytes

    def flush(self) -> None:
        self.file.flush()


def _write(path: Path, root: Path, size: int, fill: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` whole or not at all: ``fill`` writes a temporary file beside it, which is flushed to the disk
    and renamed over ``path``. Any failure removes the temporary file; an OSError (a full disk, no permission)
    becomes a :class:`CacheWriteError` naming the cache folder and the size (``size``: about what ``fill`` writes)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.{_HOST}{TEMPORARY}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as file:
            fill(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except OSError as err:
        written = tmp.stat().st_size if tmp.exists() else 0
        raise CacheWriteError(
            err.errno,
            f"could not write {path.name} into the run cache {root} ({path.parent}): {err.strerror or err}; about "
            f"{human_size(max(size, written))} ({max(size, written)} bytes) to write, {written} written when it "
            f"failed. The entry's earlier files are as they were. Free space in {root} or make it writable, or point "
            f"${CACHE_ENV} at another folder.",
        ) from err
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _save(obj: Any, path: Path, root: Path) -> None:
    """Write ``obj`` as plain data to ``path``: a torch archive whose comment is its checksum record."""
    plain = to_plain(obj)

    def fill(file: BinaryIO) -> None:
        sink = _Sink(file)
        try:
            torch.save(plain, sink)
        except RuntimeError:  # torch's own error about the archive, masking the failed write
            if sink.error is not None:
                raise sink.error from None
            raise
        if sink.tail[:4] != _END or sink.tail[-2:] != b"\0\0":
            raise RuntimeError("torch.save ended its archive without an empty comment, where the record goes")
        record = json.dumps({"sha256": sink.sha.hexdigest(), "steerlib": __version__, "cache": CACHE_VERSION})
        file.seek(-2, os.SEEK_END)  # the comment's length, then the comment
        file.write(struct.pack("<H", _RECORD) + (_MAGIC + record.encode()).ljust(_RECORD))

    _write(path, root, _nbytes(plain), fill)


def _record(file: BinaryIO, size: int) -> dict | None:
    """The record at the end of an open cache file of ``size`` bytes, None for a plain torch archive; raises
    :class:`CorruptEntry` when the file ends in neither."""
    file.seek(max(0, size - _RECORD - 2))
    tail = file.read()
    if len(tail) == _RECORD + 2 and tail.startswith(struct.pack("<H", _RECORD) + _MAGIC):
        try:
            record = json.loads(tail[2 + len(_MAGIC) :].decode())
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise CorruptEntry("damaged: its checksum record does not parse")
        return record
    if tail[-22:-18] == _END and tail[-2:] == b"\0\0":
        return None
    raise CorruptEntry(f"truncated or damaged: its {size} bytes end neither in a checksum record nor a torch archive")


def _check(file: BinaryIO, size: int) -> dict | None:
    """:func:`_record` of an open file, after checking the archive against the record's SHA-256."""
    record = _record(file, size)
    if record is not None:
        sha, left = hashlib.sha256(), size - _RECORD - 2
        file.seek(0)
        while left > 0 and (chunk := file.read(min(left, 1 << 20))):
            sha.update(chunk)
            left -= len(chunk)
        sha.update(b"\0\0")  # the comment's length as torch wrote it
        if sha.hexdigest() != record.get("sha256"):
            raise CorruptEntry("changed since it was written: its bytes fail the SHA-256 checksum written with them")
    return record


def read_record(path: str | os.PathLike) -> dict | None:
    """The record of cache file ``path`` (``sha256``, and the ``steerlib`` and ``cache`` versions that wrote it),
    not checked; None for a file written before records. Raises :class:`CorruptEntry` when it ends in neither."""
    path = Path(check_type("path", path, (str, os.PathLike), "the path of a cache file (a .pt file of an entry)"))
    with open(path, "rb") as file:
        return _record(file, os.fstat(file.fileno()).st_size)


def check_file(path: str | os.PathLike) -> dict | None:
    """:func:`read_record`, after checking the file against the record's checksum (a file written before records
    is not checked). Raises :class:`CorruptEntry` saying what is wrong."""
    path = Path(check_type("path", path, (str, os.PathLike), "the path of a cache file (a .pt file of an entry)"))
    with open(path, "rb") as file:
        return _check(file, os.fstat(file.fileno()).st_size)


def _settled(path: Path, seen: os.stat_result | None) -> bool:
    """Whether ``path`` is still the file that was read (same inode, size and time, if it could be opened:
    ``seen``) and has not changed for ``SETTLE_S`` seconds; otherwise another process may be writing or replacing
    it."""
    try:
        now = path.stat()
    except FileNotFoundError:
        return False
    same = seen is None or (now.st_ino, now.st_size, now.st_mtime_ns) == (seen.st_ino, seen.st_size, seen.st_mtime_ns)
    return same and time.time() - now.st_mtime >= SETTLE_S


def _line(err: BaseException) -> str:
    """The first line of an error's message (its repr if it has none)."""
    return str(err).splitlines()[0] if str(err).strip() else repr(err)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def is_stale_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a temporary file (``*.tmp``) whose writer is gone: a process of this machine that has
    ended, or (another machine's, or an older steerlib's) one that has not touched it for a day."""
    path = Path(check_type("path", path, (str, os.PathLike), "a file path"))
    if not path.name.endswith(TEMPORARY):
        return False
    if (match := _TEMPORARY_NAME.search(path.name)) and match[2] == _HOST:
        return not _alive(int(match[1]))
    try:
        return time.time() - path.stat().st_mtime > _DAY_S
    except FileNotFoundError:
        return False


class RunCache:
    """A directory of cached runs. ``enabled=False`` turns it into a no-op (always recompute, never write).

    ``hits`` and ``misses`` count, per kind, the results this instance found and did not find (:meth:`load`): a
    chapter run after its jobs shows no miss of a training kind. A file that fails its check counts as a miss."""

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
        if not kind or kind in (".", "..", QUARANTINE) or "/" in kind or os.sep in kind:
            raise ValueError(
                f"kind={kind!r} is not a folder name for runs; give e.g. 'sft' (no slashes; {QUARANTINE!r} holds "
                "the files moved aside)"
            )
        return self.root / kind / config_key(config)

    def entry(self, kind: str, config: Any) -> Path:
        """The folder of one run, created with its ``config.json`` for writing; temporary files that writers now
        gone left there (:func:`is_stale_temporary`) are removed."""
        path = self.path(kind, config)
        if self.enabled:
            if not (path / "config.json").exists():
                text = json.dumps(jsonable(config), indent=1, sort_keys=True).encode()
                _write(path / "config.json", self.root, len(text), lambda file: file.write(text))
            for tmp in path.glob(f"*{TEMPORARY}"):
                if is_stale_temporary(tmp):
                    tmp.unlink(missing_ok=True)
        return path

    def _read(self, kind: str, config: Any, name: str, as_type: Any = None) -> Any | None:
        """File ``name`` of this run's entry, checked and rebuilt as ``as_type``; None when it is absent, in
        writing, or unusable (then moved aside by :meth:`quarantine`)."""
        path = self.path(kind, config) / name
        if not self.enabled:
            return None
        seen = None
        try:
            with open(path, "rb") as file:
                seen = os.fstat(file.fileno())
                _check(file, seen.st_size)
                file.seek(0)
                data = torch.load(file, map_location="cpu", weights_only=True)
        except FileNotFoundError:  # not there (any more)
            return None
        except MemoryError:
            raise
        except Exception as err:  # a failed check; torch's many kinds (a damaged archive, a pickled class); the disk's
            if _settled(path, seen):
                self.quarantine(path, str(err) if isinstance(err, CorruptEntry) else f"unreadable: {_line(err)}")
            return None
        return from_plain(data, as_type)

    def load(self, kind: str, config: Any, as_type: Any = None) -> Any | None:
        """The cached result of this run (rebuilt as ``as_type`` if given), or None."""
        found = self._read(kind, config, "result.pt", as_type)
        (self.misses if found is None else self.hits)[kind] += 1
        return found

    def save(self, kind: str, config: Any, result: Any) -> None:
        """Store ``result`` as this run's result, then remove its checkpoint."""
        if self.enabled:
            entry = self.entry(kind, config)
            _save(result, entry / "result.pt", self.root)
            (entry / "checkpoint.pt").unlink(missing_ok=True)

    @contextlib.contextmanager
    def claim(self, kind: str, config: Any, as_type: Any = None) -> Iterator[Any | None]:
        """Hold this run for this process while it computes it: another process that claims the same run waits here
        until the first is done. Yields the run's result if another process stored it while this one waited (a
        hit; compute nothing then), else None, so the chapters of a parallel build never train one model twice.

        An advisory lock (``fcntl.flock``) on the entry's ``.lock`` file, which the system releases if the process
        dies. Nothing is held where there is no ``fcntl`` (Windows), when the cache is off, or for a run that
        several processes compute together (torch.distributed's ``$WORLD_SIZE`` > 1, e.g. ``accelerate launch``),
        where every process must enter the computation."""
        if not self.enabled or fcntl is None or int(os.environ.get("WORLD_SIZE", "1")) > 1:
            yield None
            return
        with open(self.entry(kind, config) / LOCK, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                found = self._read(kind, config, "result.pt", as_type)
                if found is not None:
                    self.hits[kind] += 1
                yield found
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def cached(self, kind: str, config: Any, compute: Callable[[], T], as_type: Any = None) -> T:
        """Return the cached result of ``compute`` for ``config``, computing and storing it if absent (under
        :meth:`claim`, so two processes asking at once compute it once)."""
        check_type("compute", compute, Callable, "a function of no arguments")
        result = self.load(kind, config, as_type)
        if result is None:
            with self.claim(kind, config, as_type) as result:
                if result is None:
                    result = compute()
                    self.save(kind, config, result)
        return result

    def load_checkpoint(self, kind: str, config: Any) -> Any | None:
        """The last checkpoint of an unfinished run, or None."""
        return self._read(kind, config, "checkpoint.pt")

    def save_checkpoint(self, kind: str, config: Any, state: Any) -> None:
        """Store ``state`` as this run's checkpoint, replacing the last one only once it is whole."""
        if self.enabled:
            _save(state, self.entry(kind, config) / "checkpoint.pt", self.root)

    def quarantine(self, path: str | os.PathLike, reason: str) -> Path | None:
        """Move ``path``, a file of an entry (``<root>/<kind>/<key>/<file>``), aside into
        ``<root>/quarantine/<kind>/<key>.<time>/`` with the entry's ``config.json`` and a ``reason.txt`` holding
        ``reason``, and warn once (:class:`CacheWarning`) naming both. Returns that folder, or None when the file
        could not be moved (a read-only cache: it stays, unused, and the warning says so)."""
        path = Path(check_type("path", path, (str, os.PathLike), "the path of a file of an entry"))
        check_type("reason", reason, str, "what is wrong with the file, e.g. 'truncated'")
        entry = path.parent
        if entry.parent.parent.resolve() != self.root.resolve() or entry.parent.name == QUARANTINE:
            raise ValueError(f"path={str(path)!r} is not a file of an entry of the cache {self.root}")
        folder = self.root / QUARANTINE / entry.parent.name / f"{entry.name}.{time.strftime('%Y%m%d-%H%M%S')}"
        folder = folder.with_name(f"{folder.name}-{uuid.uuid4().hex[:4]}")
        try:
            folder.mkdir(parents=True)
            os.replace(path, folder / path.name)
        except OSError as err:
            with contextlib.suppress(OSError):
                folder.rmdir()
            warnings.warn(
                f"steerlib run cache: {path} is {reason}. It is not used, and could not be moved aside ({err}).",
                CacheWarning,
                stacklevel=2,
            )
            return None
        with contextlib.suppress(OSError):
            (folder / "reason.txt").write_text(f"{path}\n{reason}\n")
            shutil.copy2(entry / "config.json", folder / "config.json")
        warnings.warn(
            f"steerlib run cache: {path} is {reason}. Moved it aside to {folder}; it will be recomputed "
            "(python -m steerlib.cache list --quarantine shows what was moved aside, prune --quarantine deletes it).",
            CacheWarning,
            stacklevel=2,
        )
        return folder

    def discard(self, kind: str, config: Any) -> None:
        """Remove a run's entry (e.g. an intermediate whose product is cached elsewhere); absent, nothing happens."""
        if self.enabled:
            shutil.rmtree(self.path(kind, config), ignore_errors=True)
