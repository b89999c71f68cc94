"""Make a new chapter from the template (``templates/chapter/``), ready to build and to pass the contract tests.

    python templates/new_chapter.py <part> <name> --title "What the chapter shows" [--prefix B] [--root .]

``part`` is a folder of ``book/`` (:data:`steerlib.core.chapter.PARTS`), ``name`` the chapter's one name (lowercase
words joined by hyphens). The command writes, with the template's placeholders replaced:

- ``steerlib/chapters/<part>/<name with underscores>/``: ``__init__.py``, ``experiment.py``, ``analysis.py``,
  ``figures.py`` and ``ledger.json`` (each claim registered, before any result);
- ``book/<part>/<name>.ipynb``, its Colab install cell written from ``_config.yml``;
- ``tests/test_<name with underscores>.py``;

and registers the chapter in ``steerlib/book.py`` (``CHAPTERS``), ``_toc.yml`` and the Makefile's ``NBVAL``, after
the last chapter of its part (a new part goes after the others). Claim ids take the letter ``--prefix``, by default
the first letter no chapter uses. The template's claims, experiment and prose are a worked example: replace them,
and record every change to a claim in the ledger (:func:`steerlib.core.ledger.record`).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import re
import shutil
import string
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "chapter"
PACKAGE_FILES = ("__init__.py", "experiment.py", "analysis.py", "figures.py")
CAPTIONS = {  # a part's caption in _toc.yml, for a part that has no chapter yet
    "extrapolation": "Part I: Extrapolation",
    "hallucination": "Part II: Hallucination",
    "reasoning": "Part III: Reasoning",
    "related": "Part IV: Related studies",
}
NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
TEMPLATE_ID = re.compile(r"\bZ([01])\b")  # the template's claim ids, Z0 and Z1


def used_letters(root: Path) -> set[str]:
    """The letters that begin the claim ids of the book's chapters (read off their ledgers, nothing imported)."""
    letters = set()
    for ledger in (root / "steerlib" / "chapters").glob("*/*/ledger.json"):
        letters |= {cid[0] for cid in json.loads(ledger.read_text()) if cid[:1].isupper()}
    return letters


def substitute(text: str, part: str, name: str, title: str, prefix: str) -> str:
    """The template's ``text`` with its placeholders replaced: part, name (with hyphens, with underscores), title
    and claim ids."""
    for old, new in (
        ("template_part", part),
        ("template_chapter", name.replace("-", "_")),
        ("template-chapter", name),
        ("Template chapter title", title),
    ):
        text = text.replace(old, new)
    return TEMPLATE_ID.sub(lambda m: f"{prefix}{m.group(1)}", text)


def register_in_book(text: str, part: str, name: str) -> tuple[str, list[str]]:
    """``steerlib/book.py``'s ``text`` with the chapter added to ``CHAPTERS`` after the last chapter of ``part``
    (else last), and the chapter names in their new order."""
    start = text.index("CHAPTERS = {")
    end = text.index("\n}", start)
    entries = re.findall(r'^    "([\w-]+)": "steerlib\.chapters\.(\w+)\.\w+",$', text[start:end], re.M)
    line = f'    "{name}": "steerlib.chapters.{part}.{name.replace("-", "_")}",\n'
    same = [n for n, p in entries if p == part]
    if same:
        anchor = re.search(rf'^    "{re.escape(same[-1])}": [^\n]*\n', text[start : end + 1], re.M)  # its newline
        at = start + anchor.end()
        order = [n for n, _ in entries]
        order.insert(order.index(same[-1]) + 1, name)
    else:
        at = end + 1
        order = [n for n, _ in entries] + [name]
    return text[:at] + line + text[at:], order


def register_in_toc(text: str, part: str, name: str, parts: tuple[str, ...]) -> str:
    """``_toc.yml``'s ``text`` with ``book/<part>/<name>`` after the part's last chapter, or in a new part after the
    last part of chapters (``parts``)."""
    lines = text.splitlines(keepends=True)
    entry = f"book/{part}/{name}"
    mine = [i for i, line in enumerate(lines) if re.match(rf"\s*- file: book/{part}/[\w-]+\s*$", line)]
    if mine:
        indent = lines[mine[-1]][: lines[mine[-1]].index("-")]
        lines.insert(mine[-1] + 1, f"{indent}- file: {entry}\n")
    else:
        folders = "|".join(parts)
        chapters = [i for i, line in enumerate(lines) if re.match(rf"\s*- file: book/({folders})/[\w-]+\s*$", line)]
        at = next(i for i, line in enumerate(lines) if i > chapters[-1] and line.lstrip().startswith("- caption:"))
        caption = CAPTIONS.get(part, part.capitalize())
        block = f'  - caption: "{caption}"\n    numbered: true\n    chapters:\n      - file: {entry}\n'
        lines.insert(at, block)
    return "".join(lines)


def register_in_makefile(text: str, part: str, name: str, order: list[str], parts: dict[str, str]) -> str:
    """The Makefile's ``text`` with the notebook in ``NBVAL``, after the chapter before it in the book's order."""
    before = order[order.index(name) - 1]
    token = f"book/{parts[before]}/{before}.ipynb"
    if text.count(token) != 1:
        raise ValueError(f"the Makefile's NBVAL should name {token} once")
    return text.replace(token, f"{token} \\\n         book/{part}/{name}.ipynb")


