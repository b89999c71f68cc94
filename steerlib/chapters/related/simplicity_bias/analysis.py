"""The claims of the chapter "When predictions do not revert: simplicity bias meets the OCS" (study R1 of
``shared/research/related-studies.md``).

R1p/data checks the data (every signal coordinate alone names the class), R1p/reward that the reward model
learned the task. R1a-R1b are the paper's accuracies (single nets and the logit-averaged ensemble), R1c asks
whether S-randomized inputs move the classifier towards the OCS, R1d whether the reward model's cautious policy
notices. Per-member statistics are means over the members (independent replicates) with a prediction interval;
the ensemble's come with a jackknife interval over its members."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from steerlib.chapters.related.simplicity_bias.experiment import SETS, Results
from steerlib.core.claims import Claim, Measured, Spec, make_claims
from steerlib.measures.statistics import jackknife, over_replicates

PAPER = "Shah et al. (2020), LMS-5, (100,2)-FCN"
SPEC_OWN = "the spec's own threshold (related-studies.md), not the paper's"

# The claims table, fixed before any run: its ledger (ledger.json) records when each claim was registered and every
# revision since (tests/test_ledger.py fails when a spec changes without a new entry).
SPECS = (
    Spec(
        id="R1p/data",
        kind="prerequisite",
        statement="every signal coordinate alone names the class, in the inputs the models see",
        statistic="lowest accuracy of one coordinate's own rule (sign for S, the slab rule for each of S^c) on the "
        "clean test inputs rotated back",
        op=">=",
        threshold=0.999,
        why=">= 0.999: 1 by construction (LMS data are fully predictive through S and through S^c); less means the "
        "generator or the rotation is broken",
        dissertation=f"{PAPER}: S and S^c each separate the classes (the data's definition)",
    ),
    Spec(
        id="R1p/reward",
        kind="prerequisite",
        statement="the reward model learned the task before its cautious policy is read",
        statistic="mean reward of the reward model's greedy policy on the clean test set (+1/-4/0; 1 at best)",
        op=">=",
        threshold=0.9,
        why=f">= 0.9: at least 98% answered right if the rest were wrong; {SPEC_OWN}",
        gates=("R1d*",),
        dissertation="section 2.5's reward model, trained on in-distribution data",
    ),
    Spec(
        id="R1p/classifier",
        kind="prerequisite",
        statement="the classifier learned the task before its failures are read",
        statistic="test accuracy of the single nets on the clean set (mean over the members)",
        op=">=",
        threshold=0.9,
        why=">= 0.9: far above chance; an untrained net (about 0.5) would otherwise pass R1a and R1b on S-randomized "
        "inputs and R1c",
        gates=("R1a/S-randomized", "R1b/*", "R1c"),
        dissertation="the set-up of the paper's experiment: a trained (100,2)-FCN",
    ),
    Spec(
        id="R1a/clean",
        statement="a single net classifies clean LMS-5 test data perfectly",
        statistic="test accuracy on the clean set (mean over the members)",
        op=">=",
        threshold=0.99,
        why=">= 0.99: the paper's 1.000 (AUC) less a margin for a smaller training set",
        dissertation=f"{PAPER}: standard AUC 1.000",
    ),
    Spec(
        id="R1a/Sc-randomized",
        statement="randomizing the 49 complex (slab) coordinates leaves a single net's accuracy intact",
        statistic="test accuracy on the S^c-randomized set (mean over the members)",
        op=">=",
        threshold=0.98,
        why=">= 0.98: the paper's 1.000; a net that used the slabs at all would lose accuracy here",
        dissertation=f"{PAPER}: S^c-randomized AUC 1.000",
    ),
    Spec(
        id="R1a/S-randomized",
        statement="randomizing the one simple (linear) coordinate drops a single net to chance",
        statistic="test accuracy on the S-randomized set (mean over the members)",
        op="<=",
        threshold=0.55,
        why="<= 0.55: the paper's 0.508 with room for noise; a net that had learned the slabs too would stay near 1",
        dissertation=f"{PAPER}: S-randomized AUC 0.507, accuracy 0.508",
    ),
    Spec(
        id="R1b/Sc-randomized",
        statement="the logit-averaged ensemble is intact under S^c-randomization",
        statistic="accuracy of the members' averaged logits on the S^c-randomized set",
        op=">=",
        threshold=0.98,
        why=">= 0.98: the paper's 1.000 for an ensemble of 3",
        dissertation="Shah et al. (2020), observation iv: 3 FCNs, logits averaged: S^c-randomized AUC 1.000",
    ),
    Spec(
        id="R1b/S-randomized",
        statement="ensembling does not help: the logit-averaged ensemble is at chance under S-randomization",
        statistic="accuracy of the members' averaged logits on the S-randomized set",
        op="<=",
        threshold=0.55,
        why="<= 0.55: the paper's 0.497; independently seeded nets all learn the same simple feature",
        dissertation="Shah et al. (2020), observation iv: 3 FCNs, logits averaged: S-randomized AUC 0.507, "
        "accuracy 0.497",
    ),
    Spec(
        id="R1c",
        statement="S-randomized inputs do not move the classifier towards the OCS: it stays as confident as on "
        "clean inputs",
        statistic="mean KL(prediction || OCS) on the S-randomized set / the same on the clean set (mean over the "
        "members)",
        op=">=",
        threshold=0.8,
        why=f">= 0.8: a reverting model would lose most of its distance to the OCS; {SPEC_OWN}",
        dissertation="chapter 2 predicts reversion as inputs leave the training distribution (Fig 2.3); this shift "
        "keeps every coordinate's marginal",
    ),
    Spec(
        id="R1d/abstain",
        statement="the cautious policy does not notice S-randomization: the reward model hardly abstains more",
        statistic="abstain ratio on the S-randomized set less that on the clean set (mean over the members)",
        op="<=",
        threshold=0.10,
        why=f"<= 0.10: section 2.5's recipe abstains more the further inputs are from training; {SPEC_OWN}",
        dissertation="section 2.5: reward models abstain more under distribution shift (Figs 2.5-2.7)",
    ),
    Spec(
        id="R1d/reward",
        statement="so the cautious policy fails silently: it answers at chance and loses reward",
        statistic="mean reward of the reward model's greedy policy on the S-randomized set (answering at chance "
        "earns -1.5, abstaining 0)",
        op="<",
        threshold=-1.0,
        why=f"< -1.0: nearer chance answering (-1.5) than abstaining (0); {SPEC_OWN}",
        dissertation="section 2.5: abstaining under shift keeps the reward near 0",
    ),
    Spec(
        id="R1d/band",
        statement="the contrast: when the linear coordinate falls in its unseen gap, the cautious policy does abstain",
        statistic="abstain ratio on the margin-band set less that on the clean set (mean over the members)",
        op=">=",
        threshold=0.3,
        why=f">= 0.3: a shift the net's feature does see must raise abstention clearly; {SPEC_OWN}",
        dissertation="section 2.5: reward models abstain more under distribution shift",
    ),
)


def mean_by(results: Results, model: str, column: str) -> pd.DataFrame:
    """``column`` of ``model`` as a table with a row per member and a column per set."""
    t = results.table[results.table["model"] == model]
    return t.pivot(index="member", columns="set", values=column)[list(SETS)]


def member_statistics(results: Results) -> list[dict[str, float]]:
    """Each member's value of every per-member claim statistic, by claim id."""
    acc, dist = mean_by(results, "ce", "accuracy"), mean_by(results, "ce", "distance")
    abstain, reward = mean_by(results, "reward", "abstain"), mean_by(results, "reward", "reward")
    return [
        {
            "R1p/reward": reward.loc[e, "clean"],
            "R1p/classifier": acc.loc[e, "clean"],
            "R1a/clean": acc.loc[e, "clean"],
            "R1a/Sc-randomized": acc.loc[e, "Sc-randomized"],
            "R1a/S-randomized": acc.loc[e, "S-randomized"],
            "R1c": dist.loc[e, "S-randomized"] / dist.loc[e, "clean"],
            "R1d/abstain": abstain.loc[e, "S-randomized"] - abstain.loc[e, "clean"],
            "R1d/reward": reward.loc[e, "S-randomized"],
            "R1d/band": abstain.loc[e, "margin-band"] - abstain.loc[e, "clean"],
        }
        for e in acc.index
    ]


