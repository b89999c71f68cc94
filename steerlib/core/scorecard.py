"""The reproduction scorecard: every chapter's claims, gathered from ``<results>/<chapter>/metrics.json``."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from steerlib.core.chapter import results_root
from steerlib.core.record import read_metrics


def collect(root: str | Path | None = None) -> pd.DataFrame:
    """One row per claim of every chapter run found under ``root`` (default: :func:`results_root`)."""
    root = root or results_root()
    rows = []
    for path in sorted(Path(root).glob("*/metrics.json")):
        record = read_metrics(path)
        for c in record["claims"]:
            rows.append({
                "chapter": record["chapter"],
                "profile": record["config"].get("profile", "?"),
                "id": c["id"],
                "claim": c["statement"],
                "dissertation": c.get("dissertation", ""),
                "ours": f"{c['statistic']} = {c['value']:.3g} (needs {c['op']} {c['threshold']:g})",
                "holds": "yes" if c["holds"] else "no",
            })
    columns = ["chapter", "profile", "id", "claim", "dissertation", "ours", "holds"]
    return pd.DataFrame(rows, columns=columns)


def summary(card: pd.DataFrame) -> pd.DataFrame:
    """Claims that hold, out of all claims, per chapter."""
    return card.groupby("chapter")["holds"].agg(holds=lambda h: int((h == "yes").sum()), claims="size")
