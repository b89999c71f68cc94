"""A synthetic multi-step reasoning task: running-total word problems with many valid chain-of-thought traces.

A problem is a start amount and a list of gains and losses, told as a story::

    kim has 11 . finds 6 . loses 6 . finds 2 . how many does kim have ?
    Answer:

As signed quantities the answer is ``11 + 6 - 6 + 2``. A *trace* evaluates that sum as a sequence of lines, each
combining two of the current quantities into one: quantities of the same sign are added (``a + b = c``, in either
operand order), quantities of opposite signs are subtracted (``a - b = c`` with ``a ≥ |b|``; the result keeps the
sign of the larger one, 0 counts as a gain). Any order or tree of combinations is valid as long as every partial
result stays within ``0..max_value`` in magnitude, so the variety between traces lies *in the numbers*::

     11 + 6 = 17 . 17 - 6 = 11 . 11 + 2 = 13 . answer is 13
     6 - 6 = 0 . 2 + 0 = 2 . 11 + 2 = 13 . answer is 13

The final-answer marker is ``answer is``. A *pretraining pool* pairs fresh problems with random traces; the
finetuning and test sets fix one random trace per problem as the target. With ``new_verbs`` the finetuning and test
problems tell gains and losses with verbs the pool never uses, so finetuning has something to teach that transfers
to the test set (which verbs add and which subtract), as finetuning teaches a pretrained LLM a task's format.

For section 4.5: :func:`forced_opening` is a valid first line that is not the target's (the task's analogue of
forcing "First," into a response), and :func:`similar_problem` the analogue of rephrasing a problem: the same
number and kind of events told with the same verbs, with a fresh name and fresh numbers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np
from datasets import Dataset

from steerlib.core.checks import (
    check_nonempty,
    check_range,
    check_ranges,
    check_same_length,
    check_seed,
    check_strings,
    check_type,
)

NAMES = ("kim", "tom", "ann", "bob", "eva", "sam", "lea", "max", "ida", "joe", "amy", "ben")
GAINS = ("finds", "gets", "wins", "buys")
LOSSES = ("loses", "gives", "eats", "sells")
NEW_GAINS = ("earns", "picks")  # verbs of finetuning and test problems only (with TaskConfig.new_verbs)
NEW_LOSSES = ("drops", "spends")
MARKER = "answer is"
_ANSWER = re.compile(rf"{MARKER} (-?\d+)")
_LINE = re.compile(r"^(\d+) ([+-]) (\d+) = (\d+)$")


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """The task's ranges: values, gains and losses, events per problem, and whether verbs are new."""

    max_value: int = 20  # every quantity and partial result lies in 0..max_value (in magnitude)
    max_delta: int = 9  # gains and losses are 1..max_delta
    pretrain_events: tuple[int, ...] = (1, 2, 3, 4)  # number of gains/losses of pretraining problems
    events: tuple[int, ...] = (2, 3, 4)  # ... of finetuning and test problems
    new_verbs: bool = True  # finetuning and test problems use gain/loss verbs the pretraining pool never shows

    def __post_init__(self):
        check_range("max_value", self.max_value, 1, integer=True)
        check_range("max_delta", self.max_delta, 1, self.max_value, integer=True)
        check_ranges("pretrain_events", self.pretrain_events, 1, integer=True)
        check_ranges("events", self.events, 1, integer=True)
        check_type("new_verbs", self.new_verbs, bool, "True or False")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One word problem: a name, a starting amount and signed gains and losses, each with its verb."""

    name: str
    start: int
    deltas: tuple[int, ...]  # signed gains (+) and losses (-)
    verbs: tuple[str, ...]

    def __post_init__(self):
        check_nonempty("name", check_type("name", self.name, str, "a name"))
        check_range("start", self.start, 0, integer=True)
        check_type("deltas", self.deltas, tuple, "a tuple of signed integers")
        for i, d in enumerate(check_nonempty("deltas", self.deltas)):
            if check_range(f"deltas[{i}]", d, integer=True) == 0:
                raise ValueError(f"deltas[{i}]=0 is not allowed; a gain or loss is at least 1")
        check_type("verbs", self.verbs, tuple, "a tuple of verbs, one per delta")
        check_same_length("deltas, verbs", self.deltas, check_strings("verbs", self.verbs))

    @property
    def answer(self) -> int:
        """The final amount: the start plus every gain and loss."""
        return self.start + sum(self.deltas)

    @property
    def question(self) -> str:
        """The problem as a sentence of words and numbers, ending with the question."""
        events = " ".join(f"{v} {abs(d)} ." for v, d in zip(self.verbs, self.deltas))
        return f"{self.name} has {self.start} . {events} how many does {self.name} have ?"

    @property
    def prompt(self) -> str:
        """The question followed by ``Answer:``, the prompt a model answers."""
        return f"{self.question}\nAnswer:"


def _check_task(cfg: TaskConfig, rng: np.random.Generator) -> None:
    check_type("cfg", cfg, TaskConfig, "a TaskConfig")
    check_type("rng", rng, np.random.Generator, "a numpy Generator (np.random.default_rng(seed))")


def _check_verbs(verbs: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
    check_type("verbs", verbs, tuple, "a pair (gain verbs, loss verbs)")
    if len(verbs) != 2:
        raise ValueError(f"verbs holds {len(verbs)} lists; give a pair (gain verbs, loss verbs)")
    for words in verbs:
        check_strings("verbs", words)


def _check_problem(problem: Problem, max_value: int) -> None:
    """A problem whose quantities all lie in 0..max_value in magnitude."""
    check_type("problem", problem, Problem, "a Problem")
    check_range("max_value", max_value, 1, integer=True)
    if max(problem.start, *map(abs, problem.deltas)) > max_value:
        raise ValueError(f"problem {problem.question!r} has quantities above max_value={max_value}")


def random_problem(
    n_events: int,
    cfg: TaskConfig,
    rng: np.random.Generator,
    verbs: tuple[tuple[str, ...], tuple[str, ...]] = (GAINS, LOSSES),
) -> Problem:
    """A problem whose running total, told in story order, stays within 0..max_value; ``verbs`` = (gain verbs,
    loss verbs)."""
    check_range("n_events", n_events, 1, integer=True)
    _check_task(cfg, rng)
    _check_verbs(verbs)
    total = int(rng.integers(1, cfg.max_value + 1))
    start, deltas, said = total, [], []
    for _ in range(n_events):
        options = [d for d in range(-cfg.max_delta, cfg.max_delta + 1) if d and 0 <= total + d <= cfg.max_value]
        d = int(rng.choice(options))
        total += d
        deltas.append(d)
        said.append(str(rng.choice(verbs[0] if d > 0 else verbs[1])))
    return Problem(str(rng.choice(NAMES)), start, tuple(deltas), tuple(said))


def _sign(x: int) -> int:
    return -1 if x < 0 else 1  # 0 counts as a gain


def render_step(x: int, y: int, swap: bool = False) -> str:
    """The line combining signed quantities x and y: ``a + b = c`` (same sign; ``swap`` commutes the operands) or
    ``a - b = c`` (opposite signs, a the larger magnitude); c = ``|x + y|``."""
    check_range("x", x, integer=True)
    check_range("y", y, integer=True)
    check_type("swap", swap, bool, "True or False")
    if _sign(x) == _sign(y):
        a, b = (y, x) if swap else (x, y)
        return f"{abs(a)} + {abs(b)} = {abs(x + y)}"
    big, small = (x, y) if abs(x) >= abs(y) else (y, x)
    return f"{abs(big)} - {abs(small)} = {abs(x + y)}"


def _valid_pairs(items: Sequence[int], max_value: int) -> list[tuple[int, int]]:
    n = len(items)
    return [(i, j) for i in range(n) for j in range(i + 1, n) if abs(items[i] + items[j]) <= max_value]


def random_trace(problem: Problem, max_value: int, rng: np.random.Generator) -> str:
    """A random valid trace: at each line a uniformly chosen pair of quantities whose sum stays in range (one always
    exists), operands of ``+`` in random order; then the final-answer marker."""
    _check_problem(problem, max_value)
    check_type("rng", rng, np.random.Generator, "a numpy Generator (np.random.default_rng(seed))")
    items, lines = [problem.start, *problem.deltas], []
    while len(items) > 1:
        pairs = _valid_pairs(items, max_value)
        i, j = pairs[int(rng.integers(len(pairs)))]
        lines.append(render_step(items[i], items[j], bool(rng.integers(2))))
        items = [v for k, v in enumerate(items) if k not in (i, j)] + [items[i] + items[j]]
    return " . ".join(lines + [f"{MARKER} {items[0]}"])


def all_traces(problem: Problem, max_value: int) -> set[str]:
    """Every distinct valid trace of ``problem`` (exhaustive; small for up to 4 events)."""
    _check_problem(problem, max_value)

    def expand(items: tuple[int, ...]) -> set[tuple[str, ...]]:
        if len(items) == 1:
            return {()}
        out = set()
        for i, j in _valid_pairs(items, max_value):
            rest = tuple(v for k, v in enumerate(items) if k not in (i, j)) + (items[i] + items[j],)
            for line in {render_step(items[i], items[j], s) for s in (False, True)}:
                out |= {(line, *tail) for tail in expand(rest)}
        return out

    return {" . ".join(lines + (f"{MARKER} {problem.answer}",)) for lines in expand((problem.start, *problem.deltas))}


def extract_answer(text: str) -> int | None:
    """The integer after the last ``answer is`` marker, or None when there is none."""
    check_type("text", text, str, "a string")
    found = _ANSWER.findall(text)
    return int(found[-1]) if found else None


def answers_match(text: str, answer: int) -> bool:
    """Whether the final answer extracted from ``text`` equals ``answer``."""
    check_range("answer", answer, integer=True)
    return extract_answer(text) == answer


def steps_of(text: str) -> list[str]:
    """The computation lines of a trace (whitespace normalised), without the final-answer part."""
    check_type("text", text, str, "a string")
    parts = [" ".join(p.split()) for p in text.split(" . ")]
    return [p for p in parts if p and not p.startswith(MARKER)]


def is_valid_trace(text: str, problem: Problem, max_value: int) -> bool:
    """Whether every line of ``text`` combines two current quantities correctly (as :func:`render_step` writes it),
    the lines reduce the problem to one quantity, and the final answer is right."""
    check_type("text", text, str, "a string")
    _check_problem(problem, max_value)

    def follow(items: tuple[int, ...], lines: list[str]) -> bool:
        if not lines:
            return len(items) == 1
        for i, j in _valid_pairs(items, max_value):
            if lines[0] in {render_step(items[i], items[j], s) for s in (False, True)}:
                rest = tuple(v for k, v in enumerate(items) if k not in (i, j)) + (items[i] + items[j],)
                if follow(rest, lines[1:]):
                    return True
        return False

    lines = steps_of(text)
    return (
        answers_match(text, problem.answer)
        and all(_LINE.match(line) for line in lines)
        and follow((problem.start, *problem.deltas), lines)
    )


def same_trace(text: str, target: str) -> bool:
    """Whether two traces have the same computation lines (ignoring whitespace)."""
    check_type("target", target, str, "a string")
    return steps_of(text) == steps_of(target)


def vocabulary(cfg: TaskConfig) -> list[str]:
    """Every word the task uses (to build a word-level tokenizer)."""
    check_type("cfg", cfg, TaskConfig, "a TaskConfig")
    numbers = " ".join(str(v) for v in range(cfg.max_value + 1))
    return [
        " ".join(NAMES + GAINS + LOSSES + NEW_GAINS + NEW_LOSSES),
        "has . how many does have ? Answer : + - =",
        f"{MARKER} {numbers}",
    ]


def problems(
    n: int,
    events: Sequence[int],
    cfg: TaskConfig,
    rng: np.random.Generator,
    verbs: tuple[tuple[str, ...], tuple[str, ...]] = (GAINS, LOSSES),
) -> list[Problem]:
    """``n`` random problems, the number of events drawn uniformly from ``events``."""
    check_range("n", n, 1, integer=True)
    check_ranges("events", tuple(events) if isinstance(events, (list, tuple)) else events, 1, integer=True)
    _check_task(cfg, rng)
    _check_verbs(verbs)
    return [random_problem(int(rng.choice(events)), cfg, rng, verbs) for _ in range(n)]


def as_dataset(items: Sequence[Problem], cfg: TaskConfig, rng: np.random.Generator) -> Dataset:
    """Columns ``prompt``, ``response`` (one random valid trace, starting with a space), ``answer``, ``events``."""
    for item in check_nonempty("items", items):
        check_type("items", item, Problem, "a list of Problems")
    _check_task(cfg, rng)
    return Dataset.from_dict(
        {
            "prompt": [p.prompt for p in items],
            "response": [" " + random_trace(p, cfg.max_value, rng) for p in items],
            "answer": [p.answer for p in items],
            "events": [len(p.deltas) for p in items],
        }
    )


def splits(
    cfg: TaskConfig, n_pretrain: int, n_train: int, n_test: int, seed: int
) -> tuple[Dataset, Dataset, Dataset, list[Problem], list[Problem]]:
    """Pretraining pool (random traces), finetuning set and test set (one fixed target trace per problem); train and
    test come from the same distribution, the pool also has shorter problems and (with ``new_verbs``) other verbs.
    Also returns the train and test problems."""
    check_type("cfg", cfg, TaskConfig, "a TaskConfig")
    for name, n in (("n_pretrain", n_pretrain), ("n_train", n_train), ("n_test", n_test)):
        check_range(name, n, 1, integer=True)
    check_seed("seed", seed)
    rng = np.random.default_rng(seed)
    pool = as_dataset(problems(n_pretrain, cfg.pretrain_events, cfg, rng), cfg, rng)
    verbs = (NEW_GAINS, NEW_LOSSES) if cfg.new_verbs else (GAINS, LOSSES)
    train, test = (problems(n, cfg.events, cfg, rng, verbs) for n in (n_train, n_test))
    return pool, as_dataset(train, cfg, rng), as_dataset(test, cfg, rng), train, test


def opening_lines(problem: Problem, max_value: int) -> list[str]:
    """Every distinct valid first line of a trace of ``problem`` (sorted)."""
    _check_problem(problem, max_value)
    items = [problem.start, *problem.deltas]
    return sorted(
        {render_step(items[i], items[j], swap) for i, j in _valid_pairs(items, max_value) for swap in (False, True)}
    )


def _operands(line: str) -> tuple:
    """A line's combination without the operand order of ``+``: ("+", sorted operands) or ("-", a, b)."""
    a, op, b, _ = _LINE.match(line).groups()
    return (op, *sorted((a, b))) if op == "+" else (op, a, b)


