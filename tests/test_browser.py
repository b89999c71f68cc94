"""The smoke book in a real browser (``tests/bookcheck.py``): every page opened offline in headless Chromium and
photographed (``_build/smoke/screenshots``), the static slider moved, the bibliography and the API reference read;
and the check shown to fail on doctored copies of a chapter page, the bibliography and an API page.

``make test`` builds the smoke book first (``make smoke-book``) and installs Chromium; without either these tests
fail, saying what is missing. They never skip.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from book_build import home
from bookcheck import api_entries, bibliography_keys, book_pages, check_book, redirect_problems

from steerlib.book import CHAPTERS, part_of

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "_build" / "smoke"
HTML = SMOKE / "_build" / "html"
RESULTS = SMOKE / "results"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TOC = (ROOT / "_toc.yml").read_text()
INDEXES = ["genindex.html", "search.html", "py-modindex.html"]  # Sphinx's general, search and module indexes
PAGES = sorted([f"{doc}.html" for doc in re.findall(r"(?:file|root):\s*(\S+)", TOC)] + INDEXES)
REVERSION = "book/extrapolation/reversion.html"
REFERENCES, CHAPTER_GUIDE, API_CORE = "book/references.html", "book/add-a-chapter.html", "book/api/core.html"


@pytest.fixture(scope="module")
def book() -> Path:
    if not (HTML / "index.html").is_file():
        pytest.fail(f"the smoke book is not built at {HTML}: run `make smoke-book` (make test does)")
    return HTML


@pytest.fixture(scope="module")
def reports(book):
    return {r.page: r for r in check_book(book, RESULTS, SMOKE / "screenshots", CHROMIUM)}


def test_the_check_covers_every_page_and_every_chapter(book):
    assert book_pages(book) == PAGES
    assert redirect_problems(book) == [], "index.html leads to the intro"
    for name in CHAPTERS:
        assert (RESULTS / name / "metrics.json").is_file(), f"the smoke book did not run {name}"
        assert f"book/{part_of(name)}/{name}.html" in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_page_reads_well_offline(reports, page):
    assert reports[page].problems == []
    assert reports[page].screenshot.stat().st_size > 10_000


def test_the_check_reads_the_bibliography_and_every_api_page(book):
    """What the bibliography page and the API pages are checked against: every entry of references.bib, and every
    public function and class of each module an API page documents."""
    assert len(bibliography_keys()) >= 10 and "kang2025steering" in bibliography_keys()
    api = api_entries(book)
    assert sorted(api) == sorted(p for p in PAGES if p.startswith("book/api/"))
    assert all(ids for page, ids in api.items() if page != "book/api/index.html"), {p: len(i) for p, i in api.items()}
    assert "steerlib.core.chapter.Chapter" in api[API_CORE]


def test_launch_and_repository_buttons_lead_to_the_books_home(book):
    """The same home as every install cell (tests/test_book.py): _config.yml's repository url and branch. The
    page's other links are in its text and bibliography (``class="reference external"``)."""
    url, branch = home()
    anchors = re.findall(r"<a\b[^>]*>", (book / REVERSION).read_text())
    links = {m for a in anchors if "reference external" not in a for m in re.findall(r'href="(https://[^"]+)"', a)}
    colab = f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/{branch}/"
    assert links == {url, f"{colab}{REVERSION.removesuffix('.html')}.ipynb"}


def test_the_static_slider_moves_without_a_kernel(reports):
    assert reports[REVERSION].sliders_moved == 1


