"""One command for every chapter's jobs: ``python -m steerlib.jobs <chapter> --help``.

It lists a chapter's training runs (:mod:`steerlib.core.jobs`), runs a stage or one job (e.g. one Slurm array
task), runs them all back to back or in worker processes, or launches them through ``submitit`` (:func:`launch`: one
array of tasks per stage, sharing one ``$STEERLIB_CACHE``). The run is the notebook's
(:func:`~steerlib.core.chapter.prepare`), so the notebook then finds every run in the cache.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

from steerlib.book import CHAPTERS, chapter
from steerlib.core.chapter import prepare
from steerlib.core.checks import check_choice, check_nonempty, check_range, check_type
from steerlib.core.jobs import Job, Stage, run_stages
from steerlib.core.profiles import resolve_profile
from steerlib.core.scale import point


def stages(
    name: str, profile: str | None = None, seed: int = 0, device: str = "auto", beyond: bool = False, **overrides: Any
) -> list[Stage]:
    """The stages of chapter ``name`` at ``profile`` and ``seed`` (nothing runs); where the chapter has a scale axis
    (:mod:`steerlib.core.scale`), last the stage "sweep": a job per factor of its ladder other than 1 (the
    notebook's own run), and with ``beyond`` the factors past the ladder too (Scale.beyond); at a profile without a
    ladder (paper), one job, its own run's point, which the other profiles' sweeps show beside theirs."""
    check_type("beyond", beyond, bool, "True or False")
    ch = chapter(name)
    run, settings = prepare(ch, profile, seed, device=device, **overrides)
    listed = ch.jobs(settings, run)
    if ch.scale is None:
        return listed
    if run.profile in ch.scale.factors:
        ladder = [f for f in ch.scale.factors[run.profile] if f != 1.0]
        factors = ladder + list(ch.scale.past_ladder(run.profile) if beyond else ())
    else:  # a profile without a ladder (paper): its own run, kept for the other profiles' sweeps to show beside
        factors = [1.0]
    where = (settings, True, device, run.cache.enabled)  # base, compute_missing, device, cache
    jobs = (Job(f"scale {f:g}", point, (ch.package, run.profile, run.seed, f, *where)) for f in factors)
    return [*listed, Stage("sweep", tuple(jobs))]


def call_main(argv: list[str]) -> None:
    """:func:`main` of ``argv``: what each launched task runs (a module-level function, so that submitit can
    pickle it)."""
    main(argv)


def launch(
    argv: list[str],
    stages: Sequence[Stage],
    cluster: str,
    folder: str | os.PathLike,
    resources: Mapping[str, Any] | None = None,
) -> int:
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


def main(argv: list[str] | None = None) -> None:
    """``python -m steerlib.jobs <chapter> ...``: list, run or launch a chapter's jobs (see ``--help``). The run is
    the notebook's (:func:`~steerlib.core.chapter.prepare`), so both share ``$STEERLIB_CACHE``."""
    prog = "python -m steerlib.jobs"
    parser = argparse.ArgumentParser(
        prog=prog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A chapter's training runs as jobs, in stages that run in order, sharing one $STEERLIB_CACHE;\n"
        "the chapter's notebook then finds every run in the cache.",
        epilog=f"{prog} reversion --profile cpu --list               # the stages and jobs, one line each\n"
        f"{prog} reversion --profile cpu --stage ensembles --job 2   # one job ($SLURM_ARRAY_TASK_ID)\n"
        f"{prog} reversion --profile cpu --stage ensembles   # one stage's jobs\n"
        f"{prog} reversion --profile cpu --workers 2         # every stage, 2 worker processes\n"
        f"{prog} mechanism --stage sweep --beyond            # the scale axis, past the book's points\n"
        f"{prog} pre-memorization --profile paper --launch slurm --partition gpu --gpus 1 --hours 4\n"
        f"{' ' * len(prog)}                   # every stage as Slurm array tasks (submitit)",
    )
    parser.add_argument("chapter", choices=list(CHAPTERS), help="the chapter (its notebook's name)")
    parser.add_argument("--profile", default=None, help="smoke | cpu | paper (gpu); default $STEERLIB_PROFILE or cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="print the stages and their jobs and exit")
    what.add_argument(
        "--launch",
        choices=("slurm", "local"),
        default=None,
        help="submit every stage's jobs through submitit, stage after stage, and wait for them",
    )
    parser.add_argument("--stage", default=None, help="run only this stage (see --list)")
    parser.add_argument(
        "--beyond", action="store_true", help="the sweep stage also runs the scale factors past the book's ladder"
    )
    parser.add_argument("--job", type=int, default=None, help="with --stage: run only this job of it (see --list)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of one thread each (default 1)")
    parser.add_argument("--folder", default="submitit-logs", help="--launch: where the tasks' logs go")
    parser.add_argument("--partition", default=None, help="--launch slurm: the Slurm partition")
    parser.add_argument("--gpus", type=int, default=0, help="--launch slurm: GPUs per task")
    parser.add_argument("--hours", type=float, default=4.0, help="--launch: time limit per task, in hours")
    args = parser.parse_args(argv)
    try:  # every argument is checked before anything runs (prepare writes nothing)
        check_range("workers", args.workers, 1, integer=True)
        listed = stages(args.chapter, args.profile, args.seed, args.device, args.beyond)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    if args.list:
        for stage in listed:
            for i, job in enumerate(stage.jobs):
                print(f"{stage.name}\t{i}\t{job.label}")
        return
    if args.launch:
        resources = {"timeout_min": int(args.hours * 60)}
        if args.launch == "slurm":
            resources.update(gpus_per_node=args.gpus, **({"slurm_partition": args.partition} if args.partition else {}))
        base = [
            args.chapter,
            "--profile",
            resolve_profile(args.profile),
            "--seed",
            str(args.seed),
            "--device",
            args.device,
            *(["--beyond"] if args.beyond else []),
        ]
        n = launch(base, listed, args.launch, args.folder, resources)
        print(f"{n} jobs done ({args.launch}); logs in {args.folder}")
        return
    if args.job is not None and args.stage is None:
        parser.error("--job needs --stage (see --list)")
    if args.stage is not None:
        names = [stage.name for stage in listed]
        if args.stage not in names:
            parser.error(f"--stage={args.stage!r} is not a stage of {args.chapter}; allowed values: {names}")
        listed = [listed[names.index(args.stage)]]
        if args.job is not None:
            jobs = listed[0].jobs
            if not 0 <= args.job < len(jobs):
                parser.error(
                    f"--job={args.job} is out of range; allowed values lie in [0, {len(jobs) - 1}] (see --list)"
                )
            listed = [Stage(args.stage, (jobs[args.job],))]
    seconds = run_stages(listed, args.workers)
    print(f"{len(seconds)} jobs done in {sum(seconds):.0f} s")


if __name__ == "__main__":
    main()
