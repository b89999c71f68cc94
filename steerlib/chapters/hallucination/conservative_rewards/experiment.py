"""The conservative-rewards experiment: settings and profiles, the typed :class:`Results`, and :func:`run`
(pretraining, long-form SFT, the two reward models, RL with each reward, and the evaluation on held-out people).

Every random draw comes from the run's streams (:mod:`steerlib.core.seeds`): the world from ``world``, the model's
and the reward heads' initialisation from ``init``, the SFT/reward-model/RL people, the SFT targets' lengths and the
independent generator's responses from ``data``, the replayed documents and every SFT and reward-model batch order
from ``order``, the SFT model's samples for the conservative reward model and the RL rollouts from ``sampling``, and
the evaluation's samples and balanced clauses from ``eval``.

RL uses :func:`steerlib.lm.rl.train_reinforce` (REINFORCE with a leave-one-out baseline and a KL penalty, the loop
the unfamiliar-examples chapter uses); :mod:`steerlib.lm.rl` records why it was kept over TRL's RLOO trainer
(``benchmarks/bench_rl.py``: same result at equal steps, 1.2x less CPU time).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch
from datasets import Dataset, concatenate_datasets

from steerlib.chapters.hallucination import common
from steerlib.core.chapter import Run, check_run, replicated
from steerlib.core.checks import (
    check_choice,
    check_choices,
    check_nonempty,
    check_range,
    check_same_length,
    check_type,
)
from steerlib.core.jobs import Job, Stage, at_replicates, per_replicate, results_stage
from steerlib.core.seeds import substream
from steerlib.lm.base import BEYOND, BaseModelConfig, pretraining_scale
from steerlib.lm.models import SMOLLM2
from steerlib.lm.reward import FactHead, encode_facts, fact_probs
from steerlib.lm.rl import RLConfig, train_reinforce
from steerlib.lm.sampling import SAMPLER, sample
from steerlib.lm.sft import SFTConfig, train_sft
from steerlib.lm.tokenizer import pad_id, tokenize_sft
from steerlib.worlds.knowledge import (
    FALSE,
    INVALID,
    LONG_ATTRIBUTES,
    PROFILE_PROMPT,
    TRUE,
    KnowledgeWorld,
    WorldConfig,
    clause,
    decompose,
    profile_examples,
    values_of,
    verify,
)

REWARD_MODELS = ("standard", "conservative")  # trained on the independent generator's / the SFT model's responses
REWARDS = (*REWARD_MODELS, "oracle", "count")  # RL rewards: the two reward models, the exact checker, true facts
POLICIES = ("sft", *REWARDS)  # the SFT model and one RL model per reward
FACT_REWARD = {TRUE: 2.0, FALSE: -3.0, INVALID: -3.0}  # ground truth per clause; an unparsed clause counts as false

VERSIONS = {"sampler": SAMPLER}  # the results hold sampled tokens: a new sampler recomputes them


@dataclasses.dataclass(frozen=True)
class Settings:
    world: WorldConfig = WorldConfig(
        mention_bins=(0, 1, 3, 10, 30, 100),
        people_per_bin=(400, 80, 80, 80, 80, 80),
        test_per_bin=30,
        n_first=110,
        n_last=110,
    )
    attributes: int = 6  # people have the first this many attributes of LONG_ATTRIBUTES
    max_facts: int = 6  # SFT targets and the standard generator's responses hold 1..max_facts facts, uniformly
    base: BaseModelConfig = BaseModelConfig()  # the tiny model (or a pretrained causal LM) pretrained on the corpus
    pretrain: SFTConfig = SFTConfig(steps=900, batch_size=64, lr=2e-3)
    sft: SFTConfig = SFTConfig(steps=150, batch_size=64, lr=5e-4)
    sft_copies: int = 3  # SFT targets per SFT person, each with its own number of facts
    replay: float = 1.0  # pretraining documents mixed into SFT per SFT example
    rm: SFTConfig = SFTConfig(steps=200, batch_size=64, lr=5e-4)  # each reward model's training
    rm_samples: int = 3  # labelled responses per reward-model prompt, from each generator
    generator_accuracy: float = 0.8  # the standard generator states each fact truly with this probability
    rl: RLConfig = RLConfig(steps=120, prompts_per_step=16, samples_per_prompt=4, lr=1e-4, kl_coef=0.5)
    rewards: tuple[str, ...] = REWARDS  # the RL runs (names of REWARDS)
    max_new_tokens: int = 48  # enough for max_facts clauses and the end token
    eval_samples: int = 4  # sampled responses per held-out person and policy
    replicates: int = 3  # independent replicates of the whole experiment; the claims' values are their means

    def __post_init__(self):
        for name, cls in (
            ("world", WorldConfig),
            ("base", BaseModelConfig),
            ("pretrain", SFTConfig),
            ("sft", SFTConfig),
            ("rm", SFTConfig),
            ("rl", RLConfig),
        ):
            check_type(name, getattr(self, name), cls, f"a {cls.__name__}")
        check_range("attributes", self.attributes, 1, len(LONG_ATTRIBUTES), integer=True)
        check_range("max_facts", self.max_facts, 1, self.attributes, integer=True)
        for name in ("sft_copies", "rm_samples", "max_new_tokens", "eval_samples", "replicates"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_range("replay", self.replay, 0)
        check_range("generator_accuracy", self.generator_accuracy, 0, 1)
        check_choices("rewards", check_nonempty("rewards", self.rewards), REWARDS)
        if min(self.world.people_per_bin) - self.world.test_per_bin < 2:
            raise ValueError(
                f"world.people_per_bin={self.world.people_per_bin} leaves fewer than 2 finetuning people "
                "in a bin: SFT and the reward models need one each"
            )


PROFILES = {
    "smoke": Settings(
        world=WorldConfig(mention_bins=(0, 3, 30), people_per_bin=(60, 24, 24), test_per_bin=8, n_first=30, n_last=30),
        attributes=4,
        max_facts=4,
        base=BaseModelConfig(d_model=64),
        pretrain=SFTConfig(steps=120, batch_size=32, lr=3e-3, checkpoint_every=60),
        sft=SFTConfig(steps=40, batch_size=32, lr=2e-3),
        sft_copies=2,
        rm=SFTConfig(steps=30, batch_size=32, lr=2e-3),
        rm_samples=2,
        rl=RLConfig(steps=6, prompts_per_step=8, samples_per_prompt=2, lr=3e-4, kl_coef=0.1),
        max_new_tokens=32,
        eval_samples=2,
        replicates=1,
    ),
    "cpu": Settings(),
    "paper": Settings(
        world=WorldConfig(
            mention_bins=(0, 1, 3, 10, 30, 100, 300),
            people_per_bin=(2000, 600, 400, 400, 400, 400, 400),
            test_per_bin=100,
            n_first=300,
            n_last=300,
        ),
        base=BaseModelConfig(model=SMOLLM2),
        pretrain=SFTConfig(steps=3000, batch_size=64, lr=1e-4),
        sft=SFTConfig(steps=1000, batch_size=64, lr=3e-5),
        rm=SFTConfig(steps=1000, batch_size=64, lr=3e-5),
        rm_samples=4,
        rl=RLConfig(steps=400, prompts_per_step=64, samples_per_prompt=4, lr=5e-6, kl_coef=0.1),
        max_new_tokens=120,
        eval_samples=8,
    ),
}

# The claims and the reward-model gates along the pretraining's scale axis (points past cpu's run as jobs). It goes on
# to 32: the SFT model's gate (gate/sft) holds only from factor 1 up, a trend needs five judged points spanning 16x in
# compute, and widths rounded to a multiple of eight make factor 16 only 15.8x.
SCALE = pretraining_scale(("C*", "gate/rm-*"), common.DOCUMENT_WORDS, beyond=(*BEYOND, 16.0, 32.0))


# ----------------------------------------------------------------------------------------------- the results


@dataclasses.dataclass
class PolicyEval:
    """One policy's sampled responses to the held-out prompts (``Results.prompts`` order) and, per response, its
    numbers of true, false and unparsed clauses by the exact checker."""

    n_true: np.ndarray
    n_false: np.ndarray
    n_invalid: np.ndarray
    texts: list[str]


@dataclasses.dataclass
class RewardModelEval:
    """One reward model: its predicted reward of each SFT response to the held-out prompts, and its probability
    that each clause of the balanced per-fact test is true (``Results.balanced_truth`` order)."""

    predicted: np.ndarray
    balanced_prob: np.ndarray


@dataclasses.dataclass
class OwnReward:
    """An RL run's own reward of fresh samples on its training prompts (``eval_samples`` per person): per response,
    the person's id, the reward of the RL policy's response and of the SFT model's."""

    person: np.ndarray
    rl: np.ndarray
    sft: np.ndarray