DOCTORED = {  # page name -> (how the reversion page is changed, the problems the check must report)
    "control": (lambda html: html, set()),
    "error": (
        lambda html: html.replace(
            '<div class="cell_output docutils container">',
            (
                '<div class="cell_output docutils container">'
                '<div class="output traceback highlight-ipythontb notranslate">'
                '<div class="highlight"><pre>Traceback (most recent call last):\nValueError: doctored</pre></div></div>'
            ),
            1,
        ),
        {"error output", "error text in an output"},
    ),
    "missing-figure": (
        lambda html: html.replace('src="../../_images/', 'src="../../_images/missing-', 1),
        {"image did not load", "failed to load"},
    ),
    "network": (
        lambda html: html.replace(
            "</head>", '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script></head>'
        ),
        {"network request"},
    ),
    "raw-tex": (
        lambda html: re.sub(r'<script[^>]*src="[^"]*mathjax/tex-chtml\.js"[^>]*></script>', "", html),
        {"raw TeX left after typesetting"},
    ),
    "progress-bar": (
        lambda html: html.replace(
            '<div class="cell_output docutils container">',
            (
                '<div class="cell_output docutils container">'
                '<div class="output stream highlight-myst-ansi notranslate">'
                '<div class="highlight"><pre>tokenize:   3%|▎         | 1000/30000 [00:01&lt;00:30]</pre></div></div>'
            ),
            1,
        ),
        {"progress-bar output"},
    ),
    "broken-link": (
        lambda html: html.replace("</article>", '<a href="nowhere.html#claims">x</a></article>'),
        {"broken internal link to book/extrapolation/nowhere.html"},
    ),
}


def test_the_check_fails_on_doctored_pages(book, tmp_path):
    """Copies of the reversion page, each with one fault a reader would see; the check names each fault."""
    html = tmp_path / "html"
    shutil.copytree(book, html)
    original = (html / REVERSION).read_text()
    pages = []
    for name, (doctor, _) in DOCTORED.items():
        doctored = doctor(original)
        assert name == "control" or doctored != original, f"the {name} doctoring found nothing to change"
        (html / REVERSION).with_name(f"{name}.html").write_text(doctored)
        pages.append(str(Path(REVERSION).with_name(f"{name}.html")))
    reports = check_book(html, RESULTS, tmp_path / "screenshots", CHROMIUM, pages=pages)
    for report, (name, (_, expected)) in zip(reports, DOCTORED.items()):
        kinds = {p.split(":")[0] for p in report.problems}
        assert kinds == expected, f"{name}: {report.problems}"
    (html / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/nowhere.html" />')
    assert redirect_problems(html) == ["index.html redirects to a missing page: book/nowhere.html"]


def _first_entry(html: str) -> re.Match:
    return re.search(r'<div class="citation" id="[^"]+" role="doc-biblioentry">.*?</div>', html, re.S)


REFERENCE_DOCTORING = {  # page -> (how it is changed, problems the check must report among others)
    REFERENCES: (
        lambda html: html.replace(_first_entry(html).group(0), "", 1),
        {"the bibliography lists"},
    ),
    CHAPTER_GUIDE: (
        lambda html: re.sub(r'<div class="citation" id="[^"]+" role="doc-biblioentry">.*?</div>', "", html, flags=re.S),
        {"citation(s) but no references section"},
    ),
    API_CORE: (
        lambda html: html.replace('id="steerlib.core.chapter.Chapter"', 'id="gone"', 1),
        {"API reference lacks"},
    ),
}


def test_the_check_fails_on_a_doctored_bibliography_and_api_page(book, tmp_path):
    """An entry dropped from the bibliography, a guide whose references section is gone, an API page that lost an
    entry, and a reference whose link out is gone: the check names each."""
    html = tmp_path / "html"
    shutil.copytree(book, html)
    for page, (doctor, _) in REFERENCE_DOCTORING.items():
        original = (html / page).read_text()
        assert doctor(original) != original, f"the doctoring of {page} found nothing to change"
        (html / page).write_text(doctor(original))
    reports = check_book(html, RESULTS, tmp_path / "screenshots", CHROMIUM, pages=list(REFERENCE_DOCTORING))
    for report, (page, (_, expected)) in zip(reports, REFERENCE_DOCTORING.items()):
        assert all(any(e in p for p in report.problems) for e in expected), f"{page}: {report.problems}"
    text = (html / REFERENCES).read_text()
    entry = _first_entry(text).group(0)
    (html / REFERENCES).write_text(text.replace(entry, entry.replace("reference external", "reference"), 1))
    (report,) = check_book(html, RESULTS, tmp_path / "screenshots", CHROMIUM, pages=[REFERENCES])
    assert any(p.startswith("reference without a link out") for p in report.problems), report.problems


def test_a_missing_chromium_fails_naming_it(book, tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install chromium"):
        check_book(book, RESULTS, tmp_path, chromium=str(tmp_path / "no-chromium"))
