"""Bad input gets a clear, early error everywhere: one table of bad calls to every public function and chapter
setting (at least a wrong type, a value out of range and an empty input where each applies), each asserting the
error type and that the message names the parameter. A coverage test checks that the table reaches every public name
of the README's module list, or says why a name is left out."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import re
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import Dataset

from steerlib import book, performance, scorecard
from steerlib import cache as cache_command
from steerlib import jobs as job_command
from steerlib.book import CHAPTERS
from steerlib.chapters.extrapolation import common as part_one
from steerlib.chapters.hallucination import common as part_two
from steerlib.chapters.reasoning import common as reasoning_common
from steerlib.core import cache as cache_mod
from steerlib.core import chapter, checks, claims, figures, jobs, ledger, profiles, record, runtime, scale, seeds
from steerlib.lm import base, models, reasoning, reward, rl, sampling, scoring, sft, tokenizer
from steerlib.measures import (
    coverage,
    curation,
    decisions,
    divergences,
    familiarity,
    homogeneous,
    ocs,
    ood,
    premem,
    statistics,
)
from steerlib.vision import (
    adversarial,
    calibration,
    data,
    ensemble,
    ladders,
    losses,
    representations,
    shifts,
    slabs,
    train,
    xor,
)
from steerlib.vision import models as vmodels
from steerlib.worlds import geography, hub_qa, knowledge, overshadowing, running_totals

# ------------------------------------------------------------------------------------------ small valid inputs

X = torch.rand(4, 1, 8, 8)  # four 8x8 images
Y = torch.tensor([0, 1, 2, 3])
P = torch.full((3, 4), 0.25)  # class probabilities
NAN, INF = float("nan"), float("inf")


@functools.cache
def tok():
    return tokenizer.word_tokenizer(["a b c d ?"])


@functools.cache
def lm():
    return models.build_model(models.tiny_config(tok(), d_model=16, n_layers=1, n_heads=2), seed=0).eval()


@functools.cache
def mlp():
    return vmodels.make_model("mlp", (1, 8, 8), 10, hidden=8).eval()


@functools.cache
def members():
    return ensemble.Ensemble(lambda: vmodels.make_model("mlp", (1, 8, 8), 10, hidden=8), seeds.replicates(0, 2))


@functools.cache
def sft_data():
    return tokenizer.tokenize_sft(Dataset.from_dict({"prompt": ["a ?", "b ?"], "response": [" c", " d"]}), tok())


@functools.cache
def groups():
    return overshadowing.make_groups(3, 2, np.random.default_rng(0))


@functools.cache
def people():
    world = knowledge.make_world(
        knowledge.WorldConfig(mention_bins=(0, 1), people_per_bin=(3, 3), test_per_bin=1, n_first=3, n_last=3), seed=0
    )
    return world


def image_data(**change):
    fields = dict(name="toy", x_train=X, y_train=Y, x_test=X, y_test=Y, num_classes=10, value_range=(0.0, 1.0))
    return data.ImageData(**{**fields, **change})


PROBLEM = running_totals.Problem("kim", 3, (2, -1), ("finds", "loses"))
RUNS = [(np.array([[0.5, 1.0], [1.0, 1.0]]), np.array([[1.5, 1.2], [1.05, 1.0]]), np.array([0.5, 0.8]))]
RNG = np.random.default_rng(0)
CLAIM = claims.Claim("T1", "a toy claim", "x", 1.0, ">", 0.5, why="toy", uncertainty="toy: none")
SUMMARY = {"seed": 0}


def card():
    return pd.DataFrame(columns=scorecard.COLUMNS)


def _costs() -> pd.DataFrame:
    """A cold build's costs (performance.cold_costs) of one chapter."""
    return pd.DataFrame({"part": ["a"], "cpu_s": [30.0], "wall_s": [30.0], "replicates": [3]}, index=["a"])


@dataclasses.dataclass(frozen=True)
class Replicated:
    replicates: int


ONE = seeds.replicates(0, 1)
SPEC = claims.Spec(id="T1", statement="s", statistic="x", op=">", threshold=0.5, why="toy")


JOB = jobs.Job("print", print)
STAGE = jobs.Stage("print", (JOB,))


@functools.cache
def run() -> chapter.Run:
    """The reversion chapter's run at smoke, with no cache (as the one call prepares it)."""
    return chapter.prepare(book.chapter("reversion"), "smoke", device="cpu", cache=False)[0]


SWEEP_AXIS = scale.Scale("width", max, max, ("A*",), {"cpu": (1.0,)})
SWEEP = scale.Sweep(
    "toy",
    "width",
    (
        scale.Point(
            1.0, 1e9, ({"id": "A1", "value": 0.1, "interval": None, "judged": True, "op": ">", "threshold": 0},)
        ),
    ),
    {"A1": scale.Trend("A1", "not judged", 1, 1.0)},
)
CPU_PART_ONE = book.chapter("mechanism").settings("cpu")

# --------------------------------------------------------------------------------------------------- the table
# target: "module.name" of the public function or class; kind: type | range | empty | shape; the call; the error
# type; a regex the message must match (the parameter's name, and where it helps the value or what is allowed).

