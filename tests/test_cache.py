import dataclasses
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

import steerlib
from steerlib.cache import RUNS, chapter_of, main, prune, scan, select, verify
from steerlib.core import cache as cache_mod
from steerlib.core.cache import QUARANTINE, RunCache, config_key, from_plain, schema, to_plain


@dataclasses.dataclass(frozen=True)
class Cfg:
    lr: float
    layers: tuple = (1, 2)


def test_key_is_stable_and_sensitive():
    assert config_key(Cfg(0.1)) == config_key({"lr": 0.1, "layers": [1, 2]})
    assert config_key(Cfg(0.1)) != config_key(Cfg(0.2))
    assert config_key({"a": 1, "b": 2}) == config_key({"b": 2, "a": 1})


def test_cached_computes_once_and_never_reads_a_stale_entry(tmp_path):
    cache = RunCache(tmp_path)
    calls = []

    def compute(v):
        calls.append(v)
        return torch.tensor([v])

    assert cache.cached("x", Cfg(0.1), lambda: compute(1)).item() == 1
    assert cache.cached("x", Cfg(0.1), lambda: compute(2)).item() == 1  # read back, not recomputed
    assert cache.cached("x", Cfg(0.3), lambda: compute(3)).item() == 3  # a changed config recomputes
    assert calls == [1, 3]
    assert (cache.entry("x", Cfg(0.1)) / "config.json").exists()


def test_checkpoint_roundtrip_and_removed_when_done(tmp_path):
    cache = RunCache(tmp_path)
    assert cache.load_checkpoint("run", {"a": 1}) is None
    cache.save_checkpoint("run", {"a": 1}, {"epoch": 3})
    assert cache.load_checkpoint("run", {"a": 1}) == {"epoch": 3}
    cache.save("run", {"a": 1}, "done")
    assert cache.load_checkpoint("run", {"a": 1}) is None
    assert cache.load("run", {"a": 1}) == "done"


def test_disabled_cache_writes_nothing(tmp_path):
    cache = RunCache(tmp_path / "c", enabled=False)
    assert cache.cached("x", {"a": 1}, lambda: 5) == 5
    assert not (tmp_path / "c").exists()


@dataclasses.dataclass(frozen=True)
class Spec:
    lr: float
    epochs: int


@dataclasses.dataclass
class Result:
    specs: list[Spec]
    table: pd.DataFrame
    curve: np.ndarray
    names: np.ndarray
    weights: torch.Tensor
    by_name: dict[str, Spec]


def _result() -> Result:
    return Result(
        [Spec(1e-3, 2), Spec(1e-2, 4)],
        pd.DataFrame({"level": [0, 1], "shift": ["none", "rotate"]}),
        np.linspace(0, 1, 5),
        np.array(["a", "b"]),
        torch.arange(3.0),
        {"x": Spec(0.5, 1)},
    )


def test_a_dataclass_result_roundtrips_as_plain_data(tmp_path):
    cache = RunCache(tmp_path)
    cache.save("r", {"a": 1}, _result())
    back = cache.load("r", {"a": 1}, as_type=Result)
    want = _result()
    assert back.specs == want.specs and back.by_name == want.by_name
    pd.testing.assert_frame_equal(back.table, want.table, check_dtype=False)
    np.testing.assert_array_equal(back.curve, want.curve)
    assert back.names.tolist() == ["a", "b"] and torch.equal(back.weights, want.weights)


def test_entries_hold_no_pickled_classes(tmp_path):
    """An entry loads with weights_only=True: renaming a class later costs a miss, never a crash."""
    cache = RunCache(tmp_path)
    cache.save("r", {"a": 1}, _result())
    plain = torch.load(cache.path("r", {"a": 1}) / "result.pt", weights_only=True)
    assert set(plain) == {f.name for f in dataclasses.fields(Result)}
    assert from_plain(plain)["specs"] == [{"lr": 1e-3, "epochs": 2}, {"lr": 1e-2, "epochs": 4}]
    assert to_plain(Spec(1.0, 2)) == {"lr": 1.0, "epochs": 2}


