"""The reproduction scorecard: every chapter's claims, gathered from ``<results>/<chapter>/metrics.json``.

The card shows one run per chapter, at one profile (the book's: ``$STEERLIB_PROFILE``, else ``cpu``): runs at other
profiles (e.g. smoke runs left by tests) are left out, and of several runs of one chapter the newest is shown;
:func:`sources` says which runs were used, where they were computed, and which were left out. The headline counts
evidence claims by verdict, apart for claims registered before any result and claims revised after results (the
claims ledger, :mod:`steerlib.core.ledger`). :func:`margins` puts every evidence claim on one scale (its signed
distance from the threshold in units of its interval) for the card's picture. Every claim is listed, grouped by
chapter, and links to its chapter's claims section; "with scale" is its trend along the chapter's scale axis where
the run recorded a sweep (:mod:`steerlib.core.scale`: towards holding, away, flat or not judged), and where the run's
cache lacked points of that axis, the trend over the whole axis kept in the repository too
(:func:`steerlib.core.scale.recorded`).
"""

from __future__ import annotations

import datetime
import html
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from steerlib.book import CHAPTERS, part_of
from steerlib.core.chapter import results_root
from steerlib.core.checks import check_columns, check_range, check_type
from steerlib.core.claims import HOLDING, VERDICTS
from steerlib.core.profiles import resolve_profile
from steerlib.core.record import read_metrics
from steerlib.core.scale import recorded

COLUMNS = [
    "chapter",
    "profile",
    "seed",
    "kind",
    "id",
    "claim",
    "dissertation",
    "statistic",
    "value",
    "interval",
    "op",
    "threshold",
    "why",
    "verdict",
    "with scale",
    "ledger",
    "note",
]


def _verdict(c: dict) -> str:
    """The verdict of a claim record (records written before claims had verdicts: from ``holds``)."""
    return c.get("verdict") or ("holds" if c["holds"] else "does not hold")


def _finished(path: Path, record: dict) -> str:
    """When the run finished (records written before they said so: the file's modification time), ISO 8601."""
    when = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc).isoformat()
    return record.get("finished") or when


def _with_scale(own: str, kept: str) -> str:
    """A claim's "with scale" cell: its trend over the run's own points, then over the whole axis kept in the
    repository where the run lacked some of them, e.g. 'not judged; flat over the kept axis'."""
    return "; ".join(part for part in (own, kept and f"{kept} over the kept axis") if part)


def collect(root: str | Path | None = None, profile: str | None = None) -> pd.DataFrame:
    """One row per claim of the newest run of every chapter at ``profile`` found under ``root``.

    ``root`` defaults to :func:`~steerlib.core.chapter.results_root` and must exist; ``profile`` to the book's
    (:func:`~steerlib.core.profiles.resolve_profile`:
    ``$STEERLIB_PROFILE``, else cpu). The runs shown and those left out (another profile, or an older run of the
    same chapter) are kept in ``card.attrs`` for :func:`sources`."""
    check_type("results_dir", root, (str, os.PathLike, type(None)), "a folder path or None")
    if root is not None and not str(root):
        raise ValueError("results_dir='' is not a folder; name the folder that holds <chapter>/metrics.json, or None")
    root = Path(root) if root is not None else results_root()
    if not root.is_dir():
        raise FileNotFoundError(
            f"results_dir={str(root)!r} does not exist; run the chapters first (make book) "
            "or name the folder that holds <chapter>/metrics.json"
        )
    profile = resolve_profile(profile)
    newest: dict[str, tuple[str, Path, dict]] = {}
    left_out = []
    for path in sorted(root.glob("*/metrics.json")):
        record = read_metrics(path)
        folder, run_profile = path.parent.name, record["config"].get("profile", "?")
        if run_profile != profile:
            left_out.append(f"{folder} ({record['chapter']}, {run_profile} profile)")
            continue
        run, older = (_finished(path, record), path, record), newest.get(record["chapter"])
        if older is not None:
            if older[0] > run[0]:
                run, older = older, run
            left_out.append(f"{older[1].parent.name} ({record['chapter']}, older than {run[1].parent.name})")
        newest[record["chapter"]] = run
    rows = []
    order = {name: i for i, name in enumerate(CHAPTERS)}  # the book's order; other chapters after, by folder
    for _, _, record in sorted(newest.values(), key=lambda r: (order.get(r[2]["chapter"], len(order)), str(r[1]))):
        sweep = record.get("sweep", {})  # the chapter's scale sweep (steerlib.core.scale)
        seed = record["config"].get("seed")
        kept = recorded(record["chapter"], profile, seed) if sweep.get("missing") and seed is not None else None
        trends, kept_trends = sweep.get("trends", {}), (kept or {}).get("trends", {})
        for c in record["claims"]:
            interval = c.get("interval")
            rows.append(
                {
                    "chapter": record["chapter"],
                    "profile": record["config"].get("profile", "?"),
                    "seed": record["config"].get("seed"),
                    "kind": c.get("kind", "evidence"),
                    "id": c["id"],
                    "claim": c["statement"],
                    "dissertation": c.get("dissertation", ""),
                    "statistic": c["statistic"],
                    "value": c["value"],
                    "interval": tuple(interval) if interval else None,
                    "op": c["op"],
                    "threshold": c["threshold"],
                    "why": c.get("why", ""),
                    "verdict": _verdict(c),
                    "with scale": _with_scale(
                        trends.get(c["id"], {}).get("verdict", ""), kept_trends.get(c["id"], {}).get("verdict", "")
                    ),
                    "ledger": c.get("ledger") or "not in the ledger",
                    "note": c.get("note", ""),
                }
            )
    card = pd.DataFrame(rows, columns=COLUMNS)
    card.attrs.update(
        root=str(root),
        profile=profile,
        left_out=left_out,
        runs={
            chapter: f"{path.parent.name} (finished {when[:19].replace('T', ' ')} UTC)"
            for chapter, (when, path, _) in newest.items()
        },
        machines={chapter: _machine(record) for chapter, (_, _, record) in newest.items()},
    )
    return card


