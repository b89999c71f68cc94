"""The run cache as a tool: what it holds, whether its files are intact, and pruning what is no longer wanted.

    python -m steerlib.cache                                     # per chapter and kind: entries, size, ages
    python -m steerlib.cache list --entries --chapter reversion  # one line per entry
    python -m steerlib.cache verify [--quarantine]               # check every file against its checksum
    python -m steerlib.cache prune --kind sft --older-than 30d --dry-run

The cache is ``--cache DIR``, else ``$STEERLIB_CACHE``, else ``~/.cache/steerlib``
(:class:`~steerlib.core.cache.RunCache`), and its entries are ``<kind>/<key>/``. A kind belongs to chapter C (a key of
:data:`steerlib.book.CHAPTERS`) when it is C (C's whole results, one entry per replicate and setting) or starts with
``C-`` (C's own runs, e.g. ``pre-memorization-run``); every other kind (``ensemble``, ``ladders``, ``ood_score``,
``sft``, ``rl``, ``homogeneous``, ``hf-model``, ...) holds models and numbers that several chapters may share, is
listed as *shared* and is pruned by kind. An entry is ``done`` (it holds a result), ``unfinished`` (a checkpoint
only: a run that was stopped, which resumes from it), ``empty`` (its ``config.json`` only: stopped before its first
checkpoint, or its file was moved aside) or ``other`` (no torch file, e.g. a converted model). Files that failed
their check are ``quarantined`` (in ``quarantine/<kind>/``, with the entry's ``config.json`` and the reason), and a
``temporary`` is a half-written file whose writer was killed. Prune while no chapter runs: a run whose entry is
removed under it trains again.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Collection, Sequence
from pathlib import Path

import torch

from steerlib.book import CHAPTERS
from steerlib.core.cache import (
    QUARANTINE,
    SETTLE_S,
    TEMPORARY,
    CacheWarning,
    CorruptEntry,
    RunCache,
    check_file,
    human_size,
    is_stale_temporary,
    read_record,
)
from steerlib.core.checks import check_choices, check_range, check_type

STATES = ("done", "unfinished", "empty", "other", "quarantined", "temporary")
RUNS = ("done", "unfinished", "empty", "other")  # the states of runs' entries (what prune selects unless told)
FILES = ("result.pt", "checkpoint.pt")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One item of the cache: a run's folder ``<kind>/<key>``, a quarantined file's folder, or a temporary file."""

    kind: str
    key: str
    path: Path
    chapter: str | None  # None: a kind the chapters share
    state: str  # one of STATES
    size: int  # bytes
    modified: float  # when its newest file was written (seconds since the epoch)
    detail: str = ""  # the steerlib version that wrote it; for a quarantined file, why


def chapter_of(kind: str) -> str | None:
    """The chapter whose runs ``kind`` holds: the chapter called ``kind``, else the longest chapter name that
    ``kind`` starts with followed by ``-``; None for a kind the chapters share (e.g. ``ensemble``)."""
    check_type("kind", kind, str, "a folder name of the cache, e.g. 'reversion' or 'sft'")
    if kind in CHAPTERS:
        return kind
    return max((c for c in CHAPTERS if kind.startswith(f"{c}-")), key=len, default=None)


def _files(folder: Path) -> list[tuple[Path, os.stat_result]]:
    """Every file under ``folder`` with its stat (files removed meanwhile left out)."""
    found = []
    for path in folder.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if (info := path.stat()) and path.is_file():
                found.append((path, info))
    return found


def _writer(folder: Path) -> str:
    """Who wrote the entry's result (else its checkpoint), from its record."""
    for name in FILES:
        try:
            record = read_record(folder / name)
        except FileNotFoundError:
            continue
        except CorruptEntry:
            return "damaged (verify checks it)"
        return f"steerlib {record.get('steerlib', '?')}" if record else "before checksums"
    return ""


