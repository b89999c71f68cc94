import os
import tempfile

import pytest
import torch

# Tests run two at a time under xdist on 2 cores: one thread each, here and in the notebook kernels they start
# (more threads than cores makes small torch ops spin and wait on each other, many times slower).
os.environ.setdefault("STEERLIB_THREADS", "1")
torch.set_num_threads(1)


def pytest_configure(config):
    """Chapter tests share one run cache per session (or $STEERLIB_CACHE when set), so each model trains once."""
    os.environ.setdefault("STEERLIB_CACHE", tempfile.mkdtemp(prefix="steerlib-cache-"))


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty run cache for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("STEERLIB_CACHE", str(path))
    return path
