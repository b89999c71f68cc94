"""The claims ledger: when each claim was registered, and every revision since, as plain data beside the claims.

Each chapter package holds ``ledger.json``: per claim id (as in the chapter's ``SPECS``, placeholders included) the
:meth:`~steerlib.core.claims.Spec.fingerprint` of its current specification and its history, a list of events::

    {"date": "2026-11-20", "commit": "a1b2c3d", "event": "registered" | "revised",
     "what": "what changed", "why": "why", "after_results": true | false}

``after_results`` says whether the event came after a ``cpu`` result of that claim had been seen (a threshold moved
after a miss, a statistic reworked after a run). A claim's state (:func:`state`) is "registered before results",
"registered after results" or "revised after results (n)"; metrics.json and the scorecard carry it.
``tests/test_ledger.py`` fails when a claim's specification changes without a new event (its fingerprint no longer
matches), so a threshold cannot move off the record. Changes to the whole book's protocol (the seeding path, how
intervals are computed) are not revisions of one claim: they are listed once, in ``steerlib/chapters/protocol.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from steerlib.core.checks import check_choice, check_nonempty, check_type
from steerlib.core.claims import Claim, Spec

EVENTS = ("registered", "revised")
FIELDS = ("date", "commit", "event", "what", "why", "after_results")


def read(path: str | os.PathLike) -> dict[str, dict]:
    """The ledger at ``path`` (claim id -> {"fingerprint", "history"}), checked; an absent file is an empty ledger."""
    check_type("path", path, (str, os.PathLike), "the path of a ledger.json")
    path = Path(path)
    if not path.exists():
        return {}
    ledger = json.loads(path.read_text())
    check_type("ledger", ledger, dict, "a dict of claim id -> entry")
    for cid, entry in ledger.items():
        history = check_nonempty(
            f"{cid}.history", check_type(f"{cid}.history", entry.get("history"), list, "a list of events")
        )
        for event in history:
            missing = [f for f in FIELDS if f not in event]
            if missing:
                raise ValueError(f"{path}: {cid}: an event lacks {missing}; every event has {list(FIELDS)}")
            check_choice(f"{cid}.event", event["event"], EVENTS)
        if history[0]["event"] != "registered":
            raise ValueError(f"{path}: {cid}: the first event must be 'registered', not {history[0]['event']!r}")
    return ledger


def record(
    path: str | os.PathLike, spec: Spec, event: str, what: str, why: str, after_results: bool, date: str, commit: str
) -> None:
    """Add an event to the ledger at ``path`` for ``spec`` (``registered`` for a new claim, ``revised`` for a changed
    one) and set its fingerprint to the spec's: what a maintainer runs after changing a claim's specification."""
    check_choice("event", event, EVENTS)
    for name, text in (("what", what), ("why", why), ("date", date), ("commit", commit)):
        check_nonempty(name, check_type(name, text, str, "a non-empty string"))
    check_type("after_results", after_results, bool, "True or False")
    ledger = read(path)
    if (event == "registered") == (spec.id in ledger):
        raise ValueError(f"event={event!r} for {spec.id}: a claim is registered once, then revised")
    entry = ledger.setdefault(spec.id, {"fingerprint": "", "history": []})
    entry["fingerprint"] = spec.fingerprint()
    entry["history"].append(
        {"date": date, "commit": commit, "event": event, "what": what, "why": why, "after_results": after_results}
    )
    Path(path).write_text(json.dumps(ledger, indent=1, ensure_ascii=False) + "\n")


def state(entry: Mapping[str, Any] | None) -> str:
    """ "registered before results", "registered after results", "revised after results (n)" (n: revisions made
    after a cpu result of the claim was seen), or "not in the ledger"."""
    if not entry:
        return "not in the ledger"
    history = entry["history"]
    late = sum(e["event"] == "revised" and e["after_results"] for e in history)
    if late:
        return f"revised after results ({late})"
    return "registered after results" if history[0]["after_results"] else "registered before results"


def problems(specs: Sequence[Spec], ledger: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What keeps ``ledger`` from recording ``specs``: a spec with no entry, or whose fingerprint differs from the
    entry's (it changed without a new event), and entries of specs that no longer exist."""
    check_type("ledger", ledger, Mapping, "a ledger from read (claim id -> entry)")
    for spec in check_type("specs", specs, (list, tuple), "a chapter's SPECS"):
        check_type("specs", spec, Spec, "a chapter's SPECS (Specs)")
    out = []
    for spec in specs:
        entry = ledger.get(spec.id)
        if entry is None:
            out.append(f"{spec.id}: not in the ledger; register it (fingerprint {spec.fingerprint()})")
        elif entry.get("fingerprint") != spec.fingerprint():
            out.append(
                f"{spec.id}: its specification changed (fingerprint {spec.fingerprint()}, the ledger has "
                f"{entry.get('fingerprint')}); add a 'revised' event saying what, why and whether after "
                "results, and record the new fingerprint"
            )
    ids = {spec.id for spec in specs}
    out += [f"{cid}: in the ledger but not a claim of the chapter" for cid in ledger if cid not in ids]
    return out


def with_states(claims: Iterable[Claim], ledger: Mapping[str, Mapping[str, Any]], specs: Sequence[Spec]) -> list[Claim]:
    """``claims`` with each one's ledger state (:func:`state` of the entry of the spec it was made from)."""
    by_fingerprint = {spec.fingerprint(): spec.id for spec in specs}
    return [dataclasses.replace(c, ledger=state(ledger.get(by_fingerprint.get(c.fingerprint, c.id)))) for c in claims]
