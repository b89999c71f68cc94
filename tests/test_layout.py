"""The library's dependency rules, checked by walking the source's imports (and shown to fail on a broken tree).

1. Nothing outside ``steerlib/chapters`` imports a chapter.
2. A chapter imports no other chapter: chapters share code only through tool modules.
3. matplotlib is imported only in ``figures.py`` modules, where figures are drawn.
4. No module imports a private (underscore) name of another module.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path, package: str) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) of every import in ``path``, whose own package is ``package``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((module, [a.name for a in node.names]))
    return out


def _chapter_of(module: str) -> str | None:
    """``steerlib.chapters.<part>.<name>`` for a module inside a chapter, else None."""
    parts = module.split(".")
    return ".".join(parts[:4]) if len(parts) >= 4 and parts[:2] == ["steerlib", "chapters"] else None


def violations(src: Path) -> list[str]:
    """Every broken rule in the package tree ``src`` (the folder holding ``steerlib``), as readable lines."""
    found = []
    for path in sorted((src / "steerlib").rglob("*.py")):
        rel = path.relative_to(src)
        module = ".".join(rel.with_suffix("").parts)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        if path.name == "__init__.py":
            module = module.removesuffix(".__init__")
            package = module
        own = _chapter_of(module)
        for imported, names in _imports(path, package):
            targets = [imported] + [f"{imported}.{n}" for n in names]
            for target in targets:
                other = _chapter_of(target)
                if other is None or other == own:
                    continue
                rule = "imports a chapter from outside the chapters" if own is None else "imports another chapter"
                found.append(f"{rel}: {rule}: {target}")
                break
            if imported.split(".")[0] == "matplotlib" and path.name != "figures.py":
                found.append(f"{rel}: imports matplotlib outside a figures.py module")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and imported != module:
                found.append(f"{rel}: imports private names {private} from {imported}")
    return found


def test_the_library_keeps_its_dependency_rules():
    assert violations(ROOT) == []


@pytest.mark.parametrize("where, code, rule", [
    ("steerlib/core/oops.py", "from steerlib.chapters.extrapolation.reversion import PROFILES\n",
     "imports a chapter from outside the chapters"),
    ("steerlib/chapters/extrapolation/mechanism/oops.py",
     "from steerlib.chapters.extrapolation.reversion.experiment import PROFILES\n", "imports another chapter"),
    ("steerlib/chapters/extrapolation/reversion/oops.py", "import matplotlib.pyplot as plt\n",
     "imports matplotlib outside a figures.py module"),
    ("steerlib/vision/oops.py", "from steerlib.core.cache import _read\n", "imports private names"),
], ids=["tool-imports-chapter", "chapter-imports-sibling", "matplotlib", "private-name"])
def test_a_broken_rule_is_caught(tmp_path, where, code, rule):
    """A copy of the tree with one deliberate break fails the check, naming the file and the rule."""
    subprocess.run(["cp", "-r", str(ROOT / "steerlib"), str(tmp_path)], check=True)
    (tmp_path / where).write_text(code)
    found = violations(tmp_path)
    assert any(line.startswith(where) and rule in line for line in found), found


def test_chapter_packages_import_without_matplotlib():
    """Protocol modules stay free of figures: importing every chapter does not load matplotlib."""
    code = ("import sys; from steerlib.chapters import CHAPTERS; import importlib;"
            "[importlib.import_module(m) for m in CHAPTERS.values()]; print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_copied_code_in_the_library():
    """pylint's duplicate-code checker (symilar) finds no block of 6+ lines written twice in steerlib."""
    files = sorted(str(p) for p in (ROOT / "steerlib").rglob("*.py"))
    out = subprocess.run([sys.executable, "-m", "pylint.checkers.symilar", "-d", "6", "-i", "--ignore-docstrings",
                          "--ignore-imports", "--ignore-signatures", *files], capture_output=True, text=True)
    assert "duplicates=0 " in out.stdout, out.stdout
