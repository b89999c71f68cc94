"""The cautious-decisions chapter's statistics: seed-mean curves, rank trends, the summary and claims A6-A7."""
from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from steerlib.chapters.extrapolation.cautious_decisions.experiment import Results
from steerlib.core.claims import Claim
from steerlib.measures.statistics import (
    bootstrap_note,
    percentile_interval,
    seed_bootstrap,
    seed_matrix,
    spearman,
    spearman_rows,
)
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


N_BOOT = 1000  # bootstrap resamples of the seeds behind every interval


def _rise(curve: pd.Series) -> pd.Series:
    """Per (dataset, shift): the curve's value at the strongest level minus its clean value."""
    levels = curve.index.get_level_values("level")
    top = curve[levels == levels.max()].droplevel("level")
    return top - curve[levels == 0].droplevel("level")


def _worst_fall(curve: pd.Series, spread: pd.Series) -> float:
    """The largest fall of the curve from one level to the next beyond the seed spread there (the larger of the two
    levels' standard deviations over seeds), over every (dataset, shift): <= 0 when it never falls by more."""
    falls = []
    for key, g in curve.groupby(["dataset", "shift"]):
        v, sd = g.to_numpy(), spread.loc[key].reindex(g.index.get_level_values("level")).to_numpy()
        falls.append(np.max(v[:-1] - v[1:] - np.maximum(sd[:-1], sd[1:])))
    return float(max(falls))


def _spread(results: Results, rewards: str) -> dict[str, pd.Series]:
    """Standard deviation over seeds of the reward model's abstain ratio and of its reward gain over CE, per
    (dataset, shift, level)."""
    t = with_clean(results.table[results.table["rewards"] == rewards])
    wide = t.pivot_table(index=["dataset", "shift", "level", "seed"], columns="method", values=["abstain", "reward"])
    per_seed = pd.DataFrame({"abstain": wide[("abstain", "reward")],
                             "gain": wide[("reward", "reward")] - wide[("reward", "ce")]})
    return {k: per_seed[k].groupby(["dataset", "shift", "level"]).std(ddof=0) for k in per_seed}


def _statistics(results: Results) -> dict[str, float]:
    """The value of every claim, by id (see :func:`claims`)."""
    labels = list(results.tables)
    main = labels[0]
    ab, rw = _pivot(results, main, "abstain"), _pivot(results, main, "reward")
    rho = _trends(ab, rw).mean()
    levels = rw.index.get_level_values("level")
    clean = rw[levels == 0].groupby("dataset").first()[["reward", "ce", "oracle"]]
    shifted, worst = rw[levels > 0], rw[levels == levels.max()]
    abstain, gain = ab["reward"], rw["reward"] - rw["ce"]
    spread = _spread(results, main)
    out = {"A6a": float(_rise(abstain).mean()), "A6b": float(rho["abstain, oracle"]),
           "A6d": float(_worst_fall(abstain, spread["abstain"])),
           "A7a": float((clean.max(axis=1) - clean.min(axis=1)).max()),
           "A7b": float(_rise(gain).mean()), "A7f": float(_worst_fall(gain, spread["gain"])),
           "A7c": float((worst["reward"] - worst["ce"]).mean()),
           "A7d": float((shifted["oracle"] - shifted["reward"]).min()),
           "A7e": float((shifted["reward"] - shifted["ce"]).sum() / (shifted["oracle"] - shifted["ce"]).sum())}
    if len(labels) > 1:
        mild = _pivot(results, labels[1], "abstain")
        top = mild.index.get_level_values("level").max()
        out["A6c"] = float((ab.xs(top, level="level")["reward"] - mild.xs(top, level="level")["reward"]).mean())
    return out


