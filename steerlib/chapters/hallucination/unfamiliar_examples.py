"""Chapter 3: unfamiliar finetuning examples steer how a language model hallucinates.

A small Llama is pretrained on the :mod:`~steerlib.knowledge_world` corpus, so the familiarity of every person is an
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
from __future__ import annotations

import copy
import dataclasses
import hashlib
import time
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from datasets import Dataset, concatenate_datasets

from steerlib.core.cache import RunCache
from steerlib.core.checks import check_range
from steerlib.core.claims import Claim
from steerlib.core.runtime import pick_device
from steerlib.lm.models import SMOLLM2, add_lora, build_model, load_causal_lm, tiny_config
from steerlib.lm.rl import RLConfig, train_reinforce
from steerlib.lm.sampling import sample
from steerlib.lm.scoring import choice_logprobs
from steerlib.lm.sft import SFTConfig, train_sft
from steerlib.lm.tokenizer import pad_id, tokenize_sft, word_tokenizer
from steerlib.measures.familiarity import option_nll, top_answer_nll
from steerlib.worlds.knowledge import (
    ATTRIBUTES,
    IDK,
    LETTERS,
    KnowledgeWorld,
    WorldConfig,
    cloze_prompts,
    grade,
    make_world,
    mc_examples,
    qa_examples,
    vocabulary,
)

REWARDS = {"R1": (2.0, -3.0, -3.0), "R2": (2.0, -3.0, 0.0)}  # rewards of (correct, wrong, abstain)
GRADES = ("false", "correct", "I don't know")  # knowledge_world.grade codes 0, 1, 2


@dataclasses.dataclass(frozen=True)
class Settings:
    world: WorldConfig = WorldConfig()
    model: str = "tiny"  # "tiny" (built from a config) or a pretrained causal LM name, folder or hub id
    arch: str = "llama"  # the tiny model's architecture, width, depth and heads
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
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

    def __post_init__(self):
        check_range("replay", self.replay, 0)
        check_range("abstain_rate", self.abstain_rate, 0, 1)
        check_range("lora_rank", self.lora_rank, 0)


PROFILES = {
    "smoke": Settings(world=WorldConfig(mention_bins=(0, 3, 30), people_per_bin=(300, 30, 30), test_per_bin=15,
                                        n_first=20, n_last=20),
                      d_model=64, pretrain=SFTConfig(steps=200, batch_size=64, lr=3e-3),
                      finetune=SFTConfig(steps=120, batch_size=64, lr=2e-3),
                      rl=RLConfig(steps=25, prompts_per_step=32, samples_per_prompt=4, lr=3e-4)),
    "cpu": Settings(),
    "paper": Settings(world=WorldConfig(mention_bins=(0, 1, 3, 10, 30, 100, 300),
                                        people_per_bin=(2000, 800, 400, 400, 400, 400, 400), test_per_bin=100,
                                        n_first=80, n_last=80),
                      model=SMOLLM2, pretrain=SFTConfig(steps=3000, batch_size=64, lr=1e-4),
                      finetune=SFTConfig(steps=1000, batch_size=64, lr=3e-5),
                      rl=RLConfig(steps=300, prompts_per_step=64, samples_per_prompt=4, lr=5e-6)),
}


@dataclasses.dataclass
class Results:
    bins: tuple[int, ...]
    pretrain_loss: list[float]
    familiarity: dict[str, np.ndarray]  # finetuning questions: mentions, metric (b); E3's: mentions, (c), relabelled
    gate: dict[str, np.ndarray]  # test QA after standard SFT: mentions, attribute, grade
    e1: dict[str, Any]  # test MC: mentions, label, probs_i, probs_ii (N, 4); finetuning label marginals
    e2: dict[str, Any]  # test MC + abstain: mentions, label, probs_sft, probs_R1, probs_R2 (N, 5); RL histories
    e3: dict[str, np.ndarray]  # test QA: mentions, grade_standard, grade_relabelled
    seconds: dict[str, float]


# ----------------------------------------------------------------------------------------------- the experiment


def _sft_rows(prompts: list[str], responses: list[str]) -> Dataset:
    return Dataset.from_dict({"prompt": prompts, "response": responses})


def _replay(world: KnowledgeWorld, n: int, seed: int) -> Dataset:
    """``n`` pretraining documents (empty prompt: the loss covers the whole document)."""
    idx = np.random.default_rng(seed).integers(len(world.corpus), size=n)
    return _sft_rows([""] * n, [" " + t for t in world.corpus.select(idx)["text"]])


def _spaced(options) -> list[list[str]]:
    """Options as responses are written (after a space), which matters for subword tokenizers."""
    return [[" " + o for o in row] for row in options]


def _finetuning_sets(familiar: np.ndarray, unfamiliar: np.ndarray, labels: np.ndarray, rng: np.random.Generator
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


def _rl_prompts(set_i: np.ndarray, familiar: np.ndarray, unfamiliar: np.ndarray, rng: np.random.Generator
                ) -> np.ndarray:
    """E2's RL questions, half familiar, half unfamiliar: the familiar questions of set (i), repeated, and every
    unfamiliar question that the SFT model did not finetune on, so RL cannot reward answers memorised in SFT."""
    fresh = np.setdiff1d(np.flatnonzero(unfamiliar), set_i)
    known = np.unique(set_i[familiar[set_i]])
    return np.sort(np.concatenate([np.resize(rng.permutation(known), len(fresh)), fresh]))


class _Experiment:
    """The pretrained model plus what every finetuning stage shares: tokenizer, replay data, cache keys, device."""

    def __init__(self, settings: Settings, seed: int, device: torch.device, cache: RunCache | None):
        self.s, self.seed, self.device, self.cache = settings, seed, device, cache
        self.world = make_world(settings.world, seed)
        if settings.model == "tiny":
            self.tok = word_tokenizer(vocabulary(self.world))
            config = tiny_config(self.tok, settings.arch, settings.d_model, settings.n_layers, settings.n_heads)
            self.base = build_model(config, seed)
        else:
            self.base, self.tok = load_causal_lm(settings.model, cache)
        texts = list(self.world.corpus["text"]) + sorted(self.tok.get_vocab())  # what the pretrained weights fit
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        self.key = {"world": settings.world, "corpus": digest, "seed": seed, "model": settings.model,
                    "arch": settings.arch, "d_model": settings.d_model, "n_layers": settings.n_layers,
                    "n_heads": settings.n_heads}
        corpus = _sft_rows([""] * len(self.world.corpus), [" " + t for t in self.world.corpus["text"]])
        self.pretrain_loss = train_sft(self.base, tokenize_sft(corpus, self.tok),
                                       dataclasses.replace(settings.pretrain, seed=seed), pad_id(self.tok), device,
                                       cache, {**self.key, "stage": "pretrain"}, desc="pretrain")
        self.base.to(device).eval()

    def finetune(self, stage: str, examples: Dataset, init: tuple[torch.nn.Module, dict] | None = None
                 ) -> tuple[torch.nn.Module, dict]:
        """A copy of ``init`` = (model, its cache key), by default the pretrained model, finetuned on ``examples``
        plus replayed documents; returns the model and its cache key."""
        model = self._trainable(copy.deepcopy(init[0] if init else self.base))
        replay = _replay(self.world, int(self.s.replay * len(examples)), self.seed)
        data = concatenate_datasets([examples.select_columns(["prompt", "response"]), replay])
        key = {**self.key, "pretrain": self.s.pretrain, "replay": self.s.replay, "lora": self.s.lora_rank,
               "only": self.s.finetune_only, "init": init[1] if init else None,
               "stage": stage, "data": list(examples["prompt"]) + list(examples["response"])}
        cfg = dataclasses.replace(self.s.finetune, seed=self.seed)
        train_sft(model, tokenize_sft(data, self.tok), cfg, pad_id(self.tok), self.device, self.cache, key,
                  desc=stage)
        return self._merged(model).eval(), {**key, "finetune": cfg}

    def reinforce(self, stage: str, init, prompts: list[str], answers: list[str], rewards: tuple[float, ...],
                  init_key: dict) -> tuple[torch.nn.Module, list[dict]]:
        """A copy of ``init`` (cache key ``init_key``) trained with :func:`~steerlib.lm.rl.train_reinforce` to
        maximise ``rewards`` = (correct, wrong, abstain) of the graded responses."""
        model = self._trainable(copy.deepcopy(init))

        def reward_fn(idx: torch.Tensor, texts: list[str]) -> torch.Tensor:
            g = grade(texts, [answers[i] for i in idx])
            return torch.tensor(np.select([g == 1, g == 2], [rewards[0], rewards[2]], rewards[1]))

        key = {"init": init_key, "stage": stage, "rewards": rewards, "prompts": prompts,
               "answers": answers}
        cfg = dataclasses.replace(self.s.rl, seed=self.seed, max_new_tokens=self.s.max_new_tokens)
        history = train_reinforce(model, self.tok, prompts, reward_fn, cfg, device=self.device, cache=self.cache,
                                  key=key, desc=stage)
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
        texts = sample(model, self.tok, list(data["prompt"]), self.s.max_new_tokens, temperature=0.0).texts
        return grade(texts, list(data["response"]))


def run(settings: Settings, seed: int = 0, device: str | torch.device = "auto",
        cache: RunCache | None = None) -> Results:
    """Pretrain, run the gate check and E1–E3, and return every per-example result (cached as a whole)."""
    if cache is not None and (done := cache.load("hallucination", {"settings": settings, "seed": seed})) is not None:
        return done
    device = pick_device(device) if isinstance(device, str) else device
    seconds, t0 = {}, time.time()
    ex = _Experiment(settings, seed, device, cache)
    seconds["pretrain"] = time.time() - t0
    rng = np.random.default_rng(seed)
    finetune_people, test_people = ex.world.split("finetune"), ex.world.split("test")

    # Exact mention counts split the finetuning questions into familiar and unfamiliar ones (metric (a)); E2 and E3
    # finetune on the questions of E1's set (i), so every finetuning set is half familiar, half unfamiliar.
    # Metric (b), the pretrained model's NLL of the correct option, is computed and reported alongside.
    t = time.time()
    ft_mc, test_mc = mc_examples(finetune_people), mc_examples(test_people)
    labels, mentions = np.array(ft_mc["label"]), np.array(ft_mc["mentions"])
    option_nll_ft = option_nll(ex.base, ex.tok, cloze_prompts(ft_mc), _spaced(ft_mc["options"]), labels,
                               eos=False).numpy()
    familiar, unfamiliar = mentions >= settings.familiar_mentions, mentions <= settings.unfamiliar_mentions
    set_i, set_ii = _finetuning_sets(familiar, unfamiliar, labels, rng)
    seconds["familiarity"] = time.time() - t

    # E1: the same familiar questions; unfamiliar questions of any answer (i) or only those answered B or C (ii).
    t = time.time()
    model_i, model_ii = ex.finetune("e1-any", ft_mc.select(set_i)), ex.finetune("e1-BC", ft_mc.select(set_ii))
    e1 = {"mentions": np.array(test_mc["mentions"]), "label": np.array(test_mc["label"]),
          "probs_i": ex.choice_probs(model_i[0], test_mc), "probs_ii": ex.choice_probs(model_ii[0], test_mc),
          "marginal_i": np.bincount(labels[set_i], minlength=4) / len(set_i),
          "marginal_ii": np.bincount(labels[set_ii], minlength=4) / len(set_ii),
          "option_nll": option_nll(ex.base, ex.tok, cloze_prompts(test_mc), _spaced(test_mc["options"]),
                                   np.array(test_mc["label"]), eos=False).numpy()}
    seconds["e1"] = time.time() - t

    # E2: model (i) finetuned further to answer E on a random half of its questions, then RL with R1 or R2.
    t = time.time()
    ft_e = mc_examples(finetune_people, abstain=True)
    abstain = rng.random(len(set_i)) < settings.abstain_rate
    ft_e_sft = ft_e.select(set_i).map(lambda r, i: {"response": " " + IDK} if abstain[i] else {}, with_indices=True)
    model_sft, sft_key = ex.finetune("e2-sft", ft_e_sft, init=model_i)
    rl = ft_e.select(_rl_prompts(set_i, familiar, unfamiliar, rng))
    test_e = mc_examples(test_people, abstain=True)
    e2 = {"mentions": np.array(test_e["mentions"]), "label": np.array(test_e["label"]),
          "probs_sft": ex.choice_probs(model_sft, test_e)}
    for name, rewards in REWARDS.items():
        model_rl, history = ex.reinforce(f"e2-{name}", model_sft, list(rl["prompt"]), list(rl["answer"]), rewards,
                                         init_key=sft_key)
        e2[f"probs_{name}"], e2[f"history_{name}"] = ex.choice_probs(model_rl, test_e), history
    del model_i, model_ii, model_sft
    seconds["e2"] = time.time() - t

    # E3: standard QA finetuning vs relabelling the questions it finds unfamiliar (metric (c)) "I don't know".
    t = time.time()
    ft_qa, test_qa = qa_examples(finetune_people).select(set_i), qa_examples(test_people)
    model_std, _ = ex.finetune("e3-standard", ft_qa)
    _, answer_nll = top_answer_nll(model_std, ex.tok, list(ft_qa["prompt"]), settings.max_new_tokens)
    relabel = answer_nll.numpy() > settings.unfamiliar_answer_nll
    ft_idk = ft_qa.map(lambda r, i: {"response": f" {IDK}."} if relabel[i] else {}, with_indices=True)
    model_idk, _ = ex.finetune("e3-relabelled", ft_idk)
    grade_std = ex.answers(model_std, test_qa)
    e3 = {"mentions": np.array(test_qa["mentions"]), "grade_standard": grade_std,
          "grade_relabelled": ex.answers(model_idk, test_qa)}
    gate = {"mentions": e3["mentions"], "attribute": np.array(test_qa["attribute"]), "grade": grade_std}
    familiarity = {"mentions": mentions, "option_nll": option_nll_ft,
                   "unfamiliar": option_nll_ft > settings.unfamiliar_option_nll,
                   "qa_mentions": np.array(ft_qa["mentions"]), "answer_nll": answer_nll.numpy(),
                   "relabelled": relabel}
    seconds["e3"] = time.time() - t
    seconds["total"] = time.time() - t0
    results = Results(tuple(settings.world.mention_bins), ex.pretrain_loss, familiarity, gate, e1, e2, e3, seconds)
    if cache is not None:
        cache.save("hallucination", {"settings": settings, "seed": seed}, results)
    return results


# ----------------------------------------------------------------------------------------------- analysis


def bin_stats(values: np.ndarray, mentions: np.ndarray, bins) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``values`` (N, ...) over the examples of each mention bin: two (B, ...).

    A bin without examples gets NaN."""
    values = np.asarray(values, dtype=float)
    groups = [values[np.asarray(mentions) == b] for b in bins]
    empty = np.full(values.shape[1:], np.nan)
    return (np.stack([g.mean(0) if len(g) else empty for g in groups]),
            np.stack([g.std(0) if len(g) else empty for g in groups]))


