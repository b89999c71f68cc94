"""The book build's own Sphinx extension (``_config.yml``: ``sphinx: local_extensions``): the book as readers meet it.

- Formulas offline: MathJax 3 comes from the ``django-static-mathjax`` package (MathJax's own files, no Django
  needed) and is copied into the built book's ``_static/mathjax``, where ``mathjax_path`` in ``_config.yml`` points.
- Results, not logs: notebook kernels run with ``STEERLIB_INTERACTIVE=0``, so steerlib shows no progress bars and
  no live widgets in the executed pages (:func:`steerlib.core.runtime.interactive`).
- One home: ``repository`` (url, branch) in ``_config.yml`` feeds the launch and repository buttons and every
  notebook's Colab install cell; an install cell that disagrees is a build warning (an error under ``-W``).
  ``python book/_ext/book_build.py`` rewrites the install cells from ``_config.yml``.
- No JavaScript errors: each page loads each script once.
- Quiet kernels: :class:`BookKernelManager` starts the kernels that execute the notebooks (``run_book.py``) on local
  Unix sockets (IPC) instead of TCP ports, so ipykernel has no unencrypted TCP connection to warn about in the log.
- A bibliography: ``references.bib`` at the book's root (``bibtex_bibfiles`` in ``_config.yml``), cited from the
  pages with ``{cite:p}`` and ``{cite:t}``; :func:`cited_keys` and :func:`bibliography_keys` read both sides.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import nbformat
import yaml
from jupyter_client.manager import AsyncKernelManager
from traitlets import default

ROOT = Path(__file__).resolve().parents[2]  # the book's root, where _config.yml and _toc.yml live
INSTALL_CELL = """# Installs steerlib when this notebook runs on Colab; does nothing elsewhere.
import sys

if "google.colab" in sys.modules:
    %pip install -q "steerlib[book] @ git+{url}@{branch}\""""


def home(root: Path = ROOT) -> tuple[str, str]:
    """The book's public home: ``repository.url`` and ``repository.branch`` of ``_config.yml``."""
    repository = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    return repository["url"], repository["branch"]


def install_cell(root: Path = ROOT) -> str:
    """The source of every notebook's first code cell: install steerlib from the book's home, on Colab only."""
    url, branch = home(root)
    return INSTALL_CELL.format(url=url, branch=branch)


def notebooks(root: Path = ROOT) -> list[Path]:
    """The book's notebooks (run outputs and build folders left out)."""
    skip = {"results", "_build", ".ipynb_checkpoints"}
    return sorted(p for p in (root / "book").rglob("*.ipynb") if not skip & set(p.relative_to(root).parts))


def first_code_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.cell_type == "code")


def stale_install_cells(root: Path = ROOT) -> list[Path]:
    """The notebooks whose first code cell is not :func:`install_cell`."""
    expected = install_cell(root)
    return [p for p in notebooks(root) if first_code_cell(nbformat.read(p, as_version=4)).source != expected]


def write_install_cells(root: Path = ROOT) -> list[Path]:
    """Rewrite the stale install cells from ``_config.yml``; return the notebooks changed."""
    stale = stale_install_cells(root)
    for path in stale:
        nb = nbformat.read(path, as_version=4)
        first_code_cell(nb).source = install_cell(root)
        nbformat.write(nb, path)
    return stale


def mathjax_folder() -> Path:
    """MathJax 3's browser files (``es5``), as installed by the ``django-static-mathjax`` package."""
    spec = importlib.util.find_spec("mathjax")
    folder = Path(spec.origin).parent / "static" / "mathjax" / "es5" if spec and spec.origin else None
    if folder is None or not (folder / "tex-chtml.js").is_file():
        raise RuntimeError(
            "the book serves MathJax from its own files, taken from the django-static-mathjax "
            "package, which is not installed: pip install 'steerlib[book]'"
        )
    return folder


class BookKernelManager(AsyncKernelManager):
    """The kernel manager of the book's notebooks (``run_book.py`` passes it to papermill): the kernel listens on
    local Unix sockets (IPC transport) named ``<tmp>/steerlib-kernel-<random>-<n>`` (removed when it shuts down),
    not on TCP ports, so ipykernel does not warn that its connection is unencrypted. Windows, which has no IPC
    transport, keeps TCP."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc" if os.name == "posix" else "tcp"

    @default("ip")
    def _default_ip(self) -> str:
        if self.transport == "ipc":  # unique per kernel, short enough for a socket path
            return os.path.join(tempfile.gettempdir(), f"steerlib-kernel-{uuid.uuid4().hex[:12]}")
        return super()._ip_default()


FENCE = re.compile(r"^(`{3,}|~{3,})(?!\{).*?^\1", re.M | re.S)  # a fenced code block (not a {directive})
FENCE_LINE = re.compile(r"^(?:`{3,}|~{3,}).*$", re.M)  # a directive's opening or closing line
SPAN = re.compile(r"(\{[\w:-]+\})?(`+)(.+?)\2", re.S)  # inline code, or a role ({name}`text`)
CITE_ROLES = {"{cite}", "{cite:p}", "{cite:t}", "{cite:ps}", "{cite:ts}", "{footcite}", "{footcite:p}", "{footcite:t}"}


def cited_keys(markdown: str) -> list[str]:
    """The bibliography keys that ``markdown`` cites ({cite}, {cite:p}, {cite:t}, ...: several keys comma-separated),
    in order, each once; code (blocks and inline) cites nothing."""
    text = FENCE_LINE.sub(" ", FENCE.sub(" ", markdown))
    groups = [m.group(3) for m in SPAN.finditer(text) if m.group(1) in CITE_ROLES]
    keys = [key.strip() for group in groups for key in group.split(",")]
    return list(dict.fromkeys(k for k in keys if k))


def bibliography_keys(root: Path = ROOT) -> list[str]:
    """The keys of the book's bibliography files (``bibtex_bibfiles`` in ``_config.yml``), in file order."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    keys = []
    for name in config.get("bibtex_bibfiles", []):
        keys += re.findall(r"^@\w+\{([^,\s]+),", (root / name).read_text(), re.M)
    return keys