@dataclasses.dataclass
class FactLabels:
    """A reward model's training facts: each fact's person's mention count and its label (1 true, 0 false)."""

    mentions: np.ndarray
    label: np.ndarray


@dataclasses.dataclass
class Results:
    """One replicate's results; ``others`` holds the same experiment at replicates 1, 2, ... (their own ``others``
    empty): the claims' values are means over all of them."""

    replicate: int
    bins: tuple[int, ...]
    max_facts: int
    pretrain_loss: list[float]
    person: np.ndarray  # per held-out response: the person's id
    mentions: np.ndarray  # ... and mention count
    prompts: list[str]
    policies: dict[str, PolicyEval]  # "sft" and each RL reward
    reward_models: dict[str, RewardModelEval]  # "standard", "conservative"
    balanced_mentions: np.ndarray  # the balanced per-fact test: each clause's person's mention count
    balanced_truth: np.ndarray  # ... and whether the clause is true
    rm_data: dict[str, FactLabels]  # each reward model's training labels
    rl_history: dict[str, list[dict[str, float]]]  # per RL reward: per-step mean reward and KL
    own_reward: dict[str, OwnReward]  # per RL reward: its reward of the RL policy's and SFT's fresh samples
    seconds: dict[str, float]
    others: list[Results] = dataclasses.field(default_factory=list)


