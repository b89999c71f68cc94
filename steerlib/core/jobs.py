"""Every chapter's training runs as jobs: stages of picklable jobs, run back to back or in worker processes.

The protocol: a chapter's ``jobs(settings, run) -> list[Stage]`` lists its training runs grouped in stages that run
in order (a stage's jobs may read what earlier stages trained: pretraining before finetuning). A :class:`Job` is one
training run (an ensemble, a pretraining, an SFT, reward-model or RL run, a grid cell): a module-level function and
picklable arguments, which stores its result in the run cache under a key from its full configuration. The
chapter's ``run`` calls the same functions, so after the jobs it finds every run in the cache (and trains whatever is
missing); chapters that reuse another's models (Part I's ensembles) list the same entries.

A job's result depends on its arguments alone (its seeds are in them), so every way of running them gives the same
results. :func:`run_jobs` is the pool the job command (``python -m steerlib.jobs``, :mod:`steerlib.jobs`) and the
chapters (e.g. a grid of runs) use.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from steerlib.core.chapter import Run, replicate_results
from steerlib.core.checks import check_nonempty, check_range, check_type
from steerlib.core.runtime import progress_bar, set_threads

S = TypeVar("S")  # the state every job starts from, e.g. a pretrained model and its data
T = TypeVar("T")  # a job's item
R = TypeVar("R")  # a job's result

JobFn = Callable[[S, T, bool], R]  # job(state, item, progress): progress says whether it may show its own bar

_WORKER: dict[str, Any] = {}  # the state of this worker process


# ------------------------------------------------------------------------------------------- the protocol


@dataclasses.dataclass(frozen=True)
class Job:
    """One training run: ``fn(*args)``, with ``fn`` a module-level function and ``args`` picklable (settings, a
    :class:`~steerlib.core.chapter.Run`, names), so that a worker process or a cluster task can run it."""

    label: str
    fn: Callable[..., Any]
    args: tuple = ()

    def __post_init__(self):
        check_type("label", self.label, str, "a short description of the run, e.g. 'mnist5k/ce'")
        if not self.label.strip():
            raise ValueError(f"label={self.label!r} is empty; give a short description of the run, e.g. 'mnist5k/ce'")
        check_type("fn", self.fn, Callable, "a module-level function that trains (and caches) one run")
        check_type("args", self.args, tuple, "a tuple of fn's arguments")

    def __call__(self) -> Any:
        return self.fn(*self.args)


@dataclasses.dataclass(frozen=True)
class Stage:
    """Jobs that may run at once (none, where the settings ask for none); a chapter's stages run in order."""

    name: str
    jobs: tuple[Job, ...]

    def __post_init__(self):
        check_type("name", self.name, str, "a stage name such as 'pretrain'")
        if not self.name or " " in self.name:
            raise ValueError(f"name={self.name!r} is not a stage name; give one word such as 'pretrain'")
        check_type("jobs", self.jobs, tuple, "a tuple of Jobs (may be empty)")
        for job in self.jobs:
            check_type("jobs", job, Job, "a tuple of Jobs")


def at_replicates(settings: S, run: Run) -> list[tuple[S, Run]]:
    """(settings, run) of each replicate of a chapter replicated over ``settings.replicates``
    (:func:`~steerlib.core.chapter.replicated`): ``replicates=1`` and the run at replicate 0, 1, ..."""
    check_type("run", run, Run, "the Run from chapter.start")
    check_range("settings.replicates", getattr(settings, "replicates", None), 1, integer=True)
    one = dataclasses.replace(settings, replicates=1)
    return [(one, run.at(r)) for r in range(settings.replicates)]


def per_replicate(name: str, fn: Callable[[S, Run], Any], settings: S, run: Run) -> Stage:
    """A stage of one job per replicate (:func:`at_replicates`), each ``fn(settings, run)`` (e.g. a pretraining)."""
    return Stage(name, tuple(Job(f"replicate {r.replicate}", fn, (s, r)) for s, r in at_replicates(settings, run)))


