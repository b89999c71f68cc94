"""The built book as its readers meet it: every page opened offline in headless Chromium, checked, photographed.

A page passes when it makes no network request (only its own ``file://`` files load), shows no error output,
traceback or JavaScript error, loads every image (natural width > 0), leaves no raw TeX after MathJax, shows no
progress bar and no live widget (which cannot move in a static page), and every internal link resolves (file and
``#anchor``). A chapter page has its claims table, listing every claim of its ``metrics.json``; the scorecard's
table lists every claim of every chapter. Every static slider moves: a key press on it, then a choice in its menu,
changes the frame shown. A page that cites has its references section, every entry of which links out; the
bibliography page lists every entry of ``references.bib``; an API page (``book/api/``) has an entry for every public
function and class of each module its source documents.

Used by ``tests/test_browser.py`` on the smoke book (``make smoke-book``). By hand::

    python tests/bookcheck.py _build/smoke/_build/html _build/smoke/results _build/smoke/screenshots
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
BIBLIOGRAPHY = ROOT / "references.bib"

# Debian's chromium, driven by Playwright (no browser download); a fresh profile every launch.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}  # a laptop's window

PROGRESS = re.compile(r"\d+%\|[^|\n]*\||\|\s*\d+/\d+ \[\d+:\d+")  # tqdm: "  3%|▎    | 1000/30000 [00:01<00:30"
RAW_TEX = re.compile(r"\$\$|\\[(\[]|\\[A-Za-z]{2,}")  # $$, \( \[, \frac: TeX that MathJax did not typeset
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception): ", re.M)

# Runs in the page once it has loaded: MathJax done, every image settled, then what the checks need.
COLLECT = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const images = [...document.images];
  images.forEach(i => { i.loading = "eager"; });
  await Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  const text = el => (el ? el.innerText : "");
  const prose = [];  // the article's text outside code, outputs and typeset math
  const article = document.querySelector("article") || document.body;
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  const skip = "pre, code, script, style, textarea, mjx-container, .cell_output, .highlight";
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest(skip)) prose.push(n.textContent);
  }
  const scorecard = [];  // [chapter, claim id] of every row of the scorecard's table
  let chapter = null;
  for (const row of document.querySelectorAll("table.scorecard tbody tr")) {
    if (row.classList.contains("chapter")) chapter = row.innerText.split(" (")[0].trim();
    else scorecard.push([chapter, row.cells[0].innerText.trim()]);
  }
  return {
    errors: [...document.querySelectorAll(".output.stderr, .output.traceback")].map(text),
    outputs: [...document.querySelectorAll(".cell_output")].map(text),
    widgets: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    images: images.map(i => ({src: (i.getAttribute("src") || "").slice(0, 120), ok: i.complete && i.naturalWidth > 0})),
    prose: prose.join(" "),
    math_errors: document.querySelectorAll("mjx-merror").length,
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    tables: [...document.querySelectorAll("article table")].map(t =>  // the row headers of every table
      [...t.querySelectorAll("tbody tr > th")].map(th => th.innerText.trim())),
    has_scorecard: !!document.querySelector("table.scorecard"),
    scorecard: scorecard,
    cites: [...document.querySelectorAll(".bibtex-citation a")].map(a => a.href),  // citations in the text
    entries: [...document.querySelectorAll("div.citation")].map(c =>  // a references section's entries
      ({text: text(c).slice(0, 80), links: [...c.querySelectorAll("a.reference.external")].map(a => a.href)})),
    objects: [...document.querySelectorAll("dl.py > dt[id]")].map(dt => dt.id),  // API entries
  };
}"""


@dataclasses.dataclass
class PageReport:
    page: str  # relative to the book's html folder, e.g. "book/extrapolation/reversion.html"
    problems: list[str] = dataclasses.field(default_factory=list)
    sliders_moved: int = 0
    screenshot: Path | None = None


def book_pages(html: Path) -> list[str]:
    """Every page of the built book: its HTML files outside the ``_static``-like folders and build reports, less
    the pages that only redirect (see :func:`redirect_problems`)."""
    pages = [p for p in html.rglob("*.html") if 'http-equiv="Refresh"' not in p.read_text(errors="replace")]
    rel = [p.relative_to(html) for p in pages]
    return sorted(str(p) for p in rel if not any(part.startswith("_") or part == "reports" for part in p.parts[:-1]))


def claims_by_chapter(results: Path) -> dict[str, list[str]]:
    """Chapter name -> the ids of its claims, from ``<results>/<chapter>/metrics.json``."""
    out = {}
    for path in sorted(results.glob("*/metrics.json")):
        record = json.loads(path.read_text())
        out[record["chapter"]] = [c["id"] for c in record["claims"]]
    return out