def test_reading_creates_nothing(tmp_path):
    cache = RunCache(tmp_path / "c")
    assert cache.load("x", {"a": 1}) is None and cache.load_checkpoint("x", {"a": 1}) is None
    assert not (tmp_path / "c").exists()


@dataclasses.dataclass
class Inner:
    x: np.ndarray


@dataclasses.dataclass
class Outer:
    inner: Inner
    items: list[int]
    others: list["Outer"] = dataclasses.field(default_factory=list)


def test_schema_names_every_field_and_changes_with_them():
    shape = schema(Outer)
    assert shape["inner"] == {"x": "ndarray"} and shape["others"][1] == "Outer"  # recursion stops at itself
    assert config_key(shape) != config_key(schema(Inner))


def test_hits_and_misses_are_counted_per_kind_and_an_entry_can_be_discarded(tmp_path):
    cache = RunCache(tmp_path)
    cache.cached("a", {"x": 1}, lambda: 1)
    cache.cached("a", {"x": 1}, lambda: 1)
    cache.cached("b", {"x": 1}, lambda: 2)
    cache.save_checkpoint("b", {"x": 2}, {"step": 3})
    assert cache.hits == {"a": 1} and cache.misses == {"a": 1, "b": 1}
    assert RunCache(tmp_path).load("b", {"x": 1}) == 2  # every instance counts its own
    for config in ({"x": 1}, {"x": 2}, {"x": 3}):  # a result, a checkpoint, nothing
        cache.discard("b", config)
        assert not cache.path("b", config).exists()
    assert cache.load("b", {"x": 1}) is None and cache.misses["b"] == 2 and cache.load("a", {"x": 1}) == 1


# ------------------------------------------------------------------------------- the command: python -m steerlib.cache


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def toy_cache(root) -> RunCache:
    """A cache with a result of each kind of owner, an unfinished run, an entry written before checksums, an empty
    entry, a quarantined file and a temporary file left by a killed writer."""
    cache = RunCache(root)
    cache.save("reversion", {"r": 1}, {"w": torch.zeros(1000)})
    cache.save("pre-memorization-run", {"r": 1}, {"w": torch.zeros(10)})
    cache.save("ensemble", {"e": 1}, {"w": torch.zeros(10)})
    cache.save_checkpoint("ensemble", {"e": 2}, {"w": torch.zeros(10)})
    torch.save({"w": torch.zeros(10)}, cache.entry("sft", {"old": 1}) / "result.pt")
    cache.entry("rl", {"empty": 1})
    bad = cache.path("ensemble", {"e": 1}) / "result.pt"
    cache.save("ensemble", {"e": 3}, {"w": torch.zeros(10)})
    with pytest.warns(cache_mod.CacheWarning):
        cache.quarantine(cache.path("ensemble", {"e": 3}) / "result.pt", "damaged: a test")
    killed = cache.path("reversion", {"r": 1}) / f"result.pt.{dead_pid()}-0123abcd.{cache_mod._HOST}.tmp"
    killed.write_bytes(b"half")
    assert bad.exists()
    return cache


def by_state(entries):
    return sorted((e.state, e.kind, e.chapter) for e in entries)


def test_chapter_of_reads_the_chapter_off_the_kind():
    assert chapter_of("reversion") == "reversion" and chapter_of("pre-memorization-run") == "pre-memorization"
    assert chapter_of("robustness-and-curation-round") == "robustness-and-curation"
    assert chapter_of("ensemble") is None and chapter_of("sft") is None and chapter_of("reversionary") is None


