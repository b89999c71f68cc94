"""Every chapter follows the chapter protocol of :mod:`steerlib.chapters` (one name, three profiles, one signature)."""
from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pickle
import re
import typing
from pathlib import Path

import pytest

from steerlib.chapters import CHAPTERS
from steerlib.core import jobs
from steerlib.core.chapter import Run, start
from steerlib.core.claims import KINDS, Claim
from steerlib.core.profiles import PROFILE_NAMES

ROOT = Path(__file__).resolve().parents[1]
TOC = (ROOT / "_toc.yml").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
NOTEBOOKS = {p.stem: p for p in (ROOT / "book").rglob("*.ipynb")
             if ".ipynb_checkpoints" not in p.parts and p.stem not in ("scorecard", "performance")}


def test_the_registry_lists_every_chapter_notebook():
    assert sorted(CHAPTERS) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", CHAPTERS)
def test_one_name_from_notebook_to_package(name):
    """book/<part>/<name>.ipynb <-> steerlib.chapters.<part>.<name with underscores>, in the toc and nbval's list."""
    module = CHAPTERS[name]
    part, package = module.split(".")[-2:]
    notebook = f"book/{part}/{name}.ipynb"
    assert package == name.replace("-", "_")
    assert (ROOT / notebook).exists(), notebook
    assert f"file: book/{part}/{name}\n" in TOC, f"{notebook} is not in _toc.yml"
    assert notebook in MAKEFILE.split("NBVAL :=")[1].split("\n\n")[0], f"{notebook} is not in the Makefile's NBVAL"
    assert f'chapter.start("{name}"' in (ROOT / notebook).read_text().replace('\\"', '"')


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_protocol(name):
    chapter = importlib.import_module(CHAPTERS[name])
    assert set(chapter.PROFILES) == set(PROFILE_NAMES)
    settings_cls, results_cls = chapter.Settings, chapter.Results
    assert dataclasses.is_dataclass(settings_cls) and settings_cls.__dataclass_params__.frozen
    assert dataclasses.is_dataclass(results_cls)
    assert all(isinstance(s, settings_cls) for s in chapter.PROFILES.values())
    expected = {"run": ({"settings": settings_cls, "run": Run}, results_cls),
                "claims": ({"results": results_cls}, list[Claim]),
                "extra": ({"results": results_cls}, dict),
                "jobs": ({"settings": settings_cls, "run": Run}, list[jobs.Stage])}
    for fn_name, (params, returns) in expected.items():
        fn = getattr(chapter, fn_name)
        hints = typing.get_type_hints(fn)
        assert list(inspect.signature(fn).parameters) == list(params), f"{fn_name}{inspect.signature(fn)}"
        assert {k: hints[k] for k in params} == params, fn_name
        assert hints["return"] == returns, fn_name
    assert (Path(chapter.__file__).parent / "figures.py").exists()


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_lists_its_jobs(name, capsys):
    """``jobs(settings, run)`` (:mod:`steerlib.core.jobs`) at smoke: stages with distinct names, at least one job,
    distinct labels within a stage, every job picklable (worker processes and cluster tasks run it), nothing run
    or written; and the one command lists the same jobs."""
    chapter = importlib.import_module(CHAPTERS[name])
    settings = chapter.PROFILES["smoke"]
    stages = chapter.jobs(settings, start(name, "smoke", device="cpu"))
    assert all(isinstance(stage, jobs.Stage) for stage in stages)
    names = [stage.name for stage in stages]
    assert len(set(names)) == len(names) and sum(len(stage.jobs) for stage in stages) >= 1
    for stage in stages:
        assert len({job.label for job in stage.jobs}) == len(stage.jobs), stage.name
        for job in stage.jobs:
            assert isinstance(job, jobs.Job) and pickle.loads(pickle.dumps(job)).label == job.label
    jobs.main([name, "--profile", "smoke", "--list"])
    listed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert listed == [[stage.name, str(i), job.label] for stage in stages for i, job in enumerate(stage.jobs)]


CLAIM_ID = re.compile(r"^(?:[A-Z]\d+[a-z]?|gate(?:-\d+)?)(?:/.*)?$")  # A1, H4b, C5c, gate-0; a /suffix allowed


def _claim_ids(path: Path) -> list[str]:
    """The literal ids of the claims built in a source file: the first argument of ``Claim(...)`` (a string, or the
    literal head of an f-string) and the first element of claim-spec tuples ``(id, kind, ...)``."""
    ids = []
    for node in ast.walk(ast.parse(path.read_text())):
        first = None
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Claim" and node.args:
            first = node.args[0]
        elif (isinstance(node, ast.Tuple) and len(node.elts) > 2 and isinstance(node.elts[1], ast.Constant)
              and node.elts[1].value in KINDS):
            first = node.elts[0]
        if isinstance(first, ast.JoinedStr) and first.values and isinstance(first.values[0], ast.Constant):
            first = first.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and CLAIM_ID.match(first.value):
            ids.append(first.value)
    return ids


def test_claim_ids_are_unique_across_the_book():
    owners: dict[str, list[str]] = {}
    for name, module in CHAPTERS.items():
        folder = Path(importlib.import_module(module).__file__).parent
        ids = [i for p in sorted(folder.rglob("*.py")) for i in _claim_ids(p)]
        assert ids, f"{name}: no Claim(...) found"
        for claim_id in ids:
            owners.setdefault(claim_id, []).append(name)
    assert {i: names for i, names in owners.items() if len(names) > 1} == {}