def _entry(kind: str, folder: Path, files: list[tuple[Path, os.stat_result]], state: str, detail: str) -> Entry:
    return Entry(
        kind=kind,
        key=folder.name.split(".")[0],
        path=folder,
        chapter=chapter_of(kind),
        state=state,
        size=sum(info.st_size for _, info in files),
        modified=max((info.st_mtime for _, info in files), default=folder.stat().st_mtime),
        detail=detail,
    )


def _run(kind: str, folder: Path) -> list[Entry]:
    """A run's entry, and the temporary files its killed writers left."""
    files = _files(folder)
    stale = [(p, info) for p, info in files if p.name.endswith(TEMPORARY) and is_stale_temporary(p)]
    names = {p.name for p, _ in files if not p.name.endswith(TEMPORARY)}
    state = "done" if FILES[0] in names else "unfinished" if FILES[1] in names else "other"
    state = "empty" if names <= {"config.json"} else state
    run = _entry(kind, folder, [f for f in files if f not in stale], state, _writer(folder))
    return [run] + [dataclasses.replace(_entry(kind, folder, [f], "temporary", ""), path=f[0]) for f in stale]


def scan(root: str | os.PathLike | None = None) -> list[Entry]:
    """Every entry of the cache at ``root`` (default: ``$STEERLIB_CACHE``, else ``~/.cache/steerlib``), by kind and
    key: runs, quarantined files and temporary files left by killed writers (:data:`STATES`)."""
    root = RunCache(root).root
    entries: list[Entry] = []
    for folder in sorted(root.glob("*/*")):
        kind = folder.parent.name
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # removed while it was read: gone
            if kind == QUARANTINE:
                for moved in sorted(folder.iterdir()):
                    note = moved / "reason.txt"
                    reason = " ".join(note.read_text().splitlines()[1:]) if note.exists() else ""
                    entries.append(_entry(folder.name, moved, _files(moved), "quarantined", reason))
            elif folder.is_dir():
                entries += _run(kind, folder)
    return entries


def select(
    entries: Sequence[Entry],
    kinds: Collection[str] = (),
    chapters: Collection[str] = (),
    older_than: float | None = None,
    states: Collection[str] = STATES,
) -> list[Entry]:
    """The ``entries`` of one of ``kinds`` or of one of ``chapters``' own kinds (both empty: any kind), last written
    more than ``older_than`` seconds ago (None: at any time), in one of ``states``."""
    check_type("entries", entries, (list, tuple), "a list of Entry (from scan)")
    check_type("kinds", kinds, (list, tuple, set), "a list of kinds, e.g. ['sft']")
    if check_type("chapters", chapters, (list, tuple, set), "a list of chapter names"):
        check_choices("chapters", tuple(chapters), CHAPTERS)
    if older_than is not None:
        check_range("older_than", older_than, 0)
    check_choices("states", tuple(check_type("states", states, (list, tuple, set), f"a list of {STATES}")), STATES)
    now = time.time()
    return [
        e
        for e in entries
        if (e.kind in kinds or e.chapter in chapters or not (kinds or chapters))
        and (older_than is None or now - e.modified > older_than)
        and e.state in states
    ]


def _outcome(path: Path) -> tuple[str, str] | None:
    """(outcome, detail) of one torch file of a run (see :func:`verify`); None when it is not there."""
    try:
        record = check_file(path)
        if record is None:
            torch.load(path, map_location="cpu", weights_only=True)
            return "unchecked", "written before checksums; it reads"
        return "ok", f"steerlib {record.get('steerlib', '?')}"
    except FileNotFoundError:
        return None
    except Exception as err:  # CorruptEntry, or torch's errors unpickling a file written before checksums
        reason = str(err) if isinstance(err, CorruptEntry) else f"unreadable: {str(err).splitlines()[0]}"
        with contextlib.suppress(FileNotFoundError):
            return ("in writing" if time.time() - path.stat().st_mtime < SETTLE_S else "corrupt"), reason
        return None


