"""What lets others cite, reuse and extend the book: the licence and citation files agree with the package, every
citation resolves to ``references.bib`` and every citing chapter has its references section, and the API reference
covers the library: a page per tool package listing each of its modules, and a docstring on every public function,
class, method and property (shown to fail on a module that lacks one)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
import yaml
from book_build import bibliography_keys, cited_keys, home

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "book" / "api"
TOOLS = ("core", "worlds", "lm", "measures", "vision")  # a page each: book/api/<package>.md
BOOK_MODULES = (  # book/api/protocol.md: the chapters, the book and its commands
    "steerlib.chapters",
    "steerlib.book",
    "steerlib.jobs",
    "steerlib.cache",
    "steerlib.scorecard",
    "steerlib.performance",
)
AUTOMODULE = re.compile(r"^\.\. automodule:: (\S+)", re.M)
BIBLIOGRAPHY = re.compile(r"```\{bibliography\}[^`]*?:filter: docname in docnames[^`]*?```", re.S)


def project(field: str) -> str:
    """A field of pyproject.toml's [project] table (a one-line string)."""
    return re.search(rf'^{field} = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def documented_modules(page: Path) -> list[str]:
    """The modules an API page documents (its ``automodule`` directives)."""
    return AUTOMODULE.findall(page.read_text())


def package_modules(package: str) -> list[str]:
    """``package`` and its modules."""
    pkg = importlib.import_module(package)
    return [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]


def _has_doc(obj) -> bool:
    """A docstring of its own or inherited (a method documented on its base class), not a dataclass's generated
    signature."""
    doc = inspect.getdoc(obj) or ""
    generated = inspect.isclass(obj) and dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}(")
    return bool(doc.strip()) and not generated


def undocumented(module: ModuleType) -> list[str]:
    """The public functions and classes defined in ``module``, and the public methods and properties of those
    classes, that have no docstring."""
    missing = [] if (module.__doc__ or "").strip() else [module.__name__]
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if not _has_doc(obj):
            missing.append(f"{module.__name__}.{name}")
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(value, property):
                    member = value
                elif inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod)):
                    member = getattr(obj, attr)
                else:
                    continue
                if not _has_doc(member):
                    missing.append(f"{module.__name__}.{name}.{attr}")
    return missing


def pages_with_prose() -> dict[str, str]:
    """Every page of the book (Markdown pages and the notebooks' Markdown cells) by path from the root."""
    pages = {}
    for path in sorted((ROOT / "book").rglob("*")):
        if {"results", "_build", ".ipynb_checkpoints"} & set(path.parts):
            continue
        if path.suffix == ".md":
            pages[str(path.relative_to(ROOT))] = path.read_text()
        elif path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)
            text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
            pages[str(path.relative_to(ROOT))] = text
    return pages


# ------------------------------------------------------------------------------------ licence and citation


def test_the_licence_is_the_one_the_package_declares():
    assert project("license") == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text


def test_citation_file_names_the_package_its_home_and_the_dissertation():
    """CITATION.cff (Citation File Format 1.2.0) agrees with pyproject.toml (version, licence) and _config.yml (the
    repository), and cites the dissertation the book reproduces as references.bib does."""
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["message"] and cff["authors"] and cff["title"]
    assert str(cff["version"]) == project("version") and cff["license"] == project("license")
    assert cff["repository-code"] == home()[0]
    thesis = next(r for r in cff["references"] if r["type"] == "thesis")
    bib = (ROOT / "references.bib").read_text()
    entry = bib[bib.index("@phdthesis{kang2025steering") :].split("\n}\n")[0]
    assert f"title       = {{{thesis['title']}}}" in entry and thesis["url"] in entry
    assert "CITATION.cff" in (ROOT / "README.md").read_text(), "the README says how to cite"


# ------------------------------------------------------------------------------------------ bibliography


def test_the_bibliography_is_wired_into_the_book():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["bibtex_bibfiles"] == ["references.bib"]
    assert "sphinx.ext.autodoc" in config["sphinx"]["extra_extensions"]
    page = (ROOT / "book" / "references.md").read_text()
    assert re.search(r"```\{bibliography\}\s*:all:", page), "the whole-book bibliography lists every entry"


