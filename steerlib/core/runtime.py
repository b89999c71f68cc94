"""Device selection, thread settings, loading from the Hugging Face hub (offline: its cache, or an
error saying what to download), and whether a person watches the run (progress bars)."""

from __future__ import annotations

import functools
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

import threadpoolctl
import torch
from tqdm.auto import tqdm

from steerlib.core.checks import check_choice, check_nonempty, check_range, check_type

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; an explicit name (``cuda:1`` names a GPU) must be available."""
    check_type("device", device, str, f"a string, one of {', '.join(map(repr, DEVICES))}")
    kind, _, index = device.partition(":")
    check_choice("device", kind, DEVICES)
    if index and (kind != "cuda" or not index.isdigit()):
        raise ValueError(f"device={device!r} is not allowed; only cuda takes an index (e.g. 'cuda:0')")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)


THREADS_ENV = "STEERLIB_THREADS"  # e.g. 1 when several jobs share a machine


BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # read by pools when they load


def set_threads(n: int | None = None) -> int:
    """Use ``n`` threads (default: ``$STEERLIB_THREADS``, else the cores this process may run on) in torch and in
    every BLAS and OpenMP pool: those already loaded (numpy's and scipy's OpenBLAS, scikit-learn's OpenMP) through
    threadpoolctl, those loaded later through :data:`BLAS_ENV`. Left at their defaults, numpy and scikit-learn take
    every core whatever torch was told: the reversion chapter, built cold beside xor-grokking on 2 cores, took 171
    CPU s with them and 65 s with one thread each (its OOD scores' logistic regressions)."""
    if n is None and os.environ.get(THREADS_ENV):
        value = os.environ[THREADS_ENV]
        n = check_range(f"${THREADS_ENV}", int(value) if value.strip().isdigit() else value, 1, integer=True)
    elif n is not None:
        check_range("n", n, 1, integer=True)
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    threadpoolctl.threadpool_limits(n)
    os.environ.update(dict.fromkeys(BLAS_ENV, str(n)))
    return n


INTERACTIVE_ENV = "STEERLIB_INTERACTIVE"  # 0 in batch execution: the book build sets it for its notebook kernels


def interactive() -> bool:
    """Whether a person watches this run: False when ``$STEERLIB_INTERACTIVE`` is ``0`` (the book build sets it, and
    worker processes inherit it), so that executed pages carry results, not progress bars or live widgets."""
    return os.environ.get(INTERACTIVE_ENV, "1").strip() != "0"


PHASES = ("training", "sampling")  # where a chapter's CPU time goes; the rest is evaluation and data
_SPENT: dict[str, float] = dict.fromkeys(PHASES, 0.0)
_OPEN: list[list] = []  # the phases entered and not left, innermost last: [name, CPU time when it last resumed]


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Count this process's CPU time (every thread, ``time.process_time``) inside the block as ``name`` (one of
    :data:`PHASES`); a phase inside another (sampling inside an RL step) counts to the inner one only."""
    check_choice("name", name, PHASES)
    now = time.process_time()
    if _OPEN:
        _SPENT[_OPEN[-1][0]] += now - _OPEN[-1][1]
    _OPEN.append([name, now])
    try:
        yield
    finally:
        now = time.process_time()
        done = _OPEN.pop()
        _SPENT[done[0]] += now - done[1]
        if _OPEN:
            _OPEN[-1][1] = now


def in_phase(name: str) -> Callable:
    """A decorator: every call of the function counts as :func:`phase` ``name``."""
    check_choice("name", name, PHASES)

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with phase(name):
                return fn(*args, **kwargs)

        return timed

    return wrap


def phase_seconds() -> dict[str, float]:
    """CPU seconds this process has spent in each phase so far."""
    return {name: round(_SPENT[name], 2) for name in PHASES}


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """``tqdm.auto.tqdm(iterable, **kwargs)``, shown only in an :func:`interactive` run."""
    kwargs["disable"] = kwargs.get("disable", False) or not interactive()
    return tqdm(iterable, **kwargs)


def quiet_libraries() -> None:
    """In a batch run (not :func:`interactive`), turn off the progress bars of the Hugging Face libraries steerlib
    drives (``datasets``' map and filter, the hub's downloads, ``transformers``' loading and GGUF conversion), here and
    in the worker processes started later."""
    if interactive():
        return
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"  # read when a worker process imports them
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    import datasets
    import huggingface_hub
    import transformers

    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


OFFLINE_ENVS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
LOCAL_DATA_ENV = "STEERLIB_DATA"  # a folder holding hub datasets saved with save_to_disk, as <folder>/<name>


def hub_offline(timeout: float = 2.0) -> str:
    """Why the Hugging Face hub cannot be reached ("" if it can): an ``OFFLINE_ENVS`` variable set, or no HTTP answer
    from the hub (``$HF_ENDPOINT``, through ``$HTTPS_PROXY`` if set) within ``timeout`` seconds.

    A few seconds instead of the hub clients' retries (tens of seconds) before they give up without a network."""
    check_range("timeout", timeout, 0, open_low=True)
    for name in OFFLINE_ENVS:
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"${name} is set"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    failure: list[str] = ["no answer"]

    def ask() -> None:  # in a thread: name resolution ignores socket timeouts
        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
            failure.clear()
        except urllib.error.HTTPError:  # the hub answered, if only with an error status
            failure.clear()
        except (OSError, ValueError) as err:
            failure[0] = f"{err.__class__.__name__}: {err}"

    probe = threading.Thread(target=ask, daemon=True)
    probe.start()
    probe.join(timeout)
    return f"no answer from {endpoint} within {timeout:g} s ({failure[0]})" if failure else ""


@contextmanager
def from_hub(needs: str, fix: str) -> Iterator[str]:
    """Around a load from the Hugging Face hub: yields why the hub cannot be reached ("" if it can), so that the block
    reads the local cache only; offline, an error in the block becomes ``RuntimeError("<needs>, and the hub cannot be
    reached (<why>); <error>. <fix>")``, where ``fix`` says how to get a copy. Online, errors pass through."""
    for name, text in (("needs", needs), ("fix", fix)):
        check_nonempty(name, check_type(name, text, str, "a sentence for the error message").strip())
    offline = hub_offline()
    try:
        yield offline
    except Exception as err:
        if not offline:
            raise
        raise RuntimeError(
            f"{needs}, and the hub cannot be reached ({offline}); {err.__class__.__name__}. {fix}"
        ) from err


def load_hub_dataset(*args, needs: str, fix: str, **kwargs):
    """``datasets.load_dataset(*args, **kwargs)`` under :func:`from_hub`: offline, from the Hugging Face cache without
    the hub clients' retries, or the RuntimeError naming ``needs`` and ``fix``."""
    import datasets

    with (
        from_hub(needs, fix) as offline,
        mock.patch.object(datasets.config, "HF_HUB_OFFLINE", bool(offline) or datasets.config.HF_HUB_OFFLINE),
    ):
        return datasets.load_dataset(*args, **kwargs)
