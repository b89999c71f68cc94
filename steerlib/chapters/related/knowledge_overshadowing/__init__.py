"""Chapter "Hedge or overshadowing? Where wrong answers about rare facts come from" (Zhang et al. 2024; study R3).

Part II says a finetuned model answers unfamiliar queries with an input-independent hedge. Zhang et al. give a
rival account of wrong answers about facts the model *has* seen: a rare fact is overridden by a popular fact that
shares most of its condition (knowledge overshadowing). In a world of made-up-word groups, a tiny Llama is finetuned
on popular and rare facts at several imbalance ratios and shared-condition lengths, with rare exposures and steps
fixed; the claims ask whether the share of rare queries answered with the group's popular answer rises with the
ratio (R3a) and the length (R3b), whether the errors are the group's own popular answer rather than one hedge
(R3c), and whether more rare exposures lower it (R3d), once the balanced control has learned its rare facts
(R3p/gate).

``experiment`` trains and evaluates, ``analysis`` turns the logs into the claims, ``figures`` draws them.
"""

from steerlib.chapters.related.knowledge_overshadowing.analysis import (
    SPECS,
    claims,
    error_breakdown,
    extra,
    mean_curve,
    overshadowed,
    peak_table,
    pilot_table,
    pooled_errors,
    rare_accuracy,
    run_table,
)
from steerlib.chapters.related.knowledge_overshadowing.experiment import PROFILES, Results, RunLog, Settings, jobs, run
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(
    __name__,
    name="knowledge-overshadowing",
    part="related",
    title="Hedge or overshadowing? Where wrong answers about rare facts come from",
)
