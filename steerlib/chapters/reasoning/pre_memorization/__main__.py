"""The grid's finetuning runs as jobs from a shell (see :func:`steerlib.core.jobs.main`)::

    python -m steerlib.chapters.reasoning.pre_memorization --profile cpu --list      # the jobs, one line each
    python -m steerlib.chapters.reasoning.pre_memorization --profile cpu --pretrain  # once: the shared pretraining
    python -m steerlib.chapters.reasoning.pre_memorization --profile cpu --job 3     # one run ($SLURM_ARRAY_TASK_ID)
    python -m steerlib.chapters.reasoning.pre_memorization --profile paper --launch slurm --partition gpu --gpus 1
    python -m steerlib.chapters.reasoning.pre_memorization --profile cpu             # every run

The chapter then finds every run in the cache.
"""
from __future__ import annotations

from steerlib.chapters.reasoning.pre_memorization.analysis import analyse
from steerlib.chapters.reasoning.pre_memorization.experiment import PROFILES, Experiment, Settings, grid, run, train_run
from steerlib.core import jobs
from steerlib.core.chapter import Run


def describe(settings: Settings) -> list[str]:
    return [f"{spec.name}\t{spec.steps(settings.n_train, settings.batch_size)} steps" for spec in grid(settings)]


def run_job(ex: Experiment, i: int) -> str:
    spec = grid(ex.s)[i]
    log = train_run(ex, spec)
    return f"{spec.name}: final train acc {log.train_acc[-1].mean():.3f}, test acc {log.test_acc[-1].mean():.3f}"


def run_all(settings: Settings, chapter_run: Run) -> str:
    a = analyse(run(settings, chapter_run))
    return f"{len(a.final)} runs; " + (a.p_note or f"R² on y = x of pre-memorization accuracy at p = {a.p:.3f}: "
                                                   f"{a.curve.max():.3f}")


def main(argv: list[str] | None = None) -> None:
    jobs.main(argv, module="steerlib.chapters.reasoning.pre_memorization.__main__", chapter="pre-memorization",
              profiles=PROFILES, describe=describe, prepare=Experiment, run_job=run_job, run_all=run_all)


if __name__ == "__main__":
    main()
