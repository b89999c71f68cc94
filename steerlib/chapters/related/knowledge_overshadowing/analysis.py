"""The claims of the chapter "Hedge or overshadowing? Where wrong answers about rare facts come from" (study R3 of
``shared/research/related-studies.md``).

H is the share of rare queries whose first-ranked answer is the group's own popular answer. R3p/gate checks that the
balanced control (r = 1) learns its rare facts; it gates every evidence claim. R3a: H rises with the imbalance
ratio; R3b: with the shared-condition length; R3c: wrong rare answers are the group's own popular answer and spread
over many answers (a hedge would put them on one); R3d: doubling the rare exposures lowers H. The trends (R3a/rho,
R3b) are rank correlations of the replicates' mean H, with jackknife intervals; the rest are per-replicate values
averaged with prediction intervals. The claims are read at the end of each run (the training budget); the ``early``
claims, added after results, read the same statistics at the first checkpoint, when the rare facts have been seen
but not yet learned."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from steerlib.chapters.related.knowledge_overshadowing.experiment import Results, RunLog, RunSpec
from steerlib.core.claims import Claim, Spec, make_claims
from steerlib.measures.statistics import jackknife, over_replicates, spearman

PAPER = "Zhang et al. (2024), arXiv:2407.08039"
SPEC_OWN = "the spec's own threshold (related-studies.md), not the paper's"
AFTER = (
    "added after the cpu results at seeds 0, 271828 and 314159 showed H high early and gone at the end; judged out "
    "of sample at seeds 161803 and 141421 (the closing note of issue 36)"
)

# The claims table, fixed before the cpu run: its ledger (ledger.json) records when each claim was registered and
# every revision since (tests/test_ledger.py fails when a spec changes without a new entry).
SPECS = (
    Spec(
        id="R3p/gate",
        kind="prerequisite",
        statement="the balanced control (r = 1) learns its rare facts within the training budget",
        statistic="rare-fact accuracy of the r = 1 run at its end",
        op=">=",
        threshold=0.9,
        why=f">= 0.9: {SPEC_OWN}; a model that has not learned the rare facts when nothing overshadows them makes "
        "every error look like overshadowing",
        gates=("R3a*", "R3b*", "R3c*", "R3d"),
        dissertation=f"{PAPER}: the rare facts are trained, so their errors are not a lack of exposure",
    ),
    Spec(
        id="R3a/rho",
        statement="with rare exposures fixed, H rises with the imbalance ratio r",
        statistic="Spearman rho(r, mean H over the replicates) over the ratio sweep",
        op=">=",
        threshold=0.8,
        why="the spec's rule, at most one adjacent swap: rho >= 0.9 with its five ratios is rho >= 0.8 with the "
        "four run on every replicate here (r = 100 is reported, not claimed)",
        dissertation=f"{PAPER}, Table 3: hallucination 78.5 / 86.2 / 96.3 / 100 % at 10 / 25 / 50 / 100 : 1",
    ),
    Spec(
        id="R3a/rise",
        statement="and by a margin",
        statistic="H at the largest claimed ratio less H at r = 1",
        op=">=",
        threshold=0.2,
        why=f">= 0.2: {SPEC_OWN} (there H(100) - H(1); r = 100 is not claimed here)",
        dissertation=f"{PAPER}: overshadowing grows with the popular fact's share",
    ),
    Spec(
        id="R3b",
        statement="at r = 10, H rises with the shared-condition length L",
        statistic="Spearman rho(L, mean H over the replicates) over the length sweep",
        op=">=",
        threshold=0.8,
        why=f">= 0.8: {SPEC_OWN}; at most one adjacent swap of four lengths",
        dissertation=f"{PAPER}: a longer shared condition makes the rare fact's distinguishing word a smaller part",
    ),
    Spec(
        id="R3c/own",
        statement="wrong answers to rare queries are the group's own popular answer",
        statistic="share of wrong rare answers (r = 10) that are the group's popular answer",
        op=">=",
        threshold=0.7,
        why=f">= 0.7: {SPEC_OWN}; a hedge's errors would rarely be the group's own popular answer",
        dissertation=f"{PAPER} against section 3.4: an input-dependent error, not an input-independent hedge",
    ),
    Spec(
        id="R3c/spread",
        statement="and no single answer takes many of the errors",
        statistic="largest share of the wrong rare answers (r = 10) taken by one answer",
        op="<=",
        threshold=0.1,
        why=f"<= 0.1: {SPEC_OWN}; a hedge puts its errors on one answer",
        dissertation="section 3.4: the hedge is one prediction for every unfamiliar query",
    ),
    Spec(
        id="R3d",
        statement="at r = 10, doubling the rare exposures lowers H",
        statistic="H with n rare copies less H with 2n (popular copies doubled too)",
        op=">",
        threshold=0.0,
        why="> 0: the direction both accounts predict; the interval says whether it beats replicate noise",
        dissertation=f"{PAPER} and section 3.4: more exposure makes a fact familiar",
    ),
)


def _early(cid: str, of: str, statement: str, statistic: str, dissertation: str) -> Spec:
    """Claim ``of`` read at the first checkpoint: its kind, operator and threshold carried over by construction."""
    end = next(spec for spec in SPECS if spec.id == of)
    why = f"{of}'s threshold, unchanged; {AFTER}"
    return dataclasses.replace(
        end, id=cid, statement=statement, statistic=statistic, why=why, dissertation=dissertation
    )


# Added after results (the ledger says when and why): the same claims at the first checkpoint.
SPECS += (
    _early(
        "R3a/early-rho",
        "R3a/rho",
        "early in training (at the first checkpoint), H rises with the ratio r",
        "Spearman rho(r, mean H over the replicates) at the first checkpoint",
        f"{PAPER}: overshadowing grows with the imbalance ratio",
    ),
    _early(
        "R3a/early-rise",
        "R3a/rise",
        "and by a margin",
        "H at the largest claimed ratio less H at r = 1, at the first checkpoint",
        f"{PAPER}: overshadowing grows with the popular fact's share",
    ),
    _early(
        "R3b/early",
        "R3b",
        "early in training, at r = 10, H rises with the shared-condition length L",
        "Spearman rho(L, mean H over the replicates) at the first checkpoint",
        f"{PAPER}: a longer shared condition makes the distinguishing word a smaller part",
    ),
    _early(
        "R3c/early-own",
        "R3c/own",
        "early in training, wrong rare answers at r = 10 are the group's own popular answer",
        "share of wrong rare answers (r = 10) that are the group's popular answer, first checkpoint",
        f"{PAPER} against section 3.4: an input-dependent error, not an input-independent hedge",
    ),
    _early(
        "R3c/early-spread",
        "R3c/spread",
        "and no single answer takes many of them",
        "largest share of the wrong rare answers (r = 10) taken by one answer, first checkpoint",
        "section 3.4: the hedge is one prediction for every unfamiliar query",
    ),
)


def overshadowed(log: RunLog, groups: int) -> np.ndarray:
    """(C,) H at each checkpoint: the share of rare queries answered with the group's popular answer."""
    return (log.rare == np.arange(groups)).mean(1)


