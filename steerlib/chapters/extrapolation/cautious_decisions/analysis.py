"""The cautious-decisions chapter's statistics: replicate-mean curves, rank trends, the summary and claims A6-A7."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from steerlib.chapters.extrapolation.cautious_decisions.experiment import Results
from steerlib.core.claims import Claim, Measured, Spec, make_claims
from steerlib.measures.decisions import RewardTable
from steerlib.measures.statistics import jackknife, replicate_matrix, spearman, spearman_rows
from steerlib.vision.shifts import with_clean


def curves(table: pd.DataFrame) -> pd.DataFrame:
    """Replicate means and standard deviations of abstain ratio and reward per (dataset, rewards, method, shift,
    level)."""
    keys = ["dataset", "rewards", "method", "shift", "level"]
    return with_clean(table).groupby(keys)[["abstain", "reward"]].agg(["mean", "std"]).reset_index()


def summary(results: Results) -> pd.DataFrame:
    """Replicate-mean abstain ratio and reward per (dataset, rewards, method) on the clean set and at the most severe
    level (all shifts pooled)."""
    t = results.table
    top = int(t["level"].max())
    keys = ["dataset", "rewards", "method"]
    parts = {"clean": t[t["level"] == 0], f"level {top}": t[t["level"] == top]}
    means = {k: v.groupby(keys, sort=False)[["abstain", "reward"]].mean() for k, v in parts.items()}
    return pd.concat([m.add_prefix(f"{k} ") for k, m in means.items()], axis=1)


def _pivot(results: Results, rewards: str, metric: str) -> pd.DataFrame:
    """Replicate-mean ``metric`` with one column per method, indexed by (dataset, shift, level)."""
    t = with_clean(results.table[results.table["rewards"] == rewards])
    return t.groupby(["dataset", "shift", "level", "method"])[metric].mean().unstack("method")


def _trends(abstain: pd.DataFrame, reward: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rho between severity level and each curve of the :func:`_pivot` tables, per (dataset, shift)."""
    columns = {
        "abstain, reward prediction": abstain["reward"],
        "abstain, oracle": abstain["oracle"],
        "reward minus CE reward": reward["reward"] - reward["ce"],
    }

    def rho(values: pd.Series) -> float:
        return spearman(values.index.get_level_values("level"), values)

    return pd.DataFrame({k: v.groupby(["dataset", "shift"]).apply(rho) for k, v in columns.items()})


def rank_table(results: Results, rewards: str | None = None) -> pd.DataFrame:
    """Spearman's rho between severity level (0-5) and each replicate-mean curve, one row per (dataset, shift).

    Columns: the abstain ratio of reward prediction and of the oracle, and reward prediction's reward minus CE's.
    ``rewards`` is a table label (default: the first table).
    """
    rewards = rewards or next(iter(results.tables))
    return _trends(_pivot(results, rewards, "abstain"), _pivot(results, rewards, "reward"))


