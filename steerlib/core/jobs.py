"""A grid of independent jobs: run back to back or in worker processes, one at a time from a shell, or launched
through ``submitit`` on a Slurm cluster (or as local processes).

A chapter whose experiment is a grid of independent, cached jobs (e.g. finetuning runs) hands its functions to
:func:`run_jobs` (the grid in this process or in a pool of worker processes) and to :func:`main` (a command line
that lists the jobs, prepares their shared state, runs one job, or launches them all: the shared state first, then
one array task per job, sharing one ``$STEERLIB_CACHE``). Every job depends on its item and seeds alone, so all ways
give the same results.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import torch

from steerlib.core.chapter import Run, start
from steerlib.core.checks import check_choice, check_nonempty, check_range, check_type
from steerlib.core.profiles import get_profile
from steerlib.core.runtime import progress_bar

S = TypeVar("S")  # the state every job starts from, e.g. a pretrained model and its data
T = TypeVar("T")  # a job's item
R = TypeVar("R")  # a job's result

Job = Callable[[S, T, bool], R]  # job(state, item, progress): progress says whether it may show its own bar

_WORKER: dict[str, Any] = {}  # the state of this worker process


def _timed(job: Job, state: S, item: T, progress: bool) -> tuple[R, float]:
    t = time.time()
    return job(state, item, progress), time.time() - t


def _start_worker(make_state: Callable[[], S]) -> None:
    torch.set_num_threads(1)
    _WORKER["state"] = make_state()


def _work(job: Job, item: T) -> tuple[R, float]:
    return _timed(job, _WORKER["state"], item, False)  # one bar, in the parent, counts the jobs


def run_jobs(job: Job, items: Sequence[T], state: S, make_state: Callable[[], S], workers: int = 1,
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


def call_main(module: str, argv: list[str]) -> None:
    """``module.main(argv)``: what each launched task runs (a module-level function, so that submitit can pickle it)."""
    importlib.import_module(module).main(argv)


def launch(module: str, argv: list[str], n_jobs: int, cluster: str, folder: str | os.PathLike,
           resources: Mapping[str, Any] | None = None) -> int:
    """Run ``module``'s command line through submitit on ``cluster`` ("slurm", or "local" for local processes):
    ``argv + ["--pretrain"]`` first, then an array of ``n_jobs`` tasks ``argv + ["--job", i]`` once it is done;
    wait for all of them and return how many jobs ran. Logs go to ``folder``; ``resources`` are submitit's
    parameters (e.g. ``slurm_partition``, ``gpus_per_node``, ``timeout_min``). A failed task raises its error."""
    import submitit  # the cluster extra; only the launcher needs it

    check_type("module", module, str, "the dotted name of a chapter's __main__ module")
    check_choice("cluster", cluster, ("slurm", "local"))
    check_range("n_jobs", n_jobs, 1, integer=True)
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**(resources or {}))
    executor.submit(call_main, module, [*argv, "--pretrain"]).result()  # the shared state, before any job
    tasks = executor.map_array(call_main, [module] * n_jobs, [[*argv, "--job", str(i)] for i in range(n_jobs)])
    for task in tasks:
        task.result()
    return len(tasks)


def main(argv: list[str] | None, *, module: str, chapter: str, profiles: Mapping[str, Any],
         describe: Callable[[Any], list[str]], prepare: Callable[[Any, Run], S], run_job: Callable[[S, int], str],
         run_all: Callable[[Any, Run], str]) -> None:
    """The command line of a chapter's jobs. The chapter passes its functions in: ``describe(settings)`` gives one
    line per job, ``prepare(settings, run)`` builds the state every job starts from (e.g. the cached pretraining),
    ``run_job(state, i)`` runs job i and ``run_all(settings, run)`` the chapter's whole experiment; both return a
    line to print. The run is the notebook's (:func:`steerlib.core.chapter.start`), so both share the cache.
    ``--launch slurm`` (or ``local``) submits every job through :func:`launch`; ``module`` is the chapter's
    ``__main__`` module, whose ``main(argv)`` each task runs."""
    prog = f"python -m {module.removesuffix('.__main__')}"
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the chapter's jobs from a shell, e.g. as the array tasks of a cluster scheduler\n"
                    "sharing one $STEERLIB_CACHE; the chapter then finds every job in the cache.",
        epilog=f"{prog} --profile cpu --list      # the jobs, one line each\n"
               f"{prog} --profile cpu --pretrain  # once, before the jobs: their shared state\n"
               f"{prog} --profile cpu --job 3     # one job (e.g. --job $SLURM_ARRAY_TASK_ID)\n"
               f"{prog} --profile paper --launch slurm --partition gpu --gpus 1 --hours 4\n"
               f"{' ' * len(prog)}                   # all jobs as Slurm array tasks (submitit)\n"
               f"{prog} --profile cpu             # the chapter's whole run")
    parser.add_argument("--profile", default=None, help="smoke | cpu | paper (gpu); default $STEERLIB_PROFILE or cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="print the jobs and exit")
    what.add_argument("--pretrain", action="store_true", help="only prepare the jobs' shared state (cached)")
    what.add_argument("--job", type=int, default=None, help="index of the one job to run (see --list)")
    what.add_argument("--launch", choices=("slurm", "local"), default=None,
                      help="submit the shared state, then every job, through submitit and wait for them")
    parser.add_argument("--folder", default="submitit-logs", help="--launch: where the tasks' logs go")
    parser.add_argument("--partition", default=None, help="--launch slurm: the Slurm partition")
    parser.add_argument("--gpus", type=int, default=0, help="--launch slurm: GPUs per task")
    parser.add_argument("--hours", type=float, default=4.0, help="--launch: time limit per task, in hours")
    args = parser.parse_args(argv)
    try:  # every argument is checked before anything runs (start writes nothing)
        settings = get_profile(profiles, args.profile)
        run = start(chapter, args.profile, args.seed, args.device)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    lines = describe(settings)
    if args.list:
        for i, line in enumerate(lines):
            print(f"{i}\t{line}")
        return
    if args.launch:
        resources = {"timeout_min": int(args.hours * 60)}
        if args.launch == "slurm":
            resources.update(gpus_per_node=args.gpus, **({"slurm_partition": args.partition} if args.partition else {}))
        base = ["--profile", run.profile, "--seed", str(args.seed), "--device", args.device]
        n = launch(module, base, len(lines), args.launch, args.folder, resources)
        print(f"{n} jobs done ({args.launch}); logs in {args.folder}")
        return
    if args.job is not None and not 0 <= args.job < len(lines):
        parser.error(f"--job={args.job} is out of range; allowed values lie in [0, {len(lines) - 1}] (see --list)")
    if args.pretrain or args.job is not None:
        state = prepare(settings, run)
        if args.job is not None:
            print(run_job(state, args.job))
        return
    print(run_all(settings, run))
