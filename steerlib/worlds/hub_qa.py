"""Real questions from Hugging Face ``datasets`` in the layout of :func:`steerlib.worlds.geography.questions`: the
dissertation's TriviaQA (open QA) and MMLU (multiple choice), for the real-facts chapter's ``paper`` profile.

- ``trivia_qa``: ``mandarjoshi/trivia_qa``, config ``rc.nocontext``; each row has ``question`` and the struct
  ``answer`` with ``value``, ``aliases``, ``normalized_aliases`` and ``type`` (``WikipediaEntity``, ``FreeForm`` or
  ``Numerical``: the question's kind). The answer is ``value``; the aliases are ``value``, then ``aliases`` and
  ``normalized_aliases``, and :func:`~steerlib.worlds.geography.grade` compares whole normalised answers with them
  (a prefix is false). Its ``test`` split holds no answers: use ``validation`` or ``train``.
- ``mmlu``: ``cais/mmlu``, config ``all``; each row has ``question``, ``subject``, four ``choices`` and ``answer``,
  the index of the right choice. Kind ``"mmlu"``, subject the MMLU subject; the open-QA answer is the right choice's
  text, and the columns ``options`` and ``right`` keep the choices for the multiple-choice measurement
  (:func:`choices`). Many MMLU questions need their options ("Which of the following ..."), so asked openly they
  say little: MMLU is for the multiple-choice measurement. The chapter reads one source (``Settings.data``), so a run
  on MMLU also finetunes and grades open answers on MMLU; a run on TriviaQA measures multiple choice on TriviaQA
  questions with options drawn from other answers (:func:`choices`).

Neither dataset carries a population (a stand-in for how often pretraining mentions the subject): the column is NaN.
The questions are drawn from one split in an order drawn from the seed; the first ``shots`` rows are the few-shot
examples, and no question whose answer is one of theirs is asked (a model copies answers from its prompt). The
``split`` column is left empty: without a population, the only familiarity known before finetuning is the base
model's, so the chapter splits the questions by it (:func:`familiarity_split`).

Loading goes through ``datasets``: ``HubQAConfig.path`` is a local data file in the hub schema (.json, .jsonl,
.parquet, .csv), a folder saved with ``save_to_disk``, a hub id, or "" (the default): ``$STEERLIB_DATA/<source>``
if that folder exists, else the source's hub id. Without a network (or with ``$HF_HUB_OFFLINE``) a hub dataset that
is not in the Hugging Face cache fails within seconds, saying what to download and where to put it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence

import numpy as np
from datasets import Dataset

from steerlib.core.checks import (
    check_array,
    check_choice,
    check_columns,
    check_nonempty,
    check_range,
    check_same_length,
    check_seed,
    check_strings,
    check_type,
)
from steerlib.core.runtime import LOCAL_DATA_ENV, load_hub_dataset
from steerlib.worlds.geography import LETTERS, normalize, one_test_per_run, prompt

SOURCES = {"trivia_qa": ("mandarjoshi/trivia_qa", "rc.nocontext"), "mmlu": ("cais/mmlu", "all")}  # hub id, config
COLUMNS = {"trivia_qa": ("question", "answer"), "mmlu": ("question", "subject", "choices", "answer")}
FORMATS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}  # local files, by extension


@dataclasses.dataclass(frozen=True)
class HubQAConfig:
    """Which dataset (``source``), from where (``path``: a local data file, a ``save_to_disk`` folder, a hub id, or
    "" for ``$STEERLIB_DATA/<source>`` if it exists, else the source's hub id), which ``split``, how many questions,
    the test share and the number of few-shot examples."""

    source: str = "trivia_qa"
    path: str = ""
    split: str = "validation"
    questions: int = 1000
    test_fraction: float = 0.5
    shots: int = 3

    def __post_init__(self):
        check_choice("source", self.source, SOURCES)
        check_type("path", self.path, str, "'' (the source's hub id), a hub id, a data file or a folder")
        check_nonempty("split", check_type("split", self.split, str, "a split name such as 'validation'"))
        check_range("questions", self.questions, 2, integer=True)
        check_range("test_fraction", self.test_fraction, 0, 1, open_low=True, open_high=True)
        check_range("shots", self.shots, 0, 10, integer=True)


def _where(cfg: HubQAConfig) -> str:
    """Where ``cfg``'s rows come from: ``cfg.path``, else ``$STEERLIB_DATA/<source>`` if it is a folder, else the
    source's hub id."""
    local = os.path.join(os.environ.get(LOCAL_DATA_ENV) or "", cfg.source)
    return cfg.path or (local if os.environ.get(LOCAL_DATA_ENV) and os.path.isdir(local) else SOURCES[cfg.source][0])


def _load(cfg: HubQAConfig, where: str) -> Dataset:
    """The rows of ``cfg.split`` from ``where``: a local file or folder, or the hub (offline: its cache only)."""
    import datasets

    hub_id, config = SOURCES[cfg.source]
    path = os.path.expanduser(where)
    if os.path.isdir(path):
        rows = datasets.load_from_disk(path)
        if isinstance(rows, datasets.DatasetDict):
            check_choice("split", cfg.split, rows)
            rows = rows[cfg.split]
    elif os.path.isfile(path):
        check_choice("path's extension", os.path.splitext(path)[1], FORMATS)
        rows = datasets.load_dataset(FORMATS[os.path.splitext(path)[1]], data_files={cfg.split: path}, split=cfg.split)
    elif cfg.path.startswith((".", "/", "~")) or os.path.splitext(cfg.path)[1] in FORMATS or cfg.path.count("/") > 1:
        raise ValueError(
            f"path={cfg.path!r} is neither a file, a folder nor a hub id ('owner/name'); give a data "
            f"file ({', '.join(FORMATS)}), a folder saved with save_to_disk, a hub id, or '' for "
            f"{hub_id!r}"
        )
    else:
        rows = load_hub_dataset(
            path,
            config,
            split=cfg.split,
            needs=f"source={cfg.source!r} needs the Hugging Face dataset {path!r} (config {config!r}, split "
            f"{cfg.split!r}): it is not in the Hugging Face cache",
            fix=f"Where there is a network, load it once (the cache then serves it offline) or save it: "
            f"datasets.load_dataset({path!r}, {config!r}, split={cfg.split!r}).save_to_disk('<folder>/"
            f"{cfg.source}') and set ${LOCAL_DATA_ENV}=<folder>, or pass HubQAConfig(path='<folder>/...'); a .json "
            "or .parquet file in the hub's schema works too.",
        )
    check_columns(
        f"the {cfg.source} rows",
        rows.column_names,
        COLUMNS[cfg.source],
        f"a {cfg.source} file needs the schema of {hub_id!r}",
    )
    return rows.select_columns(list(COLUMNS[cfg.source]))


def _row(source: str, row: dict) -> dict | None:
    """One hub row as a question (kind, subject, question, answer, aliases, and for MMLU options and right), or None
    if it has no answer (TriviaQA's test split)."""
    if source == "trivia_qa":
        a = row["answer"]
        value = (a.get("value") or "").strip()
        aliases = [value, *(x.strip() for x in [*(a.get("aliases") or ()), *(a.get("normalized_aliases") or ())])]
        return (
            {
                "kind": a.get("type") or "trivia",
                "subject": row["question"],
                "question": row["question"],
                "answer": value,
                "aliases": [x for x in dict.fromkeys(aliases) if x],
            }
            if value
            else None
        )
    options = [str(c) for c in row["choices"]]
    if len(options) != len(LETTERS) or not 0 <= int(row["answer"]) < len(LETTERS):
        return None
    answer = options[int(row["answer"])].strip()
    return (
        {
            "kind": "mmlu",
            "subject": row["subject"],
            "question": row["question"],
            "answer": answer,
            "aliases": [answer],
            "options": options,
            "right": int(row["answer"]),
        }
        if answer
        else None
    )


@functools.cache
def _draw(cfg: HubQAConfig, where: str, seed: int) -> tuple[tuple[tuple[str, str], ...], tuple[dict, ...]]:
    """The few-shot examples (question, answer) and the questions from ``where``: rows in an order drawn from
    ``seed``, the first ``cfg.shots`` answered ones the examples, then up to ``cfg.questions`` whose answers are none
    of theirs."""
    rows = _load(cfg, where)
    shots: list[tuple[str, str]] = []
    banned: set[str] = set()
    picked: list[dict] = []
    for i in np.random.default_rng(seed).permutation(len(rows)):
        q = _row(cfg.source, rows[int(i)])
        if q is None:
            continue
        names = {normalize(a) for a in q["aliases"]}
        if len(shots) < cfg.shots:
            shots.append((q["question"], q["answer"]))
            banned |= names
        elif not names & banned:
            picked.append(q)
            if len(picked) == cfg.questions:
                break
    if len(picked) < 2:
        raise ValueError(
            f"split={cfg.split!r} of {where!r} holds {len(picked)} answered "
            "questions besides the few-shot examples; at least 2 are needed (TriviaQA's test split has "
            "no answers: use 'validation' or 'train')"
        )
    return tuple(shots), tuple(picked)


def questions(cfg: HubQAConfig = HubQAConfig(), seed: int = 0) -> Dataset:
    """The question set: columns ``kind``, ``subject``, ``question``, ``answer``, ``aliases`` (the answer first),
    ``population`` (NaN: not available) and ``split`` ("": see :func:`familiarity_split`); for MMLU also
    ``options`` and ``right`` (the index of the right option)."""
    check_type("cfg", cfg, HubQAConfig, "a HubQAConfig")
    check_seed("seed", seed)
    return Dataset.from_list([{**q, "population": float("nan"), "split": ""} for q in _draw(cfg, _where(cfg), seed)[1]])


def few_shot_examples(cfg: HubQAConfig = HubQAConfig(), seed: int = 0) -> list[tuple[str, str]]:
    """The ``cfg.shots`` solved examples (question, answer) of :func:`questions` at ``seed``; none is asked."""
    check_type("cfg", cfg, HubQAConfig, "a HubQAConfig")
    check_seed("seed", seed)
    return list(_draw(cfg, _where(cfg), seed)[0])


def few_shot_prompt(examples: Sequence[tuple[str, str]], question: str) -> str:
    """The solved ``examples`` (question, answer), each as :func:`~steerlib.worlds.geography.prompt` and its answer,
    then the prompt of ``question``."""
    check_type("examples", examples, (list, tuple), "a list of (question, answer) pairs")
    for pair in examples:
        check_strings("examples", check_type("examples", pair, (list, tuple), "a list of (question, answer) pairs"))
        if len(pair) != 2:
            raise ValueError(f"examples must hold (question, answer) pairs; got {pair!r}")
    check_type("question", question, str, "a string")
    return "".join(f"{prompt(q)} {a}\n\n" for q, a in examples) + prompt(question)


def choices(data: Dataset, seed: int = 0) -> tuple[list[list[str]], np.ndarray]:
    """Four options per question of :func:`questions` and the index of the right one: MMLU's own, else the answer
    and three answers of other questions of its kind (of any kind where its own has fewer than four answers), in
    random order."""
    check_type("data", data, Dataset, "a Dataset from hub_qa.questions()")
    check_columns("data", data.column_names, ("kind", "answer", "aliases"), "a Dataset from hub_qa.questions()")
    rng = np.random.default_rng(check_seed("seed", seed))
    if "options" in data.column_names:
        return [list(o) for o in data["options"]], np.asarray(data["right"], dtype=np.int64)
    everything = sorted(set(data["answer"]))
    pools = {k: sorted({a for a, kind in zip(data["answer"], data["kind"]) if kind == k}) for k in set(data["kind"])}
    options, right = [], []
    for kind, aliases in zip(data["kind"], data["aliases"]):
        names = {normalize(a) for a in aliases}
        pool = pools[kind] if len(pools[kind]) >= len(LETTERS) else everything
        others = [a for a in pool if normalize(a) not in names]
        if len(others) < len(LETTERS) - 1:
            raise ValueError(
                f"data holds {len(others)} other answers for the question answered {aliases[0]!r}; "
                f"{len(LETTERS) - 1} are needed for its options"
            )
        row = [aliases[0], *rng.choice(others, len(LETTERS) - 1, replace=False)]
        order = rng.permutation(len(LETTERS))
        options.append([str(row[j]) for j in order])
        right.append(int(np.flatnonzero(order == 0)[0]))
    return options, np.array(right, dtype=np.int64)


def familiarity_split(
    familiarity: Sequence[float], kinds: Sequence[str], test_fraction: float, seed: int = 0
) -> np.ndarray:
    """ "finetune" or "test" per question: within each kind, the questions ordered by ``familiarity`` (e.g. the base
    model's NLL of the answer) and split by :func:`~steerlib.worlds.geography.one_test_per_run`, so that both splits
    span the same familiarity, as stratifying by population does for the geography questions."""
    values = check_array("familiarity", familiarity, ndim=1)
    kinds = check_strings("kinds", kinds)
    check_same_length("familiarity, kinds", values, kinds)
    check_range("test_fraction", test_fraction, 0, 1, open_low=True, open_high=True)
    rng = np.random.default_rng(check_seed("seed", seed))
    split = np.full(len(kinds), "finetune", dtype=object)
    for kind in dict.fromkeys(kinds):
        idx = np.flatnonzero(np.asarray(kinds, dtype=object) == kind)
        idx = idx[np.argsort(values[idx], kind="stable")]
        split[idx[one_test_per_run(len(idx), test_fraction, rng)]] = "test"
    return split
