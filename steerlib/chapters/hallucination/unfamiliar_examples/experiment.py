"""The unfamiliar-examples experiment: settings and profiles, the typed :class:`Results`, and :func:`run`
(pretraining, the gate check, the familiarity metrics and E1–E3).

Every random draw comes from the run's streams (:mod:`steerlib.core.seeds`): the world from ``world``, the model's
initialisation from ``init``, the finetuning sets, the "I don't know" targets and the RL questions from ``data``, the
replayed documents and every SFT batch order from ``order``, the RL rollouts from ``sampling``, and the greedy
answers of the evaluation (which draw nothing) from ``eval``."""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import torch
from datasets import Dataset, concatenate_datasets

from steerlib.chapters.hallucination import common
from steerlib.core.chapter import Run, check_run, replicated
from steerlib.core.checks import check_range, check_type
from steerlib.core.jobs import Job, Stage, at_replicates, per_replicate, results_stage
from steerlib.core.seeds import substream
from steerlib.lm.base import BaseModelConfig
from steerlib.lm.models import SMOLLM2, add_lora
from steerlib.lm.rl import RLConfig, train_reinforce
from steerlib.lm.sampling import SAMPLER, sample
from steerlib.lm.scoring import choice_logprobs
from steerlib.lm.sft import SFTConfig, train_sft
from steerlib.lm.tokenizer import pad_id, tokenize_sft
from steerlib.measures.familiarity import option_nll, top_answer_nll
from steerlib.worlds.knowledge import (
    ATTRIBUTES,
    IDK,
    KnowledgeWorld,
    WorldConfig,
    cloze_prompts,
    grade,
    mc_examples,
    namesake_votes,
    qa_examples,
)

REWARDS = {"R1": (2.0, -3.0, -3.0), "R2": (2.0, -3.0, 0.0)}  # rewards of (correct, wrong, abstain)

VERSIONS = {"sampler": SAMPLER}  # the results hold sampled tokens: a new sampler recomputes them


@dataclasses.dataclass(frozen=True)
class Settings:
    world: WorldConfig = WorldConfig(distinct_names=True)  # no one shares a name word with a person the corpus
    # describes: names carry no cue to attributes the model can know (C3c checks that predictions follow none)
    base: BaseModelConfig = BaseModelConfig()  # the tiny model (or a pretrained causal LM) pretrained on the corpus
    lora_rank: int = 0  # > 0: finetuning trains LoRA adapters of this rank (pretraining always trains all weights)
    finetune_only: str = ""  # finetuning and RL train parameters whose names contain this ("": all)
    pretrain: SFTConfig = SFTConfig(steps=900, batch_size=64, lr=2e-3)
    finetune: SFTConfig = SFTConfig(steps=400, batch_size=64, lr=5e-4)
    replay: float = 1.0  # pretraining documents mixed into finetuning per finetuning example
    rl: RLConfig = RLConfig(steps=100, prompts_per_step=32, samples_per_prompt=4, lr=1.5e-4)
    abstain_rate: float = 0.5  # E2: fraction of the initial SFT model's targets that are "I don't know"
    familiar_mentions: int = 10  # finetuning questions about people with at least this many mentions are familiar,
    unfamiliar_mentions: int = 1  # with at most this many unfamiliar; the rest are not finetuned on
    unfamiliar_option_nll: float = 0.7  # metric (b) above this counts as unfamiliar (reported; appendix B.2)
    unfamiliar_answer_nll: float = 0.05  # metric (c) above this: unfamiliar, relabelled in E3 (thesis: 0.045)
    max_new_tokens: int = 10  # enough for the longest answer sentence and the end token
    replicates: int = 3  # independent replicates of the whole experiment; the claims' values are their means

    def __post_init__(self):
        for name, cls in (
            ("world", WorldConfig),
            ("base", BaseModelConfig),
            ("pretrain", SFTConfig),
            ("finetune", SFTConfig),
            ("rl", RLConfig),
        ):
            check_type(name, getattr(self, name), cls, f"a {cls.__name__}")
        check_range("lora_rank", self.lora_rank, 0, integer=True)
        check_type("finetune_only", self.finetune_only, str, "a substring of parameter names ('' for all)")
        check_range("replay", self.replay, 0)
        check_range("abstain_rate", self.abstain_rate, 0, 1)
        check_range("replicates", self.replicates, 1, integer=True)
        check_range("familiar_mentions", self.familiar_mentions, 0, integer=True)
        check_range("unfamiliar_mentions", self.unfamiliar_mentions, 0, self.familiar_mentions - 1, integer=True)
        check_range("unfamiliar_option_nll", self.unfamiliar_option_nll, 0)
        check_range("unfamiliar_answer_nll", self.unfamiliar_answer_nll, 0)
        check_range("max_new_tokens", self.max_new_tokens, 1, integer=True)


