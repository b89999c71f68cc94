"""The book: its chapters in order, and the one call that runs any of them.

``CHAPTERS`` maps each chapter's name (its notebook's stem) to its package, in the book's order; each package exports
``CHAPTER`` (:class:`~steerlib.core.chapter.Chapter`). :func:`chapter` imports one on demand (a chapter's imports
are heavy: transformers, datasets), :func:`execute` runs it::

    from steerlib.book import execute
    ex = execute("reversion", "smoke", seed=0)        # settings overrides as keywords: execute(..., arch="mlp")
    ex.results, ex.claims, ex.table(), ex.figures.plot_reversion(ex.results)

``_toc.yml``, the Makefile's notebook list and this registry name the same chapters (tests/test_contract.py).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from steerlib.core.chapter import Chapter, Execution
from steerlib.core.chapter import execute as execute_chapter
from steerlib.core.checks import check_choice, check_type

CHAPTERS = {  # notebook stem -> package, in the book's order
    "reversion": "steerlib.chapters.extrapolation.reversion",
    "mechanism": "steerlib.chapters.extrapolation.mechanism",
    "cautious-decisions": "steerlib.chapters.extrapolation.cautious_decisions",
    "unfamiliar-examples": "steerlib.chapters.hallucination.unfamiliar_examples",
    "conservative-rewards": "steerlib.chapters.hallucination.conservative_rewards",
    "real-facts": "steerlib.chapters.hallucination.real_facts",
    "pre-memorization": "steerlib.chapters.reasoning.pre_memorization",
    "robustness-and-curation": "steerlib.chapters.reasoning.robustness_and_curation",
    "simplicity-bias": "steerlib.chapters.related.simplicity_bias",
    "xor-grokking": "steerlib.chapters.related.xor_grokking",
    "passn-overconfidence": "steerlib.chapters.related.passn_overconfidence",
    "knowledge-overshadowing": "steerlib.chapters.related.knowledge_overshadowing",
}


def chapter(name: str) -> Chapter:
    """The chapter called ``name`` (a key of :data:`CHAPTERS`)."""
    check_choice("chapter", name, CHAPTERS)
    return importlib.import_module(CHAPTERS[name]).CHAPTER


def part_of(name: str) -> str:
    """The part (folder of ``book/``) of chapter ``name``, read off its package path without importing it."""
    check_choice("chapter", name, CHAPTERS)
    return CHAPTERS[name].split(".")[-2]


def notebook(name: str) -> Path:
    """The notebook of chapter ``name``, relative to the book's root."""
    return Path("book") / part_of(name) / f"{name}.ipynb"


def execute(name: str | Chapter, profile: str | None = None, seed: int = 0, **kwargs: Any) -> Execution:
    """Run the chapter ``name`` (or a :class:`~steerlib.core.chapter.Chapter`) at ``profile`` and ``seed``: the one
    call every caller uses (:func:`steerlib.core.chapter.execute`; keywords: ``device``, ``cache``, ``out_dir``,
    ``record``, and overrides of the chapter's settings)."""
    check_type("name", name, (str, Chapter), "a chapter's name (a key of steerlib.book.CHAPTERS) or a Chapter")
    return execute_chapter(chapter(name) if isinstance(name, str) else name, profile, seed, **kwargs)
