"""Chapter "Overconfidence or memorisation? pass@N under cross-entropy and DCO" (Chen et al. 2025; study R4).

Part III says that memorising a training trace ends a run's generalisation. Chen et al. give a rival mechanism:
cross-entropy finetuning breeds overconfidence, so pass@N falls for large N as training goes on, and their Direct
Coverage Optimization (DCO) loss limits confidence. On Part III's own task and pretrained model, the chapter trains
CE and DCO (and a slower CE control) and asks whether pass@16 peaks before pass@1 and falls further (R4a), whether
the model grows confidently wrong (R4b), whether DCO helps pass@16 (R4c), and whether the memorized fraction and
pass@16 name the same checkpoints (R4d). DCO here is the loss on the target trace's probability, not the paper's
chain-of-thought variant DCOa.

``experiment`` trains and samples, ``analysis`` turns the logs into the claims, ``figures`` draws them.
"""

from steerlib.chapters.related.passn_overconfidence.analysis import SPECS, claims, extra, final_table, pass_curve
from steerlib.chapters.related.passn_overconfidence.experiment import PROFILES, Results, RunLog, Settings, jobs, run
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(
    __name__,
    name="passn-overconfidence",
    part="related",
    title="Overconfidence or memorisation? pass@N under cross-entropy and DCO",
)