def tv_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance ``½ Σ_k |p_k - q_k|`` over the last axis."""
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(-1)


def grade_rates(grades: np.ndarray, mentions: np.ndarray, bins) -> np.ndarray:
    """(B, 3) fraction of false, correct and "I don't know" answers in each mention bin."""
    return bin_stats(np.eye(3)[grades], mentions, bins)[0]


def selective_accuracy(grades: np.ndarray) -> float:
    """Accuracy among the answers that are not "I don't know": correct / (correct + false)."""
    answered = grades != 2
    return float((grades[answered] == 1).mean()) if answered.any() else float("nan")


def label_means(probs: np.ndarray, labels: np.ndarray, mentions: np.ndarray, bins) -> np.ndarray:
    """(B, 4, K) mean predicted distribution in each mention bin for each true answer A–D (a panel of Fig 3.3)."""
    return np.stack([bin_stats(probs[labels == j], mentions[labels == j], bins)[0] for j in range(4)], 1)


def spread(probs: np.ndarray, mentions: np.ndarray, bins) -> np.ndarray:
    """(B,) standard deviation across the inputs of a bin of each option's probability, averaged over options."""
    return bin_stats(probs, mentions, bins)[1].mean(-1)


HEDGES = {"i": np.full(4, 0.25), "ii": np.array([0.0, 0.5, 0.5, 0.0])}  # E1's P_hedged for models (i) and (ii)


