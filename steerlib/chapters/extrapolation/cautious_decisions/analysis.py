"""The cautious-decisions chapter's statistics: seed-mean curves, rank trends, the summary and claims A6-A7."""
from __future__ import annotations

import pandas as pd

from steerlib.chapters.extrapolation.cautious_decisions.experiment import Results
from steerlib.core.claims import Claim
from steerlib.measures.statistics import spearman
from steerlib.vision.shifts import with_clean


def curves(table: pd.DataFrame) -> pd.DataFrame:
    """Seed means and standard deviations of abstain ratio and reward per (dataset, rewards, method, shift, level)."""
    keys = ["dataset", "rewards", "method", "shift", "level"]
    return with_clean(table).groupby(keys)[["abstain", "reward"]].agg(["mean", "std"]).reset_index()


def summary(results: Results) -> pd.DataFrame:
    """Seed-mean abstain ratio and reward per (dataset, rewards, method) on the clean set and at the most severe
    level (all shifts pooled)."""
    t = results.table
    top = int(t["level"].max())
    keys = ["dataset", "rewards", "method"]
    parts = {"clean": t[t["level"] == 0], f"level {top}": t[t["level"] == top]}
    means = {k: v.groupby(keys, sort=False)[["abstain", "reward"]].mean() for k, v in parts.items()}
    return pd.concat([m.add_prefix(f"{k} ") for k, m in means.items()], axis=1)


def _pivot(results: Results, rewards: str, metric: str) -> pd.DataFrame:
    """Seed-mean ``metric`` with one column per method, indexed by (dataset, shift, level)."""
    t = with_clean(results.table[results.table["rewards"] == rewards])
    return t.groupby(["dataset", "shift", "level", "method"])[metric].mean().unstack("method")


def _trends(abstain: pd.DataFrame, reward: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rho between severity level and each curve of the :func:`_pivot` tables, per (dataset, shift)."""
    columns = {"abstain, reward prediction": abstain["reward"], "abstain, oracle": abstain["oracle"],
               "reward minus CE reward": reward["reward"] - reward["ce"]}

    def rho(values: pd.Series) -> float:
        return spearman(values.index.get_level_values("level"), values)

    return pd.DataFrame({k: v.groupby(["dataset", "shift"]).apply(rho) for k, v in columns.items()})


def rank_table(results: Results, rewards: str | None = None) -> pd.DataFrame:
    """Spearman's rho between severity level (0-5) and each seed-mean curve, one row per (dataset, shift).

    Columns: the abstain ratio of reward prediction and of the oracle, and reward prediction's reward minus CE's.
    ``rewards`` is a table label (default: the first table).
    """
    rewards = rewards or next(iter(results.tables))
    return _trends(_pivot(results, rewards, "abstain"), _pivot(results, rewards, "reward"))


def claims(results: Results) -> list[Claim]:
    """Claims A6-A7 of the research note on the first (the dissertation's) table; A6c compares it with the second.

    Thresholds: Spearman's rho between severity level (0-5) and a seed-mean curve, averaged over (dataset, shift)
    curves, must exceed 0.7 for "rises" (a monotone curve gives 1). Reward gaps are measured against 5% of the
    table's range, correct - wrong (0.25 for +1/-4/0): closer is "similar", further is "ahead". "Large compared with
    the gap to the oracle" means reward prediction recovers over half of the oracle's gain over CE on shifted sets.
    Steering (A6c) asks the default table's reward model to abstain on at least half more of the most-shifted
    inputs than the second table's.
    """
    labels = list(results.tables)
    main = labels[0]
    ab, rw = _pivot(results, main, "abstain"), _pivot(results, main, "reward")
    rho = _trends(ab, rw).mean()
    tol = 0.05 * (results.tables[main].correct - results.tables[main].wrong)
    levels = rw.index.get_level_values("level")
    clean = rw[levels == 0].groupby("dataset").first()[["reward", "ce", "oracle"]]
    shifted, worst = rw[levels > 0], rw[levels == levels.max()]
    out = [
        Claim("A6a", "Reward prediction abstains more as shift grows", "mean Spearman rho(level, abstain ratio)",
              float(rho["abstain, reward prediction"]), ">", 0.7, "abstain ratio rises with shift (Fig 2.6)"),
        Claim("A6b", "The oracle abstains more as shift grows", "mean Spearman rho(level, abstain ratio)",
              float(rho["abstain, oracle"]), ">", 0.7, "oracle abstain ratio rises with shift (Fig 2.6)"),
        Claim("A7a", "Reward prediction, standard classification and the oracle earn similar reward in distribution",
              "max over datasets of the clean-set reward spread", float((clean.max(axis=1) - clean.min(axis=1)).max()),
              "<", tol, "relatively similar on the training distribution (Fig 2.7)"),
        Claim("A7b", "Reward prediction beats standard classification by a margin that grows with shift",
              "mean Spearman rho(level, reward - CE reward)", float(rho["reward minus CE reward"]), ">", 0.7,
              "reward prediction increasingly outperforms classification (Fig 2.7)"),
        Claim("A7c", "Reward prediction beats standard classification at the most severe shift",
              "mean over curves of reward - CE reward at level 5", float((worst["reward"] - worst["ce"]).mean()),
              ">", tol, "large gap under the strongest shifts (Fig 2.7)"),
        Claim("A7d", "The oracle bounds reward prediction from above",
              "min over shifted sets of oracle reward - reward-prediction reward",
              float((shifted["oracle"] - shifted["reward"]).min()), ">", -tol, "the oracle is an upper bound"),
        Claim("A7e", "Reward prediction recovers most of the oracle's gain over standard classification",
              "sum over shifted sets of (reward - CE) / sum of (oracle - CE)",
              float((shifted["reward"] - shifted["ce"]).sum() / (shifted["oracle"] - shifted["ce"]).sum()),
              ">", 0.5, "gap reward-CE large next to gap oracle-reward (Fig 2.7)"),
    ]
    if len(labels) > 1:
        mild = _pivot(results, labels[1], "abstain")
        top = mild.index.get_level_values("level").max()
        gap = (ab.xs(top, level="level")["reward"] - mild.xs(top, level="level")["reward"]).mean()
        out.insert(2, Claim("A6c", f"Steering: with rewards {labels[1]}, whose OCS answers, reward prediction keeps "
                                   "answering OOD", f"mean abstain ratio at level 5, {main} minus {labels[1]}",
                            float(gap), ">", 0.5, "the OCS sets the OOD policy (sections 2.5, 3.4)"))
    return out


def extra(results: Results) -> dict:
    """metrics.json's extra numbers: the first dataset's decision problems, :func:`summary` and :func:`rank_table`."""
    first = results.table["dataset"].iloc[0]
    return {
        "decision_problems": results.decision_problems.loc[first].reset_index().to_dict("records"),
        "summary": summary(results).round(4).reset_index().to_dict("records"),
        "rho_per_curve": rank_table(results).round(3).reset_index().to_dict("records"),
    }
