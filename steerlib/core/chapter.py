"""What every chapter notebook does around its experiment: set up a run, save figures, record claims.

A chapter's ``parameters`` cell takes ``profile``, ``seed``, ``device`` and ``out_dir``;
:func:`start` checks them and turns them into a :class:`Run` (threads set, seeds fixed, device picked; the output
folder is made by the first figure or record written into it, so a run that fails early leaves nothing behind),
and :func:`finish` writes ``<out_dir>/metrics.json`` and returns the claims as a table to display.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch

from steerlib.chapters import CHAPTERS
from steerlib.core.cache import RunCache, schema
from steerlib.core.checks import RUN_SEED_MAX, check_choice, check_seed, check_type
from steerlib.core.claims import VERDICTS, Claim, check_claims, judge, unexplained
from steerlib.core.profiles import resolve_profile
from steerlib.core.record import write_metrics
from steerlib.core.runtime import pick_device, quiet_libraries, seed_everything, set_threads

RESULTS_ENV = "STEERLIB_RESULTS"


def results_root() -> Path:
    """Where chapters write ``<chapter>/metrics.json``: ``$STEERLIB_RESULTS``, else ``results/`` at the book's root
    (the first folder, from here upwards, holding ``_toc.yml``), else ``./results``."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists():
            return folder / "results"
    return here / "results"

S = TypeVar("S")  # a chapter's Settings (with a ``seeds`` field)
R = TypeVar("R")  # its Results (with an ``others`` field)


@dataclasses.dataclass
class Run:
    chapter: str
    profile: str
    seed: int
    device: torch.device
    out_dir: Path
    cache: RunCache
    started: float


def check_run(settings: Any, settings_type: type, run: Run) -> None:
    """The arguments of a chapter's ``run(settings, run)``: its ``Settings`` and the :class:`Run` from :func:`start`."""
    check_type("settings", settings, settings_type, f"the chapter's {settings_type.__name__} (from get_profile)")
    check_type("run", run, Run, "the Run from chapter.start")


def start(chapter: str, profile: str | None = None, seed: int = 0, device: str = "auto",
          out_dir: str | Path | None = None, cache: bool = True) -> Run:
    """Check the parameters, resolve the profile (argument, else $STEERLIB_PROFILE, else cpu), set threads and seeds,
    pick the device; in a batch run (``STEERLIB_INTERACTIVE=0``, as in the book build) silence the libraries' progress
    bars. Nothing is written: the output folder is made when something is saved into it.

    ``seed`` is an integer in [0, 2**32 - 1]; ``out_dir`` defaults to ``results_root() / chapter``, the folder the
    scorecard reads."""
    check_choice("chapter", chapter, CHAPTERS)
    profile = resolve_profile(profile)
    check_seed("seed", seed, RUN_SEED_MAX)
    check_type("cache", cache, bool, "True or False")
    if out_dir is not None:
        check_type("out_dir", out_dir, (str, os.PathLike), "a folder path (a string)")
        if not str(out_dir) or Path(out_dir).is_file():
            raise ValueError(f"out_dir={str(out_dir)!r} is not a folder; give the folder for metrics.json and figures")
    torch_device = pick_device(device)
    set_threads()
    quiet_libraries()
    seed_everything(seed)
    out = Path(out_dir) if out_dir is not None else results_root() / chapter
    return Run(chapter, profile, seed, torch_device, out, RunCache(enabled=cache), time.time())


