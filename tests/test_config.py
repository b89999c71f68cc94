import dataclasses

import pytest

from steerlib.core.checks import check_choice, check_range
from steerlib.core.profiles import get_profile, resolve_profile


@dataclasses.dataclass(frozen=True)
class S:
    epochs: int = 3
    lr: float = 0.1


PROFILES = {"smoke": S(1), "cpu": S(), "paper": S(100)}


def test_resolve_profile_defaults_env_and_alias(monkeypatch):
    monkeypatch.delenv("STEERLIB_PROFILE", raising=False)
    assert resolve_profile(None) == "cpu"
    monkeypatch.setenv("STEERLIB_PROFILE", "smoke")
    assert resolve_profile(None) == "smoke"
    assert resolve_profile("cpu") == "cpu"  # an explicit argument beats the environment
    assert resolve_profile("gpu") == "paper"


def test_bad_names_raise_with_parameter_and_choices():
    with pytest.raises(ValueError, match=r"profile='laptop'.*'smoke', 'cpu', 'paper'"):
        resolve_profile("laptop")
    with pytest.raises(ValueError, match=r"loss='hinge'.*'ce'"):
        check_choice("loss", "hinge", ["ce", "mse"])
    with pytest.raises(ValueError, match=r"seeds=0 is out of range.*\[1, inf\)"):
        check_range("seeds", 0, low=1)
    assert check_range("p", 0.5, 0, 1) == 0.5


def test_get_profile_overrides():
    assert get_profile(PROFILES, "smoke") == S(1)
    assert get_profile(PROFILES, "paper", lr=0.5, epochs=None) == S(100, 0.5)
    with pytest.raises(ValueError, match="setting='epoch'.*'epochs', 'lr'"):
        get_profile(PROFILES, "cpu", epoch=2)


def test_set_threads_limits_every_blas_and_openmp_pool_not_only_torchs(monkeypatch):
    """numpy's and scipy's OpenBLAS and scikit-learn's OpenMP follow the torch thread count, now and when loaded
    later (the environment); otherwise two chapters built side by side oversubscribe the cores."""
    import threadpoolctl
    import torch

    from steerlib.core import runtime

    for name in runtime.BLAS_ENV:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    with threadpoolctl.threadpool_limits(2):  # every pool at 2 (restored when the test ends)
        try:
            assert runtime.set_threads(1) == 1
            assert torch.get_num_threads() == 1
            assert {pool["num_threads"] for pool in threadpoolctl.threadpool_info()} == {1}
            assert all(runtime.os.environ[name] == "1" for name in runtime.BLAS_ENV)
        finally:
            torch.set_num_threads(before)
