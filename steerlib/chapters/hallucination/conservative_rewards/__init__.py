"""Chapter 3, section 3.6: conservative reward models make RL factuality finetuning safer.

A small Llama is pretrained on the :mod:`~steerlib.worlds.knowledge` corpus of six-attribute biographies, so every
person's familiarity is an exact mention count, then finetuned to write long-form profiles ("Write a profile of
<name>." -> one fact clause per attribute, stopping after any clause). An exact checker (the world's fact decomposer
and verifier) gives the ground-truth reward, +2 per true fact and -3 per false or unparsed one.

- **Reward models**: the SFT model's backbone, frozen, with a trained per-fact true/false head; reward =
  Σ_facts (+2 p - 3 (1 - p)).
  The *standard* RM learns from an independent generator that is mostly right about everyone (the dissertation's
  GPT-3.5), the *conservative* RM from the SFT model's own samples; same prompts, same number of responses, same
  backbone, labels from the exact checker.
- **Policies**: SFT; RL from SFT with the standard RM, with the conservative RM, and two controls: the exact
  +2/-3 reward (oracle) and a reward that counts true facts only.
- **Evaluation** on held-out people of every mention bin: true and false facts per response, fraction true, the
  reward models' bias (predicted - true reward of SFT samples), example generations (Figs 3.5-3.9, claims C6-C13).
"""

from steerlib.chapters.hallucination.conservative_rewards.analysis import SPECS, claims, examples, extra
from steerlib.chapters.hallucination.conservative_rewards.experiment import (
    PROFILES,
    Results,
    Settings,
    jobs,
    run,
    world,
)
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(
    __name__,
    name="conservative-rewards",
    part="hallucination",
    title="Conservative reward models make RL factuality finetuning safer",
)