def per_replicate_runs(
    name: str, fn: Callable[[S, Run, Any], Any], settings: S, run: Run, specs: Callable[[S], Iterable[Any]]
) -> Stage:
    """A stage of one job per replicate and run: ``fn(settings, run, spec)`` for every ``spec`` of
    ``specs(settings)`` at every replicate (:func:`at_replicates`), named "replicate r <spec.name>"."""
    return Stage(
        name,
        tuple(
            Job(f"replicate {r.replicate} {spec.name}", fn, (s, r, spec))
            for s, r in at_replicates(settings, run)
            for spec in specs(s)
        ),
    )


def results_stage(
    settings: S,
    run: Run,
    kind: str,
    experiment: Callable[[S, Run], Any],
    as_type: type,
    versions: dict[str, str] | None = None,
) -> Stage:
    """Stage "results": each replicate's whole results, cached as the chapter's ``run`` caches them
    (:func:`~steerlib.core.chapter.replicate_results` of ``kind``, ``experiment``, ``as_type`` and ``versions``),
    the entries the notebook reads; a job trains whatever of its replicate the earlier stages did not list."""
    return Stage(
        "results",
        tuple(
            Job(f"replicate {r.replicate}", replicate_results, (r, s, kind, experiment, as_type, versions))
            for s, r in at_replicates(settings, run)
        ),
    )


# ------------------------------------------------------------------------------------------- running them


def _timed(job: JobFn, state: S, item: T, progress: bool) -> tuple[R, float]:
    t = time.time()
    return job(state, item, progress), time.time() - t


def _start_worker(make_state: Callable[[], S]) -> None:
    set_threads(1)
    _WORKER["state"] = make_state()


def _work(job: JobFn, item: T) -> tuple[R, float]:
    return _timed(job, _WORKER["state"], item, False)  # one bar, in the parent, counts the jobs


def run_jobs(
    job: JobFn, items: Sequence[T], state: S, make_state: Callable[[], S], workers: int = 1, desc: str = "jobs"
) -> list[tuple[R, float]]:
    """``job(state, item, progress)`` of every item, in order, each with its wall-clock seconds.

    With ``workers`` = 1 the jobs run back to back on ``state``; otherwise in ``min(workers, len(items))`` spawned
    processes of one torch thread each (a small model keeps only one core busy), each building its own state once
    with ``make_state()``. ``job`` and ``make_state`` travel to the workers by pickling (module-level functions or
    :func:`functools.partial` of them), and a script that calls this needs the usual ``if __name__ == "__main__":``
    guard.
    """
    check_type("job", job, Callable, "a function job(state, item, progress)")
    check_nonempty("items", items)
    check_range("workers", workers, 1, integer=True)
    if workers == 1:
        return [_timed(job, state, item, True) for item in progress_bar(items, desc=desc, leave=False)]
    context = multiprocessing.get_context("spawn")  # fork would copy the parent's OpenMP threads
    with ProcessPoolExecutor(min(workers, len(items)), context, _start_worker, (make_state,)) as pool:
        results = pool.map(functools.partial(_work, job), items)
        return list(progress_bar(results, total=len(items), desc=desc, leave=False))


def _no_state() -> None:
    return None


def _run_job(state: None, job: Job, progress: bool) -> None:
    job()  # the result stays in the cache; nothing travels back from a worker


def run_stages(stages: Sequence[Stage], workers: int = 1) -> list[float]:
    """Every job of every stage, stage after stage, each stage in ``workers`` processes (:func:`run_jobs`);
    returns each job's wall-clock seconds, in order."""
    for stage in check_nonempty("stages", stages):
        check_type("stages", stage, Stage, "a list of Stages (from a chapter's jobs)")
    check_range("workers", workers, 1, integer=True)
    return [
        t
        for stage in stages
        if stage.jobs
        for _, t in run_jobs(_run_job, stage.jobs, None, _no_state, workers, desc=stage.name)
    ]