def test_every_entry_has_a_unique_key_and_a_link_a_reader_can_follow():
    from pybtex.database import parse_file

    keys = bibliography_keys()
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    entries = parse_file(str(ROOT / "references.bib")).entries
    assert sorted(entries) == sorted(keys)
    for key, entry in entries.items():
        assert entry.fields.get("url", "").startswith(("http://", "https://")), f"{key} has no url"
        assert entry.fields.get("title") and entry.fields.get("year"), key
    assert "kang2025steering" in keys, "the dissertation the book reproduces"


def test_every_cited_key_is_in_the_bibliography_and_every_citing_chapter_lists_its_references():
    """A page that cites has its own references section (a bibliography filtered to the page), except the
    whole-book bibliography page; every key it cites is in references.bib."""
    keys = set(bibliography_keys())
    for page, text in pages_with_prose().items():
        cited = cited_keys(text)
        assert set(cited) <= keys, f"{page} cites keys that references.bib lacks: {sorted(set(cited) - keys)}"
        if cited and page != "book/references.md":
            assert BIBLIOGRAPHY.search(text), f"{page} cites {cited} but has no references section"


def test_cited_keys_are_read_from_every_role_and_never_from_code():
    text = "As {cite:t}`a` shows ({cite:p}`b, c`; {cite}`a`), and {cite:ps}`d`. Not `x` nor {glue:text}`e`."
    assert cited_keys(text) == ["a", "b", "c", "d"]
    code = "Write `{cite:p}` or ``{cite:t}`f` ``:\n\n````markdown\n{cite:p}`g`\n````\n\nthen {cite:t}`h`."
    assert cited_keys(code) == ["h"]
    assert cited_keys("```{note}\nAs {cite:t}`i` shows.\n```\n") == ["i"], "a directive's text is prose"


# ----------------------------------------------------------------------------------------- API reference


@pytest.mark.parametrize("package", TOOLS)
def test_each_tool_package_has_a_page_listing_every_module(package):
    modules = documented_modules(API / f"{package}.md")
    assert len(modules) == len(set(modules)) and set(modules) == set(package_modules(f"steerlib.{package}"))
    assert f"- file: book/api/{package}" in (ROOT / "_toc.yml").read_text()


def test_the_protocol_page_documents_the_chapters_and_the_book():
    assert set(documented_modules(API / "protocol.md")) == set(BOOK_MODULES)
    listed = {m for page in API.glob("*.md") for m in documented_modules(page)}
    top = {f"steerlib.{m.name}" for m in pkgutil.iter_modules(importlib.import_module("steerlib").__path__)}
    assert top - {f"steerlib.{p}" for p in TOOLS} <= listed, "every top-level module of steerlib has a page"


@pytest.mark.parametrize("page", [*TOOLS, "protocol"])
def test_every_public_name_has_a_docstring(page):
    modules = documented_modules(API / f"{page}.md")
    missing = [name for module in modules for name in undocumented(importlib.import_module(module))]
    assert missing == [], f"public names without a docstring (the API reference shows none for them): {missing}"


def test_a_public_name_without_a_docstring_is_caught(tmp_path, monkeypatch):
    (tmp_path / "oops_api.py").write_text(
        '"""A module."""\n'
        "import dataclasses\n\n"
        "def bare(x):\n    return x\n\n"
        "def _private(x):\n    return x\n\n"
        "@dataclasses.dataclass\nclass Config:\n    n: int = 1\n\n"
        'class Thing:\n    """A thing."""\n\n    def act(self):\n        return 1\n\n'
        "    @property\n    def size(self):\n        return 1\n\n"
        '    def documented(self):\n        """Does it."""\n\n'
        "class Child(Thing):\n"
        '    """A thing that acts its own way."""\n\n'
        "    def documented(self):\n        return 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("oops_api")
    try:
        assert undocumented(module) == [
            "oops_api.bare",
            "oops_api.Config",
            "oops_api.Thing.act",
            "oops_api.Thing.size",
        ], "an inherited docstring counts (Child.documented); a dataclass's generated signature does not"
    finally:
        sys.modules.pop("oops_api", None)