# ----------------------------------------------------------------------------------------------- pure pieces


def true_reward(verdicts: np.ndarray) -> float:
    """Ground-truth reward of one response: ``Σ_clauses FACT_REWARD[verdict]`` (+2 true, -3 false or unparsed)."""
    return float(sum(FACT_REWARD[int(v)] for v in np.asarray(verdicts).ravel()))


def count_reward(verdicts: np.ndarray) -> float:
    """The "count the true facts" reward: +1 per true clause, nothing for false or unparsed ones."""
    return float((np.asarray(verdicts) == TRUE).sum())


def model_reward(probs: np.ndarray, n_invalid: int) -> float:
    """A reward model's reward: ``Σ_j [2 p_j - 3 (1 - p_j)]`` over the parsed clauses, whose truth the head
    predicts with probability ``p_j``, plus -3 per clause the decomposer cannot parse (as in the true reward)."""
    p = np.asarray(probs, dtype=float)
    check_range("n_invalid", n_invalid, 0, integer=True)
    return float((FACT_REWARD[TRUE] * p + FACT_REWARD[FALSE] * (1 - p)).sum() + FACT_REWARD[INVALID] * n_invalid)


def standard_responses(
    people: list[dict], attributes: tuple[str, ...], max_facts: int, accuracy: float, rng: np.random.Generator
) -> list[str]:
    """The independent generator: for each person, 1..max_facts clauses (uniformly) in attribute order, each stating
    the true value with probability ``accuracy`` and otherwise another value of the attribute, uniformly; it knows
    every person equally well, whatever their familiarity (the dissertation's GPT-3.5)."""
    check_range("accuracy", accuracy, 0, 1)
    check_range("max_facts", max_facts, 1, len(attributes), integer=True)
    out = []
    for p in people:
        facts = []
        for a in attributes[: rng.integers(1, max_facts + 1)]:
            wrong = [v for v in values_of(a) if v != p[a]]
            value = p[a] if rng.random() < accuracy else wrong[rng.integers(len(wrong))]
            facts.append(clause(a, p["name"], value))
        out.append(" ".join(facts))
    return out


def label_facts(texts: list[str], people: list[dict]) -> tuple[list[list[str]], list[list[int]], np.ndarray]:
    """Decompose and verify each response: its parsed clauses, their labels (1 true, 0 false) and the number of
    clauses that did not parse (the exact checker's labels, what a reward model learns from)."""
    clauses, labels, invalid = [], [], []
    for text, person in zip(texts, people):
        facts = decompose(text)
        verdicts = verify(facts, person)
        clauses.append([f.clause for f, v in zip(facts, verdicts) if v != INVALID])
        labels.append([int(v) for v in verdicts if v != INVALID])
        invalid.append(int((verdicts == INVALID).sum()))
    return clauses, labels, np.array(invalid)


@dataclasses.dataclass
class RewardModelData:
    """A reward model's training set: one response per prompt, its parsed clauses and their checked labels."""

    prompts: list[str]
    responses: list[str]
    clauses: list[list[str]]
    labels: list[list[int]]


