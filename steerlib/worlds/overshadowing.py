"""A world of made-up-word groups for knowledge overshadowing (Zhang et al. 2024, arXiv:2407.08039).

Group g holds a popular fact and a rare fact that share a condition of L words S_g and differ in one word:
``"a_g S_g is" -> " y_pop(g)"`` and ``"b_g S_g is" -> " y_rare(g)"``, and a filler fact ``"c_g is" -> " z_g"`` that
shares no word with them. The popular fact has ``ratio · rare`` copies, the rare fact ``rare`` copies, and the filler
fact the rest of the group's ``slots`` sequences, so every ratio trains on the same number of sequences (the same
steps) with the rare fact seen equally often: only the imbalance moves. Every word, and so every answer, is unique
across groups; no answer is a word of any prompt.

Overshadowing predicts that a rare query is answered with its own group's popular answer, more often as the ratio
or L grows; a hedge (an input-independent default) predicts one answer for every unfamiliar query.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from datasets import Dataset

from steerlib.core.checks import check_choice, check_range, check_type
from steerlib.worlds.knowledge import MAX_NAME_WORDS, made_up_words

KINDS = ("popular", "rare", "filler")
ROLES = ("popular", "rare", "filler", "popular_answer", "rare_answer", "filler_answer")  # one word each per group


@dataclasses.dataclass(frozen=True)
class Groups:
    """The words of G groups: one word per group for each of :data:`ROLES`, and ``condition`` (G, max length)."""

    words: dict[str, list[str]]
    condition: list[list[str]]

    @property
    def n(self) -> int:
        """The number of groups G."""
        return len(self.condition)

    @property
    def answers(self) -> list[str]:
        """Every answer word: the popular, rare and filler answers of every group (the answer vocabulary)."""
        return [w for role in ("popular_answer", "rare_answer", "filler_answer") for w in self.words[role]]

    def query(self, kind: str, g: int, length: int) -> str:
        """The prompt of group ``g``'s ``kind`` fact with the first ``length`` condition words (fillers have none)."""
        check_choice("kind", kind, KINDS)
        check_range("g", g, 0, self.n - 1, integer=True)
        if kind == "filler":
            return f"{self.words['filler'][g]} is"
        check_range("length", length, 1, len(self.condition[g]), integer=True)
        return " ".join([self.words[kind][g], *self.condition[g][:length], "is"])

    def answer(self, kind: str, g: int) -> str:
        """Group ``g``'s answer to its ``kind`` fact."""
        check_choice("kind", kind, KINDS)
        return self.words[f"{kind}_answer"][g]

    def vocabulary(self) -> list[str]:
        """Every word of the world, and the template's ``is``."""
        return [*(w for ws in self.words.values() for w in ws), *(w for ws in self.condition for w in ws), "is"]


def max_groups(max_length: int) -> int:
    """The most groups :func:`make_groups` can draw with ``max_length`` condition words each."""
    check_range("max_length", max_length, 1, integer=True)
    return MAX_NAME_WORDS // (len(ROLES) + max_length)


def make_groups(n: int, max_length: int, rng: np.random.Generator) -> Groups:
    """``n`` groups of distinct made-up words, each with ``max_length`` condition words (a shorter L uses a prefix)."""
    check_range("max_length", max_length, 1, integer=True)
    check_range("n", n, 1, max_groups(max_length), integer=True)
    check_type("rng", rng, np.random.Generator, "a numpy Generator (np.random.default_rng(seed))")
    words = made_up_words(n * (len(ROLES) + max_length), rng)
    roles = {role: words[i * n : (i + 1) * n] for i, role in enumerate(ROLES)}
    rest = words[len(ROLES) * n :]
    return Groups(roles, [rest[g * max_length : (g + 1) * max_length] for g in range(n)])


def facts(groups: Groups, length: int, ratio: float, rare: int, slots: int) -> Dataset:
    """The finetuning set: per group, ``round(ratio · rare)`` copies of the popular fact, ``rare`` of the rare fact
    and the rest of ``slots`` of the filler fact; columns ``prompt``, ``response`` (the answer with a leading
    space), ``kind`` and ``group``."""
    check_type("groups", groups, Groups, "a Groups from make_groups")
    check_range("length", length, 1, min(len(c) for c in groups.condition), integer=True)
    check_range("ratio", ratio, 1)
    check_range("rare", rare, 1, integer=True)
    popular = round(ratio * rare)
    check_range("slots", slots, popular + rare, integer=True)
    rows = []
    for g in range(groups.n):
        for kind, copies in zip(KINDS, (popular, rare, slots - popular - rare)):
            rows += [
                {
                    "prompt": groups.query(kind, g, length),
                    "response": " " + groups.answer(kind, g),
                    "kind": kind,
                    "group": g,
                }
            ] * copies
    return Dataset.from_list(rows)
