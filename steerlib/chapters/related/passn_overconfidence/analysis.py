"""The claims of the chapter "Overconfidence or memorisation? pass@N under cross-entropy and DCO" (study R4 of
``shared/research/related-studies.md``).

R4p/memorizes checks that the CE run memorizes (the rival accounts need one that does; it gates every evidence
claim). R4a: under CE, pass@k peaks before pass@1 and falls further from its peak (relative, because memorization
also lowers pass@1 in a tiny model). R4b: on test problems still wrong at the end, the modal answer's share rises
across checkpoints. R4c: DCO ends with a higher pass@16 at no cost in pass@1. R4d: across CE checkpoints the
memorized fraction and pass@16 move against each other, and DCO memorizes less. Each statistic is measured per
replicate, then averaged with a prediction interval."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from steerlib.chapters.related.passn_overconfidence.experiment import Results, RunLog
from steerlib.core.claims import Claim, Spec, make_claims
from steerlib.measures.coverage import pass_at_k
from steerlib.measures.statistics import over_replicates, spearman

PAPER = "Chen et al. (2025), arXiv:2502.07154"
SPEC_OWN = "the spec's own threshold (related-studies.md), not the paper's"

# The claims table, fixed before any run: its ledger (ledger.json) records when each claim was registered and every
# revision since (tests/test_ledger.py fails when a spec changes without a new entry).
SPECS = (
    Spec(
        id="R4p/memorizes",
        kind="prerequisite",
        statement="the CE run memorizes its training traces",
        statistic="share of training traces with perplexity at most Part III's p at the end of the CE run",
        op=">=",
        threshold=0.5,
        why=">= 0.5: most traces memorized, as in the pre-memorization chapter's runs at this learning rate; both "
        "accounts are about a run that memorizes, and runs that learned nothing would tie on R4c",
        gates=("R4a*", "R4b", "R4c*", "R4d*"),
        dissertation="section 4.3: memorization of the target traces ends generalization",
    ),
    Spec(
        id="R4a/earlier",
        statement="under CE, pass@{k} peaks at an earlier checkpoint than pass@1",
        statistic="checkpoint index of pass@1's peak less that of pass@{k}'s",
        op=">",
        threshold=0.0,
        why="> 0: the paper's ordering; 0 would be one peak for both",
        dissertation=f"{PAPER}: with CE, pass@N for large N peaks early and then declines while pass@1 improves",
    ),
    Spec(
        id="R4a/drop",
        statement="and pass@{k} falls from its peak more than pass@1 does",
        statistic="(peak - final pass@{k}) - (peak - final pass@1) under CE",
        op=">=",
        threshold=0.05,
        why=f">= 0.05: relative, since memorization lowers pass@1 too in a tiny model; {SPEC_OWN}",
        dissertation=f"{PAPER}: pass@N falls for large N as CE training goes on (overconfidence)",
    ),
    Spec(
        id="R4b",
        statement="on test problems still wrong at the end, the modal answer's share rises across checkpoints",
        statistic="Spearman rho(checkpoint, mean modal-answer share over the test problems with no right sample at "
        "the end) under CE",
        op=">=",
        threshold=0.8,
        why=f">= 0.8: a steady rise in confidence on the wrong answer; {SPEC_OWN}",
        dissertation=f"{PAPER}: CE makes the model confidently wrong on the problems it does not solve",
    ),
    Spec(
        id="R4c/coverage",
        statement="DCO ends with a higher pass@{k} than CE",
        statistic="final pass@{k} of DCO less that of CE",
        op=">=",
        threshold=0.03,
        why=f">= 0.03: a gain beyond noise; {SPEC_OWN}",
        dissertation=f"{PAPER}: DCO improves pass@N for the N it is trained for",
    ),
    Spec(
        id="R4c/pass1",
        statement="at no real cost in pass@1",
        statistic="final pass@1 of DCO less that of CE",
        op=">=",
        threshold=-0.03,
        why=f">= -0.03: DCO may lose a little pass@1, not more; {SPEC_OWN}",
        dissertation=f"{PAPER}: the trade-off between pass@1 and pass@N",
    ),
    Spec(
        id="R4d/rho",
        statement="across CE checkpoints, the memorized fraction and pass@{k} move against each other",
        statistic="Spearman rho(memorized fraction, pass@{k}) over the CE run's checkpoints",
        op="<=",
        threshold=-0.7,
        why=f"<= -0.7: the two accounts name the same checkpoints; {SPEC_OWN}",
        dissertation="section 4.3 against the paper: memorization and overconfidence as one process",
    ),
    Spec(
        id="R4d/dco",
        statement="DCO, a brake on confidence, also memorizes less",
        statistic="final memorized fraction of CE less that of DCO",
        op=">",
        threshold=0.0,
        why="> 0: DCO's weight vanishes on traces the model already gives high probability",
        dissertation=f"{PAPER}: DCO limits confidence on training examples",
    ),
)


def pass_curve(log: RunLog, samples: int, k: int) -> np.ndarray:
    """Mean pass@k over the test problems at each checkpoint of ``log``."""
    return pass_at_k(samples, log.correct, k).mean(1)


def statistics(results: Results) -> dict[str, float]:
    """One replicate's value of every claim statistic, by claim id."""
    n, k, ce, dco = results.samples, results.k_max, results.logs["ce"], results.logs["dco"]
    one, many = pass_curve(ce, n, 1), pass_curve(ce, n, k)
    wrong = ce.correct[-1] == 0
    modal = ce.modal[:, wrong].mean(1) if wrong.any() else np.full(len(ce.step), np.nan)
    return {
        "R4p/memorizes": float(ce.memorized[-1]),
        "R4a/earlier": float(np.argmax(one) - np.argmax(many)),
        "R4a/drop": float((many.max() - many[-1]) - (one.max() - one[-1])),
        "R4b": spearman(np.arange(len(modal)), modal) if wrong.any() else float("nan"),
        "R4c/coverage": float(pass_curve(dco, n, k)[-1] - many[-1]),
        "R4c/pass1": float(pass_curve(dco, n, 1)[-1] - one[-1]),
        "R4d/rho": spearman(ce.memorized, many),
        "R4d/dco": float(ce.memorized[-1] - dco.memorized[-1]),
    }


