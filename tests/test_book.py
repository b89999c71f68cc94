"""The book: every notebook is well formed and listed, and every chapter runs under papermill at `smoke`."""

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from book_build import home, install_cell, stale_install_cells, unglued_numbers, write_install_cells

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TOC = (ROOT / "_toc.yml").read_text()
TOC_FILES = re.findall(r"file:\s*(\S+)", TOC) + [re.search(r"root:\s*(\S+)", TOC).group(1)]
NOTEBOOKS = sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and "results" not in p.parts)
CHAPTERS = [p for p in NOTEBOOKS if p.stem not in ("scorecard", "performance")]  # the summary pages


def test_every_toc_entry_exists_and_every_notebook_is_listed():
    for entry in TOC_FILES:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".ipynb", ".md")), entry
    for nb in NOTEBOOKS:
        assert str(nb.relative_to(ROOT).with_suffix("")) in TOC_FILES, f"{nb} is not in _toc.yml"


def test_scorecard_is_executed_last():
    """Sphinx reads (and myst-nb executes) documents in sorted order; the scorecard needs every chapter's results."""
    docs = sorted(str(p.relative_to(ROOT).with_suffix("")) for p in NOTEBOOKS)
    assert docs[-1] == "book/scorecard"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_well_formed(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    assert not any(c.get("outputs") for c in code), "notebooks are stored without outputs"
    assert 'if "google.colab" in sys.modules' in code[0].source, "first code cell installs steerlib on Colab"


def test_every_install_cell_installs_from_the_books_home(tmp_path):
    """_config.yml's repository (url, branch) is the one place the book's home is written: the launch and repository
    buttons read it, and every notebook's Colab install cell is written from it (python book/_ext/book_build.py)."""
    url, branch = home()
    assert url.startswith("https://github.com/") and branch
    assert stale_install_cells() == [], "run python book/_ext/book_build.py to rewrite the install cells"
    assert f'"steerlib[book] @ git+{url}@{branch}"' in install_cell()

    copy = tmp_path / "book-copy"  # a moved home makes every install cell stale, until they are rewritten
    shutil.copytree(BOOK, copy / "book", ignore=shutil.ignore_patterns("_ext", "results"))
    (copy / "_config.yml").write_text((ROOT / "_config.yml").read_text().replace(f"branch: {branch}", "branch: next"))
    assert len(stale_install_cells(copy)) == len(NOTEBOOKS)
    assert len(write_install_cells(copy)) == len(NOTEBOOKS) and stale_install_cells(copy) == []
    assert "git+https://github.com/steerlib/steerlib@next" in (copy / "book" / "scorecard.ipynb").read_text()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_under_papermill_and_records_its_claims(path, tmp_path):
    pm = pytest.importorskip("papermill")
    out_dir = tmp_path / "results"
    pm.execute_notebook(
        str(path),
        str(tmp_path / path.name),
        cwd=str(path.parent),
        kernel_name="python3",
        parameters={"profile": "smoke", "out_dir": str(out_dir)},
        progress_bar=False,
        execution_timeout=900,
    )
    record = json.loads((out_dir / "metrics.json").read_text())
    assert record["config"]["profile"] == "smoke"
    fields = {"id", "statement", "value", "threshold", "holds", "kind", "why", "interval", "uncertainty", "verdict"}
    assert record["claims"] and all(fields <= set(c) for c in record["claims"])
    assert all(c["why"] and c["uncertainty"] for c in record["claims"]), "every threshold and interval is explained"
    assert list(out_dir.glob("*.png")), "figures are saved as files"


def test_scorecard_lists_every_claim_with_its_verdict(tmp_path):
    pm = pytest.importorskip("papermill")
    from steerlib.core.claims import Claim
    from steerlib.core.record import write_metrics

    claims = [
        Claim(
            f"T{i}",
            f"toy claim {i}",
            "x",
            float(i),
            ">",
            5.0,
            why="toy",
            interval=(i - 1.0, i + 1.0),
            uncertainty="toy",
        )
        for i in range(80)
    ]  # more rows than pandas shows by default
    claims.append(Claim("P1", "toy prerequisite", "x", 1.0, ">", 0.5, kind="prerequisite", why="toy"))
    write_metrics(tmp_path / "toy", "toy", {"profile": "smoke"}, claims, 0)
    write_metrics(tmp_path / "toy-cpu", "toy", {"profile": "cpu"}, [Claim("T2", "cpu toy", "x", 1.0, ">", 0.5)], 0)
    pm.execute_notebook(
        str(BOOK / "scorecard.ipynb"),
        str(tmp_path / "card.ipynb"),
        cwd=str(BOOK),
        kernel_name="python3",
        parameters={"results_dir": str(tmp_path), "profile": "smoke"},
        progress_bar=False,
        execution_timeout=900,
    )
    text = (tmp_path / "card.ipynb").read_text()
    assert all(f"toy claim {i}<" in text for i in range(80)), "every claim is listed, none cut by a row limit"
    assert "holds (fragile)" in text and "does not hold" in text and "toy prerequisite" in text
    # evidence: T6-T79 hold (T6 fragile: its interval reaches 5), T0-T5 do not (T5 fragile: its interval reaches 6);
    # none is in a ledger (toys), and the prerequisite is apart
    assert "Claims in no ledger: 73 of 80 hold and 1 more hold but are fragile; 5 do not hold and 1 more miss" in text
    assert "cpu toy" not in text and "toy-cpu (toy, cpu profile)" in text  # one profile, and it says what it left


def test_scorecard_refuses_a_missing_results_folder(tmp_path):
    from steerlib import scorecard

    with pytest.raises(FileNotFoundError, match="results_dir"):
        scorecard.collect(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"profile": "laptop"}, "profile='laptop'.*'smoke', 'cpu', 'paper', 'gpu'"),
        ({"profile": ""}, "profile=''.*'smoke', 'cpu', 'paper', 'gpu'"),
        ({"seed": "abc"}, "seed='abc' is a str; seed must be an integer"),
        ({"seed": 1.5}, "seed=1.5 is a float; seed must be an integer"),
        ({"seed": -1}, "seed=-1 is out of range; allowed values lie in \\[0, 4294967295\\]"),
    ],
    ids=["profile-laptop", "profile-empty", "seed-abc", "seed-1.5", "seed--1"],
)
def test_bad_parameters_fail_the_chapter_early_with_a_clear_error(params, message, tmp_path):
    """The checks live in the one call that runs a chapter (steerlib.book.execute), which every chapter notebook
    makes first; nothing is written."""
    pm = pytest.importorskip("papermill")
    path = BOOK / "extrapolation" / "reversion.ipynb"
    out_dir = tmp_path / "results"
    with pytest.raises(pm.PapermillExecutionError, match=message):
        pm.execute_notebook(
            str(path),
            str(tmp_path / "bad.ipynb"),
            cwd=str(path.parent),
            kernel_name="python3",
            parameters={"profile": "smoke", "out_dir": str(out_dir), **params},
            progress_bar=False,
            execution_timeout=900,
        )
    assert not out_dir.exists()