def verify(entries: Sequence[Entry]) -> list[tuple[Path, str, str]]:
    """Check every torch file of the runs among ``entries`` against its checksum (a file written before checksums:
    that it reads). Returns (file, outcome, detail) with outcome ``ok``, ``unchecked`` (written before checksums, and
    it reads), ``corrupt``, or ``in writing`` (it fails but changed in the last ``SETTLE_S`` seconds)."""
    check_type("entries", entries, (list, tuple), "a list of Entry (from scan)")
    found = []
    for entry in entries:
        check_type("entries", entry, Entry, "a list of Entry (from scan)")
        if entry.state in ("done", "unfinished"):
            found += [(p, *o) for p in (entry.path / name for name in FILES) if (o := _outcome(p)) is not None]
    return found


def prune(entries: Sequence[Entry], dry_run: bool = False) -> int:
    """Remove ``entries`` (a run's or a quarantined file's folder, or a temporary file) and the folders they leave
    empty; with ``dry_run``, nothing. Returns the bytes freed (or that would be)."""
    check_type("entries", entries, (list, tuple), "a list of Entry (from scan, then select)")
    check_type("dry_run", dry_run, bool, "True or False")
    for entry in entries:
        check_type("entries", entry, Entry, "a list of Entry (from scan, then select)")
        if dry_run:
            continue
        if entry.path.is_dir():
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            entry.path.unlink(missing_ok=True)
        levels = {"quarantined": 2, "temporary": 0}.get(entry.state, 1)  # a kind's folder; quarantine/ too
        for folder in entry.path.parents[:levels]:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
    return sum(e.size for e in entries)


# ------------------------------------------------------------------------------------------- the command line


def _age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f} {unit}"
    return f"{seconds:.0f} s"