def test_scan_finds_every_entry_with_its_state_size_and_writer(tmp_path):
    cache = toy_cache(tmp_path)
    entries = scan(tmp_path)
    assert by_state(entries) == [
        ("done", "ensemble", None),
        ("done", "pre-memorization-run", "pre-memorization"),
        ("done", "reversion", "reversion"),
        ("done", "sft", None),
        ("empty", "ensemble", None),  # its result was moved aside
        ("empty", "rl", None),
        ("quarantined", "ensemble", None),
        ("temporary", "reversion", "reversion"),
        ("unfinished", "ensemble", None),
    ]
    done = {e.kind: e for e in entries if e.state == "done"}
    assert done["sft"].detail == "before checksums" and done["reversion"].detail == f"steerlib {steerlib.__version__}"
    files = [p for p in cache.path("reversion", {"r": 1}).iterdir() if not p.name.endswith(".tmp")]
    assert done["reversion"].size == sum(p.stat().st_size for p in files)  # the temporary file counts on its own
    (moved,) = [e for e in entries if e.state == "quarantined"]
    assert moved.detail == "damaged: a test" and moved.path.parent == tmp_path / QUARANTINE / "ensemble"


def test_select_then_prune_by_kind_chapter_age_and_state(tmp_path):
    toy_cache(tmp_path)
    entries = scan(tmp_path)
    assert by_state(select(entries, chapters=["reversion"])) == [
        ("done", "reversion", "reversion"),
        ("temporary", "reversion", "reversion"),
    ]
    assert by_state(select(entries, kinds=["sft", "rl"], states=RUNS)) == [("done", "sft", None), ("empty", "rl", None)]
    assert select(entries, older_than=3600) == []
    old = cache_mod.RunCache(tmp_path).path("sft", {"old": 1})
    for path in old.iterdir():
        os.utime(path, (time.time() - 7200,) * 2)
    assert [e.kind for e in select(scan(tmp_path), older_than=3600)] == ["sft"]

    picked = select(entries, chapters=["reversion"], states=("temporary",))
    assert prune(picked, dry_run=True) == 4 and all(e.path.exists() for e in picked)
    assert prune(picked) == 4 and not any(e.path.exists() for e in picked)
    assert prune(select(scan(tmp_path), states=("quarantined",))) > 0
    assert not (tmp_path / QUARANTINE).exists()  # the folders it left empty are gone
    prune(select(scan(tmp_path), kinds=["ensemble"]))
    assert not (tmp_path / "ensemble").exists() and (tmp_path / "reversion").exists()
    prune(scan(tmp_path))
    assert tmp_path.is_dir() and not list(tmp_path.iterdir())  # everything gone but the cache's folder


def test_verify_finds_a_corrupt_file_and_the_command_moves_it_aside(tmp_path, capsys):
    cache = toy_cache(tmp_path)
    bad = cache.path("reversion", {"r": 1}) / "result.pt"
    bad.write_bytes(bad.read_bytes()[:-300])
    os.utime(bad, (time.time() - 60,) * 2)
    outcomes = {p.parent.parent.name + "/" + p.name: o for p, o, _ in verify(scan(tmp_path))}
    assert outcomes == {
        "reversion/result.pt": "corrupt",
        "pre-memorization-run/result.pt": "ok",
        "ensemble/result.pt": "ok",
        "ensemble/checkpoint.pt": "ok",
        "sft/result.pt": "unchecked",
    }
    assert main(["verify", "--cache", str(tmp_path)]) == 1
    assert "corrupt    " + str(bad) in capsys.readouterr().out
    assert main(["verify", "--cache", str(tmp_path), "--quarantine"]) == 0
    assert not bad.exists() and "moved " + str(bad) in capsys.readouterr().out
    assert main(["verify", "--cache", str(tmp_path)]) == 0
    main(["list", "--cache", str(tmp_path), "--quarantine", "--entries"])
    assert "truncated or damaged" in capsys.readouterr().out