PROFILES = {
    "smoke": Settings(
        world=WorldConfig(
            mention_bins=(0, 3, 30),
            people_per_bin=(300, 30, 30),
            test_per_bin=15,
            n_first=60,
            n_last=60,
            distinct_names=True,
        ),
        base=BaseModelConfig(d_model=64),
        pretrain=SFTConfig(steps=200, batch_size=64, lr=3e-3, checkpoint_every=50),
        finetune=SFTConfig(steps=120, batch_size=64, lr=2e-3),
        rl=RLConfig(steps=25, prompts_per_step=32, samples_per_prompt=4, lr=3e-4),
        replicates=1,
    ),
    "cpu": Settings(),
    "paper": Settings(
        world=WorldConfig(
            mention_bins=(0, 1, 3, 10, 30, 100, 300),
            people_per_bin=(2000, 800, 400, 400, 400, 400, 400),
            test_per_bin=100,
            n_first=300,
            n_last=300,
            distinct_names=True,
        ),
        base=BaseModelConfig(model=SMOLLM2),
        pretrain=SFTConfig(steps=3000, batch_size=64, lr=1e-4),
        finetune=SFTConfig(steps=1000, batch_size=64, lr=3e-5),
        rl=RLConfig(steps=300, prompts_per_step=64, samples_per_prompt=4, lr=5e-6),
    ),
}


# ----------------------------------------------------------------------------------------------- the results


@dataclasses.dataclass
class Familiarity:
    """The finetuning questions' familiarity: the MC questions' mention counts, metric (b) and whether (b) calls them
    unfamiliar; E3's QA questions' mention counts, metric (c) and whether (c) relabelled them."""

    mentions: np.ndarray
    option_nll: np.ndarray
    unfamiliar: np.ndarray
    qa_mentions: np.ndarray
    answer_nll: np.ndarray
    relabelled: np.ndarray


@dataclasses.dataclass
class Gate:
    """Held-out QA after standard SFT: each question's mention count, attribute and grade (0 false, 1 correct, 2
    "I don't know")."""

    mentions: np.ndarray
    attribute: np.ndarray
    grade: np.ndarray


@dataclasses.dataclass
class E1:
    """Held-out MC questions (mentions, attribute, true label) with (N, 4) option probabilities of models (i) and
    (ii), the label marginals of their finetuning sets, metric (b) of the pretrained model and the (N, 4) votes of
    each question's namesakes (:func:`~steerlib.worlds.knowledge.namesake_votes`)."""

    mentions: np.ndarray
    attribute: np.ndarray
    label: np.ndarray
    probs_i: np.ndarray
    probs_ii: np.ndarray
    marginal_i: np.ndarray
    marginal_ii: np.ndarray
    option_nll: np.ndarray
    namesakes: np.ndarray


@dataclasses.dataclass
class RLRun:
    """One RL model of E2: (N, 5) option probabilities on the held-out questions and the per-step training log."""

    probs: np.ndarray
    history: list[dict[str, float]]


@dataclasses.dataclass
class E2:
    """Held-out MC questions with E = "I don't know": (N, 5) option probabilities of the SFT start, and the RL model
    of each reward by its name ("R1", "R2")."""

    mentions: np.ndarray
    label: np.ndarray
    probs_sft: np.ndarray
    rl: dict[str, RLRun]