def replicated(run: Run, settings: S, kind: str, experiment: Callable[[S, Run], R], as_type: type[R],
               versions: dict[str, str] | None = None) -> R:
    """``experiment(settings, run)`` at ``run.seed`` and at the ``settings.seeds - 1`` next seeds, each seed's result
    cached as a whole under ``kind`` (keyed with ``seeds=1``, so one entry serves any number of seeds); the next
    seeds' results go into the first one's ``others``, whose values widen the claims' intervals. The key holds the
    :func:`~steerlib.core.cache.schema` of ``as_type``: adding a field to the results recomputes them, and so does
    a change of ``versions`` (e.g. ``{"sampler": steerlib.lm.sampling.SAMPLER}`` for a chapter whose results hold
    sampled tokens)."""
    check_type("run", run, Run, "the Run from chapter.start")
    check_choice("kind", kind, CHAPTERS)
    check_type("experiment", experiment, Callable, "a function experiment(settings, run)")
    check_type("versions", versions, (dict, type(None)), "a dict of version strings or None")
    one = dataclasses.replace(settings, seeds=1)
    extra = {"versions": versions} if versions else {}  # absent when empty: other chapters' keys stay as they were

    def at(seed: int) -> R:
        return run.cache.cached(kind, {"settings": one, "seed": seed, "schema": schema(as_type), **extra},
                                lambda: experiment(one, dataclasses.replace(run, seed=seed)), as_type=as_type)

    main = at(run.seed)
    main.others = [at(run.seed + k) for k in range(1, settings.seeds)]
    return main


def claims_table(claims: Iterable[Claim]):
    """The claims as a pandas DataFrame: id, kind, claim, statistic, value with its interval, threshold, verdict."""
    import pandas as pd

    def ours(c: Claim) -> str:
        interval = f" [{c.interval[0]:.3g}, {c.interval[1]:.3g}]" if c.interval else ""
        return f"{float(c.value):.3g}{interval}"

    rows = [{"id": c.id, "kind": c.kind, "claim": c.statement, "statistic": c.statistic, "value [interval]": ours(c),
             "threshold": f"{c.op} {c.threshold:g}", "verdict": c.verdict} for c in check_claims(claims)]
    return pd.DataFrame(rows).set_index("id")


def finish(run: Run, config: Any, claims: list[Claim], extra: dict | None = None):
    """Check that every claim explains its threshold and uncertainty, judge the claims
    (:func:`~steerlib.core.claims.judge`), write ``metrics.json`` for this run and return :func:`claims_table`."""
    check_type("run", run, Run, "the Run from chapter.start")
    check_type("extra", extra, (dict, type(None)), "a dict of numbers or None")
    if missing := unexplained(check_claims(claims)):
        raise ValueError(f"claims {missing} need a one-line justification of their threshold (why) and an account of "
                         "their uncertainty (interval and how it was measured, or why it has zero width)")
    claims = judge(claims)
    write_metrics(run.out_dir, run.chapter, {"profile": run.profile, "seed": run.seed, "device": str(run.device),
                                             "settings": config}, claims, run.started, extra)
    return claims_table(claims)


def verdict(claims: Iterable[Claim]):
    """A Markdown paragraph, generated from the claims, saying which reproduce, how firmly, and which do not."""
    from IPython.display import Markdown

    claims = judge(claims)
    evidence = [c for c in claims if c.kind == "evidence"]
    count = {v: sum(c.verdict == v for c in evidence) for v in VERDICTS}
    lines = [f"**{count['holds']} of {len(evidence)} evidence claims hold in this run, {count['holds (fragile)']} "
             f"more hold but are fragile, {count['does not hold']} do not hold"
             + (f", {count['not judged']} are not judged" if count["not judged"] else "") + ".**"]

    def measured(c: Claim) -> str:
        interval = f" (interval [{c.interval[0]:.3g}, {c.interval[1]:.3g}])" if c.interval else ""
        return f"{c.statistic} = {c.value:.3g}{interval}, threshold {c.op} {c.threshold:g}"

    for c in claims:
        kind = "prerequisite " if c.kind == "prerequisite" else ""
        paper = f" Dissertation: {c.dissertation}." if c.dissertation else ""
        note = f" {c.note[:1].upper()}{c.note[1:]}." if c.note else ""
        if c.verdict == "does not hold":
            lines.append(f"- **{kind}{c.id} does not reproduce here**: {c.statement}; {measured(c)}.{paper}{note}")
        else:
            lines.append(f"- {kind}{c.id} {c.verdict}: {measured(c)}.{note}")
    return Markdown("\n".join(lines))
