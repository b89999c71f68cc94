"""The reproduction scorecard: every chapter's claims, gathered from ``<results>/<chapter>/metrics.json``.

The headline counts evidence claims that hold; fragile holds (the interval reaches across the threshold) are shown
beside it, prerequisites apart. Every claim is listed, grouped by chapter, and links to its chapter's claims section.
"""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from steerlib.chapters import CHAPTERS
from steerlib.core.chapter import results_root
from steerlib.core.claims import VERDICTS
from steerlib.core.record import read_metrics

COLUMNS = ["chapter", "profile", "seed", "kind", "id", "claim", "dissertation", "statistic", "value", "interval",
           "threshold", "why", "verdict", "note"]


def _verdict(c: dict) -> str:
    """The verdict of a claim record (records written before claims had verdicts: from ``holds``)."""
    return c.get("verdict") or ("holds" if c["holds"] else "does not hold")


def collect(root: str | Path | None = None) -> pd.DataFrame:
    """One row per claim of every chapter run found under ``root`` (default: :func:`results_root`)."""
    root = Path(root or results_root())
    if not root.is_dir():
        raise FileNotFoundError(f"results_dir={str(root)!r} does not exist; run the chapters first (make book) "
                                "or name the folder that holds <chapter>/metrics.json")
    rows = []
    for path in sorted(root.glob("*/metrics.json")):
        record = read_metrics(path)
        for c in record["claims"]:
            interval = c.get("interval")
            rows.append({
                "chapter": record["chapter"], "profile": record["config"].get("profile", "?"),
                "seed": record["config"].get("seed"), "kind": c.get("kind", "evidence"), "id": c["id"],
                "claim": c["statement"], "dissertation": c.get("dissertation", ""), "statistic": c["statistic"],
                "value": c["value"], "interval": tuple(interval) if interval else None,
                "threshold": f"{c['op']} {c['threshold']:g}", "why": c.get("why", ""), "verdict": _verdict(c),
                "note": c.get("note", ""),
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(card: pd.DataFrame) -> pd.DataFrame:
    """Per chapter: evidence claims by verdict, and prerequisites that hold out of all prerequisites."""
    evidence = card[card["kind"] == "evidence"]
    table = pd.crosstab(evidence["chapter"], evidence["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    prereq = card[card["kind"] == "prerequisite"].groupby("chapter")["verdict"]
    table["prerequisites"] = prereq.agg(lambda v: f"{(v == 'holds').sum() + (v == 'holds (fragile)').sum()} of "
                                              f"{len(v)}")
    order = [c for c in CHAPTERS if c in table.index] + [c for c in table.index if c not in CHAPTERS]
    return table.reindex(order).fillna("0 of 0")


def headline(card: pd.DataFrame) -> str:
    """One sentence: evidence claims that hold, fragile holds beside them, and what was not judged."""
    v = card.loc[card["kind"] == "evidence", "verdict"]
    p = card.loc[card["kind"] == "prerequisite", "verdict"]
    return (f"{(v == 'holds').sum()} of {len(v)} evidence claims hold, and {(v == 'holds (fragile)').sum()} more hold "
            f"but are fragile; {(v == 'does not hold').sum()} do not hold and {(v == 'not judged').sum()} are not "
            f"judged. Prerequisites: {p.isin(['holds', 'holds (fragile)']).sum()} of {len(p)} hold.")


def chapter_link(chapter: str) -> str:
    """The chapter page's claims section, relative to the scorecard page (``book/scorecard``)."""
    if chapter not in CHAPTERS:
        return ""
    part = CHAPTERS[chapter].split(".")[-2]
    return f"{part}/{chapter}.html#claims"


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def to_html(card: pd.DataFrame) -> str:
    """Every claim in one HTML table, grouped by chapter (a heading row each, linked to the chapter's claims)."""
    head = ["id", "kind", "claim", "dissertation", "ours", "threshold (why)", "verdict"]
    out = ['<table class="scorecard">', "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>",
           "<tbody>"]
    for chapter, rows in card.groupby("chapter", sort=False):
        link = chapter_link(chapter)
        name = f'<a href="{link}">{html.escape(chapter)}</a>' if link else html.escape(chapter)
        profile = ", ".join(sorted(set(rows["profile"].astype(str))))
        out.append(f'<tr class="chapter"><th colspan="{len(head)}">{name} ({profile} profile)</th></tr>')
        for r in rows.itertuples():
            ours = f"{r.statistic} = {_fmt(r.value)}"
            if r.interval:
                ours += f" [{_fmt(r.interval[0])}, {_fmt(r.interval[1])}]"
            verdict = r.verdict + (f" ({r.note})" if r.note else "")
            cells = [r.id, r.kind, r.claim, r.dissertation, ours, f"{r.threshold}" + (f" ({r.why})" if r.why else ""),
                     verdict]
            out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)