def _check(app) -> None:
    from sphinx.util import logging

    log = logging.getLogger(__name__)
    if "://" in app.config.mathjax_path:
        log.warning(
            f"mathjax_path={app.config.mathjax_path!r} loads MathJax from the network; the book serves its "
            "own copy: set it to 'mathjax/tex-chtml.js' in _config.yml"
        )
    mathjax_folder()  # fail early, not after executing every chapter
    for path in stale_install_cells(Path(app.srcdir)):
        log.warning(
            f"{path}: the Colab install cell does not match _config.yml's repository (url, branch); "
            "run python book/_ext/book_build.py"
        )


def _copy_mathjax(app, exception) -> None:
    if app.builder.format == "html":
        shutil.copytree(mathjax_folder(), Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def _one_of_each_script(app, pagename, templatename, context, doctree) -> None:
    """Extensions that add an inline script when the sources are read (sphinx-thebe: ``const THEBE_JS_URL = ...``)
    add it again as a second copy (file name None, not ""), and a constant declared twice is a JavaScript error on
    every page: keep the first of each script."""
    seen, scripts = set(), []
    for js in context.get("script_files", []):
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            scripts.append(js)
    context["script_files"] = scripts


# Numbers in a chapter's prose that this run does not compute are marked with one of these roles, e.g.
# {paper}`0.88-0.97`; every other number is glued from the run ({glue:text}`name:.2f`). tests/test_book.py checks it.
NUMBER_ROLES = {
    "paper": "quoted from the dissertation or the paper this chapter reproduces, not computed in this run",
    "diagnostic": "a one-off measurement outside this run (the text says where it comes from)",
    "setting": "a setting of this chapter (its profile), not a result",
}


EXEMPT = [  # spans of prose whose numbers are not results of the run
    r"\$\$.*?\$\$",  # display math
    r"\$[^$\n]*\$",  # inline math
    r"`[^`]*`",  # code, and the text of roles: {glue:text}`...`, {paper}`...`
    r"\]\([^)]*\)",  # link targets
    r"arXiv:\s*\d+\.\d+",
    r"(?:Figs?\.?|Figures?|[Ss]ections?|§§?|[Aa]ppendi(?:x|ces)|App\.|Tables?|Eqs?\.?|Props?\.?|Proposition|"
    r"Theorem|Lemma|Algorithm|[Cc]hapters?|[Pp]arts?)\s*[A-Z]?\d+(?:\.\d+)*"
    r"(?:\s*(?:,|and|or|–|-|to)\s*[A-Z]?\d+(?:\.\d+)*)*",  # references to the dissertation's parts
]
RESULT = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])|(?<![\w.])\d+(?:\.\d+)?\s?%")  # decimals, percentages


def unglued_numbers(markdown: str) -> list[str]:
    """The decimals and percentages of ``markdown`` outside math, code, roles (glued numbers, {paper}, {diagnostic},
    {setting}), link targets and references to figures, sections and appendices: numbers that a chapter's prose
    states without taking them from its run. Each with a little context."""
    text = markdown
    for pattern in EXEMPT:
        text = re.sub(pattern, " ", text, flags=re.S)
    return [text[max(m.start() - 30, 0) : m.end() + 10].replace("\n", " ") for m in RESULT.finditer(text)]


def _number_role(explanation: str):
    """A role that shows its text as it is, with ``explanation`` as the tooltip (an ``<abbr>``)."""
    from docutils import nodes

    def role(name, rawtext, text, lineno, inliner, options=None, content=None):
        return [nodes.abbreviation(rawtext, text, explanation=explanation, classes=[f"number-{name}"])], []

    return role


def setup(app) -> dict:
    os.environ["STEERLIB_INTERACTIVE"] = "0"  # inherited by the notebook kernels this build starts
    for name, explanation in NUMBER_ROLES.items():
        app.add_role(name, _number_role(explanation))
    app.connect("builder-inited", _check)
    app.connect("html-page-context", _one_of_each_script, priority=900)  # after those that add scripts
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    for changed in write_install_cells():
        print(f"rewrote the install cell of {changed.relative_to(ROOT)}")
