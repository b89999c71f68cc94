"""The core: what every chapter and tool stands on. It imports nothing else from steerlib.

- :mod:`~steerlib.core.chapter`: ``Chapter`` (a chapter as one value), ``Run``, ``execute`` (the one call that runs a
  chapter), ``replicated`` (independent replicates of a whole experiment)
- :mod:`~steerlib.core.seeds`: the one seeding path: named random streams from (seed, replicate, name)
- :mod:`~steerlib.core.claims`: ``Spec`` (a claim fixed before the run), ``Measured``, ``Claim``, verdicts
- :mod:`~steerlib.core.profiles`: the smoke / cpu / paper profiles
- :mod:`~steerlib.core.cache`: ``RunCache``, runs cached as plain data under a hash of their configuration
- :mod:`~steerlib.core.jobs`: training runs as picklable jobs in stages, run back to back or in worker processes
- :mod:`~steerlib.core.record`: a run's ``metrics.json``
- :mod:`~steerlib.core.checks`: the input checks every function uses (errors name the parameter and what is allowed)
- :mod:`~steerlib.core.runtime`: device, threads, progress bars, loading from the Hugging Face hub offline
- :mod:`~steerlib.core.figures`: save and show a figure; a slider of pre-drawn frames that moves without a kernel
"""