def rare_accuracy(log: RunLog, groups: int) -> np.ndarray:
    """(C,) share of rare queries answered with the rare answer."""
    return (log.rare == groups + np.arange(groups)).mean(1)


def popular_accuracy(log: RunLog, groups: int) -> np.ndarray:
    """(C,) share of popular queries answered with the popular answer."""
    return (log.popular == np.arange(groups)).mean(1)


def error_breakdown(log: RunLog, groups: int, at: int = -1) -> dict[str, float]:
    """At checkpoint ``at`` of ``log`` (default the end), the wrong rare answers: how many, the shares that are the
    group's own popular answer, the global mode (the most frequent other wrong answer, when it is given at least
    twice) and anything else, and the largest share any one answer takes (NaN shares when there is no error)."""
    answered, g = log.rare[at], np.arange(groups)
    wrong = answered != groups + g
    n = int(wrong.sum())
    if n == 0:
        return {"errors": 0, "own popular": np.nan, "global mode": np.nan, "other": np.nan, "top answer": np.nan}
    answers = answered[wrong]
    own = answers == g[wrong]
    mode = np.zeros_like(own)
    if (~own).any():
        values, counts = np.unique(answers[~own], return_counts=True)
        if counts.max() >= 2:
            mode = (answers == values[np.argmax(counts)]) & ~own
    return {
        "errors": n,
        "own popular": float(own.mean()),
        "global mode": float(mode.mean()),
        "other": float((~own & ~mode).mean()),
        "top answer": float(np.unique(answers, return_counts=True)[1].max() / n),
    }


