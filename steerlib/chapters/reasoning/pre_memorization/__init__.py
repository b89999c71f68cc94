"""Chapter 4: pre-memorization train accuracy predicts test accuracy.

A small causal LM is "pretrained" on running-total word problems (:mod:`steerlib.worlds.running_totals`) whose
chain-of-thought traces are drawn at random, then finetuned in a grid of runs on a small set whose targets fix one
trace per problem: learning rates over three orders of magnitude, a number of passes over the data, and data
fractions with the step count matched to ``matched_epochs`` full passes (appendix C.2). At log-spaced checkpoints
every run logs, per example, the sampled accuracy (k samples at temperature T) of train and test problems, the
perplexity of each train example's target trace, and whether correct samples used another trace; plus the prior
metrics of appendix C.3 (gradient variance, distance from initialisation, greedy-response confidence for ATC).

Each run is an independent cached job (:func:`~.experiment.train_run`), so a cluster can dispatch the grid
(``python -m steerlib.jobs pre-memorization --help``) and a re-run resumes where it stopped; :func:`run` runs the
grid at each of ``settings.replicates`` independent replicates. The analysis (:func:`analyse`, computed once) and
the claims are in :mod:`.analysis` on top of :mod:`steerlib.measures.premem`; the figures are in :mod:`.figures`.
"""

from steerlib.chapters.reasoning.pre_memorization.analysis import (
    PRIORS,
    SPECS,
    Analysis,
    analyse,
    claims,
    extra,
    measured,
    statistics,
)
from steerlib.chapters.reasoning.pre_memorization.experiment import (
    PROFILES,
    Results,
    RunLog,
    RunSpec,
    Settings,
    grid,
    jobs,
    run,
)
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(
    __name__, name="pre-memorization", part="reasoning", title="Pre-memorization train accuracy predicts test accuracy"
)
