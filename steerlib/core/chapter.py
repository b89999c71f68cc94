"""A chapter as one value, and the one call that runs it.

A chapter package exports ``CHAPTER``, a :class:`Chapter`: its name and part, its profiles (``smoke``, ``cpu``,
``paper``; each a frozen ``Settings``), and four functions: ``run(settings, run) -> Results`` (the experiment),
``claims(results)``, ``extra(results)`` (the numbers kept in ``metrics.json``) and ``jobs(settings, run)`` (its
training runs as cached jobs, :mod:`steerlib.core.jobs`), and where its claims are followed along a scale axis, that
axis (``SCALE``, :mod:`steerlib.core.scale`); its figures load on demand, so importing a chapter never
imports matplotlib.

:func:`execute` runs a chapter for every caller (notebooks, tests, the job command, sweeps): it checks the
parameters, sets threads, seeds and device (:func:`start`), looks up the profile with its overrides, runs the
experiment, judges the claims, writes ``<out_dir>/metrics.json`` and returns an :class:`Execution` holding all of it.
Nothing is written before the experiment has run: the output folder is made by the first figure or record.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import torch

from steerlib.core import ledger
from steerlib.core.cache import RunCache, schema
from steerlib.core.checks import RUN_SEED_MAX, check_nonempty, check_range, check_seed, check_type
from steerlib.core.claims import HOLDING, VERDICTS, Claim, Spec, check_claims, judge, unexplained
from steerlib.core.profiles import get_profile, resolve_profile
from steerlib.core.record import add_to_metrics, write_metrics
from steerlib.core.runtime import pick_device, quiet_libraries, set_threads
from steerlib.core.scale import Scale, Sweep, sweep
from steerlib.core.seeds import Replicate, rng, seed_everything, stream_seed

RESULTS_ENV = "STEERLIB_RESULTS"
PARTS = ("extrapolation", "hallucination", "reasoning", "related")  # the book's parts, as folders of book/


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


S = TypeVar("S")  # a chapter's Settings (with a ``replicates`` field)
R = TypeVar("R")  # its Results (with an ``others`` field where replicates run as whole experiments)


@dataclasses.dataclass(frozen=True)
class Run:
    """Where and how a chapter runs: its name, profile, seed and replicate (0 for the run as a whole), device, output
    folder and run cache. Every random draw comes from one of its named streams (:mod:`steerlib.core.seeds`)."""

    chapter: str
    profile: str
    seed: int
    device: torch.device
    out_dir: Path
    cache: RunCache
    started: float
    replicate: int = 0

    def stream(self, name: str) -> int:
        """The seed of this replicate's random stream ``name`` (:func:`~steerlib.core.seeds.stream_seed`)."""
        return stream_seed(self.seed, name, self.replicate)

    def rng(self, name: str) -> np.random.Generator:
        """A NumPy generator on this replicate's stream ``name``."""
        return rng(self.seed, name, self.replicate)

    def at(self, replicate: int) -> Run:
        """This run at another replicate."""
        check_range("replicate", replicate, 0, integer=True)
        return dataclasses.replace(self, replicate=replicate)

    def replicates(self, n: int) -> tuple[Replicate, ...]:
        """Replicates 0 .. n-1 of this run's seed (e.g. the members of an ensemble)."""
        check_range("n", n, 1, integer=True)
        return tuple(Replicate(self.seed, i) for i in range(n))


def check_run(settings: Any, settings_type: type, run: Run) -> None:
    """The arguments of a chapter's ``run(settings, run)``: its ``Settings`` and the :class:`Run` from :func:`start`."""
    check_type("settings", settings, settings_type, f"the chapter's {settings_type.__name__} (from its profiles)")
    check_type("run", run, Run, "the Run from chapter.start")