def test_performance_page_shows_each_chapters_cost_and_the_benchmark(tmp_path):
    pm = pytest.importorskip("papermill")
    from steerlib.core.claims import Claim
    from steerlib.core.record import write_metrics

    claim = [Claim("T1", "toy", "x", 1.0, ">", 0.5, why="toy", uncertainty="toy")]
    path = write_metrics(
        tmp_path / "toy",
        "toy",
        {"profile": "smoke"},
        claim,
        0,
        {"seconds": {"pretrain": 120.0, "grid": 480.0, "total": 600.0}},
    )
    record = json.loads(path.read_text())
    assert record["resources"]["threads"] >= 1 and record["resources"]["cpu_s"] > 0
    card = tmp_path / "page.ipynb"
    pm.execute_notebook(
        str(BOOK / "performance.ipynb"),
        str(card),
        cwd=str(BOOK),
        kernel_name="python3",
        parameters={"results_dir": str(tmp_path), "profile": "smoke"},
        progress_bar=False,
    )
    assert "grid 8.0 min, pretrain 2.0 min" in card.read_text() and "make bench" in card.read_text()
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "lm.json").write_text(
        json.dumps(
            {
                "threads": 1,
                "training": {
                    "model": "toy",
                    "batch": 4,
                    "seq": 8,
                    "tokens_per_s": 1000.0,
                    "gflops": 2.0,
                    "matmul_peak_gflops": 50.0,
                    "fraction_of_peak": 0.04,
                },
                "batching": [
                    {
                        "chapter": "toy",
                        "model": "toy",
                        "batch": 8,
                        "seq": 4,
                        "k": 4,
                        "ms_per_step": 2.0,
                        "ms_per_merged_step": 4.0,
                        "ceiling": 2.0,
                    }
                ],
                "sampling": {
                    "profile": "cpu",
                    "model": "toy",
                    "prompts": 8,
                    "batch": 8,
                    "max_new_tokens": 4,
                    "temperature": 0.8,
                    "repeats": 3,
                    "tokens_per_s": {"generate": 100.0, "steerlib": 170.0},
                    "ratio_to_generate": {"generate": 1.0, "steerlib": 1.7},
                },
            }
        )
    )
    pm.execute_notebook(
        str(BOOK / "performance.ipynb"),
        str(card),
        cwd=str(BOOK),
        kernel_name="python3",
        parameters={"results_dir": str(tmp_path), "profile": "smoke"},
        progress_bar=False,
    )
    text = card.read_text()
    assert "**4%**" in text and "1.70" in text and "steerlib" in text and "2.00x" in text


def test_unglued_numbers_are_found_and_marked_ones_are_not():
    text = (
        "The KL falls to 0.97 (Fig 2.3; Figs 2.2-2.3 and section 3.6), 56% of the clean value; $x = 0.5$, "
        "{glue:text}`kl:.2f`, {paper}`0.88-0.97`, {diagnostic}`0.31` and {setting}`0.1`; arXiv:2310.02541."
    )
    found = unglued_numbers(text)
    assert len(found) == 2 and "0.97" in found[0] and "56%" in found[1], found


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_prose_takes_its_numbers_from_the_run(path):
    """Every decimal or percentage in a chapter's prose is glued from the run that executes the notebook
    ({glue:text}), or marked as not computed there: {paper} (quoted from the dissertation or the paper), {diagnostic}
    (a one-off measurement named in the text) or {setting} (a setting of the profile). Prose cannot then contradict
    its own run."""
    nb = nbformat.read(path, as_version=4)
    text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert unglued_numbers(text) == []
