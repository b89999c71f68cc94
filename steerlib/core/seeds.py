"""The one seeding path: every random stream of a run comes from the chapter's seed, the replicate and the
stream's name.

A chapter runs at one integer ``seed`` and trains ``replicates`` independent copies of its experiment (ensemble
members in Part I, whole experiments in Parts II-IV). Each copy draws each of its random streams from

    stream_seed(seed, name, replicate) = SeedSequence(entropy=seed, spawn_key=(replicate, code(name)))

(NumPy's way of deriving independent child streams; ``code(name)`` is the first 32 bits of the name's SHA-256), so
the streams of one replicate are independent of one another, the replicates of one run are independent, and runs
at different seeds share nothing: a run at seed 1 is not a run at seed 0 shifted by one replicate. A stream depends
on (seed, name, replicate) alone, never on which chapter asks, so chapters that train the same model at the same seed
share it through the run cache.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import torch

from steerlib.core.checks import RUN_SEED_MAX, check_choice, check_nonempty, check_range, check_seed, check_type

STREAMS = {  # name -> what it draws
    "data": "which examples a run holds: held-out splits, problem pools, questions, subsets of a dataset",
    "world": "a made-up world: its people, facts and mention counts",
    "init": "a model's initial weights (and a reward head's)",
    "order": "the order of training examples: each epoch's permutation, minibatches, replayed documents",
    "sampling": "tokens sampled from a language model, and RL's rollouts",
    "shift": "the noise of shifted evaluation sets",
    "eval": "evaluation draws: probe sets, OOD-score splits, perturbations of test problems",
}


def _code(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def stream_seed(seed: int, name: str, replicate: int = 0) -> int:
    """The seed, in [0, 2**32 - 1], of random stream ``name`` (one of :data:`STREAMS`) of replicate ``replicate`` of
    a run at ``seed``: the first word of ``SeedSequence(entropy=seed, spawn_key=(replicate, code(name)))``."""
    check_seed("seed", seed, RUN_SEED_MAX)
    check_choice("name", name, STREAMS)
    check_range("replicate", replicate, 0, integer=True)
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=(replicate, _code(name)))
    return int(sequence.generate_state(1, np.uint32)[0])


def rng(seed: int, name: str, replicate: int = 0) -> np.random.Generator:
    """A NumPy generator on stream ``name`` of ``replicate`` (:func:`stream_seed`)."""
    return np.random.default_rng(stream_seed(seed, name, replicate))


def torch_generator(seed: int, name: str, replicate: int = 0) -> torch.Generator:
    """A torch CPU generator on stream ``name`` of ``replicate`` (:func:`stream_seed`)."""
    return torch.Generator().manual_seed(stream_seed(seed, name, replicate))


@dataclasses.dataclass(frozen=True)
class Replicate:
    """Replicate ``index`` of a run at ``seed``: one ensemble member, or one copy of a whole experiment."""

    seed: int
    index: int = 0

    def __post_init__(self):
        check_seed("seed", self.seed, RUN_SEED_MAX)
        check_range("index", self.index, 0, integer=True)

    def stream(self, name: str) -> int:
        """:func:`stream_seed` of this replicate's stream ``name``."""
        return stream_seed(self.seed, name, self.index)

    def rng(self, name: str) -> np.random.Generator:
        """A NumPy generator on this replicate's stream ``name`` (:func:`rng`)."""
        return rng(self.seed, name, self.index)

    def torch(self, name: str) -> torch.Generator:
        """A torch generator on this replicate's stream ``name`` (:func:`torch_generator`)."""
        return torch_generator(self.seed, name, self.index)


def replicates(seed: int, n: int) -> tuple[Replicate, ...]:
    """Replicates 0 .. n-1 of a run at ``seed``."""
    check_range("n", n, 1, integer=True)
    return tuple(Replicate(seed, i) for i in range(n))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (code that draws from them without a stream of its own)."""
    import random

    check_seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def substream(seed: int, *keys: int | str) -> int:
    """A seed in [0, 2**32 - 1] for the part of a stream named by ``keys`` (e.g. one shift level, one epoch, one
    curation round, one of a replicate's training runs): the first word of ``SeedSequence(entropy=seed,
    spawn_key=keys)`` (a string key enters as the first 32 bits of its SHA-256), never arithmetic on seeds, so
    substreams of neighbouring keys or neighbouring seeds are independent."""
    check_seed("seed", seed)
    words = []
    for key in check_nonempty("keys", keys):
        check_type("keys", key, (int, str), "integers or names")
        words.append(_code(key) if isinstance(key, str) else check_range("keys", key, 0, integer=True))
    return int(np.random.SeedSequence(entropy=seed, spawn_key=tuple(words)).generate_state(1, np.uint32)[0])


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order of ``n`` training examples in ``epoch`` of a run whose ``order`` stream has seed ``seed``: a
    permutation drawn from ``SeedSequence(entropy=seed, spawn_key=(epoch,))``, a function of (seed, epoch) only, so
    a resumed run sees the epochs it would have seen."""
    check_seed("seed", seed)
    check_range("epoch", epoch, 0, integer=True)
    check_range("n", n, 1, integer=True)
    state = np.random.SeedSequence(entropy=seed, spawn_key=(epoch,)).generate_state(2, np.uint32)
    g = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randperm(n, generator=g)
