"""The claims of the chapter "Template chapter title".

Z0 (the classifier learned the task) and Z1 (its accuracy falls as the noise grows), each a mean over the
replicates with a prediction interval for a rerun."""

from __future__ import annotations

from steerlib.chapters.template_part.template_chapter.experiment import Results
from steerlib.core.claims import Claim, Spec, make_claims
from steerlib.measures.statistics import over_replicates, spearman

# The claims table, fixed before any run: its ledger (ledger.json) records when each claim was registered and every
# revision since (tests/test_ledger.py fails when a spec changes without a new entry).
SPECS = (
    Spec(
        id="Z0",
        kind="prerequisite",
        statement="the classifier learned the task",
        statistic="test accuracy on clean inputs",
        op=">=",
        threshold=0.8,
        why=">= 0.8: well above chance (0.5) and short of the Bayes accuracy of the cpu profile's classes (0.93)",
        dissertation="the set-up of the work reproduced (name its section or figure)",
    ),
    Spec(
        id="Z1",
        statement="test accuracy falls as the noise on the inputs grows",
        statistic="Spearman rho(noise scale, test accuracy), clean inputs included",
        op="<",
        threshold=-0.5,
        why="rho < -0.5: a clear monotone fall over the noise scales; 0 would be no trend",
        dissertation="the claim reproduced (name its section or figure)",
    ),
)


def statistics(results: Results) -> dict[str, float]:
    """One replicate's value of each claim's statistic, by claim id."""
    t = results.table
    return {"Z0": float(t.loc[t["noise"] == 0, "accuracy"].iloc[0]), "Z1": spearman(t["noise"], t["accuracy"])}


def claims(results: Results) -> list[Claim]:
    """:data:`SPECS` judged on each statistic's mean over the replicates, with its prediction interval
    (:func:`~steerlib.measures.statistics.over_replicates`) clipped to the statistic's range."""
    measured = over_replicates([statistics(r) for r in [results, *results.others]])
    ranges = {"Z0": (0.0, 1.0), "Z1": (-1.0, 1.0)}  # an accuracy, a rank correlation: where a rerun can fall
    return make_claims(SPECS, {cid: m.clipped(*ranges[cid]) for cid, m in measured.items()})


def extra(results: Results) -> dict:
    """metrics.json's extra numbers: each replicate's accuracy at every noise scale."""
    return {
        f"replicate {r.replicate}": dict(zip(r.table["noise"].astype(str), r.table["accuracy"]))
        for r in [results, *results.others]
    }
