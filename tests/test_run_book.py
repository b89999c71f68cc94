"""The parallel book build (book/_ext/run_book.py): what it reuses, what it re-executes, how it reports a failed
chapter, and how a build killed between or during its chapters is completed by the next, on toy books."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
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


def test_a_build_at_another_seed_gives_every_chapter_that_seed(toy):
    """--seed reaches each chapter's parameters cell; the seed is part of a chapter's key, so the book's own build
    (seed 0) does not take the other seed's notebooks for its own."""
    for name in ("a", "b", "c"):
        nb = nbformat.v4.new_notebook(
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
        )
        nb.cells = [
            nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(WRITE.format(name=name, extra="") + "\n(out / 'seed').write_text(str(seed))"),
        ]
        nbformat.write(nb, toy / "book" / f"{name}.ipynb")
    build = toy / "_build"
    assert set(statuses(execute_all(build, jobs=2, root=toy, seed=7)).values()) == {"executed"}
    assert {(toy / "results" / n / "seed").read_text() for n in "abc"} == {"7"}
    assert set(statuses(execute_all(build, jobs=2, root=toy)).values()) == {"executed"}  # not the seed-7 notebooks
    assert {(toy / "results" / n / "seed").read_text() for n in "abc"} == {"0"}


# ------------------------------------------------------------------------------------------ a killed build

TRAIN = """import json, os, pathlib
import time
import torch
from steerlib.core.cache import RunCache
cache, config = RunCache(), {{"chapter": "{name}"}}
hold = pathlib.Path(os.environ["STEERLIB_RESULTS"]).parent / "hold"  # while it exists, wait after step 2
done, started = cache.load("toy-run", config), None
if done is None:
    state = cache.load_checkpoint("toy-run", config) or {{"step": 0, "w": torch.zeros(8)}}
    started, w = state["step"], state["w"]
    for t in range(started, 8):
        w = w / 2 + t
        cache.save_checkpoint("toy-run", config, {{"step": t + 1, "w": w}})
        time.sleep(0.2)
        while t + 1 == 2 and hold.exists():
            time.sleep(0.05)
    cache.save("toy-run", config, {{"w": w}})
    done = {{"w": w}}
out = pathlib.Path(os.environ["STEERLIB_RESULTS"]) / "{name}"
out.mkdir(parents=True, exist_ok=True)
metrics = {{"wall_time_s": 1.0, "claims": {{"sum": float(done["w"].sum())}}, "started": started}}
(out / f"metrics.json.{{os.getpid()}}.tmp").write_text(json.dumps(metrics))
os.replace(out / f"metrics.json.{{os.getpid()}}.tmp", out / "metrics.json")"""

BUILD = "import sys; sys.path.insert(0, {ext!r}); from pathlib import Path; from run_book import execute_all; " + (
    "execute_all(Path({build!r}), jobs={jobs}, root=Path({root!r}))"
)


def undisturbed_sum() -> float:
    w = torch.zeros(8)
    for t in range(8):
        w = w / 2 + t
    return float(w.sum())


@pytest.fixture
def training_book(toy, monkeypatch):
    """The toy book with two chapters, each training a toy run in the cache for about 1.6 s (checkpointed each
    step; held after step 2 while ``<root>/hold`` exists) and writing its claims."""
    (toy / "_toc.yml").write_text("root: book/intro\nchapters:\n  - file: book/a\n  - file: book/b\n")
    (toy / "book" / "c.ipynb").unlink()
    for name in ("a", "b"):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
        nb.cells = [nbformat.v4.new_code_cell(TRAIN.format(name=name))]
        nbformat.write(nb, toy / "book" / f"{name}.ipynb")
    monkeypatch.setenv("STEERLIB_CACHE", str(toy / "cache"))
    return toy


@pytest.mark.parametrize(
    "moment, jobs, expected, resumed",
    [
        ("between chapters", 1, {"a": "reused", "b": "executed"}, ()),
        ("during both chapters", 2, {"a": "executed", "b": "executed"}, ("a", "b")),
    ],
)
def test_a_killed_build_then_a_build_completes_reusing_what_finished(training_book, moment, jobs, expected, resumed):
    """SIGKILL to a build and its kernels (between the chapters: once the first has finished; during them: while
    both train), then a build: every chapter completes with an undisturbed run's claims, the finished one reused and
    the killed ones resumed from their checkpoints, and nothing half-written is left in _build, results/ or the
    cache."""
    from test_faults import assert_clean, kill_tree, wait_for

    root, build = training_book, training_book / "_build"
    code = BUILD.format(
        ext=str(Path(__file__).parents[1] / "book" / "_ext"), build=str(build), jobs=jobs, root=str(root)
    )
    if moment == "during both chapters":
        (root / "hold").touch()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if moment == "between chapters":
            wait_for((build / "executed" / "book" / "a.key").exists, proc, timeout=120)
        else:
            wait_for(lambda: len(list((root / "cache" / "toy-run").glob("*/checkpoint.pt"))) == 2, proc, timeout=120)
    finally:
        kill_tree(proc.pid)
        proc.wait()
    (root / "hold").unlink(missing_ok=True)
    (root / "results" / "b").mkdir(parents=True, exist_ok=True)
    (root / "results" / "b" / "metrics.json.99999.tmp").write_text('{"wall')  # as a kill in mid-write leaves it

    records = execute_all(build, jobs=jobs, root=root)
    assert statuses(records) == expected
    for name in ("a", "b"):
        metrics = json.loads((root / "results" / name / "metrics.json").read_text())
        assert metrics["claims"] == {"sum": undisturbed_sum()}
        if name in resumed:
            assert metrics["started"] > 0  # from the killed run's checkpoint
        executed = nbformat.read(build / "executed" / "book" / f"{name}.ipynb", as_version=4)
        assert not [o for c in executed.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not (build / "executing").exists()
    assert not [p for p in build.rglob("*") if p.name.endswith((".partial", ".tmp"))]
    assert not [p for p in (root / "results").rglob("*") if p.is_file() and p.suffix != ".json"]
    assert statuses(execute_all(build, jobs=jobs, root=root)) == {"a": "reused", "b": "reused"}
    assert not list((root / "cache").rglob("checkpoint.pt"))
    assert_clean(root / "cache")


def test_on_a_fresh_clone_the_longest_chapter_starts_first(tmp_path, monkeypatch):
    """With no metrics.json yet, the order comes from the cold build's record: pre-memorization, the longest, is not
    left last."""
    from run_book import last_wall_time, toc_notebooks

    monkeypatch.setenv("STEERLIB_RESULTS", str(tmp_path))  # no results at all
    chapters = [n for n in toc_notebooks() if n not in ("book/scorecard", "book/performance")]
    assert sorted(chapters, key=last_wall_time, reverse=True)[0] == "book/reasoning/pre-memorization"
    assert all(last_wall_time(n) > 0 for n in chapters)