def bibliography_keys(path: Path = BIBLIOGRAPHY) -> list[str]:
    """The entry keys of a BibTeX file."""
    return re.findall(r"^@\w+\{([^,\s]+),", path.read_text(), re.M) if path.is_file() else []


def api_entries(html: Path) -> dict[str, list[str]]:
    """API page -> the ids of the entries it must show: every public function and class defined in each module that
    the page's source (``_sources/book/api/<page>.md``) documents with ``automodule``."""
    out = {}
    for source in sorted((html / "_sources" / "book" / "api").glob("*.md")):
        ids = []
        for name in re.findall(r"^\.\. automodule:: (\S+)\s*\n\s+:members:", source.read_text(), re.M):
            module = importlib.import_module(name)
            ids += [
                f"{name}.{attr}"
                for attr, obj in vars(module).items()
                if not attr.startswith("_")
                and (inspect.isfunction(obj) or inspect.isclass(obj))
                and obj.__module__ == name
            ]
        out[f"book/api/{source.stem}.html"] = ids
    return out


def ids_of(path: Path) -> set[str]:
    """The anchors a link can point at in an HTML file: its ``id`` and ``name`` attributes."""
    return set(re.findall(r'\s(?:id|name)="([^"]+)"', path.read_text(errors="replace")))


def broken_links(html: Path, links: list[str]) -> list[str]:
    """The internal links (of a page) whose file is missing or whose ``#anchor`` is not in it."""
    broken, anchors = [], {}
    for link in links:
        url = urlsplit(link)
        if url.scheme != "file":
            continue  # http(s) links lead out of the book: they are followed by readers, never loaded here
        target = Path(unquote(url.path))
        if target.is_dir():
            target = target / "index.html"
        where = target.relative_to(html) if target.is_relative_to(html) else target
        if not target.is_file():
            broken.append(f"{where}: no such file")
        elif url.fragment and target.suffix == ".html":
            anchors.setdefault(target, ids_of(target))
            if unquote(url.fragment) not in anchors[target]:
                broken.append(f"{where}#{url.fragment}: no such anchor")
    return [f"broken internal link to {b}" for b in sorted(set(broken))]


def page_problems(
    facts: dict,
    chapter_claims: dict[str, list[str]],
    stem: str,
    bibliography: list[str] | None = None,
    api_ids: list[str] | None = None,
) -> list[str]:
    """What a reader would see wrong on a page, from the facts :data:`COLLECT` gathered there: ``bibliography``, the
    keys the bibliography page must list; ``api_ids``, the entries an API page must show."""
    problems = [f"error output: {e.strip()[:200]!r}" for e in facts["errors"]]
    problems += [f"error text in an output: {o.strip()[:200]!r}" for o in facts["outputs"] if ERROR_TEXT.search(o)]
    bars = [m.group(0) for m in map(PROGRESS.search, facts["outputs"]) if m]
    problems += [f"progress-bar output: {bar!r}" for bar in bars]
    if facts["widgets"]:
        problems.append(f"{facts['widgets']} live widget(s), which show nothing in a static page")
    problems += [f"image did not load: {i['src']}" for i in facts["images"] if not i["ok"]]
    if facts["math_errors"]:
        problems.append(f"{facts['math_errors']} MathJax error(s)")
    raw = sorted(set(RAW_TEX.findall(facts["prose"])))
    if raw:
        problems.append(f"raw TeX left after typesetting: {raw[:8]}")
    if stem in chapter_claims:
        missing = min(
            ([c for c in chapter_claims[stem] if c not in rows] for rows in facts["tables"]),
            key=len,
            default=chapter_claims[stem],
        )
        if missing:
            problems.append(f"no table lists every claim of the chapter's metrics.json (missing: {missing})")
    if stem == "scorecard":
        listed = {tuple(row) for row in facts["scorecard"]}
        missing = [f"{ch}/{c}" for ch, ids in chapter_claims.items() for c in ids if (ch, c) not in listed]
        if not facts["has_scorecard"]:
            problems.append("no scorecard table")
        elif missing:
            problems.append(f"scorecard table lacks {missing}")
    if facts["cites"] and not facts["entries"]:
        problems.append(f"{len(facts['cites'])} citation(s) but no references section")
    problems += [f"reference without a link out: {e['text']!r}" for e in facts["entries"] if not e["links"]]
    if stem == "references" and bibliography is not None and len(facts["entries"]) != len(bibliography):
        problems.append(f"the bibliography lists {len(facts['entries'])} of the {len(bibliography)} entries")
    missing_api = [i for i in api_ids or [] if i not in facts["objects"]]
    if missing_api:
        problems.append(f"API reference lacks {missing_api}")
    return problems


