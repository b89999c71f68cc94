"""Chapter 4, section 4.5: pre-memorization accuracy as a tool, for per-example robustness and for data curation.

On the pre-memorization chapter's task and pretrained model (the same cache entry at the same seed and replicate,
:mod:`steerlib.chapters.reasoning.common`), two experiments on problems that tell the pretraining pool's verbs
(:func:`~.experiment.verbs`), each at ``settings.replicates`` independent replicates:

- **Robustness** (Figs 4.6-4.7): runs trained until train accuracy is near 1 are made to open each training
  problem's response with a valid first line that is not the target's, and sample the rest; the accuracy drop of an
  example is compared with its pre-memorization accuracy (H6), against plain train accuracy as a control and a
  noise floor from shuffled accuracies.
- **Data curation** (Algorithm 1, Fig 4.8): for ``rounds`` rounds, train on D and the examples added so far, then
  add ``per_round`` problems similar (same structure, fresh values) to those whose pre-memorization accuracy is below
  t; against i.i.d. new problems, IFD-selected and step-count-selected ones at the same budget (H7).

Every training run is its own cached job (:func:`~.experiment.run_job`); :func:`~.experiment.stage_jobs` lists the
runs of each stage (stage 0: robustness runs and round 0; stage r: one run per method). The claims are in
:mod:`.analysis`, the figures in :mod:`.figures`.
"""

from steerlib.chapters.reasoning.robustness_and_curation.analysis import (
    SPECS,
    claims,
    curves,
    drop_table,
    extra,
    h7_stats,
    low_minus_high,
    measured,
    noise_floors,
    robust_table,
    statistics,
)
from steerlib.chapters.reasoning.robustness_and_curation.experiment import (
    METHODS,
    PROFILES,
    CurationJob,
    Results,
    RobustLog,
    RobustSpec,
    RoundLog,
    Settings,
    jobs,
    run,
    run_job,
    stage_jobs,
    verbs,
)
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(
    __name__,
    name="robustness-and-curation",
    part="reasoning",
    title="Per-example robustness and data curation with pre-memorization accuracy",
)