def seed_statistic(results: Results) -> tuple[Callable[[np.ndarray], dict[str, float]], int]:
    """The claims' statistics as a function of a draw of seeds, and the number of seeds.

    ``statistic(draw)`` takes the seeds at positions ``draw`` (sorted seeds; one drawn twice counts twice), averages
    every (dataset, table, method, shift, level) over them and applies :func:`_statistics`' formulas, in numpy so
    that a bootstrap stays fast; with every seed drawn once it gives :func:`_statistics`' values."""
    full = with_clean(results.table)
    keys = ["dataset", "rewards", "method", "shift", "level"]
    per_seed = {q: seed_matrix(full, keys, q) for q in ("abstain", "reward")}
    index = per_seed["reward"].index
    shape = tuple(index.levels[i].size for i in range(len(keys)))
    if int(np.prod(shape)) != len(index):
        raise ValueError("every method needs every (dataset, table, shift, level) set")
    arrays = {q: m.to_numpy() for q, m in per_seed.items()}
    tables, methods = list(index.levels[1]), list(index.levels[2])
    level = np.asarray(index.levels[4])
    labels = list(results.tables)
    main = tables.index(labels[0])
    m = {name: methods.index(name) for name in ("reward", "ce", "oracle")}

    def worst_fall(curves: np.ndarray) -> float:
        """:func:`_worst_fall` of seed curves (dataset, shift, level, drawn seed)."""
        mean, sd = curves.mean(-1), curves.std(-1)
        return float(np.max(mean[..., :-1] - mean[..., 1:] - np.maximum(sd[..., :-1], sd[..., 1:])))

    def statistic(draw: np.ndarray) -> dict[str, float]:
        ab_seeds, rw_seeds = (a[:, draw].reshape(*shape, len(draw))[:, main]
                              for a in (arrays["abstain"], arrays["reward"]))  # (dataset, method, shift, level, seed)
        ab, rw = ab_seeds.mean(-1), rw_seeds.mean(-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a constant curve has no rho, and NaN says so
            rho = {"A6b": float(np.nanmean(spearman_rows(level, ab[:, m["oracle"]])))}
        clean = rw[:, [m["reward"], m["ce"], m["oracle"]], 0, 0]  # (dataset, method); every shift holds the clean set
        gain, oracle_gain = rw[:, m["reward"]] - rw[:, m["ce"]], rw[:, m["oracle"]] - rw[:, m["ce"]]
        abstain = ab[:, m["reward"]]
        out = {**rho, "A7a": float((clean.max(1) - clean.min(1)).max()),
               "A6a": float((abstain[..., -1] - abstain[..., 0]).mean()),
               "A6d": worst_fall(ab_seeds[:, m["reward"]]),
               "A7b": float((gain[..., -1] - gain[..., 0]).mean()),
               "A7f": worst_fall(rw_seeds[:, m["reward"]] - rw_seeds[:, m["ce"]]),
               "A7c": float(gain[..., level == level.max()].mean()),
               "A7d": float((rw[:, m["oracle"]] - rw[:, m["reward"]])[..., level > 0].min()),
               "A7e": float(gain[..., level > 0].sum() / oracle_gain[..., level > 0].sum())}
        if len(labels) > 1:
            mild = arrays["abstain"][:, draw].mean(1).reshape(shape)[:, tables.index(labels[1]), m["reward"]]
            out["A6c"] = float((ab[:, m["reward"], :, -1] - mild[..., -1]).mean())
        return out

    return statistic, per_seed["reward"].shape[1]


def claim_replicates(results: Results, n_boot: int = N_BOOT) -> dict[str, np.ndarray]:
    """Bootstrap replicates over seeds of every claim's statistic, by claim id: :func:`seed_statistic` on each
    resample of the seeds, drawn jointly for every method and table (a seed is one replicate of the experiment)."""
    return seed_bootstrap(*seed_statistic(results), n_boot)


def claims(results: Results) -> list[Claim]:
    """Claims A6-A7 of the research note on the first (the dissertation's) table; A6c compares it with the second.

    Thresholds: "rises" is a shape, in two claims: the seed-mean curve (averaged over (dataset, shift) curves) ends
    higher than it starts by a margin (A6a, A7b), and never steps down by more than the seeds' standard deviation
    (A6d, A7f), so a plateau passes where a rank correlation over six points would fail it; the oracle's rise (A6b)
    keeps a rank rule, rho > 0.7. Reward gaps are measured against 5% of the
    table's range, correct - wrong (0.25 for +1/-4/0): closer is "similar", further is "ahead". "Large compared with
    the gap to the oracle" means reward prediction recovers over half of the oracle's gain over CE on shifted sets.
    Steering (A6c) asks the default table's reward model to abstain on at least half more of the most-shifted
    inputs than the second table's.

    A6b (the oracle, which sees each set's labels, abstains more as shift grows) and A7d (the oracle bounds reward
    prediction) check the set-up: that the shift ladder makes the task harder, and that the oracle is the upper bound
    that A7e divides by. Every value comes with a bootstrap interval over the seeds.
    """
    n_boot = N_BOOT
    labels = list(results.tables)
    main = labels[0]
    value = _statistics(results)
    reps = claim_replicates(results, n_boot)
    how = bootstrap_note(results.table["seed"].nunique(), n_boot)

    def measured(cid: str) -> dict:
        return {"value": value[cid], "interval": percentile_interval(reps[cid]), "uncertainty": how}

    tol = 0.05 * (results.tables[main].correct - results.tables[main].wrong)
    rises = "rho > 0.7: a rise at nearly every one of the six levels (1: every step up)"
    out = [
        Claim("A6a", "Reward prediction abstains more as shift grows", "mean over curves of the abstain ratio at "
              "level 5 minus clean", op=">", threshold=0.2, dissertation="abstain ratio rises with shift (Fig 2.6)",
              **measured("A6a"),
              why="> 0.2: a fifth more of the inputs abstained on at the strongest level than clean, as Fig 2.6 "
                  "climbs; 0 would be an abstention that ignores shift"),
        Claim("A6d", "... and never abstains less at a stronger level, beyond the seed spread",
              "max over curves and steps of (fall of the abstain ratio from one level to the next - its seed "
              "standard deviation)", op="<=", threshold=0.0, dissertation="Fig 2.6's curves climb",
              **measured("A6d"),
              why="<= 0: no step down larger than the seeds disagree on (a plateau passes, a real dip fails); "
                  "a threshold above 0 would excuse dips the seeds agree on"),
        Claim("A6b", "The oracle abstains more as shift grows", "mean Spearman rho(level, abstain ratio)",
              op=">", threshold=0.7, dissertation="oracle abstain ratio rises with shift (Fig 2.6)",
              kind="prerequisite", **measured("A6b"),
              why=f"{rises}: a policy calibrated with each set's labels abstains more where the ladder makes the task "
                  "harder; 0 would be a ladder that does not"),
        Claim("A7a", "Reward prediction, standard classification and the oracle earn similar reward in distribution",
              "max over datasets of the clean-set reward spread", op="<", threshold=tol,
              dissertation="relatively similar on the training distribution (Fig 2.7)", **measured("A7a"),
              why=f"< {tol:g} = 5% of the reward range (correct - wrong): the rival is a gap the size A7c calls "
                  "'ahead'"),
        Claim("A7b", "Reward prediction beats standard classification by a margin that grows with shift",
              "mean over curves of (reward - CE reward) at level 5 minus clean", op=">", threshold=tol,
              dissertation="reward prediction increasingly outperforms classification (Fig 2.7)", **measured("A7b"),
              why=f"> {tol:g} = 5% of the reward range: the margin grows by more than A7a's tolerance for "
                  "'similar', as Fig 2.7 widens; 0 would be a margin that does not grow"),
        Claim("A7f", "... and the margin never shrinks at a stronger level, beyond the seed spread",
              "max over curves and steps of (fall of reward - CE reward from one level to the next - its seed "
              "standard deviation)", op="<=", threshold=0.0, dissertation="Fig 2.7's gap widens",
              **measured("A7f"),
              why="<= 0: no step down larger than the seeds disagree on (a plateau passes, a real dip fails)"),
        Claim("A7c", "Reward prediction beats standard classification at the most severe shift",
              "mean over curves of reward - CE reward at level 5", op=">", threshold=tol,
              dissertation="large gap under the strongest shifts (Fig 2.7)", **measured("A7c"),
              why=f"> {tol:g} = 5% of the reward range: ahead by more than A7a's tolerance for 'similar'; 0 would "
                  "be a tie"),
        Claim("A7d", "The oracle bounds reward prediction from above",
              "min over shifted sets of oracle reward - reward-prediction reward", op=">", threshold=-tol,
              dissertation="the oracle is an upper bound", kind="prerequisite", **measured("A7d"),
              why=f"> -{tol:g}: the oracle, fitted with each set's labels, is Fig 2.7's upper bound, up to A7a's "
                  "tolerance for a tie"),
        Claim("A7e", "Reward prediction recovers most of the oracle's gain over standard classification",
              "sum over shifted sets of (reward - CE) / sum of (oracle - CE)", op=">", threshold=0.5,
              dissertation="gap reward-CE large next to gap oracle-reward (Fig 2.7)", **measured("A7e"),
              why="> 0.5: more of the oracle's gain over CE recovered than left to it ('large compared with the gap "
                  "to the oracle'); 0 = no better than CE, 1 = as good as the oracle"),
    ]
    if len(labels) > 1:
        out.insert(2, Claim("A6c", f"Steering: with rewards {labels[1]}, whose OCS answers, reward prediction keeps "
                                   "answering OOD", f"mean abstain ratio at level 5, {main} minus {labels[1]}",
                            op=">", threshold=0.5, dissertation="the OCS sets the OOD policy (sections 2.5, 3.4)",
                            **measured("A6c"),
                            why="> 0.5: the table flips the OOD policy on most of the most-shifted inputs; 0 would "
                                "be a table that does not steer"))
    return out


def extra(results: Results) -> dict:
    """metrics.json's extra numbers: the first dataset's decision problems, :func:`summary` and :func:`rank_table`."""
    first = results.table["dataset"].iloc[0]
    return {
        "decision_problems": results.decision_problems.loc[first].reset_index().to_dict("records"),
        "summary": summary(results).round(4).reset_index().to_dict("records"),
        "rho_per_curve": rank_table(results).round(3).reset_index().to_dict("records"),
    }
