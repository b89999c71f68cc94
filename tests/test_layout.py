"""The library's dependency rules, checked by walking the source's imports (and shown to fail on a broken tree).

1. The tool packages form a strict stack, each importing only those below it: core <- worlds <- lm <- measures <-
   vision. Above them the chapters, and above the chapters the book: ``steerlib/book.py`` (the registry),
   ``steerlib/jobs.py`` (the job command), ``steerlib/scorecard.py``, ``steerlib/performance.py``.
2. Nothing below the book imports a chapter; a chapter imports no other chapter, only its part's ``common`` module
   (a chapter of Part IV, ``related``, may import any part's: it tests that part's claims on that part's set-up).
3. Dynamic imports (``importlib.import_module``, ``__import__``) only where they look a chapter up by the registry
   (``steerlib/book.py``) or load a chapter's figures on demand (``Chapter.figures`` in ``core/chapter.py``).
4. matplotlib is imported only in ``figures.py`` modules, where figures are drawn.
5. No module imports a private (underscore) name of another module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STACK = ("core", "worlds", "lm", "measures", "vision", "chapters", "book")  # each may import only those before it
BOOK = ("book", "jobs", "scorecard", "performance", "cache")  # modules at the top: steerlib/<name>.py
DYNAMIC = ("steerlib/book.py", "steerlib/core/chapter.py")  # the only modules that import by a computed name


def _imports(path: Path, package: str) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) of every import in ``path``, whose own package is ``package``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((module, [a.name for a in node.names]))
    return out


def _dynamic_imports(path: Path) -> list[int]:
    """Line numbers of calls to ``import_module`` or ``__import__`` in ``path``."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
    ]


def _layer(module: str) -> str | None:
    """The layer of a steerlib module: a tool package, "chapters", or "book" for the top-level modules."""
    parts = module.split(".")
    if parts[0] != "steerlib" or len(parts) < 2:
        return None
    return "book" if parts[1] in BOOK else parts[1] if parts[1] in STACK else None


def _chapter_of(module: str) -> str | None:
    """``steerlib.chapters.<part>.<name>`` for a module inside a chapter (not a part's common module), else None."""
    parts = module.split(".")
    if len(parts) >= 4 and parts[:2] == ["steerlib", "chapters"] and parts[3] != "common":
        return ".".join(parts[:4])
    return None


def violations(src: Path) -> list[str]:
    """Every broken rule in the package tree ``src`` (the folder holding ``steerlib``), as readable lines."""
    found = []
    for path in sorted((src / "steerlib").rglob("*.py")):
        rel = path.relative_to(src)
        module = ".".join(rel.with_suffix("").parts)
        package = module.rsplit(".", 1)[0]
        if path.name == "__init__.py":
            module = package = module.removesuffix(".__init__")
        own_layer, own_chapter = _layer(module), _chapter_of(module)
        for imported, names in _imports(path, package):
            for target in [imported] + [f"{imported}.{n}" for n in names]:
                layer, other = _layer(target), _chapter_of(target)
                if layer and own_layer and STACK.index(layer) > STACK.index(own_layer):
                    found.append(f"{rel}: imports a layer above its own ({own_layer} -> {layer}): {target}")
                    break
                if other and own_chapter and other != own_chapter:
                    found.append(f"{rel}: imports another chapter: {target}")
                    break
                parts = target.split(".")
                if (
                    own_chapter
                    and len(parts) >= 4
                    and parts[:2] == ["steerlib", "chapters"]
                    and parts[3] == "common"
                    and parts[2] != own_chapter.split(".")[2]
                    and own_chapter.split(".")[2] != "related"
                ):
                    found.append(f"{rel}: imports another part's common module: {target}")
                    break
            if imported.split(".")[0] == "matplotlib" and path.name != "figures.py":
                found.append(f"{rel}: imports matplotlib outside a figures.py module")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and imported != module:
                found.append(f"{rel}: imports private names {private} from {imported}")
        if _dynamic_imports(path) and str(rel) not in DYNAMIC:
            found.append(f"{rel}: imports a module by a computed name (only {', '.join(DYNAMIC)} may)")
    return found


def test_the_library_keeps_its_dependency_rules():
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    "where, code, rule",
    [
        (
            "steerlib/core/oops.py",
            "from steerlib.chapters.extrapolation.reversion import PROFILES\n",
            "imports a layer above its own (core -> chapters)",
        ),
        (
            "steerlib/core/oops.py",
            "from steerlib.book import CHAPTERS\n",
            "imports a layer above its own (core -> book)",
        ),
        (
            "steerlib/worlds/oops.py",
            "from steerlib.vision.data import load_dataset\n",
            "imports a layer above its own (worlds -> vision)",
        ),
        (
            "steerlib/chapters/extrapolation/mechanism/oops.py",
            "from steerlib.chapters.extrapolation.reversion.experiment import PROFILES\n",
            "imports another chapter",
        ),
        (
            "steerlib/chapters/reasoning/pre_memorization/oops.py",
            "from steerlib.chapters.extrapolation.common import RECIPES\n",
            "imports another part's common module",
        ),
        (
            "steerlib/chapters/extrapolation/reversion/oops.py",
            "import matplotlib.pyplot as plt\n",
            "imports matplotlib outside a figures.py module",
        ),
        ("steerlib/vision/oops.py", "from steerlib.core.cache import _read\n", "imports private names"),
        (
            "steerlib/core/oops.py",
            "import importlib\nm = importlib.import_module('steerlib.chapters.extrapolation')\n",
            "imports a module by a computed name",
        ),
    ],
    ids=[
        "core-imports-chapter",
        "core-imports-book",
        "tool-imports-tool-above",
        "chapter-imports-sibling",
        "other-part-common",
        "matplotlib",
        "private-name",
        "dynamic-import",
    ],
)
def test_a_broken_rule_is_caught(tmp_path, where, code, rule):
    """A copy of the tree with one deliberate break fails the check, naming the file and the rule."""
    subprocess.run(["cp", "-r", str(ROOT / "steerlib"), str(tmp_path)], check=True)
    (tmp_path / where).write_text(code)
    found = violations(tmp_path)
    assert any(line.startswith(where) and rule in line for line in found), found


def test_a_chapter_may_import_its_parts_common_module(tmp_path):
    subprocess.run(["cp", "-r", str(ROOT / "steerlib"), str(tmp_path)], check=True)
    (tmp_path / "steerlib/chapters/extrapolation/reversion/oops.py").write_text(
        "from steerlib.chapters.extrapolation.common import RECIPES\n"
    )
    assert violations(tmp_path) == []


def test_chapter_packages_import_without_matplotlib():
    """Protocol modules stay free of figures: importing every chapter does not load matplotlib."""
    code = (
        "import sys; from steerlib.book import CHAPTERS, chapter;"
        "[chapter(name) for name in CHAPTERS]; print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_copied_code_in_the_library():
    """pylint's duplicate-code checker (symilar) finds no block of 6+ lines written twice in steerlib."""
    files = sorted(str(p) for p in (ROOT / "steerlib").rglob("*.py"))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pylint.checkers.symilar",
            "-d",
            "6",
            "-i",
            "--ignore-docstrings",
            "--ignore-imports",
            "--ignore-signatures",
            *files,
        ],
        capture_output=True,
        text=True,
    )
    assert "duplicates=0 " in out.stdout, out.stdout


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_finds_nothing(command):
    """The code, tests, benchmarks and notebooks pass ruff's linter and formatter (pyproject.toml's [tool.ruff])."""
    out = subprocess.run([sys.executable, "-m", "ruff", *command, "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