T, R, E, S = "type", "range", "empty", "shape"
V, TE = ValueError, TypeError
TABLE: list[tuple[str, str, Callable, type, str]] = [
    # core.checks
    ("core.checks.check_type", T, lambda: checks.check_type("n", "3", int, "an integer"), TE, "n='3' is a str"),
    ("core.checks.check_choice", R, lambda: checks.check_choice("loss", "hinge", ("ce",)), V, "loss='hinge'.*'ce'"),
    ("core.checks.check_choice", T, lambda: checks.check_choice("loss", ["ce"], ("ce",)), V, r"loss=\['ce'\]"),
    ("core.checks.check_choice", E, lambda: checks.check_choice("loss", "", ("ce",)), V, "loss=''"),
    ("core.checks.check_nonempty", E, lambda: checks.check_nonempty("xs", []), V, "xs=.*empty"),
    ("core.checks.check_nonempty", T, lambda: checks.check_nonempty("xs", 3), TE, "xs=3"),
    ("core.checks.check_choices", T, lambda: checks.check_choices("shifts", "rotate", ("rotate",)), TE, "shifts="),
    (
        "core.checks.check_choices",
        R,
        lambda: checks.check_choices("shifts", ("fog",), ("rotate",)),
        V,
        r"shifts\[0\]='fog'",
    ),
    ("core.checks.check_choices", E, lambda: checks.check_choices("shifts", (), ("rotate",)), V, "shifts=.*empty"),
    ("core.checks.check_strings", T, lambda: checks.check_strings("texts", "abc"), TE, "texts='abc'"),
    ("core.checks.check_strings", T, lambda: checks.check_strings("texts", ["a", 1]), TE, "texts=1"),
    ("core.checks.check_strings", E, lambda: checks.check_strings("texts", []), V, "texts=.*empty"),
    ("core.checks.check_sequence", T, lambda: checks.check_sequence("ids", "12", "a list"), TE, "ids='12'"),
    ("core.checks.check_sequence", E, lambda: checks.check_sequence("ids", (), "a list"), V, "ids=.*empty"),
    ("core.checks.check_same_length", S, lambda: checks.check_same_length("a, b", [1], [1, 2]), V, "a, b.*same"),
    ("core.checks.check_columns", S, lambda: checks.check_columns("table", ["a"], ["b"]), V, "table lacks.*'b'"),
    ("core.checks.check_range", T, lambda: checks.check_range("lr", "0.1", 0), TE, "lr='0.1' is a str"),
    ("core.checks.check_range", T, lambda: checks.check_range("n", True, 0, integer=True), TE, "n=True"),
    ("core.checks.check_range", T, lambda: checks.check_range("n", 1.5, 0, integer=True), TE, "n=1.5.*integer"),
    ("core.checks.check_range", R, lambda: checks.check_range("p", NAN, 0, 1), V, r"p=nan is not a finite"),
    ("core.checks.check_range", R, lambda: checks.check_range("p", INF, 0), V, r"p=inf is not a finite"),
    ("core.checks.check_range", R, lambda: checks.check_range("p", 1, 1, open_low=True), V, r"p=1.*\(1, inf\)"),
    ("core.checks.check_seed", R, lambda: checks.check_seed("seed", -1), V, r"seed=-1.*\[0, "),
    ("core.checks.check_seed", T, lambda: checks.check_seed("seed", "abc"), TE, "seed='abc'"),
    ("core.checks.check_ranges", T, lambda: checks.check_ranges("bins", 3, 0), TE, "bins=3"),
    ("core.checks.check_ranges", R, lambda: checks.check_ranges("bins", (0, -1), 0), V, r"bins\[1\]=-1"),
    ("core.checks.check_ranges", E, lambda: checks.check_ranges("bins", (), 0), V, "bins=.*empty"),
    ("core.checks.check_value_range", R, lambda: checks.check_value_range((1.0, 0.0)), V, "value_range=.*low < high"),
    ("core.checks.check_value_range", T, lambda: checks.check_value_range("01"), TE, "value_range='01'"),
    ("core.checks.check_value_range", E, lambda: checks.check_value_range(()), V, "value_range=.*empty"),
    ("core.checks.check_array", T, lambda: checks.check_array("x", ["a"]), TE, "x holds <U1"),
    (
        "core.checks.check_array",
        R,
        lambda: checks.check_array("x", [0.5, 2.0], 0, 1),
        V,
        r"x holds 2.0 at index \(1,\)",
    ),
    ("core.checks.check_array", R, lambda: checks.check_array("x", [NAN]), V, "x holds nan"),
    ("core.checks.check_array", E, lambda: checks.check_array("x", []), V, "x is empty"),
    ("core.checks.check_array", S, lambda: checks.check_array("x", [1.0], ndim=2), V, "x has shape"),
    ("core.checks.check_tensor", T, lambda: checks.check_tensor("x", [1.0]), TE, "x=.*torch tensor"),
    ("core.checks.check_tensor", E, lambda: checks.check_tensor("x", torch.zeros(0)), V, "x is empty"),
    ("core.checks.check_tensor", R, lambda: checks.check_tensor("x", torch.tensor([-1.0]), 0), V, "x holds -1.0"),
    ("core.checks.check_shape", S, lambda: checks.check_shape("y", torch.zeros(3), (4,)), V, r"y has shape \(3,\)"),
    # core.profiles
    ("core.profiles.resolve_profile", E, lambda: profiles.resolve_profile(""), V, "profile=''.*'paper', 'gpu'"),
    ("core.profiles.resolve_profile", R, lambda: profiles.resolve_profile("laptop"), V, "profile='laptop'"),
    ("core.profiles.resolve_profile", T, lambda: profiles.resolve_profile(5), V, "profile=5"),
    (
        "core.profiles.get_profile",
        R,
        lambda: profiles.get_profile(book.chapter("reversion").profiles, "cpu", arch="vgg"),
        V,
        "arch='vgg'",
    ),
    (
        "core.profiles.get_profile",
        T,
        lambda: profiles.get_profile(book.chapter("reversion").profiles, "cpu", replicates="5"),
        TE,
        "replicates='5'",
    ),
    (
        "core.profiles.get_profile",
        E,
        lambda: profiles.get_profile(book.chapter("reversion").profiles, ""),
        V,
        "profile=''",
    ),
    # core.runtime
    ("core.runtime.pick_device", T, lambda: runtime.pick_device(0), TE, "device=0"),
    ("core.runtime.pick_device", R, lambda: runtime.pick_device("tpu"), V, "device='tpu'"),
    ("core.runtime.pick_device", E, lambda: runtime.pick_device(""), V, "device=''"),
    ("core.runtime.set_threads", T, lambda: runtime.set_threads("2"), TE, "n='2'"),
    ("core.runtime.set_threads", R, lambda: runtime.set_threads(0), V, "n=0"),
    ("core.runtime.phase", R, lambda: runtime.phase("idling").__enter__(), V, "name='idling'.*'sampling'"),
    ("core.runtime.phase", T, lambda: runtime.phase(None).__enter__(), V, "name=None"),
    ("core.runtime.in_phase", R, lambda: runtime.in_phase("idling"), V, "name='idling'"),
    ("core.runtime.in_phase", T, lambda: runtime.in_phase(3), V, "name=3"),
    ("core.runtime.hub_offline", T, lambda: runtime.hub_offline("2"), TE, "timeout='2'"),
    ("core.runtime.hub_offline", R, lambda: runtime.hub_offline(0), V, "timeout=0"),
    ("core.runtime.from_hub", T, lambda: runtime.from_hub(None, "fix").__enter__(), TE, "needs=None"),
    ("core.runtime.from_hub", E, lambda: runtime.from_hub("a model", " ").__enter__(), V, "fix=''"),
    ("core.runtime.load_hub_dataset", T, lambda: runtime.load_hub_dataset("x", needs="data", fix=3), TE, "fix=3"),
    ("core.runtime.load_hub_dataset", E, lambda: runtime.load_hub_dataset("x", needs="", fix="f"), V, "needs=''"),
    # core.seeds
    ("core.seeds.stream_seed", R, lambda: seeds.stream_seed(0, "weather"), V, "name='weather'.*'init'"),
    ("core.seeds.stream_seed", R, lambda: seeds.stream_seed(-1, "init"), V, "seed=-1"),
    ("core.seeds.stream_seed", T, lambda: seeds.stream_seed(0, "init", 0.5), TE, "replicate=0.5"),
    ("core.seeds.rng", R, lambda: seeds.rng(2**32, "data"), V, "seed=4294967296"),
    ("core.seeds.rng", T, lambda: seeds.rng("0", "data"), TE, "seed='0'"),
    ("core.seeds.torch_generator", R, lambda: seeds.torch_generator(0, ""), V, "name=''"),
    ("core.seeds.torch_generator", T, lambda: seeds.torch_generator(None, "init"), TE, "seed=None"),
    ("core.seeds.Replicate", R, lambda: seeds.Replicate(0, -1), V, "index=-1"),
    ("core.seeds.Replicate", T, lambda: seeds.Replicate("0"), TE, "seed='0'"),
    ("core.seeds.replicates", R, lambda: seeds.replicates(0, 0), V, "n=0"),
    ("core.seeds.replicates", T, lambda: seeds.replicates(0, 2.0), TE, "n=2.0"),
    ("core.seeds.substream", E, lambda: seeds.substream(1), V, "keys=.*empty"),
    ("core.seeds.substream", T, lambda: seeds.substream(1, 0.5), TE, "keys="),
    ("core.seeds.substream", R, lambda: seeds.substream(1, -2), V, "keys=-2"),
    ("core.seeds.seed_everything", T, lambda: seeds.seed_everything("abc"), TE, "seed='abc'"),
    ("core.seeds.seed_everything", R, lambda: seeds.seed_everything(-1), V, "seed=-1"),
    ("core.seeds.epoch_order", T, lambda: seeds.epoch_order(0, 0.5, 4), TE, "epoch=0.5"),
    ("core.seeds.epoch_order", R, lambda: seeds.epoch_order(-1, 0, 4), V, "seed=-1"),
    ("core.seeds.epoch_order", E, lambda: seeds.epoch_order(0, 0, 0), V, "n=0"),
    # core.cache
    ("core.cache.RunCache", T, lambda: cache_mod.RunCache(5), TE, "root=5"),
    ("core.cache.RunCache", T, lambda: cache_mod.RunCache(enabled="yes"), TE, "enabled='yes'"),
    ("core.cache.RunCache", E, lambda: cache_mod.RunCache(""), V, "root=''"),
    ("core.cache.RunCache", R, lambda: cache_mod.RunCache(enabled=False).load("../up", {}), V, "kind='../up'"),
    ("core.cache.RunCache", E, lambda: cache_mod.RunCache(enabled=False).path("", {}), V, "kind=''"),
    ("core.cache.RunCache", T, lambda: cache_mod.RunCache(enabled=False).cached("x", {}, 5), TE, "compute=5"),
    ("core.cache.RunCache", R, lambda: cache_mod.RunCache(enabled=False).path("quarantine", {}), V, "kind='quar"),
    ("core.cache.RunCache", T, lambda: cache_mod.RunCache(enabled=False).quarantine(5, "why"), TE, "path=5"),
    ("core.cache.RunCache", T, lambda: cache_mod.RunCache("/c").quarantine("/c/k/e/f", 5), TE, "reason=5"),
    ("core.cache.RunCache", R, lambda: cache_mod.RunCache("/c").quarantine("/d/k/e/f", "why"), V, "path='/d/k/e/f'"),
    ("core.cache.human_size", T, lambda: cache_mod.human_size("3"), TE, "n='3'"),
    ("core.cache.human_size", R, lambda: cache_mod.human_size(-1), V, "n=-1"),
    ("core.cache.read_record", T, lambda: cache_mod.read_record(5), TE, "path=5"),
    ("core.cache.read_record", R, lambda: cache_mod.read_record("/no/such.pt"), FileNotFoundError, "/no/such.pt"),
    ("core.cache.check_file", T, lambda: cache_mod.check_file(5), TE, "path=5"),
    ("core.cache.check_file", R, lambda: cache_mod.check_file("/no/such.pt"), FileNotFoundError, "/no/such.pt"),
    ("core.cache.is_stale_temporary", T, lambda: cache_mod.is_stale_temporary(5), TE, "path=5"),
    # core.claims
    ("core.claims.Claim", T, lambda: claims.Claim("T1", "s", "x", "0.5", ">", 0.5), TE, "value='0.5'"),
    ("core.claims.Claim", R, lambda: claims.Claim("T1", "s", "x", 1.0, ">", NAN), V, "threshold=nan"),
    ("core.claims.Claim", R, lambda: claims.Claim("T1", "s", "x", 1.0, "=>", 0.5), V, "op='=>'"),
    ("core.claims.Claim", E, lambda: claims.Claim("", "s", "x", 1.0, ">", 0.5), V, "id=''"),
    ("core.claims.Claim", S, lambda: claims.Claim("T1", "s", "x", 1.0, ">", 0.5, interval=(1.0,)), V, "interval"),
    ("core.claims.check_claims", T, lambda: claims.check_claims([1]), TE, "claims=1"),
    ("core.claims.check_claims", E, lambda: claims.check_claims([]), V, "claims=.*empty"),
    ("core.claims.judge", T, lambda: claims.judge(5), TE, "claims=5"),
    ("core.claims.judge", E, lambda: claims.judge([]), V, "claims=.*empty"),
    ("core.claims.unexplained", T, lambda: claims.unexplained(5), TE, "claims=5"),
    ("core.claims.unexplained", E, lambda: claims.unexplained([]), V, "claims=.*empty"),
    (
        "core.claims.Spec",
        T,
        lambda: claims.Spec(id="T1", statement="s", statistic="x", op=">", threshold=None, why="w"),
        TE,
        "threshold=None",
    ),
    (
        "core.claims.Spec",
        R,
        lambda: claims.Spec(id="T1", statement="s", statistic="x", op="=", threshold=0.5, why="w"),
        V,
        "op='='",
    ),
    (
        "core.claims.Spec",
        E,
        lambda: claims.Spec(id="", statement="s", statistic="x", op=">", threshold=0.5, why="w"),
        V,
        "id=''",
    ),
    ("core.claims.Measured", T, lambda: claims.Measured("0.5"), TE, "value='0.5'"),
    ("core.claims.Measured", T, lambda: claims.Measured(0.5, context=[1]), TE, "context="),
    ("core.claims.make_claims", T, lambda: claims.make_claims(SPEC, {}), TE, "specs="),
    ("core.claims.make_claims", E, lambda: claims.make_claims([], {}), V, "specs=.*empty"),
    (
        "core.claims.make_claims",
        R,
        lambda: claims.make_claims([dataclasses.replace(SPEC, threshold="a rule")], {"T1": 1.0}),
        V,
        "rule",
    ),
    # core.ledger
    ("core.ledger.read", T, lambda: ledger.read(5), TE, "path=5"),
    ("core.ledger.problems", T, lambda: ledger.problems([SPEC], 5), TE, "ledger=5"),
    (
        "core.ledger.record",
        R,
        lambda: ledger.record("/tmp/x.json", SPEC, "moved", "w", "y", True, "d", "c"),
        V,
        "event='moved'",
    ),
    (
        "core.ledger.record",
        T,
        lambda: ledger.record("/tmp/x.json", SPEC, "revised", "w", "y", "yes", "d", "c"),
        TE,
        "after_results='yes'",
    ),
    (
        "core.ledger.record",
        E,
        lambda: ledger.record("/tmp/x.json", SPEC, "revised", "", "y", True, "d", "c"),
        V,
        "what=''",
    ),
    # core.record
    ("core.record.versions", T, lambda: record.versions("torch"), TE, "packages='torch'"),
    ("core.record.write_metrics", T, lambda: record.write_metrics("/tmp/x", 5, {}, [CLAIM], 0), TE, "chapter=5"),
    ("core.record.write_metrics", E, lambda: record.write_metrics("/tmp/x", "toy", {}, [], 0), V, "claims="),
    ("core.record.write_metrics", R, lambda: record.write_metrics("/tmp/x", "toy", {}, [CLAIM], -1), V, "started=-1"),
    ("core.record.read_metrics", T, lambda: record.read_metrics(5), TE, "path=5"),
    ("core.record.add_to_metrics", T, lambda: record.add_to_metrics(5, "sweep", {}), TE, "out_dir=5"),
    ("core.record.add_to_metrics", E, lambda: record.add_to_metrics("/tmp", "", {}), V, "name=''"),
    (
        "core.record.add_to_metrics",
        R,
        lambda: record.add_to_metrics("/no/such", "sweep", {}),
        FileNotFoundError,
        "out_dir=",
    ),
    # core.scale
    ("core.scale.Scale", T, lambda: scale.Scale(5, max, max, ("A*",), {"cpu": (1.0,)}), TE, "knob=5"),
    ("core.scale.Scale", E, lambda: scale.Scale("w", max, max, (), {"cpu": (1.0,)}), V, "claims="),
    ("core.scale.Scale", R, lambda: scale.Scale("w", max, max, ("A*",), {"cpu": (0.5,)}), V, "factors"),
    ("core.scale.fit_trend", T, lambda: scale.fit_trend(5, [1.0], [0.0], [0.0], 0.5, ">"), TE, "claim=5"),
    ("core.scale.fit_trend", S, lambda: scale.fit_trend("A", [1.0], [0.0, 1.0], [0.0], 0.5, ">"), V, "one length"),
    ("core.scale.fit_trend", R, lambda: scale.fit_trend("A", [1.0], [0.0], [0.0], 0.5, ">", level=2), V, "level=2"),
    ("core.scale.fit_trend", E, lambda: scale.fit_trend("", [1.0], [0.0], [0.0], 0.5, ">"), V, "claim=''"),
    ("core.scale.trends", T, lambda: scale.trends(5, SWEEP_AXIS), TE, "points=5"),
    ("core.scale.trends", E, lambda: scale.trends([], SWEEP_AXIS), V, "points="),
    ("core.scale.point", T, lambda: scale.point(5, "cpu", 0, 1.0), TE, "package=5"),
    ("core.scale.point", R, lambda: scale.point(book.CHAPTERS["mechanism"], "cpu", 0, -1.0), V, "factor=-1"),
    ("core.scale.standard_error", T, lambda: scale.standard_error("0.1", 3), TE, "half_width='0.1'"),
    ("core.scale.standard_error", R, lambda: scale.standard_error(0.1, 0), V, "replicates=0"),
    ("core.scale.reference_claims", T, lambda: scale.reference_claims(SWEEP.points, 5), TE, "scale=5"),
    ("core.scale.reference_claims", E, lambda: scale.reference_claims([], SWEEP_AXIS), V, "points="),
    ("core.scale.sweep", T, lambda: scale.sweep(5), TE, "ex=5"),
    ("core.scale.recorded", T, lambda: scale.recorded(5, "cpu", 0), TE, "chapter=5"),
    ("core.scale.recorded", R, lambda: scale.recorded("mechanism", "cpu", -1), V, "seed=-1"),
    ("core.scale.table", T, lambda: scale.table(5), TE, "sweep=5"),
    ("core.scale.summary", T, lambda: scale.summary(5), TE, "sweep=5"),
    # core.chapter
    ("core.chapter.start", T, lambda: chapter.start("reversion", "smoke", "abc"), TE, "seed='abc'"),
    ("core.chapter.start", T, lambda: chapter.start("reversion", "smoke", 1.5), TE, "seed=1.5"),
    ("core.chapter.start", R, lambda: chapter.start("reversion", "smoke", -1), V, "seed=-1"),
    ("core.chapter.start", R, lambda: chapter.start("reversion", "smoke", 2**32), V, "seed=4294967296"),
    ("core.chapter.start", E, lambda: chapter.start("", "smoke"), V, "chapter=''"),
    ("core.chapter.start", E, lambda: chapter.start("reversion", ""), V, "profile=''"),
    ("core.chapter.start", E, lambda: chapter.start("reversion", "smoke", out_dir=""), V, "out_dir=''"),
    ("core.chapter.start", T, lambda: chapter.start("reversion", "smoke", device=None), TE, "device=None"),
    ("core.chapter.check_run", T, lambda: chapter.check_run(1, int, "run"), TE, "run='run'"),
    ("core.chapter.claims_table", T, lambda: chapter.claims_table([1]), TE, "claims=1"),
    ("core.chapter.claims_table", E, lambda: chapter.claims_table([]), V, "claims="),
    ("core.chapter.prepare", T, lambda: chapter.prepare("reversion", "smoke"), TE, "chapter='reversion'"),
    (
        "core.chapter.prepare",
        R,
        lambda: chapter.prepare(book.chapter("reversion"), "smoke", arch="vgg"),
        V,
        "arch='vgg'",
    ),
    ("core.chapter.prepare", E, lambda: chapter.prepare(book.chapter("reversion"), ""), V, "profile=''"),
    (
        "core.chapter.execute",
        T,
        lambda: chapter.execute(book.chapter("reversion"), "smoke", record="yes"),
        TE,
        "record='yes'",
    ),
    ("core.chapter.execute", R, lambda: chapter.execute(book.chapter("reversion"), "smoke", -1), V, "seed=-1"),
    (
        "core.chapter.execute",
        R,
        lambda: chapter.execute(book.chapter("reversion"), "smoke", colour="red"),
        V,
        "setting='colour'.*'arch'",
    ),
    (
        "core.chapter.Chapter",
        R,
        lambda: dataclasses.replace(book.chapter("reversion"), part="appendix"),
        V,
        "part='appendix'",
    ),
    ("core.chapter.Chapter", T, lambda: dataclasses.replace(book.chapter("reversion"), run=5), TE, "run=5"),
    ("core.chapter.Chapter", E, lambda: dataclasses.replace(book.chapter("reversion"), specs=()), V, "specs="),
    ("core.chapter.Run", R, lambda: run().at(-1), V, "replicate=-1"),
    ("core.chapter.Run", T, lambda: run().replicates("3"), TE, "n='3'"),
    ("core.figures.png_data_uri", T, lambda: figures.png_data_uri(5), TE, "fig=5"),
    (
        "core.figures.png_data_uri",
        R,
        lambda: figures.png_data_uri(__import__("matplotlib.pyplot").pyplot.figure(), 0),
        V,
        "dpi=0",
    ),
    ("core.figures.frame_slider", T, lambda: figures.frame_slider(5, "m", "s"), TE, "frames=5"),
    ("core.figures.frame_slider", E, lambda: figures.frame_slider({}, "m", "s"), V, "frames"),
    (
        "core.chapter.replicated",
        T,
        lambda: chapter.replicated(run(), Replicated(1), "reversion", print, object, versions="1"),
        TE,
        "versions='1'",
    ),
    (
        "core.chapter.replicated",
        R,
        lambda: chapter.replicated(run(), Replicated(0), "reversion", print, object),
        V,
        "settings.replicates=0",
    ),
    (
        "core.chapter.replicate_results",
        T,
        lambda: chapter.replicate_results(None, Replicated(1), "reversion", print, object),
        TE,
        "run=None",
    ),
    (
        "core.chapter.replicate_results",
        E,
        lambda: chapter.replicate_results(run(), Replicated(1), "", print, object),
        V,
        "kind=''",
    ),
    ("core.chapter.verdict", T, lambda: chapter.verdict(["T1"]), TE, "claims='T1'"),
    ("core.chapter.verdict", E, lambda: chapter.verdict([]), V, "claims="),
    # core.figures
    ("core.figures.plot_scorecard", T, lambda: figures.plot_scorecard([]), TE, "margins="),
    (
        "core.figures.plot_scorecard",
        S,
        lambda: figures.plot_scorecard(pd.DataFrame({"chapter": []})),
        V,
        "margins lacks",
    ),
    ("core.figures.plot_sweep", T, lambda: figures.plot_sweep(5), TE, "sweep=5"),
    ("core.figures.plot_sweep", E, lambda: figures.plot_sweep(SWEEP, ids=[]), V, "ids="),
    ("core.figures.plot_sweep", R, lambda: figures.plot_sweep(SWEEP, ids=["Z9"]), V, "ids holds 'Z9'"),
    ("core.figures.show", T, lambda: figures.show(None, run(), 5), TE, "name=5"),
    ("core.figures.show", E, lambda: figures.show(None, run(), ""), V, "name=''"),
    # core.jobs
    ("core.jobs.run_jobs", T, lambda: jobs.run_jobs(5, [1], None, None), TE, "job=5"),
    ("core.jobs.run_jobs", E, lambda: jobs.run_jobs(print, [], None, None), V, "items="),
    ("core.jobs.run_jobs", R, lambda: jobs.run_jobs(print, [1], None, None, workers=0), V, "workers=0"),
    ("core.jobs.Job", T, lambda: jobs.Job(5, print), TE, "label=5"),
    ("core.jobs.Job", E, lambda: jobs.Job(" ", print), V, "label=' '"),
    ("core.jobs.Job", T, lambda: jobs.Job("a", 5), TE, "fn=5"),
    ("core.jobs.Job", T, lambda: jobs.Job("a", print, [1]), TE, "args=.1."),
    ("core.jobs.Stage", T, lambda: jobs.Stage(5, ()), TE, "name=5"),
    ("core.jobs.Stage", R, lambda: jobs.Stage("two words", ()), V, "name='two words'"),
    ("core.jobs.Stage", E, lambda: jobs.Stage("", ()), V, "name=''"),
    ("core.jobs.Stage", T, lambda: jobs.Stage("a", [JOB]), TE, "jobs="),
    ("core.jobs.Stage", T, lambda: jobs.Stage("a", (5,)), TE, "jobs="),
    ("core.jobs.at_replicates", T, lambda: jobs.at_replicates(Replicated(1), None), TE, "run=None"),
    ("core.jobs.at_replicates", R, lambda: jobs.at_replicates(Replicated(0), run()), V, "settings.replicates=0"),
    ("core.jobs.per_replicate", T, lambda: jobs.per_replicate("a", print, Replicated(1), "run"), TE, "run='run'"),
    (
        "core.jobs.per_replicate",
        R,
        lambda: jobs.per_replicate("a", print, Replicated(0), run()),
        V,
        "settings.replicates=0",
    ),
    (
        "core.jobs.per_replicate_runs",
        T,
        lambda: jobs.per_replicate_runs("a", print, Replicated(1), "run", lambda s: ()),
        TE,
        "run='run'",
    ),
    (
        "core.jobs.per_replicate_runs",
        R,
        lambda: jobs.per_replicate_runs("a", print, Replicated(0), run(), lambda s: ()),
        V,
        "settings.replicates=0",
    ),
    (
        "core.jobs.results_stage",
        T,
        lambda: jobs.results_stage(Replicated(1), 5, "reversion", print, Replicated),
        TE,
        "run=5",
    ),
    (
        "core.jobs.results_stage",
        R,
        lambda: jobs.results_stage(Replicated(0), run(), "reversion", print, Replicated),
        V,
        "settings.replicates=0",
    ),
    ("core.jobs.run_stages", E, lambda: jobs.run_stages([]), V, "stages="),
    ("core.jobs.run_stages", T, lambda: jobs.run_stages([JOB]), TE, "stages="),
    ("core.jobs.run_stages", R, lambda: jobs.run_stages([jobs.Stage("a", (JOB,))], workers=0), V, "workers=0"),
    # the book: steerlib.book, steerlib.jobs, steerlib.scorecard, steerlib.cache
    ("book.chapter", R, lambda: book.chapter("nope"), V, "chapter='nope'"),
    ("book.chapter", T, lambda: book.chapter(None), V, "chapter=None"),
    ("book.part_of", R, lambda: book.part_of("nope"), V, "chapter='nope'"),
    ("book.part_of", T, lambda: book.part_of(5), V, "chapter=5"),
    ("book.notebook", R, lambda: book.notebook("nope"), V, "chapter='nope'"),
    ("book.notebook", E, lambda: book.notebook(""), V, "chapter=''"),
    ("book.execute", T, lambda: book.execute(5), TE, "name=5"),
    ("book.execute", R, lambda: book.execute("nope"), V, "chapter='nope'"),
    ("jobs.launch", T, lambda: job_command.launch("reversion", [STAGE], "local", "logs"), TE, "argv='reversion'"),
    ("jobs.launch", E, lambda: job_command.launch(["reversion"], [], "local", "logs"), V, "stages="),
    ("jobs.launch", R, lambda: job_command.launch(["reversion"], [STAGE], "pbs", "logs"), V, "cluster=.pbs."),
    ("jobs.stages", R, lambda: job_command.stages("nope"), V, "chapter='nope'"),
    ("jobs.stages", E, lambda: job_command.stages("reversion", ""), V, "profile=''"),
    ("cache.chapter_of", T, lambda: cache_command.chapter_of(5), TE, "kind=5"),
    ("cache.scan", T, lambda: cache_command.scan(5), TE, "root=5"),
    ("cache.scan", E, lambda: cache_command.scan(""), V, "root=''"),
    ("cache.select", T, lambda: cache_command.select("entries"), TE, "entries='entries'"),
    ("cache.select", T, lambda: cache_command.select([], kinds="sft"), TE, "kinds='sft'"),
    ("cache.select", R, lambda: cache_command.select([], chapters=["nope"]), V, r"chapters\[0\]='nope'"),
    ("cache.select", R, lambda: cache_command.select([], older_than=-1), V, "older_than=-1"),
    ("cache.select", E, lambda: cache_command.select([], states=()), V, "states=.*empty"),
    ("cache.verify", T, lambda: cache_command.verify(5), TE, "entries=5"),
    ("cache.verify", T, lambda: cache_command.verify([5]), TE, "entries=5"),
    ("cache.prune", T, lambda: cache_command.prune([5]), TE, "entries=5"),
    ("cache.prune", T, lambda: cache_command.prune([], dry_run="yes"), TE, "dry_run='yes'"),
    # core.scorecard
    ("scorecard.collect", T, lambda: scorecard.collect(5), TE, "results_dir=5"),
    ("scorecard.collect", E, lambda: scorecard.collect(""), V, "results_dir=''"),
    ("scorecard.collect", R, lambda: scorecard.collect("/no/such/folder"), FileNotFoundError, "results_dir="),
    ("scorecard.collect", R, lambda: scorecard.collect("/tmp", profile="laptop"), V, "profile='laptop'"),
    ("scorecard.check_card", T, lambda: scorecard.check_card([]), TE, "card="),
    ("scorecard.summary", T, lambda: scorecard.summary([]), TE, "card="),
    ("scorecard.summary", E, lambda: scorecard.summary(pd.DataFrame()), V, "card lacks"),
    ("scorecard.headline", T, lambda: scorecard.headline(None), TE, "card="),
    ("scorecard.headline", E, lambda: scorecard.headline(pd.DataFrame()), V, "card lacks"),
    ("scorecard.to_html", E, lambda: scorecard.to_html(pd.DataFrame()), V, "card lacks"),
    ("scorecard.to_html", T, lambda: scorecard.to_html("card"), TE, "card="),
    ("scorecard.sources", T, lambda: scorecard.sources({}), TE, "card="),
    ("scorecard.chapter_link", T, lambda: scorecard.chapter_link(5), TE, "chapter=5"),
    # performance
    ("performance.chapter_costs", T, lambda: performance.chapter_costs(5), TE, "results_dir=5"),
    ("performance.chapter_costs", R, lambda: performance.chapter_costs("/no/such"), FileNotFoundError, "results_dir="),
    ("performance.benchmark", T, lambda: performance.benchmark(5), TE, "results_dir=5"),
    ("performance.benchmark", R, lambda: performance.benchmark("/no/such"), FileNotFoundError, "results_dir="),
    ("performance.cold_costs", T, lambda: performance.cold_costs(5), TE, "folder=5"),
    ("performance.cold_costs", R, lambda: performance.cold_costs("/no/such"), FileNotFoundError, "folder="),
    ("performance.budget", T, lambda: performance.budget({}), TE, "costs="),
    ("performance.budget", E, lambda: performance.budget(pd.DataFrame()), V, "costs lacks"),
    ("performance.budget", R, lambda: performance.budget(_costs(), cap_s=0), V, "cap_s=0"),
    ("performance.budget", R, lambda: performance.budget(_costs(), replicates=0), V, "replicates=0"),
    ("performance.budget", R, lambda: performance.budget(_costs(), {"a": (2.0,)}), V, "sweeps\\['a'\\]\\[0\\]=2"),
    ("performance.budget", T, lambda: performance.budget(_costs(), {"a": [0.5]}), TE, "sweeps\\['a'\\]="),
    ("performance.wall_bound", T, lambda: performance.wall_bound({}, 2), TE, "table="),
    ("performance.wall_bound", E, lambda: performance.wall_bound(pd.DataFrame(), 2), V, "lacks the column"),
    ("performance.wall_bound", R, lambda: performance.wall_bound(performance.budget(_costs()), 0), V, "cores=0"),
    ("performance.shrink_needed", T, lambda: performance.shrink_needed({}, 1.0, ("a",)), TE, "costs="),
    ("performance.shrink_needed", R, lambda: performance.shrink_needed(_costs(), 0, ("a",)), V, "target_s=0"),
    ("performance.shrink_needed", T, lambda: performance.shrink_needed(_costs(), 1.0, "a"), TE, "parts='a'"),
    # vision.data
    ("vision.data.load_dataset", R, lambda: data.load_dataset("svhn"), V, "dataset='svhn'"),
    ("vision.data.load_dataset", E, lambda: data.load_dataset(""), V, "dataset=''"),
    ("vision.data.load_dataset", T, lambda: data.load_dataset("mnist", source=5), TE, "source=5"),
    ("vision.data.load_dataset", R, lambda: data.load_dataset("mnist", source="/no/such"), V, "source='/no/such'"),
    ("vision.data.slant", T, lambda: data.slant(X.tolist()), TE, "x="),
    ("vision.data.slant", E, lambda: data.slant(X[:0]), V, "x is empty"),
    ("vision.data.slant", S, lambda: data.slant(X[0, 0]), V, "x has shape"),
    ("vision.data.held_out", T, lambda: data.held_out(X, 2), TE, "data="),
    ("vision.data.held_out", R, lambda: data.held_out(image_data(), 4), V, "n=4"),
    ("vision.data.held_out", R, lambda: data.held_out(image_data(), 0), V, "n=0"),
    ("vision.data.ImageData", R, lambda: image_data().slant_target("val"), V, "split='val'"),
    ("vision.data.ImageData", T, lambda: image_data(x_train=X.tolist()), TE, "x_train="),
    ("vision.data.ImageData", R, lambda: image_data(y_test=Y + 9), V, "y_test holds 10"),
    ("vision.data.ImageData", E, lambda: image_data(x_train=X[:0], y_train=Y[:0]), V, "x_train is empty"),
    ("vision.data.ImageData", S, lambda: image_data(y_train=Y[:3]), V, "y_train has shape"),
    ("vision.data.ImageData", R, lambda: image_data(num_classes=1), V, "num_classes=1"),
    # vision.shifts
    ("vision.shifts.severities", R, lambda: shifts.severities("fog", (1, 8, 8)), V, "shift='fog'"),
    ("vision.shifts.severities", T, lambda: shifts.severities("rotate", "1x8x8"), TE, "input_shape="),
    ("vision.shifts.severities", E, lambda: shifts.severities("rotate", ()), V, "input_shape="),
    (
        "vision.shifts.apply_shift",
        R,
        lambda: shifts.apply_shift(X, "rotate", 1e9),
        V,
        r"severity=1000000000.0.*\[0, 360\]",
    ),
    ("vision.shifts.apply_shift", R, lambda: shifts.apply_shift(X, "noise", NAN), V, "severity=nan"),
    ("vision.shifts.apply_shift", R, lambda: shifts.apply_shift(X, "blur", INF), V, "severity=inf"),
    ("vision.shifts.apply_shift", R, lambda: shifts.apply_shift(X, "saltpepper", 1.5), V, "severity=1.5"),
    ("vision.shifts.apply_shift", T, lambda: shifts.apply_shift(X, "noise", "0.1"), TE, "severity='0.1'"),
    ("vision.shifts.apply_shift", T, lambda: shifts.apply_shift(X.numpy(), "noise", 0.1), TE, "x="),
    ("vision.shifts.apply_shift", E, lambda: shifts.apply_shift(X[:0], "noise", 0.1), V, "x is empty"),
    ("vision.shifts.apply_shift", R, lambda: shifts.apply_shift(X, "noise", 0.1, (1, 0)), V, "value_range="),
    ("vision.shifts.evaluation_sets", T, lambda: shifts.evaluation_sets(X, Y, "rotate", (0, 1)), TE, "shifts="),
    ("vision.shifts.evaluation_sets", E, lambda: shifts.evaluation_sets(X, Y, (), (0, 1)), V, "shifts="),
    ("vision.shifts.evaluation_sets", R, lambda: shifts.evaluation_sets(X, Y, ("fog",), (0, 1)), V, "shifts"),
    ("vision.shifts.evaluation_sets", S, lambda: shifts.evaluation_sets(X, Y[:2], ("noise",), (0, 1)), V, "y has"),
    ("vision.shifts.focus_sets", E, lambda: shifts.focus_sets(X[:0], "rotate", (0, 1)), V, "x is empty"),
    ("vision.shifts.focus_sets", R, lambda: shifts.focus_sets(X, "fog", (0, 1)), V, "shift='fog'"),
    ("vision.shifts.focus_sets", T, lambda: shifts.focus_sets(X, "rotate", (0, 1), seed="0"), TE, "seed='0'"),
    ("vision.shifts.with_clean", T, lambda: shifts.with_clean([]), TE, "table="),
    ("vision.shifts.with_clean", E, lambda: shifts.with_clean(pd.DataFrame({"shift": []})), V, "table has no clean"),
    ("vision.shifts.with_clean", S, lambda: shifts.with_clean(pd.DataFrame({"level": [0]})), V, "table lacks"),
    # vision.models
    ("vision.models.make_model", T, lambda: vmodels.make_model("cnn", (1, 8, 8), 10, width="32"), TE, "width='32'"),
    ("vision.models.make_model", R, lambda: vmodels.make_model("cnn", (1, 2, 2), 10), V, "input_shape"),
    ("vision.models.make_model", R, lambda: vmodels.make_model("vgg", (1, 8, 8), 10), V, "arch='vgg'"),
    ("vision.models.make_model", R, lambda: vmodels.make_model("mlp", (1, 8, 8), 0), V, "out_dim=0"),
    ("vision.models.make_model", E, lambda: vmodels.make_model("mlp", (), 10), V, "input_shape=()"),
    # vision.ensemble
    ("vision.ensemble.Ensemble", T, lambda: ensemble.Ensemble(5, ONE), TE, "make=5"),
    ("vision.ensemble.Ensemble", T, lambda: ensemble.Ensemble(mlp, (0,)), TE, "members=0"),
    ("vision.ensemble.Ensemble", E, lambda: ensemble.Ensemble(mlp, ()), V, "members=.*empty"),
    ("vision.ensemble.Ensemble", R, lambda: members().member(2), V, "i=2"),
    ("vision.ensemble.Ensemble", E, lambda: members().predict(X[:0]), V, "x is empty"),
    # vision.train
    ("vision.train.TrainConfig", T, lambda: train.TrainConfig(epochs=2.5), TE, "epochs=2.5"),
    ("vision.train.TrainConfig", R, lambda: train.TrainConfig(lr=0), V, "lr=0"),
    ("vision.train.TrainConfig", R, lambda: train.TrainConfig(optimizer="lbfgs"), V, "optimizer='lbfgs'"),
    ("vision.train.TrainConfig", R, lambda: train.TrainConfig(momentum=0.9), V, "momentum=0.9"),
    # vision.xor
    ("vision.xor.XorClusters", R, lambda: xor.XorClusters(flip=0.5), V, "flip=0.5"),
    ("vision.xor.XorClusters", T, lambda: xor.XorClusters(d=2.5), TE, "d=2.5"),
    ("vision.xor.xor_means", T, lambda: xor.xor_means({"d": 3}, np.random.default_rng(0)), TE, "data="),
    ("vision.xor.xor_means", T, lambda: xor.xor_means(None, np.random.default_rng(0)), TE, "data=None"),
    ("vision.xor.XorClusters", E, lambda: xor.XorClusters(d=0), V, "d=0"),
    ("vision.xor.check_means", S, lambda: xor.check_means(np.ones((3, 2))), V, "means"),
    ("vision.xor.check_means", R, lambda: xor.check_means(np.array([[1.0, 1.0], [1.0, 0.0]])), V, "not orthogonal"),
    ("vision.xor.check_means", T, lambda: xor.check_means("mu"), TE, "means holds"),
    ("vision.xor.sample_xor", R, lambda: xor.sample_xor(np.eye(2), 0, 0.1, np.random.default_rng(0)), V, "n=0"),
    ("vision.xor.sample_xor", T, lambda: xor.sample_xor(np.eye(2), 2.5, 0.1, np.random.default_rng(0)), TE, "n=2.5"),
    ("vision.xor.TwoLayerReLU", R, lambda: xor.TwoLayerReLU(3, 1, 1.0), V, "width=1"),
    ("vision.xor.TwoLayerReLU", T, lambda: xor.TwoLayerReLU(3.5, 4, 1.0), TE, "d=3.5"),
    ("vision.xor.signal_share", S, lambda: xor.signal_share(torch.ones(4, 3), torch.ones(2, 5)), V, "means"),
    ("vision.xor.signal_share", T, lambda: xor.signal_share(np.ones((4, 3)), torch.ones(2, 3)), TE, "w="),
    # vision.slabs
    ("vision.slabs.SlabData", R, lambda: slabs.SlabData(centre_p=1.0), V, "centre_p=1"),
    ("vision.slabs.SlabData", R, lambda: slabs.SlabData(margin=0.0), V, "margin=0"),
    ("vision.slabs.SlabData", R, lambda: slabs.SlabData(dim=10), V, "dim=10 is below linear \\+ slabs = 50"),
    ("vision.slabs.SlabData", T, lambda: slabs.SlabData(dim=50.0), TE, "dim=50.0"),
    (
        "vision.slabs.sample_slabs",
        R,
        lambda: slabs.sample_slabs(slabs.SlabData(), 0, np.random.default_rng(0)),
        V,
        "n=0",
    ),
    (
        "vision.slabs.sample_slabs",
        T,
        lambda: slabs.sample_slabs({"dim": 50}, 10, np.random.default_rng(0)),
        TE,
        "data=",
    ),
    ("vision.slabs.random_rotation", R, lambda: slabs.random_rotation(0, np.random.default_rng(0)), V, "dim=0"),
    ("vision.slabs.random_rotation", T, lambda: slabs.random_rotation(2.5, np.random.default_rng(0)), TE, "dim=2.5"),
    (
        "vision.slabs.permute_coordinates",
        R,
        lambda: slabs.permute_coordinates(np.ones((3, 2)), (2,), np.random.default_rng(0)),
        V,
        "coords=2",
    ),
    (
        "vision.slabs.permute_coordinates",
        S,
        lambda: slabs.permute_coordinates(np.ones(3), (0,), np.random.default_rng(0)),
        V,
        "z",
    ),
    (
        "vision.slabs.permute_coordinates",
        T,
        lambda: slabs.permute_coordinates("z", (0,), np.random.default_rng(0)),
        TE,
        "z holds",
    ),
    (
        "vision.slabs.margin_band",
        T,
        lambda: slabs.margin_band(np.ones((3, 50)), None, np.random.default_rng(0)),
        TE,
        "data=None",
    ),
    (
        "vision.slabs.margin_band",
        S,
        lambda: slabs.margin_band(np.ones(3), slabs.SlabData(), np.random.default_rng(0)),
        V,
        "z",
    ),
    ("vision.slabs.slab_rule", T, lambda: slabs.slab_rule(np.ones(3), None), TE, "data=None"),
    ("vision.slabs.slab_rule", E, lambda: slabs.slab_rule(np.ones(0), slabs.SlabData()), V, "values"),
    ("vision.train.TrainConfig", R, lambda: train.TrainConfig(epochs=2, warmup_epochs=3), V, "warmup_epochs=3"),
    (
        "vision.train.train_ensemble",
        T,
        lambda: train.train_ensemble(mlp, ONE, "ce", X, Y, train.TrainConfig(), "cpu"),
        TE,
        "loss='ce'",
    ),
    (
        "vision.train.train_ensemble",
        R,
        lambda: train.train_ensemble(mlp, ONE, losses.make_loss("ce", 10), X, Y, train.TrainConfig(), "cpu"),
        V,
        "batch_size=64",
    ),
    (
        "vision.train.train_ensemble",
        E,
        lambda: train.train_ensemble(mlp, ONE, losses.make_loss("ce", 10), X[:0], Y[:0], train.TrainConfig(), "cpu"),
        V,
        "x is empty",
    ),
    (
        "vision.train.train_ensemble",
        S,
        lambda: train.train_ensemble(mlp, ONE, losses.make_loss("ce", 10), X, Y[:2], train.TrainConfig(), "cpu"),
        V,
        "y has shape",
    ),
    (
        "vision.train.train_separately",
        E,
        lambda: train.train_separately(mlp, (), losses.make_loss("ce", 10), X, Y, train.TrainConfig()),
        V,
        "members=.*empty",
    ),
    (
        "vision.train.train_separately",
        T,
        lambda: train.train_separately(mlp, ONE, losses.make_loss("ce", 10), X, Y, {"epochs": 1}),
        TE,
        "cfg=",
    ),
    (
        "vision.train.train_separately",
        R,
        lambda: train.train_separately(mlp, ONE, losses.make_loss("ce", 10), X, Y, train.TrainConfig(batch_size=8)),
        V,
        "batch_size=8",
    ),
    (
        "vision.train.fit",
        T,
        lambda: train.fit("digits", losses.make_loss("ce", 10), "mlp", ONE, train.TrainConfig(), torch.device("cpu")),
        TE,
        "data='digits'",
    ),
    (
        "vision.train.fit",
        R,
        lambda: train.fit(
            image_data(), losses.make_loss("ce", 10), "vgg", ONE, train.TrainConfig(batch_size=2), torch.device("cpu")
        ),
        V,
        "arch='vgg'",
    ),
    (
        "vision.train.fit",
        E,
        lambda: train.fit(
            image_data(), losses.make_loss("ce", 10), "mlp", (), train.TrainConfig(batch_size=2), torch.device("cpu")
        ),
        V,
        "members=",
    ),
    # vision.ladders
    ("vision.ladders.grid", R, lambda: ladders.grid("fog", (1, 8, 8)), V, "shift='fog'"),
    ("vision.ladders.grid", T, lambda: ladders.grid("blur", "1x8x8"), TE, "input_shape="),
    (
        "vision.ladders.read_ladder",
        S,
        lambda: ladders.read_ladder(np.array([0.0, 1.0]), np.array([1.0])),
        V,
        "accuracy has shape",
    ),
    (
        "vision.ladders.read_ladder",
        R,
        lambda: ladders.read_ladder(np.array([1.0, 0.0]), np.array([1.0, 0.5])),
        V,
        "severities must increase",
    ),
    (
        "vision.ladders.read_ladder",
        R,
        lambda: ladders.read_ladder(np.array([0.0, 1.0]), np.array([1.0, 1.5])),
        V,
        "accuracy holds 1.5",
    ),
    ("vision.ladders.read_ladder", T, lambda: ladders.read_ladder("0 1", np.array([1.0, 0.5])), TE, "severities"),
    (
        "vision.ladders.severity_ladders",
        T,
        lambda: ladders.severity_ladders(mlp(), X, Y, ("rotate",), (0, 1)),
        TE,
        "model=",
    ),
    (
        "vision.ladders.severity_ladders",
        R,
        lambda: ladders.severity_ladders(members(), X, Y, ("fog",), (0, 1)),
        V,
        "shifts",
    ),
    (
        "chapters.extrapolation.common.setup",
        R,
        lambda: part_one.setup("digits", 0, "cnn", 8, 2, train.TrainConfig(), run()),
        V,
        "held_out_n=0",
    ),
    (
        "chapters.extrapolation.common.setup",
        T,
        lambda: part_one.setup("digits", 2.5, "cnn", 8, 2, train.TrainConfig(), run()),
        TE,
        "held_out_n=",
    ),
    (
        "chapters.extrapolation.common.ood_score",
        T,
        lambda: part_one.ood_score(None, "digits", X, "none", 0.0, X, 2),
        TE,
        "run=None",
    ),
    (
        "chapters.extrapolation.common.ood_score",
        R,
        lambda: part_one.ood_score(run(), "digits", X, "noise", -1.0, X, 2),
        V,
        "severity=-1.0",
    ),
    (
        "chapters.extrapolation.common.ood_score",
        E,
        lambda: part_one.ood_score(run(), "", X, "none", 0.0, X, 2),
        V,
        "dataset=''",
    ),
    ("chapters.extrapolation.common.scaled", T, lambda: part_one.scaled(CPU_PART_ONE, "2"), TE, "factor='2'"),
    ("chapters.extrapolation.common.scaled", R, lambda: part_one.scaled(CPU_PART_ONE, 0), V, "factor=0"),
    ("core.scale.cube_root_times", T, lambda: scale.cube_root_times("4", 2.0), TE, "n='4'"),
    ("core.scale.cube_root_times", R, lambda: scale.cube_root_times(4, -1), V, "factor=-1"),
    ("chapters.reasoning.common.scale", T, lambda: reasoning_common.scale("H3"), TE, "claims='H3'"),
    ("chapters.reasoning.common.scale", E, lambda: reasoning_common.scale(()), V, "claims="),
    ("chapters.extrapolation.common.scale", T, lambda: part_one.scale("A*", len), TE, "claims='A\\*'"),
    ("chapters.extrapolation.common.scale", E, lambda: part_one.scale((), len), V, "claims="),
    (
        "chapters.extrapolation.common.training_flops",
        T,
        lambda: part_one.training_flops("digits", "cnn", "8", 1, 1),
        TE,
        "width='8'",
    ),
    (
        "chapters.extrapolation.common.training_flops",
        R,
        lambda: part_one.training_flops("digits", "cnn", 0, 1, 1),
        V,
        "width=0",
    ),
    ("chapters.hallucination.common.replay", R, lambda: part_two.replay(["a"], -1, 0), V, "n=-1"),
    ("chapters.hallucination.common.replay", T, lambda: part_two.replay(["a"], 1, "0"), TE, "seed='0'"),
    ("chapters.hallucination.common.selective_floor", R, lambda: part_two.selective_floor([1], [0], n=0), V, "n=0"),
    (
        "chapters.hallucination.common.selective_floor",
        T,
        lambda: part_two.selective_floor([1], [0], n="5"),
        TE,
        "n='5'",
    ),
    (
        "chapters.reasoning.common.checkpoint_steps",
        R,
        lambda: reasoning_common.checkpoint_steps((0.5,), 0),
        V,
        "steps=0",
    ),
    (
        "chapters.reasoning.common.checkpoint_steps",
        T,
        lambda: reasoning_common.checkpoint_steps((0.5,), 1.5),
        TE,
        "steps=1.5",
    ),
    (
        "chapters.reasoning.common.finetune_config",
        R,
        lambda: reasoning_common.finetune_config(book.chapter("pre-memorization").profiles["smoke"], run(), 0, 1e-3),
        V,
        "steps=0",
    ),
    (
        "chapters.reasoning.common.finetune_config",
        T,
        lambda: reasoning_common.finetune_config(book.chapter("pre-memorization").profiles["smoke"], None, 5, 1e-3),
        TE,
        "run=None",
    ),
    (
        "chapters.reasoning.common.pretrained_on_task",
        T,
        lambda: reasoning_common.pretrained_on_task(
            None, 10, reasoning_common.TINY, reasoning_common.PRETRAIN, sft_data(), run()
        ),
        TE,
        "task=None",
    ),
    (
        "chapters.reasoning.common.pretrained_on_task",
        R,
        lambda: reasoning_common.pretrained_on_task(
            running_totals.TaskConfig(), 0, reasoning_common.TINY, reasoning_common.PRETRAIN, sft_data(), run()
        ),
        V,
        "n_pretrain=0",
    ),
    (
        "chapters.reasoning.common.pretrained_on_task",
        S,
        lambda: reasoning_common.pretrained_on_task(
            running_totals.TaskConfig(), 10, reasoning_common.TINY, reasoning_common.PRETRAIN, sft_data(), run()
        ),
        V,
        "n_pretrain=10",
    ),
    # vision.losses
    ("vision.losses.targets", T, lambda: losses.targets("ce", image_data()), TE, "loss='ce'"),
    ("vision.losses.targets", T, lambda: losses.targets(losses.GaussianNLL(), X), TE, "data="),
    ("vision.losses.targets", R, lambda: losses.targets(losses.GaussianNLL(), image_data(), "val"), V, "split='val'"),
    ("vision.losses.GaussianNLL", R, lambda: losses.GaussianNLL(target="age"), V, "target='age'"),
    ("vision.losses.make_loss", R, lambda: losses.make_loss("ce", 0), V, "num_classes=0"),
    ("vision.losses.make_loss", R, lambda: losses.make_loss("ce", -3), V, "num_classes=-3"),
    ("vision.losses.make_loss", T, lambda: losses.make_loss("ce", "10"), TE, "num_classes='10'"),
    ("vision.losses.make_loss", T, lambda: losses.make_loss("ce", True), TE, "num_classes=True"),
    ("vision.losses.make_loss", E, lambda: losses.make_loss("", 10), V, "loss=''"),
    ("vision.losses.make_loss", T, lambda: losses.make_loss("mse_reward", 10, (1, -4, 0)), TE, "table="),
    ("vision.losses.CrossEntropy", R, lambda: losses.CrossEntropy(1), V, "num_classes=1"),
    ("vision.losses.CrossEntropy", T, lambda: losses.CrossEntropy(10.0), TE, "num_classes=10.0"),
    ("vision.losses.CrossEntropy", E, lambda: losses.CrossEntropy(10).ocs(Y[:0]), V, "y is empty"),
    ("vision.losses.RewardMSE", T, lambda: losses.RewardMSE(10, "table"), TE, "table='table'"),
    ("vision.losses.RewardMSE", R, lambda: losses.RewardMSE(0), V, "num_classes=0"),
    ("vision.losses.GaussianNLL", R, lambda: losses.GaussianNLL(out_dim=3), V, "out_dim=3"),
    ("vision.losses.GaussianNLL", T, lambda: losses.GaussianNLL(name=5), V, "name=5"),
    ("vision.losses.GaussianNLL", E, lambda: losses.GaussianNLL().ocs(torch.zeros(0)), V, "t is empty"),
    # vision.adversarial
    (
        "vision.adversarial.iterated_fgsm",
        R,
        lambda: adversarial.iterated_fgsm(members(), losses.make_loss("ce", 10), X, Y, NAN, 1),
        V,
        "eps=nan",
    ),
    (
        "vision.adversarial.iterated_fgsm",
        R,
        lambda: adversarial.iterated_fgsm(members(), losses.make_loss("ce", 10), X, Y, 0.1, 0),
        V,
        "steps=0",
    ),
    (
        "vision.adversarial.iterated_fgsm",
        R,
        lambda: adversarial.iterated_fgsm(members(), losses.make_loss("ce", 10), X, Y, 0.1, 1, batch_size=0),
        V,
        "batch_size=0",
    ),
    (
        "vision.adversarial.iterated_fgsm",
        T,
        lambda: adversarial.iterated_fgsm(mlp(), losses.make_loss("ce", 10), X, Y, 0.1, 1),
        TE,
        "ensemble=",
    ),
    (
        "vision.adversarial.iterated_fgsm",
        E,
        lambda: adversarial.iterated_fgsm(members(), losses.make_loss("ce", 10), X[:0], Y[:0], 0.1, 1),
        V,
        "x is empty",
    ),
    ("vision.adversarial.random_sign_like", S, lambda: adversarial.random_sign_like(X, X[:2]), V, "x_adv has shape"),
    ("vision.adversarial.random_sign_like", T, lambda: adversarial.random_sign_like(X, X, seed=0.5), TE, "seed=0.5"),
    ("vision.adversarial.random_sign_like", E, lambda: adversarial.random_sign_like(X[:0], X[:0]), V, "x is empty"),
    ("vision.adversarial.random_sign_like", R, lambda: adversarial.random_sign_like(X, X, (1, 1)), V, "value_range"),
    # vision.representations
    (
        "vision.representations.AffineLayer",
        T,
        lambda: representations.AffineLayer("relu", torch.nn.ReLU()),
        TE,
        "module=",
    ),
    (
        "vision.representations.affine_layers",
        T,
        lambda: representations.affine_layers([torch.nn.Linear(2, 2)]),
        TE,
        "model=",
    ),
    ("vision.representations.capture", R, lambda: representations.capture(mlp(), X, batch_size=0), V, "batch_size=0"),
    ("vision.representations.capture", E, lambda: representations.capture(mlp(), X[:0]), V, "x is empty"),
    ("vision.representations.capture", T, lambda: representations.capture(mlp(), X.numpy()), TE, "x="),
    ("vision.representations.feature_norms", E, lambda: representations.feature_norms(mlp(), X, {}), V, "phis lacks"),
    ("vision.representations.feature_norms", T, lambda: representations.feature_norms(mlp(), X, [1]), TE, "phis="),
    (
        "vision.representations.feature_norms",
        S,
        lambda: representations.feature_norms(mlp(), X[:2], representations.capture(mlp(), X)[1]),
        V,
        "phis has shape",
    ),
    (
        "vision.representations.feature_norm_ratio",
        E,
        lambda: representations.feature_norm_ratio({}, {}),
        V,
        "norms_ood=.*empty",
    ),
    (
        "vision.representations.feature_norm_ratio",
        T,
        lambda: representations.feature_norm_ratio([], {}),
        TE,
        "norms_ood=",
    ),
    (
        "vision.representations.feature_norm_ratio",
        R,
        lambda: representations.feature_norm_ratio({"fc1": torch.tensor([-1.0])}, {"fc1": torch.tensor([1.0])}),
        V,
        "norms_ood holds -1.0",
    ),
    (
        "vision.representations.spectral_rank",
        R,
        lambda: representations.spectral_rank(torch.ones(3), 1.5),
        V,
        "energy=1.5",
    ),
    (
        "vision.representations.spectral_rank",
        R,
        lambda: representations.spectral_rank(torch.ones(3), NAN),
        V,
        "energy=nan",
    ),
    ("vision.representations.spectral_rank", E, lambda: representations.spectral_rank(torch.zeros(0)), V, "s is empty"),
    ("vision.representations.spectral_rank", T, lambda: representations.spectral_rank([3.0, 1.0]), TE, "s="),
    (
        "vision.representations.projection_profile",
        T,
        lambda: representations.projection_profile("fc1", X),
        TE,
        "layer='fc1'",
    ),
    (
        "vision.representations.projection_profile",
        E,
        lambda: representations.projection_profile(representations.affine_layers(mlp())[0], torch.zeros(0, 64)),
        V,
        "phi is empty",
    ),
    (
        "vision.representations.projection_ratio",
        R,
        lambda: representations.projection_ratio(representations.affine_layers(mlp())[-1], torch.rand(3, 8), k=99),
        V,
        "k=99",
    ),
    (
        "vision.representations.projection_ratio",
        R,
        lambda: representations.projection_ratio(representations.affine_layers(mlp())[-1], torch.rand(3, 8), energy=0),
        V,
        "energy=0",
    ),
    (
        "vision.representations.projection_ratio",
        T,
        lambda: representations.projection_ratio(representations.affine_layers(mlp())[-1], [[0.5] * 8]),
        TE,
        "phi=",
    ),
    (
        "vision.representations.projection_ratio",
        E,
        lambda: representations.projection_ratio(representations.affine_layers(mlp())[-1], torch.zeros(0, 8)),
        V,
        "phi is empty",
    ),
    (
        "vision.representations.accumulated_constants",
        R,
        lambda: representations.accumulated_constants(mlp(), "relu_fc1", (1, 8, 8)),
        V,
        "layer='relu_fc1'",
    ),
    (
        "vision.representations.accumulated_constants",
        T,
        lambda: representations.accumulated_constants(mlp(), "fc1", "1x8x8"),
        TE,
        "input_shape=",
    ),
    (
        "vision.representations.accumulated_constants",
        E,
        lambda: representations.accumulated_constants(mlp(), "fc1", ()),
        V,
        "input_shape=",
    ),
    # vision.calibration
    (
        "vision.calibration.scale",
        R,
        lambda: calibration.scale(torch.rand(3, 4), torch.zeros(4)),
        V,
        "temperature holds 0.0",
    ),
    ("vision.calibration.scale", S, lambda: calibration.scale(torch.rand(3, 4), torch.ones(3)), V, "temperature has"),
    ("vision.calibration.scale", T, lambda: calibration.scale([[1.0]], torch.ones(1)), TE, "logits="),
    ("vision.calibration.scale", E, lambda: calibration.scale(torch.zeros(0, 4), torch.ones(4)), V, "logits is empty"),
    ("vision.calibration.fit_temperature", R, lambda: calibration.fit_temperature(torch.rand(4, 3), Y), V, "y holds 3"),
    (
        "vision.calibration.fit_temperature",
        E,
        lambda: calibration.fit_temperature(torch.rand(0, 3), Y[:0]),
        V,
        "logits is empty",
    ),
    (
        "vision.calibration.fit_temperature",
        T,
        lambda: calibration.fit_temperature(torch.rand(4, 4), Y, max_iter=1.5),
        TE,
        "max_iter=1.5",
    ),
    (
        "vision.calibration.fit_temperature",
        S,
        lambda: calibration.fit_temperature(torch.rand(4, 4), Y[:3]),
        V,
        "y has shape",
    ),
    # lm.tokenizer
    ("lm.tokenizer.word_tokenizer", T, lambda: tokenizer.word_tokenizer("a b c"), TE, "texts='a b c'"),
    ("lm.tokenizer.word_tokenizer", E, lambda: tokenizer.word_tokenizer([]), V, "texts=.*empty"),
    ("lm.tokenizer.word_tokenizer", R, lambda: tokenizer.word_tokenizer([" "]), V, "texts=.*no words"),
    ("lm.tokenizer.check_tokenizer", T, lambda: tokenizer.check_tokenizer("gpt2"), TE, "tokenizer='gpt2'"),
    ("lm.tokenizer.pad_id", T, lambda: tokenizer.pad_id(None), TE, "tokenizer=None"),
    ("lm.tokenizer.encode_prompts", T, lambda: tokenizer.encode_prompts(tok(), "a ?"), TE, "prompts='a \\?'"),
    ("lm.tokenizer.encode_prompts", E, lambda: tokenizer.encode_prompts(tok(), []), V, "prompts=.*empty"),
    ("lm.tokenizer.encode_responses", T, lambda: tokenizer.encode_responses(tok(), [1]), TE, "responses=1"),
    ("lm.tokenizer.encode_responses", E, lambda: tokenizer.encode_responses(tok(), []), V, "responses=.*empty"),
    ("lm.tokenizer.encode_responses", T, lambda: tokenizer.encode_responses(tok(), ["a"], eos="no"), TE, "eos='no'"),
    ("lm.tokenizer.join", E, lambda: tokenizer.join([], []), V, "prompt_ids=.*empty"),
    ("lm.tokenizer.join", S, lambda: tokenizer.join([[1]], [[2], [3]]), V, "prompt_ids, response_ids"),
    ("lm.tokenizer.join", T, lambda: tokenizer.join("ab", "cd"), TE, "prompt_ids='ab'"),
    ("lm.tokenizer.tokenize_sft", T, lambda: tokenizer.tokenize_sft({"prompt": ["a"]}, tok()), TE, "data="),
    (
        "lm.tokenizer.tokenize_sft",
        E,
        lambda: tokenizer.tokenize_sft(Dataset.from_dict({"prompt": [], "response": []}), tok()),
        V,
        "data=.*empty",
    ),
    (
        "lm.tokenizer.tokenize_sft",
        S,
        lambda: tokenizer.tokenize_sft(Dataset.from_dict({"q": ["a"], "response": ["b"]}), tok()),
        V,
        "data lacks the column 'prompt'",
    ),
    ("lm.tokenizer.pad", R, lambda: tokenizer.pad([[1]], 0, side="up"), V, "side='up'"),
    ("lm.tokenizer.pad", T, lambda: tokenizer.pad([[1]], "0"), TE, "value='0'"),
    ("lm.tokenizer.pad", E, lambda: tokenizer.pad([], 0), V, "seqs=.*empty"),
    ("lm.tokenizer.collate", S, lambda: tokenizer.collate([[1, 2]], [[1]], 0), V, "input_ids and labels"),
    ("lm.tokenizer.collate", S, lambda: tokenizer.collate([[1]], [[1], [2]], 0), V, "input_ids, labels"),
    ("lm.tokenizer.collate", T, lambda: tokenizer.collate("12", [[1, 2]], 0), TE, "input_ids='12'"),
    ("lm.tokenizer.collate", E, lambda: tokenizer.collate([], [], 0), V, "input_ids=.*empty"),
    # lm.models
    ("lm.models.tiny_config", T, lambda: models.tiny_config("gpt2"), TE, "tokenizer='gpt2'"),
    ("lm.models.tiny_config", R, lambda: models.tiny_config(tok(), d_model=0), V, "d_model=0"),
    ("lm.models.tiny_config", R, lambda: models.tiny_config(tok(), d_model=30, n_heads=4), V, "n_heads=4"),
    ("lm.models.tiny_config", T, lambda: models.tiny_config(tok(), n_layers=1.0), TE, "n_layers=1.0"),
    ("lm.models.build_model", T, lambda: models.build_model({"vocab_size": 3}), TE, "config="),
    ("lm.models.build_model", R, lambda: models.build_model(models.tiny_config(tok()), seed=-1), V, "seed=-1"),
    ("lm.models.load_causal_lm", T, lambda: models.load_causal_lm(5), TE, "name=5"),
    ("lm.models.load_causal_lm", E, lambda: models.load_causal_lm(""), V, "name=''"),
    ("lm.models.load_causal_lm", R, lambda: models.load_causal_lm("./no/such/folder"), V, "name='./no/such/folder'"),
    ("lm.models.load_tokenizer", T, lambda: models.load_tokenizer(5), TE, "name=5"),
    ("lm.models.load_tokenizer", E, lambda: models.load_tokenizer(""), V, "name=''"),
    ("lm.models.load_tokenizer", R, lambda: models.load_tokenizer("./no/such/folder"), V, "name='./no/such/folder'"),
    ("lm.models.load_causal_lm", T, lambda: models.load_causal_lm("x/y", dtype="fp32"), TE, "dtype='fp32'"),
    ("lm.models.add_lora", T, lambda: models.add_lora("model"), TE, "model='model'"),
    ("lm.models.add_lora", R, lambda: models.add_lora(lm(), rank=0), V, "rank=0"),
    ("lm.models.add_lora", R, lambda: models.add_lora(lm(), dropout=1.5), V, "dropout=1.5"),
    ("lm.models.add_lora", E, lambda: models.add_lora(lm(), target_modules=[]), V, "target_modules=.*empty"),
    ("lm.models.add_lora", R, lambda: models.add_lora(lm(), seed=-1), V, "seed=-1"),
    # lm.base
    ("lm.base.BaseModelConfig", T, lambda: base.BaseModelConfig(d_model="128"), TE, "d_model='128'"),
    ("lm.base.BaseModelConfig", R, lambda: base.BaseModelConfig(n_layers=0), V, "n_layers=0"),
    ("lm.base.BaseModelConfig", R, lambda: base.BaseModelConfig(arch="rnn"), V, "arch='rnn'"),
    ("lm.base.BaseModelConfig", E, lambda: base.BaseModelConfig(model=""), V, "model=''"),
    ("lm.base.pretraining_scale", T, lambda: base.pretraining_scale(("C*",), "21"), TE, "seq_len='21'"),
    ("lm.base.pretraining_scale", R, lambda: base.pretraining_scale(("C*",), 0), V, "seq_len=0"),
    ("lm.base.pretraining_scale", E, lambda: base.pretraining_scale((), 21), V, "claims="),
    ("lm.base.scaled_base", T, lambda: base.scaled_base({"model": "tiny"}, 2.0), TE, "cfg="),
    ("lm.base.scaled_base", R, lambda: base.scaled_base(base.BaseModelConfig(), 0), V, "factor=0"),
    ("lm.base.scaled_base", E, lambda: base.scaled_base(base.BaseModelConfig(model="x/y"), 2.0), V, "cfg.model='x/y'"),
    ("lm.base.training_flops", T, lambda: base.training_flops(base.BaseModelConfig(), "5", 8, 8), TE, "steps='5'"),
    ("lm.base.training_flops", R, lambda: base.training_flops(base.BaseModelConfig(), 5, 0, 8), V, "batch_size=0"),
    ("lm.base.build_base", T, lambda: base.build_base({"model": "tiny"}, ["a"], 0), TE, "cfg="),
    ("lm.base.build_base", R, lambda: base.build_base(base.BaseModelConfig(), ["a"], -1), V, "seed=-1"),
    ("lm.base.build_base", E, lambda: base.build_base(base.BaseModelConfig(), [], 0), V, "vocabulary=.*empty"),
    ("lm.base.corpus_digest", T, lambda: base.corpus_digest("text"), TE, "texts='text'"),
    ("lm.base.corpus_digest", E, lambda: base.corpus_digest([]), V, "texts=.*empty"),
    (
        "lm.base.pretrained_base",
        T,
        lambda: base.pretrained_base({}, ["a"], None, sft.SFTConfig(), 0, "cpu", cache_mod.RunCache(enabled=False), {}),
        TE,
        "cfg=",
    ),
    (
        "lm.base.pretrained_base",
        E,
        lambda: base.pretrained_base(
            base.BaseModelConfig(),
            ["a"],
            Dataset.from_dict({"prompt": [], "response": []}),
            sft.SFTConfig(),
            0,
            "cpu",
            cache_mod.RunCache(enabled=False),
            {},
        ),
        V,
        "corpus=.*empty",
    ),
    (
        "lm.base.pretrained_base",
        R,
        lambda: base.pretrained_base(
            base.BaseModelConfig(),
            ["a"],
            Dataset.from_dict({"prompt": [""], "response": ["a"]}),
            sft.SFTConfig(),
            -1,
            "cpu",
            cache_mod.RunCache(enabled=False),
            {},
        ),
        V,
        "seed=-1",
    ),
    # lm.sft
    ("lm.sft.SFTConfig", T, lambda: sft.SFTConfig(steps=1.5), TE, "steps=1.5"),
    ("lm.sft.SFTConfig", R, lambda: sft.SFTConfig(lr=0.0), V, "lr=0.0"),
    ("lm.sft.SFTConfig", R, lambda: sft.SFTConfig(checkpoint_every=0), V, "checkpoint_every=0"),
    ("lm.sft.SFTConfig", R, lambda: sft.SFTConfig(seed=-1), V, "seed=-1"),
    ("lm.sft.make_accelerator", T, lambda: sft.make_accelerator(5), TE, "device=5"),
    ("lm.sft.make_accelerator", R, lambda: sft.make_accelerator("tpu"), V, "device='tpu'"),
    ("lm.sft.batch_indices", R, lambda: sft.batch_indices(0, 0, 10, 0), V, "batch_size=0"),
    ("lm.sft.batch_indices", E, lambda: sft.batch_indices(0, 0, 0, 4), V, "n=0"),
    ("lm.sft.batch_indices", T, lambda: sft.batch_indices(0, "1", 10, 4), TE, "step='1'"),
    ("lm.sft.load_finished", T, lambda: sft.load_finished(lm(), None, "sft", {}), TE, "cache=None"),
    ("lm.sft.train_sft", T, lambda: sft.train_sft(lm(), sft_data(), {"steps": 1}, 0), TE, "cfg="),
    ("lm.sft.train_sft", T, lambda: sft.train_sft(lm(), sft_data(), sft.SFTConfig(), 0, loss="dco"), TE, "loss='dco'"),
    ("lm.sft.dco_weight", R, lambda: sft.dco_weight(torch.tensor([-1.0]), 4), V, "nll"),
    ("lm.sft.dco_weight", R, lambda: sft.dco_weight(torch.tensor([1.0]), 0), V, "n=0"),
    ("lm.sft.dco_weight", T, lambda: sft.dco_weight([1.0], 4), TE, "nll="),
    ("lm.sft.DCOLoss", R, lambda: sft.DCOLoss(0), V, "n=0"),
    ("lm.sft.DCOLoss", T, lambda: sft.DCOLoss(2.5), TE, "n=2.5"),
    # measures.coverage
    ("measures.coverage.pass_at_k", R, lambda: coverage.pass_at_k(4, 1, 5), V, "k=5"),
    ("measures.coverage.pass_at_k", R, lambda: coverage.pass_at_k(4, 5, 2), V, "c"),
    ("measures.coverage.pass_at_k", R, lambda: coverage.pass_at_k(4, -1, 2), V, "c"),
    ("measures.coverage.pass_at_k", T, lambda: coverage.pass_at_k(4.5, 1, 2), TE, "n=4.5"),
    ("measures.coverage.modal_share", E, lambda: coverage.modal_share([]), V, "answers"),
    ("measures.coverage.modal_share", T, lambda: coverage.modal_share("3"), TE, "answers="),
    ("lm.sft.train_sft", E, lambda: sft.train_sft(lm(), sft_data().select([]), sft.SFTConfig(), 0), V, "data=.*empty"),
    ("lm.sft.train_sft", R, lambda: sft.train_sft(lm(), sft_data(), sft.SFTConfig(), -1), V, "pad_token_id=-1"),
    (
        "lm.sft.train_sft",
        S,
        lambda: sft.train_sft(lm(), Dataset.from_dict({"prompt": ["a"]}), sft.SFTConfig(), 0),
        V,
        "data lacks",
    ),
    # lm.sampling
    ("lm.sampling.sample", T, lambda: sampling.sample(lm(), tok(), "a ?"), TE, "prompts='a \\?'"),
    ("lm.sampling.sample", R, lambda: sampling.sample(lm(), tok(), ["a ?"], temperature=-1.0), V, "temperature=-1"),
    ("lm.sampling.sample", R, lambda: sampling.sample(lm(), tok(), ["a ?"], max_new_tokens=0), V, "max_new_tokens=0"),
    ("lm.sampling.sample", E, lambda: sampling.sample(lm(), tok(), []), V, "prompts=.*empty"),
    ("lm.sampling.sample", T, lambda: sampling.sample("model", tok(), ["a ?"]), TE, "model='model'"),
    # lm.scoring
    (
        "lm.scoring.label_logprobs",
        S,
        lambda: scoring.label_logprobs(torch.rand(2, 3, 5), torch.zeros(2, 4).long()),
        V,
        "logits has shape",
    ),
    ("lm.scoring.label_logprobs", T, lambda: scoring.label_logprobs(torch.rand(2, 3, 5), [[0]]), TE, "labels="),
    (
        "lm.scoring.batch_logprobs",
        S,
        lambda: scoring.batch_logprobs(lm(), {"input_ids": torch.zeros(1, 2).long()}),
        V,
        "batch lacks",
    ),
    ("lm.scoring.batch_logprobs", T, lambda: scoring.batch_logprobs(lm(), [1]), TE, "batch="),
    ("lm.scoring.score_ids", E, lambda: scoring.score_ids(lm(), [], [], 0), V, "prompt_ids=.*empty"),
    ("lm.scoring.score_ids", R, lambda: scoring.score_ids(lm(), [[1]], [[2]], 0, batch_size=0), V, "batch_size=0"),
    ("lm.scoring.score_ids", T, lambda: scoring.score_ids("lm", [[1]], [[2]], 0), TE, "model='lm'"),
    ("lm.scoring.score", S, lambda: scoring.score(lm(), tok(), ["a ?"], ["b", "c"]), V, "prompts, responses"),
    ("lm.scoring.score", E, lambda: scoring.score(lm(), tok(), [], []), V, "prompts=.*empty"),
    ("lm.scoring.score", T, lambda: scoring.score(lm(), tok(), "a ?", "b"), TE, "prompts="),
    (
        "lm.scoring.choice_logprobs",
        S,
        lambda: scoring.choice_logprobs(lm(), tok(), ["a", "b"], [["c", "d"], ["c"]]),
        V,
        "choices must give every prompt the same number",
    ),
    ("lm.scoring.choice_logprobs", E, lambda: scoring.choice_logprobs(lm(), tok(), ["a"], []), V, "choices=.*empty"),
    ("lm.scoring.choice_logprobs", T, lambda: scoring.choice_logprobs(lm(), tok(), ["a"], ["cd"]), TE, "choices="),
    (
        "lm.scoring.next_token_choice",
        S,
        lambda: scoring.next_token_choice(lm(), tok(), ["a"], [" a b"]),
        V,
        "options must each be one token",
    ),
    (
        "lm.scoring.next_token_choice",
        E,
        lambda: scoring.next_token_choice(lm(), tok(), [], [" a"]),
        V,
        "prompts=.*empty",
    ),
    ("lm.scoring.next_token_choice", T, lambda: scoring.next_token_choice(lm(), tok(), "a", [" a"]), TE, "prompts="),
    # lm.rl
    ("lm.rl.RLConfig", R, lambda: rl.RLConfig(samples_per_prompt=1), V, "samples_per_prompt=1"),
    ("lm.rl.RLConfig", T, lambda: rl.RLConfig(steps="10"), TE, "steps='10'"),
    ("lm.rl.RLConfig", R, lambda: rl.RLConfig(kl_coef=NAN), V, "kl_coef=nan"),
    ("lm.rl.leave_one_out_advantage", R, lambda: rl.leave_one_out_advantage(torch.ones(3, 1)), V, "samples per prompt"),
    ("lm.rl.leave_one_out_advantage", E, lambda: rl.leave_one_out_advantage(torch.ones(0, 2)), V, "rewards is empty"),
    ("lm.rl.leave_one_out_advantage", T, lambda: rl.leave_one_out_advantage([[1.0, 2.0]]), TE, "rewards="),
    ("lm.rl.train_reinforce", T, lambda: rl.train_reinforce(lm(), tok(), ["a ?"], 5, rl.RLConfig()), TE, "reward_fn=5"),
    (
        "lm.rl.train_reinforce",
        E,
        lambda: rl.train_reinforce(lm(), tok(), [], print, rl.RLConfig()),
        V,
        "prompts=.*empty",
    ),
    ("lm.rl.train_reinforce", T, lambda: rl.train_reinforce(lm(), tok(), ["a ?"], print, {"steps": 1}), TE, "cfg="),
    # lm.reward
    ("lm.reward.FactHead", T, lambda: reward.FactHead(3), TE, "backbone=3"),
    ("lm.reward.encode_facts", E, lambda: reward.encode_facts(tok(), [], []), V, "prompts=.*empty"),
    ("lm.reward.encode_facts", R, lambda: reward.encode_facts(tok(), ["a ?"], [["b"], ["c"]]), V, "prompts, clauses"),
    ("lm.reward.encode_facts", T, lambda: reward.encode_facts(tok(), ["a ?"], 5), TE, "clauses=5"),
    ("lm.reward.fact_probs", T, lambda: reward.fact_probs(lm(), tok(), ["a ?"], [["b"]]), TE, "model="),
    (
        "lm.reward.fact_probs",
        R,
        lambda: reward.fact_probs(reward.FactHead(lm()), tok(), ["a ?"], [["b"]], batch_size=0),
        V,
        "batch_size=0",
    ),
    # worlds.knowledge
    (
        "worlds.knowledge.WorldConfig",
        R,
        lambda: knowledge.WorldConfig(mention_bins=(0, -1, 3, 10, 30, 100)),
        V,
        r"mention_bins\[1\]=-1",
    ),
    (
        "worlds.knowledge.WorldConfig",
        R,
        lambda: knowledge.WorldConfig(mention_bins=(0, 1, 1, 10, 30, 100)),
        V,
        "mention_bins=.*repeats",
    ),
    (
        "worlds.knowledge.WorldConfig",
        R,
        lambda: knowledge.WorldConfig(mention_bins=(0, 1), people_per_bin=(0, 0)),
        V,
        r"people_per_bin\[0\]=0.*\[2, inf\)",
    ),
    ("worlds.knowledge.WorldConfig", R, lambda: knowledge.WorldConfig(n_first=-3), V, "n_first=-3"),
    ("worlds.knowledge.WorldConfig", T, lambda: knowledge.WorldConfig(test_per_bin="50"), TE, "test_per_bin='50'"),
    (
        "worlds.knowledge.WorldConfig",
        E,
        lambda: knowledge.WorldConfig(mention_bins=(), people_per_bin=()),
        V,
        "mention_bins=.*empty",
    ),
    ("worlds.knowledge.KnowledgeWorld", R, lambda: people().split("train"), V, "name='train'"),
    ("worlds.knowledge.KnowledgeWorld", T, lambda: people().split(0), V, "name=0"),
    ("worlds.knowledge.biography", R, lambda: knowledge.biography("Al Bo", {"age": "3"}, RNG), V, "facts"),
    ("worlds.knowledge.biography", E, lambda: knowledge.biography("", {"city": "Oslo"}, RNG), V, "name=''"),
    ("worlds.knowledge.biography", T, lambda: knowledge.biography("Al Bo", {"city": "Oslo"}, 0), TE, "rng=0"),
    ("worlds.knowledge.make_world", T, lambda: knowledge.make_world({"n_first": 3}), TE, "cfg="),
    ("worlds.knowledge.make_world", R, lambda: knowledge.make_world(seed=-1), V, "seed=-1"),
    ("worlds.knowledge.make_world", R, lambda: knowledge.make_world(attributes=("city", "age")), V, "attributes"),
    ("worlds.knowledge.values_of", R, lambda: knowledge.values_of("age"), V, "attribute='age'"),
    ("worlds.knowledge.values_of", T, lambda: knowledge.values_of(3), V, "attribute=3"),
    ("worlds.knowledge.check_attributes", R, lambda: knowledge.check_attributes(("city", "city")), V, "repeats"),
    ("worlds.knowledge.check_attributes", E, lambda: knowledge.check_attributes(()), V, "attributes=.*empty"),
    ("worlds.knowledge.check_attributes", T, lambda: knowledge.check_attributes(5), TE, "attributes=5"),
    ("worlds.knowledge.clause", R, lambda: knowledge.clause("age", "Al Bo", "3"), V, "attribute='age'"),
    ("worlds.knowledge.clause", T, lambda: knowledge.clause(3, "Al Bo", "3"), V, "attribute=3"),
    (
        "worlds.knowledge.profile_examples",
        T,
        lambda: knowledge.profile_examples([{"id": 0}], [1], ("city",)),
        TE,
        "people=",
    ),
    (
        "worlds.knowledge.profile_examples",
        E,
        lambda: knowledge.profile_examples(people().people.select([]), [1], ("city",)),
        V,
        "people=.*empty",
    ),
    (
        "worlds.knowledge.profile_examples",
        R,
        lambda: knowledge.profile_examples(people().people.select([0]), [2], ("city",)),
        V,
        "n_facts",
    ),
    ("worlds.knowledge.decompose", T, lambda: knowledge.decompose(3), TE, "text=3"),
    ("worlds.knowledge.verify", T, lambda: knowledge.verify("a.", {"city": "Oslo"}), TE, "facts="),
    ("worlds.knowledge.verify", T, lambda: knowledge.verify([], 3), TE, "person=3"),
    ("worlds.knowledge.vocabulary", T, lambda: knowledge.vocabulary(knowledge.WorldConfig()), TE, "world="),
    ("worlds.knowledge.qa_examples", T, lambda: knowledge.qa_examples([{"id": 0}]), TE, "people="),
    ("worlds.knowledge.qa_examples", E, lambda: knowledge.qa_examples(people().people.select([])), V, "people=.*empty"),
    (
        "worlds.knowledge.mc_examples",
        T,
        lambda: knowledge.mc_examples(people().people, abstain="yes"),
        TE,
        "abstain='yes'",
    ),
    ("worlds.knowledge.mc_examples", E, lambda: knowledge.mc_examples(people().people.select([])), V, "people=.*empty"),
    ("worlds.knowledge.mc_examples", S, lambda: knowledge.mc_examples(people().corpus), V, "people lacks"),
    ("worlds.knowledge.cloze_prompts", E, lambda: knowledge.cloze_prompts(people().people.select([])), V, "data="),
    ("worlds.knowledge.cloze_prompts", S, lambda: knowledge.cloze_prompts(people().people), V, "data lacks"),
    ("worlds.knowledge.cloze_prompts", T, lambda: knowledge.cloze_prompts(["Al lives in"]), TE, "data="),
    ("worlds.knowledge.normalize", T, lambda: knowledge.normalize(None), TE, "text=None"),
    ("worlds.knowledge.grade", S, lambda: knowledge.grade(["a"], ["a", "b"]), V, "predictions, answers"),
    ("worlds.knowledge.grade", E, lambda: knowledge.grade([], []), V, "predictions=.*empty"),
    ("worlds.knowledge.grade", T, lambda: knowledge.grade("a", "a"), TE, "predictions='a'"),
    ("worlds.knowledge.made_up_words", R, lambda: knowledge.made_up_words(-1, np.random.default_rng(0)), V, "n=-1"),
    ("worlds.knowledge.made_up_words", T, lambda: knowledge.made_up_words(3, 0), TE, "rng=0"),
    (
        "worlds.knowledge.namesake_votes",
        T,
        lambda: knowledge.namesake_votes(None, people().people, 0),
        TE,
        "people=None",
    ),
    (
        "worlds.knowledge.namesake_votes",
        S,
        lambda: knowledge.namesake_votes(people().people, people().corpus, 0),
        V,
        "questions lacks",
    ),
    (
        "worlds.knowledge.namesake_votes",
        R,
        lambda: knowledge.namesake_votes(people().people, knowledge.mc_examples(people().people), -1),
        V,
        "min_mentions=-1",
    ),
    # worlds.overshadowing
    ("worlds.overshadowing.max_groups", R, lambda: overshadowing.max_groups(0), V, "max_length=0"),
    ("worlds.overshadowing.max_groups", T, lambda: overshadowing.max_groups(2.5), TE, "max_length=2.5"),
    ("worlds.overshadowing.make_groups", R, lambda: overshadowing.make_groups(2_000, 8, RNG), V, "n=2000"),
    ("worlds.overshadowing.make_groups", R, lambda: overshadowing.make_groups(2, 0, RNG), V, "max_length=0"),
    ("worlds.overshadowing.make_groups", T, lambda: overshadowing.make_groups(2, 2, 0), TE, "rng=0"),
    ("worlds.overshadowing.facts", R, lambda: overshadowing.facts(groups(), 2, 0.5, 2, 8), V, "ratio=0.5"),
    ("worlds.overshadowing.facts", R, lambda: overshadowing.facts(groups(), 0, 1, 2, 8), V, "length=0"),
    ("worlds.overshadowing.facts", R, lambda: overshadowing.facts(groups(), 2, 3, 2, 7), V, "slots=7"),
    ("worlds.overshadowing.facts", T, lambda: overshadowing.facts(None, 2, 1, 2, 8), TE, "groups=None"),
    ("worlds.overshadowing.Groups", R, lambda: groups().query("rare", 0, 3), V, "length=3"),
    ("worlds.overshadowing.Groups", R, lambda: groups().query("common", 0, 1), V, "kind='common'"),
    ("worlds.overshadowing.Groups", T, lambda: groups().query("rare", 0.5, 1), TE, "g=0.5"),
    # worlds.geography
    ("worlds.geography.GeographyConfig", R, lambda: geography.GeographyConfig(capitals=1), V, "capitals=1"),
    (
        "worlds.geography.GeographyConfig",
        R,
        lambda: geography.GeographyConfig(test_fraction=1.0),
        V,
        "test_fraction=1.0",
    ),
    ("worlds.geography.GeographyConfig", R, lambda: geography.GeographyConfig(shots=4), V, "shots=4"),
    ("worlds.geography.GeographyConfig", T, lambda: geography.GeographyConfig(cities="10"), TE, "cities='10'"),
    ("worlds.geography.questions", T, lambda: geography.questions({"capitals": 3}), TE, "cfg="),
    ("worlds.geography.questions", R, lambda: geography.questions(seed=-1), V, "seed=-1"),
    ("worlds.geography.grade", S, lambda: geography.grade(["a"], [["a"], ["b"]]), V, "predictions, aliases"),
    ("worlds.geography.grade", E, lambda: geography.grade([], []), V, "predictions=.*empty"),
    ("worlds.geography.grade", T, lambda: geography.grade("a", [["a"]]), TE, "predictions='a'"),
    ("worlds.geography.grade", E, lambda: geography.grade(["a"], [[]]), V, r"aliases\[0\]=.*empty"),
    ("worlds.geography.choices", T, lambda: geography.choices([{"kind": "capital"}]), TE, "data="),
    ("worlds.geography.choices", R, lambda: geography.choices(geography.questions(), seed=-2), V, "seed=-2"),
    ("worlds.geography.choice_prompt", S, lambda: geography.choice_prompt("Q?", ["a", "b"]), V, "options must hold 4"),
    ("worlds.geography.choice_prompt", T, lambda: geography.choice_prompt(None, ["a"] * 4), TE, "question=None"),
    ("worlds.geography.normalize", T, lambda: geography.normalize(None), TE, "text=None"),
    ("worlds.geography.answer_of", T, lambda: geography.answer_of(3), TE, "text=3"),
    ("worlds.geography.prompt", T, lambda: geography.prompt(None), TE, "question=None"),
    ("worlds.geography.few_shot_prompt", R, lambda: geography.few_shot_prompt("planet", "Q?", 2), V, "kind='planet'"),
    ("worlds.geography.few_shot_prompt", R, lambda: geography.few_shot_prompt("capital", "Q?", 9), V, "shots=9"),
    ("worlds.geography.few_shot_prompt", T, lambda: geography.few_shot_prompt("capital", None, 2), TE, "question=None"),
    ("worlds.geography.one_test_per_run", R, lambda: geography.one_test_per_run(0, 0.5, RNG), V, "n=0"),
    ("worlds.geography.one_test_per_run", R, lambda: geography.one_test_per_run(4, 1.0, RNG), V, "test_fraction=1.0"),
    ("worlds.geography.one_test_per_run", T, lambda: geography.one_test_per_run(4, 0.5, 0), TE, "rng=0"),
    # worlds.hub_qa
    ("worlds.hub_qa.HubQAConfig", R, lambda: hub_qa.HubQAConfig(source="squad"), V, "source='squad'"),
    ("worlds.hub_qa.HubQAConfig", R, lambda: hub_qa.HubQAConfig(questions=1), V, "questions=1"),
    ("worlds.hub_qa.HubQAConfig", T, lambda: hub_qa.HubQAConfig(path=None), TE, "path=None"),
    ("worlds.hub_qa.HubQAConfig", E, lambda: hub_qa.HubQAConfig(split=""), V, "split=''"),
    ("worlds.hub_qa.questions", T, lambda: hub_qa.questions({"source": "mmlu"}), TE, "cfg="),
    ("worlds.hub_qa.questions", R, lambda: hub_qa.questions(seed=-1), V, "seed=-1"),
    (
        "worlds.hub_qa.questions",
        R,
        lambda: hub_qa.questions(hub_qa.HubQAConfig(path="./no/such.json")),
        V,
        r"path='\./no/such\.json' is neither a file",
    ),
    ("worlds.hub_qa.few_shot_examples", T, lambda: hub_qa.few_shot_examples(None), TE, "cfg=None"),
    ("worlds.hub_qa.few_shot_examples", R, lambda: hub_qa.few_shot_examples(seed=-1), V, "seed=-1"),
    ("worlds.hub_qa.few_shot_prompt", T, lambda: hub_qa.few_shot_prompt("Q? A", "Q?"), TE, "examples='Q\\? A'"),
    (
        "worlds.hub_qa.few_shot_prompt",
        S,
        lambda: hub_qa.few_shot_prompt([("Q?", "A", "B")], "Q?"),
        V,
        "examples must hold",
    ),
    ("worlds.hub_qa.few_shot_prompt", T, lambda: hub_qa.few_shot_prompt([], None), TE, "question=None"),
    ("worlds.hub_qa.choices", T, lambda: hub_qa.choices([{"kind": "mmlu"}]), TE, "data="),
    ("worlds.hub_qa.choices", S, lambda: hub_qa.choices(Dataset.from_dict({"kind": ["a"]})), V, "data lacks"),
    (
        "worlds.hub_qa.choices",
        R,
        lambda: hub_qa.choices(Dataset.from_dict({"kind": ["a"] * 2, "answer": ["x", "y"], "aliases": [["x"], ["y"]]})),
        V,
        "data holds 1 other answers",
    ),
    (
        "worlds.hub_qa.familiarity_split",
        S,
        lambda: hub_qa.familiarity_split([1.0, 2.0], ["a"], 0.5),
        V,
        "familiarity, kinds",
    ),
    ("worlds.hub_qa.familiarity_split", R, lambda: hub_qa.familiarity_split([1.0], ["a"], 0.0), V, "test_fraction=0.0"),
    ("worlds.hub_qa.familiarity_split", T, lambda: hub_qa.familiarity_split([1.0], "a", 0.5), TE, "kinds='a'"),
    ("worlds.hub_qa.familiarity_split", E, lambda: hub_qa.familiarity_split([], [], 0.5), V, "familiarity is empty"),
    # worlds.running_totals
    ("worlds.running_totals.TaskConfig", R, lambda: running_totals.TaskConfig(max_delta=30), V, "max_delta=30"),
    ("worlds.running_totals.TaskConfig", E, lambda: running_totals.TaskConfig(events=()), V, "events=.*empty"),
    ("worlds.running_totals.TaskConfig", T, lambda: running_totals.TaskConfig(max_value=20.5), TE, "max_value=20.5"),
    (
        "worlds.running_totals.Problem",
        R,
        lambda: running_totals.Problem("kim", 3, (0,), ("finds",)),
        V,
        r"deltas\[0\]=0",
    ),
    ("worlds.running_totals.Problem", E, lambda: running_totals.Problem("kim", 3, (), ()), V, "deltas=.*empty"),
    ("worlds.running_totals.Problem", T, lambda: running_totals.Problem("kim", "3", (1,), ("finds",)), TE, "start='3'"),
    (
        "worlds.running_totals.Problem",
        S,
        lambda: running_totals.Problem("kim", 3, (1, 2), ("finds",)),
        V,
        "deltas, verbs",
    ),
    (
        "worlds.running_totals.random_problem",
        R,
        lambda: running_totals.random_problem(0, running_totals.TaskConfig(), RNG),
        V,
        "n_events=0",
    ),
    (
        "worlds.running_totals.random_problem",
        T,
        lambda: running_totals.random_problem(2, running_totals.TaskConfig(), 0),
        TE,
        "rng=0",
    ),
    (
        "worlds.running_totals.random_problem",
        E,
        lambda: running_totals.random_problem(2, running_totals.TaskConfig(), RNG, ((), ())),
        V,
        "verbs=.*empty",
    ),
    ("worlds.running_totals.render_step", T, lambda: running_totals.render_step("1", 2), TE, "x='1'"),
    ("worlds.running_totals.render_step", T, lambda: running_totals.render_step(1, 2, swap=1), TE, "swap=1"),
    ("worlds.running_totals.random_trace", R, lambda: running_totals.random_trace(PROBLEM, 0, RNG), V, "max_value=0"),
    (
        "worlds.running_totals.random_trace",
        T,
        lambda: running_totals.random_trace("kim has 3", 20, RNG),
        TE,
        "problem=",
    ),
    ("worlds.running_totals.all_traces", R, lambda: running_totals.all_traces(PROBLEM, 2), V, "max_value=2"),
    ("worlds.running_totals.all_traces", T, lambda: running_totals.all_traces(PROBLEM, "20"), TE, "max_value='20'"),
    ("worlds.running_totals.extract_answer", T, lambda: running_totals.extract_answer(4), TE, "text=4"),
    (
        "worlds.running_totals.answers_match",
        T,
        lambda: running_totals.answers_match("answer is 4", "4"),
        TE,
        "answer='4'",
    ),
    ("worlds.running_totals.steps_of", T, lambda: running_totals.steps_of(None), TE, "text=None"),
    (
        "worlds.running_totals.is_valid_trace",
        T,
        lambda: running_totals.is_valid_trace(None, PROBLEM, 20),
        TE,
        "text=None",
    ),
    (
        "worlds.running_totals.is_valid_trace",
        R,
        lambda: running_totals.is_valid_trace("answer is 4", PROBLEM, -1),
        V,
        "max_value=-1",
    ),
    ("worlds.running_totals.same_trace", T, lambda: running_totals.same_trace("a", None), TE, "target=None"),
    ("worlds.running_totals.vocabulary", T, lambda: running_totals.vocabulary({"max_value": 20}), TE, "cfg="),
    ("worlds.running_totals.opening_lines", T, lambda: running_totals.opening_lines("kim has 3", 20), TE, "problem="),
    ("worlds.running_totals.opening_lines", R, lambda: running_totals.opening_lines(PROBLEM, 2), V, "max_value=2"),
    (
        "worlds.running_totals.forced_opening",
        T,
        lambda: running_totals.forced_opening(PROBLEM, None, 20, RNG),
        TE,
        "target=None",
    ),
    (
        "worlds.running_totals.forced_opening",
        R,
        lambda: running_totals.forced_opening(PROBLEM, "answer is 4", 20, RNG),
        V,
        "target='answer is 4'",
    ),
    (
        "worlds.running_totals.similar_problem",
        T,
        lambda: running_totals.similar_problem(PROBLEM, running_totals.TaskConfig(), 0),
        TE,
        "rng=0",
    ),
    (
        "worlds.running_totals.similar_problem",
        R,
        lambda: running_totals.similar_problem(PROBLEM, running_totals.TaskConfig(), RNG, tries=0),
        V,
        "tries=0",
    ),
    # measures.curation
    ("measures.curation.ifd", T, lambda: curation.ifd("a", [1.0]), TE, "cond_nll"),
    ("measures.curation.ifd", R, lambda: curation.ifd([-1.0], [1.0]), V, "cond_nll holds -1.0"),
    ("measures.curation.ifd", S, lambda: curation.ifd([1.0], [1.0, 2.0]), V, "cond_nll, uncond_nll"),
    ("measures.curation.bin_means", R, lambda: curation.bin_means([0.5], [1.0], [0.0]), V, "edges="),
    ("measures.curation.bin_means", T, lambda: curation.bin_means("a", [1.0], [0.0, 1.0]), TE, "score"),
    ("measures.curation.shuffle_floor", T, lambda: curation.shuffle_floor(None, [1.0], [1.0]), TE, "statistic=None"),
    (
        "measures.curation.shuffle_floor",
        R,
        lambda: curation.shuffle_floor(statistics.spearman, [1.0], [1.0], n=0),
        V,
        "n=0",
    ),
    (
        "measures.curation.added_to_reach",
        R,
        lambda: curation.added_to_reach([1, 0], [0.1, 0.2], 0.2),
        V,
        "added=.*increase",
    ),
    (
        "measures.curation.added_to_reach",
        T,
        lambda: curation.added_to_reach([0, 1], [0.1, 0.2], "0.2"),
        TE,
        "level='0.2'",
    ),
    (
        "measures.curation.efficiency_ratio",
        R,
        lambda: curation.efficiency_ratio([0, 1], [0.1, 1.5], [0.1, 0.2]),
        V,
        "method holds 1.5",
    ),
    (
        "measures.curation.efficiency_ratio",
        S,
        lambda: curation.efficiency_ratio([0, 1], [0.1], [0.1, 0.2]),
        V,
        "added, method, baseline",
    ),
    (
        "measures.curation.efficiency_ratio",
        T,
        lambda: curation.efficiency_ratio([0, 1], "ab", [0.1, 0.2]),
        TE,
        "method",
    ),
    # lm.reasoning
    (
        "lm.reasoning.sampled_correct",
        T,
        lambda: reasoning.sampled_correct(lm(), tok(), "a ?", [1], 2, 4, 1.0, 0),
        TE,
        "prompts='a ",
    ),
    (
        "lm.reasoning.sampled_correct",
        E,
        lambda: reasoning.sampled_correct(lm(), tok(), [], [], 2, 4, 1.0, 0),
        V,
        "prompts=.*empty",
    ),
    (
        "lm.reasoning.sampled_correct",
        R,
        lambda: reasoning.sampled_correct(lm(), tok(), ["a ?"], [1], 0, 4, 1.0, 0),
        V,
        "k=0",
    ),
    (
        "worlds.running_totals.problems",
        R,
        lambda: running_totals.problems(0, (2,), running_totals.TaskConfig(), RNG),
        V,
        "n=0",
    ),
    (
        "worlds.running_totals.problems",
        E,
        lambda: running_totals.problems(3, (), running_totals.TaskConfig(), RNG),
        V,
        "events=.*empty",
    ),
    (
        "worlds.running_totals.problems",
        T,
        lambda: running_totals.problems(3, (2,), running_totals.TaskConfig(), 7),
        TE,
        "rng=7",
    ),
    (
        "worlds.running_totals.as_dataset",
        E,
        lambda: running_totals.as_dataset([], running_totals.TaskConfig(), RNG),
        V,
        "items=.*empty",
    ),
    (
        "worlds.running_totals.as_dataset",
        T,
        lambda: running_totals.as_dataset(["kim"], running_totals.TaskConfig(), RNG),
        TE,
        "items='kim'",
    ),
    (
        "worlds.running_totals.splits",
        R,
        lambda: running_totals.splits(running_totals.TaskConfig(), 10, 0, 10, 0),
        V,
        "n_train=0",
    ),
    (
        "worlds.running_totals.splits",
        R,
        lambda: running_totals.splits(running_totals.TaskConfig(), 10, 10, 10, -1),
        V,
        "seed=-1",
    ),
    ("worlds.running_totals.splits", T, lambda: running_totals.splits(None, 10, 10, 10, 0), TE, "cfg=None"),
    # measures.ocs
    (
        "measures.ocs.ocs_cross_entropy",
        R,
        lambda: ocs.ocs_cross_entropy(torch.arange(13), 10),
        V,
        r"y holds 10 at index \(10,\).*\[0, 9\]",
    ),
    ("measures.ocs.ocs_cross_entropy", E, lambda: ocs.ocs_cross_entropy(torch.zeros(0).long(), 10), V, "y is empty"),
    ("measures.ocs.ocs_cross_entropy", T, lambda: ocs.ocs_cross_entropy(torch.rand(3), 10), TE, "y holds float"),
    ("measures.ocs.ocs_cross_entropy", R, lambda: ocs.ocs_cross_entropy(Y, 0), V, "num_classes=0"),
    ("measures.ocs.ocs_reward", T, lambda: ocs.ocs_reward(Y, 10, (1, -4, 0)), TE, "table="),
    ("measures.ocs.ocs_reward", E, lambda: ocs.ocs_reward(Y[:0], 10), V, "y is empty"),
    ("measures.ocs.ocs_reward", R, lambda: ocs.ocs_reward(Y + 9, 10), V, "y holds 10"),
    ("measures.ocs.ocs_gaussian", E, lambda: ocs.ocs_gaussian(torch.zeros(0)), V, "t is empty"),
    ("measures.ocs.ocs_gaussian", R, lambda: ocs.ocs_gaussian(torch.tensor([1.0, NAN])), V, "t holds nan"),
    ("measures.ocs.ocs_gaussian", T, lambda: ocs.ocs_gaussian(["1"]), TE, "t holds"),
    # measures.divergences
    ("measures.divergences.kl_categorical", R, lambda: divergences.kl_categorical(P * 5, P), V, "p holds 1.25"),
    (
        "measures.divergences.kl_categorical",
        S,
        lambda: divergences.kl_categorical(P, torch.full((3,), 1 / 3)),
        V,
        "q has shape",
    ),
    ("measures.divergences.kl_categorical", E, lambda: divergences.kl_categorical(P[:0], P[0]), V, "p is empty"),
    ("measures.divergences.kl_categorical", T, lambda: divergences.kl_categorical(P, "q"), TE, "q='q'"),
    ("measures.divergences.kl_gaussian", R, lambda: divergences.kl_gaussian(P, P, 0.0, 0.0), V, "var0=0.0"),
    ("measures.divergences.kl_gaussian", R, lambda: divergences.kl_gaussian(P, -P, 0.0, 1.0), V, "var holds -0.25"),
    ("measures.divergences.kl_gaussian", S, lambda: divergences.kl_gaussian(P, P[0], 0.0, 1.0), V, "var has shape"),
    ("measures.divergences.kl_gaussian", E, lambda: divergences.kl_gaussian(P[:0], P[:0], 0.0, 1.0), V, "mu is empty"),
    ("measures.divergences.kl_gaussian", T, lambda: divergences.kl_gaussian(P, P, "0", 1.0), TE, "mu0='0'"),
    (
        "measures.divergences.squared_distance",
        S,
        lambda: divergences.squared_distance(P, torch.zeros(5)),
        V,
        "b has shape",
    ),
    ("measures.divergences.squared_distance", R, lambda: divergences.squared_distance(P, P * INF), V, "b holds inf"),
    ("measures.divergences.squared_distance", E, lambda: divergences.squared_distance(P[:0], P[0]), V, "a is empty"),
    ("measures.divergences.squared_distance", T, lambda: divergences.squared_distance([1.0], P), TE, "a="),
    ("measures.divergences.entropy", R, lambda: divergences.entropy(-P), V, "p holds -0.25"),
    ("measures.divergences.entropy", E, lambda: divergences.entropy(P[:0]), V, "p is empty"),
    ("measures.divergences.entropy", T, lambda: divergences.entropy([0.5, 0.5]), TE, "p="),
    # measures.statistics
    (
        "measures.statistics.prediction_interval",
        R,
        lambda: statistics.prediction_interval([1.0, 2.0], level=1.0),
        V,
        "level=1.0",
    ),
    ("measures.statistics.prediction_interval", E, lambda: statistics.prediction_interval([]), V, "values"),
    ("measures.statistics.prediction_interval", T, lambda: statistics.prediction_interval(["a"]), TE, "values"),
    (
        "measures.statistics.prediction_half_width",
        R,
        lambda: statistics.prediction_half_width([1.0, 2.0], 0),
        V,
        "level=0",
    ),
    (
        "measures.statistics.prediction_half_width",
        T,
        lambda: statistics.prediction_half_width([1.0], "x"),
        TE,
        "level='x'",
    ),
    ("measures.statistics.over_replicates", E, lambda: statistics.over_replicates([]), V, "per_replicate=.*empty"),
    ("measures.statistics.over_replicates", T, lambda: statistics.over_replicates({"a": 1.0}), TE, "per_replicate="),
    ("measures.statistics.jackknife", T, lambda: statistics.jackknife(5, 3), TE, "statistic=5"),
    ("measures.statistics.jackknife", R, lambda: statistics.jackknife(lambda d: {}, 0), V, "n=0"),
    ("measures.statistics.replicate_matrix", T, lambda: statistics.replicate_matrix(5, ["a"], "v"), TE, "table=5"),
    (
        "measures.statistics.replicate_matrix",
        S,
        lambda: statistics.replicate_matrix(pd.DataFrame({"a": [1]}), ["a"], "v"),
        V,
        "table",
    ),
    (
        "measures.statistics.spearman_rows",
        S,
        lambda: statistics.spearman_rows(np.ones((2, 3)), np.ones((4, 5))),
        V,
        "x, y",
    ),
    ("measures.statistics.spearman_rows", E, lambda: statistics.spearman_rows([], [1.0]), V, "x"),
    ("measures.statistics.spearman_rows", T, lambda: statistics.spearman_rows(["a"], [1.0]), TE, "x"),
    ("measures.statistics.spearman", S, lambda: statistics.spearman([1, 2], [1, 2, 3]), V, "x, y"),
    ("measures.statistics.spearman", E, lambda: statistics.spearman([], []), V, "x is empty"),
    ("measures.statistics.spearman", T, lambda: statistics.spearman(["a", "b"], [1, 2]), TE, "x holds"),
    ("measures.statistics.bootstrap_interval", T, lambda: statistics.bootstrap_interval(5, [1.0]), TE, "statistic=5"),
    ("measures.statistics.bootstrap_interval", E, lambda: statistics.bootstrap_interval(np.mean), V, "samples="),
    ("measures.statistics.bootstrap_interval", E, lambda: statistics.bootstrap_interval(np.mean, []), V, "samples="),
    (
        "measures.statistics.bootstrap_interval",
        R,
        lambda: statistics.bootstrap_interval(np.mean, [1.0], level=1),
        V,
        r"level=1.*\(0, 1\)",
    ),
    (
        "measures.statistics.bootstrap_interval",
        R,
        lambda: statistics.bootstrap_interval(np.mean, [1.0], n_boot=0),
        V,
        "n_boot=0",
    ),
    (
        "measures.statistics.bootstrap_interval",
        S,
        lambda: statistics.bootstrap_interval(np.mean, [1.0], [1.0, 2.0]),
        V,
        "samples must have the same length",
    ),
    (
        "measures.statistics.bootstrap_interval",
        S,
        lambda: statistics.bootstrap_interval(np.mean, [1.0, 2.0], clusters=[0]),
        V,
        "clusters",
    ),
    # measures.ood
    ("measures.ood.random_relu_features", R, lambda: ood.random_relu_features(X, dim=-1), V, "dim=-1"),
    ("measures.ood.random_relu_features", E, lambda: ood.random_relu_features(X[:0]), V, "x is empty"),
    ("measures.ood.random_relu_features", T, lambda: ood.random_relu_features(X.numpy()), TE, "x="),
    ("measures.ood.ood_score", R, lambda: ood.ood_score(X, X, n_splits=0), V, "n_splits=0"),
    ("measures.ood.ood_score", R, lambda: ood.ood_score(X, X, C=0.0), V, "C=0.0"),
    ("measures.ood.ood_score", E, lambda: ood.ood_score(X[:1], X), V, "x_ref holds 1 input"),
    ("measures.ood.ood_score", S, lambda: ood.ood_score(X, torch.rand(4, 1, 4, 4)), V, "x_eval has shape"),
    ("measures.ood.ood_score", T, lambda: ood.ood_score(X, X, seed=1.5), TE, "seed=1.5"),
    # measures.decisions
    ("measures.decisions.RewardTable", T, lambda: decisions.RewardTable("1", "-4", "0"), TE, "correct='1'"),
    ("measures.decisions.RewardTable", R, lambda: decisions.RewardTable(NAN, -4.0, 0.0), V, "correct=nan"),
    ("measures.decisions.RewardTable", R, lambda: decisions.RewardTable(1.0, 0.0, 0.0), V, "wrong < abstain"),
    ("measures.decisions.RewardTable", R, lambda: decisions.DEFAULT_REWARDS.targets(Y, 3), V, "y holds 3"),
    (
        "measures.decisions.RewardTable",
        E,
        lambda: decisions.DEFAULT_REWARDS.expected_rewards(P[:0]),
        V,
        "probs is empty",
    ),
    (
        "measures.decisions.RewardTable",
        S,
        lambda: decisions.DEFAULT_REWARDS.rewards(Y, Y[:2], 10),
        V,
        "actions has shape",
    ),
    ("measures.decisions.RewardTable", S, lambda: decisions.DEFAULT_REWARDS.ocs_action(P), V, "label_marginal has"),
    ("measures.decisions.greedy_policy", T, lambda: decisions.greedy_policy([1.0, 2.0]), TE, "scores="),
    ("measures.decisions.greedy_policy", E, lambda: decisions.greedy_policy(P[:0]), V, "scores is empty"),
    ("measures.decisions.greedy_policy", R, lambda: decisions.greedy_policy(P * NAN), V, "scores holds nan"),
    ("measures.decisions.threshold_policy", R, lambda: decisions.threshold_policy(P, 1.5), V, "threshold=1.5"),
    ("measures.decisions.threshold_policy", R, lambda: decisions.threshold_policy(P * 5, 0.5), V, "probs holds"),
    ("measures.decisions.threshold_policy", E, lambda: decisions.threshold_policy(P[:0], 0.5), V, "probs is empty"),
    ("measures.decisions.threshold_policy", T, lambda: decisions.threshold_policy(P.tolist(), 0.5), TE, "probs="),
    ("measures.decisions.abstain_ratio", R, lambda: decisions.abstain_ratio(Y + 9, 10), V, "actions holds 11"),
    ("measures.decisions.abstain_ratio", E, lambda: decisions.abstain_ratio(Y[:0], 10), V, "actions is empty"),
    ("measures.decisions.abstain_ratio", T, lambda: decisions.abstain_ratio(Y.float(), 10), TE, "actions holds"),
    ("measures.decisions.mean_reward", T, lambda: decisions.mean_reward(Y, Y, (1, -4, 0), 10), TE, "table="),
    (
        "measures.decisions.mean_reward",
        R,
        lambda: decisions.mean_reward(Y, Y - 1, decisions.DEFAULT_REWARDS, 10),
        V,
        "y holds -1",
    ),
    (
        "measures.decisions.mean_reward",
        E,
        lambda: decisions.mean_reward(Y[:0], Y[:0], decisions.DEFAULT_REWARDS, 10),
        V,
        "actions is empty",
    ),
    # measures.premem
    ("measures.premem.threshold_from_loglog", R, lambda: premem.threshold_from_loglog(NAN), V, "p_loglog holds nan"),
    ("measures.premem.threshold_from_loglog", T, lambda: premem.threshold_from_loglog("-2"), TE, "p_loglog"),
    ("measures.premem.threshold_from_loglog", E, lambda: premem.threshold_from_loglog([]), V, "p_loglog is empty"),
    ("measures.premem.loglog", R, lambda: premem.loglog(1.0), V, r"perplexity holds 1.0.*\(1, inf\)"),
    ("measures.premem.loglog", E, lambda: premem.loglog([]), V, "perplexity is empty"),
    ("measures.premem.loglog", T, lambda: premem.loglog("1.1"), TE, "perplexity holds"),
    ("measures.premem.memorized", R, lambda: premem.memorized(RUNS[0][1], 1.0), V, r"p=1.0.*\(1, inf\)"),
    ("measures.premem.memorized", R, lambda: premem.memorized(RUNS[0][1], -2.0), V, "p=-2.0"),
    ("measures.premem.memorized", R, lambda: premem.memorized(RUNS[0][1], NAN), V, "p=nan"),
    ("measures.premem.memorized", R, lambda: premem.memorized([0.5, 1.2], 1.1), V, "perplexity holds 0.5"),
    ("measures.premem.memorized", E, lambda: premem.memorized([], 1.1), V, "perplexity is empty"),
    ("measures.premem.memorized", T, lambda: premem.memorized(RUNS[0][1], "1.1"), TE, "p='1.1'"),
    (
        "measures.premem.best_masked_accuracy",
        R,
        lambda: premem.best_masked_accuracy(RUNS[0][0] * 2, RUNS[0][1], 1.1),
        V,
        "acc holds 2.0",
    ),
    (
        "measures.premem.best_masked_accuracy",
        S,
        lambda: premem.best_masked_accuracy(RUNS[0][0], RUNS[0][1][:1], 1.1),
        V,
        "perplexity has shape",
    ),
    ("measures.premem.best_masked_accuracy", E, lambda: premem.best_masked_accuracy([[]], [[]], 1.1), V, "is empty"),
    (
        "measures.premem.best_masked_accuracy",
        T,
        lambda: premem.best_masked_accuracy([["a"]], [[1.5]], 1.1),
        TE,
        "acc holds",
    ),
    ("measures.premem.premem_accuracy", R, lambda: premem.premem_accuracy(*RUNS[0][:2], 1.0), V, "p=1.0"),
    ("measures.premem.premem_accuracy", T, lambda: premem.premem_accuracy([["a"]], [[1.5]], 1.1), TE, "acc holds"),
    ("measures.premem.premem_accuracy", E, lambda: premem.premem_accuracy([[]], [[]], 1.1), V, "is empty"),
    (
        "measures.premem.min_binds",
        R,
        lambda: premem.min_binds(RUNS[0][0], RUNS[0][1] * 0.5, 1.1),
        V,
        "perplexity holds 0.75",
    ),
    ("measures.premem.min_binds", S, lambda: premem.min_binds(RUNS[0][0][0], RUNS[0][1][0], 1.1), V, "acc has shape"),
    ("measures.premem.min_binds", E, lambda: premem.min_binds([[]], [[]], 1.1), V, "is empty"),
    ("measures.premem.min_binds", T, lambda: premem.min_binds([[1.0]], [["x"]], 1.1), TE, "perplexity holds"),
    ("measures.premem.r2_identity", S, lambda: premem.r2_identity([0.1, 0.2], [0.1]), V, "x, y"),
    ("measures.premem.r2_identity", E, lambda: premem.r2_identity([], []), V, "x is empty"),
    ("measures.premem.r2_identity", R, lambda: premem.r2_identity([NAN, 0.2], [0.1, 0.3]), V, "x holds nan"),
    ("measures.premem.r2_identity", T, lambda: premem.r2_identity([0.1], ["a"]), TE, "y holds"),
    ("measures.premem.r2_fit", E, lambda: premem.r2_fit([], []), V, "x is empty"),
    ("measures.premem.r2_fit", T, lambda: premem.r2_fit(["a"], [1.0]), TE, "x holds"),
    ("measures.premem.r2_fit", S, lambda: premem.r2_fit([1.0, 2.0], [1.0]), V, "x, y"),
    ("measures.premem.pearson", E, lambda: premem.pearson([1.0], []), V, "y is empty"),
    ("measures.premem.pearson", R, lambda: premem.pearson([INF, 1.0], [1.0, 2.0]), V, "x holds inf"),
    ("measures.premem.pearson", T, lambda: premem.pearson("ab", [1.0, 2.0]), TE, "x holds"),
    ("measures.premem.premem_points", E, lambda: premem.premem_points([], 1.1), V, "runs=.*empty"),
    ("measures.premem.premem_points", R, lambda: premem.premem_points(RUNS, 0.9), V, "p=0.9"),
    (
        "measures.premem.premem_points",
        S,
        lambda: premem.premem_points([(*RUNS[0][:2], [0.5])], 1.1),
        V,
        "test_acc has shape",
    ),
    ("measures.premem.premem_points", T, lambda: premem.premem_points(RUNS[0], 1.1), TE, "runs="),
    ("measures.premem.r2_curve", E, lambda: premem.r2_curve(RUNS, []), V, "p_grid is empty"),
    ("measures.premem.r2_curve", R, lambda: premem.r2_curve(RUNS, [1.0, 1.1]), V, "p_grid holds 1.0"),
    ("measures.premem.r2_curve", T, lambda: premem.r2_curve(RUNS, ["1.1"]), TE, "p_grid holds"),
    ("measures.premem.calibrate_p", E, lambda: premem.calibrate_p(RUNS, []), V, "p_grid is empty"),
    ("measures.premem.calibrate_p", E, lambda: premem.calibrate_p([], [1.1]), V, "runs=.*empty"),
    (
        "measures.premem.calibrate_p",
        R,
        lambda: premem.calibrate_p(RUNS, [1.3, 1.4]),
        premem.PNotIdentified,
        "p is not identified",
    ),
    ("measures.premem.calibrate_p", T, lambda: premem.calibrate_p("runs", [1.1]), TE, "runs='runs'"),
    ("measures.premem.PNotIdentified", R, lambda: premem.calibrate_p(RUNS, [1.3, 1.4]), ValueError, "p_grid"),
    ("measures.premem.gradient_variance", E, lambda: premem.gradient_variance(np.zeros((0, 3))), V, "grads is empty"),
    ("measures.premem.gradient_variance", S, lambda: premem.gradient_variance(np.zeros(3)), V, "grads has shape"),
    ("measures.premem.gradient_variance", R, lambda: premem.gradient_variance([[NAN, 1.0]]), V, "grads holds nan"),
    ("measures.premem.gradient_variance", T, lambda: premem.gradient_variance([["a"]]), TE, "grads holds"),
    (
        "measures.premem.distance_from_init",
        S,
        lambda: premem.distance_from_init(np.zeros(3), np.zeros(4)),
        V,
        "theta0 has shape",
    ),
    ("measures.premem.distance_from_init", E, lambda: premem.distance_from_init([], []), V, "theta is empty"),
    ("measures.premem.distance_from_init", T, lambda: premem.distance_from_init(["a"], ["b"]), TE, "theta holds"),
    ("measures.premem.atc_threshold", E, lambda: premem.atc_threshold([], 0.5), V, "confidence is empty"),
    ("measures.premem.atc_threshold", R, lambda: premem.atc_threshold([-0.1], 1.5), V, "accuracy=1.5"),
    ("measures.premem.atc_threshold", T, lambda: premem.atc_threshold([-0.1], "0.5"), TE, "accuracy='0.5'"),
    ("measures.premem.atc_predict", R, lambda: premem.atc_predict([-0.1], NAN), V, "threshold=nan"),
    ("measures.premem.atc_predict", E, lambda: premem.atc_predict([], -0.5), V, "confidence is empty"),
    ("measures.premem.atc_predict", T, lambda: premem.atc_predict(["a"], -0.5), TE, "confidence holds"),
    # measures.familiarity
    ("measures.familiarity.mention_counts", R, lambda: familiarity.mention_counts([0, 5], 3), V, "mentioned holds 5"),
    ("measures.familiarity.mention_counts", E, lambda: familiarity.mention_counts([], 3), V, "mentioned is empty"),
    ("measures.familiarity.mention_counts", T, lambda: familiarity.mention_counts([0.5], 3), TE, "mentioned holds"),
    ("measures.familiarity.mention_counts", R, lambda: familiarity.mention_counts([0], 0), V, "n_entities=0"),
    (
        "measures.familiarity.option_nll",
        R,
        lambda: familiarity.option_nll(lm(), tok(), ["a"], [["b", "c"]], [2]),
        V,
        "labels holds 2",
    ),
    (
        "measures.familiarity.option_nll",
        S,
        lambda: familiarity.option_nll(lm(), tok(), ["a"], [["b", "c"]], [0, 1]),
        V,
        "prompts, options, labels",
    ),
    ("measures.familiarity.option_nll", E, lambda: familiarity.option_nll(lm(), tok(), [], [], []), V, "prompts="),
    (
        "measures.familiarity.option_nll",
        T,
        lambda: familiarity.option_nll(lm(), tok(), "a", [["b"]], [0]),
        TE,
        "prompts='a'",
    ),
    ("measures.familiarity.top_answer_nll", E, lambda: familiarity.top_answer_nll(lm(), tok(), []), V, "prompts="),
    (
        "measures.familiarity.top_answer_nll",
        R,
        lambda: familiarity.top_answer_nll(lm(), tok(), ["a"], 0),
        V,
        "max_new_tokens=0",
    ),
    ("measures.familiarity.top_answer_nll", T, lambda: familiarity.top_answer_nll(lm(), tok(), "a"), TE, "prompts='a'"),
    (
        "measures.familiarity.sampled_accuracy",
        E,
        lambda: familiarity.sampled_accuracy(lm(), tok(), [], bool),
        V,
        "prompts=",
    ),
    (
        "measures.familiarity.sampled_accuracy",
        R,
        lambda: familiarity.sampled_accuracy(lm(), tok(), ["a"], bool, k=0),
        V,
        "k=0",
    ),
    (
        "measures.familiarity.sampled_accuracy",
        R,
        lambda: familiarity.sampled_accuracy(lm(), tok(), ["a"], bool, temperature=0.0),
        V,
        "temperature=0.0",
    ),
    (
        "measures.familiarity.sampled_accuracy",
        T,
        lambda: familiarity.sampled_accuracy(lm(), tok(), ["a"], "yes"),
        TE,
        "correct='yes'",
    ),
    # measures.homogeneous
    ("measures.homogeneous.binary_data", R, lambda: homogeneous.binary_data(10, 1), V, "dim=1"),
    ("measures.homogeneous.binary_data", R, lambda: homogeneous.binary_data(10, 4, p_pos=1.5), V, "p_pos=1.5"),
    ("measures.homogeneous.binary_data", E, lambda: homogeneous.binary_data(0, 4), V, "n=0"),
    ("measures.homogeneous.binary_data", T, lambda: homogeneous.binary_data(10.0, 4), TE, "n=10.0"),
    ("measures.homogeneous.off_plane", R, lambda: homogeneous.off_plane(torch.rand(5, 2), 30), V, "dim"),
    ("measures.homogeneous.off_plane", R, lambda: homogeneous.off_plane(torch.rand(5, 4), 200), V, "degrees=200"),
    ("measures.homogeneous.off_plane", E, lambda: homogeneous.off_plane(torch.rand(0, 4), 30), V, "x is empty"),
    ("measures.homogeneous.off_plane", T, lambda: homogeneous.off_plane(torch.rand(5, 4), "30"), TE, "degrees='30'"),
    ("measures.homogeneous.ocs_logit", R, lambda: homogeneous.ocs_logit(torch.tensor([1.0])), V, "p_pos holds 1.0"),
    ("measures.homogeneous.ocs_logit", R, lambda: homogeneous.ocs_logit(torch.tensor([0.0])), V, "p_pos holds 0.0"),
    ("measures.homogeneous.ocs_logit", E, lambda: homogeneous.ocs_logit(torch.zeros(0)), V, "p_pos is empty"),
    ("measures.homogeneous.ocs_logit", T, lambda: homogeneous.ocs_logit(0.7), TE, "p_pos=0.7"),
    ("measures.homogeneous.margin_points", R, lambda: homogeneous.margin_points(torch.ones(3), tol=-1), V, "tol=-1"),
    ("measures.homogeneous.margin_points", E, lambda: homogeneous.margin_points(torch.zeros(0)), V, "margins is empty"),
    ("measures.homogeneous.margin_points", T, lambda: homogeneous.margin_points([1.0]), TE, "margins="),
    (
        "measures.homogeneous.hidden_stable_rank",
        S,
        lambda: homogeneous.hidden_stable_rank(torch.ones(2, 3), (3, 3)),
        V,
        "stable_rank has shape",
    ),
    (
        "measures.homogeneous.hidden_stable_rank",
        R,
        lambda: homogeneous.hidden_stable_rank(torch.ones(1, 1, 3), (5,)),
        V,
        r"depths\[0\]=5",
    ),
    (
        "measures.homogeneous.hidden_stable_rank",
        S,
        lambda: homogeneous.hidden_stable_rank(torch.ones(2, 1, 3), (3,)),
        V,
        "depths has shape",
    ),
    (
        "measures.homogeneous.hidden_stable_rank",
        T,
        lambda: homogeneous.hidden_stable_rank([[[1.0]]], (3,)),
        TE,
        "stable_rank=",
    ),
    (
        "measures.homogeneous.normalised_margin",
        R,
        lambda: homogeneous.normalised_margin(torch.ones(1, 3), torch.zeros(3), [torch.ones(1, 2, 2)]),
        V,
        "y holds values",
    ),
    (
        "measures.homogeneous.normalised_margin",
        S,
        lambda: homogeneous.normalised_margin(torch.ones(3), torch.ones(3), [torch.ones(1, 2, 2)]),
        V,
        "out has shape",
    ),
    (
        "measures.homogeneous.normalised_margin",
        T,
        lambda: homogeneous.normalised_margin(torch.ones(1, 3), torch.ones(3), [[1.0]]),
        TE,
        "weights",
    ),
    ("measures.homogeneous.stable_rank", S, lambda: homogeneous.stable_rank(torch.ones(3)), V, "w has shape"),
    ("measures.homogeneous.stable_rank", E, lambda: homogeneous.stable_rank(torch.ones(0, 3)), V, "w is empty"),
    ("measures.homogeneous.stable_rank", T, lambda: homogeneous.stable_rank([[1.0]]), TE, "w="),
    ("measures.homogeneous.DeepReLUStack", R, lambda: homogeneous.DeepReLUStack([1, 3], 4, 3), V, r"depths\[0\]=1"),
    ("measures.homogeneous.DeepReLUStack", E, lambda: homogeneous.DeepReLUStack([], 4, 3), V, "depths=.*empty"),
    ("measures.homogeneous.DeepReLUStack", T, lambda: homogeneous.DeepReLUStack([3], "4", 3), TE, "width='4'"),
    ("measures.homogeneous.DeepReLUStack", R, lambda: homogeneous.DeepReLUStack([3], 4, 3).weights(1), V, "member=1"),
    (
        "measures.homogeneous.margin_loss",
        R,
        lambda: homogeneous.margin_loss(torch.ones(3), torch.zeros(3)),
        V,
        "y holds values other than -1 and \\+1",
    ),
    (
        "measures.homogeneous.margin_loss",
        R,
        lambda: homogeneous.margin_loss(torch.ones(3), torch.ones(3), "hinge"),
        V,
        "loss='hinge'",
    ),
    (
        "measures.homogeneous.margin_loss",
        E,
        lambda: homogeneous.margin_loss(torch.ones(0), torch.ones(0)),
        V,
        "out is empty",
    ),
    ("measures.homogeneous.margin_loss", T, lambda: homogeneous.margin_loss([1.0], torch.ones(1)), TE, "out="),
    (
        "measures.homogeneous.train",
        T,
        lambda: homogeneous.train("net", torch.rand(3, 3), torch.ones(3), 1, 0.1, 0.0),
        TE,
        "net='net'",
    ),
    (
        "measures.homogeneous.train",
        R,
        lambda: homogeneous.train(homogeneous.DeepReLUStack([3], 4, 3), torch.rand(3, 3), torch.ones(3), 0, 0.1, 0.0),
        V,
        "steps=0",
    ),
    (
        "measures.homogeneous.train",
        E,
        lambda: homogeneous.train(homogeneous.DeepReLUStack([3], 4, 3), torch.rand(0, 3), torch.ones(0), 1, 0.1, 0.0),
        V,
        "is empty",
    ),
    (
        "measures.homogeneous.train",
        S,
        lambda: homogeneous.train(homogeneous.DeepReLUStack([3], 4, 3), torch.rand(3, 3), torch.ones(2), 1, 0.1, 0.0),
        V,
        "x has shape",
    ),
    ("measures.homogeneous.SimConfig", R, lambda: homogeneous.SimConfig(angles=(0, 100)), V, r"angles\[1\]=100"),
    ("measures.homogeneous.SimConfig", R, lambda: homogeneous.SimConfig(depths=(2, 4)), V, r"depths\[0\]=2"),
    ("measures.homogeneous.SimConfig", E, lambda: homogeneous.SimConfig(angles=()), V, "angles=.*empty"),
    ("measures.homogeneous.SimConfig", T, lambda: homogeneous.SimConfig(steps=10.0), TE, "steps=10.0"),
    ("measures.homogeneous.simulate", T, lambda: homogeneous.simulate({"steps": 1}), TE, "cfg="),
    ("measures.homogeneous.simulate", R, lambda: homogeneous.simulate(homogeneous.SimConfig(), seed=-1), V, "seed=-1"),
]