def register_claims(root: Path, part: str, name: str, title: str) -> None:
    """Register every claim of the new chapter in its ``ledger.json``, before any result."""
    from steerlib.core import ledger

    analysis = importlib.import_module(f"steerlib.chapters.{part}.{name.replace('-', '_')}.analysis")
    path = root / "steerlib" / "chapters" / part / name.replace("-", "_") / "ledger.json"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "uncommitted"
    for spec in analysis.SPECS:
        ledger.record(
            path,
            spec,
            "registered",
            what=f"claim {spec.id}: {spec.statement} ({spec.statistic} {spec.op} {spec.threshold})",
            why=f"written with the chapter '{title}' from the template, before its first run",
            after_results=False,
            date=datetime.date.today().isoformat(),
            commit=commit,
        )


def new_chapter(root: Path, part: str, name: str, title: str, prefix: str | None = None) -> list[Path]:
    """Write the chapter ``name`` of ``part`` from the template into the book at ``root``, register it, and return
    the files written."""
    root = root.resolve()
    sys.path.insert(0, str(root))  # this tree's steerlib, not an installed one
    sys.path.insert(0, str(root / "book" / "_ext"))
    from book_build import install_cell

    from steerlib.book import CHAPTERS
    from steerlib.core.chapter import PARTS

    module = name.replace("-", "_")
    if part not in PARTS:
        raise ValueError(f"part={part!r} is not a part of the book; choose one of {', '.join(PARTS)}")
    if not NAME.match(name) or len(name) > 40:
        raise ValueError(
            f"name={name!r} is not a chapter name: lowercase words joined by hyphens, at most 40 characters, "
            "e.g. 'my-study'"
        )
    if name in CHAPTERS or (root / "book" / part / f"{name}.ipynb").exists():
        raise ValueError(f"the book already has a chapter {name!r}")
    if not title.strip() or len(title) > 80 or '"' in title:
        raise ValueError(f"title={title!r}: give the chapter's title, at most 80 characters and no double quotes")
    prefix = prefix or next((c for c in string.ascii_uppercase if c not in used_letters(root)), None)
    if not prefix or prefix not in string.ascii_uppercase or prefix in used_letters(root):
        raise ValueError(f"prefix={prefix!r}: give an uppercase letter that no chapter's claim ids begin with")

    # the registrations first: nothing is written if one of them fails
    chapter_of = {n: p.split(".")[2] for n, p in CHAPTERS.items()} | {name: part}
    book, order = register_in_book((root / "steerlib" / "book.py").read_text(), part, name)
    toc = register_in_toc((root / "_toc.yml").read_text(), part, name, PARTS)
    makefile = register_in_makefile((root / "Makefile").read_text(), part, name, order, chapter_of)

    package = root / "steerlib" / "chapters" / part / module
    package.mkdir(parents=True)
    if not (package.parent / "__init__.py").exists():
        (package.parent / "__init__.py").write_text("")
    written = []
    for file in PACKAGE_FILES:
        (package / file).write_text(substitute((TEMPLATE / file).read_text(), part, name, title, prefix))
        written.append(package / file)
    notebook = root / "book" / part / f"{name}.ipynb"
    notebook.parent.mkdir(parents=True, exist_ok=True)
    nb = json.loads(substitute((TEMPLATE / "chapter.ipynb").read_text(), part, name, title, prefix))
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    first["source"] = install_cell(root).splitlines(keepends=True)
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    test = root / "tests" / f"test_{module}.py"
    test.write_text(substitute((TEMPLATE / "test_chapter.py").read_text(), part, name, title, prefix))
    written += [notebook, test]

    for path, text in (("steerlib/book.py", book), ("_toc.yml", toc), ("Makefile", makefile)):
        (root / path).write_text(text)
    importlib.invalidate_caches()
    register_claims(root, part, name, title)
    written.append(package / "ledger.json")
    if shutil.which("ruff") or importlib.util.find_spec("ruff"):  # a long title may need its lines rewrapped
        subprocess.run([sys.executable, "-m", "ruff", "format", "-q", *map(str, written[:-1])], cwd=root, check=False)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", help="a folder of book/: extrapolation, hallucination, reasoning or related")
    parser.add_argument("name", help="the chapter's name: lowercase words joined by hyphens, e.g. my-study")
    parser.add_argument("--title", required=True, help="the chapter's title")
    parser.add_argument("--prefix", help="the letter its claim ids begin with (default: the first one unused)")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="the book's root")
    args = parser.parse_args(argv)
    try:
        written = new_chapter(args.root, args.part, args.name, args.title, args.prefix)
    except ValueError as err:
        parser.error(str(err))
    root = args.root.resolve()
    print("\n".join(f"wrote {p.relative_to(root)}" for p in written))
    test = f"tests/test_{args.name.replace('-', '_')}.py"
    print(
        "registered in steerlib/book.py, _toc.yml and the Makefile's NBVAL. Next: replace the template's experiment, "
        f"claims and prose, then run\n  pytest tests/test_contract.py tests/test_ledger.py tests/test_book.py {test}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
