"""Chapter "Predictions revert to the optimal constant solution" (dissertation section 2.3, Figs 2.2-2.3).

For every dataset x loss, train an ensemble of independent replicates on the clean training split, then evaluate it on
the clean test split and on every shift at five severities. Each evaluation set gets an OOD score (how separable it
is from the training inputs) and each (set, replicate) a distance between the predictions and the loss's OCS. The
hypothesis: the more OOD a set, the closer the predictions to the OCS.

``experiment`` trains and evaluates, ``analysis`` turns the table into curves, rank statistics and claims, and
``figures`` draws Figs 2.2-2.3.
"""

from steerlib.chapters.extrapolation.reversion.analysis import SPECS, claims, curves, extra, rank_table
from steerlib.chapters.extrapolation.reversion.experiment import PROFILES, Focus, FocusKey, Results, Settings, jobs, run
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(
    __name__, name="reversion", part="extrapolation", title="Predictions revert to the optimal constant solution"
)
