"""The chapter template (``templates/``): a chapter made by ``templates/new_chapter.py`` in a temporary copy of the
book passes the contract, ledger, notebook and layout checks and its own tests at once, and builds: its notebook
executes under papermill and renders with warnings as errors, through the book's own build (``run_book.py``), with
a quiet log."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COPY = (
    "steerlib",
    "tests",
    "book",
    "templates",
    "_config.yml",
    "_toc.yml",
    "Makefile",
    "pyproject.toml",
    "references.bib",
)
SKIP = shutil.ignore_patterns("results", "_build", "__pycache__", ".ipynb_checkpoints", "*.pkl")
NAME, PART, TITLE = "noise-trend", "related", "Accuracy falls as the inputs get noisier"


def copy_of_the_book(folder: Path) -> Path:
    """The book's sources (library, tests, notebooks, template, configuration) copied into ``folder``."""
    for name in COPY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=SKIP)
        else:
            shutil.copy(source, folder / name)
    return folder


def run(args: list[str], cwd: Path, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """``args`` run in ``cwd`` with the copy's library first on the path and its own results and run cache."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},  # a pytest of its own, not a worker
        "PYTHONPATH": str(cwd),
        "STEERLIB_RESULTS": str(cwd / "results"),
        "STEERLIB_CACHE": str(cwd / ".cache"),
        "STEERLIB_PROFILE": "smoke",
        **env,
    }
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """A copy of the book with one chapter made from the template."""
    root = copy_of_the_book(tmp_path_factory.mktemp("book"))
    made = run([sys.executable, "templates/new_chapter.py", PART, NAME, "--title", TITLE], root)
    assert made.returncode == 0, made.stdout + made.stderr
    return root


def test_the_command_writes_and_registers_the_chapter(book):
    module = NAME.replace("-", "_")
    package = book / "steerlib" / "chapters" / PART / module
    for path in (
        *(package / f for f in ("__init__.py", "experiment.py", "analysis.py", "figures.py", "ledger.json")),
        book / "book" / PART / f"{NAME}.ipynb",
        book / "tests" / f"test_{module}.py",
    ):
        assert path.is_file(), path
    assert f'"{NAME}": "steerlib.chapters.{PART}.{module}"' in (book / "steerlib" / "book.py").read_text()
    assert f"- file: book/{PART}/{NAME}" in (book / "_toc.yml").read_text()
    assert f"book/{PART}/{NAME}.ipynb" in (book / "Makefile").read_text().split("NBVAL :=")[1].split("\n\n")[0]
    text = (package / "analysis.py").read_text()
    assert "template" not in text.lower() and not re.search(r'id="Z\d', text), "every placeholder is replaced"
    again = run([sys.executable, "templates/new_chapter.py", PART, NAME, "--title", TITLE], book)
    assert again.returncode != 0 and "already has a chapter" in again.stderr


def test_the_new_chapter_passes_the_contract_and_its_own_tests_at_once(book):
    """The contract (names, files, exports, profiles, signatures, jobs; toc, Makefile and registry in step; unique
    claim ids), its ledger, its notebook's shape, prose and papermill run, the layout rules with ruff, and its own
    tests (not the slow one). The copied-code check (minutes) is left to the book's own run of tests/test_layout.py;
    the template shares no code with the library."""
    chapter = f"{NAME} or {NAME.replace('-', '_')}"
    selection = f"({chapter} or registry or toc or claim_ids or install_cell or test_layout) and not copied_code"
    tests = ["tests/test_contract.py", "tests/test_ledger.py", "tests/test_book.py", "tests/test_layout.py"]
    tests.append(f"tests/test_{NAME.replace('-', '_')}.py")
    result = run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "not slow", "-k", selection] + tests,
        book,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_the_new_chapter_builds_quietly(book, tmp_path):
    """The book's build on the new chapter alone: papermill executes it at smoke (in the book's quiet kernels), then
    jupyter-book renders it with warnings as errors; its references section lists what it cites."""
    toc = (book / "_toc.yml").read_text()
    (book / "_toc.yml").write_text(f"format: jb-book\nroot: book/{PART}/{NAME}\n")
    out = tmp_path / "site"
    try:
        result = run([sys.executable, "book/_ext/run_book.py", "--path-output", str(out)], book, STEERLIB_THREADS="1")
    finally:
        (book / "_toc.yml").write_text(toc)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-8000:]
    assert "without encryption" not in log, "the kernels run over IPC, not TCP"
    assert not re.search(r"WARNING|ERROR|Traceback", log), log[-8000:]
    page = (out / "_build" / "html" / "book" / PART / f"{NAME}.html").read_text()
    assert "Kang" in page and 'id="references"' in page, "the citation and the chapter's references section"
    assert (book / "results" / NAME / "metrics.json").is_file()
