"""The parallel book build (book/_ext/run_book.py): what it reuses, what it re-executes, and how it reports a failed
chapter, on a toy book of three notebooks."""

import json

import nbformat
import pytest
from run_book import execute_all, plan, summary

WRITE = """import json, os, pathlib
out = pathlib.Path(os.environ["STEERLIB_RESULTS"]) / "{name}"
out.mkdir(parents=True, exist_ok=True)
(out / "metrics.json").write_text(json.dumps({{"wall_time_s": 1.0, "threads": os.environ["STEERLIB_THREADS"]}}))
{extra}"""


def notebook(path, name, extra=""):
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nb.cells = [nbformat.v4.new_code_cell(WRITE.format(name=name, extra=extra))]
    nbformat.write(nb, path)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    root = tmp_path / "book-root"
    (root / "book").mkdir(parents=True)
    (root / "steerlib").mkdir()
    (root / "steerlib" / "lib.py").write_text("x = 1\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'toy'\n")
    (root / "_config.yml").write_text("execute:\n  timeout: 120\n")
    (root / "_toc.yml").write_text(
        "root: book/intro\nchapters:\n  - file: book/a\n  - file: book/b\n  - file: book/c\n"
    )
    notebook(root / "book" / "a.ipynb", "a")
    notebook(root / "book" / "b.ipynb", "b", extra='raise RuntimeError("chapter b breaks")')
    notebook(root / "book" / "c.ipynb", "c")
    monkeypatch.setenv("STEERLIB_RESULTS", str(root / "results"))
    monkeypatch.delenv("STEERLIB_THREADS", raising=False)
    return root


def statuses(records):
    return {r["notebook"].removeprefix("book/"): r["status"] for r in records}


def test_plan_never_uses_more_threads_than_cores():
    assert plan(5, 5, n_cores=2) == (2, 1)
    assert plan(1, 1, n_cores=8) == (1, 8)
    assert plan(3, 3, n_cores=8) == (3, 2)
    assert plan(3, 3, n_cores=8, cap=1) == (3, 1)  # $STEERLIB_THREADS caps the threads
    for stale in range(1, 9):
        for n_cores in range(1, 17):
            at_once, threads = plan(stale, 8, n_cores=n_cores)
            assert at_once * threads <= n_cores and at_once <= stale


def test_threads_do_not_depend_on_the_schedule():
    """A chapter's numbers change with its thread count, so the serial build (jobs=1), the parallel build and a
    one-chapter rebuild must give it the same threads."""
    for n_cores in (1, 2, 4, 16):
        threads = {plan(stale, 8, jobs, n_cores=n_cores)[1] for stale in range(1, 9) for jobs in (None, 1, 2)}
        assert threads == {max(1, n_cores // 8)}
    assert plan(1, 8, jobs=1, n_cores=2) == (1, 1)  # the serial build on two cores: one chapter, one thread


def test_failed_chapter_is_named_and_the_others_run_then_unchanged_ones_are_reused(toy):
    build = toy / "_build"
    first = execute_all(build, jobs=2, root=toy)
    assert statuses(first) == {"a": "executed", "b": "failed", "c": "executed"}
    failed = next(r for r in first if r["notebook"] == "book/b")
    assert "chapter b breaks" in (build / "reports" / "book" / "b.log").read_text()
    text = summary(first)
    assert "book/b" in text.splitlines()[-1] and str(build / "reports" / "book" / "b.log") in text
    assert failed["report"] == str(build / "reports" / "book" / "b.log")
    assert json.loads((toy / "results" / "a" / "metrics.json").read_text())["threads"] == str(plan(3, 3, jobs=2)[1])

    second = execute_all(build, jobs=2, root=toy)  # nothing changed: a and c reused, b (failed) runs again
    assert statuses(second) == {"a": "reused", "b": "failed", "c": "reused"}

    notebook(toy / "book" / "b.ipynb", "b")  # b fixed: it alone runs
    assert statuses(execute_all(build, jobs=2, root=toy)) == {"a": "reused", "c": "reused", "b": "executed"}

    (toy / "steerlib" / "lib.py").write_text("x = 2\n")  # a library change re-executes every chapter
    assert set(statuses(execute_all(build, jobs=2, root=toy)).values()) == {"executed"}

    notebook(toy / "book" / "a.ipynb", "a", extra="print('changed')")  # a changed notebook re-executes alone
    (toy / "results" / "c" / "metrics.json").unlink()  # and so does a chapter whose results are gone
    assert statuses(execute_all(build, jobs=2, root=toy)) == {"b": "reused", "a": "executed", "c": "executed"}
