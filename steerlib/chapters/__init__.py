"""The book's chapters, one package per chapter, grouped by the book's parts (the registry: :mod:`steerlib.book`).

One name per chapter: the notebook ``book/<part>/<name>.ipynb``, the package ``steerlib.chapters.<part>.<name>``
(hyphens become underscores), the results folder ``results/<name>`` and the run-cache kind ``<name>`` of
whole-chapter entries. Every chapter package has the same files and exports ``CHAPTER``
(:class:`steerlib.core.chapter.Chapter`; checked by ``tests/test_contract.py``):

- ``experiment.py``: a frozen, validated ``Settings``; ``PROFILES`` (``smoke``, ``cpu``, ``paper``); ``Results``;
  ``run(settings, run) -> Results`` and ``jobs(settings, run) -> list[Stage]``;
- ``analysis.py``: ``SPECS`` (the claims table, :class:`steerlib.core.claims.Spec`), ``claims(results)`` and
  ``extra(results)``;
- ``figures.py``: the plots, the only module that imports matplotlib (loaded on demand: ``CHAPTER.figures``).

Chapters import tools (``core``, ``vision``, ``lm``, ``worlds``, ``measures``) and their part's ``common`` module,
never each other; nothing outside ``chapters`` but :mod:`steerlib.book` looks a chapter up.
"""
