import dataclasses

import numpy as np
import pandas as pd
import torch

from steerlib.core.cache import RunCache, config_key, from_plain, schema, to_plain


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
