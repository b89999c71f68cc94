"""The book's chapters, one package per chapter, grouped by the book's parts.

One name per chapter: the notebook ``book/<part>/<name>.ipynb``, the package ``steerlib.chapters.<part>.<name>``
(hyphens become underscores), the results folder ``results/<name>`` and the run-cache kind ``<name>`` of
whole-chapter entries. Every chapter package follows one protocol (checked by ``tests/test_contract.py``):

- ``PROFILES``: ``{"smoke", "cpu", "paper"}`` -> a frozen, validated ``Settings`` dataclass;
- ``run(settings, run) -> Results``: the experiment; ``run`` is a :class:`steerlib.core.chapter.Run` (seed, device,
  output folder and a :class:`~steerlib.core.cache.RunCache`); ``Results`` is a dataclass of arrays, DataFrames
  and typed records;
- ``claims(results) -> list[Claim]`` and ``extra(results) -> dict`` (the numbers kept in ``metrics.json``);
- figures in the package's ``figures`` module, the only place that imports matplotlib.

Chapters import tools (``core``, ``vision``, ``lm``, ``worlds``, ``measures``), never each other; nothing outside
``chapters`` imports a chapter.
"""

CHAPTERS = {  # notebook stem -> package, in the book's order
    "reversion": "steerlib.chapters.extrapolation.reversion",
    "mechanism": "steerlib.chapters.extrapolation.mechanism",
    "cautious-decisions": "steerlib.chapters.extrapolation.cautious_decisions",
    "unfamiliar-examples": "steerlib.chapters.hallucination.unfamiliar_examples",
    "conservative-rewards": "steerlib.chapters.hallucination.conservative_rewards",
    "real-facts": "steerlib.chapters.hallucination.real_facts",
    "pre-memorization": "steerlib.chapters.reasoning.pre_memorization",
    "robustness-and-curation": "steerlib.chapters.reasoning.robustness_and_curation",
}
