"""Chapter "Cautious decisions from the OCS": selective classification with reward prediction (section 2.5).

A decision problem (a :class:`~steerlib.measures.decisions.RewardTable`: answer a class or abstain) is solved four
ways:

- ``reward``: regress the reward of all K+1 actions with MSE and take the argmax. Its OCS is the mean reward
  vector, whose argmax abstains for the default table, so reversion to the OCS should make it abstain OOD.
- ``ce``: a cross-entropy classifier answering its argmax class. Its OCS is the label marginal, which names a
  class: it never abstains, in distribution or out.
- ``calibrated``: the same classifier with per-class temperatures fitted on the clean test split (held-out data
  from the *training* distribution; no shifted data), abstaining when max p < the table's threshold. An honest,
  non-oracle baseline.
- ``oracle``: the same rule with temperatures fitted on each *evaluation* set, labels included (section 2.5's upper
  bound; it sees what no deployed method could).

Each is scored by its abstain ratio and mean reward on the clean test split and on every shift at five severities.
A second, milder table (whose OCS answers instead of abstaining) shows that the reward table steers OOD behaviour.

``experiment`` trains and scores, ``analysis`` builds the curves, rank statistics and claims, ``figures`` draws
Figs 2.5-2.7 and the steering figure.
"""

from steerlib.chapters.extrapolation.cautious_decisions.analysis import SPECS, claims, extra, rank_table, summary
from steerlib.chapters.extrapolation.cautious_decisions.experiment import (
    METHODS,
    PROFILES,
    Focus,
    FocusKey,
    Results,
    Settings,
    decision_problems,
    jobs,
    run,
)
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(
    __name__, name="cautious-decisions", part="extrapolation", title="Cautious decisions from the OCS"
)