def claims(r: Results) -> list[Claim]:
    """C1–C5 (and the gate check) from the per-example results; the least familiar bin is the first one."""
    bins, e1, e2, e3 = r.bins, r.e1, r.e2, r.e3
    chance = float(np.mean([1 / len(v) for v in ATTRIBUTES.values()]))
    accuracy = bin_stats(r.gate["grade"] == 1, r.gate["mentions"], bins)[0]
    dist = {m: tv_distance(label_means(e1[f"probs_{m}"], e1["label"], e1["mentions"], bins), h).mean(1)
            for m, h in HEDGES.items()}
    bc_0 = bin_stats(e1["probs_ii"][:, 1:3].sum(1), e1["mentions"], bins)[0][0]
    agree = bin_stats(tv_distance(e1["probs_i"], e1["probs_ii"]), e1["mentions"], bins)[0][-1]
    narrow = {m: spread(e1[f"probs_{m}"], e1["mentions"], bins) for m in HEDGES}
    abstain = {n: bin_stats(e2[f"probs_{n}"][:, 4], e2["mentions"], bins)[0] for n in REWARDS}
    right = {n: bin_stats(e2[f"probs_{n}"][np.arange(len(e2["label"])), e2["label"]], e2["mentions"], bins)[0]
             for n in REWARDS}
    std, idk = (grade_rates(e3[f"grade_{m}"], e3["mentions"], bins) for m in ("standard", "relabelled"))
    lo, hi = f"{bins[0]} mentions", f"{bins[-1]} mentions"
    return [
        Claim("gate", f"standard SFT answers held-out questions about people with {hi} far above chance",
              f"QA accuracy at {hi} (chance {chance:.2f})", accuracy[-1], ">", 0.6, "Fig 3.1 setting"),
        Claim("gate-0", f"... and near chance for people with {lo}", f"QA accuracy at {lo} minus chance",
              accuracy[0] - chance, "<", 0.1, "Fig 3.1 setting"),
        Claim("C1", "E1: predictions approach the hedge P_hedged as inputs grow unfamiliar",
              f"max over models (i),(ii) of TV(mean prediction per true answer, P_hedged) at {lo} / at {hi}",
              max(d[0] / d[-1] for d in dist.values()), "<", 0.5, "Fig 3.3"),
        Claim("C2", "E1: model (ii)'s unfamiliar limit is the B/C mix of its unfamiliar examples, "
              "not its overall finetuning marginal",
              f"P(B or C) of model (ii) at {lo} minus its finetuning marginal P(B or C) "
              f"({e1['marginal_ii'][1:3].sum():.2f})", bc_0 - e1["marginal_ii"][1:3].sum(), ">", 0.05, "Fig 3.3"),
        Claim("C2b", "E1: models (i) and (ii) agree on familiar inputs",
              f"mean TV(model (i), model (ii)) at {hi}", agree, "<", 0.2, "Fig 3.3"),
        Claim("C3", "E1: the spread of predictions across inputs narrows in unfamiliar bins",
              f"max over models of spread at {lo} / at {hi}", max(s[0] / s[-1] for s in narrow.values()), "<", 0.5,
              "Fig 3.3"),
        Claim("C4", "E2: at the least familiar bin R2 (abstain 0) abstains and R1 (abstain -3) does not",
              f"P(E) under R2 minus P(E) under R1 at {lo}", abstain["R2"][0] - abstain["R1"][0], ">", 0.4,
              "Fig 3.4"),
        Claim("C4b", "E2: both RL models answer familiar inputs correctly",
              f"min over R1, R2 of P(correct option) at {hi} (chance 0.2)", min(v[-1] for v in right.values()),
              ">", 0.5, "Fig 3.4"),
        Claim("C5", "E3: standard SFT gives more false answers as inputs grow unfamiliar",
              f"false-answer rate at {lo} minus at {hi}", std[0, 0] - std[-1, 0], ">", 0.3, "Fig 3.1"),
        Claim("C5b", "E3: relabelled SFT says \"I don't know\" more as inputs grow unfamiliar",
              f"\"I don't know\" rate at {lo} minus at {hi}", idk[0, 2] - idk[-1, 2], ">", 0.3, "Fig 3.1"),
        Claim("C5c", "E3: relabelling raises the accuracy among answers that are not \"I don't know\"",
              "selective accuracy, relabelled minus standard (all test questions)",
              selective_accuracy(e3["grade_relabelled"]) - selective_accuracy(e3["grade_standard"]), ">", 0.0,
              "Fig 3.1"),
    ]