def _machine(record: dict) -> str:
    """Where a run computed its numbers, in words (records written before they said so: "not recorded")."""
    m = record.get("machine")
    if not m:
        return "not recorded"
    kernels = m["kernels"] + (f" (ATEN_CPU_CAPABILITY={m['aten_cpu_capability']})" if m["aten_cpu_capability"] else "")
    cbwr = f", MKL_CBWR={m['mkl_cbwr']}" if m["mkl_cbwr"] else ""
    torch_build = f"torch {m['torch']} with {m['blas']}"
    return f"{m['cpu']} ({m['arch']}), {torch_build}, {kernels} kernels{cbwr}, {m['threads']} threads"


def sources(card: pd.DataFrame) -> str:
    """One paragraph: the profile and folder the card was gathered from, the run shown per chapter and where it was
    computed, and the runs left out."""
    attrs = check_card(card).attrs
    if "runs" not in attrs:
        return ""
    machines = attrs.get("machines", {})
    runs = (
        "; ".join(
            f"{chapter}: {run}, on {machines.get(chapter, 'not recorded')}" for chapter, run in attrs["runs"].items()
        )
        or "none"
    )
    text = f"Runs at the {attrs['profile']} profile from `{attrs['root']}`, one per chapter: {runs}."
    if len(set(machines.values())) > 1:
        text += " **The chapters ran on different machines or settings**, which can move fragile verdicts."
    if attrs["left_out"]:
        text += f" Left out: {'; '.join(attrs['left_out'])}."
    return text


def check_card(card: pd.DataFrame) -> pd.DataFrame:
    """``card`` if it is a table from :func:`collect` (a DataFrame with its columns); else raise."""
    check_type("card", card, pd.DataFrame, "the table from scorecard.collect")
    check_columns("card", card.columns, COLUMNS, "give the table from scorecard.collect")
    return card