@dataclasses.dataclass(frozen=True)
class Chapter:
    """One chapter: name (its notebook's), part (its folder in ``book/``), title, profiles, its experiment and its
    claims. ``package`` names the chapter's package, whose ``figures`` module :attr:`figures` imports on demand."""

    name: str
    part: str
    title: str
    package: str
    profiles: Mapping[str, Any]
    run: Callable[[Any, Run], Any]
    claims: Callable[[Any], list[Claim]]
    extra: Callable[[Any], dict]
    jobs: Callable[[Any, Run], list]
    results_type: type
    specs: tuple[Spec, ...]  # the claims table (analysis.SPECS)
    scale: Scale | None = None  # its scale axis (experiment.SCALE, a steerlib.core.scale.Scale), where it has one

    def __post_init__(self):
        for name in ("name", "title", "package"):
            check_nonempty(name, check_type(name, getattr(self, name), str, "a non-empty string"))
        if self.part not in PARTS:
            raise ValueError(f"part={self.part!r} is not allowed; choose one of {', '.join(map(repr, PARTS))}")
        for name in ("run", "claims", "extra", "jobs"):
            check_type(name, getattr(self, name), Callable, "a function")
        for spec in check_nonempty("specs", check_type("specs", self.specs, tuple, "a tuple of Specs")):
            check_type("specs", spec, Spec, "a tuple of Specs")
        check_type("scale", self.scale, (Scale, type(None)), "a Scale (steerlib.core.scale) or None")

    @classmethod
    def define(cls, package: str, *, name: str, part: str, title: str) -> Chapter:
        """The chapter whose package is ``package`` (its ``__name__``), built from the protocol's names in its
        ``experiment`` (``PROFILES``, ``run``, ``jobs``, ``Results``) and ``analysis`` (``claims``, ``extra``,
        ``SPECS``) modules."""
        check_nonempty("package", check_type("package", package, str, "the chapter package's __name__"))
        experiment = importlib.import_module(f"{package}.experiment")
        analysis = importlib.import_module(f"{package}.analysis")
        return cls(
            name=name,
            part=part,
            title=title,
            package=package,
            profiles=experiment.PROFILES,
            run=experiment.run,
            claims=analysis.claims,
            extra=analysis.extra,
            jobs=experiment.jobs,
            results_type=experiment.Results,
            specs=tuple(analysis.SPECS),
            scale=getattr(experiment, "SCALE", None),
        )

    @property
    def settings_type(self) -> type:
        """The chapter's ``Settings`` class (the type of its profiles)."""
        return type(self.profiles["cpu"])

    @property
    def figures(self) -> ModuleType:
        """The chapter's ``figures`` module (imported now: the only module of a chapter that loads matplotlib)."""
        return importlib.import_module(f"{self.package}.figures")

    @classmethod
    def of(cls, package: str) -> Chapter:
        """The ``CHAPTER`` of the chapter package ``package`` (its ``__name__``), imported now."""
        check_nonempty("package", check_type("package", package, str, "a chapter package's __name__"))
        return check_type("CHAPTER", importlib.import_module(package).CHAPTER, cls, "a Chapter")

    @property
    def folder(self) -> Path:
        """The folder of the chapter's modules."""
        return Path(importlib.import_module(self.package).__file__).parent

    @property
    def ledger_path(self) -> Path:
        """The chapter's claims ledger (:mod:`steerlib.core.ledger`), ``ledger.json`` beside its modules."""
        return self.folder / "ledger.json"

    @property
    def notebook(self) -> str:
        """The notebook's path from the book's root."""
        return f"book/{self.part}/{self.name}.ipynb"

    def settings(self, profile: str | None = None, **overrides: Any) -> Any:
        """The settings of ``profile`` (:func:`~steerlib.core.profiles.resolve_profile`) with keyword ``overrides``
        (None values ignored); an unknown override raises a ValueError naming the settings' fields."""
        return get_profile(self.profiles, profile, **overrides)


def start(
    chapter: str,
    profile: str | None = None,
    seed: int = 0,
    device: str = "auto",
    out_dir: str | Path | None = None,
    cache: bool = True,
) -> Run:
    """Check the parameters, resolve the profile (argument, else $STEERLIB_PROFILE, else cpu), set threads and the
    global seeds, pick the device; in a batch run (``STEERLIB_INTERACTIVE=0``, as in the book build) silence the
    libraries' progress bars. Nothing is written.

    ``seed`` is an integer in [0, 2**32 - 1]; ``out_dir`` defaults to ``results_root() / chapter``, the folder the
    scorecard reads."""
    check_nonempty("chapter", check_type("chapter", chapter, str, "the chapter's name"))
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


def prepare(
    chapter: Chapter,
    profile: str | None = None,
    seed: int = 0,
    *,
    device: str = "auto",
    cache: bool = True,
    out_dir: str | Path | None = None,
    **overrides: Any,
) -> tuple[Run, Any]:
    """The :class:`Run` (:func:`start`) and the settings of ``chapter`` at ``profile`` with ``overrides``: what
    :func:`execute` and the job command start from. Every parameter is checked before anything runs."""
    check_type("chapter", chapter, Chapter, "a Chapter (a chapter package's CHAPTER, or steerlib.book.chapter(name))")
    settings = chapter.settings(resolve_profile(profile), **overrides)
    return start(chapter.name, profile, seed, device, out_dir, cache), settings


