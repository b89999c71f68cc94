"""Chapter "Why predictions revert" (dissertation section 2.4, appendices A.1, A.3, A.4; Figs 2.4, A.1-A.5).

The dissertation's mechanism: OOD inputs give representations that overlap less with the (low-rank) weight
matrices, so ||W_i phi_i(x)|| shrinks layer after layer, and the output falls back on the *accumulated constants*
g_{k+1}(sigma(b_k)), which approximate the OCS. This chapter measures each step on trained models
(:mod:`steerlib.vision.representations`), reproduces the two counterexamples of appendix A.1 (iterated FGSM; a
Gaussian-NLL regressor under impulse noise vs blur) and runs the theory's simulation
(:mod:`steerlib.measures.homogeneous`).

Every model is trained with Part I's shared recipe and set-up (:mod:`steerlib.chapters.extrapolation.common`), one
ensemble member per replicate of the run, so the CNNs of the reversion chapter come from the run cache.

Modules: ``experiment`` (settings, training, measurements), ``counterexamples`` (appendix A.1), ``analysis``
(statistics and claims), ``figures``.
"""

from steerlib.chapters.extrapolation.mechanism.analysis import SPECS, bias_agreement, claims, extra, statistics, summary
from steerlib.chapters.extrapolation.mechanism.experiment import PROFILES, Results, Settings, jobs, run
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(__name__, name="mechanism", part="extrapolation", title="Why predictions revert")