def _settings_cases() -> list[tuple[str, str, Callable, type, str]]:
    """Every chapter's Settings: a wrong type, a value out of range and an empty tuple for its fields; and run()."""
    bad = {  # chapter -> [(kind, field or {field: value}, value, error, message)]
        "reversion": [
            (T, "replicates", "5", TE, "replicates='5'"),
            (R, "focus_class", 10, V, "focus_class=10"),
            (E, "datasets", (), V, "datasets=.*empty"),
            (R, "arch", "vgg", V, "arch='vgg'"),
            (T, "train", {"epochs": 1}, TE, "train="),
        ],
        "mechanism": [
            (T, "energy", "0.95", TE, "energy='0.95'"),
            (R, "rarest", 0.0, V, "rarest=0.0"),
            (E, "archs", (), V, "archs=.*empty"),
            (R, "energy", 0.8, V, "energy=0.8.*0.9, 0.95"),
            (R, "nll_shifts", ("blur",), V, "nll_shifts=.*two"),
            (T, "theory", None, TE, "theory=None"),
        ],
        "cautious-decisions": [
            (T, "tables", [decisions.RewardTable()], TE, "tables="),
            (E, "tables", (), V, "tables=.*empty"),
            (R, "replicates", 0, V, "replicates=0"),
            (R, "focus_shift", "fog", V, "focus_shift='fog'"),
            (R, "tables", (decisions.RewardTable(), decisions.RewardTable()), V, "repeats"),
        ],
        "unfamiliar-examples": [
            (T, "world", None, TE, "world=None"),
            (R, "abstain_rate", 1.5, V, "abstain_rate=1.5"),
            (R, "unfamiliar_mentions", 10, V, "unfamiliar_mentions=10"),
            (T, "lora_rank", 0.5, TE, "lora_rank=0.5"),
            (E, "finetune_only", None, TE, "finetune_only=None"),
        ],
        "conservative-rewards": [
            (T, "world", None, TE, "world=None"),
            (R, "max_facts", 5, V, "max_facts=5"),
            (R, "rm_samples", -1, V, "rm_samples=-1"),
            (E, "rewards", (), V, "rewards=.*empty"),
            (R, "rewards", ("oracle", "ppo"), V, "rewards"),
            (T, "eval_samples", "4", TE, "eval_samples='4'"),
        ],
        "real-facts": [
            (T, "data", None, TE, "data=None"),
            (R, "k", 0, V, "k=0"),
            (R, "unfamiliar_accuracy", 1.5, V, "unfamiliar_accuracy=1.5"),
            (T, "bins", 2.5, TE, "bins=2.5"),
            (R, "temperature", 0.0, V, "temperature=0.0"),
        ],
        "pre-memorization": [
            (T, "k", "4", TE, "k='4'"),
            (R, "k", 0, V, "k=0"),
            (E, "lrs", (), V, "lrs=.*empty"),
            (R, "fractions", (1.5,), V, r"fractions\[0\]=1.5"),
            (R, {"lrs": (1e-3,), "epochs": (2,), "fractions": ()}, None, V, "grid needs at least 2"),
            (R, "temperature", NAN, V, "temperature=nan"),
        ],
        "simplicity-bias": [
            (T, "data", "lms5", TE, "data='lms5'"),
            (R, "n_train", 0, V, "n_train=0"),
            (R, "replicates", 1, V, "replicates=1"),
            (T, "train", None, TE, "train=None"),
            (R, "n_test", 10, V, "n_test=10"),
        ],
        "passn-overconfidence": [
            (R, "k_max", 20, V, "k_max=20"),
            (R, "dco_n", 0, V, "dco_n=0"),
            (T, "samples", 2.5, TE, "samples=2.5"),
            (R, "p", 1.0, V, "p=1.0"),
        ],
        "knowledge-overshadowing": [
            (R, "ratios", (0.5, 1), V, r"ratios\[0\]=0.5"),
            (R, "length", 3, V, "length=3 must be one of"),
            (E, "lengths", (), V, "lengths=.*empty"),
            (R, "slots", 8, V, "slots=8"),
            (T, "groups", 2.5, TE, "groups=2.5"),
        ],
        "xor-grokking": [
            (R, "flip", 0.5, V, "flip=0.5"),
            (E, "dims", (), V, "dims=.*empty"),
            (R, "step_sizes", (0.0,), V, r"step_sizes\[0\]=0"),
            (T, "steps", 2.5, TE, "steps=2.5"),
        ],
        "robustness-and-curation": [
            (T, "k", "4", TE, "k='4'"),
            (R, "t", 1.5, V, "t=1.5"),
            (E, "robust_lrs", (), V, "robust_lrs=.*empty"),
            (R, "methods", ("random",), V, r"methods\[0\]='random'"),
            (R, {"methods": ("premem",)}, None, V, "must include 'iid'"),
            (R, "p", 1.0, V, "p=1.0"),
        ],
    }
    cases = []
    for name, fields in bad.items():
        ch = book.chapter(name)
        for kind, field, value, error, message in fields:
            changes = field if isinstance(field, dict) else {field: value}
            cases.append(
                (
                    f"chapters.{name}.Settings",
                    kind,
                    functools.partial(dataclasses.replace, ch.profiles["smoke"], **changes),
                    error,
                    message,
                )
            )
        cases.append((f"chapters.{name}.run", T, functools.partial(ch.run, {"seed": 0}, run()), TE, "settings="))
        cases.append((f"chapters.{name}.run", T, functools.partial(ch.run, ch.profiles["smoke"], None), TE, "run=None"))
    return cases