def test_the_command_lists_by_chapter_and_kind_and_prunes_with_a_dry_run(tmp_path, capsys):
    toy_cache(tmp_path)
    assert main(["--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for line in ("chapter reversion", "  pre-memorization-run", "shared (by several chapters)", "quarantined"):
        assert line in out
    assert main(["prune", "--cache", str(tmp_path), "--chapter", "reversion", "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out and (tmp_path / "reversion").exists()
    assert main(["prune", "--cache", str(tmp_path), "--chapter", "reversion"]) == 0
    assert not (tmp_path / "reversion").exists()
    listed = subprocess.run(
        [sys.executable, "-m", "steerlib.cache", "list", "--entries"],
        env={**os.environ, "STEERLIB_CACHE": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"run cache {tmp_path}" in listed and "before checksums" in listed and "reversion" not in listed


@pytest.mark.parametrize(
    "argv", [["prune"], ["prune", "--older-than", "soon"], ["list", "--chapter", "nope"], ["tidy"]]
)
def test_the_command_line_refuses_bad_arguments(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--cache", str(tmp_path)])
    assert info.value.code == 2 and "python -m steerlib.cache" in capsys.readouterr().err


def test_temporary_files_of_killed_writers_go_when_their_entry_is_next_written(tmp_path):
    cache = RunCache(tmp_path)
    entry = cache.entry("x", {"a": 1})
    killed = entry / f"result.pt.{dead_pid()}-0123abcd.{cache_mod._HOST}.tmp"
    writing = entry / f"result.pt.{os.getpid()}-0123abcd.{cache_mod._HOST}.tmp"  # this process: alive
    elsewhere = entry / "result.pt.12-0123abcd.ffffffff.tmp"  # another machine's, written just now
    for path in (killed, writing, elsewhere):
        path.write_bytes(b"half")
    assert [cache_mod.is_stale_temporary(p) for p in (killed, writing, elsewhere)] == [True, False, False]
    os.utime(elsewhere, (time.time() - 2 * 86400,) * 2)  # untouched for two days: its writer is gone
    cache.save("x", {"a": 1}, 1)
    assert sorted(p.name for p in entry.iterdir()) == sorted(["config.json", "result.pt", writing.name])


def _compute_once(root: str, marker: str) -> float:
    """A worker process: the cached result of a slow computation that leaves a line in ``marker`` when it runs."""
    import time as clock

    from steerlib.core.cache import RunCache

    def slow() -> float:
        with open(marker, "a") as file:
            file.write("computed\n")
        clock.sleep(1.5)
        return 42.0

    return RunCache(root).cached("toy", {"run": 1}, slow)


def test_two_processes_asking_for_one_run_compute_it_once(tmp_path):
    """The second process waits on the first's claim, then loads its result (parallel chapters that share a model)."""
    import multiprocessing

    marker = tmp_path / "marker"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_compute_once, [(str(tmp_path / "cache"), str(marker))] * 2)
    assert results == [42.0, 42.0] and marker.read_text() == "computed\n"


def test_a_claim_yields_what_another_process_stored_and_a_computed_run_counts_one_miss(tmp_path, monkeypatch):
    """The check under the claim is not a second miss (the chapters count misses as models trained); what another
    process stored while this one waited comes out of the claim as a hit. Under a multi-process launch
    ($WORLD_SIZE > 1) nothing is claimed: every process enters the computation."""
    cache = RunCache(tmp_path)
    assert cache.cached("toy", {"run": 1}, lambda: 1.0) == 1.0
    assert (cache.misses["toy"], cache.hits["toy"]) == (1, 0)
    other = RunCache(tmp_path)  # as a process that waited while the first computed
    with other.claim("toy", {"run": 1}) as found:
        assert found == 1.0
    assert (other.misses["toy"], other.hits["toy"]) == (0, 1)
    with other.claim("toy", {"run": 2}) as found:
        assert found is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    with other.claim("toy", {"run": 1}) as found:
        assert found is None