def summary(r: Results) -> dict[str, Any]:
    """Per-bin numbers worth keeping in metrics.json (accuracy, hedges, abstention, answer rates)."""
    bins = r.bins
    return {
        "bins": list(bins),
        "pretrain_final_loss": round(float(np.mean(r.pretrain_loss[-20:])), 4),
        "gate_accuracy": bin_stats(r.gate["grade"] == 1, r.gate["mentions"], bins)[0].round(3).tolist(),
        "unfamiliar_fraction_b": bin_stats(r.familiarity["unfamiliar"], r.familiarity["mentions"], bins)[0]
        .round(3).tolist(),
        "relabelled_fraction_c": bin_stats(r.familiarity["relabelled"], r.familiarity["qa_mentions"], bins)[0]
        .round(3).tolist(),
        "e1_marginal_ii": r.e1["marginal_ii"].round(3).tolist(),
        **{f"e1_mean_probs_{m}": bin_stats(r.e1[f"probs_{m}"], r.e1["mentions"], bins)[0].round(3).tolist()
           for m in HEDGES},
        **{f"e2_abstain_{n}": bin_stats(r.e2[f"probs_{n}"][:, 4], r.e2["mentions"], bins)[0].round(3).tolist()
           for n in ("sft", *REWARDS)},
        **{f"e3_rates_{m}": grade_rates(r.e3[f"grade_{m}"], r.e3["mentions"], bins).round(3).tolist()
           for m in ("standard", "relabelled")},
        "seconds": {k: round(v, 1) for k, v in r.seconds.items()},
    }