@dataclasses.dataclass
class Execution:
    """A chapter that ran: its run, settings, results, judged claims and extra numbers."""

    chapter: Chapter
    run: Run
    settings: Any
    results: Any
    claims: list[Claim]
    extra: dict
    glued: set[str] = dataclasses.field(default_factory=set)  # the names :meth:`glue` has kept
    recorded: bool = False  # whether the run wrote its metrics.json

    @property
    def figures(self) -> ModuleType:
        """The chapter's ``figures`` module (:attr:`Chapter.figures`)."""
        return self.chapter.figures

    def show(self, fig, name: str) -> None:
        """Save ``fig`` as ``<out_dir>/<name>.png`` and ``.pdf`` and show it (:func:`steerlib.core.figures.show`)."""
        from steerlib.core.figures import show

        show(fig, self.run, name)

    def claim(self, cid: str) -> Claim:
        """The claim with id ``cid``."""
        found = {c.id: c for c in self.claims}
        if cid not in found:
            raise KeyError(f"{self.chapter.name} has no claim {cid!r}; its claims: {sorted(found)}")
        return found[cid]

    def glue(self, name: str, value: Any) -> None:
        """Keep ``value`` under ``name`` for the notebook's prose (myst-nb's glue, the book extra): a number shows
        with ``{glue:text}`name:.2f```, a text (e.g. a verdict) with ``{glue:md}`name```. Prose that states a number
        of the run takes it from the run."""
        from IPython.display import Markdown
        from myst_nb import glue

        check_nonempty("name", check_type("name", name, str, "a name for the prose to refer to"))
        glue(name, Markdown(value) if isinstance(value, str) else value, display=False)
        self.glued.add(name)

    def glue_missing(self, *names: str) -> None:
        """:meth:`glue` NaN under each of ``names`` not glued yet: numbers the prose quotes from a dataset or setting
        this profile does not run (the smoke profile runs one small dataset), so the text renders and shows nan."""
        for name in names:
            if name not in self.glued:
                self.glue(name, float("nan"))

    def glue_claims(self) -> None:
        """:meth:`glue` every claim's value, interval and verdict as ``<id>``, ``<id>-low``, ``<id>-high`` (numbers;
        NaN without an interval) and ``<id>-verdict`` (text)."""
        for c in self.claims:
            low, high = c.interval if c.interval else (float("nan"), float("nan"))
            for name, value in (
                (c.id, float(c.value)),
                (f"{c.id}-low", low),
                (f"{c.id}-high", high),
                (f"{c.id}-verdict", c.verdict),
            ):
                self.glue(name, value)

    def table(self):
        """The claims as a table (:func:`claims_table`)."""
        return claims_table(self.claims)

    def verdict(self):
        """The claims' verdicts as Markdown (:func:`verdict`)."""
        return verdict(self.claims)

    def sweep(self, beyond: bool = True) -> Sweep:
        """The chapter's claims along its scale axis (:func:`steerlib.core.scale.sweep`: this run at factor 1, the
        rest of the profile's ladder computed or read from the run cache, and with ``beyond`` the factors past the
        ladder that the cache holds), added to this run's ``metrics.json`` as ``sweep`` (with ``cpu_s``, the CPU seconds
        the points took here) when the run was recorded."""
        before = os.times()
        found = sweep(self, beyond=beyond)
        if self.recorded:
            cpu_s = sum(os.times()[:4]) - sum(before[:4])  # this process and its workers: what the points cost
            add_to_metrics(self.run.out_dir, "sweep", {**found.as_dict(), "cpu_s": round(cpu_s, 2)})
        return found


def execute(
    chapter: Chapter,
    profile: str | None = None,
    seed: int = 0,
    *,
    device: str = "auto",
    cache: bool = True,
    out_dir: str | Path | None = None,
    record: bool = True,
    **overrides: Any,
) -> Execution:
    """Run ``chapter`` at ``profile`` (default ``$STEERLIB_PROFILE``, else cpu) and ``seed`` with its settings'
    ``overrides``: :func:`prepare`, the experiment, the claims (checked to explain their thresholds and
    uncertainty, then judged), and with ``record`` its ``metrics.json``. Trained runs come from and go to the run
    cache unless ``cache`` is False."""
    check_type("record", record, bool, "True or False")
    run, settings = prepare(chapter, profile, seed, device=device, cache=cache, out_dir=out_dir, **overrides)
    results = chapter.run(settings, run)
    claims = check_claims(chapter.claims(results))
    if missing := unexplained(claims):
        raise ValueError(
            f"claims {missing} need a one-line justification of their threshold (why) and an account of "
            "their uncertainty (interval and how it was measured, or why it has none)"
        )
    claims = ledger.with_states(judge(claims), ledger.read(chapter.ledger_path), chapter.specs)
    extra = chapter.extra(results)
    check_type("extra", extra, dict, "a dict of numbers")
    if record:
        write_metrics(
            run.out_dir,
            run.chapter,
            {"profile": run.profile, "seed": run.seed, "device": str(run.device), "settings": settings},
            claims,
            run.started,
            extra,
        )
    return Execution(chapter, run, settings, results, claims, extra, recorded=record)


