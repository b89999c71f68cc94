"""Faults the run cache survives, each injected for real: entries truncated, cut short, bit-flipped or foreign; a
full or read-only cache folder (a size-limited tmpfs in a user namespace, a file-size limit, or a patched writer); a
SIGKILL in the middle of a write and of a chapter's training. Each test asserts what the user sees (a CacheWarning or
a CacheWriteError naming the paths), that nothing corrupt is used, that the run completes with the result of an
undisturbed run, and that nothing is left behind. The kills of a whole book build are in tests/test_run_book.py."""

from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import torch

import steerlib
from steerlib.book import execute
from steerlib.core import cache as cache_mod
from steerlib.core.cache import (
    CACHE_ENV,
    QUARANTINE,
    SETTLE_S,
    CacheWarning,
    CacheWriteError,
    RunCache,
    check_file,
    to_plain,
)

KIND, CONFIG, STEPS = "toy", {"run": 1}, 6
BIG = 1 << 20  # floats: a 4 MiB checkpoint, more than the 1 MiB the full-disk cases leave


def train(cache: RunCache, stop_at: int | None = None) -> tuple[torch.Tensor, int]:
    """A toy resumable run (w <- w / 2 + t at step t, checkpointed after each step), stopped after ``stop_at`` steps
    if given. Returns the result and the step it started from (0: from scratch)."""
    if (done := cache.load(KIND, CONFIG)) is not None:
        return done["w"], STEPS
    state = cache.load_checkpoint(KIND, CONFIG) or {"step": 0, "w": torch.zeros(64)}
    w, start = state["w"], state["step"]
    for t in range(start, STEPS):
        w = w / 2 + t
        cache.save_checkpoint(KIND, CONFIG, {"step": t + 1, "w": w})
        if t + 1 == stop_at:
            return w, start
    cache.save(KIND, CONFIG, {"w": w})
    return w, start


def assert_clean(root: Path) -> None:
    """No temporary file anywhere in the cache, and every torch file outside the quarantine passes its checksum."""
    assert not list(root.rglob(f"*{cache_mod.TEMPORARY}")), "a temporary file was left behind"
    for path in root.rglob("*.pt"):
        if QUARANTINE not in path.relative_to(root).parts:
            assert check_file(path) is not None, f"{path} has no checksum record"


def at_rest(path: Path) -> None:
    """Date ``path`` back past SETTLE_S, as a fault found later is (a file changed just now may be in writing)."""
    then = time.time() - 2 * SETTLE_S
    os.utime(path, (then, then))


def data_offset(path: Path, suffix: str) -> int:
    """Where the data of the zip record whose name ends with ``suffix`` starts in ``path``."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(suffix))
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name, extra = struct.unpack("<HH", f.read(4))
    return info.header_offset + 30 + name + extra


def flip(path: Path, offset: int) -> None:
    """Flip one bit of ``path`` at ``offset`` (as a failing disk or memory does)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "truncated": truncate,
    "emptied": lambda p: p.write_bytes(b""),
    "bit flip in a tensor": lambda p: flip(p, data_offset(p, "/data/0") + 7),
    "bit flip in the pickle": lambda p: flip(p, data_offset(p, "/data.pkl") + 20),
    "bit flip in the checksum": lambda p: flip(p, p.stat().st_size - 256 + len(b'steerlib-cache {"sha256": "')),
    "foreign file": lambda p: p.write_text("a file copied from elsewhere"),
    "foreign pickle": lambda p: torch.save(argparse.Namespace(w=1), p),  # a class: weights_only refuses it
    "old entry cut short": lambda p: (torch.save(to_plain({"w": torch.zeros(64)}), p), truncate(p)),
}