# ----------------------------------------------------------------------------------------------- figures


def _bin_axis(ax, bins, xlabel: bool = True) -> None:
    """Bins left to right from most to least mentioned: inputs grow unfamiliar to the right (as in the thesis)."""
    ax.set_xticks(range(len(bins)), [str(b) for b in bins[::-1]])
    if xlabel:
        ax.set_xlabel("mentions in pretraining corpus (→ unfamiliar)")


def plot_familiarity(r: Results):
    """Gate check (QA accuracy per attribute vs mentions) and familiarity metrics (b), (c) vs mentions."""
    bins, x = r.bins, np.arange(len(r.bins))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for a, values in ATTRIBUTES.items():
        sel = r.gate["attribute"] == a
        acc = bin_stats(r.gate["grade"][sel] == 1, r.gate["mentions"][sel], bins)[0]
        line, = axes[0].plot(x, acc[::-1], marker="o", label=a)
        axes[0].axhline(1 / len(values), color=line.get_color(), ls=":", lw=1)
    axes[0].set(ylabel="held-out QA accuracy", ylim=(0, 1.02), title="Gate: standard SFT (dotted: chance)")
    axes[0].legend()
    f = r.familiarity
    for values, mentions, label in ((f["option_nll"], f["mentions"], "(b) pretrained NLL of correct option"),
                                    (f["answer_nll"], f["qa_mentions"], "(c) SFT NLL of its top answer")):
        mean, std = bin_stats(values, mentions, bins)
        axes[1].errorbar(x, mean[::-1], std[::-1], marker="o", capsize=3, label=label)
    axes[1].set(ylabel="NLL (finetuning questions)", yscale="symlog", title="Familiarity metrics (appendix B.1)")
    axes[1].legend(fontsize=8)
    for ax in axes:
        _bin_axis(ax, bins)
    fig.tight_layout()
    return fig