def forced_opening(problem: Problem, target: str, max_value: int, rng: np.random.Generator) -> str | None:
    """A valid first line of ``problem`` that is not ``target``'s first line, drawn uniformly: among lines that
    combine other quantities than the target's first line if there are any, else the target's line with its
    operands commuted; None when every valid first line is the target's."""
    check_type("target", target, str, "a trace (the example's target response)")
    check_type("rng", rng, np.random.Generator, "a numpy Generator (np.random.default_rng(seed))")
    lines = opening_lines(problem, max_value)
    first = steps_of(target)[:1]
    if not first or not _LINE.match(first[0]):
        raise ValueError(f"target={target!r} does not start with a computation line such as '3 + 4 = 7'")
    other = [line for line in lines if _operands(line) != _operands(first[0])]
    other = other or [line for line in lines if line != first[0]]
    return str(other[int(rng.integers(len(other)))]) if other else None


def similar_problem(problem: Problem, cfg: TaskConfig, rng: np.random.Generator, tries: int = 10_000) -> Problem:
    """A problem with the same structure as ``problem`` (number of events, the sign and verb of each) and fresh
    values: another name and a new start and new magnitudes, drawn uniformly until the running total stays within
    0..max_value and the values differ from the original's (at most ``tries`` draws)."""
    _check_task(cfg, rng)
    _check_problem(problem, cfg.max_value)
    check_range("tries", tries, 1, integer=True)
    signs = [1 if d > 0 else -1 for d in problem.deltas]
    name = str(rng.choice([n for n in NAMES if n != problem.name]))
    for _ in range(tries):
        start = int(rng.integers(1, cfg.max_value + 1))
        deltas = tuple(s * int(rng.integers(1, cfg.max_delta + 1)) for s in signs)
        totals = np.cumsum([start, *deltas])
        if totals.min() >= 0 and totals.max() <= cfg.max_value and (start, deltas) != (problem.start, problem.deltas):
            return Problem(name, start, deltas, problem.verbs)
    raise ValueError(
        f"no problem with the structure of {problem.question!r} and other values fits in "
        f"max_value={cfg.max_value} after tries={tries} draws"
    )
