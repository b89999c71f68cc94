"""Every chapter follows the chapter protocol (:mod:`steerlib.chapters`): one name from notebook to package, the same
files and exports, one value (``CHAPTER``) run by one call, three profiles, one signature per function."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pickle
import re
import typing
from pathlib import Path

import pytest

from steerlib import jobs as job_command
from steerlib.book import CHAPTERS, chapter, notebook
from steerlib.core import jobs
from steerlib.core.chapter import PARTS, Chapter, Run
from steerlib.core.claims import Claim, Spec
from steerlib.core.profiles import PROFILE_NAMES

ROOT = Path(__file__).resolve().parents[1]
TOC = (ROOT / "_toc.yml").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
SUMMARY_PAGES = ("scorecard", "performance")
NOTEBOOKS = {
    p.stem: p
    for p in (ROOT / "book").rglob("*.ipynb")
    if ".ipynb_checkpoints" not in p.parts and p.stem not in SUMMARY_PAGES
}
FILES = ("__init__.py", "experiment.py", "analysis.py", "figures.py")  # every chapter package holds these
EXPORTS = {"experiment": ("Settings", "PROFILES", "Results", "run", "jobs"), "analysis": ("SPECS", "claims", "extra")}


def test_the_registry_lists_every_chapter_notebook():
    assert sorted(CHAPTERS) == sorted(NOTEBOOKS)


def test_the_toc_the_makefile_and_the_registry_name_the_same_chapters_in_the_same_order():
    toc = [Path(f) for f in re.findall(r"file: (book/\S+)", TOC)]
    chapters_in_toc = [f.name for f in toc if len(f.parts) == 3 and f.parts[1] in PARTS]  # book/<part>/<name>
    assert chapters_in_toc == list(CHAPTERS)
    nbval = MAKEFILE.split("NBVAL :=")[1].split("\n\n")[0]
    assert re.findall(r"book/\S+?/([\w-]+)\.ipynb", nbval)[: len(CHAPTERS)] == list(CHAPTERS)


@pytest.mark.parametrize("name", CHAPTERS)
def test_one_name_from_notebook_to_package(name):
    """book/<part>/<name>.ipynb <-> steerlib.chapters.<part>.<name with underscores>; the notebook runs it with
    the one call."""
    ch = chapter(name)
    assert ch.name == name and ch.package == CHAPTERS[name]
    assert ch.package.split(".")[-2:] == [ch.part, name.replace("-", "_")]
    assert (ROOT / notebook(name)).exists() and ch.notebook == str(notebook(name))
    assert f'execute("{name}"' in (ROOT / notebook(name)).read_text().replace('\\"', '"')


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_protocol(name):
    ch = chapter(name)
    assert isinstance(ch, Chapter)
    folder = Path(importlib.import_module(ch.package).__file__).parent
    assert all((folder / f).exists() for f in FILES), sorted(p.name for p in folder.iterdir())
    for module, names in EXPORTS.items():
        sub = importlib.import_module(f"{ch.package}.{module}")
        assert all(hasattr(sub, n) for n in names), (module, [n for n in names if not hasattr(sub, n)])
    assert set(ch.profiles) == set(PROFILE_NAMES)
    settings_cls, results_cls = ch.settings_type, ch.results_type
    assert dataclasses.is_dataclass(settings_cls) and settings_cls.__dataclass_params__.frozen
    assert "replicates" in {f.name for f in dataclasses.fields(settings_cls)}
    assert dataclasses.is_dataclass(results_cls)
    assert all(isinstance(s, settings_cls) for s in ch.profiles.values())
    assert ch.profiles["cpu"].replicates >= 3, "every evidence claim is judged over at least 3 replicates at cpu"
    expected = {
        "run": ({"settings": settings_cls, "run": Run}, results_cls),
        "claims": ({"results": results_cls}, list[Claim]),
        "extra": ({"results": results_cls}, dict),
        "jobs": ({"settings": settings_cls, "run": Run}, list[jobs.Stage]),
    }
    for fn_name, (params, returns) in expected.items():
        fn = getattr(ch, fn_name)
        hints = typing.get_type_hints(fn)
        assert list(inspect.signature(fn).parameters) == list(params), f"{fn_name}{inspect.signature(fn)}"
        assert {k: hints[k] for k in params} == params, fn_name
        assert hints["return"] == returns, fn_name
    assert all(isinstance(s, Spec) for s in ch.specs)


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_lists_its_jobs(name, capsys):
    """``jobs(settings, run)`` (:mod:`steerlib.core.jobs`) at smoke: stages with distinct names, at least one job,
    distinct labels within a stage, every job picklable (worker processes and cluster tasks run it), nothing run
    or written; and the one command lists the same jobs."""
    stages = job_command.stages(name, "smoke", device="cpu")
    assert all(isinstance(stage, jobs.Stage) for stage in stages)
    names = [stage.name for stage in stages]
    assert len(set(names)) == len(names) and sum(len(stage.jobs) for stage in stages) >= 1
    for stage in stages:
        assert len({job.label for job in stage.jobs}) == len(stage.jobs), stage.name
        for job in stage.jobs:
            assert isinstance(job, jobs.Job) and pickle.loads(pickle.dumps(job)).label == job.label
    job_command.main([name, "--profile", "smoke", "--list"])
    listed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert listed == [[stage.name, str(i), job.label] for stage in stages for i, job in enumerate(stage.jobs)]


CLAIM_ID = re.compile(r"^(?:[A-Z]\d+[a-z]*|gate(?:-\d+)?|gate/[\w{}-]+)(?:/.*)?$")  # A1, H4b, H6pre, gate/sft; /suffix


def test_claim_ids_are_unique_across_the_book():
    """Every spec of every chapter has a well-formed id, and no id (with its placeholders) is used twice."""
    owners: dict[str, list[str]] = {}
    for name in CHAPTERS:
        for spec in chapter(name).specs:
            assert CLAIM_ID.match(spec.id), (name, spec.id)
            owners.setdefault(spec.id, []).append(name)
    assert {i: names for i, names in owners.items() if len(names) > 1} == {}
