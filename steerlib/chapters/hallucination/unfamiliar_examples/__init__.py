"""Chapter 3: unfamiliar finetuning examples steer how a language model hallucinates.

A small Llama is pretrained on the :mod:`~steerlib.worlds.knowledge` corpus, so the familiarity of every person is an
exact mention count, then finetuned in pairs that differ only in the supervision of *unfamiliar* finetuning examples.
The hypothesis: as a test query grows unfamiliar, the prediction defaults to the hedge
``P_hedged = argmin_P Σ_{(x,s) ∈ D_unfamiliar} L(P, s)`` fitted to the unfamiliar finetuning examples only.

Finetuning questions are familiar (at least ``familiar_mentions`` mentions) or unfamiliar (at most
``unfamiliar_mentions``), and every finetuning set is half of each (appendix B.2).

- **gate**: after standard QA finetuning, held-out accuracy is far above chance for often-mentioned people and near
  chance for never-mentioned ones (otherwise "familiarity" would mean nothing here).
- **E1** (Fig 3.3): multiple choice. Model (i): the unfamiliar questions have any answer (A–D); model (ii): only
  unfamiliar questions answered B or C. Same familiar questions.
- **E2** (Fig 3.4): a fifth option E = "I don't know"; from model (i) finetuned to answer E half the time, RL with
  R1 (+2 correct, -3 wrong, -3 abstain: the hedge is a guess) or R2 (+2, -3, 0: the hedge is to abstain), on the
  familiar questions and unfamiliar questions SFT never saw.
- **E3** (Fig 3.1): open QA; standard SFT against SFT whose unfamiliar questions by metric (c) (the standard model's
  NLL of its own answer) are relabelled "I don't know.".
"""

from steerlib.chapters.hallucination.unfamiliar_examples.analysis import SPECS, claims, extra
from steerlib.chapters.hallucination.unfamiliar_examples.experiment import PROFILES, Results, Settings, jobs, run, world
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(
    __name__,
    name="unfamiliar-examples",
    part="hallucination",
    title="Unfamiliar finetuning examples steer hallucinations",
)