def replicate_results(
    run: Run,
    settings: S,
    kind: str,
    experiment: Callable[[S, Run], R],
    as_type: type[R],
    versions: dict[str, str] | None = None,
) -> R:
    """``experiment(settings, run)`` at ``run.replicate`` (``settings`` with ``replicates=1``), cached as a whole
    under ``kind``. The key holds the :func:`~steerlib.core.cache.schema` of ``as_type``: adding a field to the
    results recomputes them, and so does a change of ``versions`` (e.g. ``{"sampler": steerlib.lm.sampling.SAMPLER}``
    for results holding sampled tokens)."""
    check_type("run", run, Run, "the Run from chapter.start")
    check_nonempty("kind", check_type("kind", kind, str, "the chapter's name"))
    check_type("experiment", experiment, Callable, "a function experiment(settings, run)")
    check_type("versions", versions, (dict, type(None)), "a dict of version strings or None")
    key = {
        "settings": settings,
        "seed": run.seed,
        "replicate": run.replicate,
        "schema": schema(as_type),
        **({"versions": versions} if versions else {}),
    }
    return run.cache.cached(kind, key, lambda: experiment(settings, run), as_type=as_type)


def replicated(
    run: Run,
    settings: S,
    kind: str,
    experiment: Callable[[S, Run], R],
    as_type: type[R],
    versions: dict[str, str] | None = None,
) -> R:
    """``experiment`` at each of ``settings.replicates`` independent replicates of ``run`` (replicate r draws every
    random stream from (seed, r), :mod:`steerlib.core.seeds`), each cached by :func:`replicate_results`; replicate
    0's results hold the others in ``others``."""
    check_range("settings.replicates", getattr(settings, "replicates", None), 1, integer=True)
    one = dataclasses.replace(settings, replicates=1)
    main = replicate_results(run.at(0), one, kind, experiment, as_type, versions)
    main.others = [
        replicate_results(run.at(r), one, kind, experiment, as_type, versions) for r in range(1, settings.replicates)
    ]
    return main


def claims_table(claims: Iterable[Claim]):
    """The claims as a pandas DataFrame: id, kind, claim, statistic, value with its interval, threshold, verdict."""
    import pandas as pd

    def ours(c: Claim) -> str:
        interval = f" [{c.interval[0]:.3g}, {c.interval[1]:.3g}]" if c.interval else ""
        return f"{float(c.value):.3g}{interval}"

    rows = [
        {
            "id": c.id,
            "kind": c.kind,
            "claim": c.statement,
            "statistic": c.statistic,
            "value [interval]": ours(c),
            "threshold": f"{c.op} {c.threshold:g}",
            "verdict": c.verdict,
        }
        for c in check_claims(claims)
    ]
    return pd.DataFrame(rows).set_index("id")


def verdict(claims: Iterable[Claim]):
    """A Markdown paragraph, generated from the claims, saying which reproduce, how firmly, and which do not."""
    from IPython.display import Markdown

    claims = judge(claims)
    evidence = [c for c in claims if c.kind == "evidence"]
    count = {v: sum(c.verdict == v for c in evidence) for v in VERDICTS}
    lines = [
        f"**{count['holds']} of {len(evidence)} evidence claims hold in this run and {count['holds (fragile)']} "
        f"more hold but are fragile; {count['does not hold']} do not hold and {count['does not hold (fragile)']} "
        "more miss but are fragile" + (f"; {count['not judged']} are not judged" if count["not judged"] else "") + ".**"
    ]

    def measured(c: Claim) -> str:
        interval = f" (interval [{c.interval[0]:.3g}, {c.interval[1]:.3g}])" if c.interval else ""
        return f"{c.statistic} = {c.value:.3g}{interval}, threshold {c.op} {c.threshold:g}"

    for c in claims:
        kind = "prerequisite " if c.kind == "prerequisite" else ""
        paper = f" Dissertation: {c.dissertation}." if c.dissertation else ""
        note = f" {c.note[:1].upper()}{c.note[1:]}." if c.note else ""
        if c.judged and c.verdict not in HOLDING:
            lines.append(
                f"- **{kind}{c.id} does not reproduce here** ({c.verdict}): {c.statement}; {measured(c)}.{paper}{note}"
            )
        else:
            lines.append(f"- {kind}{c.id} {c.verdict}: {measured(c)}.{note}")
    return Markdown("\n".join(lines))
