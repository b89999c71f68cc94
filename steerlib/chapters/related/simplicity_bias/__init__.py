"""Chapter "When predictions do not revert: simplicity bias meets the OCS" (Shah et al. 2020; study R1).

Part I says that as inputs leave the training distribution, predictions revert to the optimal constant solution,
and that a reward model's cautious policy can use it. Simplicity bias predicts a shift that breaks a network while
every input coordinate stays inside its training marginal: on LMS-5 data (one linear coordinate S and 49 five-slab
coordinates S^c, each alone fully predictive, randomly rotated) a net learns only S, so permuting S across test
points drops it to chance. The claims ask whether it does (R1a, R1b for the ensemble), whether the classifier stays
as far from the OCS as on clean data (R1c), and whether the cautious policy then fails silently while a shift that
the net's feature does see (S in its unseen gap) makes it abstain (R1d).

``experiment`` trains and evaluates, ``analysis`` turns the results into the claims, ``figures`` draws them.
"""

from steerlib.chapters.related.simplicity_bias.analysis import SPECS, accuracy_table, claims, extra
from steerlib.chapters.related.simplicity_bias.experiment import (
    PROFILES,
    SETS,
    Results,
    Settings,
    jobs,
    make_sets,
    run,
)
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(
    __name__,
    name="simplicity-bias",
    part="related",
    title="When predictions do not revert: simplicity bias meets the OCS",
)