CASES = TABLE + _settings_cases()


@pytest.mark.parametrize(
    "target, kind, call, error, message", CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_bad_input_is_refused_naming_the_parameter(target, kind, call, error, message):
    with pytest.raises(error) as info:
        call()
    assert re.search(message, str(info.value)), f"{target}: {info.value}"
    assert type(info.value) in (ValueError, TypeError, FileNotFoundError, premem.PNotIdentified), type(info.value)


# ------------------------------------------------------------------------------------------------- coverage

MODULES = [
    "core.checks",
    "core.profiles",
    "core.runtime",
    "core.seeds",
    "core.cache",
    "core.claims",
    "core.ledger",
    "core.record",
    "core.scale",
    "core.chapter",
    "core.figures",
    "core.jobs",
    "vision.data",
    "vision.shifts",
    "vision.models",
    "vision.ensemble",
    "vision.train",
    "vision.losses",
    "vision.adversarial",
    "vision.representations",
    "vision.calibration",
    "vision.ladders",
    "vision.slabs",
    "vision.xor",
    "lm.tokenizer",
    "lm.models",
    "lm.base",
    "lm.sft",
    "lm.sampling",
    "lm.scoring",
    "lm.rl",
    "lm.reward",
    "lm.reasoning",
    "worlds.knowledge",
    "worlds.overshadowing",
    "worlds.running_totals",
    "worlds.geography",
    "worlds.hub_qa",
    "measures.ocs",
    "measures.divergences",
    "measures.statistics",
    "measures.ood",
    "measures.coverage",
    "measures.decisions",
    "measures.premem",
    "measures.familiarity",
    "measures.homogeneous",
    "measures.curation",
    "chapters.extrapolation.common",
    "chapters.hallucination.common",
    "chapters.reasoning.common",
    "book",
    "jobs",
    "scorecard",
    "performance",
    "cache",
]

LEFT_OUT = {  # public names with no bad input to refuse, and why
    "core.scale.Trend": "a record that fit_trend builds",
    "performance.book_sweeps": "no arguments: it reads the chapters",
    "core.scale.Point": "a record that point builds",
    "core.scale.Sweep": "a record that sweep builds; plot_sweep and table check it",
    "core.cache.jsonable": "total: any object has a JSON form (its repr at worst)",
    "core.cache.config_key": "total: hashes jsonable(config)",
    "core.cache.to_plain": "total: anything not plain data is kept as it is",
    "core.cache.from_plain": "total: undoes to_plain; a wrong as_type fails as a cache miss would",
    "core.cache.schema": "total: any type has a shape (its name at worst)",
    "core.cache.CacheWarning": "a warning class: a load that moves a file aside issues it (tests/test_faults.py)",
    "core.cache.CorruptEntry": "an exception class: check_file and read_record raise it (tests/test_faults.py)",
    "core.cache.CacheWriteError": "an exception class: a failed write raises it (tests/test_faults.py)",
    "cache.Entry": "a record that scan builds",
    "cache.main": "argparse: tests/test_cache.py::test_the_command_line_refuses_bad_arguments",
    "core.chapter.results_root": "no arguments",
    "core.runtime.interactive": "no arguments",
    "core.runtime.quiet_libraries": "no arguments",
    "core.runtime.progress_bar": "tqdm's own arguments, passed through (tqdm checks them)",
    "core.runtime.phase_seconds": "no arguments",
    "core.chapter.Execution": "a record that execute builds",
    "core.ledger.state": "total: any entry, or None, has a state",
    "core.ledger.with_states": "claims, a ledger and specs that execute passes after checking them",
    "core.record.machine": "no arguments",
    "jobs.main": "argparse: test_job_command_line_rejects_bad_arguments",
    "jobs.call_main": "main's argv, which argparse checks",
    "chapters.extrapolation.common.Setup": "a record that setup builds",
    "chapters.extrapolation.common.ensemble": "passes its inputs to make_loss and vision.train.fit, which check them",
    "chapters.extrapolation.common.shifted_sets": "passes its inputs to vision.shifts.evaluation_sets (it checks)",
    "chapters.extrapolation.common.focus_inputs": "passes its inputs to vision.shifts.focus_sets, which checks them",
    "chapters.hallucination.common.rows": "two lists of texts, which datasets.Dataset.from_dict checks",
    "chapters.hallucination.common.documents": "a list of texts (rows)",
    "chapters.hallucination.common.world": "a config and a run: make_world checks the config (covered)",
    "chapters.hallucination.common.pretrained_world": "passes its inputs to make_world and pretrained_base (covered)",
    "chapters.hallucination.common.selective_accuracy": "total: any grades have an accuracy (NaN when none answer)",
    "chapters.reasoning.common.Setup": "a record that setup builds",
    "chapters.reasoning.common.setup": "a chapter's Settings (checked by it) and its run",
    "chapters.reasoning.common.finetune_order": "a run only, whose streams check themselves",
    "chapters.reasoning.common.check_shared": "a check itself: the chapters' Settings cases cover it",
    "chapters.reasoning.common.checkpoint_sampling": "a run and a step, which substream checks (covered)",
    "scorecard.margins": "one table (covered through check_card in every other scorecard function)",
    "scorecard.compare": "two tables, each checked by check_card (covered)",
    "lm.models.smollm2_path": "no arguments; a missing package raises ModuleNotFoundError naming the install",
    "lm.base.BaseModel": "a record that pretrained_base builds",
    "lm.sampling.Samples": "a record that sample builds",
    "lm.reasoning.Sampled": "a record that sampled_correct builds",
    "lm.scoring.Scores": "a record that score builds",
    "worlds.knowledge.Fact": "a record that decompose builds",
    "vision.shifts.EvalSet": "a record that evaluation_sets builds",
    "measures.homogeneous.BiasRuns": "a record that simulate builds",
    "measures.homogeneous.Simulation": "a record that simulate builds",
    "performance.batching_table": "the benchmark's record, which performance.benchmark reads (covered)",
    "performance.sampling_table": "the benchmark's record, which performance.benchmark reads (covered)",
}

ONE_KIND = {  # covered names whose inputs allow fewer than two kinds of bad input, or no wrong type, and why
    "vision.xor.xor_means": "an XorClusters (checked when made) and a generator: only their types can be wrong",
    "core.claims.Measured": "a value and its context: only their types can be wrong",
    "core.ledger.read": "a path; a malformed file raises ValueError naming the claim and the field",
    "core.ledger.problems": "specs and a ledger: only their types can be wrong",
    "core.seeds.rng": "a seed, a name and a replicate, checked as by stream_seed",
    "core.seeds.torch_generator": "a seed, a name and a replicate, checked as by stream_seed",
    "core.seeds.seed_everything": "one seed",
    "core.runtime.phase": "a name, checked against PHASES (a wrong type is a wrong name)",
    "core.runtime.in_phase": "a name, checked against PHASES (a wrong type is a wrong name)",
    "core.chapter.Run": "a record that start builds; its methods check replicates",
    "core.scale.library_hash": "no arguments: it hashes the library's modules",
    "core.scale.sweep": "an Execution and a flag: only their types can be wrong",
    "core.scale.table": "one Sweep",
    "core.scale.summary": "one Sweep",
    "book.chapter": "a name, checked against the registry (a wrong type is a wrong name)",
    "book.part_of": "a name, checked against the registry (a wrong type is a wrong name)",
    "book.notebook": "a name, checked against the registry",
    "jobs.stages": "a name and a profile, checked by the registry and prepare",
    "core.cache.is_stale_temporary": "a path: any path is valid (not a temporary file: False)",
    "cache.chapter_of": "a kind: any folder name is valid (a kind the chapters share: None)",
    "cache.verify": "a list of Entry: only its type can be wrong",
    "cache.prune": "a list of Entry and a flag: only their types can be wrong",
    "measures.statistics.over_replicates": "a list of dicts: only its type or emptiness can be wrong",
    "chapters.extrapolation.common.ood_score": "covered: a wrong type, a range and an empty name",
    "core.checks.check_type": "checks a type",
    "core.checks.check_columns": "checks columns",
    "core.checks.check_same_length": "checks lengths",
    "core.checks.check_shape": "checks a shape",
    "core.checks.check_nonempty": "checks emptiness (and that there is a length)",
    "core.chapter.check_run": "checks two types",
    "core.record.versions": "package names only; an unknown package is reported as None, not an error",
    "core.record.read_metrics": "a path; a missing file raises FileNotFoundError naming it",
    "scorecard.chapter_link": "a name; an unknown one has no link ('')",
    "scorecard.check_card": "checks one table",
    "scorecard.sources": "one table from collect",
    "lm.sft.load_finished": "a model and a cache; a missing entry is None, not an error",
    "lm.tokenizer.check_tokenizer": "checks a tokenizer",
    "lm.tokenizer.pad_id": "one tokenizer",
    "measures.premem.PNotIdentified": "an exception class: calibrate_p's flat-curve case raises it",
    "vision.representations.AffineLayer": "a record of one layer (type and shape of the scale)",
    "vision.representations.affine_layers": "one model",
    "worlds.knowledge.normalize": "any string is valid",
    "worlds.knowledge.decompose": "any string is valid",
    "worlds.knowledge.verify": "a list of Facts and a row: only their types can be wrong",
    "lm.reward.FactHead": "one backbone",
    "worlds.knowledge.vocabulary": "one world",
    "worlds.geography.normalize": "any string is valid",
    "worlds.geography.answer_of": "any string is valid",
    "worlds.geography.prompt": "any string is valid",
    "worlds.running_totals.answers_match": "any text and integer are valid",
    "worlds.running_totals.extract_answer": "any text is valid",
    "worlds.running_totals.steps_of": "any text",
    "worlds.running_totals.same_trace": "any two texts",
    "worlds.running_totals.render_step": "any two integers",
    "worlds.running_totals.vocabulary": "one TaskConfig",
    **{f"chapters.{c}.run": "its Settings and Run, whose values Settings and start check" for c in CHAPTERS},
    "chapters.extrapolation.common.setup": "covered: a range and a wrong type of the held-out size",
}


def public_names() -> list[str]:
    names = []
    for name in MODULES:
        module = importlib.import_module(f"steerlib.{name}")
        names += [
            f"{name}.{k}"
            for k, v in vars(module).items()
            if not k.startswith("_")
            and (inspect.isfunction(v) or inspect.isclass(v))
            and v.__module__ == module.__name__
        ]
    return names + [f"chapters.{c}.{k}" for c in CHAPTERS for k in ("Settings", "run")]


def test_the_table_covers_every_public_function():
    covered: dict[str, set[str]] = {}
    for target, kind, *_ in CASES:
        covered.setdefault(target, set()).add(kind)
    names = public_names()
    assert not [n for n in covered if n not in names], "the table names a function that is not public"
    missing = [n for n in names if n not in covered and n not in LEFT_OUT]
    assert not missing, f"public functions without bad-input cases: {missing}"
    thin = [n for n, kinds in covered.items() if n not in ONE_KIND and ("type" not in kinds or len(kinds) < 2)]
    assert not thin, f"covered by fewer than two kinds of bad input, or without a wrong type: {thin}"


# ------------------------------------------------------------------------------- nothing written, offline, CLI


@pytest.mark.parametrize(
    "params",
    [dict(seed="abc"), dict(seed=1.5), dict(seed=-1), dict(profile=""), dict(device="tpu")],
    ids=["seed-abc", "seed-1.5", "seed--1", "profile-empty", "device-tpu"],
)
def test_a_run_that_fails_validation_writes_nothing(params, tmp_path, monkeypatch):
    monkeypatch.setenv("STEERLIB_RESULTS", str(tmp_path / "results"))
    with pytest.raises((TypeError, ValueError)):
        chapter.start("reversion", **{"profile": "smoke", **params})
    with pytest.raises((TypeError, ValueError)):
        chapter.start("reversion", **{"profile": "smoke", "out_dir": tmp_path / "out", **params})
    assert not list(tmp_path.iterdir())


def test_nothing_is_written_until_the_chapter_has_run(tmp_path, monkeypatch):
    """start writes nothing; a run stopped by a bad override writes nothing; a finished run writes its record."""
    monkeypatch.setenv("STEERLIB_CACHE", str(tmp_path / "cache"))
    assert not chapter.start("reversion", "smoke", out_dir=tmp_path / "out").out_dir.exists()
    with pytest.raises(ValueError, match="setting='colour'"):
        book.execute("reversion", "smoke", out_dir=tmp_path / "out", colour="red")
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
    ex = book.execute("reversion", "smoke", out_dir=tmp_path / "out")
    assert (ex.run.out_dir / "metrics.json").exists()


@pytest.mark.parametrize("why", ["HF_HUB_OFFLINE", "no connection"])
def test_offline_hub_loads_fail_within_seconds_saying_what_to_do(why, tmp_path, monkeypatch):
    """Without a network (or with the hub set offline) a model or dataset that is neither local nor in the Hugging
    Face cache fails in seconds, not after the hub clients' retries, and says where to get or put it."""
    monkeypatch.setenv("STEERLIB_DATA", str(tmp_path))  # no local copies there
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    for name in runtime.OFFLINE_ENVS:
        monkeypatch.delenv(name, raising=False)
    if why == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.setenv("HF_ENDPOINT", "https://no-such-host.invalid")  # a name that never resolves
    assert runtime.hub_offline()
    for call, say in (
        (lambda: models.load_causal_lm("no/such-model"), "huggingface-cli download no/such-model"),
        (lambda: data.load_dataset("mnist"), "save_to_disk"),
        (lambda: hub_qa.questions(hub_qa.HubQAConfig()), "mandarjoshi/trivia_qa.*save_to_disk"),
    ):
        t = time.time()
        with pytest.raises(RuntimeError, match=f"hub cannot be reached.*{say}"):
            call()
        assert time.time() - t < 10


def test_from_hub_explains_only_offline_failures(monkeypatch):
    """Offline, a failed load names what was needed, why the hub is out of reach, the error and the fix; online, the
    load's own error passes through (it is not a missing network)."""

    def fail():
        with runtime.from_hub(needs="x needs y", fix="Save y.") as offline:
            assert offline == reason
            raise ConnectionError("no y")

    for reason in ("$HF_HUB_OFFLINE is set", ""):
        monkeypatch.setattr(runtime, "hub_offline", lambda reason=reason: reason)
        expected = (
            (
                RuntimeError,
                r"^x needs y, and the hub cannot be reached \(\$HF_HUB_OFFLINE is set\); "
                r"ConnectionError\. Save y\.$",
            )
            if reason
            else (ConnectionError, "^no y$")
        )
        with pytest.raises(expected[0], match=expected[1]):
            fail()


def test_job_command_line_rejects_bad_arguments(capsys):
    for argv, message in (
        (["pre-memorization", "--profile", "", "--list"], "profile=''.*'gpu'"),
        (["reversion", "--seed", "-1", "--list"], "seed=-1"),
        (["reversion", "--seed", "abc", "--list"], "invalid int value: 'abc'"),
        (["reversion", "--device", "tpu", "--list"], "device='tpu'"),
        (["nope", "--list"], "invalid choice: 'nope'"),
        (["reversion", "--workers", "0"], "workers=0"),
        (["reversion", "--profile", "smoke", "--job", "0"], "--job needs --stage"),
        (["reversion", "--profile", "smoke", "--stage", "nope"], "--stage='nope'.*'classifiers'"),
        (["reversion", "--profile", "smoke", "--stage", "ensembles", "--job", "9"], "--job=9"),
    ):
        with pytest.raises(SystemExit) as info:
            job_command.main(argv)
        assert info.value.code == 2 and re.search(message, capsys.readouterr().err), argv


# ------------------------------------------------------------------------------------------------- scorecard


def _write(folder, chapter_name, profile, finished_after: float = 0.0):
    path = record.write_metrics(
        folder,
        chapter_name,
        {"profile": profile, "seed": 0},
        [claims.Claim(f"T-{folder.name}", "toy holds", "x", 1.0, ">", 0.5)],
        0,
    )
    if finished_after:  # write_metrics stamps the time; move it to order the runs
        rec = record.read_metrics(path)
        rec["finished"] = f"2030-01-01T00:00:{finished_after:02.0f}+00:00"
        path.write_text(__import__("json").dumps(rec))


def test_scorecard_shows_one_run_per_chapter_at_the_books_profile(tmp_path):
    _write(tmp_path / "reversion", "reversion", "cpu", 1)
    _write(tmp_path / "reversion-again", "reversion", "cpu", 2)
    _write(tmp_path / "reversion-smoke", "reversion", "smoke")
    _write(tmp_path / "mechanism", "mechanism", "smoke")
    card = scorecard.collect(tmp_path, profile="cpu")
    assert card["id"].tolist() == ["T-reversion-again"]  # the newest cpu run; no smoke run
    text = scorecard.sources(card)
    assert "cpu profile" in text and "reversion: reversion-again" in text
    assert "reversion (reversion, older than reversion-again)" in text
    assert "reversion-smoke (reversion, smoke profile)" in text and "mechanism (mechanism, smoke profile)" in text
    smoke = scorecard.collect(tmp_path, profile="smoke")
    assert sorted(smoke["chapter"]) == ["mechanism", "reversion"]


def test_scorecard_profile_defaults_to_the_books(tmp_path, monkeypatch):
    _write(tmp_path / "reversion", "reversion", "smoke")
    monkeypatch.delenv("STEERLIB_PROFILE", raising=False)
    assert scorecard.collect(tmp_path).empty  # the book's profile is cpu
    monkeypatch.setenv("STEERLIB_PROFILE", "smoke")
    assert scorecard.collect(tmp_path)["id"].tolist() == ["T-reversion"]


def test_margins_put_every_evidence_claim_on_one_scale(tmp_path):
    """Signed distance from the threshold in interval half-widths: > 1 holds firmly, (0, 1] holds fragilely, the
    mirror image for misses; a claim without an interval sits at the clip; prerequisites are left out."""
    evidence = [
        claims.Claim("T1", "s", "x", 3.0, ">", 1.0, interval=(2.0, 4.0)),  # gap 2, half-width 1 -> 2
        claims.Claim("T2", "s", "x", 0.5, "<", 1.0, interval=(0.0, 1.0)),  # gap 0.5 on the holding side -> 1
        claims.Claim("T3", "s", "x", 2.0, "<", 1.0, interval=(1.5, 2.5)),  # misses by 1, half-width 0.5 -> -2
        claims.Claim("T4", "s", "x", 9.0, ">", 1.0),  # no interval -> the clip
        claims.Claim("P1", "s", "x", 9.0, ">", 1.0, kind="prerequisite"),
    ]
    record.write_metrics(tmp_path / "toy", "toy", {"profile": "cpu"}, evidence, 0)
    m = scorecard.margins(scorecard.collect(tmp_path, "cpu")).set_index("id")["margin"]
    assert m.to_dict() == pytest.approx({"T1": 2.0, "T2": 1.0, "T3": -2.0, "T4": 4.0})


def test_compare_lists_claims_whose_verdict_differs_and_marks_firm_flips(tmp_path):
    def card(folder, values):
        evidence = [claims.Claim(f"T{i}", "s", "x", v, ">", 1.0, interval=(v - 0.5, v + 0.5)) for i, v in values]
        record.write_metrics(tmp_path / folder / "toy", "toy", {"profile": "cpu"}, evidence, 0)
        return scorecard.collect(tmp_path / folder, "cpu")

    a = card("a", [(1, 3.0), (2, 3.0), (3, 1.2)])  # holds, holds, holds (fragile)
    b = card("b", [(1, 3.0), (2, 0.0), (3, 0.9)])  # holds, does not hold, does not hold (fragile)
    differ = scorecard.compare(a, b).set_index("id")
    assert list(differ.index) == ["T2", "T3"] and differ["firm flip"].to_dict() == {"T2": True, "T3": False}


def test_phases_count_cpu_time_to_the_innermost_phase():
    """Sampling inside a training step counts to sampling alone; the two add up to the time spent in both."""
    before = runtime.phase_seconds()

    def busy(seconds: float) -> None:
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass

    with runtime.phase("training"):
        busy(0.05)
        with runtime.phase("sampling"):
            busy(0.1)
    after = runtime.phase_seconds()
    trained, sampled = (after[k] - before[k] for k in ("training", "sampling"))
    assert 0.04 <= trained <= 0.09 and 0.09 <= sampled <= 0.14, (trained, sampled)
    with pytest.raises(ValueError, match="name='idling'"):
        runtime.phase("idling").__enter__()