def summary(card: pd.DataFrame) -> pd.DataFrame:
    """Per chapter: evidence claims by verdict, how many were revised after results, and prerequisites that hold out
    of all prerequisites."""
    check_card(card)
    evidence = card[card["kind"] == "evidence"]
    table = pd.crosstab(evidence["chapter"], evidence["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    table["revised after results"] = evidence.groupby("chapter")["ledger"].agg(
        lambda v: int(v.str.startswith("revised after").sum())
    )
    prereq = card[card["kind"] == "prerequisite"].groupby("chapter")["verdict"]
    table["prerequisites"] = prereq.agg(lambda v: f"{v.isin(HOLDING).sum()} of {len(v)}")
    order = [c for c in CHAPTERS if c in table.index] + [c for c in table.index if c not in CHAPTERS]
    return table.reindex(order).fillna("0 of 0")


def _count(verdicts: pd.Series) -> str:
    n = {v: int((verdicts == v).sum()) for v in VERDICTS}
    return (
        f"{n['holds']} of {len(verdicts)} hold and {n['holds (fragile)']} more hold but are fragile; "
        f"{n['does not hold']} do not hold and {n['does not hold (fragile)']} more miss but are fragile; "
        f"{n['not judged']} are not judged"
    )


def headline(card: pd.DataFrame) -> str:
    """Evidence claims by verdict, counted apart for claims on the record before any result (registered before
    results, never revised after) and claims registered or revised after results (and any not in a ledger);
    prerequisites that hold."""
    check_card(card)
    evidence = card[card["kind"] == "evidence"]
    before = evidence["ledger"] == "registered before results"
    late = evidence["ledger"].str.contains("after results")
    p = card.loc[card["kind"] == "prerequisite", "verdict"]
    text = (
        f"Evidence claims registered before any result: {_count(evidence.loc[before, 'verdict'])}. "
        f"Claims registered or revised after results: {_count(evidence.loc[late, 'verdict'])}. "
    )
    if (~before & ~late).any():
        text += f"Claims in no ledger: {_count(evidence.loc[~before & ~late, 'verdict'])}. "
    return text + f"Prerequisites: {p.isin(HOLDING).sum()} of {len(p)} hold."


def margins(card: pd.DataFrame, clip: float = 4.0) -> pd.DataFrame:
    """Every evidence claim on one scale: its signed distance from the threshold in units of its interval's
    half-width, positive on the holding side, clipped to ±``clip``: beyond ±1 the interval clears the threshold
    (holds / does not hold), within it the verdict is fragile. A claim without an interval, or with a zero-width
    one, sits at ±``clip``; claims not judged are left out."""
    check_card(card)
    check_range("clip", clip, 1)
    rows = []
    for r in card[(card["kind"] == "evidence") & (card["verdict"] != "not judged")].itertuples():
        sign = 1.0 if r.op in (">", ">=") else -1.0
        gap = sign * (float(r.value) - float(r.threshold))
        half = (r.interval[1] - r.interval[0]) / 2 if r.interval else 0.0
        margin = gap / half if half > 0 else math.copysign(math.inf, gap if gap else 1.0)
        rows.append(
            {
                "chapter": r.chapter,
                "id": r.id,
                "margin": float(np.clip(margin, -clip, clip)),
                "verdict": r.verdict,
                "ledger": r.ledger,
            }
        )
    return pd.DataFrame(rows, columns=["chapter", "id", "margin", "verdict", "ledger"])


FIRM = {"holds": "holds", "does not hold": "does not hold"}  # verdicts with the whole interval on one side


def compare(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Claims whose verdict differs between two cards (e.g. the book at two seeds), one row each: chapter, id, kind,
    both values and verdicts, and whether it is a *firm flip* (holds firmly in one card and fails firmly in the
    other, which the claims' intervals said a rerun would not do)."""
    check_card(a)
    check_card(b)
    cols = ["chapter", "id", "kind", "value", "verdict"]
    both = a[cols].merge(b[cols], on=["chapter", "id", "kind"], suffixes=("_a", "_b"))
    differ = both[both["verdict_a"] != both["verdict_b"]].copy()
    differ["firm flip"] = differ["verdict_a"].map(FIRM).notna() & differ["verdict_b"].map(FIRM).notna()
    return differ.reset_index(drop=True)


def chapter_link(chapter: str) -> str:
    """The chapter page's claims section, relative to the scorecard page (``book/scorecard``); "" for a name that
    is not a chapter."""
    check_type("chapter", chapter, str, "a chapter's name")
    if chapter not in CHAPTERS:
        return ""
    return f"{part_of(chapter)}/{chapter}.html#claims"


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def to_html(card: pd.DataFrame) -> str:
    """Every claim in one HTML table, grouped by chapter (a heading row each, linked to the chapter's claims)."""
    check_card(card)
    head = ["id", "kind", "claim", "dissertation", "ours", "threshold (why)", "verdict", "with scale", "ledger"]
    out = [
        '<table class="scorecard">',
        "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>",
        "<tbody>",
    ]
    for chapter, rows in card.groupby("chapter", sort=False):
        link = chapter_link(chapter)
        name = f'<a href="{link}">{html.escape(chapter)}</a>' if link else html.escape(chapter)
        profile = ", ".join(sorted(set(rows["profile"].astype(str))))
        out.append(f'<tr class="chapter"><th colspan="{len(head)}">{name} ({profile} profile)</th></tr>')
        for _, r in rows.iterrows():
            ours = f"{r.statistic} = {_fmt(r.value)}"
            if r.interval:
                ours += f" [{_fmt(r.interval[0])}, {_fmt(r.interval[1])}]"
            verdict = r.verdict + (f" ({r.note})" if r.note else "")
            threshold = f"{r.op} {r.threshold:g}" + (f" ({r.why})" if r.why else "")
            cells = [r.id, r.kind, r.claim, r.dissertation, ours, threshold, verdict, r["with scale"], r.ledger]
            out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)