def replicate_statistic(results: Results) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """The claims' statistics as a function of a draw of replicates, and the number of replicates.

    ``statistic(draw)`` takes the replicates at positions ``draw``, averages every (dataset, table, method, shift,
    level) over them and returns, by claim id (see :data:`SPECS`), on the first (the dissertation's) table:

    - A6a: the mean over (dataset, shift) curves of the reward model's abstain ratio at the strongest level minus
      clean; A7b: the same of its reward minus CE's;
    - A6d, A7f: the largest fall of those curves from one level to the next beyond the replicates' spread there (the
      larger of the two levels' standard deviations over the drawn replicates), over every curve and step;
    - A6b: the mean over curves of Spearman's rho between level and the oracle's abstain ratio;
    - A7a: the largest (over datasets) clean-set spread of the rewards of reward prediction, CE and the oracle;
    - A7c: the mean over curves of reward minus CE reward at the strongest level;
    - A7d: the smallest (over shifted sets) oracle reward minus reward prediction's;
    - A7e: the sum over shifted sets of (reward - CE) over the sum of (oracle - CE);
    - A6c (with a second table): the mean over curves of the reward model's abstain ratio at the strongest level,
      first table minus second.
    """
    full = with_clean(results.table)
    keys = ["dataset", "rewards", "method", "shift", "level"]
    per_replicate = {q: replicate_matrix(full, keys, q) for q in ("abstain", "reward")}
    index = per_replicate["reward"].index
    shape = tuple(index.levels[i].size for i in range(len(keys)))
    if int(np.prod(shape)) != len(index):
        raise ValueError("every method needs every (dataset, table, shift, level) set")
    arrays = {q: m.to_numpy() for q, m in per_replicate.items()}
    tables, methods = list(index.levels[1]), list(index.levels[2])
    level = np.asarray(index.levels[4])
    labels = list(results.tables)
    main = tables.index(labels[0])
    m = {name: methods.index(name) for name in ("reward", "ce", "oracle")}

    def worst_fall(curves: np.ndarray) -> float:
        """The largest step down of replicate curves (dataset, shift, level, drawn replicate) beyond their spread."""
        mean, sd = curves.mean(-1), curves.std(-1)
        return float(np.max(mean[..., :-1] - mean[..., 1:] - np.maximum(sd[..., :-1], sd[..., 1:])))

    def statistic(draw: np.ndarray) -> dict[str, float]:
        ab_draw, rw_draw = (
            a[:, draw].reshape(*shape, len(draw))[:, main] for a in (arrays["abstain"], arrays["reward"])
        )  # (dataset, method, shift, level, rep.)
        ab, rw = ab_draw.mean(-1), rw_draw.mean(-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a constant curve has no rho, and NaN says so
            rho = {"A6b": float(np.nanmean(spearman_rows(level, ab[:, m["oracle"]])))}
        clean = rw[:, [m["reward"], m["ce"], m["oracle"]], 0, 0]  # (dataset, method); every shift holds the clean set
        gain, oracle_gain = rw[:, m["reward"]] - rw[:, m["ce"]], rw[:, m["oracle"]] - rw[:, m["ce"]]
        abstain = ab[:, m["reward"]]
        out = {
            **rho,
            "A7a": float((clean.max(1) - clean.min(1)).max()),
            "A6a": float((abstain[..., -1] - abstain[..., 0]).mean()),
            "A6d": worst_fall(ab_draw[:, m["reward"]]),
            "A7b": float((gain[..., -1] - gain[..., 0]).mean()),
            "A7f": worst_fall(rw_draw[:, m["reward"]] - rw_draw[:, m["ce"]]),
            "A7c": float(gain[..., level == level.max()].mean()),
            "A7d": float((rw[:, m["oracle"]] - rw[:, m["reward"]])[..., level > 0].min()),
            "A7e": float(gain[..., level > 0].sum() / oracle_gain[..., level > 0].sum()),
        }
        if len(labels) > 1:
            mild = arrays["abstain"][:, draw].mean(1).reshape(shape)[:, tables.index(labels[1]), m["reward"]]
            out["A6c"] = float((ab[:, m["reward"], :, -1] - mild[..., -1]).mean())
        return out

    return statistic, per_replicate["reward"].shape[1]


def tolerance(table: RewardTable) -> float:
    """5% of ``table``'s reward range (correct - wrong): the gap the reward claims call "similar" or "ahead"."""
    return 0.05 * (table.correct - table.wrong)


TOLERANCE_RULE = "5% of the first table's reward range (correct - wrong)"
TOLERANT = ("A7a", "A7b", "A7c")  # claims against +tolerance; A7d is against -tolerance


def statistics(results: Results) -> dict[str, Measured]:
    """Every claim's value and interval by id: :func:`replicate_statistic` over the replicates
    (:func:`~steerlib.measures.statistics.jackknife`), with the reward claims' threshold, :func:`tolerance` of the
    first table, as the measured side's."""
    out = jackknife(*replicate_statistic(results))
    out["A6b"] = out["A6b"].clipped(-1.0, 1.0)  # a rank correlation
    tol = tolerance(next(iter(results.tables.values())))
    for cid, threshold in {**dict.fromkeys(TOLERANT, tol), "A7d": -tol}.items():
        out[cid] = dataclasses.replace(out[cid], threshold=threshold)
    return out


RISES = "rho > 0.7: a rise at nearly every one of the six levels (1: every step up)"

SPECS = (
    Spec(
        id="A6a",
        statement="Reward prediction abstains more as shift grows",
        statistic="mean over curves of the abstain ratio at level 5 minus clean",
        op=">",
        threshold=0.2,
        why="> 0.2: a fifth more of the inputs abstained on at the strongest level than clean, as Fig 2.6 climbs; 0 "
        "would be an abstention that ignores shift",
        dissertation="abstain ratio rises with shift (Fig 2.6)",
    ),
    Spec(
        id="A6d",
        statement="... and never abstains less at a stronger level, beyond the replicate spread",
        statistic="max over curves and steps of (fall of the abstain ratio from one level to the next - its "
        "replicate standard deviation)",
        op="<=",
        threshold=0.0,
        why="<= 0: no step down larger than the replicates disagree on (a plateau passes, a real dip fails); a "
        "threshold above 0 would excuse dips the replicates agree on",
        dissertation="Fig 2.6's curves climb",
    ),
    Spec(
        id="A6c",
        statement="Steering: with rewards {mild}, whose OCS answers, reward prediction keeps answering OOD",
        statistic="mean abstain ratio at level 5, {main} minus {mild}",
        op=">",
        threshold=0.5,
        why="> 0.5: the table flips the OOD policy on most of the most-shifted inputs; 0 would be a table that does "
        "not steer",
        dissertation="the OCS sets the OOD policy (sections 2.5, 3.4)",
    ),
    Spec(
        id="A6b",
        kind="prerequisite",
        statement="The oracle abstains more as shift grows",
        statistic="mean Spearman rho(level, abstain ratio)",
        op=">",
        threshold=0.7,
        why=f"{RISES}: a policy calibrated with each set's labels abstains more where the ladder makes the task "
        "harder; 0 would be a ladder that does not",
        dissertation="oracle abstain ratio rises with shift (Fig 2.6)",
    ),
    Spec(
        id="A7a",
        statement="Reward prediction, standard classification and the oracle earn similar reward in distribution",
        statistic="max over datasets of the clean-set reward spread",
        op="<",
        threshold=TOLERANCE_RULE,
        why="< {threshold:g} = 5% of the reward range (correct - wrong): the rival is a gap the size A7c calls 'ahead'",
        dissertation="relatively similar on the training distribution (Fig 2.7)",
    ),
    Spec(
        id="A7b",
        statement="Reward prediction beats standard classification by a margin that grows with shift",
        statistic="mean over curves of (reward - CE reward) at level 5 minus clean",
        op=">",
        threshold=TOLERANCE_RULE,
        why="> {threshold:g} = 5% of the reward range: the margin grows by more than A7a's tolerance for 'similar', "
        "as Fig 2.7 widens; 0 would be a margin that does not grow",
        dissertation="reward prediction increasingly outperforms classification (Fig 2.7)",
    ),
    Spec(
        id="A7f",
        statement="... and the margin never shrinks at a stronger level, beyond the replicate spread",
        statistic="max over curves and steps of (fall of reward - CE reward from one level to the next - its "
        "replicate standard deviation)",
        op="<=",
        threshold=0.0,
        why="<= 0: no step down larger than the replicates disagree on (a plateau passes, a real dip fails)",
        dissertation="Fig 2.7's gap widens",
    ),
    Spec(
        id="A7c",
        statement="Reward prediction beats standard classification at the most severe shift",
        statistic="mean over curves of reward - CE reward at level 5",
        op=">",
        threshold=TOLERANCE_RULE,
        why="> {threshold:g} = 5% of the reward range: ahead by more than A7a's tolerance for 'similar'; 0 would be "
        "a tie",
        dissertation="large gap under the strongest shifts (Fig 2.7)",
    ),
    Spec(
        id="A7d",
        kind="prerequisite",
        statement="The oracle bounds reward prediction from above",
        statistic="min over shifted sets of oracle reward - reward-prediction reward",
        op=">",
        threshold=f"minus {TOLERANCE_RULE}",
        why="> {threshold:g}: the oracle, fitted with each set's labels, is Fig 2.7's upper bound, up to A7a's "
        "tolerance for a tie",
        dissertation="the oracle is an upper bound",
    ),
    Spec(
        id="A7e",
        statement="Reward prediction recovers most of the oracle's gain over standard classification",
        statistic="sum over shifted sets of (reward - CE) / sum of (oracle - CE)",
        op=">",
        threshold=0.5,
        why="> 0.5: more of the oracle's gain over CE recovered than left to it ('large compared with the gap to the "
        "oracle'); 0 = no better than CE, 1 = as good as the oracle",
        dissertation="gap reward-CE large next to gap oracle-reward (Fig 2.7)",
    ),
)


def claims(results: Results) -> list[Claim]:
    """Claims A6-A7 (:data:`SPECS`) of the research note on the first (the dissertation's) table; A6c compares it
    with the second.

    Thresholds: "rises" is a shape, in two claims: the replicate-mean curve (averaged over (dataset, shift) curves)
    ends higher than it starts by a margin (A6a, A7b), and never steps down by more than the replicates' standard
    deviation (A6d, A7f), so a plateau passes where a rank correlation over six points would fail it; the oracle's
    rise (A6b) keeps a rank rule, rho > 0.7. Reward gaps are measured against 5% of the table's range, correct -
    wrong (0.25 for +1/-4/0): closer is "similar", further is "ahead". "Large compared with the gap to the oracle"
    means reward prediction recovers over half of the oracle's gain over CE on shifted sets. Steering (A6c) asks the
    default table's reward model to abstain on at least half more of the most-shifted inputs than the second
    table's.

    A6b (the oracle, which sees each set's labels, abstains more as shift grows) and A7d (the oracle bounds reward
    prediction) check the set-up: that the shift ladder makes the task harder, and that the oracle is the upper bound
    that A7e divides by. Every value comes with a prediction interval over the replicates (:func:`statistics`).
    """
    main, *others = results.tables
    return make_claims(SPECS, statistics(results), context={"main": main, "mild": others[0] if others else ""})


def extra(results: Results) -> dict:
    """metrics.json's extra numbers: the first dataset's decision problems, :func:`summary` and :func:`rank_table`."""
    first = results.table["dataset"].iloc[0]
    return {
        "decision_problems": results.decision_problems.loc[first].reset_index().to_dict("records"),
        "summary": summary(results).round(4).reset_index().to_dict("records"),
        "rho_per_curve": rank_table(results).round(3).reset_index().to_dict("records"),
    }