@pytest.mark.parametrize("name", ["result.pt", "checkpoint.pt"])
@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_corrupt_entry_is_moved_aside_reported_once_and_recomputed(corruption, name, tmp_path):
    """A result or checkpoint damaged at rest is never used: one CacheWarning names it and where it went
    (quarantine/, with its config.json and reason), and the run recomputes it to the undisturbed result."""
    expected, _ = train(RunCache(tmp_path / "undisturbed"))
    cache = RunCache(tmp_path / "cache")
    train(cache, stop_at=None if name == "result.pt" else 3)
    path = cache.path(KIND, CONFIG) / name
    CORRUPTIONS[corruption](path)
    at_rest(path)

    with pytest.warns(CacheWarning) as caught:
        result, start = train(cache)
    assert start == 0 and torch.equal(result, expected)  # recomputed from scratch, the undisturbed result
    (warning,) = [str(w.message) for w in caught]
    moved = list((cache.root / QUARANTINE / KIND).iterdir())
    assert len(moved) == 1 and str(path) in warning and str(moved[0]) in warning
    assert sorted(p.name for p in moved[0].iterdir()) == sorted([name, "config.json", "reason.txt"])
    assert str(path) in (moved[0] / "reason.txt").read_text()

    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # reported once: the next run finds a good entry
        again, start = train(cache)
    assert start == STEPS and torch.equal(again, expected)
    assert_clean(cache.root)


