"""Execute the book's notebooks in parallel, reuse what has not changed, then render the executed notebooks.

    python book/_ext/run_book.py [--path-output DIR] [--jobs N]   # what make book and make smoke-book run
    python book/_ext/run_book.py --seed 314159 --path-output DIR --no-html   # the book's chapters at another seed

1. Chapters (every notebook in ``_toc.yml`` but the summary pages, ``AFTER``) run under papermill in a process pool:
   ``N`` at a time (default: as many as the cores, at most as many as there are chapters to run), each with
   ``$STEERLIB_THREADS`` = cores // min(cores, chapters in the book) threads (never more than ``$STEERLIB_THREADS``
   if that is set), so the chapters' threads, and a chapter's grid workers (one thread each, as many as its
   threads), never exceed the cores. The threads depend on the machine and the book only, never on ``N`` or on how
   many chapters are stale: torch's sums split over threads, so a chapter's numbers change with its thread count
   (like another seed), and a serial build, a parallel build and a one-chapter rebuild must agree.
   The longest chapters (by their last recorded wall time, or on a fresh clone by their wall time in the cold
   build kept in ``benchmarks/cold-build/``) start first, and two chapters that need one model (Part I's ensembles,
   Part III's pretraining) train it once: the run cache's claim makes the second wait for the first
   (:meth:`steerlib.core.cache.RunCache.claim`).
2. A chapter's executed notebook is reused when its key is unchanged: the SHA-256 of the notebook, every library
   file (``steerlib/**/*.py``, ``pyproject.toml``), this script and ``$STEERLIB_PROFILE``, and its ``metrics.json``
   is still there. Anything else re-executes it.
3. Every chapter executes even when one fails. The summary pages (the scorecard, the performance page) then run,
   one after the other, on whatever the chapters wrote.
   A killed build (SIGKILL to it and its kernels, at any moment) leaves nothing the next one takes for finished:
   a notebook executes into ``<DIR>/_build/executing/`` and moves into ``executed/`` when it ends; a chapter's key
   file is removed before it runs and written (whole, by a rename) as soon as it has executed, so the next build
   reuses every chapter that finished and runs the rest; that build first removes what the killed one was writing
   (the notebooks it was executing, temporary files in ``_build`` and in the results folders of what it runs).
4. If a notebook failed, the build stops with a summary naming each failed notebook and its traceback file
   (``<DIR>/_build/reports/<notebook>.log``; the executed notebook, with the failing cell, is in
   ``<DIR>/_build/executed/``). Otherwise jupyter-book renders the executed notebooks without executing them (a copy
   of the book in ``<DIR>/_build/source`` whose ``_config.yml`` says ``execute_notebooks: "off"``) into
   ``<DIR>/_build/html``, with the arguments after ``--`` (default ``-W -n --keep-going``).

The kernels run on local sockets, not TCP ports (``book_build.BookKernelManager``), so the log stays free of
ipykernel's warning about unencrypted TCP connections.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml
from book_build import BookKernelManager

ROOT = Path(__file__).resolve().parents[2]
AFTER = ("book/performance", "book/scorecard")  # summary pages: they read every chapter's metrics.json
BOOK_FILES = ("_toc.yml", "references.bib")  # what the rendered copy needs from the root besides book/ and _config.yml
LIBRARY = ("steerlib/**/*.py", "pyproject.toml")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PARTIAL = ".partial"  # the suffix of a file in writing (write_whole)


def toc_notebooks(root: Path = ROOT) -> list[str]:
    """The notebooks of ``_toc.yml`` (paths without suffix, relative to the root), in the order of the book."""
    entries = re.findall(r"(?:file|root):\s*(\S+)", (root / "_toc.yml").read_text())
    return [e for e in entries if (root / f"{e}.ipynb").exists()]


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def plan(
    n_stale: int, n_chapters: int, jobs: int | None = None, n_cores: int | None = None, cap: int | None = None
) -> tuple[int, int]:
    """(chapters at a time, threads per chapter): at most one stale chapter per core, ``jobs`` if given; threads =
    cores // min(cores, ``n_chapters``) (at most ``cap``), the same whatever ``n_stale`` and ``jobs`` are, so a
    chapter's numbers do not depend on how the build schedules it; at a time x threads <= cores."""
    n_cores = n_cores or cores()
    at_once = max(1, min(jobs or n_cores, n_cores, n_stale))
    threads = max(1, n_cores // max(1, min(n_cores, n_chapters)))
    return at_once, min(threads, cap) if cap else threads


def library_digest(root: Path = ROOT) -> str:
    """SHA-256 of every library file (path and content) and of this script."""
    h = hashlib.sha256()
    files = sorted({p for pattern in LIBRARY for p in root.glob(pattern)} | {Path(__file__).resolve()})
    for path in files:
        h.update(str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def key(notebook: Path, library: str) -> str:
    """What an executed notebook depends on: its source, the library digest and the profile."""
    h = hashlib.sha256(notebook.read_bytes())
    h.update(library.encode())
    h.update(os.environ.get("STEERLIB_PROFILE", "").encode())
    return h.hexdigest()


def results_dir(root: Path = ROOT) -> Path:
    """Where chapters write ``<chapter>/metrics.json`` (as :func:`steerlib.core.chapter.results_root` finds it)."""
    return Path(os.environ["STEERLIB_RESULTS"]) if os.environ.get("STEERLIB_RESULTS") else root / "results"


def write_whole(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file beside it, ``.<name>.<pid>.partial``, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}")
    tmp.write_text(text)
    os.replace(tmp, path)


def remove_partial(build: Path) -> None:
    """Remove what a killed build was writing: the notebooks it was executing and its temporary files."""
    shutil.rmtree(build / "executing", ignore_errors=True)
    for folder in (build / "executed", build / "reports"):
        for tmp in folder.rglob(f".*{PARTIAL}"):
            tmp.unlink(missing_ok=True)


def execute(name: str, root: str, build: str, threads: int, timeout: int, parameters: dict | None = None) -> dict:
    """Run ``name``'s notebook under papermill (in this worker process's environment plus ``threads``) into
    ``<build>/executing/``, then move it into ``<build>/executed/``; on failure write its traceback to
    ``<build>/reports/<name>.log``. Returns its record for the summary."""
    import papermill

    os.environ.update(STEERLIB_THREADS=str(threads), STEERLIB_INTERACTIVE="0")
    source, out = Path(root) / f"{name}.ipynb", Path(build) / "executed" / f"{name}.ipynb"
    partial = Path(build) / "executing" / f"{name}.ipynb"
    report = Path(build) / "reports" / f"{name}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    start = time.time()
    try:
        papermill.execute_notebook(
            str(source),
            str(partial),
            cwd=str(source.parent),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout,
            kernel_manager_class=BookKernelManager,
            parameters=parameters or {},
        )
        error = None
    except Exception as err:  # a cell that raised, a dead kernel or a timeout: the other chapters go on
        error = ANSI.sub("", str(err) if hasattr(err, "ename") else traceback.format_exc())
        write_whole(report, error)
    if partial.exists():  # with the failing cell, if one failed
        os.replace(partial, out)
    else:
        out.unlink(missing_ok=True)
    return {
        "notebook": name,
        "status": "failed" if error else "executed",
        "seconds": round(time.time() - start, 1),
        "threads": threads,
        "report": str(report) if error else None,
    }


COLD_BUILD = ROOT / "benchmarks" / "cold-build"  # <chapter>/metrics.json of a cold cpu build (the Performance page's)


def last_wall_time(name: str) -> float:
    """The chapter's last recorded wall time (its metrics.json), else its wall time in :data:`COLD_BUILD` (a fresh
    clone), else 0: the longest chapters start first, so the longest does not start last."""
    for folder in (results_dir(), COLD_BUILD):
        try:
            return json.loads((folder / Path(name).name / "metrics.json").read_text())["wall_time_s"]
        except (OSError, ValueError, KeyError):
            continue
    return 0.0


def execute_all(build: Path, jobs: int | None = None, root: Path = ROOT, seed: int | None = None) -> list[dict]:
    """Execute the stale chapters in parallel, then the summary pages; return one record per notebook. Each
    notebook's key file, and any temporary file in its results folder, is removed before it runs; its key file is
    written as soon as it has executed."""
    remove_partial(build)
    notebooks = toc_notebooks(root)
    library = library_digest(root)
    stamps = {name: build / "executed" / f"{name}.key" for name in notebooks}
    keys = {name: key(root / f"{name}.ipynb", library + f"seed={seed}") for name in notebooks}
    parameters = {} if seed is None else {"seed": seed}  # the chapters' parameter; the summary pages take none

    def fresh(name: str) -> bool:
        return (
            stamps[name].is_file()
            and stamps[name].read_text() == keys[name]
            and (build / "executed" / f"{name}.ipynb").is_file()
            and (results_dir(root) / Path(name).name / "metrics.json").is_file()
        )

    chapters = [n for n in notebooks if n not in AFTER]
    records = [
        {"notebook": n, "status": "reused", "seconds": 0.0, "threads": 0, "report": None} for n in chapters if fresh(n)
    ]
    stale = sorted((n for n in chapters if not fresh(n)), key=last_wall_time, reverse=True)
    env_cap = os.environ.get("STEERLIB_THREADS", "")
    at_once, threads = plan(len(stale), len(chapters), jobs, cap=int(env_cap) if env_cap.isdigit() else None)
    timeout = yaml.safe_load((root / "_config.yml").read_text()).get("execute", {}).get("timeout", 1800)

    def done(record: dict) -> None:
        records.append(record)
        if record["status"] == "executed":
            write_whole(stamps[record["notebook"]], keys[record["notebook"]])

    for name in stale + [n for n in notebooks if n in AFTER]:  # not finished until they run again
        stamps[name].unlink(missing_ok=True)
        for tmp in (results_dir(root) / Path(name).name).glob("*.tmp"):  # what a killed run was writing there
            tmp.unlink(missing_ok=True)
    if stale:
        print(
            f"executing {len(stale)} chapters, {at_once} at a time with {threads} threads each ({len(records)} reused)",
            flush=True,
        )
        with ProcessPoolExecutor(at_once) as pool:
            futures = [pool.submit(execute, n, str(root), str(build), threads, timeout, parameters) for n in stale]
            for future in as_completed(futures):
                done(future.result())
                print(
                    f"  {records[-1]['status']:8s} {records[-1]['notebook']} ({records[-1]['seconds']:.0f} s)",
                    flush=True,
                )
    for name in (n for n in notebooks if n in AFTER):  # always: they read what the chapters wrote
        done(execute(name, str(root), str(build), threads, timeout))
    remove_partial(build)  # the empty folders of executing/
    return records


def summary(records: list[dict]) -> str:
    """One line per notebook; the failed ones with their traceback file."""
    lines = [
        f"{r['notebook']:45s} {r['status']:8s} {r['seconds']:7.0f} s"
        + (f"  traceback: {r['report']}" if r["report"] else "")
        for r in records
    ]
    failed = [r["notebook"] for r in records if r["status"] == "failed"]
    if failed:
        lines.append(f"{len(failed)} notebook(s) failed: {', '.join(failed)}; the book was not rendered")
    return "\n".join(lines)


def render_source(build: Path, root: Path = ROOT) -> Path:
    """A copy of the book (``_config.yml``, :data:`BOOK_FILES`, ``book/``) holding the executed notebooks, configured
    not to execute them again."""
    source = build / "source"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(
        root / "book", source / "book", ignore=shutil.ignore_patterns("results", ".ipynb_checkpoints", "__pycache__")
    )
    for executed in (build / "executed").rglob("*.ipynb"):
        shutil.copy(executed, source / executed.relative_to(build / "executed"))
    config = yaml.safe_load((root / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    (source / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    for name in BOOK_FILES:
        if (root / name).exists():
            shutil.copy(root / name, source / name)
    return source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path-output", type=Path, default=ROOT, help="the book goes to DIR/_build/html")
    parser.add_argument("--jobs", type=int, default=None, help="chapters at a time (default: the cores)")
    parser.add_argument("--seed", type=int, default=None, help="run every chapter at this seed (default: theirs, 0)")
    parser.add_argument("--no-html", action="store_true", help="execute only; do not render the book")
    parser.add_argument("jupyter_book_args", nargs="*", default=["-W", "-n", "--keep-going"])
    args = parser.parse_args(argv)
    build = args.path_output.resolve() / "_build"
    start = time.time()
    records = execute_all(build, args.jobs, seed=args.seed)
    write_whole(
        build / "executed" / "summary.json",
        json.dumps({"seconds": round(time.time() - start, 1), "notebooks": records}, indent=1),
    )
    print(summary(records), flush=True)
    if any(r["status"] == "failed" for r in records):
        return 1
    if args.no_html:
        return 0
    print(f"executed in {time.time() - start:.0f} s; rendering", flush=True)
    return subprocess.call(
        [
            str(Path(sys.executable).parent / "jupyter-book"),
            "build",
            str(render_source(build)),
            "--builder",
            "html",
            "--path-output",
            str(args.path_output),
            *args.jupyter_book_args,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