def move_sliders(page, screenshot: Path) -> tuple[int, list[str]]:
    """Press the right arrow key on every static slider and pick its menu's last choice: the frame must change.
    Each slider is photographed before and after (``<screenshot stem>-slider<k>-{before,after}.png``)."""
    moved, problems = 0, []
    for k, slider in enumerate(page.locator(".steerlib-slider").all()):
        image = slider.locator("img")
        before = image.get_attribute("src")
        slider.screenshot(path=screenshot.with_name(f"{screenshot.stem}-slider{k}-before.png"))
        slider.locator('input[type="range"]').press("ArrowRight")
        after_key = image.get_attribute("src")
        menu = slider.locator("select")
        choices = menu.locator("option").all_inner_texts()
        menu.select_option(choices[-1])
        after_menu = image.get_attribute("src")
        slider.screenshot(path=screenshot.with_name(f"{screenshot.stem}-slider{k}-after.png"))
        if after_key == before or (len(choices) > 1 and after_menu == after_key):
            problems.append(
                f"static slider {k} does not move (key press: {after_key != before}, menu: {after_menu != after_key})"
            )
        else:
            moved += 1
    return moved, problems


def watch(page, report: PageReport) -> None:
    """Record on ``report`` every request that would leave the machine (and abort it), every local file that fails
    to load and every uncaught JavaScript error of ``page``."""

    def block(route) -> None:
        report.problems.append(f"network request: {route.request.url}")
        route.abort()

    def failed(request) -> None:
        if request.url.startswith("file:"):
            report.problems.append(f"failed to load: {request.url.rsplit('/html/', 1)[-1]} ({request.failure})")

    page.route(re.compile(r"^(?!file:|data:|blob:)"), block)
    page.on("requestfailed", failed)
    page.on("pageerror", lambda error: report.problems.append(f"JavaScript error: {error}"))


def redirect_problems(html: Path) -> list[str]:
    """A page that only redirects (the book's ``index.html``) must point at a page that exists."""
    problems = []
    for path in html.glob("*.html"):
        target = re.search(r'http-equiv="Refresh" content="\d+;\s*url=([^"]+)"', path.read_text(), re.I)
        if target and not (html / target.group(1)).is_file():
            problems.append(f"{path.name} redirects to a missing page: {target.group(1)}")
    return problems


def photograph(page, path: Path) -> None:
    """A screenshot of the whole page, laid out in a window as tall as the page (Chromium's own full-page capture
    drew the lower part of long pages shifted sideways)."""
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({**VIEWPORT, "height": height})
    page.screenshot(path=path)
    page.set_viewport_size(VIEWPORT)


def check_book(
    html: Path, results: Path, screenshots: Path, chromium: str = "/usr/bin/chromium", pages: list[str] | None = None
) -> list[PageReport]:
    """Open every page of the built book at ``html`` (or just ``pages``) offline in headless ``chromium``, check it
    against the chapters' records in ``results`` and save a full-page screenshot of it in ``screenshots``."""
    if not Path(chromium).is_file():
        raise FileNotFoundError(
            f"the browser check needs headless Chromium at {chromium}: install Debian's chromium "
            "package (apt-get install chromium; make test does) or set CHROMIUM=/path/to/it"
        )
    from playwright.sync_api import sync_playwright

    html, chapter_claims = html.resolve(), claims_by_chapter(results)
    bibliography, api = bibliography_keys(), api_entries(html)
    screenshots.mkdir(parents=True, exist_ok=True)
    reports = []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT
        )
        for name in pages or book_pages(html):
            report = PageReport(name)
            page = context.new_page()
            watch(page, report)
            page.goto((html / name).as_uri(), wait_until="load")
            facts = page.evaluate(COLLECT)
            report.problems += page_problems(facts, chapter_claims, Path(name).stem, bibliography, api.get(name))
            report.problems += broken_links(html, facts["links"])
            report.screenshot = screenshots / (name.replace("/", "__").removesuffix(".html") + ".png")
            photograph(page, report.screenshot)
            report.sliders_moved, problems = move_sliders(page, report.screenshot)
            report.problems += problems
            page.close()
            reports.append(report)
        context.close()
    return reports


if __name__ == "__main__":
    failed = 0
    for r in check_book(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])):
        print(f"{r.page}: {'ok' if not r.problems else 'FAILS'} (sliders moved: {r.sliders_moved}; {r.screenshot})")
        for p in r.problems:
            print(f"    {p}")
        failed += bool(r.problems)
    sys.exit(1 if failed else 0)