def test_a_file_still_in_writing_is_a_miss_never_quarantined(tmp_path):
    """Half a file that another tool is copying in right now is not used, not moved and not reported; whole, it
    loads."""
    source = RunCache(tmp_path / "source")
    train(source)
    whole = (source.path(KIND, CONFIG) / "result.pt").read_bytes()
    cache = RunCache(tmp_path / "cache")
    path = cache.entry(KIND, CONFIG) / "result.pt"
    path.write_bytes(whole[: len(whole) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert cache.load(KIND, CONFIG) is None
    assert path.exists() and not (cache.root / QUARANTINE).exists()
    path.write_bytes(whole)
    assert torch.equal(cache.load(KIND, CONFIG)["w"], train(source)[0])


def test_an_entry_written_before_checksums_still_loads(tmp_path):
    """A release keeps the cache: entries written before records (plain torch archives) load as they did."""
    cache = RunCache(tmp_path)
    path = cache.entry(KIND, CONFIG) / "result.pt"
    torch.save(to_plain({"w": torch.arange(3.0)}), path)
    assert check_file(path) is None
    assert torch.equal(cache.load(KIND, CONFIG)["w"], torch.arange(3.0))
    cache.save(KIND, CONFIG, {"w": torch.arange(4.0)})  # a new entry records its writer
    record = check_file(path)
    assert record["steerlib"] == steerlib.__version__ and record["cache"] == cache_mod.CACHE_VERSION


# ------------------------------------------------------------------------------- a full or read-only folder


def fill_up(root: str, fault: Callable[[], None] = lambda: None) -> dict:
    """Write a small checkpoint, inject ``fault``, then try to write a 4 MiB one. Returns what the user sees: the
    error, the files the entry holds and the step of the checkpoint a resumed run would read."""
    cache = RunCache(root)
    cache.save_checkpoint(KIND, CONFIG, {"step": 1, "w": torch.zeros(16)})
    fault()
    try:
        cache.save_checkpoint(KIND, CONFIG, {"step": 2, "w": torch.zeros(BIG)})
        error = None
    except CacheWriteError as err:
        error = {"message": str(err), "errno": err.errno}
    files = sorted(os.listdir(cache.path(KIND, CONFIG)))
    return {"error": error, "files": files, "step": cache.load_checkpoint(KIND, CONFIG)["step"]}


def in_tmpfs(tmp_path: Path, read_only: bool) -> dict:
    """:func:`fill_up` on a 1 MiB tmpfs, mounted in a user namespace of its own (made read-only after the first
    checkpoint if ``read_only``)."""
    folder = tmp_path / "tmpfs"
    folder.mkdir()
    fault = "lambda: subprocess.run(['mount', '-o', 'remount,ro', root], check=True)" if read_only else "lambda: 0"
    code = (
        f"import json, subprocess, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"from test_faults import fill_up; root = sys.argv[1]; print(json.dumps(fill_up(root, {fault})))"
    )
    mount = 'mount -t tmpfs -o size=1m tmpfs "$1" || exit 77; exec "$0" -c "$2" "$1"'
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) for a tmpfs of its own; the patched writer covers the fault")
    out = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount, sys.executable, str(folder), code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode == 77 or out.stderr.startswith("unshare:"):
        pytest.skip(f"no tmpfs in a user namespace here ({out.stderr.strip()}); the patched writer covers the fault")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def with_file_size_limit(tmp_path: Path) -> dict:
    """:func:`fill_up` in a process whose files may not grow past 1 MiB (RLIMIT_FSIZE: the kernel refuses the
    write with EFBIG)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of the process being killed

    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"from test_faults import fill_up; print(json.dumps(fill_up({str(tmp_path / 'cache')!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


class FullDisk:
    """A file in writing on a disk that has 1 MiB left."""

    def __init__(self, file):
        self.file = file

    def write(self, data) -> int:
        if self.file.tell() + memoryview(data).nbytes > 1 << 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def with_patched_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: int) -> dict:
    """:func:`fill_up` with the files the cache writes failing as on a full disk (past 1 MiB) or in a read-only
    folder (opening them for writing)."""

    def opener(path, mode="r", *args, **kwargs):
        if "w" in mode and fault == errno.EACCES:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        file = open(path, mode, *args, **kwargs)
        return FullDisk(file) if "w" in mode else file

    return fill_up(str(tmp_path / "cache"), lambda: monkeypatch.setattr(cache_mod, "open", opener, raising=False))


FAULTS = {
    "full tmpfs": (lambda tmp, mp: in_tmpfs(tmp, read_only=False), errno.ENOSPC),
    "read-only tmpfs": (lambda tmp, mp: in_tmpfs(tmp, read_only=True), errno.EROFS),
    "file size limit": (lambda tmp, mp: with_file_size_limit(tmp), errno.EFBIG),
    "patched writer, disk full": (lambda tmp, mp: with_patched_writer(tmp, mp, errno.ENOSPC), errno.ENOSPC),
    "patched writer, read-only": (lambda tmp, mp: with_patched_writer(tmp, mp, errno.EACCES), errno.EACCES),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_write_names_the_folder_and_size_and_leaves_the_last_checkpoint(fault, tmp_path, monkeypatch):
    run, code = FAULTS[fault]
    seen = run(tmp_path, monkeypatch)
    assert seen["error"] is not None and seen["error"]["errno"] == code
    message = seen["error"]["message"]
    assert "could not write checkpoint.pt into the run cache" in message and f"{BIG * 4} bytes" in message
    assert "Free space in" in message and "$STEERLIB_CACHE" in message
    assert seen["files"] == ["checkpoint.pt", "config.json"]  # no temporary file left
    assert seen["step"] == 1  # the earlier checkpoint: a resumed run starts from it


# ------------------------------------------------------------------------------------------------ kills


def kill_tree(pid: int) -> None:
    """SIGKILL process ``pid`` and every process under it (pool workers, notebook kernels), stopping them all first
    so that none starts another or notices the others die."""
    procs: set[psutil.Process] = set()
    while True:
        try:
            found = {psutil.Process(pid), *psutil.Process(pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            break
        if found <= procs:
            break
        for proc in found - procs:
            try:
                proc.suspend()
            except psutil.NoSuchProcess:
                pass
        procs |= found
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(procs), timeout=30)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 300) -> None:
    """Poll ``condition`` until it holds; fail if ``proc`` ends first or ``timeout`` seconds pass."""
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"the process ended before the kill: {proc.communicate()}"
        assert time.time() < deadline, "timed out waiting for the moment to kill"
        time.sleep(0.02)


SLOW_WRITER = """
import sys, time
from pathlib import Path
import torch
sys.path.insert(0, {tests!r})
from steerlib.core import cache as cache_mod
from test_faults import CONFIG, KIND
cache = cache_mod.RunCache({root!r})
cache.save_checkpoint(KIND, CONFIG, {{"step": 1, "w": torch.ones(16)}})
write = cache_mod._Sink.write
def slow(self, data):  # a slow disk: the first bytes, then a long wait
    n = write(self, data)
    Path({marker!r}).touch()
    time.sleep(60)
    return n
cache_mod._Sink.write = slow
cache.save_checkpoint(KIND, CONFIG, {{"step": 2, "w": torch.zeros(1 << 20)}})
"""


def test_a_kill_in_the_middle_of_a_write_leaves_the_last_whole_checkpoint(tmp_path):
    """SIGKILL while a checkpoint is half written: the resumed run reads the one before, unreported; its next write
    removes the dead writer's temporary file."""
    root, marker = tmp_path / "cache", tmp_path / "writing"
    code = SLOW_WRITER.format(tests=str(Path(__file__).parent), root=str(root), marker=str(marker))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(marker.exists, proc, timeout=120)
    finally:
        kill_tree(proc.pid)
        proc.wait()
    cache = RunCache(root)
    assert [p.name.split(".")[:2] for p in cache.path(KIND, CONFIG).glob("*.tmp")] == [["checkpoint", "pt"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert cache.load_checkpoint(KIND, CONFIG)["step"] == 1
    expected, _ = train(RunCache(tmp_path / "undisturbed"))
    cache.save_checkpoint(KIND, CONFIG, {"step": 0, "w": torch.zeros(64)})  # the resumed run writes its next one
    assert torch.equal(train(cache)[0], expected)
    assert_clean(root)


CHAPTER_RUN = """
import json
from steerlib.book import execute
ex = execute("reversion", "smoke", seed=0, device="cpu", out_dir={out!r})
print(json.dumps([[c.id, repr(float(c.value)), c.verdict] for c in ex.claims]))
"""


def claims(ex) -> list:
    return [[c.id, repr(float(c.value)), c.verdict] for c in ex.claims]


def test_a_chapter_killed_mid_training_resumes_to_the_claims_of_an_undisturbed_run(tmp_path, monkeypatch):
    """The reversion chapter at smoke, SIGKILLed while its first ensemble trains (a checkpoint there, no result),
    then run again on the same cache: it resumes, reports nothing, gives the undisturbed run's claims and leaves a
    cache with no checkpoint, temporary file or quarantine. The claims are compared to the last bit, so both runs
    train every model themselves (empty caches, not the session's, whose models may come from another thread count
    or kernel set) on one thread."""
    monkeypatch.setenv("STEERLIB_THREADS", "1")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "undisturbed-cache"))
    undisturbed = claims(execute("reversion", "smoke", seed=0, device="cpu", out_dir=tmp_path / "undisturbed"))
    root = tmp_path / "cache"
    env = {**os.environ, "STEERLIB_CACHE": str(root)}
    command = [sys.executable, "-c", CHAPTER_RUN.format(out=str(tmp_path / "out"))]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: any(root.glob("ensemble/*/checkpoint.pt")), proc)
    finally:
        kill_tree(proc.pid)
        proc.wait()
    assert any(root.glob("ensemble/*/checkpoint.pt"))  # killed mid-training

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "CacheWarning" not in again.stderr
    assert json.loads(again.stdout.splitlines()[-1]) == undisturbed
    assert not list(root.rglob("checkpoint.pt")) and not (root / QUARANTINE).exists()
    assert_clean(root)


def test_a_figure_is_written_whole_and_leaves_no_temporary_file(tmp_path):
    """show() writes each file under a temporary name and renames it: a killed chapter leaves no half a figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from steerlib.core.chapter import start
    from steerlib.core.figures import show

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    show(fig, start("reversion", "smoke", out_dir=tmp_path / "out", cache=False), "toy")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["toy.pdf", "toy.png"]
