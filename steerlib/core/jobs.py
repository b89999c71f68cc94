"""Every chapter's training runs as jobs: listed, run one at a time from a shell, back to back or in worker
processes, or launched through ``submitit`` on a Slurm cluster (or as local processes).

The protocol: a chapter package exposes ``jobs(settings, run) -> list[Stage]``, its training runs grouped in stages
that run in order (a stage's jobs may read what earlier stages trained: pretraining before finetuning). A
:class:`Job` is one training run (an ensemble, a pretraining, an SFT, reward-model or RL run, a grid cell): a
module-level function and picklable arguments, which stores its result in the run cache under a key from its full
configuration. The chapter's ``run`` calls the same functions, so after the jobs it finds every run in the cache
(and trains whatever is missing); chapters that reuse another's models (Part I's ensembles) list the same entries.

One command for every chapter (``python -m steerlib.jobs <chapter> --help``) lists the jobs, runs a stage or one
job, runs them all back to back or in worker processes, or launches them through :func:`launch` (one array of tasks
per stage, sharing one ``$STEERLIB_CACHE``). A job's result depends on its arguments alone (its seeds are in
them), so all ways give the same results. :func:`run_jobs` is the pool the command and the chapters (e.g. a grid of
runs) use.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import torch

from steerlib.chapters import CHAPTERS
from steerlib.core.chapter import Run, replicated, start
from steerlib.core.checks import check_choice, check_nonempty, check_range, check_type
from steerlib.core.profiles import get_profile
from steerlib.core.runtime import progress_bar

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


def at_seeds(settings: S, run: Run) -> list[tuple[S, Run]]:
    """(settings, run) of each seed of a chapter replicated over ``settings.seeds`` (:func:`~steerlib.core.chapter.
    replicated`): ``seeds=1`` and the run at ``run.seed``, ``run.seed + 1``, ..., as ``replicated`` runs them."""
    check_type("run", run, Run, "the Run from chapter.start")
    check_range("settings.seeds", getattr(settings, "seeds", None), 1, integer=True)
    one = dataclasses.replace(settings, seeds=1)
    return [(one, dataclasses.replace(run, seed=seed)) for seed in range(run.seed, run.seed + settings.seeds)]


def per_seed(name: str, fn: Callable[[S, Run], Any], settings: S, run: Run) -> Stage:
    """A stage of one job per seed (:func:`at_seeds`), each ``fn(settings, run)`` (e.g. a pretraining)."""
    return Stage(name, tuple(Job(f"seed {r.seed}", fn, (s, r)) for s, r in at_seeds(settings, run)))


def results_stage(settings: S, run: Run, kind: str, experiment: Callable[[S, Run], Any], as_type: type,
                  versions: dict[str, str] | None = None) -> Stage:
    """Stage "results": each seed's whole results, cached as the chapter's ``run`` caches them
    (:func:`~steerlib.core.chapter.replicated` of ``kind``, ``experiment``, ``as_type`` and ``versions``), the
    entries the notebook reads; a job trains whatever of its seed the earlier stages did not list."""
    return Stage("results", tuple(Job(f"seed {r.seed}", replicated, (r, s, kind, experiment, as_type, versions))
                                  for s, r in at_seeds(settings, run)))


# ------------------------------------------------------------------------------------------- running them


def _timed(job: JobFn, state: S, item: T, progress: bool) -> tuple[R, float]:
    t = time.time()
    return job(state, item, progress), time.time() - t


def _start_worker(make_state: Callable[[], S]) -> None:
    torch.set_num_threads(1)
    _WORKER["state"] = make_state()


def _work(job: JobFn, item: T) -> tuple[R, float]:
    return _timed(job, _WORKER["state"], item, False)  # one bar, in the parent, counts the jobs


def run_jobs(job: JobFn, items: Sequence[T], state: S, make_state: Callable[[], S], workers: int = 1,
             desc: str = "jobs") -> list[tuple[R, float]]:
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
    return [t for stage in stages if stage.jobs
            for _, t in run_jobs(_run_job, stage.jobs, None, _no_state, workers, desc=stage.name)]


def call_main(argv: list[str]) -> None:
    """:func:`main` of ``argv``: what each launched task runs (a module-level function, so that submitit can
    pickle it)."""
    main(argv)


def launch(argv: list[str], stages: Sequence[Stage], cluster: str, folder: str | os.PathLike,
           resources: Mapping[str, Any] | None = None) -> int:
    """Run every job through submitit on ``cluster`` ("slurm", or "local" for local processes): per stage, in
    order, an array of tasks ``main(argv + ["--stage", name, "--job", i])``, waiting for a stage's tasks before
    submitting the next. Returns how many jobs ran. Logs go to ``folder``; ``resources`` are submitit's parameters
    (e.g. ``slurm_partition``, ``gpus_per_node``, ``timeout_min``). A failed task raises its error."""
    import submitit  # the cluster extra; only the launcher needs it

    check_type("argv", argv, list, "the command line of the chapter, e.g. ['reversion', '--profile', 'cpu']")
    for stage in check_nonempty("stages", stages):
        check_type("stages", stage, Stage, "a list of Stages (from a chapter's jobs)")
    check_choice("cluster", cluster, ("slurm", "local"))
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**(resources or {}))
    done = 0
    for stage in stages:
        n = len(stage.jobs)
        if not n:
            continue
        tasks = executor.map_array(call_main, [[*argv, "--stage", stage.name, "--job", str(i)] for i in range(n)])
        for task in tasks:
            task.result()
        done += n
    return done


# ------------------------------------------------------------------------------------------- the command line


def chapter_jobs(chapter: str, settings: Any, run: Run) -> list[Stage]:
    """The stages of ``chapter`` (a name of :data:`~steerlib.chapters.CHAPTERS`) at ``settings``."""
    check_choice("chapter", chapter, CHAPTERS)
    return importlib.import_module(CHAPTERS[chapter]).jobs(settings, run)


def main(argv: list[str] | None = None) -> None:
    """``python -m steerlib.jobs <chapter> ...``: list, run or launch a chapter's jobs (see ``--help``). The run is
    the notebook's (:func:`~steerlib.core.chapter.start`), so both share ``$STEERLIB_CACHE``."""
    prog = "python -m steerlib.jobs"
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A chapter's training runs as jobs, in stages that run in order, sharing one $STEERLIB_CACHE;\n"
                    "the chapter's notebook then finds every run in the cache.",
        epilog=f"{prog} reversion --profile cpu --list               # the stages and jobs, one line each\n"
               f"{prog} reversion --profile cpu --stage ensembles --job 2   # one job ($SLURM_ARRAY_TASK_ID)\n"
               f"{prog} reversion --profile cpu --stage ensembles   # one stage's jobs\n"
               f"{prog} reversion --profile cpu --workers 2         # every stage, 2 worker processes\n"
               f"{prog} pre-memorization --profile paper --launch slurm --partition gpu --gpus 1 --hours 4\n"
               f"{' ' * len(prog)}                   # every stage as Slurm array tasks (submitit)")
    parser.add_argument("chapter", choices=list(CHAPTERS), help="the chapter (its notebook's name)")
    parser.add_argument("--profile", default=None, help="smoke | cpu | paper (gpu); default $STEERLIB_PROFILE or cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="print the stages and their jobs and exit")
    what.add_argument("--launch", choices=("slurm", "local"), default=None,
                      help="submit every stage's jobs through submitit, stage after stage, and wait for them")
    parser.add_argument("--stage", default=None, help="run only this stage (see --list)")
    parser.add_argument("--job", type=int, default=None, help="with --stage: run only this job of it (see --list)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of one thread each (default 1)")
    parser.add_argument("--folder", default="submitit-logs", help="--launch: where the tasks' logs go")
    parser.add_argument("--partition", default=None, help="--launch slurm: the Slurm partition")
    parser.add_argument("--gpus", type=int, default=0, help="--launch slurm: GPUs per task")
    parser.add_argument("--hours", type=float, default=4.0, help="--launch: time limit per task, in hours")
    args = parser.parse_args(argv)
    try:  # every argument is checked before anything runs (start writes nothing)
        check_range("workers", args.workers, 1, integer=True)
        settings = get_profile(importlib.import_module(CHAPTERS[args.chapter]).PROFILES, args.profile)
        run = start(args.chapter, args.profile, args.seed, args.device)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    stages = chapter_jobs(args.chapter, settings, run)
    if args.list:
        for stage in stages:
            for i, job in enumerate(stage.jobs):
                print(f"{stage.name}\t{i}\t{job.label}")
        return
    if args.launch:
        resources = {"timeout_min": int(args.hours * 60)}
        if args.launch == "slurm":
            resources.update(gpus_per_node=args.gpus, **({"slurm_partition": args.partition} if args.partition else {}))
        base = [args.chapter, "--profile", run.profile, "--seed", str(args.seed), "--device", args.device]
        n = launch(base, stages, args.launch, args.folder, resources)
        print(f"{n} jobs done ({args.launch}); logs in {args.folder}")
        return
    if args.job is not None and args.stage is None:
        parser.error("--job needs --stage (see --list)")
    if args.stage is not None:
        names = [stage.name for stage in stages]
        if args.stage not in names:
            parser.error(f"--stage={args.stage!r} is not a stage of {args.chapter}; allowed values: {names}")
        stages = [stages[names.index(args.stage)]]
        if args.job is not None:
            jobs = stages[0].jobs
            if not 0 <= args.job < len(jobs):
                parser.error(f"--job={args.job} is out of range; allowed values lie in [0, {len(jobs) - 1}] "
                             "(see --list)")
            stages = [Stage(args.stage, (jobs[args.job],))]
    seconds = run_stages(stages, args.workers)
    print(f"{len(seconds)} jobs done in {sum(seconds):.0f} s")