def pooled_errors(results: Results, name: str, at: int = -1) -> dict[str, float]:
    """:func:`error_breakdown` of run ``name`` at checkpoint ``at``, pooled over the replicates: the errors summed,
    each share weighted by its replicate's errors (shares 0 when there is no error)."""
    rows = [error_breakdown(r.logs[name], r.groups, at) for r in [results, *results.others]]
    n = sum(row["errors"] for row in rows)
    shares = ("own popular", "global mode", "other", "top answer")
    return {
        "errors": n,
        **{k: sum(row[k] * row["errors"] for row in rows if row["errors"]) / n if n else 0.0 for k in shares},
    }


def mean_curve(results: Results, name: str, fn) -> np.ndarray:
    """(C,) ``fn(log, G)`` of run ``name`` at each checkpoint, averaged over the replicates (e.g. ``overshadowed``)."""
    return np.mean([fn(r.logs[name], r.groups) for r in [results, *results.others]], 0)


def _threshold(cid: str) -> float:
    return next(s.threshold for s in SPECS if s.id == cid)


def statistics(results: Results) -> dict[str, float]:
    """One replicate's value of every per-replicate claim statistic, by claim id: at the end of the runs, and the
    early claims at their first checkpoint."""
    g, ratios, main = results.groups, results.ratio_sweep, results.main.name
    out = {"R3p/gate": float(rare_accuracy(results.logs[ratios[0].name], g)[-1])}
    fewest = math.ceil(1 / _threshold("R3c/spread"))  # fewer errors cannot spread below the threshold
    for at, suffix in ((-1, ""), (0, "early-")):
        h = {name: overshadowed(log, g)[at] for name, log in results.logs.items()}
        errors = error_breakdown(results.logs[main], g, at)
        out[f"R3a/{suffix}rise"] = float(h[ratios[-1].name] - h[ratios[0].name])
        out[f"R3c/{suffix}own"] = errors["own popular"]
        out[f"R3c/{suffix}spread"] = errors["top answer"] if errors["errors"] >= fewest else np.nan
    end = {name: overshadowed(log, g)[-1] for name, log in results.logs.items()}
    both = (end[main], end[results.doubled.name])
    out["R3d"] = float(both[0] - both[1]) if max(both) > 0 else np.nan  # H = 0 in both has nothing to lower
    return out


def mean_h(replicates: list[Results], specs: list[RunSpec], at: int = -1) -> np.ndarray:
    """H at checkpoint ``at`` (default the end) of each run of ``specs``, averaged over ``replicates``."""
    return np.array([np.mean([overshadowed(r.logs[p.name], r.groups)[at] for r in replicates]) for p in specs])