def claims(results: Results) -> list[Claim]:
    """:data:`SPECS` judged on the replicates' means with prediction intervals; ``{k}`` in the specs is the large
    k of pass@k (16 at cpu)."""
    measured = over_replicates([statistics(r) for r in [results, *results.others]])
    measured = {cid: dataclasses.replace(m, context={"k": results.k_max}) for cid, m in measured.items()}
    measured["R4p/memorizes"] = measured["R4p/memorizes"].clipped(0.0, 1.0)
    for cid in ("R4b", "R4d/rho"):
        measured[cid] = measured[cid].clipped(-1.0, 1.0)
    return make_claims(SPECS, measured)


def final_table(results: Results) -> pd.DataFrame:
    """Per run, at the last checkpoint: pass@1, pass@k_max and the memorized fraction (means over replicates)."""
    replicates, k_max = [results, *results.others], results.k_max
    rows = []
    for name in results.logs:
        logs = [r.logs[name] for r in replicates]
        rows.append(
            {
                "run": name,
                "pass@1": np.mean([pass_curve(g, results.samples, 1)[-1] for g in logs]),
                f"pass@{k_max}": np.mean([pass_curve(g, results.samples, k_max)[-1] for g in logs]),
                "memorized": np.mean([g.memorized[-1] for g in logs]),
            }
        )
    return pd.DataFrame(rows).set_index("run")


def extra(results: Results) -> dict:
    """metrics.json's extra numbers: each replicate's pass@1 and pass@16 and memorized fraction per run and step."""
    return {
        f"replicate {r.replicate}": {
            name: {
                "step": log.step.tolist(),
                "pass@1": pass_curve(log, r.samples, 1).tolist(),
                f"pass@{r.k_max}": pass_curve(log, r.samples, r.k_max).tolist(),
                "memorized": log.memorized.tolist(),
            }
            for name, log in r.logs.items()
        }
        for r in [results, *results.others]
    }
