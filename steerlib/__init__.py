"""steerlib: metrics and training utilities behind *Steering How Deep Neural Networks Generalize*.

Tools, each package importing only those above it in this list:

- :mod:`steerlib.core`: the chapter protocol, runs, seeds, claims, caching, checks, jobs
- :mod:`steerlib.worlds`: synthetic and real question worlds (made-up people, running totals, geography, hub QA)
- :mod:`steerlib.lm`: a small language-model stack (tokenizers, models, SFT, sampling, scoring, RL, reward heads)
- :mod:`steerlib.measures`: pure metrics and statistics (OCS, divergences, intervals, OOD score, decisions, ...)
- :mod:`steerlib.vision`: image data, shifts, models, ensembles and their training

Above them the chapters (:mod:`steerlib.chapters`, one package each) and the book: :mod:`steerlib.book` (the registry
and the one call, ``execute``), :mod:`steerlib.jobs` (``python -m steerlib.jobs``), :mod:`steerlib.scorecard` and
:mod:`steerlib.performance` (the summary pages), :mod:`steerlib.cache` (``python -m steerlib.cache``: list, verify
and prune the run cache).
"""

__version__ = "0.1.0"