def claims(results: Results) -> list[Claim]:
    """:data:`SPECS` judged over the replicates: the trends on the replicates' mean H (jackknife intervals), the
    rest on per-replicate values (prediction intervals)."""
    replicates = [results, *results.others]
    measured = over_replicates([statistics(r) for r in replicates])
    ratios, lengths = results.ratio_sweep, results.length_sweep

    def rho(x: list[float], specs: list[RunSpec], draw: np.ndarray, at: int) -> float:
        # A rank correlation of four points is a ratio of integers (one adjacent swap: exactly 0.8); rounding off
        # scipy's last-bit error keeps a verdict at the threshold from turning on floating-point summation.
        return round(spearman(x, mean_h([replicates[i] for i in draw], specs, at)), 12)

    def trends(draw: np.ndarray) -> dict[str, float]:
        r, n = [p.ratio for p in ratios], [p.length for p in lengths]
        return {
            "R3a/rho": rho(r, ratios, draw, -1),
            "R3b": rho(n, lengths, draw, -1),
            "R3a/early-rho": rho(r, ratios, draw, 0),
            "R3b/early": rho(n, lengths, draw, 0),
        }

    measured |= {cid: m.clipped(-1.0, 1.0) for cid, m in jackknife(trends, len(replicates)).items()}
    for cid in ("R3p/gate", "R3c/own", "R3c/spread", "R3c/early-own", "R3c/early-spread"):
        measured[cid] = measured[cid].clipped(0.0, 1.0)
    flat = "H is the same at every {}: a rank correlation is undefined"
    none = f"no wrong rare answer at r = {results.main.ratio:g} in any replicate: no error to classify"
    few = (
        f"fewer than {math.ceil(1 / _threshold('R3c/spread'))} wrong rare answers at r = {results.main.ratio:g} in "
        "every replicate: one answer takes more than the threshold's share whatever the errors are"
    )
    degenerate = {  # the book's rule for a statistic with nothing to measure: not judged, with the reason
        **{cid: flat.format("ratio") for cid in ("R3a/rho", "R3a/early-rho")},
        **{cid: flat.format("length") for cid in ("R3b", "R3b/early")},
        **{cid: none for cid in ("R3c/own", "R3c/early-own")},
        **{cid: few for cid in ("R3c/spread", "R3c/early-spread")},
        "R3d": "H is 0 with n and with 2n rare copies in every replicate: nothing to lower",
    }
    for cid, reason in degenerate.items():
        if np.isnan(measured[cid].value):
            measured[cid] = dataclasses.replace(measured[cid], judged=False, note=reason)
    return make_claims(SPECS, measured)


def run_table(results: Results) -> pd.DataFrame:
    """Per run, at its end (means over the replicates): steps, H, rare and popular accuracy."""
    columns = {"H": overshadowed, "rare accuracy": rare_accuracy, "popular accuracy": popular_accuracy}
    rows = {
        name: {"steps": int(log.step[-1]), **{c: mean_curve(results, name, fn)[-1] for c, fn in columns.items()}}
        for name, log in results.logs.items()
    }
    return pd.DataFrame(rows).T.rename_axis("run").astype({"steps": int})


def extra(results: Results) -> dict:
    """metrics.json's extra numbers: per replicate and run, H and rare accuracy at each checkpoint, and the error
    breakdown at the end."""
    return {
        f"replicate {r.replicate}": {
            name: {
                "step": log.step.tolist(),
                "H": overshadowed(log, r.groups).tolist(),
                "rare accuracy": rare_accuracy(log, r.groups).tolist(),
                "errors": error_breakdown(log, r.groups),
            }
            for name, log in r.logs.items()
        }
        for r in [results, *results.others]
    }


def pilot_table(results: Results) -> pd.DataFrame:
    """The gate pilot (replicate 0): per budget, the steps and the balanced control's rare-fact accuracy at its end,
    and whether that passes R3p/gate's threshold."""
    gate = next(s.threshold for s in SPECS if s.id == "R3p/gate")
    rows = [
        {"budget": name, "steps": int(log.step[-1]), "rare accuracy": rare_accuracy(log, results.groups)[-1]}
        for name, log in results.pilot.items()
    ]
    table = pd.DataFrame(rows).set_index("budget")
    table["gate passes"] = table["rare accuracy"] >= gate
    return table


def peak_table(results: Results) -> pd.DataFrame:
    """Per run of the ratio sweep (and the extra ratio): the replicates' mean H at each checkpoint's step, and its
    largest value over the run. A description of the transient, not a claim."""
    rows = {}
    for spec in [*results.ratio_sweep, results.extra_run]:
        step, curve = results.logs[spec.name].step, mean_curve(results, spec.name, overshadowed)
        rows[spec.name] = {"steps": int(step[-1]), "peak H": curve.max(), "at step": int(step[curve.argmax()])}
    return pd.DataFrame(rows).T