def reward_model_data(people: list[dict], generate: Callable[[list[str]], list[str]]) -> RewardModelData:
    """The prompts about ``people`` (one per entry), one response each from ``generate(prompts)``, labelled by the
    exact checker. The standard and the conservative reward model's data come from this one function and differ
    only in ``generate``."""
    prompts = [PROFILE_PROMPT.format(name=p["name"]) for p in people]
    responses = generate(prompts)
    check_same_length("people, generated responses", people, responses)
    clauses, labels, _ = label_facts(responses, people)
    return RewardModelData(prompts, responses, clauses, labels)


def checker_reward(name: str, texts: list[str], people: list[dict]) -> torch.Tensor:
    """The exact checker's reward of each response about the matching person: ``"oracle"`` = :func:`true_reward`
    (+2 / -3 per fact), ``"count"`` = :func:`count_reward` (+1 per true fact)."""
    check_choice("name", name, ("oracle", "count"))
    check_same_length("texts, people", texts, people)
    score = true_reward if name == "oracle" else count_reward
    return torch.tensor([score(verify(decompose(t), p)) for t, p in zip(texts, people)])


def split_people(mentions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random half of each mention bin's people (rounded down) for SFT: True = SFT, False = reward models and RL,
    so the reward models and RL see people the SFT model never trained on."""
    sft = np.zeros(len(mentions), dtype=bool)
    for m in np.unique(mentions):
        idx = rng.permutation(np.flatnonzero(mentions == m))
        sft[idx[: len(idx) // 2]] = True
    return sft


# ----------------------------------------------------------------------------------------------- the experiment


def world(settings: Settings, run: Run) -> KnowledgeWorld:
    """The made-up world of ``run`` (its replicate's ``world`` stream), its people with the first
    ``settings.attributes`` of :data:`~steerlib.worlds.knowledge.LONG_ATTRIBUTES`."""
    return common.world(settings.world, run, LONG_ATTRIBUTES[: settings.attributes])


class Experiment:
    """The world, the pretrained model and what every later stage shares: tokenizer, cache keys, device."""

    def __init__(self, settings: Settings, run: Run):
        self.s, self.run, self.device, self.cache = settings, run, run.device, run.cache
        self.attributes = LONG_ATTRIBUTES[: settings.attributes]
        self.world, base = common.pretrained_world(
            settings.world, self.attributes, settings.base, settings.pretrain, run
        )
        self.texts = list(self.world.corpus["text"])
        self.base, self.tok, self.pretrain_loss, self.key = base.model, base.tokenizer, base.losses, base.key

    def sft(self, examples: Dataset) -> tuple[torch.nn.Module, dict]:
        """A copy of the pretrained model finetuned on ``examples`` plus replayed documents; with its cache key."""
        model = copy.deepcopy(self.base)
        replay = common.replay(
            self.texts, int(self.s.replay * len(examples)), substream(self.run.stream("order"), "sft", "replay")
        )
        data = concatenate_datasets([examples.select_columns(["prompt", "response"]), replay])
        key = {
            **self.key,
            "stage": "sft",
            "replay": self.s.replay,
            "data": list(examples["prompt"]) + list(examples["response"]),
        }
        cfg = dataclasses.replace(self.s.sft, seed=substream(self.run.stream("order"), "sft"))
        train_sft(model, tokenize_sft(data, self.tok), cfg, pad_id(self.tok), self.device, self.cache, key, desc="sft")
        return model.eval(), {**key, "sft": cfg}

    def reward_model(
        self,
        name: str,
        sft: tuple[torch.nn.Module, dict],
        prompts: list[str],
        clauses: list[list[str]],
        labels: list[list[int]],
    ) -> tuple[FactHead, dict]:
        """The SFT model's backbone, frozen, with a per-fact head trained on the labelled clauses (responses with
        none dropped); with its cache key.

        The backbone is the SFT model, not the pretrained one: after the profile prompt, a format pretraining never
        showed, the pretrained model's log-probability ranks a familiar person's true value above a wrong one for
        only 65% of the facts at 100 mentions (seed 1; 100% in its pretraining format), the SFT model's for 97%.
        It is frozen because finetuning it on the labelled responses memorised the reward model's training people
        (training accuracy 1.0 in every bin, never-mentioned people included, where nothing is knowable) and
        lost what it could read: held-out accuracy at 100 mentions fell from 0.90 before training to 0.70 (seed 1,
        SFT backbone; 0.69 with the pretrained one). Only the head (``w``, ``b``, ``a``) is trained."""
        keep = [i for i, c in enumerate(clauses) if c]
        ids, targets = encode_facts(
            self.tok, [prompts[i] for i in keep], [clauses[i] for i in keep], [labels[i] for i in keep]
        )
        torch.manual_seed(substream(self.run.stream("init"), f"rm-{name}"))  # the head's initial weights
        model = FactHead(copy.deepcopy(sft[0])).to(self.device)
        model.lm.requires_grad_(False)
        key = {
            "init": sft[1],
            "stage": f"rm-{name}",
            "train": "head",
            "prompts": prompts,
            "clauses": clauses,
            "labels": labels,
        }
        cfg = dataclasses.replace(self.s.rm, seed=substream(self.run.stream("order"), f"rm-{name}"))
        train_sft(
            model,
            Dataset.from_dict({"input_ids": ids, "labels": targets}),
            cfg,
            pad_id(self.tok),
            self.device,
            self.cache,
            key,
            desc=f"rm-{name}",
        )
        return model.eval(), {**key, "rm": cfg}

    def reward(
        self, name: str, rm: tuple[FactHead, dict] | None, prompts: list[str], people: list[dict], texts: list[str]
    ) -> torch.Tensor:
        """Reward ``name`` of each response ``texts[i]`` to ``prompts[i]`` about ``people[i]``: reward model ``rm``'s
        :func:`model_reward`, or without one the exact checker's (:func:`checker_reward`)."""
        if rm is None:
            return checker_reward(name, texts, people)
        clauses, _, invalid = label_facts(texts, people)
        probs = fact_probs(rm[0], self.tok, prompts, clauses)
        return torch.tensor([model_reward(p, int(n)) for p, n in zip(probs, invalid)])

    def sample(self, model, prompts: list[str], seed: int) -> list[str]:
        return sample(model, self.tok, prompts, self.s.max_new_tokens, temperature=1.0, seed=seed).texts

    def reinforce(
        self,
        name: str,
        sft: tuple[torch.nn.Module, dict],
        prompts: list[str],
        people: list[dict],
        rm: tuple[FactHead, dict] | None,
    ) -> tuple[torch.nn.Module, list[dict[str, float]]]:
        """A copy of the SFT model trained with RL on ``prompts`` (about ``people``) to maximise reward ``name``."""
        model = copy.deepcopy(sft[0])

        def reward_fn(idx: torch.Tensor, texts: list[str]) -> torch.Tensor:
            return self.reward(name, rm, [prompts[i] for i in idx.tolist()], [people[i] for i in idx.tolist()], texts)

        key = {"init": sft[1], "stage": f"rl-{name}", "prompts": prompts, "rm": rm[1] if rm else None}
        cfg = dataclasses.replace(
            self.s.rl, seed=substream(self.run.stream("sampling"), f"rl-{name}"), max_new_tokens=self.s.max_new_tokens
        )
        history = train_reinforce(
            model, self.tok, prompts, reward_fn, cfg, device=self.device, cache=self.cache, key=key, desc=f"rl-{name}"
        )
        return model.eval(), history


@dataclasses.dataclass
class Plan:
    """The SFT and reward-model people and data, drawn from the run's ``data`` stream (no model needed): a random
    half of each mention bin's finetuning people for SFT, the other half for the reward models and RL."""

    sft: Dataset  # SFT targets: every SFT person sft_copies times, each with a random number (1..max_facts) of facts
    rl_rows: list[dict]  # the reward-model and RL people
    rm_people: list[dict]  # each of them rm_samples times: the people of the reward models' responses
    standard: RewardModelData  # the independent generator's responses about rm_people, labelled


def draw_plan(ex: Experiment) -> Plan:
    """The run's :class:`Plan`, every draw from its ``data`` stream."""
    s, rng = ex.s, ex.run.rng("data")
    finetune = ex.world.split("finetune")
    is_sft = split_people(np.array(finetune["mentions"]), rng)
    sft_people, rl_people = finetune.select(np.flatnonzero(is_sft)), finetune.select(np.flatnonzero(~is_sft))
    people = sft_people.select(np.repeat(np.arange(len(sft_people)), s.sft_copies))
    sft = profile_examples(people, rng.integers(1, s.max_facts + 1, len(people)).tolist(), ex.attributes)
    rl_rows = list(rl_people)
    rm_people = [p for p in rl_rows for _ in range(s.rm_samples)]
    standard = reward_model_data(
        rm_people, lambda prompts: standard_responses(rm_people, ex.attributes, s.max_facts, s.generator_accuracy, rng)
    )
    return Plan(sft, rl_rows, rm_people, standard)


# ------------------------------------------------------------------------------- the runs, each one job


def _rm_data(ex: Experiment, plan: Plan, name: str, sft: torch.nn.Module) -> RewardModelData:
    """Reward model ``name``'s data: the same prompts and number of responses, from the independent generator
    (standard) or the SFT model's own samples (conservative); labels from the exact checker."""
    if name == "standard":
        return plan.standard
    seed = substream(ex.run.stream("sampling"), "rm-data")
    return reward_model_data(plan.rm_people, lambda prompts: ex.sample(sft, prompts, seed))


def _reward_model(ex: Experiment, plan: Plan, name: str, sft: tuple[torch.nn.Module, dict]) -> tuple[FactHead, dict]:
    data = _rm_data(ex, plan, name, sft[0])
    return ex.reward_model(name, sft, data.prompts, data.clauses, data.labels)


def _rl(
    ex: Experiment, plan: Plan, name: str, sft: tuple[torch.nn.Module, dict], rm: tuple[FactHead, dict] | None
) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """RL from the SFT model with reward ``name`` on the reward-model people's prompts."""
    prompts = [PROFILE_PROMPT.format(name=p["name"]) for p in plan.rl_rows]
    return ex.reinforce(name, sft, prompts, plan.rl_rows, rm)


def _train(settings: Settings, run: Run, stage: str) -> None:
    """One job: the run ``stage`` (``sft``, ``rm-<reward model>`` or ``rl-<reward>``), the runs it starts from read
    from the cache."""
    ex = Experiment(settings, run)
    plan = draw_plan(ex)
    sft = ex.sft(plan.sft)
    kind, _, name = stage.partition("-")
    if kind == "rm":
        _reward_model(ex, plan, name, sft)
    elif kind == "rl":
        _rl(ex, plan, name, sft, _reward_model(ex, plan, name, sft) if name in REWARD_MODELS else None)


def jobs(settings: Settings, run: Run) -> list[Stage]:
    """Each replicate's pretraining; SFT; both reward models (on the SFT model's backbone); every RL run (from the
    SFT model); then each replicate's evaluation, the results the notebook reads."""
    stages = {
        "sft": ["sft"],
        "reward-models": [f"rm-{name}" for name in REWARD_MODELS if name in settings.rewards],
        "rl": [f"rl-{name}" for name in settings.rewards],
    }
    return [
        per_replicate("pretrain", Experiment, settings, run),
        *[
            Stage(
                stage,
                tuple(
                    Job(f"replicate {r.replicate} {job}", _train, (s, r, job))
                    for s, r in at_replicates(settings, run)
                    for job in names
                ),
            )
            for stage, names in stages.items()
        ],
        results_stage(settings, run, "conservative-rewards", _experiment, Results, VERSIONS),
    ]


def run(settings: Settings, run: Run) -> Results:
    """Pretrain, SFT, train both reward models and every RL policy, and evaluate them on held-out people at
    each of ``settings.replicates`` independent replicates of ``run``; each replicate's results are cached as a
    whole."""
    check_run(settings, Settings, run)
    return replicated(run, settings, "conservative-rewards", _experiment, Results, VERSIONS)


def _evaluate(ex: Experiment, model, prompts: list[str], people: list[dict], seed: int) -> PolicyEval:
    texts = ex.sample(model, prompts, seed)
    verdicts = [verify(decompose(t), p) for t, p in zip(texts, people)]
    return PolicyEval(
        n_true=np.array([(v == TRUE).sum() for v in verdicts]),
        n_false=np.array([(v == FALSE).sum() for v in verdicts]),
        n_invalid=np.array([(v == INVALID).sum() for v in verdicts]),
        texts=texts,
    )


def _balanced_clauses(
    people: list[dict], attributes: tuple[str, ...], rng: np.random.Generator
) -> tuple[list[str], list[list[str]], list[list[int]]]:
    """For each person one true and one false clause per attribute (a random wrong value), each clause scored
    alone after the person's prompt: a balanced per-fact test of a reward model (chance 0.5)."""
    prompts, clauses, truth = [], [], []
    for p in people:
        for a in attributes:
            wrong = [v for v in values_of(a) if v != p[a]]
            for value, y in ((p[a], 1), (wrong[rng.integers(len(wrong))], 0)):
                prompts.append(PROFILE_PROMPT.format(name=p["name"]))
                clauses.append([clause(a, p["name"], value)])
                truth.append([y])
    return prompts, clauses, truth


def _experiment(settings: Settings, run: Run) -> Results:
    s, seconds, t0 = settings, {}, time.time()
    ex = Experiment(s, run)
    seconds["pretrain"] = time.time() - t0
    plan = draw_plan(ex)
    test = ex.world.split("test")

    t = time.time()
    sft = ex.sft(plan.sft)
    seconds["sft"] = time.time() - t

    t = time.time()
    rms, rm_data = {}, {}
    for name in REWARD_MODELS:
        data = _rm_data(ex, plan, name, sft[0])
        rm_data[name] = FactLabels(
            mentions=np.array([p["mentions"] for p, ls in zip(plan.rm_people, data.labels) for _ in ls]),
            label=np.array([y for ls in data.labels for y in ls]),
        )
        if name in s.rewards:
            rms[name] = ex.reward_model(name, sft, data.prompts, data.clauses, data.labels)
    seconds["reward_models"] = time.time() - t

    t = time.time()
    policies, histories = {"sft": sft[0]}, {}
    for name in s.rewards:
        policies[name], histories[name] = _rl(ex, plan, name, sft, rms.get(name))
    seconds["rl"] = time.time() - t

    # Evaluation on held-out people: eval_samples responses each, from every policy (the same sampling seed), then
    # the balanced clauses, then fresh samples for each RL run's own reward: all from the run's eval stream.
    draws = run.rng("eval")
    held_out_seed, own_seed = (int(v) for v in draws.integers(0, 2**32, size=2))
    t = time.time()
    test_rows = [p for p in test for _ in range(s.eval_samples)]
    prompts = [PROFILE_PROMPT.format(name=p["name"]) for p in test_rows]
    evals = {name: _evaluate(ex, model, prompts, test_rows, held_out_seed) for name, model in policies.items()}
    sft_clauses, _, sft_invalid = label_facts(evals["sft"].texts, test_rows)
    b_prompts, b_clauses, b_truth = _balanced_clauses(list(test), ex.attributes, draws)
    rm_evals = {}
    for name, (rm, _) in rms.items():
        probs = fact_probs(rm, ex.tok, prompts, sft_clauses)
        rm_evals[name] = RewardModelEval(
            predicted=np.array([model_reward(p, int(n)) for p, n in zip(probs, sft_invalid)]),
            balanced_prob=np.concatenate(fact_probs(rm, ex.tok, b_prompts, b_clauses)),
        )
    # Each RL run's own objective: its reward of fresh samples on its training prompts, RL policy and SFT model.
    rl_rows = [p for p in plan.rl_rows for _ in range(s.eval_samples)]
    rl_prompts = [PROFILE_PROMPT.format(name=p["name"]) for p in rl_rows]
    sft_texts = ex.sample(sft[0], rl_prompts, own_seed)
    objective = {
        name: OwnReward(
            person=np.array([p["id"] for p in rl_rows]),
            rl=ex.reward(
                name, rms.get(name), rl_prompts, rl_rows, ex.sample(policies[name], rl_prompts, own_seed)
            ).numpy(),
            sft=ex.reward(name, rms.get(name), rl_prompts, rl_rows, sft_texts).numpy(),
        )
        for name in s.rewards
    }
    seconds["evaluation"] = time.time() - t
    seconds["total"] = time.time() - t0
    b_mentions = np.array([p["mentions"] for p in test for _ in ex.attributes for _ in range(2)])
    return Results(
        replicate=run.replicate,
        bins=tuple(s.world.mention_bins),
        max_facts=s.max_facts,
        pretrain_loss=ex.pretrain_loss,
        person=np.array([p["id"] for p in test_rows]),
        mentions=np.array([p["mentions"] for p in test_rows]),
        prompts=prompts,
        policies=evals,
        reward_models=rm_evals,
        balanced_mentions=b_mentions,
        balanced_truth=np.array([y for ys in b_truth for y in ys]),
        rm_data=rm_data,
        rl_history=histories,
        own_reward=objective,
        seconds=seconds,
    )
