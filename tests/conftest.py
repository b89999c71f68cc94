import os

import pytest
import torch

torch.set_num_threads(1)  # tests run two at a time under xdist on 2 cores


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty run cache for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("STEERLIB_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One run cache shared by the chapter tests of a session, so a chapter trains once per test session."""
    path = os.environ.get("STEERLIB_CACHE") or str(tmp_path_factory.mktemp("cache"))
    return path
