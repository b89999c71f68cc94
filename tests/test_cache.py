import dataclasses

import torch

from steerlib.core.cache import RunCache, config_key


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