@dataclasses.dataclass
class E3:
    """Held-out QA: each question's mention count and its grade under standard and relabelled SFT."""

    mentions: np.ndarray
    grade_standard: np.ndarray
    grade_relabelled: np.ndarray


@dataclasses.dataclass
class Results:
    """One replicate's results; ``others`` holds the same experiment at replicates 1, 2, ... (their own ``others``
    empty): the claims' values are means over all of them."""

    replicate: int
    bins: tuple[int, ...]
    pretrain_loss: list[float]
    familiarity: Familiarity
    gate: Gate
    e1: E1
    e2: E2
    e3: E3
    seconds: dict[str, float]
    others: list[Results] = dataclasses.field(default_factory=list)


# ----------------------------------------------------------------------------------------------- the experiment


def world(settings: Settings, run: Run) -> KnowledgeWorld:
    """The made-up world of ``run`` (its replicate's ``world`` stream): people, facts, mentions and the corpus."""
    return common.world(settings.world, run)


def _spaced(options) -> list[list[str]]:
    """Options as responses are written (after a space), which matters for subword tokenizers."""
    return [[" " + o for o in row] for row in options]


def _finetuning_sets(
    familiar: np.ndarray, unfamiliar: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """E1's finetuning sets (question indices), half familiar and half unfamiliar (appendix B.2).

    Both hold the same n familiar questions (repeated or subsampled to n) plus n unfamiliar ones, where n is the
    number of unfamiliar questions whose answer is B or C: (ii) takes exactly those, (i) n unfamiliar questions of
    any answer.
    """
    unfamiliar_bc = np.flatnonzero(unfamiliar & np.isin(labels, (1, 2)))
    n = len(unfamiliar_bc)
    familiar = np.resize(rng.permutation(np.flatnonzero(familiar)), n)
    unfamiliar_any = rng.choice(np.flatnonzero(unfamiliar), n, replace=False)
    return np.sort(np.concatenate([familiar, unfamiliar_any])), np.sort(np.concatenate([familiar, unfamiliar_bc]))


def _rl_prompts(
    set_i: np.ndarray, familiar: np.ndarray, unfamiliar: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """E2's RL questions, half familiar, half unfamiliar: the familiar questions of set (i), repeated, and every
    unfamiliar question that the SFT model did not finetune on, so RL cannot reward answers memorised in SFT."""
    fresh = np.setdiff1d(np.flatnonzero(unfamiliar), set_i)
    known = np.unique(set_i[familiar[set_i]])
    return np.sort(np.concatenate([np.resize(rng.permutation(known), len(fresh)), fresh]))


class _Experiment:
    """The pretrained model plus what every finetuning stage shares: tokenizer, replay data, cache keys, device."""

    def __init__(self, settings: Settings, run: Run):
        self.s, self.run, self.device, self.cache = settings, run, run.device, run.cache
        self.world, base = common.pretrained_world(
            settings.world, tuple(ATTRIBUTES), settings.base, settings.pretrain, run
        )
        self.texts = list(self.world.corpus["text"])
        self.base, self.tok, self.pretrain_loss, self.key = base.model, base.tokenizer, base.losses, base.key

    def finetune(
        self, stage: str, examples: Dataset, init: tuple[torch.nn.Module, dict] | None = None
    ) -> tuple[torch.nn.Module, dict]:
        """A copy of ``init`` = (model, its cache key), by default the pretrained model, finetuned on ``examples``
        plus replayed documents; returns the model and its cache key."""
        model = self._trainable(copy.deepcopy(init[0] if init else self.base))
        replay = common.replay(
            self.texts, int(self.s.replay * len(examples)), substream(self.run.stream("order"), stage, "replay")
        )
        data = concatenate_datasets([examples.select_columns(["prompt", "response"]), replay])
        key = {
            **self.key,
            "pretrain": self.s.pretrain,
            "replay": self.s.replay,
            "lora": self.s.lora_rank,
            "only": self.s.finetune_only,
            "init": init[1] if init else None,
            "stage": stage,
            "data": list(examples["prompt"]) + list(examples["response"]),
        }
        cfg = dataclasses.replace(self.s.finetune, seed=substream(self.run.stream("order"), stage))
        train_sft(model, tokenize_sft(data, self.tok), cfg, pad_id(self.tok), self.device, self.cache, key, desc=stage)
        return self._merged(model).eval(), {**key, "finetune": cfg}

    def reinforce(
        self, stage: str, init, prompts: list[str], answers: list[str], rewards: tuple[float, ...], init_key: dict
    ) -> tuple[torch.nn.Module, list[dict[str, float]]]:
        """A copy of ``init`` (cache key ``init_key``) trained with :func:`~steerlib.lm.rl.train_reinforce` to
        maximise ``rewards`` = (correct, wrong, abstain) of the graded responses."""
        model = self._trainable(copy.deepcopy(init))

        def reward_fn(idx: torch.Tensor, texts: list[str]) -> torch.Tensor:
            g = grade(texts, [answers[i] for i in idx])
            return torch.tensor(np.select([g == 1, g == 2], [rewards[0], rewards[2]], rewards[1]))

        key = {"init": init_key, "stage": stage, "rewards": rewards, "prompts": prompts, "answers": answers}
        cfg = dataclasses.replace(
            self.s.rl, seed=substream(self.run.stream("sampling"), stage), max_new_tokens=self.s.max_new_tokens
        )
        history = train_reinforce(
            model, self.tok, prompts, reward_fn, cfg, device=self.device, cache=self.cache, key=key, desc=stage
        )
        return self._merged(model).eval(), history

    def _trainable(self, model):
        """Freeze all but the parameters named like ``finetune_only``; then add LoRA adapters if asked."""
        for name, p in model.named_parameters():
            p.requires_grad_(self.s.finetune_only in name)
        return add_lora(model, self.s.lora_rank) if self.s.lora_rank else model

    @staticmethod
    def _merged(model):
        return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model

    def choice_probs(self, model, data: Dataset) -> np.ndarray:
        return choice_logprobs(model, self.tok, list(data["prompt"]), _spaced(data["options"])).exp().numpy()

    def answers(self, model, data: Dataset) -> np.ndarray:
        texts = sample(
            model, self.tok, list(data["prompt"]), self.s.max_new_tokens, temperature=0.0, seed=self.run.stream("eval")
        ).texts
        return grade(texts, list(data["response"]))


@dataclasses.dataclass
class _Plan:
    """Every finetuning and RL run's data, drawn from the world with the run's ``data`` stream (no model needed)."""

    ft_mc: Dataset  # the finetuning people's multiple-choice questions
    labels: np.ndarray  # their answers' indices
    mentions: np.ndarray  # their people's mention counts
    set_i: np.ndarray  # E1's finetuning sets (question indices)
    set_ii: np.ndarray
    e2_sft: Dataset  # E2's SFT data: set (i) with a random abstain_rate of the targets "I don't know"
    rl: Dataset  # E2's RL questions
    qa: Dataset  # E3's QA finetuning questions (those of set (i))


def _plan(ex: _Experiment) -> _Plan:
    """E2 and E3 finetune on the questions of E1's set (i), so every finetuning set is half familiar, half
    unfamiliar: exact mention counts split the finetuning questions into familiar and unfamiliar ones (metric (a))."""
    s, rng = ex.s, ex.run.rng("data")
    people = ex.world.split("finetune")
    ft_mc = mc_examples(people)
    labels, mentions = np.array(ft_mc["label"]), np.array(ft_mc["mentions"])
    familiar, unfamiliar = mentions >= s.familiar_mentions, mentions <= s.unfamiliar_mentions
    set_i, set_ii = _finetuning_sets(familiar, unfamiliar, labels, rng)
    ft_e = mc_examples(people, abstain=True)
    abstain = rng.random(len(set_i)) < s.abstain_rate
    e2_sft = ft_e.select(set_i).map(lambda r, i: {"response": " " + IDK} if abstain[i] else {}, with_indices=True)
    rl = ft_e.select(_rl_prompts(set_i, familiar, unfamiliar, rng))
    return _Plan(ft_mc, labels, mentions, set_i, set_ii, e2_sft, rl, qa_examples(people).select(set_i))


# ------------------------------------------------------------------------------- the runs, each one job


def _e1(ex: _Experiment, plan: _Plan, stage: str) -> tuple[torch.nn.Module, dict]:
    """E1: the same familiar questions; unfamiliar questions of any answer (e1-any: set (i)) or only those answered
    B or C (e1-BC: set (ii))."""
    return ex.finetune(stage, plan.ft_mc.select(plan.set_i if stage == "e1-any" else plan.set_ii))


def _e2_sft(ex: _Experiment, plan: _Plan, model_i: tuple[torch.nn.Module, dict]) -> tuple[torch.nn.Module, dict]:
    """E2's SFT: model (i) finetuned further to answer E on a random half of its questions."""
    return ex.finetune("e2-sft", plan.e2_sft, init=model_i)


def _e2_rl(
    ex: _Experiment, plan: _Plan, name: str, sft: tuple[torch.nn.Module, dict]
) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """E2's RL with reward ``name`` (R1 or R2) from the SFT model."""
    return ex.reinforce(
        f"e2-{name}", sft[0], list(plan.rl["prompt"]), list(plan.rl["answer"]), REWARDS[name], init_key=sft[1]
    )


def _e3_standard(ex: _Experiment, plan: _Plan) -> tuple[torch.nn.Module, dict]:
    """E3's standard QA finetuning."""
    return ex.finetune("e3-standard", plan.qa)


def _e3_relabelled(
    ex: _Experiment, plan: _Plan, standard: torch.nn.Module
) -> tuple[torch.nn.Module, torch.Tensor, np.ndarray]:
    """E3's relabelling: the questions the standard model finds unfamiliar (metric (c), the NLL of its greedy
    answer, above ``unfamiliar_answer_nll``) answered "I don't know"; returns the model, the NLLs and the mask."""
    _, answer_nll = top_answer_nll(standard, ex.tok, list(plan.qa["prompt"]), ex.s.max_new_tokens)
    relabel = answer_nll.numpy() > ex.s.unfamiliar_answer_nll
    idk = plan.qa.map(lambda r, i: {"response": f" {IDK}."} if relabel[i] else {}, with_indices=True)
    return ex.finetune("e3-relabelled", idk)[0], answer_nll, relabel


STAGES = {
    "finetune-1": ("e1-any", "e1-BC", "e3-standard"),
    "finetune-2": ("e2-sft", "e3-relabelled"),
    "rl": tuple(f"e2-{name}" for name in REWARDS),
}  # each run after the runs its data come from


def _train(settings: Settings, run: Run, stage: str) -> None:
    """One job: the run ``stage`` (a name in :data:`STAGES`), the runs it starts from read from the cache."""
    ex = _Experiment(settings, run)
    plan = _plan(ex)
    if stage in ("e1-any", "e1-BC"):
        _e1(ex, plan, stage)
    elif stage == "e2-sft":
        _e2_sft(ex, plan, _e1(ex, plan, "e1-any"))
    elif stage == "e3-standard":
        _e3_standard(ex, plan)
    elif stage == "e3-relabelled":
        _e3_relabelled(ex, plan, _e3_standard(ex, plan)[0])
    else:
        _e2_rl(ex, plan, stage.removeprefix("e2-"), _e2_sft(ex, plan, _e1(ex, plan, "e1-any")))


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """Each replicate's pretraining; E1's two finetunings and E3's standard one; E2's SFT (from model (i)) and E3's
    relabelled finetuning (its data from the standard model); E2's RL runs (from E2's SFT model); then each replicate's
    evaluation, the results the notebook reads."""
    runs = [
        Stage(
            name,
            tuple(
                Job(f"replicate {r.replicate} {stage}", _train, (s, r, stage))
                for s, r in at_replicates(settings, run)
                for stage in stages
            ),
        )
        for name, stages in STAGES.items()
    ]
    return [
        per_replicate("pretrain", _Experiment, settings, run),
        *runs,
        results_stage(settings, run, "unfamiliar-examples", _experiment, Results, VERSIONS),
    ]


def run(settings: Settings, run: Run) -> Results:
    """Pretrain, run the gate check and E1–E3 at each of ``settings.replicates`` independent replicates of ``run``,
    and return every per-example result; each replicate's results are cached as a whole under the chapter's name."""
    check_run(settings, Settings, run)
    return replicated(run, settings, "unfamiliar-examples", _experiment, Results, VERSIONS)


def _experiment(settings: Settings, run: Run) -> Results:
    seconds, t0 = {}, time.time()
    ex = _Experiment(settings, run)
    seconds["pretrain"] = time.time() - t0
    plan = _plan(ex)
    test_people = ex.world.split("test")

    # Metric (b), the pretrained model's NLL of the correct option, is computed and reported alongside.
    t = time.time()
    ft_mc, test_mc, labels = plan.ft_mc, mc_examples(test_people), plan.labels
    option_nll_ft = option_nll(
        ex.base, ex.tok, cloze_prompts(ft_mc), _spaced(ft_mc["options"]), labels, eos=False
    ).numpy()
    seconds["familiarity"] = time.time() - t

    t = time.time()
    model_i, model_ii = _e1(ex, plan, "e1-any"), _e1(ex, plan, "e1-BC")
    test_labels = np.array(test_mc["label"])
    e1 = E1(
        mentions=np.array(test_mc["mentions"]),
        attribute=np.array(test_mc["attribute"]),
        label=test_labels,
        probs_i=ex.choice_probs(model_i[0], test_mc),
        probs_ii=ex.choice_probs(model_ii[0], test_mc),
        marginal_i=np.bincount(labels[plan.set_i], minlength=4) / len(plan.set_i),
        marginal_ii=np.bincount(labels[plan.set_ii], minlength=4) / len(plan.set_ii),
        option_nll=option_nll(
            ex.base, ex.tok, cloze_prompts(test_mc), _spaced(test_mc["options"]), test_labels, eos=False
        ).numpy(),
        namesakes=namesake_votes(ex.world.people, test_mc, min_mentions=0),
    )
    seconds["e1"] = time.time() - t

    t = time.time()
    sft = _e2_sft(ex, plan, model_i)
    test_e = mc_examples(test_people, abstain=True)
    probs_sft = ex.choice_probs(sft[0], test_e)
    rl_runs = {}
    for name in REWARDS:
        model_rl, history = _e2_rl(ex, plan, name, sft)
        rl_runs[name] = RLRun(ex.choice_probs(model_rl, test_e), history)
    e2 = E2(mentions=np.array(test_e["mentions"]), label=np.array(test_e["label"]), probs_sft=probs_sft, rl=rl_runs)
    del model_i, model_ii, sft
    seconds["e2"] = time.time() - t

    # E3: standard QA finetuning vs relabelling the questions it finds unfamiliar (metric (c)) "I don't know".
    t = time.time()
    test_qa = qa_examples(test_people)
    model_std, _ = _e3_standard(ex, plan)
    model_idk, answer_nll, relabel = _e3_relabelled(ex, plan, model_std)
    grade_std = ex.answers(model_std, test_qa)
    e3 = E3(
        mentions=np.array(test_qa["mentions"]),
        grade_standard=grade_std,
        grade_relabelled=ex.answers(model_idk, test_qa),
    )
    gate = Gate(mentions=e3.mentions, attribute=np.array(test_qa["attribute"]), grade=grade_std)
    familiarity = Familiarity(
        mentions=plan.mentions,
        option_nll=option_nll_ft,
        unfamiliar=option_nll_ft > settings.unfamiliar_option_nll,
        qa_mentions=np.array(plan.qa["mentions"]),
        answer_nll=answer_nll.numpy(),
        relabelled=relabel,
    )
    seconds["e3"] = time.time() - t
    seconds["total"] = time.time() - t0
    return Results(
        run.replicate, tuple(settings.world.mention_bins), ex.pretrain_loss, familiarity, gate, e1, e2, e3, seconds
    )