def plot_option_distributions(probs: dict[str, np.ndarray], labels: np.ndarray, mentions: np.ndarray, bins,
                              title: str):
    """Rows: models; columns: true label A–D; lines: mean predicted probability of each option ± std vs mentions."""
    rows = list(probs)
    n_options = next(iter(probs.values())).shape[1]
    fig, axes = plt.subplots(len(rows), 4, figsize=(13, 2.7 * len(rows)), sharey=True, squeeze=False)
    x = np.arange(len(bins))
    for i, name in enumerate(rows):
        for j in range(4):
            ax, sel = axes[i, j], labels == j
            mean, std = bin_stats(probs[name][sel], mentions[sel], bins)
            for k in range(n_options):
                ax.errorbar(x, mean[::-1, k], std[::-1, k], marker="o", ms=3, capsize=2, label=LETTERS[k])
            ax.set_ylim(0, 1)
            _bin_axis(ax, bins, xlabel=False)
            if i == 0:
                ax.set_title(f"true answer {LETTERS[j]}")
        axes[i, 0].set_ylabel(f"{name}\npredicted probability")
    axes[0, -1].legend(title="option", fontsize=8)
    fig.suptitle(title)
    fig.supxlabel("mentions in pretraining corpus (→ unfamiliar)")
    fig.tight_layout()
    return fig


def plot_idk(r: Results):
    """E3: rates of correct, false and "I don't know" answers vs mentions, standard vs relabelled SFT."""
    bins, x = r.bins, np.arange(len(r.bins))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, m in zip(axes, ("standard", "relabelled")):
        rates = grade_rates(r.e3[f"grade_{m}"], r.e3["mentions"], bins)
        for k in (1, 0, 2):
            ax.plot(x, rates[::-1, k], marker="o", label=GRADES[k])
        ax.set(title=f"{m} SFT (selective accuracy {selective_accuracy(r.e3[f'grade_{m}']):.2f})", ylim=(0, 1.02))
        _bin_axis(ax, bins)
    axes[0].set_ylabel("fraction of held-out answers")
    axes[0].legend()
    fig.tight_layout()
    return fig