def _duration(text: str) -> float:
    """``30d``, ``12h``, ``90min``, ``45s`` (a bare number: days) in seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(d|h|min|m|s)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"--older-than={text!r} is not an age; give e.g. 30d, 12h, 90min or 45s")
    return float(match[1]) * {"d": 86400, "h": 3600, "min": 60, "m": 60, "s": 1}[match[2] or "d"]


def _table(entries: list[Entry]) -> list[str]:
    """Entries, size and ages per chapter (then shared, quarantined, temporary) and kind, one line each."""
    now = time.time()

    def row(label: str, group: list[Entry]) -> str:
        unfinished = sum(e.state == "unfinished" for e in group)
        newest, oldest = max(e.modified for e in group), min(e.modified for e in group)
        return (
            f"{label:42s} {len(group):7d} {unfinished:10d} {human_size(sum(e.size for e in group)):>10s} "
            f"{_age(now - newest):>7s} {_age(now - oldest):>7s}"
        )

    groups = [(f"chapter {c}", [e for e in entries if e.chapter == c and e.state in RUNS]) for c in CHAPTERS]
    groups += [
        ("shared (by several chapters)", [e for e in entries if e.chapter is None and e.state in RUNS]),
        (f"quarantined (in {QUARANTINE}/)", [e for e in entries if e.state == "quarantined"]),
        ("temporary (left by killed writers)", [e for e in entries if e.state == "temporary"]),
    ]
    lines = [f"{'chapter / kind':42s} {'entries':>7s} {'unfinished':>10s} {'size':>10s} {'newest':>7s} {'oldest':>7s}"]
    for label, group in groups:
        if group:
            lines.append(row(label, group))
            lines += [row(f"  {k}", [e for e in group if e.kind == k]) for k in sorted({e.kind for e in group})]
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m steerlib.cache [list|verify|prune] ...`` (see ``--help``); returns the exit status: 1 when verify
    leaves a corrupt file in place."""
    prog = "python -m steerlib.cache"
    parser = argparse.ArgumentParser(
        prog=prog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The run cache: list what it holds, verify its files, prune entries. A kind belongs to chapter C "
        "when it is C or starts with 'C-';\nother kinds (ensemble, sft, ...) are shared by chapters and pruned by "
        "kind.",
        epilog=f"{prog}                                   # per chapter and kind: entries, size, ages\n"
        f"{prog} list --entries --kind sft           # one line per entry\n"
        f"{prog} verify --quarantine                 # check every file; move the corrupt ones aside\n"
        f"{prog} prune --chapter reversion --dry-run # what would go\n"
        f"{prog} prune --older-than 30d              # entries last written more than 30 days ago\n"
        f"{prog} prune --quarantine                  # the files moved aside",
    )
    parser.add_argument("command", nargs="?", choices=("list", "verify", "prune"), default="list")
    parser.add_argument("--cache", help="the cache folder (default: $STEERLIB_CACHE, else ~/.cache/steerlib)")
    parser.add_argument("--kind", action="append", default=[], help="only this kind (repeatable)")
    parser.add_argument("--chapter", action="append", default=[], choices=CHAPTERS, help="only its kinds (repeatable)")
    parser.add_argument("--older-than", type=_duration, metavar="AGE", help="last written before: 30d, 12h, 90min")
    parser.add_argument(
        "--quarantine", action="store_true", help="list/prune: the quarantined files; verify: move corrupt files there"
    )
    parser.add_argument("--temporaries", action="store_true", help="the temporary files of killed writers")
    parser.add_argument("--entries", action="store_true", help="list: one line per entry")
    parser.add_argument("--dry-run", action="store_true", help="prune: say what would go, remove nothing")
    args = parser.parse_args(argv)
    cache = RunCache(args.cache)
    picked = [s for s, flag in (("quarantined", args.quarantine), ("temporary", args.temporaries)) if flag]
    if args.command == "verify":
        picked = list(RUNS)
    elif args.command == "prune":
        if not (args.kind or args.chapter or args.older_than is not None or picked):
            parser.error("say what to prune: --kind, --chapter, --older-than, --quarantine or --temporaries")
        picked = picked or list(RUNS)
    entries = select(scan(cache.root), args.kind, args.chapter, args.older_than, picked or STATES)
    if args.command == "list":
        total = human_size(sum(e.size for e in entries))
        print(f"run cache {cache.root}: {total}, entries: {len(entries)}")
        print("\n".join(_table(entries)) if entries else "(nothing)")
        now = time.time()
        for e in entries if args.entries else ():
            where = e.path.relative_to(cache.root)
            print(f"{e.state:11s} {str(where):60s} {human_size(e.size):>10s} {_age(now - e.modified):>7s}  {e.detail}")
        return 0
    if args.command == "verify":
        results = verify(entries)
        corrupt = [(p, why) for p, outcome, why in results if outcome == "corrupt"]
        for path, outcome, why in results:
            if outcome != "ok":
                print(f"{outcome:10s} {path}: {why}")
        counts = {o: sum(r[1] == o for r in results) for o in ("ok", "unchecked", "corrupt", "in writing")}
        print(f"{len(results)} files: " + ", ".join(f"{n} {o}" for o, n in counts.items()))
        if corrupt and args.quarantine:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CacheWarning)
                moved = [(p, cache.quarantine(p, why)) for p, why in corrupt]
            for path, folder in moved:
                print(f"moved {path} to {folder}" if folder else f"could not move {path}")
            corrupt = [c for c, (_, folder) in zip(corrupt, moved) if folder is None]
        elif corrupt:
            print(f"a chapter moves a corrupt file aside when it reads it; {prog} verify --quarantine does it now")
        return 1 if corrupt else 0
    freed = prune(entries, dry_run=args.dry_run)
    now = time.time()
    for e in entries:
        print(
            f"{'would remove' if args.dry_run else 'removed':12s} {e.state:11s} {e.path.relative_to(cache.root)} "
            f"{human_size(e.size)}, {_age(now - e.modified)} old"
        )
    print(f"{'would free' if args.dry_run else 'freed'} {human_size(freed)} (entries: {len(entries)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