def ensemble_accuracy(results: Results, draw: np.ndarray) -> dict[str, float]:
    """Accuracy of the averaged logits of the members in ``draw``, per set (averaged logits: averaged margins)."""
    correct = (results.margins[:, draw].mean(1) > 0).long() == results.y_test  # (sets, N)
    return dict(zip(SETS, correct.float().mean(-1).tolist()))


def claims(results: Results) -> list[Claim]:
    """:data:`SPECS` judged on the members' means (prediction intervals) and the ensemble's accuracy (jackknife over
    its members), accuracies' intervals clipped to [0, 1]."""
    measured = over_replicates(member_statistics(results), unit="member")
    n = results.margins.shape[1]
    ensemble = jackknife(lambda draw: ensemble_accuracy(results, draw), n, unit="member")
    for name in ("Sc-randomized", "S-randomized"):
        measured[f"R1b/{name}"] = ensemble[name]
    for cid in (
        "R1p/classifier",
        "R1a/clean",
        "R1a/Sc-randomized",
        "R1a/S-randomized",
        "R1b/Sc-randomized",
        "R1b/S-randomized",
    ):
        measured[cid] = measured[cid].clipped(0.0, 1.0)
    measured["R1p/data"] = Measured(
        float(results.rule_accuracy.min()),
        None,
        "exact: a property of the generated test data, the same for every member",
    )
    return make_claims(SPECS, measured)


def accuracy_table(results: Results) -> pd.DataFrame:
    """The paper's table: accuracy and AUC per set, single nets (mean over the members) and the ensemble."""
    ce = results.table[results.table["model"] == "ce"]
    single = ce.groupby("set")[["accuracy", "auc"]].mean().loc[list(SETS)]
    n = results.margins.shape[1]
    ensemble_margins = results.margins.mean(1)
    auc = [float(roc_auc_score(results.y_test.numpy(), m.numpy())) for m in ensemble_margins]
    return pd.DataFrame(
        {
            "single net: accuracy": single["accuracy"],
            "single net: AUC": single["auc"],
            f"ensemble of {n}: accuracy": pd.Series(ensemble_accuracy(results, np.arange(n))),
            f"ensemble of {n}: AUC": pd.Series(dict(zip(SETS, auc))),
        }
    ).rename_axis("test set")


def extra(results: Results) -> dict:
    """metrics.json's extra numbers: the accuracy table, the reward model's abstain ratio and reward per set, the OOD
    scores, and the KL to the OCS per set."""
    ce, rm = results.table["model"] == "ce", results.table["model"] == "reward"
    by_set = results.table[rm].groupby("set")[["abstain", "reward"]].mean()
    return {
        "accuracy": accuracy_table(results).to_dict(),
        "reward model": {s: by_set.loc[s].to_dict() for s in SETS},
        "KL to the OCS": results.table[ce].groupby("set")["distance"].mean().loc[list(SETS)].to_dict(),
        "OOD score": {
            f"{row.set}/{row.discriminator}": float(row.score) for row in results.ood.itertuples(index=False)
        },
    }
